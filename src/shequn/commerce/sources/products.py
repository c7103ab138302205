"""Product catalogue files: CSV/XLSX with Chinese or English headers, or JSON."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from shequn.commerce.canonical import ParsedRow, ProductIn, RowError, to_fen
from shequn.commerce.sources.base import iter_json_records, json_head, obj, text
from shequn.commerce.sources.shequn import fen
from shequn.commerce.sources.tabular import read_table, require_columns

# canonical column → accepted header spellings (compared case-insensitively)
ALIASES: dict[str, tuple[str, ...]] = {
    "sku": ("sku", "商家编码", "货号", "商品编码"),
    "title": ("title", "name", "名称", "商品名称", "宝贝标题"),
    "category": ("category", "类目", "分类"),
    "price": ("price", "价格", "售价"),
    "price_fen": ("price_fen",),
    "tags": ("tags", "标签"),
}
_TAG_SPLIT = re.compile(r"[,，、;；]")


def parse_products(data: bytes, filename: str) -> Iterator[ParsedRow]:
    """One ParsedRow per product (item=ProductIn) or bad row; raises FileError for whole-file problems."""
    if json_head(data):
        records: Iterable[tuple[int, Any]] = iter_json_records(data, (("products",), ("data",)))
    else:
        headers, rows = read_table(data, filename)
        mapping = _column_map(headers)
        require_columns(mapping, ("sku", "title"))
        records = ((n, {key: row.get(header, "") for key, header in mapping.items()}) for n, row in rows)
    return _rows(records)


def _column_map(headers: list[str]) -> dict[str, str]:
    lowered = {h.lower(): h for h in headers}
    mapping = {}
    for key, names in ALIASES.items():
        header = next((lowered[n.lower()] for n in names if n.lower() in lowered), None)
        if header is not None:
            mapping[key] = header
    return mapping


def _rows(records: Iterable[tuple[int, Any]]) -> Iterator[ParsedRow]:
    for row, record in records:
        if isinstance(record, RowError):
            yield ParsedRow(row=row, error=record)
            continue
        item = obj(record)
        sku = text(item.get("sku"))
        try:
            yield ParsedRow(row=row, item=_product(item), source_order_id=sku)
        except RowError as exc:
            yield ParsedRow(row=row, error=exc, source_order_id=sku)


def _product(item: dict[str, Any]) -> ProductIn:
    sku = text(item.get("sku"))
    if not sku:
        raise RowError("sku", "missing")
    title = text(item.get("title")) or text(item.get("name"))
    if not title:
        raise RowError("title", "missing")
    if text(item.get("price_fen")):
        price = fen(item["price_fen"], "price_fen")
    else:
        price = to_fen(item.get("price"), "price")
    tags = item.get("tags")
    if isinstance(tags, list):
        tag_list = [text(t) for t in tags]
    else:
        tag_list = [t.strip() for t in _TAG_SPLIT.split(text(tags))]
    return ProductIn(
        sku=sku,
        title=title,
        price=price,
        category=text(item.get("category")),
        tags=[t for t in dict.fromkeys(tag_list) if t],  # de-duplicated, order kept
    )
