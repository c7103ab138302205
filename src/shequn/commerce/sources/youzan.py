"""Youzan (有赞) orders as returned by youzan.trades.sold.get / order detail: full_order_info JSON."""

from __future__ import annotations

from collections.abc import Iterator
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
    iter_json_records,
    json_head,
    latest,
    obj,
    require_id,
    seq,
    short_city,
    short_province,
    text,
)

STATUS_MAP: dict[str, str] = {
    "WAIT_BUYER_PAY": "pending_payment",
    "TRADE_NO_CREATE_PAY": "pending_payment",
    "WAIT_CONFIRM": "paid",
    "WAIT_GROUP": "paid",  # paid, waiting for the group-buy to fill
    "WAIT_SELLER_SEND_GOODS": "paid",
    "TRADE_PAID": "paid",
    "SELLER_CONSIGNED_PART": "shipped",
    "WAIT_BUYER_CONFIRM_GOODS": "shipped",
    "TRADE_BUYER_SIGNED": "shipped",
    "TRADE_SUCCESS": "completed",
    "TRADE_CLOSED": "closed",
    "TRADE_CLOSE": "closed",  # both spellings occur across API versions
}
# order_info.refund_state: 0 none, 1 partial refund in progress, 2 partially refunded,
# 11 full refund in progress, 12 fully refunded; newer payloads use the words.
_REFUND_STATES: dict[str, str] = {
    "2": "partially_refunded",
    "12": "refunded",
    "PARTIAL_REFUNDED": "partially_refunded",
    "FULL_REFUNDED": "refunded",
}
_PATHS = (("response", "full_order_info_list"), ("data", "full_order_info_list"), ("data",))


class YouzanSource:
    """Youzan full_order_info JSON or JSON Lines."""

    name = "youzan"

    def sniff(self, data: bytes, filename: str) -> bool:
        """The full_order_info wrapper, or order_info with a tid."""
        head = json_head(data)
        return '"full_order_info' in head or ('"order_info"' in head and '"tid"' in head)

    def parse(self, data: bytes, filename: str, *, shop_id: str) -> Iterator[ParsedRow]:
        """Parse the payload; see the module docstring."""
        return build_rows(iter_json_records(data, _PATHS), lambda r: _order(r, shop_id), _order_id)


def _inner(record: Any) -> dict[str, Any]:
    record = obj(record)
    return obj(record["full_order_info"]) if "full_order_info" in record else record


def _order_id(record: Any) -> str:
    return text(obj(_inner(record).get("order_info")).get("tid"))


def _order(record: Any, shop_id: str) -> OrderIn:
    full = _inner(record)
    info = obj(full.get("order_info"))
    pay = obj(full.get("pay_info"))
    order_id = require_id(info.get("tid"), "order_info.tid")
    status_word = text(info.get("status"))
    status = STATUS_MAP.get(status_word)
    if status is None:
        raise RowError("order_info.status", f"unknown status {status_word!r}", status_word)
    shipping = to_fen(pay.get("post_fee"), "pay_info.post_fee")
    subtotal = to_fen(pay.get("total_fee"), "pay_info.total_fee")
    # payment is what the buyer owes after discounts, post fee included; older payloads lack it.
    total = to_fen(pay["payment"], "pay_info.payment") if text(pay.get("payment")) else subtotal + shipping
    created = to_time(info.get("created"), "order_info.created")
    assert created is not None
    paid_at = to_time(info.get("pay_time"), "order_info.pay_time", required=False)
    # A closed order with a pay time was paid and then refunded; its money matters for the refund.
    paid = total if paid_at and status != "pending_payment" else default_paid(status, total)
    refunded = sum(
        to_fen(obj(r).get("refund_fee"), f"refund_order[{i}].refund_fee")
        for i, r in enumerate(seq(full.get("refund_order")))
    )
    refund_status = _REFUND_STATES.get(text(info.get("refund_state")).upper())
    if refund_status and paid:
        status = refund_status
        if refund_status == "refunded" and not refunded:
            refunded = paid
    updated = to_time(info.get("update_time"), "order_info.update_time", required=False)
    return OrderIn(
        source="youzan",
        shop_id=text(info.get("node_kdt_id") or info.get("kdt_id") or full.get("kdt_id")) or shop_id,
        source_order_id=order_id,
        status=status,
        currency="CNY",
        total=total,
        subtotal=subtotal,
        shipping=shipping,
        discount=max(0, subtotal + shipping - total),
        paid=paid,
        refunded=refunded,
        created_at=created,
        paid_at=paid_at,
        source_updated_at=updated or latest(created, paid_at),
        line_items=[_line(obj(item), i) for i, item in enumerate(seq(full.get("orders")))],
        customer=_customer(obj(full.get("buyer_info")), obj(full.get("address_info"))),
        raw=obj(record),
    )


def _line(item: dict[str, Any], index: int) -> LineItemIn:
    path = f"orders[{index}]"
    quantity = to_int(item.get("num", 1), f"{path}.num", minimum=1)
    unit_price = to_fen(item.get("price"), f"{path}.price")
    amount = item.get("payment") if text(item.get("payment")) else item.get("total_fee")
    total = to_fen(amount, f"{path}.payment") if text(amount) else unit_price * quantity
    return LineItemIn(
        sku=text(item.get("outer_sku_id")) or text(item.get("outer_item_id")),
        title=text(item.get("title")),
        quantity=quantity,
        unit_price=unit_price,
        total=total,
        source_line_id=text(item.get("oid")),
    )


def _customer(buyer: dict[str, Any], address: dict[str, Any]) -> CustomerIn | None:
    identities = []
    customer_id = text(buyer.get("yz_open_id")) or text(buyer.get("fans_id"))
    if customer_id and customer_id != "0":  # fans_id 0 means "not a follower", not a person
        identities.append(IdentityIn(source="youzan", kind="customer_id", value=customer_id, verified=True))
    unionid = text(buyer.get("outer_user_id")) or text(buyer.get("union_id")) or text(buyer.get("unionid"))
    if unionid:
        identities.append(IdentityIn(source="wechat", kind="unionid", value=unionid, verified=True))
    phone = text(buyer.get("buyer_phone"))
    if not identities and not phone:
        return None
    return CustomerIn(
        identities=identities,
        name=text(buyer.get("fans_nickname")) or text(address.get("receiver_name")),
        phone=phone or None,
        phone_verified=bool(phone),  # the account's bound phone, not the delivery contact
        province=short_province(text(address.get("delivery_province"))),
        city=short_city(text(address.get("delivery_city"))),
    )
