"""Bulk imports leave facts, purchase activity and rollups to the backlog drain (decision 0009).

The drain must end exactly where an import that derives in its own transaction ends, be safe to run
again, and follow customers merged in between.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.audience.models import Customer, CustomerActivity, CustomerIdentity
from shequn.audience.schemas import CustomerIn, IdentityIn
from shequn.commerce import derive
from shequn.commerce import service as commerce_service  # (also registers the merge hook)
from shequn.commerce import tasks as commerce_tasks
from shequn.commerce.canonical import LineItemIn, OrderIn, ParsedRow
from shequn.commerce.demo import DemoSpec, demo_orders
from shequn.commerce.ingest import import_orders
from shequn.commerce.models import CategoryDailyRollup, Order, OrderDailyRollup, Product
from shequn.core.bulk import Bulk
from shequn.core.jobs import enqueue_job
from shequn.core.models import JobRun
from shequn.core.settings import get_settings
from tests.conftest import Tenant

SPEC = DemoSpec(customers=150, months=6, seed=11, end=datetime(2026, 10, 1, tzinfo=UTC))


def _rows(orders: list[OrderIn]) -> list[ParsedRow]:
    return [ParsedRow(row=i + 1, item=o) for i, o in enumerate(orders)]


def _snapshot(db: Session, ws: int) -> dict[str, Any]:
    """Everything derived, keyed by what is the same in two workspaces (identity keys, SKUs, days)."""
    db.expire_all()
    person: dict[int, str] = {}
    for cid, key in db.execute(
        select(CustomerIdentity.customer_id, CustomerIdentity.match_key).where(CustomerIdentity.workspace_id == ws)
    ):
        person[cid] = min(key, person.get(cid, key))  # the same key in both workspaces, whatever the row order
    sku = dict(db.execute(select(Product.id, Product.sku).where(Product.workspace_id == ws)).all())
    facts = {
        person[c.id]: (
            c.orders_count,
            c.total_spent,
            c.avg_order_value,
            c.first_order_at,
            c.last_order_at,
            c.category_spend,
            c.top_categories,
        )
        for c in db.scalars(select(Customer).where(Customer.workspace_id == ws, Customer.merged_into_id.is_(None)))
        if c.id in person
    }
    activity = sorted(
        (person[a.customer_id], a.kind, sku[int(a.ref)] if a.kind == "product" else a.ref, a.day, a.count, a.amount)
        for a in db.scalars(select(CustomerActivity).where(CustomerActivity.workspace_id == ws))
    )
    order_days = sorted(
        (r.day, r.status, r.source, r.orders, r.total, r.net_paid)
        for r in db.scalars(select(OrderDailyRollup).where(OrderDailyRollup.workspace_id == ws))
    )
    category_days = sorted(
        (r.day, r.category, r.sales, r.quantity)
        for r in db.scalars(select(CategoryDailyRollup).where(CategoryDailyRollup.workspace_id == ws))
    )
    return {"facts": facts, "activity": activity, "orders": order_days, "categories": category_days}


def test_drained_import_ends_where_a_deriving_import_does(db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    orders = list(demo_orders(SPEC))
    assert len(orders) > 300
    ws_a, ws_b = tenant.workspace_id, other_tenant.workspace_id
    for ws, deriving in ((ws_a, True), (ws_b, False)):
        stats = import_orders(
            db, workspace_id=ws, rows=_rows(orders), batch_size=97, on_batch=lambda _s: db.commit(), derive=deriving
        )
        db.commit()
        assert stats.failed == 0
    # Before the drain the orders are there and nothing derived from them is.
    assert db.scalar(select(Order.id).where(Order.workspace_id == ws_b).limit(1)) is not None
    early = _snapshot(db, ws_b)
    assert early["activity"] == [] and early["orders"] == [] and early["categories"] == []
    assert all(f[0] == 0 for f in early["facts"].values())
    assert derive.pending(db, workspace_id=ws_b) > 0
    derive.drain(db, workspace_id=ws_a)  # merges log their winners even when deriving: a no-op recompute here

    drained = derive.drain(db, workspace_id=ws_b)
    db.commit()
    assert drained.customers > 100 and drained.days > 100
    assert derive.pending(db, workspace_id=ws_b) == 0
    want, got = _snapshot(db, ws_a), _snapshot(db, ws_b)
    assert len(want["activity"]) > 500 and any(f[0] > 1 for f in want["facts"].values())
    for part in ("facts", "activity", "orders", "categories"):
        assert got[part] == want[part], part


def test_drain_claims_its_rows_so_it_is_safe_to_repeat_or_fail(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    orders = list(demo_orders(SPEC))
    import_orders(db, workspace_id=ws, rows=_rows(orders[:150]), derive=False)
    db.commit()
    derive.drain(db, workspace_id=ws)
    db.commit()
    assert derive.drain(db, workspace_id=ws).customers == 0  # nothing left: new orders are never added twice
    # The next batch's drain fails half-way: its claim rolls back with its work, and a later drain
    # ends exactly where a clean one does.
    import_orders(db, workspace_id=ws, rows=_rows(orders[150:300]), derive=False)
    db.commit()
    pending = derive.pending(db, workspace_id=ws)
    derive.drain(db, workspace_id=ws)
    db.rollback()
    assert derive.pending(db, workspace_id=ws) == pending
    derive.drain(db, workspace_id=ws)
    db.commit()
    once = _snapshot(db, ws)
    # Naming customers again recomputes them from all their orders: the same facts.
    bulk = Bulk(db)
    customers = [int(r[0]) for r in bulk.execute("SELECT id FROM customers WHERE workspace_id = ?", [ws])]
    derive.log_backlog(bulk, ws, customer_ids=customers, days=[datetime(2026, 9, 1).date()])
    derive.drain(db, workspace_id=ws)
    db.commit()
    assert _snapshot(db, ws) == once


def test_nightly_sync_adds_new_orders_to_known_buyers(db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    orders = list(demo_orders(SPEC))
    ws_a, ws_b = tenant.workspace_id, other_tenant.workspace_id
    import_orders(db, workspace_id=ws_a, rows=_rows(orders), derive=True)
    split = len(orders) * 3 // 4
    for part in (orders[:split], orders[split:]):  # the history, then a sync whose buyers are mostly known
        import_orders(db, workspace_id=ws_b, rows=_rows(part), batch_size=60, derive=False)
        db.commit()
        derive.drain(db, workspace_id=ws_b)
        db.commit()
    derive.drain(db, workspace_id=ws_a)
    db.commit()
    want, got = _snapshot(db, ws_a), _snapshot(db, ws_b)
    for part in ("facts", "activity", "orders", "categories"):
        assert got[part] == want[part], part


def test_a_long_import_job_drains_as_it_goes(
    db: Session, tenant: Tenant, other_tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo load (an import job) drains every DRAIN_EVERY orders and ends where one final drain does."""
    monkeypatch.setattr(get_settings(), "import_batch_size", 97)
    drains: list[int] = []
    real_drain = derive.drain

    def counted(session: Session, *, workspace_id: int) -> derive.DrainStats:
        drains.append(workspace_id)
        return real_drain(session, workspace_id=workspace_id)

    monkeypatch.setattr(derive, "drain", counted)  # a spy: every call runs the real drain
    params = {"customers": SPEC.customers, "months": SPEC.months, "seed": SPEC.seed, "end": SPEC.end.isoformat()}
    for ws, every in ((tenant.workspace_id, 200), (other_tenant.workspace_id, 10**9)):
        monkeypatch.setattr(commerce_tasks, "DRAIN_EVERY", every)
        enqueue_job(db, workspace_id=ws, kind=commerce_service.DEMO_JOB, params=params)
        db.commit()
    db.expire_all()
    assert [j.status for j in db.scalars(select(JobRun).where(JobRun.kind == commerce_service.DEMO_JOB))] == [
        "succeeded",
        "succeeded",
    ]
    written = db.scalar(select(func.count()).select_from(Order).where(Order.workspace_id == tenant.workspace_id))
    assert written and drains.count(tenant.workspace_id) == written // 200 + 1  # every 200 orders, then the end
    assert drains.count(other_tenant.workspace_id) == 1
    assert derive.pending(db, workspace_id=tenant.workspace_id) == 0
    want, got = _snapshot(db, other_tenant.workspace_id), _snapshot(db, tenant.workspace_id)
    for snap in (want, got):  # the demo's community layer adds its own, random, activity kinds
        snap["activity"] = [a for a in snap["activity"] if a[1] in ("order", "category", "product")]
    for part in ("facts", "activity", "orders", "categories"):
        assert got[part] == want[part], part


def _order(n: int, identity: IdentityIn, amount: int, at: datetime) -> OrderIn:
    return OrderIn(
        source="taobao",
        shop_id="s1",
        source_order_id=f"m{n}",
        status="paid",
        currency="CNY",
        total=amount,
        paid=amount,
        subtotal=amount,
        created_at=at,
        source_updated_at=at,
        line_items=[LineItemIn("TEA-1", "龙井", 1, amount, amount, category="绿茶")],
        customer=CustomerIn(identities=[identity], name="买家"),
    )


def test_backlog_follows_a_merge_before_the_drain(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    at = datetime(2026, 8, 1, 12, tzinfo=UTC)
    nick = IdentityIn("taobao", "buyer_nick", "nick-merge", True)
    union = IdentityIn("wechat", "unionid", "u-merge", True)
    import_orders(
        db,
        workspace_id=ws,
        rows=_rows([_order(1, nick, 1000, at), _order(2, union, 2000, at + timedelta(days=3))]),
        derive=False,
    )
    db.commit()
    # Both identities on one order: the two customers merge while their backlog rows still wait.
    linking = _order(3, nick, 4000, at + timedelta(days=5))
    assert linking.customer is not None
    linking.customer.identities.append(union)
    import_orders(db, workspace_id=ws, rows=_rows([linking]), derive=False)
    db.commit()
    derive.drain(db, workspace_id=ws)
    db.commit()
    db.expire_all()
    live = list(db.scalars(select(Customer).where(Customer.workspace_id == ws, Customer.merged_into_id.is_(None))))
    assert len(live) == 1
    winner = live[0]
    assert (winner.orders_count, winner.total_spent) == (3, 7000)
    assert winner.first_order_at == at and winner.last_order_at == at + timedelta(days=5)
    assert winner.category_spend == {"绿茶": 7000}
    activity = db.scalars(select(CustomerActivity).where(CustomerActivity.workspace_id == ws)).all()
    assert {a.customer_id for a in activity} == {winner.id}
    assert sum(a.count for a in activity if a.kind == "order") == 3
