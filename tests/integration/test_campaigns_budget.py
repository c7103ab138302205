"""Campaign budgets under concurrency: charges racing for the last yuan never pass the cap, refunds never take
spend below zero, and lowering the cap while claims charge it never leaves spend above it (threads with their
own sessions on the real database: SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.promotions.campaigns import service
from shequn.promotions.campaigns.errors import CampaignInvalid
from shequn.promotions.campaigns.schemas import CampaignIn, CampaignPatch
from tests.conftest import Tenant
from tests.integration.test_gatherings_concurrency import _race

THREADS = 16


def _campaign(db: Session, tenant: Tenant, budget_fen: int | None) -> int:
    start = utcnow() - timedelta(hours=1)
    c = service.create_campaign(
        db,
        workspace_id=tenant.workspace_id,
        data=CampaignIn(name="预算并发", starts_at=start, ends_at=start + timedelta(days=3), budget_fen=budget_fen),
    )
    db.commit()
    return c.id


def _spent(db: Session, tenant: Tenant, cid: int) -> tuple[int, int | None]:
    db.expire_all()
    c = service.get_campaign(db, workspace_id=tenant.workspace_id, campaign_id=cid)
    return c.spent_fen, c.budget_fen


def _charge(ws: int, cid: int, fen: int) -> Callable[[Session], Any]:
    return lambda s: service.charge_budget(s, workspace_id=ws, campaign_id=cid, amount_fen=fen)


def _refund(ws: int, cid: int, fen: int) -> Callable[[Session], Any]:
    return lambda s: service.refund_budget(s, workspace_id=ws, campaign_id=cid, amount_fen=fen)


def test_racing_charges_never_pass_the_cap(db: Session, tenant: Tenant) -> None:
    cid = _campaign(db, tenant, budget_fen=10_000)
    ws = tenant.workspace_id
    results = _race([_charge(ws, cid, 700) for _ in range(THREADS)])
    won = [r for r in results if r is None]
    refused = [r for r in results if isinstance(r, service.BudgetExhausted)]
    assert len(won) == 10_000 // 700 and len(won) + len(refused) == THREADS, results
    assert _spent(db, tenant, cid) == (len(won) * 700, 10_000)


def test_charges_and_refunds_interleaved_keep_the_books(db: Session, tenant: Tenant) -> None:
    cid = _campaign(db, tenant, budget_fen=6_000)
    ws = tenant.workspace_id
    service.charge_budget(db, workspace_id=ws, campaign_id=cid, amount_fen=6_000)
    db.commit()
    calls = [_refund(ws, cid, 500) for _ in range(THREADS // 2)] + [_charge(ws, cid, 500) for _ in range(THREADS)]
    results = _race(calls)
    charged = sum(1 for r in results[THREADS // 2 :] if r is None)
    assert all(r is None for r in results[: THREADS // 2])
    assert charged <= THREADS // 2  # only what the refunds freed can be charged again
    spent, budget = _spent(db, tenant, cid)
    assert spent == 6_000 - 500 * (THREADS // 2) + 500 * charged and spent <= (budget or 0)


def test_refunds_never_go_below_zero_and_no_cap_always_charges(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    cid = _campaign(db, tenant, budget_fen=1_000)
    service.charge_budget(db, workspace_id=ws, campaign_id=cid, amount_fen=900)
    db.commit()
    assert all(r is None for r in _race([_refund(ws, cid, 400) for _ in range(4)]))
    assert _spent(db, tenant, cid) == (0, 1_000)
    open_cid = _campaign(db, tenant, budget_fen=None)
    assert all(r is None for r in _race([_charge(ws, open_cid, 10**6) for _ in range(8)]))
    assert _spent(db, tenant, open_cid) == (8 * 10**6, None)
    service.charge_budget(db, workspace_id=ws, campaign_id=None, amount_fen=5)  # no campaign: nothing to charge
    service.charge_budget(db, workspace_id=ws, campaign_id=cid, amount_fen=0)


def test_lowering_the_cap_while_claims_charge(db: Session, tenant: Tenant) -> None:
    cid = _campaign(db, tenant, budget_fen=20_000)
    ws = tenant.workspace_id

    def lower(session: Session) -> Any:
        return service.update_campaign(
            session, workspace_id=ws, campaign_id=cid, data=CampaignPatch(budget_fen=5_000)
        ).budget_fen

    results = _race([lower] + [_charge(ws, cid, 1_000) for _ in range(THREADS - 1)])
    spent, budget = _spent(db, tenant, cid)
    assert budget is not None and spent <= budget
    charged = sum(1 for r in results[1:] if r is None)
    assert spent == 1_000 * charged
    if results[0] == 5_000:
        assert budget == 5_000
    else:  # the charges got there first: the cap could not drop below what was spent
        assert isinstance(results[0], CampaignInvalid) and budget == 20_000 and spent > 5_000


def test_other_workspace_cannot_charge(db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    cid = _campaign(db, tenant, budget_fen=1_000)
    try:
        service.charge_budget(db, workspace_id=other_tenant.workspace_id, campaign_id=cid, amount_fen=10)
    except service.BudgetExhausted:
        db.rollback()
    else:
        raise AssertionError("another workspace charged the campaign")
    service.refund_budget(db, workspace_id=other_tenant.workspace_id, campaign_id=cid, amount_fen=10)
    db.commit()
    assert _spent(db, tenant, cid) == (0, 1_000)


OPS = st.lists(
    st.tuples(st.sampled_from(["charge", "refund", "cap"]), st.integers(min_value=0, max_value=3_000)),
    max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, cap=st.one_of(st.none(), st.integers(min_value=0, max_value=10_000)))
def test_budget_books_match_a_simple_model(
    db: Session, tenant: Tenant, ops: list[tuple[str, int]], cap: int | None
) -> None:
    """Any sequence of charges, refunds and cap changes: spend equals the model's, never above the cap or below 0."""
    ws = tenant.workspace_id
    cid = _campaign(db, tenant, budget_fen=cap)
    spent = 0
    for op, n in ops:
        if op == "charge":
            ok = cap is None or n <= 0 or spent + n <= cap
            try:
                service.charge_budget(db, workspace_id=ws, campaign_id=cid, amount_fen=n)
                assert ok
                spent += max(n, 0)
            except service.BudgetExhausted:
                assert not ok
        elif op == "refund":
            service.refund_budget(db, workspace_id=ws, campaign_id=cid, amount_fen=n)
            spent = max(spent - n, 0) if n > 0 else spent
        else:
            try:
                service.update_campaign(db, workspace_id=ws, campaign_id=cid, data=CampaignPatch(budget_fen=n))
                assert n >= spent
                cap = n
            except CampaignInvalid:
                assert n < spent
        db.commit()
        assert _spent(db, tenant, cid) == (spent, cap)
        assert cap is None or spent <= cap
