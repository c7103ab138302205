"""Order file parsers: pure functions from bytes to canonical ParsedRows (no database)."""

from __future__ import annotations

from collections.abc import Iterator

from shequn.commerce.canonical import ParsedRow
from shequn.commerce.sources.base import FileError, OrderSource, json_head
from shequn.commerce.sources.products import parse_products
from shequn.commerce.sources.shequn import ShequnSource, order_from_dict
from shequn.commerce.sources.shopify import ShopifySource
from shequn.commerce.sources.tabular import decode_text, is_xlsx
from shequn.commerce.sources.taobao import TaobaoSource
from shequn.commerce.sources.woocommerce import WooCommerceSource
from shequn.commerce.sources.youzan import YouzanSource

# Detection tries these in order; the markers are disjoint, but the most specific go first anyway.
SOURCES: dict[str, OrderSource] = {
    "taobao": TaobaoSource(),
    "youzan": YouzanSource(),
    "shopify": ShopifySource(),
    "woocommerce": WooCommerceSource(),
    "shequn": ShequnSource(),
}

__all__ = [
    "SOURCES",
    "FileError",
    "OrderSource",
    "detect_source",
    "order_from_dict",
    "parse_orders",
    "parse_products",
]


def detect_source(data: bytes, filename: str) -> str | None:
    """The name of the first source whose sniff accepts the file, or None."""
    return next((name for name, source in SOURCES.items() if source.sniff(data, filename)), None)


def parse_orders(data: bytes, filename: str, *, source: str | None, shop_id: str = "default") -> Iterator[ParsedRow]:
    """Parse an order file with the named source, detecting it when source is None."""
    name = source or detect_source(data, filename)
    if name is None:
        if not is_xlsx(data) and not json_head(data):
            decode_text(data)  # an undecodable text file says bad_encoding, which the user can act on
        raise FileError("unsupported_format", "not a recognised order export", filename=filename)
    if name not in SOURCES:
        raise FileError("unsupported_format", f"unknown source {name!r}", source=name, known=list(SOURCES))
    return SOURCES[name].parse(data, filename, shop_id=shop_id)
