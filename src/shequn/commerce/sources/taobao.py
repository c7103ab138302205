"""Taobao/Tmall 订单报表 export (GBK CSV or XLSX): one row per order."""

from __future__ import annotations

from collections.abc import Iterator

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
from shequn.commerce.sources.base import build_rows, latest, require_id, round_div, split_address
from shequn.commerce.sources.tabular import Row, peek_headers, read_table, require_columns

ORDER_ID = "订单编号"
STATUS = "订单状态"
CREATED = "订单创建时间"
REQUIRED = (ORDER_ID, STATUS, CREATED)
_MONEY_COLUMNS = ("总金额", "买家实际支付金额", "买家应付货款")
_SNIFF_COLUMNS = frozenset({ORDER_ID, "买家会员名", STATUS, "买家实际支付金额", "收货地址", "宝贝标题", CREATED})

STATUS_MAP: dict[str, str] = {
    "等待买家付款": "pending_payment",
    "买家已付款，等待卖家发货": "paid",
    "等待卖家发货": "paid",
    "等待卖家发货，即：买家已付款": "paid",
    "买家已付款": "paid",
    "卖家部分发货": "shipped",
    "卖家已发货，等待买家确认": "shipped",
    "卖家已发货": "shipped",
    "等待买家确认收货": "shipped",
    "等待买家确认收货，即：卖家已发货": "shipped",
    "买家已签收": "shipped",
    "交易成功": "completed",
    "交易关闭": "closed",
    "付款以前，卖家或买家主动关闭交易": "cancelled",
}


def map_status(word: str, paid: int, refunded: int) -> str:
    """Canonical status for a Taobao 订单状态; refund words and refund amounts refine paid-like statuses."""
    # Exports mix half- and full-width punctuation between versions.
    key = word.replace(",", "，").replace(":", "：").replace(" ", "")
    if "退款" in key:
        if refunded == 0 and ("成功" in key or "关闭" in key):
            return "refunded"  # the refund amount column is absent or zero but the words say it is done
        return "refunded" if paid and refunded >= paid else "partially_refunded"
    status = STATUS_MAP.get(key)
    if status is None:
        raise RowError(STATUS, f"unknown order status {word!r}", word)
    if status == "closed" and refunded > 0:
        # A paid Taobao order only closes after its refund went through.
        return "refunded" if refunded >= paid else "partially_refunded"
    if status in ("paid", "shipped", "completed") and refunded > 0:
        return "refunded" if paid and refunded >= paid else "partially_refunded"
    return status


class TaobaoSource:
    """Taobao/Tmall order report."""

    name = "taobao"

    def sniff(self, data: bytes, filename: str) -> bool:
        """Two or more of the distinctive Chinese columns in the header row."""
        return len(_SNIFF_COLUMNS.intersection(peek_headers(data, filename))) >= 2

    def parse(self, data: bytes, filename: str, *, shop_id: str) -> Iterator[ParsedRow]:
        """Parse the export; see the module docstring."""
        headers, rows = read_table(data, filename)
        require_columns(headers, REQUIRED)
        if not any(c in headers for c in _MONEY_COLUMNS):
            require_columns(headers, _MONEY_COLUMNS[:1])
        return build_rows(rows, lambda r: _order(r, shop_id), lambda r: r.get(ORDER_ID, ""))


def _order(row: Row, shop_id: str) -> OrderIn:
    order_id = require_id(row.get(ORDER_ID), ORDER_ID)
    goods = to_fen(row.get("买家应付货款"), "买家应付货款")
    shipping = to_fen(row.get("买家应付邮费"), "买家应付邮费")
    total = to_fen(row["总金额"], "总金额") if row.get("总金额") else goods + shipping
    refunded = to_fen(row.get("退款金额"), "退款金额")
    has_paid_column = bool(row.get("买家实际支付金额"))
    paid = to_fen(row.get("买家实际支付金额"), "买家实际支付金额")
    status = map_status(row.get(STATUS, ""), paid if has_paid_column else total, refunded)
    if not has_paid_column and status not in ("pending_payment", "cancelled", "closed"):
        paid = total
    created = to_time(row.get(CREATED), CREATED)
    assert created is not None  # required=True
    paid_at = to_time(row.get("订单付款时间"), "订单付款时间", required=False)
    return OrderIn(
        source="taobao",
        shop_id=row.get("店铺Id") or shop_id,
        source_order_id=order_id,
        status=status,
        currency="CNY",
        total=total,
        subtotal=goods,
        shipping=shipping,
        discount=max(0, goods + shipping - total),
        paid=paid,
        refunded=refunded,
        created_at=created,
        paid_at=paid_at,
        # The export has no modified time; the latest event it shows is the best proxy.
        source_updated_at=latest(created, paid_at),
        line_items=_line_items(row, goods),
        customer=_customer(row),
        raw=row,
    )


def _line_items(row: Row, goods: int) -> list[LineItemIn]:
    title = row.get("宝贝标题", "")
    sku = row.get("商家编码", "")
    if not title and not sku:
        return []
    quantity = to_int(row["宝贝总数量"], "宝贝总数量", minimum=1) if row.get("宝贝总数量") else 1
    unit_price = round_div(goods, quantity)
    return [LineItemIn(sku=sku, title=title, quantity=quantity, unit_price=unit_price, total=goods)]


def _customer(row: Row) -> CustomerIn | None:
    nick = row.get("买家会员名", "")
    phone = row.get("联系手机", "")
    address = row.get("收货地址", "")
    if not (nick or phone):
        return None
    province, city = split_address(address)
    identities = [IdentityIn(source="taobao", kind="buyer_nick", value=nick, verified=True)] if nick else []
    return CustomerIn(
        identities=identities,
        # 收货人/联系手机 belong to the receiver, who may be a gift recipient rather than the buyer.
        name=row.get("收货人姓名", ""),
        phone=phone or None,
        phone_verified=False,
        province=province,
        city=city,
    )
