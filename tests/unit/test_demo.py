"""The demo brand generator: deterministic, valid, seasonal, and shaped like a real brand's customers."""

from __future__ import annotations

import hashlib
import itertools
import statistics
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from shequn.commerce.canonical import ORDER_STATUSES, PAID_STATUSES, OrderIn
from shequn.commerce.demo import SHOPS, DemoSpec, demo_orders, demo_products, estimate_orders

CST = timezone(timedelta(hours=8))
SPEC = DemoSpec()  # 5,000 customers, 12 months ending 2026-11-01 (Asia/Shanghai)


@pytest.fixture(scope="module")
def orders() -> list[OrderIn]:
    return list(demo_orders(SPEC))


def _digest(spec: DemoSpec, n: int) -> str:
    return hashlib.sha256(repr(list(itertools.islice(demo_orders(spec), n))).encode()).hexdigest()


def _phone(order: OrderIn) -> str:
    assert order.customer is not None and order.customer.phone
    return order.customer.phone


def test_same_spec_same_bytes_and_seed_matters() -> None:
    spec = DemoSpec(customers=800)
    assert _digest(spec, 1500) == _digest(spec, 1500)
    assert _digest(spec, 1500) != _digest(DemoSpec(customers=800, seed=43), 1500)


def test_sizes_match_spec_and_estimate(orders: list[OrderIn]) -> None:
    assert len({_phone(o) for o in orders}) == SPEC.customers  # every customer orders at least once
    assert abs(len(orders) - estimate_orders(SPEC)) <= 0.15 * estimate_orders(SPEC)
    million = estimate_orders(DemoSpec(customers=1_000_000))
    assert million == pytest.approx(200 * estimate_orders(SPEC), rel=0.01)


def test_every_order_is_valid(orders: list[OrderIn]) -> None:
    start, end = datetime(2025, 11, 1, tzinfo=CST), SPEC.end
    ids: set[tuple[str, str]] = set()
    for o in orders:
        assert o.status in ORDER_STATUSES
        assert o.shop_id == SHOPS[o.source]
        assert o.currency in ("CNY", "USD") and (o.currency == "CNY" or o.source == "shopify")
        assert (o.source, o.source_order_id) not in ids
        ids.add((o.source, o.source_order_id))
        assert 1 <= len(o.line_items) <= 4
        for line in o.line_items:
            assert line.quantity >= 1 and line.unit_price > 0
            assert line.total == line.unit_price * line.quantity
        assert o.subtotal == sum(line.total for line in o.line_items)
        assert 0 <= o.discount <= o.subtotal and o.shipping >= 0
        assert o.total == o.subtotal - o.discount + o.shipping >= 0
        for t in (o.created_at, o.source_updated_at, o.paid_at):
            assert t is None or t.tzinfo is not None
        assert start <= o.created_at < end
        assert o.created_at <= o.source_updated_at <= end
        if o.status in PAID_STATUSES or o.status == "refunded":
            assert o.paid == o.total and o.paid_at is not None
            assert o.created_at < o.paid_at <= o.created_at + timedelta(minutes=11)
        else:
            assert o.paid == 0 and o.paid_at is None and o.refunded == 0
        if o.status == "refunded":
            assert o.refunded == o.paid
        elif o.status == "partially_refunded":
            assert 0 < o.refunded < o.paid
        else:
            assert o.refunded == 0
        assert o.customer is not None and o.customer.name and o.customer.city and o.customer.province


def test_id_formats(orders: list[OrderIn]) -> None:
    for o in orders:
        oid = o.source_order_id
        if o.source == "taobao":
            assert len(oid) == 19 and oid.isdigit()
        elif o.source == "youzan":
            local = o.created_at.astimezone(CST).strftime("%Y%m%d%H%M%S")
            assert oid.startswith("E" + local) and oid[1:].isdigit()
        else:
            assert oid.isdigit() and len(oid) == 13


def test_status_mix(orders: list[OrderIn]) -> None:
    counts = Counter(o.status for o in orders)
    assert counts["completed"] / len(orders) > 0.85
    assert 0.02 <= counts["refunded"] / len(orders) <= 0.04
    assert 0.01 <= (counts["closed"] + counts["cancelled"]) / len(orders) <= 0.03
    assert counts["partially_refunded"] > 0
    recent = SPEC.end - timedelta(days=8)
    assert all(o.created_at >= recent for o in orders if o.status in ("paid", "shipped"))
    assert any(o.status == "paid" for o in orders) and any(o.status == "shipped" for o in orders)


def test_stream_is_in_time_order(orders: list[OrderIn]) -> None:
    assert all(a.created_at <= b.created_at for a, b in itertools.pairwise(orders))


def test_seasonality(orders: list[OrderIn]) -> None:
    per_day = Counter(o.created_at.astimezone(CST).date() for o in orders)
    days = [date(2025, 11, 1) + timedelta(days=i) for i in range(365)]
    median = statistics.median(per_day[d] for d in days)

    def rate(first: date, last: date) -> float:
        span = [d for d in days if first <= d <= last]
        return sum(per_day[d] for d in span) / len(span)

    assert rate(date(2025, 11, 1), date(2025, 11, 11)) >= 2 * median  # 双11
    assert per_day[date(2025, 11, 11)] == max(per_day.values())
    assert rate(date(2026, 6, 1), date(2026, 6, 18)) > median  # 618
    assert rate(date(2025, 12, 10), date(2025, 12, 12)) > median  # 双12
    assert rate(date(2026, 1, 23), date(2026, 2, 12)) > 1.5 * median  # 春节 gifts (CNY 2026-02-17)
    assert rate(date(2026, 2, 17), date(2026, 3, 2)) < median  # the holiday lull
    hours = Counter(o.created_at.astimezone(CST).hour for o in orders)
    assert hours.most_common(1)[0][0] in (20, 21, 22, 23)
    assert hours[21] > 3 * hours[4]


def test_cross_store_customers_share_a_verified_phone(orders: list[OrderIn]) -> None:
    stores: dict[str, set[str]] = defaultdict(set)
    for o in orders:
        stores[_phone(o)].add(o.source)
    both = {p for p, s in stores.items() if {"taobao", "youzan"} <= s}
    assert 0.06 <= len(both) / SPEC.customers <= 0.10
    assert 0.02 <= sum("shopify" in s for s in stores.values()) / SPEC.customers <= 0.04
    for o in orders:
        assert o.customer is not None
        if o.source == "taobao":
            assert o.customer.phone_verified == (_phone(o) in both)  # receiver phone unless a Tmall member
        else:
            assert o.customer.phone_verified
        assert (o.customer.email is not None) == (o.source == "shopify")
        kinds = {(i.source, i.kind) for i in o.customer.identities}
        expected = {
            "taobao": {("taobao", "buyer_nick")},
            "youzan": {("youzan", "customer_id"), ("wechat", "unionid")},
            "shopify": {("shopify", "customer_id")},
        }[o.source]
        assert expected <= kinds


def test_identities_never_collide_across_customers(orders: list[OrderIn]) -> None:
    owner: dict[tuple[str, str, str], str] = {}
    for o in orders:
        assert o.customer is not None
        for ident in o.customer.identities:
            assert owner.setdefault((ident.source, ident.kind, ident.value), _phone(o)) == _phone(o)
    unionids = [k[2] for k in owner if k[1] == "unionid"]
    assert unionids and all(u.startswith("o") and len(u) == 28 for u in unionids)


def test_social_identities_with_heavy_tailed_followers(orders: list[OrderIn]) -> None:
    followers: dict[tuple[str, str], int] = {}
    social_customers = set()
    for o in orders:
        assert o.customer is not None
        for ident in o.customer.identities:
            if ident.kind == "handle":
                assert ident.source in ("weibo", "douyin", "xiaohongshu") and ident.followers is not None
                followers[(ident.source, ident.value)] = ident.followers
                social_customers.add(_phone(o))
    assert 0.2 <= len(social_customers) / SPEC.customers <= 0.3
    counts = list(followers.values())
    assert statistics.median(counts) < 500
    assert sum(c > 100_000 for c in counts) >= 2


def test_attribution_and_discounts(orders: list[OrderIn]) -> None:
    attributed = [o for o in orders if o.attribution]
    assert 0.15 <= len(attributed) / len(orders) <= 0.25
    for o in attributed:
        assert o.attribution["utm_source"] in ("wechat", "weibo", "douyin", "xiaohongshu")
        assert o.attribution["utm_medium"] == "social"
    assert any(o.attribution.get("utm_campaign") == "double11_2025" for o in attributed)
    on_11_11 = [o for o in orders if o.created_at.astimezone(CST).date() == date(2025, 11, 11)]
    double11 = [o for o in on_11_11 if o.source != "shopify"]
    assert any(o.discount >= 5000 for o in double11)  # 每满300减50
    assert all(o.discount >= o.subtotal // 30000 * 5000 for o in double11)
    assert any(o.discount_codes for o in orders if o.source == "shopify")


def test_customer_behaviour(orders: list[OrderIn]) -> None:
    per_customer = Counter(_phone(o) for o in orders)
    counts = Counter(per_customer.values())
    assert counts[1] / SPEC.customers > 0.5  # mostly one-time buyers
    assert max(per_customer.values()) >= 12  # and a few superfans
    assert Counter(len(o.line_items) for o in orders).most_common(1)[0][0] == 1
    lines = [line for o in orders for line in o.line_items]
    assert sum(line.quantity == 1 for line in lines) / len(lines) > 0.75


def test_products() -> None:
    products = demo_products(SPEC)
    assert 40 <= len(products) <= 60
    assert len({p.sku for p in products}) == len(products)
    categories = {"绿茶", "红茶", "乌龙茶", "普洱", "白茶", "花草茶", "茶具", "礼盒"}
    assert {p.category for p in products} == categories
    assert all(2990 <= p.price <= 129900 and p.tags for p in products)
    assert "TEA-LJ-250" in {p.sku for p in products}


def test_order_lines_use_catalogue_prices(orders: list[OrderIn]) -> None:
    catalogue = {p.sku: p for p in demo_products()}
    for o in orders[:3000]:
        for line in o.line_items:
            product = catalogue[line.sku]
            assert line.category == product.category and line.title == product.title
            if o.currency == "CNY":
                assert line.unit_price == product.price


def test_other_windows_and_validation() -> None:
    spec = DemoSpec(customers=300, months=3, seed=7, end=datetime(2025, 7, 1, 12, 30, tzinfo=UTC))
    got = list(demo_orders(spec))
    assert got and all(datetime(2025, 4, 1, tzinfo=CST) <= o.created_at < spec.end for o in got)
    assert len({_phone(o) for o in got}) == 300
    with pytest.raises(ValueError):
        DemoSpec(end=datetime(2026, 1, 1))  # naive
