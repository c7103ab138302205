"""Order file parsers, part 3: shequn's own format, product files and shared helpers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shequn.commerce.canonical import OrderIn, ParsedRow, ProductIn, RowError
from shequn.commerce.sources import order_from_dict, parse_orders, parse_products
from shequn.commerce.sources.base import split_address, utm_from_url
from shequn.commerce.sources.tabular import read_table

FIXTURES = Path(__file__).parent.parent / "fixtures" / "orders"


def load(name: str) -> list[ParsedRow]:
    return list(parse_orders((FIXTURES / name).read_bytes(), name, source=None, shop_id="shop-1"))


def order(row: ParsedRow) -> OrderIn:
    assert row.error is None, row.error
    assert isinstance(row.item, OrderIn)
    return row.item


def error(row: ParsedRow) -> tuple[int, str, str]:
    assert row.error is not None and row.item is None
    return row.row, row.error.field, row.source_order_id


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# ---- shequn -----------------------------------------------------------------------------------------


def test_shequn_json() -> None:
    rows = load("shequn_orders.json")
    first = order(rows[0])
    assert (first.source, first.shop_id, first.source_order_id, first.status, first.currency) == (
        "shequn",
        "shop-1",
        "SQ-0001",
        "paid",
        "CNY",
    )
    assert (first.total, first.subtotal, first.discount, first.paid) == (12800, 13800, 1000, 12800)
    assert first.created_at == utc("2025-11-10T16:05:00")
    assert first.source_updated_at == utc("2025-11-10T16:07:00")
    assert [(li.sku, li.total, li.category) for li in first.line_items] == [
        ("SKU-001", 9900, "护肤"),
        ("SKU-002", 3900, ""),
    ]
    assert first.customer is not None
    [identity] = first.customer.identities
    assert (identity.source, identity.kind, identity.followers, identity.verified) == (
        "wechat",
        "unionid",
        12,
        True,
    )
    assert first.customer.email == "xh@example.com"
    assert first.attribution == {"utm_source": "wechat", "short_link_code": "abc"}
    assert first.discount_codes == [("D11", 1000)]
    assert error(rows[1]) == (2, "line_items[1].quantity", "SQ-0002")
    assert error(rows[2]) == (3, "total", "SQ-0003")


def test_shequn_csv() -> None:
    rows = load("shequn_orders.csv")
    assert [r.row for r in rows] == [2, 4, 6]
    first = order(rows[0])
    assert (first.source_order_id, first.status, first.total, first.paid) == (
        "SQ-1001",
        "completed",
        25000,
        25000,
    )
    assert [(li.sku, li.quantity, li.unit_price, li.total) for li in first.line_items] == [
        ("SKU-001", 2, 10000, 20000),
        ("SKU-002", 1, 5000, 5000),
    ]
    assert first.source_updated_at == utc("2025-11-11T16:00:00")
    assert first.customer is not None
    assert [(i.source, i.kind, i.value) for i in first.customer.identities] == [("shequn", "customer_id", "U-1")]
    assert order(rows[1]).customer is None
    assert error(rows[2]) == (6, "quantity", "SQ-1003")  # second line of SQ-1003, named by its column


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"source_order_id": ""}, "source_order_id"),
        ({"source_order_id": 1.5}, "source_order_id"),
        ({"status": "shipping"}, "status"),
        ({"total": -1}, "total"),
        ({"total": "12.30"}, "total"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"currency": "RMB1"}, "currency"),
        (
            {"line_items": [{"sku": "a", "unit_price": 1}, {"sku": "b", "unit_price": -5}]},
            "line_items[1].unit_price",
        ),
        ({"line_items": "nope"}, "line_items"),
        ({"customer": {"identities": [{"kind": "nick", "value": "x"}]}}, "customer.identities[0].kind"),
        ({"discount_codes": [{"amount": 5}]}, "discount_codes[0].code"),
    ],
)
def test_order_from_dict_errors(patch: dict[str, object], field: str) -> None:
    base = {"source_order_id": "A1", "status": "paid", "total": 100, "created_at": "2025-11-11T00:00:00Z"}
    with pytest.raises(RowError) as info:
        order_from_dict({**base, **patch}, default_source="api", shop_id="s")
    assert info.value.field == field


def test_order_from_dict_defaults() -> None:
    result = order_from_dict(
        {"source_order_id": 123, "status": "refunded", "total": 500, "created_at": "2025-11-11 00:05:00"},
        default_source="api",
        shop_id="s",
    )
    assert (result.source, result.shop_id, result.source_order_id) == ("api", "s", "123")
    assert (result.paid, result.refunded, result.currency) == (500, 500, "CNY")
    assert result.source_updated_at == result.created_at == utc("2025-11-10T16:05:00")


# ---- products ---------------------------------------------------------------------------------------


def test_products_csv() -> None:
    rows = list(parse_products((FIXTURES / "products.csv").read_bytes(), "products.csv"))
    assert isinstance(rows[0].item, ProductIn)
    assert rows[0].item == ProductIn(
        sku="SKU-001", title="保湿面霜 50ml", price=9900, category="护肤", tags=["新品", "爆款", "双11"]
    )
    assert isinstance(rows[1].item, ProductIn) and rows[1].item.price == 1950
    assert [(r.row, r.error.field) for r in rows if r.error] == [(4, "title"), (5, "price")]


def test_products_json() -> None:
    data = json.dumps(
        {
            "products": [
                {"sku": "A", "title": "a", "price_fen": 1230, "tags": ["x", "x", "y"]},
                {"sku": "B", "title": "b", "price": "9.9"},
            ]
        }
    ).encode()
    items = [r.item for r in parse_products(data, "p.json")]
    assert items == [
        ProductIn(sku="A", title="a", price=1230, tags=["x", "y"]),
        ProductIn(sku="B", title="b", price=990),
    ]


# ---- helpers ----------------------------------------------------------------------------------------


def test_read_table_counts_spreadsheet_rows() -> None:
    data = b'a , b\n1,"two\nlines"\n\n3,4\n'
    headers, rows = read_table(data, "x.csv")
    assert headers == ["a", "b"]
    assert list(rows) == [(2, {"a": "1", "b": "two\nlines"}), (4, {"a": "3", "b": "4"})]


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("浙江省 杭州市 西湖区 文三路", ("浙江", "杭州")),
        ("浙江省杭州市西湖区文三路", ("浙江", "杭州")),
        ("北京 北京市 朝阳区", ("北京", "北京")),
        ("内蒙古自治区 呼和浩特市 新城区", ("内蒙古", "呼和浩特")),
        ("新疆维吾尔自治区乌鲁木齐市", ("新疆", "乌鲁木齐")),
        ("香港特别行政区 九龙", ("香港", "九龙")),
        ("浙江省杭州市西湖区 文三路1号", ("浙江", "杭州")),
        ("湖北省恩施土家族苗族自治州恩施市", ("湖北", "恩施土家族苗族自治州")),
        ("somewhere else", ("", "")),
    ],
)
def test_split_address(address: str, expected: tuple[str, str]) -> None:
    assert split_address(address) == expected


def test_utm_from_url() -> None:
    assert utm_from_url("/p?UTM_Source=wx&x=1&utm_medium=") == {"utm_source": "wx"}
    assert utm_from_url("https://shop.example/") == {}


def test_scrub_raw_masks_phones_everywhere() -> None:
    from shequn.commerce.canonical import scrub_raw

    raw = {
        "联系手机": "'13800138000",
        "buyer_info": {"buyer_phone": "+86 139-1234-5678"},
        "收货地址": "上海市 浦东新区 世纪大道100号 电话13700001111",
        "total": "199.00",
        "tid": "E2026060112",
    }
    out = scrub_raw(raw)
    text = str(out)
    assert "13800138000" not in text and "13912345678" not in text and "13700001111" not in text
    assert out["联系手机"] == "138****8000" and out["total"] == "199.00" and out["tid"] == "E2026060112"
    assert "137****1111" in out["收货地址"]


def test_scrub_raw_keeps_what_can_be_stored_in_keys_lists_and_odd_text() -> None:
    from shequn.commerce.canonical import scrub_raw

    raw = {
        "备注13600001234": ["留言 13500005678", {"Mobile": "0571-8888 6666"}, 42, None, ""],
        "nul": "a\x00b",
        "surrogate": "x\ud800y 13400001234",
        "plain": "龙井 250g",
        "tel": 13300001234,  # a phone sent as a number
        "buyer": {"id": 18800001234, "qty": 2, "vip": True, "fax": 57188886666},
    }
    out = scrub_raw(raw)
    assert list(out) == ["备注136****1234", "nul", "surrogate", "plain", "tel", "buyer"]
    assert out["备注136****1234"] == ["留言 135****5678", {"Mobile": "057****6666"}, 42, None, ""]
    assert out["nul"] == "ab" and out["plain"] == "龙井 250g" and out["tel"] == "133****1234"
    assert out["buyer"] == {"id": "188****1234", "qty": 2, "vip": True, "fax": 57188886666}
    assert out["surrogate"] == "x?y 134****1234"
    assert raw["nul"] == "a\x00b"  # a copy: the parsed record is not changed
