"""Our own canonical order format: JSON mirroring OrderIn (money in integer fen) and a flat CSV."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from shequn.commerce.canonical import (
    IDENTITY_KINDS,
    MAX_FEN,
    CustomerIn,
    IdentityIn,
    LineItemIn,
    OrderIn,
    ParsedRow,
    RowError,
    check_status,
    to_int,
    to_time,
)
from shequn.commerce.sources.base import (
    LineError,
    build_groups,
    build_rows,
    default_paid,
    iter_json_records,
    json_head,
    latest,
    require_id,
    text,
)
from shequn.commerce.sources.tabular import Row, group_consecutive, peek_headers, read_table, require_columns

CSV_REQUIRED = ("source_order_id", "status", "total", "created_at")
_CSV_OPTIONAL_ORDER = ("source", "shop_id", "paid", "refunded", "discount", "shipping", "subtotal", "paid_at")
_LINE_PATH = re.compile(r"^line_items\[(\d+)\]\.(.+)$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class ShequnSource:
    """shequn canonical JSON / JSON Lines / CSV."""

    name = "shequn"

    def sniff(self, data: bytes, filename: str) -> bool:
        """source_order_id as a JSON key or a CSV column."""
        head = json_head(data)
        if head:
            return '"source_order_id"' in head
        return "source_order_id" in peek_headers(data, filename)

    def parse(self, data: bytes, filename: str, *, shop_id: str) -> Iterator[ParsedRow]:
        """Parse JSON records or CSV rows (consecutive rows with the same source_order_id are one order)."""
        if json_head(data):
            records = iter_json_records(data, (("orders",),))
            return build_rows(
                records,
                lambda r: order_from_dict(r, default_source="shequn", shop_id=shop_id),
                lambda r: text(r.get("source_order_id")) if isinstance(r, dict) else "",
            )
        headers, rows = read_table(data, filename)
        require_columns(headers, CSV_REQUIRED)
        return build_groups(
            group_consecutive(rows, "source_order_id"), lambda g: _csv_order(g, shop_id), "source_order_id"
        )


def fen(value: Any, path: str, *, required: bool = False) -> int:
    """Integer fen ≥ 0 from an int or a digit string (floats only when whole, e.g. 1230.0)."""
    if value is None or value == "":
        if required:
            raise RowError(path, "missing", value)
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RowError(path, "must be a whole number of fen (分)", value)
    if value < 0:
        raise RowError(path, "negative amount", value)
    if value > MAX_FEN:
        raise RowError(path, "amount too large", value)
    return value


def order_from_dict(d: dict[str, Any], *, default_source: str, shop_id: str) -> OrderIn:
    """Validate one canonical order object; RowError.field is a dotted path such as line_items[1].quantity."""
    if not isinstance(d, dict):
        raise RowError("order", "expected a JSON object", d)
    source = text(d.get("source")) or default_source
    order_id = require_id(d.get("source_order_id"), "source_order_id")
    status = text(d.get("status"))
    if not status:
        raise RowError("status", "missing")
    check_status(status, "status")
    currency = (text(d.get("currency")) or "CNY").upper()
    if not _CURRENCY.match(currency):
        raise RowError("currency", "must be a 3-letter ISO code", d.get("currency"))
    total = fen(d.get("total"), "total", required=True)
    created = to_time(d.get("created_at"), "created_at")
    assert created is not None
    paid_at = to_time(d.get("paid_at"), "paid_at", required=False)
    updated_value = d.get("source_updated_at") or d.get("updated_at")
    updated = to_time(updated_value, "updated_at", required=False) or latest(created, paid_at)
    paid = fen(d["paid"], "paid") if d.get("paid") not in (None, "") else default_paid(status, total)
    has_refunded = d.get("refunded") not in (None, "")
    refunded = fen(d["refunded"], "refunded") if has_refunded else (paid if status == "refunded" else 0)
    attribution = d.get("attribution") or {}
    if not isinstance(attribution, dict):
        raise RowError("attribution", "must be an object", attribution)
    return OrderIn(
        source=source,
        shop_id=text(d.get("shop_id")) or shop_id,
        source_order_id=order_id,
        status=status,
        currency=currency,
        total=total,
        subtotal=fen(d.get("subtotal"), "subtotal"),
        discount=fen(d.get("discount"), "discount"),
        shipping=fen(d.get("shipping"), "shipping"),
        paid=paid,
        refunded=refunded,
        created_at=created,
        paid_at=paid_at,
        source_updated_at=updated,
        line_items=[_line(item, f"line_items[{i}]") for i, item in enumerate(_list(d, "line_items"))],
        discount_codes=[_code(c, f"discount_codes[{i}]") for i, c in enumerate(_list(d, "discount_codes"))],
        attribution={str(k): text(v) for k, v in attribution.items() if text(v)},
        customer=_customer(d.get("customer"), source),
        raw=d,
    )


def _list(d: dict[str, Any], key: str) -> list[Any]:
    value = d.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise RowError(key, "must be a list", value)
    return value


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RowError(path, "must be an object", value)
    return value


def _line(value: Any, path: str) -> LineItemIn:
    item = _object(value, path)
    raw_quantity = item.get("quantity")
    quantity = to_int(1 if raw_quantity in (None, "") else raw_quantity, f"{path}.quantity", minimum=1)
    unit_price = fen(item.get("unit_price"), f"{path}.unit_price")
    has_total = item.get("total") not in (None, "")
    sku, title = text(item.get("sku")), text(item.get("title"))
    if not sku and not title:
        raise RowError(f"{path}.sku", "a line item needs a sku or a title")
    return LineItemIn(
        sku=sku,
        title=title,
        quantity=quantity,
        unit_price=unit_price,
        total=fen(item["total"], f"{path}.total") if has_total else unit_price * quantity,
        category=text(item.get("category")),
        source_line_id=text(item.get("source_line_id")),
    )


def _code(value: Any, path: str) -> tuple[str, int]:
    if isinstance(value, list | tuple) and len(value) == 2:
        value = {"code": value[0], "amount": value[1]}
    item = _object(value, path)
    code = text(item.get("code"))
    if not code:
        raise RowError(f"{path}.code", "missing")
    return code, fen(item.get("amount"), f"{path}.amount")


def _customer(value: Any, source: str) -> CustomerIn | None:
    if value is None:
        return None
    data = _object(value, "customer")
    identities = []
    for i, entry in enumerate(data.get("identities") or []):
        path = f"customer.identities[{i}]"
        ident = _object(entry, path)
        kind = text(ident.get("kind"))
        if kind not in IDENTITY_KINDS:
            raise RowError(f"{path}.kind", f"unknown identity kind {kind!r}", kind)
        identity_value = text(ident.get("value"))
        if not identity_value:
            raise RowError(f"{path}.value", "missing")
        followers = ident.get("followers")
        identities.append(
            IdentityIn(
                source=text(ident.get("source")) or source,
                kind=kind,
                value=identity_value,
                verified=bool(ident.get("verified", False)),
                followers=None if followers in (None, "") else to_int(followers, f"{path}.followers"),
            )
        )
    return CustomerIn(
        identities=identities,
        name=text(data.get("name")),
        phone=text(data.get("phone")) or None,
        phone_verified=bool(data.get("phone_verified", False)),
        email=text(data.get("email")).lower() or None,
        province=text(data.get("province")),
        city=text(data.get("city")),
    )


def _csv_order(group: list[tuple[int, Row]], shop_id: str) -> OrderIn:
    _, head = group[0]
    d: dict[str, Any] = {k: head.get(k, "") for k in (*CSV_REQUIRED, "currency", "updated_at")}
    d.update({k: head[k] for k in _CSV_OPTIONAL_ORDER if head.get(k)})
    customer_fields = ("buyer_id", "buyer_name", "phone", "email", "city", "province")
    if any(head.get(k) for k in customer_fields):
        buyer_id = head.get("buyer_id", "")
        d["customer"] = {
            "identities": [{"kind": "customer_id", "value": buyer_id}] if buyer_id else [],
            "name": head.get("buyer_name", ""),
            "phone": head.get("phone", ""),
            "email": head.get("email", ""),
            "city": head.get("city", ""),
            "province": head.get("province", ""),
        }
    line_rows = [(n, r) for n, r in group if r.get("sku") or r.get("title")]
    line_keys = ("sku", "title", "quantity", "unit_price", "category")
    d["line_items"] = [{k: r.get(k, "") for k in line_keys} for _, r in line_rows]
    try:
        order = order_from_dict(d, default_source="shequn", shop_id=shop_id)
    except RowError as exc:
        match = _LINE_PATH.match(exc.field)
        if match:  # point at the spreadsheet row and column a person would fix
            row = line_rows[int(match.group(1))][0]
            raise LineError(row, RowError(match.group(2), exc.reason, exc.value)) from None
        raise
    order.raw = {"rows": [r for _, r in group][:20]}
    return order
