"""What every order source shares: the protocol, whole-file errors, JSON loading and small field helpers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import orjson

from shequn.commerce.canonical import PAID_STATUSES, OrderIn, ParsedRow, RowError, to_fen, to_time


class FileError(Exception):
    """A problem with the whole file (encoding, format, columns): nothing in it can be imported."""

    def __init__(self, code: str, message: str = "", **params: Any) -> None:
        self.code = code  # stable, for the UI to translate
        self.params = params
        super().__init__(message or code)


class OrderSource(Protocol):
    """A parser for one platform's order export or API payload."""

    name: str

    def sniff(self, data: bytes, filename: str) -> bool:
        """Whether the file looks like this source's format (cheap: looks at the start only)."""
        ...

    def parse(self, data: bytes, filename: str, *, shop_id: str) -> Iterator[ParsedRow]:
        """One ParsedRow per order or bad record, in file order."""
        ...


# Record-shape mistakes in JSON (a string where an object belongs) surface as these; they are row errors.
_SHAPE_ERRORS = (TypeError, AttributeError, ValueError, ArithmeticError, KeyError)


def build_rows(
    records: Iterable[tuple[int, Any]], build: Callable[[Any], OrderIn], id_of: Callable[[Any], str]
) -> Iterator[ParsedRow]:
    """Turn (row, record) pairs into ParsedRows; a failing record becomes an error row, never an abort."""
    for row, record in records:
        if isinstance(record, RowError):
            yield ParsedRow(row=row, error=record)
            continue
        try:
            order = build(record)
        except RowError as exc:
            yield ParsedRow(row=row, error=exc, source_order_id=_safe_id(id_of, record))
        except _SHAPE_ERRORS as exc:
            error = RowError("record", f"malformed record ({type(exc).__name__}: {exc})")
            yield ParsedRow(row=row, error=error, source_order_id=_safe_id(id_of, record))
        else:
            yield ParsedRow(row=row, item=order, source_order_id=order.source_order_id)


class LineError(Exception):
    """A RowError found on a later row of a multi-row record (Shopify and shequn CSV line items)."""

    def __init__(self, row: int, error: RowError) -> None:
        self.row = row
        self.error = error
        super().__init__(str(error))


def build_groups(
    groups: Iterable[list[tuple[int, Any]]], build: Callable[[list[tuple[int, Any]]], OrderIn], key: str
) -> Iterator[ParsedRow]:
    """Like build_rows for orders spread over consecutive rows; errors point at the offending row."""
    for group in groups:
        first_row, first = group[0]
        order_id = first.get(key, "")
        try:
            order = build(group)
        except LineError as exc:
            yield ParsedRow(row=exc.row, error=exc.error, source_order_id=order_id)
        except RowError as exc:
            yield ParsedRow(row=first_row, error=exc, source_order_id=order_id)
        else:
            yield ParsedRow(row=first_row, item=order, source_order_id=order.source_order_id)


def _safe_id(id_of: Callable[[Any], str], record: Any) -> str:
    try:
        return id_of(record)
    except _SHAPE_ERRORS:
        return ""


def json_head(data: bytes, size: int = 65536) -> str:
    """The start of a JSON/JSON Lines file as text for sniffing, or "" if it does not look like JSON."""
    head = data[:size].decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
    return head if head[:1] in ("[", "{") else ""


def iter_json_records(data: bytes, paths: Sequence[tuple[str, ...]]) -> Iterator[tuple[int, Any]]:
    """(record number, record) from a JSON document or JSON Lines; paths locate the list in a wrapper.

    Whole-file problems raise FileError here, at call time, not on first iteration.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileError("bad_encoding", "JSON must be UTF-8") from None
    if not text.strip():
        raise FileError("empty_file", "the file is empty")
    try:
        document = _loads(text)
    except json.JSONDecodeError as exc:
        return _json_lines(text, exc)
    return enumerate(_unwrap(document, paths), start=1)


def _unwrap(document: Any, paths: Sequence[tuple[str, ...]]) -> list[Any]:
    if isinstance(document, list):
        return document
    if not isinstance(document, dict):
        raise FileError("bad_json", "expected a JSON object or list")
    for path in paths:
        node: Any = document
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, list):
            return node
        if isinstance(node, dict) and path:
            return [node]
    return [document]


def _loads(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # orjson refuses integers beyond 64 bits and NaN; the stdlib does not


def _json_lines(text: str, document_error: json.JSONDecodeError) -> Iterator[tuple[int, Any]]:
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), 0)
    try:
        first_record = _loads(lines[first])
    except json.JSONDecodeError:
        first_record = None
    if not isinstance(first_record, dict):
        # Neither one JSON document nor JSON Lines: report where the whole-document parse failed.
        error = document_error
        raise FileError("bad_json", f"not JSON: {error.msg}", line=error.lineno, column=error.colno)
    return _json_line_records(lines)


def _json_line_records(lines: list[str]) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, _loads(line)
        except json.JSONDecodeError:
            yield number, RowError("json", "invalid JSON on this line")


def obj(value: Any) -> dict[str, Any]:
    """The value if it is a JSON object, else an empty one (absent and null sub-objects are common)."""
    return value if isinstance(value, dict) else {}


def seq(value: Any) -> list[Any]:
    """The value if it is a JSON list, else an empty one."""
    return value if isinstance(value, list) else []


def text(value: Any) -> str:
    """A JSON scalar as stripped text; integral numbers without ".0" so ids stay exact."""
    if type(value) is str:  # the common case first: it is called for nearly every field of every record
        return value.strip()
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


_SCIENTIFIC = re.compile(r"\d(\.\d+)?[eE]\+\d+")


def require_id(value: Any, field_name: str) -> str:
    """An order id as a string; floats are refused because they have already lost digits."""
    if isinstance(value, float):
        raise RowError(field_name, "id must be a string or integer, not a decimal number", value)
    result = text(value)
    if not result:
        raise RowError(field_name, "missing", value)
    if _SCIENTIFIC.fullmatch(result):
        # Excel turned a long id into 3.01235E+18 when someone opened and re-saved the CSV: digits are lost.
        raise RowError(field_name, "id was mangled into scientific notation by a spreadsheet program", value)
    return result


def discount_codes(entries: Any, path: str, amount_field: str) -> list[tuple[str, int]]:
    """(code, fen) pairs from a platform's list of discount/coupon objects, skipping blank codes."""
    return [
        (text(obj(d).get("code")), to_fen(obj(d).get(amount_field), f"{path}[{i}].{amount_field}"))
        for i, d in enumerate(seq(entries))
        if text(obj(d).get("code"))
    ]


def round_div(amount: int, count: int) -> int:
    """amount / count rounded half up (for unit prices derived from line totals)."""
    return (2 * amount + count) // (2 * count)


def latest(*times: datetime | None) -> datetime:
    """The latest of the given times (at least one must be set)."""
    return max(t for t in times if t is not None)


def default_paid(status: str, total: int) -> int:
    """What the buyer paid when the source does not say: everything once paid, nothing before."""
    return total if status in PAID_STATUSES or status == "refunded" else 0


def refund_status(status: str, paid: int, refunded: int) -> str:
    """Upgrade a paid-like status when money went back; sources rarely say "partially refunded" outright."""
    if refunded <= 0 or status not in PAID_STATUSES:
        return status
    return "refunded" if paid and refunded >= paid else "partially_refunded"


def to_utc_naive_time(value: Any, field_name: str, *, required: bool = True) -> datetime | None:
    """Parse a time whose naive form means UTC (WooCommerce *_gmt fields), unlike to_time's Shanghai."""
    if isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return to_time(value, field_name, required=required)


def utm_from_url(url: str) -> dict[str, str]:
    """utm_* query parameters of a landing URL, keys lower-cased."""
    if not url or "utm_" not in url.lower():
        return {}
    query = urlsplit(url).query if "?" in url else url.lstrip("?&")
    return {k.lower(): v for k, v in parse_qsl(query) if k.lower().startswith("utm_") and v}


_PROVINCES = (
    "北京",
    "天津",
    "上海",
    "重庆",
    "河北",
    "山西",
    "辽宁",
    "吉林",
    "黑龙江",
    "江苏",
    "浙江",
    "安徽",
    "福建",
    "江西",
    "山东",
    "河南",
    "湖北",
    "湖南",
    "广东",
    "海南",
    "四川",
    "贵州",
    "云南",
    "陕西",
    "甘肃",
    "青海",
    "台湾",
    "内蒙古",
    "广西",
    "西藏",
    "宁夏",
    "新疆",
    "香港",
    "澳门",
)
_MUNICIPALITIES = frozenset({"北京", "天津", "上海", "重庆"})
_PROVINCE_SUFFIX = re.compile(r"^(省|市|特别行政区|壮族自治区|回族自治区|维吾尔自治区|自治区)")
_CITY = re.compile(r"^(.+?(?:自治州|地区|盟|市))")


def short_province(name: str) -> str:
    """ "浙江省" → "浙江", "广西壮族自治区" → "广西"; unknown names pass through stripped."""
    name = name.strip()
    return next((p for p in _PROVINCES if name.startswith(p)), name)


def short_city(name: str) -> str:
    """ "杭州市" → "杭州"; prefectures such as "恩施土家族苗族自治州" keep their full name."""
    name = name.strip()
    return name[:-1] if name.endswith("市") and len(name) > 2 else name


def split_address(address: str) -> tuple[str, str]:
    """(province, city) from the start of a Chinese address, spaced ("浙江省 杭州市 …") or not."""
    address = address.strip()
    province = next((p for p in _PROVINCES if address.startswith(p)), "")
    if not province:
        return "", ""
    if province in _MUNICIPALITIES:
        return province, province
    rest = address[len(province) :]
    rest = _PROVINCE_SUFFIX.sub("", rest).strip()
    if not rest:
        return province, ""
    # Exports usually space the parts; without spaces only a suffix (市, 自治州, …) marks where the city ends.
    token = rest.split()[0] if " " in address.strip() else rest
    match = _CITY.match(token)
    if match:
        token = match.group(1)
    elif " " not in address.strip():
        token = ""
    return province, short_city(token)


def person_name(first: str, last: str) -> str:
    """A display name from Western-style fields; Chinese names read family name first, unspaced."""
    first, last = first.strip(), last.strip()
    if first and last and all("\u4e00" <= ch <= "\u9fff" for ch in first + last):
        return last + first
    return f"{first} {last}".strip()
