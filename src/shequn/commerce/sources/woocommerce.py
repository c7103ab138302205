"""WooCommerce REST API v3 order JSON (a list from /orders, or one order)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from shequn.commerce.canonical import (
    CustomerIn,
    IdentityIn,
    LineItemIn,
    OrderIn,
    ParsedRow,
    RowError,
    to_fen,
    to_int,
    to_time,
)
from shequn.commerce.sources.base import (
    build_rows,
    default_paid,
    discount_codes,
    iter_json_records,
    json_head,
    latest,
    obj,
    person_name,
    refund_status,
    require_id,
    round_div,
    seq,
    short_province,
    text,
    to_utc_naive_time,
)

STATUS_MAP: dict[str, str] = {
    "pending": "pending_payment",
    "on-hold": "pending_payment",
    "checkout-draft": "pending_payment",
    "processing": "paid",
    "completed": "completed",
    "cancelled": "cancelled",
    "refunded": "refunded",
    "failed": "closed",
    "trash": "closed",
}
# WooCommerce stores Chinese provinces as codes (i18n/states/CN.php).
CN_STATES: dict[str, str] = {
    "CN1": "云南",
    "CN2": "北京",
    "CN3": "天津",
    "CN4": "河北",
    "CN5": "山西",
    "CN6": "内蒙古",
    "CN7": "辽宁",
    "CN8": "吉林",
    "CN9": "黑龙江",
    "CN10": "上海",
    "CN11": "江苏",
    "CN12": "浙江",
    "CN13": "安徽",
    "CN14": "福建",
    "CN15": "江西",
    "CN16": "山东",
    "CN17": "河南",
    "CN18": "湖北",
    "CN19": "湖南",
    "CN20": "广东",
    "CN21": "广西",
    "CN22": "海南",
    "CN23": "重庆",
    "CN24": "四川",
    "CN25": "贵州",
    "CN26": "陕西",
    "CN27": "甘肃",
    "CN28": "青海",
    "CN29": "宁夏",
    "CN30": "澳门",
    "CN31": "西藏",
    "CN32": "新疆",
}
_PATHS = (("orders",), ("order",))
# Order-attribution meta (WooCommerce ≥ 8.5) and older plugins' "_utm_source" style keys.
_META_PREFIXES = ("_wc_order_attribution_", "_", "")
_SNIFF_MARKERS = ('"date_created_gmt"', '"coupon_lines"', '"shipping_total"', '"order_key"')


class WooCommerceSource:
    """WooCommerce REST v3 orders."""

    name = "woocommerce"

    def sniff(self, data: bytes, filename: str) -> bool:
        """line_items plus a WooCommerce-only key."""
        head = json_head(data)
        return '"line_items"' in head and any(m in head for m in _SNIFF_MARKERS)

    def parse(self, data: bytes, filename: str, *, shop_id: str) -> Iterator[ParsedRow]:
        """Parse the payload; see the module docstring."""
        records = iter_json_records(data, _PATHS)
        return build_rows(records, lambda r: _order(r, shop_id), lambda r: text(obj(r).get("id")))


def _time(order: dict[str, Any], name: str, *, required: bool) -> datetime | None:
    # The *_gmt variants are naive UTC; the plain ones are site-local, which we can only read as Shanghai.
    if text(order.get(f"{name}_gmt")):
        return to_utc_naive_time(order[f"{name}_gmt"], f"{name}_gmt", required=required)
    return to_time(order.get(name), name, required=required)


def _order(record: Any, shop_id: str) -> OrderIn:
    order = obj(record)
    order_id = require_id(order.get("id"), "id")
    status_word = text(order.get("status"))
    status = STATUS_MAP.get(status_word)
    if status is None:
        raise RowError("status", f"unknown status {status_word!r}", status_word)
    total = to_fen(order.get("total"), "total")
    # Refund totals are negative strings ("-10.00").
    refunded = sum(
        abs(to_fen(obj(r).get("total"), f"refunds[{i}].total", allow_negative=True))
        for i, r in enumerate(seq(order.get("refunds")))
    )
    created = _time(order, "date_created", required=True)
    assert created is not None
    paid_at = _time(order, "date_paid", required=False)
    updated = _time(order, "date_modified", required=False)
    paid = total if paid_at and status not in ("cancelled", "closed") else default_paid(status, total)
    if status == "refunded" and not refunded:
        refunded = paid
    lines = [_line(obj(item), i) for i, item in enumerate(seq(order.get("line_items")))]
    subtotal = sum(_line_subtotal(obj(item), i) for i, item in enumerate(seq(order.get("line_items"))))
    return OrderIn(
        source="woocommerce",
        shop_id=shop_id,
        source_order_id=order_id,
        status=refund_status(status, paid, refunded),
        currency=text(order.get("currency")).upper() or "CNY",
        total=total,
        subtotal=subtotal,
        discount=to_fen(order.get("discount_total"), "discount_total"),
        shipping=to_fen(order.get("shipping_total"), "shipping_total"),
        paid=paid,
        refunded=refunded,
        created_at=created,
        paid_at=paid_at,
        source_updated_at=updated or latest(created, paid_at),
        line_items=lines,
        discount_codes=discount_codes(order.get("coupon_lines"), "coupon_lines", "discount"),
        attribution=_attribution(seq(order.get("meta_data"))),
        customer=_customer(order),
        raw=order,
    )


def _line_subtotal(item: dict[str, Any], index: int) -> int:
    # subtotal is before coupons, total after; old payloads may lack subtotal.
    value = item.get("subtotal") if text(item.get("subtotal")) else item.get("total")
    return to_fen(value, f"line_items[{index}].subtotal")


def _line(item: dict[str, Any], index: int) -> LineItemIn:
    path = f"line_items[{index}]"
    quantity = to_int(item.get("quantity"), f"{path}.quantity", minimum=1)
    # "price" is a float of total/quantity with arbitrary decimals; derive the unit price from fen instead.
    unit_price = round_div(_line_subtotal(item, index), quantity)
    return LineItemIn(
        sku=text(item.get("sku")) or text(item.get("product_id")),
        title=text(item.get("name")),
        quantity=quantity,
        unit_price=unit_price,
        total=to_fen(item.get("total"), f"{path}.total"),
        source_line_id=text(item.get("id")),
    )


def _attribution(meta: list[Any]) -> dict[str, str]:
    result: dict[str, str] = {}
    for entry in meta:
        key = text(obj(entry).get("key")).lower()
        for prefix in _META_PREFIXES:
            if key.startswith(prefix + "utm_"):
                value = text(obj(entry).get("value"))
                if value:
                    result[key[len(prefix) :]] = value
                break
    return result


def _customer(order: dict[str, Any]) -> CustomerIn | None:
    billing = obj(order.get("billing"))
    shipping = obj(order.get("shipping"))
    identities = []
    customer_id = text(order.get("customer_id"))
    if customer_id and customer_id != "0":  # 0 is a guest checkout
        identity = IdentityIn(source="woocommerce", kind="customer_id", value=customer_id, verified=True)
        identities.append(identity)
    email = text(billing.get("email")).lower()
    phone = text(billing.get("phone"))
    if not identities and not email and not phone:
        return None
    state = text(billing.get("state")) or text(shipping.get("state"))
    return CustomerIn(
        identities=identities,
        name=person_name(text(billing.get("first_name")), text(billing.get("last_name"))),
        phone=phone or None,
        phone_verified=False,  # typed at checkout, never confirmed
        email=email or None,
        province=CN_STATES.get(state.upper()) or short_province(state),
        city=text(billing.get("city")) or text(shipping.get("city")),
    )
