"""The canonical order every source is parsed into (protocols.md "Order and customer import").

Plain slotted dataclasses, not Pydantic: the bulk import handles tens of thousands of orders a
second and per-object validation overhead would dominate. Parsers validate as they build these.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from shequn.audience.schemas import CustomerIn, IdentityIn
from shequn.core.clock import as_utc

__all__ = ["CustomerIn", "IdentityIn"]  # re-exported: parsers build them as part of an order

ORDER_STATUSES = (
    "pending_payment",
    "paid",
    "shipped",
    "completed",
    "cancelled",
    "closed",
    "refunded",
    "partially_refunded",
)
# Statuses in which the buyer has paid and the money (net of refunds) counts as spend.
MAX_YUAN = 10**12  # a trillion yuan: far above any order, far below BIGINT fen
MAX_FEN = MAX_YUAN * 100
PAID_STATUSES = frozenset({"paid", "shipped", "completed", "partially_refunded"})
PAID_STATUSES_SQL = ", ".join(f"'{s}'" for s in sorted(PAID_STATUSES))  # for `status IN (...)`: constants, not input

IDENTITY_KINDS = ("customer_id", "openid", "unionid", "buyer_nick", "email", "phone_hash", "anonymous_id", "handle")


class RowError(Exception):
    """A bad input row: which field and why (the import reports it and keeps the good rows)."""

    def __init__(self, field: str, reason: str, value: Any = None) -> None:
        self.field = field
        self.reason = reason
        self.value = value
        super().__init__(f"{field}: {reason}")


@dataclass(slots=True)
class LineItemIn:
    """One line of an order; money in fen."""

    sku: str
    title: str
    quantity: int
    unit_price: int
    total: int
    category: str = ""
    source_line_id: str = ""


@dataclass(slots=True)
class OrderIn:
    """A canonical order; money in fen, times aware UTC."""

    source: str
    shop_id: str
    source_order_id: str
    status: str
    currency: str
    total: int
    created_at: datetime
    source_updated_at: datetime
    subtotal: int = 0
    discount: int = 0
    shipping: int = 0
    paid: int = 0
    refunded: int = 0
    paid_at: datetime | None = None
    line_items: list[LineItemIn] = field(default_factory=list)
    discount_codes: list[tuple[str, int]] = field(default_factory=list)
    attribution: dict[str, str] = field(default_factory=dict)
    customer: CustomerIn | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ProductIn:
    """A product row from a product file or the API."""

    sku: str
    title: str
    price: int
    category: str = ""
    tags: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ParsedRow:
    """One parsed unit of a file: an order/product, or the error that kept it out."""

    row: int  # 1-based line/record number in the source file, as a person would count it
    item: OrderIn | ProductIn | None = None
    error: RowError | None = None
    source_order_id: str = ""


def to_fen(value: Any, field_name: str, *, allow_negative: bool = False) -> int:
    """Parse a yuan amount ("12.30", 12.3, "¥1,299") into integer fen, exactly."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise RowError(field_name, "not a number", value)
    if isinstance(value, int):
        amount = Decimal(value)
    else:
        text = str(value).strip().replace(",", "").replace("¥", "").replace("￥", "").replace("元", "")
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise RowError(field_name, "not a number", value) from None
    if not amount.is_finite():
        raise RowError(field_name, "not a number", value)
    if amount < 0 and not allow_negative:
        raise RowError(field_name, "negative amount", value)
    if abs(amount) > MAX_YUAN:
        raise RowError(field_name, "amount too large", value)
    fen = amount * 100
    if fen != fen.to_integral_value():
        raise RowError(field_name, "more than 2 decimal places", value)
    return int(fen)


def to_int(value: Any, field_name: str, *, minimum: int = 0) -> int:
    """Parse a whole number ≥ minimum."""
    try:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except (TypeError, ValueError):
        raise RowError(field_name, "not a whole number", value) from None
    if number < minimum:
        raise RowError(field_name, f"must be ≥ {minimum}", value)
    return number


_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d")


def to_time(value: Any, field_name: str, *, required: bool = True) -> datetime | None:
    """Parse ISO-8601 or Chinese export times; naive times are Asia/Shanghai; returns aware UTC."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise RowError(field_name, "missing", value)
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    text = str(value).strip()
    try:
        return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        pass
    for fmt in _TIME_FORMATS:
        try:
            return as_utc(datetime.strptime(text, fmt))
        except ValueError:
            continue
    raise RowError(field_name, "not a date/time", value)


def clean_text(value: Any) -> str:
    """Strip spreadsheet artefacts: ="..." wrappers, a leading apostrophe, surrounding blanks."""
    if value is None:
        return ""
    text = str(value).strip()
    if text.startswith('="') and text.endswith('"'):
        text = text[2:-1]
    if text.startswith("'"):
        text = text[1:]
    return text.strip()


def check_status(value: str, field_name: str = "status") -> str:
    """Refuse statuses outside the canonical list."""
    if value not in ORDER_STATUSES:
        raise RowError(field_name, f"unknown status {value!r}", value)
    return value


_MOBILE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)")
_PHONE_KEYS = ("phone", "mobile", "tel", "手机", "电话")


def scrub_raw(value: Any, key: str = "") -> Any:
    """A copy of a source record with phone numbers masked: raw records are kept for audit, PII is not.

    Values under phone-like keys are masked whole; anywhere else a Chinese mobile number is masked
    where it appears (addresses and remarks often carry one).
    """
    kind = type(value)
    if kind is dict:
        return _scrub_dict(value)
    if kind is list:
        return [scrub_raw(v, key) for v in value]
    if isinstance(value, dict):  # dict and list subclasses take the slower, general path
        return _scrub_dict(dict(value))
    if isinstance(value, list):
        return [scrub_raw(v, key) for v in value]
    if isinstance(value, str):
        return _scrub_text(value, key)
    # A phone sent as a JSON number is still a phone: under a phone-like key, or shaped like a mobile.
    if _is_int(value) and ((key and _is_phone_key(key)) or 13_000_000_000 <= value <= 19_999_999_999):
        return _scrub_text(str(value), key)
    return value


def _scrub_dict(value: dict[Any, Any]) -> dict[str, Any]:
    # Every record of a file passes here (a third of a JSON Lines import): the common leaves are
    # handled inline, keys are looked up in plain dicts, and only nested values recurse.
    out: dict[str, Any] = {}
    keys, phone_keys = _SCRUBBED_KEYS, _PHONE_KEY_OF
    for k, v in value.items():
        name = k if type(k) is str else str(k)
        scrubbed = keys.get(name)
        if scrubbed is None:
            scrubbed = _scrub_text(name, "")
            if len(keys) < 4096:
                keys[name] = scrubbed
        is_phone = phone_keys.get(name)
        if is_phone is None:
            is_phone = _is_phone_key(name)
            if len(phone_keys) < 4096:
                phone_keys[name] = is_phone
        kind = type(v)
        if kind is str:
            if is_phone or "\x00" in v or not v.isascii() or _DIGIT.search(v):
                v = _scrub_text(v, name)
        elif kind is int:
            if is_phone or 13_000_000_000 <= v <= 19_999_999_999:
                v = _scrub_text(str(v), name)
        elif kind is not float and kind is not bool and v is not None:
            v = scrub_raw(v, name)
        out[scrubbed] = v
    return out


_SCRUBBED_KEYS: dict[str, str] = {}
_PHONE_KEY_OF: dict[str, bool] = {}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_DIGIT = re.compile(r"\d")


def _scrub_text(value: str, key: str) -> str:
    # Every string of every imported record passes here (it was 60% of a file import): C-level checks first.
    if not value:
        return value
    if "\x00" in value or (not value.isascii() and _unstorable(value)):
        value = value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")  # audit data: keep what fits
    if key and _is_phone_key(key):
        digits = re.sub(r"\D", "", value)
        return (digits[:3] + "****" + digits[-4:]) if len(digits) >= 7 else "****"
    if _DIGIT.search(value):
        return _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", value)
    return value


@lru_cache(maxsize=4096)
def _is_phone_key(key: str) -> bool:
    lowered = key.lower()
    return any(p in lowered for p in _PHONE_KEYS)


def _unstorable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: valid JSON escapes, not storable text
        return True
    return False


def _bad_text(value: str) -> bool:
    return "\x00" in value or _unstorable(value)


def _all_text(order: OrderIn) -> str:
    parts = [order.source, order.shop_id, order.source_order_id, order.currency]
    for li in order.line_items:
        parts += (li.sku, li.title, li.category)
    parts += [c for c, _ in order.discount_codes]
    for k, v in order.attribution.items():
        parts += (k, v)
    c = order.customer
    if c is not None:
        parts += (c.name, c.city, c.province, c.phone or "", c.email or "")
        parts += [f"{i.source}{i.kind}{i.value}" for i in c.identities]
    return "".join(parts)


def check_text(order: OrderIn) -> None:
    """Refuse an order whose text fields hold NUL or broken Unicode (no database can store them)."""
    try:
        text = _all_text(order)
    except TypeError:  # a non-string where text belongs: the field-by-field pass below names it
        text = "\x00"
    # One pass over all text of the order; only a bad order pays for the field-by-field search.
    if "\x00" not in text and (text.isascii() or not _bad_text(text)):
        return
    fields: list[tuple[str, str]] = [
        ("source", order.source),
        ("shop_id", order.shop_id),
        ("source_order_id", order.source_order_id),
        ("currency", order.currency),
    ]
    for i, li in enumerate(order.line_items):
        fields += [
            (f"line_items[{i}].sku", li.sku),
            (f"line_items[{i}].title", li.title),
            (f"line_items[{i}].category", li.category),
        ]
    fields += [(f"discount_codes[{i}].code", c) for i, (c, _) in enumerate(order.discount_codes)]
    fields += [(f"attribution.{k}", f"{k}{v}") for k, v in order.attribution.items()]
    if order.customer is not None:
        c = order.customer
        fields += [
            ("customer.name", c.name),
            ("customer.city", c.city),
            ("customer.province", c.province),
            ("customer.phone", c.phone or ""),
            ("customer.email", c.email or ""),
        ]
        fields += [
            (f"customer.identities[{i}].value", f"{ident.source}{ident.kind}{ident.value}")
            for i, ident in enumerate(c.identities)
        ]
    for name, value in fields:
        if value and _bad_text(value):
            raise RowError(name, "contains NUL or broken Unicode characters")
