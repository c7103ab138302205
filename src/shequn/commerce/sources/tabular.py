"""CSV and XLSX reading shared by the spreadsheet sources: encoding detection, header cleanup, row numbers."""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, time
from functools import lru_cache
from typing import Any

from shequn.commerce.canonical import clean_text
from shequn.commerce.sources.base import FileError

Row = dict[str, str]
_XLSX_MAGIC = b"PK\x03\x04"
_SNIFF_BYTES = 65536


def is_xlsx(data: bytes, filename: str = "") -> bool:
    """XLSX is a zip file; trust the bytes over the name."""
    return data.startswith(_XLSX_MAGIC)


def decode_text(data: bytes) -> str:
    """Decode a CSV: UTF-8 (with or without BOM) strictly first, then GB18030 (a superset of GBK)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in data[:4096]:
        # UTF-16/32 (Excel's "Unicode text") is full of NULs that GB18030 would happily decode as garbage.
        raise FileError("bad_encoding", "the file is UTF-16; save it as CSV UTF-8 or the shop's GBK export")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise FileError("bad_encoding", "the file is neither UTF-8 nor GBK/GB18030") from None


def read_table(data: bytes, filename: str) -> tuple[list[str], Iterator[tuple[int, Row]]]:
    """(headers, rows) of a CSV or the first XLSX sheet; rows are (spreadsheet row number, cleaned values)."""
    raw_rows = _xlsx_rows(data) if is_xlsx(data, filename) else _csv_rows(decode_text(data))
    for number, header_row in enumerate(raw_rows, start=1):
        headers = [_header(cell) for cell in header_row]
        if any(headers):
            return headers, _dict_rows(headers, raw_rows, number)
    raise FileError("empty_file", "the file is empty or has no header row")


def peek_headers(data: bytes, filename: str) -> list[str]:
    """The header row for sniffing; [] when the file is not a readable table. Never raises."""
    try:
        return list(_peek(data[:_SNIFF_BYTES] if not is_xlsx(data) else data))
    except (FileError, csv.Error, zipfile.BadZipFile, OSError, KeyError, ValueError):
        return []


@lru_cache(maxsize=2)  # detection asks every source in turn; opening an XLSX once is enough
def _peek(data: bytes) -> tuple[str, ...]:
    if is_xlsx(data):
        rows: Iterator[Sequence[str]] = _xlsx_rows(data)
    else:
        try:
            text = decode_text(data)
        except FileError:
            # The sniff window can cut a multi-byte character in half; decode leniently for the header.
            text = data.decode("gb18030", errors="ignore")
        rows = _csv_rows(text)
    for row in rows:
        headers = tuple(_header(cell) for cell in row)
        if any(headers):
            return headers
    return ()


def require_columns(headers: Iterable[str], required: Sequence[str]) -> None:
    """Raise missing_columns naming every required column the file lacks."""
    present = set(headers)
    missing = [c for c in required if c not in present]
    if missing:
        raise FileError("missing_columns", "missing columns: " + ", ".join(missing), columns=missing)


def _header(cell: str) -> str:
    # Taobao headers carry trailing spaces; some exporters add a BOM to the first one.
    return cell.strip().lstrip("\ufeff").strip()


def _dict_rows(headers: list[str], rows: Iterator[Sequence[str]], number: int) -> Iterator[tuple[int, Row]]:
    pairs = [(i, h) for i, h in enumerate(headers) if h]  # trailing commas give nameless columns
    # number is the header's row; keep counting as a spreadsheet would
    for cells in rows:
        number += 1
        size = len(cells)
        record = {h: clean_text(cells[i]) if i < size else "" for i, h in pairs}
        if any(record.values()):  # blank lines are not records
            yield number, record


def _csv_rows(text: str) -> Iterator[list[str]]:
    first_line = text[: text.find("\n")] if "\n" in text else text
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    # Rows are counted per record, not per physical line: a quoted multi-line cell is one spreadsheet row.
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)


def _xlsx_rows(data: bytes) -> Iterator[list[str]]:
    import openpyxl  # only spreadsheet imports pay for loading it

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise FileError("bad_xlsx", f"cannot read the spreadsheet: {exc}") from None
    return _sheet_rows(workbook)


def _sheet_rows(workbook: Any) -> Iterator[list[str]]:
    try:
        sheet = workbook.worksheets[0]
        for values in sheet.iter_rows(values_only=True):
            yield [_cell(v) for v in values]
    finally:
        workbook.close()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def group_consecutive(rows: Iterable[tuple[int, Row]], key: str) -> Iterator[list[tuple[int, Row]]]:
    """Runs of consecutive rows sharing row[key] (one order spread over line-item rows)."""
    group: list[tuple[int, Row]] = []
    for number, row in rows:
        if group and row.get(key, "") != group[0][1].get(key, ""):
            yield group
            group = []
        group.append((number, row))
    if group:
        yield group
