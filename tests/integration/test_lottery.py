"""Lotteries through the operator API and the service: set-up and validation, publish commits to a seed,
draw windows, daily limits in the workspace's timezone, draws bought with points (spent once on retries,
refused without points), stock falling back to "thanks for playing", budget, prizes handed out, fulfilment,
reveal only after the end, roles and workspace isolation."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.core.errors import ShequnError
from shequn.loyalty import service as loyalty_service
from shequn.promotions.lottery import service
from shequn.promotions.lottery.schemas import LotteryIn, PrizeIn
from tests.conftest import Tenant
from tests.integration.test_loyalty import customers

API = "/api/v1/lotteries"


def prize_table(*, stock: int | None = 2, thanks_weight: int = 1) -> list[PrizeIn]:
    """A small table: a stocked physical prize, unlimited points, thanks for playing."""
    return [
        PrizeIn(name="茶具", kind="physical", weight=3, stock=stock, cost_fen=1000),
        PrizeIn(name="10 积分", kind="points", weight=2, points=10),
        PrizeIn(name="谢谢参与", kind="thanks", weight=thanks_weight),
    ]


def make_lottery(
    db: Session,
    workspace_id: int,
    *,
    prizes: list[PrizeIn] | None = None,
    starts: datetime | None = None,
    ends: datetime | None = None,
    publish: bool = True,
    **extra: Any,
) -> int:
    """A lottery (published by default) running from an hour ago for a day."""
    now = utcnow()
    lottery = service.create_lottery(
        db,
        workspace_id=workspace_id,
        data=LotteryIn(
            name="测试转盘",
            starts_at=starts or now - timedelta(hours=1),
            ends_at=ends or now + timedelta(days=1),
            prizes=prizes or prize_table(),
            **extra,
        ),
    )
    if publish:
        service.publish_lottery(db, workspace_id=workspace_id, lottery_id=lottery.id, now=lottery.starts_at)
    db.commit()
    return lottery.id


def draw(db: Session, ws: int, lid: int, cid: int, **kw: Any) -> service.DrawResult:
    """The member's next draw, committed."""
    no = (
        kw.pop("draw_no", None)
        or service.day_left(db, service.get_lottery(db, workspace_id=ws, lottery_id=lid), customer_id=cid).next_draw_no
    )
    result = service.draw_lottery(db, workspace_id=ws, lottery_id=lid, customer_id=cid, draw_no=no, **kw)
    db.commit()
    return result


def body(**extra: Any) -> dict[str, Any]:
    now = utcnow()
    return {
        "name": "春茶转盘",
        "starts_at": (now + timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(days=3)).isoformat(),
        "draws_per_day": 2,
        "points_per_draw": 20,
        "prizes": [
            {"name": "紫砂壶", "kind": "physical", "weight": 1, "stock": 3, "cost_fen": 20000},
            {"name": "50 积分", "kind": "points", "weight": 3, "points": 50},
            {"name": "谢谢参与", "kind": "thanks", "weight": 6},
        ],
        **extra,
    }


def test_create_publish_commitment_and_probabilities(client: Any, tenant: Tenant) -> None:
    r = client.post(API, json=body(), headers=tenant.headers("operator"))
    assert r.status_code == 201, r.text
    lot = r.json()
    assert lot["phase"] == "draft" and lot["commitment"] is None
    assert [p["probability"] for p in lot["prizes"]] == [0.1, 0.3, 0.6]
    # Drafts are editable; the prize table is replaced as a whole.
    r = client.patch(f"{API}/{lot['id']}", json={"draws_per_day": 1}, headers=tenant.headers())
    assert r.status_code == 200 and r.json()["draws_per_day"] == 1
    r = client.post(f"{API}/{lot['id']}/publish", headers=tenant.headers())
    assert r.status_code == 200, r.text
    pub = r.json()
    assert pub["phase"] == "scheduled" and len(pub["commitment"]) == 64 and pub["seed_hex"] is None
    # Published: the rules are locked (name and description stay editable); the seed is not revealed early.
    r = client.patch(f"{API}/{lot['id']}", json={"draws_per_day": 5}, headers=tenant.headers())
    assert r.status_code == 409 and r.json()["code"] == "lottery_locked"
    assert client.patch(f"{API}/{lot['id']}", json={"name": "新名字"}, headers=tenant.headers()).status_code == 200
    r = client.post(f"{API}/{lot['id']}/reveal", headers=tenant.headers())
    assert r.status_code == 409 and r.json()["code"] == "lottery_reveal_too_early"
    assert (
        client.post(f"{API}/{lot['id']}/publish", headers=tenant.headers()).json()["code"] == "lottery_bad_transition"
    )
    listed = client.get(API, params={"phase": "scheduled"}, headers=tenant.headers("viewer")).json()
    assert [x["id"] for x in listed["items"]] == [lot["id"]]
    audit = [a["action"] for a in client.get("/api/v1/audit", headers=tenant.headers()).json()["items"]]
    assert "lottery.create" in audit and "lottery.publish" in audit


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"prizes": [{"name": "x", "kind": "points", "weight": 1, "points": 5}]}, "prizes"),
        (
            {"prizes": [{"name": "券", "kind": "coupon", "weight": 1}, {"name": "谢", "kind": "thanks", "weight": 1}]},
            "prizes.0.coupon_template_id",
        ),
        ({"prizes": [{"name": "谢", "kind": "thanks", "weight": 1, "stock": 3}]}, "prizes.0.stock"),
        ({"ends_at": "2020-01-01T00:00:00+00:00"}, "ends_at"),
        ({"bought_per_day": 3, "points_per_draw": None}, "bought_per_day"),
        ({"campaign_id": 999999}, "campaign_id"),
    ],
)
def test_invalid_lotteries_name_the_field(client: Any, tenant: Tenant, change: dict[str, Any], field: str) -> None:
    r = client.post(API, json=body(**change), headers=tenant.headers())
    assert r.status_code == 422, r.text
    assert field in [d["field"] for d in r.json()["details"]]


def test_forged_fields_are_refused(client: Any, tenant: Tenant) -> None:
    r = client.post(API, json=body(seed_hex="00" * 32), headers=tenant.headers())
    assert r.status_code == 422


def test_draw_window_daily_limit_in_workspace_timezone_and_points(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    (cid,) = customers(db, ws, 1)
    # Shanghai midnight is 16:00 UTC: two draws at 15:30 and 16:30 UTC fall on different local days.
    base = utcnow().replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=2)
    lid = make_lottery(
        db, ws, starts=base - timedelta(hours=1), ends=base + timedelta(days=3), points_per_draw=30, bought_per_day=1
    )
    with pytest.raises(ShequnError) as early:
        service.draw_lottery(
            db, workspace_id=ws, lottery_id=lid, customer_id=cid, draw_no=1, now=base - timedelta(hours=2)
        )
    assert early.value.code == "lottery_not_started"
    draw(db, ws, lid, cid, now=base + timedelta(hours=3, minutes=30))
    with pytest.raises(ShequnError) as none_left:
        draw(db, ws, lid, cid, now=base + timedelta(hours=3, minutes=50))
    assert none_left.value.code == "lottery_no_draws_left"
    db.rollback()
    # Without points a bought draw is refused and nothing is spent or counted.
    with pytest.raises(ShequnError) as poor:
        draw(db, ws, lid, cid, pay_with_points=True, now=base + timedelta(hours=3, minutes=50))
    assert poor.value.code == "points_insufficient"
    db.rollback()
    loyalty_service.award_points(db, workspace_id=ws, customer_id=cid, points=100, reason="adjust", ref="t")
    db.commit()
    paid = draw(db, ws, lid, cid, pay_with_points=True, now=base + timedelta(hours=3, minutes=55))
    assert paid.draw.paid_points == 30 and paid.draw.draw_no == 2
    # The same draw again (a retry) replays it and spends nothing more.
    again = draw(db, ws, lid, cid, draw_no=2, pay_with_points=True, now=base + timedelta(hours=3, minutes=56))
    assert again.replayed and again.draw.id == paid.draw.id
    points = loyalty_service.get_balance(db, workspace_id=ws, customer_id=cid)
    expected_points = 70 + (10 if paid.draw.prize_kind == "points" else 0)
    first = service.find_draw(db, lottery_id=lid, customer_id=cid, draw_no=1)
    assert first is not None
    expected_points += 10 if first.prize_kind == "points" else 0
    assert points == expected_points
    with pytest.raises(ShequnError) as capped:
        draw(db, ws, lid, cid, pay_with_points=True, now=base + timedelta(hours=3, minutes=58))
    assert capped.value.code == "lottery_not_buyable"
    db.rollback()
    # 16:30 UTC is the next day in Shanghai: a new free draw.
    nxt = draw(db, ws, lid, cid, now=base + timedelta(hours=4, minutes=30))
    assert nxt.draw.local_day != first.local_day
    with pytest.raises(ShequnError) as late:
        draw(db, ws, lid, cid, now=base + timedelta(days=3, minutes=1))
    assert late.value.code == "lottery_ended"


def test_stock_runs_out_to_thanks_and_prizes_are_handed_out(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    people = customers(db, ws, 12)
    lid = make_lottery(db, ws, prizes=prize_table(stock=2, thanks_weight=0))
    results = [draw(db, ws, lid, cid).draw for cid in people]
    table = {p.id: p for p in service.list_prizes(db, lottery_id=lid)}
    physical = [d for d in results if table[d.prize_id].kind == "physical"]
    fell = [d for d in results if d.fallback == "stock"]
    assert len(physical) == 2
    assert all(table[d.chosen_prize_id].kind == "physical" and table[d.prize_id].kind == "thanks" for d in fell)
    assert len(physical) + len(fell) == sum(1 for d in results if table[d.chosen_prize_id].kind == "physical")
    db.expire_all()
    assert next(p for p in service.list_prizes(db, lottery_id=lid) if p.kind == "physical").won == 2
    for d in results:
        if table[d.prize_id].kind == "points":
            assert loyalty_service.get_balance(db, workspace_id=ws, customer_id=d.customer_id) == 10
    assert all(d.fulfilment == "pending" for d in physical)


def test_budget_exhausted_falls_back_and_is_charged(client: Any, db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    now = utcnow()
    camp = client.post(
        "/api/v1/campaigns",
        json={
            "name": "春茶节",
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(days=5)).isoformat(),
            "budget_fen": 2500,
        },
        headers=tenant.headers(),
    )
    assert camp.status_code == 201, camp.text
    lid = make_lottery(db, ws, prizes=prize_table(stock=None, thanks_weight=0), campaign_id=camp.json()["id"])
    results = [draw(db, ws, lid, cid).draw for cid in customers(db, ws, 15)]
    table = {p.id: p for p in service.list_prizes(db, lottery_id=lid)}
    won_physical = [d for d in results if table[d.prize_id].kind == "physical"]
    budget_fallbacks = [d for d in results if d.fallback == "budget"]
    assert len(won_physical) == 2  # 2 × 10 yuan fit in 25 yuan, the third does not
    assert budget_fallbacks and all(table[d.chosen_prize_id].kind == "physical" for d in budget_fallbacks)
    assert service.cost_spent(db, lottery_id=lid) == 2000
    stats = client.get(f"{API}/{lid}/stats", headers=tenant.headers("viewer")).json()
    assert stats["cost_fen"] == 2000 and sum(n for _d, n, _p in stats["draws_per_day"]) == 15


def test_fulfilment_address_ship_deliver(client: Any, db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    lid = make_lottery(
        db,
        ws,
        prizes=[
            PrizeIn(name="茶具", kind="physical", weight=1, stock=5),
            PrizeIn(name="谢谢", kind="thanks", weight=0),
        ],
    )
    (cid,) = customers(db, ws, 1)
    d = draw(db, ws, lid, cid).draw
    assert d.fulfilment == "pending"
    r = client.post(f"{API}/draws/{d.id}/fulfilment", json={"status": "shipped"}, headers=tenant.headers())
    assert r.status_code == 409 and r.json()["code"] == "lottery_bad_fulfilment"  # no address yet
    service.set_address(
        db,
        workspace_id=ws,
        draw_id=d.id,
        customer_id=cid,
        name="王芳",
        phone="13812345678",
        address="杭州市西湖区龙井路 1 号",
    )
    db.commit()
    queue = client.get(f"{API}/{lid}/fulfilment", headers=tenant.headers("viewer")).json()
    assert queue[0]["phone_masked"] == "138****5678" and "13812345678" not in str(queue)
    body_ = {"status": "shipped", "tracking_no": "SF123"}
    assert (
        client.post(f"{API}/draws/{d.id}/fulfilment", json=body_, headers=tenant.headers("viewer")).status_code == 403
    )
    r = client.post(f"{API}/draws/{d.id}/fulfilment", json=body_, headers=tenant.headers("operator"))
    assert r.status_code == 200 and r.json()["fulfilment"] == "shipped" and r.json()["tracking_no"] == "SF123"
    db.expire_all()
    with pytest.raises(ShequnError):
        service.set_address(db, workspace_id=ws, draw_id=d.id, customer_id=cid, name="x", phone="1", address="y")
    db.rollback()
    r = client.post(f"{API}/draws/{d.id}/fulfilment", json={"status": "delivered"}, headers=tenant.headers())
    assert r.json()["fulfilment"] == "delivered"
    assert client.get(f"{API}/{lid}/stats", headers=tenant.headers()).json()["fulfilment"] == {"delivered": 1}


def test_reveal_after_end_shows_the_committed_seed(client: Any, db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    now = utcnow()
    lid = make_lottery(db, ws, starts=now - timedelta(days=2), ends=now - timedelta(minutes=1))
    lot = client.get(f"{API}/{lid}", headers=tenant.headers()).json()
    assert lot["phase"] == "ended" and lot["seed_hex"] is None
    assert client.post(f"{API}/{lid}/reveal", headers=tenant.headers("viewer")).status_code == 403
    r = client.post(f"{API}/{lid}/reveal", headers=tenant.headers())
    assert r.status_code == 200 and r.json()["phase"] == "revealed"
    assert hashlib.sha256(bytes.fromhex(r.json()["seed_hex"])).hexdigest() == lot["commitment"]
    # The periodic sweep reveals what ended without an operator.
    other = make_lottery(db, ws, starts=now - timedelta(days=2), ends=now - timedelta(minutes=1))
    assert service.reveal_ended(db) == 1
    db.commit()
    assert service.get_lottery(db, workspace_id=ws, lottery_id=other).status == "revealed"


def test_roles_and_workspace_isolation(client: Any, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    assert client.post(API, json=body(), headers=tenant.headers("viewer")).status_code == 403
    assert client.post(API, json=body(), headers=tenant.headers("analyst")).status_code == 403
    lid = make_lottery(db, tenant.workspace_id)
    for path in ("", "/stats", "/fulfilment", "/verification"):
        assert client.get(f"{API}/{lid}{path}", headers=other_tenant.headers()).status_code == 404
    assert client.patch(f"{API}/{lid}", json={"name": "x"}, headers=other_tenant.headers()).status_code == 404
    assert client.post(f"{API}/{lid}/cancel", headers=other_tenant.headers()).status_code == 404
    assert client.get(API, headers=other_tenant.headers()).json()["total"] == 0
    (cid,) = customers(db, tenant.workspace_id, 1)
    d = draw(db, tenant.workspace_id, lid, cid).draw
    r = client.post(f"{API}/draws/{d.id}/fulfilment", json={"status": "shipped"}, headers=other_tenant.headers())
    assert r.status_code == 404
    # Another workspace's service call cannot draw in this lottery either.
    (stranger,) = customers(db, other_tenant.workspace_id, 1)
    with pytest.raises(ShequnError) as exc:
        service.draw_lottery(
            db, workspace_id=other_tenant.workspace_id, lottery_id=lid, customer_id=stranger, draw_no=1
        )
    assert exc.value.code == "lottery_not_found"


def test_demo_step_summary_and_verifiable_demo_record(client: Any, db: Session, tenant: Tenant) -> None:
    from shequn.promotions.common import summarize_campaign
    from shequn.promotions.lottery import demo

    ws = tenant.workspace_id
    customers(db, ws, 30)
    now = utcnow()
    camp = client.post(
        "/api/v1/campaigns",
        json={
            "name": "演示活动",
            "starts_at": (now - timedelta(days=30)).isoformat(),
            "ends_at": (now + timedelta(days=30)).isoformat(),
        },
        headers=tenant.headers(),
    ).json()
    counts = demo.demo_step(db, workspace_id=ws, campaign_id=camp["id"])
    db.commit()
    assert counts["lotteries"] == 2 and counts["draws"] > 30
    assert demo.demo_step(db, workspace_id=ws, campaign_id=camp["id"]) == {"lotteries": 0, "draws": 0}
    rows = [s for s in summarize_campaign(db, workspace_id=ws, campaign_id=camp["id"]) if s.kind == "lottery"]
    assert len(rows) == 2 and all(s.actions > 0 and s.participants > 0 for s in rows)
    finished = next(s for s in rows if s.status == "revealed")
    record = client.get(f"/api/v1/lotteries/{finished.id}/verification", headers=tenant.headers()).json()
    assert (
        record["seed_hex"]
        and service.verify_log(record["seed_hex"], record["commitment"], finished.id, record["prizes"], record["draws"])
        == []
    )


def test_coupon_prize_is_granted_once_and_falls_back_when_the_coupon_runs_out(db: Session, tenant: Tenant) -> None:
    from shequn.promotions.coupons import service as coupons_service
    from shequn.promotions.coupons.schemas import TemplateIn

    ws = tenant.workspace_id
    now = utcnow()
    tpl = coupons_service.create_template(
        db,
        workspace_id=ws,
        data=TemplateIn(
            name="满 100 减 10",
            kind="fixed",
            amount_fen=1000,
            starts_at=now - timedelta(days=1),
            ends_at=now + timedelta(days=10),
            total_stock=2,
        ),
    )
    coupons_service.set_status(db, workspace_id=ws, template_id=tpl.id, status="active")
    db.commit()
    prizes = [
        PrizeIn(name="券", kind="coupon", weight=1, coupon_template_id=tpl.id),
        PrizeIn(name="谢谢参与", kind="thanks", weight=0),
    ]
    lid = make_lottery(db, ws, prizes=prizes)
    results = [draw(db, ws, lid, cid).draw for cid in customers(db, ws, 4)]
    assert [d.prize_kind for d in results] == ["coupon", "coupon", "thanks", "thanks"]
    assert [d.fallback for d in results] == ["", "", "coupon", "coupon"]
    for d in results[:2]:
        grant = coupons_service.find_grant(
            db, template_id=tpl.id, source="lottery", source_ref=f"{lid}:{d.customer_id}:1"
        )
        assert grant is not None and grant.customer_id == d.customer_id
    # A replay of a winning draw grants nothing more.
    again = service.draw_lottery(db, workspace_id=ws, lottery_id=lid, customer_id=results[0].customer_id, draw_no=1)
    db.expire_all()
    assert again.replayed and coupons_service.get_template(db, workspace_id=ws, template_id=tpl.id).issued_count == 2
