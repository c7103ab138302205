"""Shopify orders: REST Admin order JSON, or the admin "Export orders" CSV (one row per line item)."""

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
    LineError,
    build_groups,
    build_rows,
    default_paid,
    discount_codes,
    iter_json_records,
    json_head,
    latest,
    obj,
    person_name,
    require_id,
    seq,
    text,
    utm_from_url,
)
from shequn.commerce.sources.tabular import Row, group_consecutive, peek_headers, read_table, require_columns

FINANCIAL_STATUS: dict[str, str] = {
    "pending": "pending_payment",
    "authorized": "pending_payment",
    "partially_paid": "pending_payment",
    "paid": "paid",
    "refunded": "refunded",
    "partially_refunded": "partially_refunded",
    "voided": "cancelled",
}
CSV_REQUIRED = ("Name", "Financial Status", "Created at", "Total")
_PATHS = (("orders",), ("order",))


def map_status(financial: str, fulfillment: str, *, cancelled: bool, closed: bool, field_name: str) -> str:
    """Canonical status from financial + fulfillment status; a cancellation wins over both."""
    if cancelled:
        return "cancelled"
    status = FINANCIAL_STATUS.get(financial.strip().lower())
    if status is None:
        raise RowError(field_name, f"unknown financial status {financial!r}", financial)
    if status == "paid" and fulfillment.strip().lower() == "fulfilled":
        # Shopify "closes" (archives) an order once it is paid and fulfilled and nothing is left to do.
        return "completed" if closed else "shipped"
    return status


class ShopifySource:
    """Shopify order JSON or orders CSV."""

    name = "shopify"

    def sniff(self, data: bytes, filename: str) -> bool:
        """financial_status in JSON, or the export's Financial Status / Lineitem columns."""
        head = json_head(data)
        if head:
            return '"financial_status"' in head
        headers = peek_headers(data, filename)
        return "Financial Status" in headers and "Name" in headers

    def parse(self, data: bytes, filename: str, *, shop_id: str) -> Iterator[ParsedRow]:
        """Parse JSON or CSV; CSV rows of one order (same Name, consecutive) become one order."""
        if json_head(data):
            return build_rows(iter_json_records(data, _PATHS), lambda r: _order(r, shop_id), _json_id)
        headers, rows = read_table(data, filename)
        require_columns(headers, CSV_REQUIRED)
        return build_groups(group_consecutive(rows, "Name"), lambda g: _csv_order(g, shop_id), "Name")


def _json_id(record: Any) -> str:
    return text(obj(record).get("id"))


def _order(record: Any, shop_id: str) -> OrderIn:
    order = obj(record)
    order_id = require_id(order.get("id"), "id")
    status = map_status(
        text(order.get("financial_status")),
        text(order.get("fulfillment_status")),
        cancelled=bool(order.get("cancelled_at")),
        closed=bool(order.get("closed_at")),
        field_name="financial_status",
    )
    total = to_fen(order.get("total_price"), "total_price")
    shipping_set = obj(obj(order.get("total_shipping_price_set")).get("shop_money"))
    if "amount" in shipping_set:
        shipping = to_fen(shipping_set["amount"], "total_shipping_price_set.shop_money.amount")
    else:
        lines = seq(order.get("shipping_lines"))
        shipping = sum(to_fen(obj(s).get("price"), "shipping_lines.price") for s in lines)
    if text(order.get("total_outstanding")):
        paid = max(0, total - to_fen(order["total_outstanding"], "total_outstanding"))
    else:
        paid = default_paid(status, total)
    refunded = sum(
        to_fen(obj(t).get("amount"), "refunds.transactions.amount")
        for refund in seq(order.get("refunds"))
        for t in seq(obj(refund).get("transactions"))
        if text(obj(t).get("kind")) in ("", "refund") and text(obj(t).get("status")) in ("", "success")
    )
    created = to_time(order.get("created_at"), "created_at")
    assert created is not None
    paid_at = to_time(order.get("processed_at"), "processed_at", required=False) if paid else None
    updated = to_time(order.get("updated_at"), "updated_at", required=False)
    return OrderIn(
        source="shopify",
        shop_id=shop_id,
        source_order_id=order_id,
        status=status,
        currency=text(order.get("currency")).upper() or "CNY",
        total=total,
        subtotal=to_fen(order.get("subtotal_price"), "subtotal_price"),
        discount=to_fen(order.get("total_discounts"), "total_discounts"),
        shipping=shipping,
        paid=paid,
        refunded=refunded,
        created_at=created,
        paid_at=paid_at,
        source_updated_at=updated or latest(created, paid_at),
        line_items=[_line(obj(item), i) for i, item in enumerate(seq(order.get("line_items")))],
        discount_codes=discount_codes(order.get("discount_codes"), "discount_codes", "amount"),
        attribution=utm_from_url(text(order.get("landing_site"))),
        customer=_customer(order),
        raw=order,
    )


def _line(item: dict[str, Any], index: int) -> LineItemIn:
    path = f"line_items[{index}]"
    quantity = to_int(item.get("quantity"), f"{path}.quantity", minimum=1)
    price = to_fen(item.get("price"), f"{path}.price")
    allocations = seq(item.get("discount_allocations"))
    if allocations:
        discount = sum(to_fen(obj(a).get("amount"), f"{path}.discount_allocations") for a in allocations)
    else:
        discount = to_fen(item.get("total_discount"), f"{path}.total_discount")
    return LineItemIn(
        sku=text(item.get("sku")),
        title=text(item.get("title")) or text(item.get("name")),
        quantity=quantity,
        unit_price=price,
        total=max(0, price * quantity - discount),
        source_line_id=text(item.get("id")),
    )


def _customer(order: dict[str, Any]) -> CustomerIn | None:
    customer = obj(order.get("customer"))
    address = obj(order.get("billing_address")) or obj(order.get("shipping_address"))
    identities = []
    customer_id = text(customer.get("id"))
    if customer_id:
        identities.append(IdentityIn(source="shopify", kind="customer_id", value=customer_id, verified=True))
    email = (text(customer.get("email")) or text(order.get("email"))).lower()
    if email:
        identities.append(IdentityIn(source="shopify", kind="email", value=email, verified=True))
    # The account phone is the customer's own; an address phone may belong to whoever receives the parcel.
    phone = text(customer.get("phone"))
    phone_verified = bool(phone)
    phone = phone or text(address.get("phone"))
    if not identities and not phone:
        return None
    return CustomerIn(
        identities=identities,
        name=person_name(text(customer.get("first_name")), text(customer.get("last_name")))
        or text(address.get("name")),
        phone=phone or None,
        phone_verified=phone_verified,
        email=email or None,
        province=text(address.get("province")),
        city=text(address.get("city")),
    )


def _csv_order(group: list[tuple[int, Row]], shop_id: str) -> OrderIn:
    _, head = group[0]  # order-level columns are only filled on an order's first row
    name = require_id(head.get("Name"), "Name")
    status = map_status(
        head.get("Financial Status", ""),
        head.get("Fulfillment Status", ""),
        cancelled=bool(head.get("Cancelled at")),
        closed=False,
        field_name="Financial Status",
    )
    total = to_fen(head.get("Total"), "Total")
    created = to_time(head.get("Created at"), "Created at")
    assert created is not None
    paid_at = to_time(head.get("Paid at"), "Paid at", required=False)
    cancelled_at = to_time(head.get("Cancelled at"), "Cancelled at", required=False)
    code = head.get("Discount Code", "")
    discount = to_fen(head.get("Discount Amount"), "Discount Amount")
    lines = []
    for number, row in group:
        try:
            lines.append(_csv_line(row))
        except RowError as exc:
            raise LineError(number, exc) from None
    email = head.get("Email", "").lower()
    phone = head.get("Phone", "")
    customer = None
    if email or phone:
        identities = [IdentityIn(source="shopify", kind="email", value=email, verified=True)] if email else []
        customer = CustomerIn(
            identities=identities,
            name=head.get("Billing Name", ""),
            phone=phone or None,
            email=email or None,
            province=head.get("Billing Province", ""),
            city=head.get("Billing City", ""),
        )
    return OrderIn(
        source="shopify",
        shop_id=shop_id,
        source_order_id=head.get("Id") or name,
        status=status,
        currency=head.get("Currency", "").upper() or "CNY",
        total=total,
        subtotal=to_fen(head.get("Subtotal"), "Subtotal"),
        discount=discount,
        shipping=to_fen(head.get("Shipping"), "Shipping"),
        paid=total if paid_at else default_paid(status, total),
        refunded=to_fen(head.get("Refunded Amount"), "Refunded Amount"),
        created_at=created,
        paid_at=paid_at,
        source_updated_at=latest(created, paid_at, cancelled_at),
        line_items=lines,
        discount_codes=[(code, discount)] if code else [],
        customer=customer,
        raw={"name": name, "rows": [row for _, row in group][:20]},
    )


def _csv_line(row: Row) -> LineItemIn:
    quantity = to_int(row.get("Lineitem quantity"), "Lineitem quantity", minimum=1)
    price = to_fen(row.get("Lineitem price"), "Lineitem price")
    discount = to_fen(row.get("Lineitem discount"), "Lineitem discount")
    return LineItemIn(
        sku=row.get("Lineitem sku", ""),
        title=row.get("Lineitem name", ""),
        quantity=quantity,
        unit_price=price,
        total=max(0, price * quantity - discount),
    )
