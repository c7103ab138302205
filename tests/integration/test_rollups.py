"""Dashboard rollups agree with a direct computation over the orders, through updates and rebuilds."""

from __future__ import annotations

from collections import Counter
from zoneinfo import ZoneInfo

from sqlalchemy import select

from shequn.commerce import service as commerce_service
from shequn.commerce.canonical import PAID_STATUSES
from shequn.commerce.models import Order
from tests.conftest import Tenant
from tests.integration.test_commerce_api import order


def _direct(db, ws: int) -> tuple[dict[str, int], Counter, dict[str, int]]:
    db.expire_all()
    orders = list(db.scalars(select(Order).where(Order.workspace_id == ws)))
    paid = [o for o in orders if o.status in PAID_STATUSES]
    totals = {"orders": len(orders), "paid_orders": len(paid), "gmv": sum(o.paid - o.refunded for o in paid)}
    months: dict[str, int] = {}
    for o in paid:
        m = o.placed_at.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
        months[m] = months.get(m, 0) + o.paid - o.refunded
    return totals, Counter(o.status for o in orders), months


def test_rollups_follow_inserts_updates_and_day_changes(client, db, tenant: Tenant) -> None:
    h = tenant.headers("operator")
    batch = [
        order("R1", total=10000, created_at="2026-10-31T23:30:00+08:00", updated="2026-10-31T23:30:00+08:00"),
        order("R2", total=20000, created_at="2026-11-01T00:10:00+08:00", updated="2026-11-01T00:10:00+08:00"),
        order(
            "R3",
            total=5000,
            status="cancelled",
            created_at="2026-11-02T10:00:00+08:00",
            updated="2026-11-02T10:00:00+08:00",
        ),
    ]
    assert client.post("/api/v1/orders/batch", json={"orders": batch}, headers=h).status_code == 200
    # R1 is refunded later and R2 moves day (a corrected timestamp): both old and new days must change.
    client.post(
        "/api/v1/orders",
        json=order(
            "R1",
            total=10000,
            status="refunded",
            refunded=10000,
            created_at="2026-10-31T23:30:00+08:00",
            updated="2026-11-05T00:00:00+08:00",
        ),
        headers=h,
    )
    client.post(
        "/api/v1/orders",
        json=order("R2", total=20000, created_at="2026-12-01T09:00:00+08:00", updated="2026-12-01T09:00:00+08:00"),
        headers=h,
    )
    ws = tenant.workspace_id
    totals, statuses, months = _direct(db, ws)
    assert commerce_service.order_totals(db, workspace_id=ws) == totals
    assert {k: v for k, v in commerce_service.status_counts(db, workspace_id=ws).items() if v} == dict(statuses)
    rolled = {m: g for m, g, _ in commerce_service.gmv_by_month(db, workspace_id=ws, tz="Asia/Shanghai", months=36)}
    assert {m: g for m, g in rolled.items() if g} == {m: g for m, g in months.items() if g}
    assert dict(commerce_service.top_categories(db, workspace_id=ws)) == {"绿茶": 20000}

    # A rebuild from scratch gives the same figures.
    commerce_service.rebuild_rollups(db, workspace_id=ws)
    db.commit()
    assert commerce_service.order_totals(db, workspace_id=ws) == totals


def test_rollups_group_by_the_local_day_across_dst(db, tenant: Tenant) -> None:
    from datetime import UTC, datetime, timedelta

    from shequn.audience.schemas import CustomerIn, IdentityIn
    from shequn.commerce import derive
    from shequn.commerce.canonical import LineItemIn, OrderIn, ParsedRow
    from shequn.commerce.ingest import import_orders
    from shequn.commerce.models import CategoryDailyRollup, OrderDailyRollup
    from shequn.identity.models import Workspace

    ws = tenant.workspace_id
    zone = ZoneInfo("America/New_York")
    db.get(Workspace, ws).timezone = "America/New_York"
    db.commit()
    # Every 50 minutes around both 2026 DST changes, so orders land just before and after local midnights.
    moments = [
        start + timedelta(minutes=50 * i)
        for start in (datetime(2026, 3, 7, 20, tzinfo=UTC), datetime(2026, 10, 31, 20, tzinfo=UTC))
        for i in range(90)
    ]
    statuses = ["paid", "completed", "cancelled", "refunded"]
    orders = [
        OrderIn(
            source="shopify",
            shop_id="s1",
            source_order_id=f"dst{i}",
            status=statuses[i % 4],
            currency="USD",
            total=1000 + i,
            paid=1000 + i,
            created_at=at,
            source_updated_at=at,
            line_items=[LineItemIn("SKU", "Tea", 1, 1000 + i, 1000 + i, category=("绿茶", "红茶")[i % 2])],
            customer=CustomerIn(identities=[IdentityIn("shopify", "customer_id", f"c{i % 7}", True)]),
        )
        for i, at in enumerate(moments)
    ]
    import_orders(db, workspace_id=ws, rows=[ParsedRow(row=i + 1, item=o) for i, o in enumerate(orders)], derive=False)
    db.commit()
    derive.drain(db, workspace_id=ws)
    db.commit()
    want_orders: Counter = Counter()
    want_sales: Counter = Counter()
    for o in orders:
        day = o.created_at.astimezone(zone).date().isoformat()
        want_orders[(day, o.status)] += 1
        if o.status in PAID_STATUSES:
            want_sales[(day, o.line_items[0].category)] += o.line_items[0].total
    got_orders = Counter(
        {
            (r.day, r.status): r.orders
            for r in db.scalars(select(OrderDailyRollup).where(OrderDailyRollup.workspace_id == ws))
        }
    )
    got_sales = Counter(
        {
            (r.day, r.category): r.sales
            for r in db.scalars(select(CategoryDailyRollup).where(CategoryDailyRollup.workspace_id == ws))
        }
    )
    assert len({d for d, _ in want_orders}) >= 6
    assert got_orders == want_orders
    assert got_sales == want_sales
