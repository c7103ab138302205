"""Order file parsers, part 2: Youzan, Shopify and WooCommerce JSON, Shopify CSV."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from shequn.commerce.canonical import OrderIn, ParsedRow
from shequn.commerce.sources import parse_orders

FIXTURES = Path(__file__).parent.parent / "fixtures" / "orders"


def load(name: str, source: str | None = None) -> list[ParsedRow]:
    return list(parse_orders((FIXTURES / name).read_bytes(), name, source=source, shop_id="shop-1"))


def order(row: ParsedRow) -> OrderIn:
    assert row.error is None, row.error
    assert isinstance(row.item, OrderIn)
    return row.item


def error(row: ParsedRow) -> tuple[int, str, str]:
    assert row.error is not None and row.item is None
    return row.row, row.error.field, row.source_order_id


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# ---- Youzan -----------------------------------------------------------------------------------------


def test_youzan() -> None:
    rows = load("youzan_orders.json")
    first = order(rows[0])
    assert (first.source, first.source_order_id, first.shop_id, first.currency) == (
        "youzan",
        "E20251111000512345678",
        "160012345",
        "CNY",
    )
    assert first.status == "completed"
    assert (first.subtotal, first.shipping, first.discount, first.total, first.paid) == (
        12800,
        0,
        1000,
        11800,
        11800,
    )
    assert first.created_at == utc("2025-11-10T16:05:00")
    assert first.source_updated_at == utc("2025-11-15T00:00:00")
    assert [(li.sku, li.quantity, li.unit_price, li.total, li.source_line_id) for li in first.line_items] == [
        ("SKU-001", 1, 9900, 8900, "2951234567"),
        ("ITEM-9", 2, 1450, 2900, "2951234568"),
    ]
    customer = first.customer
    assert customer is not None
    assert [(i.source, i.kind, i.value, i.verified) for i in customer.identities] == [
        ("youzan", "customer_id", "yzOpen_abc123", True),
        ("wechat", "unionid", "oUnion_xyz789", True),
    ]
    assert (customer.phone, customer.phone_verified, customer.province, customer.city) == (
        "13800138000",
        True,
        "浙江",
        "杭州",
    )
    assert error(rows[1]) == (2, "order_info.status", "E20251111000599999999")
    refunded = order(rows[2])  # an unwrapped record, TRADE_CLOSED with refund_state 12
    assert (refunded.status, refunded.paid, refunded.refunded, refunded.shop_id) == (
        "refunded",
        5900,
        5900,
        "shop-1",
    )
    assert refunded.customer is not None and refunded.customer.identities == []  # fans_id 0 is nobody


def test_youzan_json_lines_and_bad_line() -> None:
    record = {
        "order_info": {"tid": "T1", "status": "WAIT_BUYER_PAY", "created": "2025-11-11 00:05:00"},
        "pay_info": {"payment": "1.00"},
    }
    data = (json.dumps(record) + "\n\n{broken\n" + json.dumps({"full_order_info": record}) + "\n").encode()
    rows = list(parse_orders(data, "x.jsonl", source="youzan"))
    assert [r.row for r in rows] == [1, 3, 4]
    assert (order(rows[0]).status, order(rows[0]).paid, order(rows[0]).total) == ("pending_payment", 0, 100)
    assert rows[1].error is not None and rows[1].error.field == "json"
    assert order(rows[2]).source_order_id == "T1"


# ---- Shopify ----------------------------------------------------------------------------------------


def test_shopify_json() -> None:
    rows = load("shopify_orders.json")
    first = order(rows[0])
    assert first.source_order_id == "5123456789012345678"  # 19 digits survive JSON parsing exactly
    assert (first.status, first.currency) == ("shipped", "USD")
    assert (first.subtotal, first.discount, first.shipping, first.total, first.paid, first.refunded) == (
        9990,
        1000,
        2000,
        10990,
        10990,
        0,
    )
    assert first.created_at == utc("2025-11-10T16:05:00")
    assert first.source_updated_at == utc("2025-11-12T01:00:00")
    assert first.discount_codes == [("DOUBLE11", 1000)]
    assert first.attribution == {"utm_source": "WeChat", "utm_medium": "social", "utm_campaign": "1111"}
    assert [(li.sku, li.quantity, li.unit_price, li.total) for li in first.line_items] == [
        ("SKU-001", 2, 3995, 6990),
        ("SKU-002", 1, 2000, 2000),
    ]
    customer = first.customer
    assert customer is not None
    assert [(i.kind, i.value, i.verified) for i in customer.identities] == [
        ("customer_id", "7012345678901", True),
        ("email", "alice@example.com", True),
    ]
    assert (customer.phone, customer.phone_verified, customer.name) == ("+8613800138000", True, "Alice Wang")
    partial = order(rows[1])
    assert (partial.status, partial.paid, partial.refunded) == ("partially_refunded", 5000, 1550)
    assert order(rows[2]).status == "cancelled"
    assert error(rows[3]) == (4, "line_items[1].quantity", "5123456789012345681")


def test_shopify_single_order_and_unknown_status() -> None:
    single = {
        "order": {
            "id": 1,
            "financial_status": "paid",
            "fulfillment_status": "fulfilled",
            "closed_at": "2025-11-20T00:00:00Z",
            "total_price": "1.00",
            "created_at": "2025-11-11T00:00:00Z",
        }
    }
    [row] = parse_orders(json.dumps(single).encode(), "o.json", source=None)
    assert (order(row).status, order(row).currency, order(row).paid) == ("completed", "CNY", 100)
    bad = [{"id": 2, "financial_status": "mystery", "total_price": "1.00", "created_at": "2025-11-11T00:00:00Z"}]
    [row] = parse_orders(json.dumps(bad).encode(), "o.json", source="shopify")
    assert error(row) == (1, "financial_status", "2")


def test_shopify_csv_groups_line_items() -> None:
    rows = load("shopify_orders.csv")
    assert [r.row for r in rows] == [2, 5, 7]
    first = order(rows[0])
    assert first.source_order_id == "5987654321098765432"  # the Id column, not the Name
    assert (first.status, first.subtotal, first.shipping, first.discount, first.total, first.paid) == (
        "shipped",
        29800,
        1000,
        2000,
        28800,
        28800,
    )
    assert [(li.sku, li.quantity, li.unit_price, li.total) for li in first.line_items] == [
        ("SKU-001", 2, 9900, 19800),
        ("SKU-002", 1, 5000, 5000),
        ("SKU-003", 1, 5000, 5000),
    ]
    assert first.discount_codes == [("VIP20", 2000)]
    assert first.created_at == utc("2025-11-10T16:05:00")
    assert first.customer is not None and first.customer.email == "bob@example.com"
    pending = order(rows[1])
    assert (pending.source_order_id, pending.status, pending.paid) == ("#1002", "pending_payment", 0)
    # the bad quantity is on the order's second line: the error points at that spreadsheet row
    assert error(rows[2]) == (7, "Lineitem quantity", "#1003")


# ---- WooCommerce ------------------------------------------------------------------------------------


def test_woocommerce() -> None:
    rows = load("woocommerce_orders.json")
    first = order(rows[0])
    assert (first.source_order_id, first.status, first.currency) == ("727", "paid", "CNY")
    # *_gmt times are naive UTC: not shifted by eight hours
    assert first.created_at == utc("2025-11-10T16:05:00")
    assert first.paid_at == utc("2025-11-10T16:05:30")
    assert first.source_updated_at == utc("2025-11-10T16:06:00")
    assert (first.subtotal, first.discount, first.shipping, first.total, first.paid) == (
        10000,
        1000,
        800,
        9800,
        9800,
    )
    assert [(li.sku, li.quantity, li.unit_price, li.total) for li in first.line_items] == [("SKU-001", 3, 3333, 9000)]
    assert first.discount_codes == [("double11", 1000)]
    assert first.attribution == {"utm_source": "wechat", "utm_campaign": "1111"}
    customer = first.customer
    assert customer is not None
    assert customer.identities == []  # customer_id 0 is a guest
    assert (customer.name, customer.email, customer.phone_verified, customer.province, customer.city) == (
        "王明",
        "wang@example.com",
        False,
        "浙江",
        "杭州",
    )
    second = order(rows[1])
    # no *_gmt: the site-local time is read as Shanghai
    assert second.created_at == utc("2025-11-12T02:00:00")
    assert (second.status, second.paid, second.refunded) == ("partially_refunded", 6000, 1000)
    assert second.customer is not None
    assert [(i.source, i.kind, i.value) for i in second.customer.identities] == [("woocommerce", "customer_id", "42")]
    assert error(rows[2]) == (3, "status", "729")
