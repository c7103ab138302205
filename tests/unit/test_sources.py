"""Order file parsers, part 1: spreadsheets (Taobao CSV/XLSX), detection and whole-file errors."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pytest

from shequn.commerce.canonical import OrderIn, ParsedRow
from shequn.commerce.sources import SOURCES, FileError, detect_source, parse_orders
from shequn.commerce.sources.taobao import map_status

FIXTURES = Path(__file__).parent.parent / "fixtures" / "orders"


def load(name: str, source: str | None = None) -> list[ParsedRow]:
    return list(parse_orders((FIXTURES / name).read_bytes(), name, source=source, shop_id="shop-1"))


def order(row: ParsedRow) -> OrderIn:
    assert row.error is None, row.error
    assert isinstance(row.item, OrderIn)
    return row.item


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# ---- Taobao CSV -------------------------------------------------------------------------------------


def test_taobao_fixture_is_really_gbk() -> None:
    data = (FIXTURES / "taobao_orders.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert "订单编号" in data.decode("gbk")


def test_taobao_csv_rows_and_errors() -> None:
    rows = load("taobao_orders.csv")
    assert [r.row for r in rows] == [2, 3, 4, 5, 6, 7, 8]
    errors = {r.row: (r.error.field, r.error.reason, r.source_order_id) for r in rows if r.error}
    assert errors == {
        4: ("订单状态", "unknown order status '神秘状态'", "3012345678901234569"),
        5: ("买家应付货款", "negative amount", "3012345678901234570"),
    }


def test_taobao_csv_first_order() -> None:
    first = order(load("taobao_orders.csv")[0])
    assert first.source == "taobao"
    assert first.shop_id == "shop-1"
    assert first.source_order_id == "3012345678901234567"  # 19 digits, exact, a string
    assert first.status == "completed"
    assert first.currency == "CNY"
    assert (first.subtotal, first.shipping, first.total, first.paid, first.refunded) == (
        19900,
        1000,
        20900,
        20900,
        0,
    )
    assert first.created_at == utc("2025-11-10T16:05:00")  # 2025-11-11 00:05:00 Shanghai
    assert first.paid_at == utc("2025-11-10T16:06:30")
    assert first.source_updated_at == first.paid_at
    [line] = first.line_items
    assert (line.sku, line.title, line.quantity, line.unit_price, line.total) == (
        "SKU-001",
        "保湿面霜 50ml, 赠小样",
        2,
        9950,
        19900,
    )
    customer = first.customer
    assert customer is not None
    [identity] = customer.identities
    assert (identity.source, identity.kind, identity.value, identity.verified) == (
        "taobao",
        "buyer_nick",
        "小明爱买",
        True,
    )
    assert customer.phone == "13800138000"  # leading apostrophe stripped
    assert customer.phone_verified is False  # the receiver's phone
    assert (customer.name, customer.province, customer.city) == ("张三", "浙江", "杭州")
    assert first.raw["订单编号"] == "3012345678901234567"


def test_taobao_csv_other_statuses_and_shop_override() -> None:
    rows = load("taobao_orders.csv")
    pending, duplicate, paid, refunded = (order(rows[i]) for i in (1, 4, 5, 6))
    assert (pending.status, pending.paid, pending.paid_at) == ("pending_payment", 0, None)
    assert pending.customer is not None
    assert (pending.customer.province, pending.customer.city) == ("上海", "上海")
    assert duplicate.source_order_id == "3012345678901234567"  # duplicates are the importer's business
    assert (paid.status, paid.shop_id, paid.line_items[0].unit_price) == ("paid", "shop-99", 3333)
    assert (refunded.status, refunded.refunded, refunded.paid) == ("refunded", 5000, 5000)


def test_taobao_missing_order_id_column() -> None:
    with pytest.raises(FileError) as info:
        load("taobao_missing_id.csv")
    assert info.value.code == "missing_columns"
    assert info.value.params == {"columns": ["订单编号"]}


def test_taobao_id_mangled_by_excel() -> None:
    text = "订单编号,订单状态,订单创建时间,总金额\n3.01235E+18,交易成功,2025-11-11 00:05:00,1.00\n"
    data = text.encode("gbk")
    [row] = parse_orders(data, "x.csv", source="taobao")
    assert row.error is not None and row.error.field == "订单编号"


def test_taobao_utf8_bom_and_tabs() -> None:
    text = '订单编号 \t订单状态\t订单创建时间\t总金额\n="3012345678901234599"\t交易成功\t2025-11-11 00:05:00\t1.00\n'
    rows = list(parse_orders(text.encode("utf-8-sig"), "x.csv", source="taobao"))
    assert order(rows[0]).source_order_id == "3012345678901234599"
    assert order(rows[0]).total == 100
    assert order(rows[0]).shop_id == "default"


@pytest.mark.parametrize(
    ("word", "paid", "refunded", "expected"),
    [
        ("等待买家付款", 0, 0, "pending_payment"),
        ("买家已付款，等待卖家发货", 100, 0, "paid"),
        ("买家已付款,等待卖家发货", 100, 0, "paid"),
        ("等待卖家发货", 100, 0, "paid"),
        ("卖家已发货，等待买家确认", 100, 0, "shipped"),
        ("交易成功", 100, 0, "completed"),
        ("交易成功", 100, 30, "partially_refunded"),
        ("交易关闭", 0, 0, "closed"),
        ("交易关闭", 100, 100, "refunded"),
        ("付款以前，卖家或买家主动关闭交易", 0, 0, "cancelled"),
        ("退款中", 100, 0, "partially_refunded"),
        ("交易关闭(退款成功)", 100, 0, "refunded"),
    ],
)
def test_taobao_status_map(word: str, paid: int, refunded: int, expected: str) -> None:
    assert map_status(word, paid, refunded) == expected


# ---- Taobao XLSX ------------------------------------------------------------------------------------


def _taobao_xlsx() -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(
        [
            "订单编号 ",
            "买家会员名 ",
            "买家应付货款",
            "买家应付邮费",
            "总金额",
            "买家实际支付金额",
            "订单状态 ",
            "收货地址 ",
            "联系手机",
            "订单创建时间",
            "订单付款时间",
            "宝贝标题",
            "宝贝总数量",
            "商家编码",
        ]
    )
    sheet.append(
        [
            "3012345678901234601",
            "xlsx买家",
            88.8,
            0,
            88.8,
            88.8,
            "卖家已发货，等待买家确认",
            "四川省成都市武侯区",
            "'13800000000",
            datetime(2025, 11, 11, 0, 5),
            "2025-11-11 00:06:00",
            "面霜",
            2,
            "SKU-X",
        ]
    )
    sheet.append([None] * 14)
    sheet.append(["3012345678901234602", "b2", 10, 0, 10, 10, "交易成功", "", "", "not a time", "", "x", 1, ""])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_taobao_xlsx() -> None:
    data = _taobao_xlsx()
    assert detect_source(data, "export.xlsx") == "taobao"
    rows = list(parse_orders(data, "export.xlsx", source=None, shop_id="s"))
    assert [r.row for r in rows] == [2, 4]  # the blank spreadsheet row 3 is skipped but still counted
    first = order(rows[0])
    assert first.source_order_id == "3012345678901234601"
    assert (first.status, first.total, first.paid) == ("shipped", 8880, 8880)
    assert first.line_items[0].unit_price == 4440
    assert first.created_at == utc("2025-11-10T16:05:00")
    assert first.customer is not None
    assert (first.customer.province, first.customer.city, first.customer.phone) == (
        "四川",
        "成都",
        "13800000000",
    )
    assert rows[1].error is not None
    assert (rows[1].error.field, rows[1].error.reason) == ("订单创建时间", "not a date/time")


# ---- whole-file problems and detection --------------------------------------------------------------


def test_utf16_file_is_bad_encoding() -> None:
    data = (FIXTURES / "utf16.csv").read_bytes()
    for source in (None, "taobao", "shopify", "shequn"):
        with pytest.raises(FileError) as info:
            list(parse_orders(data, "utf16.csv", source=source))
        assert info.value.code == "bad_encoding"


def test_non_json_file() -> None:
    data = (FIXTURES / "not_json.json").read_bytes()
    for source in ("youzan", "woocommerce"):
        with pytest.raises(FileError) as info:
            parse_orders(data, "not_json.json", source=source)  # raised on call, before iteration
        assert info.value.code == "bad_json"
    with pytest.raises(FileError) as info:
        parse_orders(data, "not_json.json", source=None)
    assert info.value.code == "unsupported_format"


def test_broken_json_document_is_bad_json() -> None:
    with pytest.raises(FileError) as info:
        parse_orders(b'{"orders": [1, 2', "x.json", source="shopify")
    assert info.value.code == "bad_json"
    assert info.value.params["line"] == 1


def test_empty_and_unknown() -> None:
    for data in (b"", b"\r\n\r\n"):
        with pytest.raises(FileError) as info:
            parse_orders(data, "x.csv", source="taobao")
        assert info.value.code == "empty_file"
    with pytest.raises(FileError) as info:
        parse_orders(b"a,b\n1,2\n", "x.csv", source=None)
    assert info.value.code == "unsupported_format"
    with pytest.raises(FileError) as info:
        parse_orders(b"a,b\n1,2\n", "x.csv", source="jd")
    assert info.value.code == "unsupported_format"


def test_bad_xlsx() -> None:
    with pytest.raises(FileError) as info:
        parse_orders(b"PK\x03\x04garbage", "x.xlsx", source="taobao")
    assert info.value.code == "bad_xlsx"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("taobao_orders.csv", "taobao"),
        ("taobao_missing_id.csv", "taobao"),
        ("youzan_orders.json", "youzan"),
        ("shopify_orders.json", "shopify"),
        ("shopify_orders.csv", "shopify"),
        ("woocommerce_orders.json", "woocommerce"),
        ("shequn_orders.json", "shequn"),
        ("shequn_orders.csv", "shequn"),
        ("products.csv", None),
        ("not_json.json", None),
    ],
)
def test_detect_source(name: str, expected: str | None) -> None:
    assert detect_source((FIXTURES / name).read_bytes(), name) == expected


def test_registry() -> None:
    assert list(SOURCES) == ["taobao", "youzan", "shopify", "woocommerce", "shequn"]
    assert all(source.name == key for key, source in SOURCES.items())
