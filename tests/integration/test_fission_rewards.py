"""Milestone rewards after real stays, anti-fraud (device, phone, bursts) with operator review, the report."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.audience.schemas import CustomerIn, IdentityIn
from shequn.community import service as community_service
from shequn.community.fission import service as fission
from shequn.community.fission.models import Referral
from shequn.core import signals
from shequn.core.clock import utcnow
from tests.conftest import Tenant
from tests.integration.test_fission import community, customers, member_of


@pytest.fixture
def granted() -> Iterator[list[signals.Signal]]:
    """fission.reward_granted signals delivered after commit."""
    got: list[signals.Signal] = []
    signals.connect(fission.REWARD_GRANTED, got.append)
    yield got
    signals.disconnect(fission.REWARD_GRANTED, got.append)


def _join(db: Session, ws: int, code: str, customer_id: int, device: str = "") -> fission.JoinResult:
    result = fission.join_by_invite(db, workspace_id=ws, code=code, customer_id=customer_id, device_id=device)
    db.commit()
    return result


def _milestone(db: Session, ws: int, cid: int, n: int, days: int, **kw: object) -> fission.Milestone:
    m = fission.create_milestone(
        db,
        workspace_id=ws,
        community_id=cid,
        name=f"邀请{n}人留存{days}天",
        invitees_required=n,
        stay_days=days,
        reward_kind=str(kw.get("kind", "coupon")),
        reward_value=str(kw.get("value", "FRIEND20")),
    )
    db.commit()
    return m


def test_only_invitees_who_stayed_count_and_leaving_later_does_not_revoke(
    db: Session, tenant: Tenant, granted: list[signals.Signal]
) -> None:
    ws = tenant.workspace_id
    c = community(db, ws)
    host, x, y, z = customers(db, ws, 4)
    member_of(db, ws, c.id, host)
    db.commit()
    m = _milestone(db, ws, c.id, 2, 7)
    link = fission.personal_invite(db, workspace_id=ws, community_id=c.id, customer_id=host)
    db.commit()
    for who in (x, z):
        _join(db, ws, link.code, who)
    community_service.leave_community(db, workspace_id=ws, community_id=c.id, customer_id=z)  # leaves at once
    db.commit()
    assert fission.get_referral(db, c.id, z).status == "left"  # type: ignore[union-attr]
    later = utcnow() + timedelta(days=8)
    assert fission.check_inviter(db, workspace_id=ws, inviter_customer_id=host, now=later) == []  # x only
    _join(db, ws, link.code, y)
    assert fission.check_inviter(db, workspace_id=ws, inviter_customer_id=host, now=utcnow() + timedelta(days=3)) == []
    rewards = fission.check_inviter(db, workspace_id=ws, inviter_customer_id=host, now=later)
    db.commit()
    assert [(r.milestone_id, r.status, r.reward_value) for r in rewards] == [(m.id, "pending_fulfilment", "FRIEND20")]
    assert sorted(rewards[0].qualifying) == sorted(
        [fission.get_referral(db, c.id, x).id, fission.get_referral(db, c.id, y).id]  # type: ignore[union-attr]
    )
    assert [s.payload["customer_id"] for s in granted] == [host]
    # y leaves after the reward: nothing is revoked and nothing is granted twice.
    community_service.leave_community(db, workspace_id=ws, community_id=c.id, customer_id=y)
    db.commit()
    assert fission.check_inviter(db, workspace_id=ws, inviter_customer_id=host, now=later) == []
    db.commit()
    assert len(fission.list_rewards(db, workspace_id=ws)) == 1 and len(granted) == 1


def test_qualify_job_over_the_api(client, db: Session, tenant: Tenant, granted: list[signals.Signal]) -> None:
    ws = tenant.workspace_id
    c = community(db, ws)
    host, x = customers(db, ws, 2)
    member_of(db, ws, c.id, host)
    link = fission.personal_invite(db, workspace_id=ws, community_id=c.id, customer_id=host)
    db.commit()
    _join(db, ws, link.code, x)
    h = tenant.headers()
    r = client.post(
        "/api/v1/fission/milestones",
        json={"name": "首邀", "invitees_required": 1, "stay_days": 0, "reward_kind": "points", "reward_value": "50"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    bad = client.post(
        "/api/v1/fission/milestones",
        json={"name": "x", "invitees_required": 1, "reward_kind": "points", "reward_value": "lots"},
        headers=h,
    )
    assert bad.status_code == 422
    job = client.post("/api/v1/fission/qualify", headers=h)
    assert job.status_code == 202
    rewards = client.get("/api/v1/fission/rewards", headers=h).json()
    assert [(x["reward_kind"], x["reward_value"], x["status"]) for x in rewards] == [
        ("points", "50", "pending_fulfilment")
    ]
    assert len(granted) == 1
    client.post("/api/v1/fission/qualify", headers=h)
    assert len(client.get("/api/v1/fission/rewards", headers=h).json()) == 1 and len(granted) == 1


def _with_phone(db: Session, ws: int, tag: str, phone: str) -> int:
    person = CustomerIn(identities=[IdentityIn("h5", "anonymous_id", tag)], name=tag, phone=phone)
    (cid,) = audience_service.resolve_customers(db, workspace_id=ws, people=[person]).ids
    assert cid is not None
    return cid


def test_same_device_and_same_phone_are_flagged_and_reviewable(client, db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c = community(db, ws)
    host = _with_phone(db, ws, "host", "13800138000")
    twin = _with_phone(db, ws, "twin", "13800138000")  # the inviter's own number under another account
    a = _with_phone(db, ws, "a", "13900139000")
    a2 = _with_phone(db, ws, "a2", "13900139000")  # same phone as a sibling invitee
    (other,) = customers(db, ws, 1)
    member_of(db, ws, c.id, host)
    db.commit()
    _milestone(db, ws, c.id, 2, 0)
    link = fission.personal_invite(db, workspace_id=ws, community_id=c.id, customer_id=host, device_id="dev-host")
    db.commit()
    assert _join(db, ws, link.code, other, device="dev-host").referral.status == "fraud"  # type: ignore[union-attr]
    assert _join(db, ws, link.code, twin, device="dev-twin").referral.fraud_reason == "same_phone"  # type: ignore[union-attr]
    assert _join(db, ws, link.code, a, device="dev-a").referral.fraud_reason == ""  # type: ignore[union-attr]
    assert _join(db, ws, link.code, a2, device="dev-a2").referral.fraud_reason == "same_phone"  # type: ignore[union-attr]
    assert fission.list_rewards(db, workspace_id=ws) == []  # one valid invitee of two needed

    h = tenant.headers()
    flags = client.get("/api/v1/fission/fraud-flags", headers=h).json()
    assert sorted(f["kind"] for f in flags) == ["same_device", "same_phone", "same_phone"]
    device_flag = next(f for f in flags if f["kind"] == "same_device")
    assert (
        client.post(
            f"/api/v1/fission/fraud-flags/{device_flag['id']}/review", json={"decision": "x"}, headers=h
        ).status_code
        == 422
    )
    ok = client.post(f"/api/v1/fission/fraud-flags/{device_flag['id']}/review", json={"decision": "clear"}, headers=h)
    assert ok.status_code == 200 and ok.json()["status"] == "cleared"
    again = client.post(
        f"/api/v1/fission/fraud-flags/{device_flag['id']}/review", json={"decision": "confirm"}, headers=h
    )
    assert again.status_code == 409 and again.json()["code"] == "fraud_flag_reviewed"
    db.expire_all()
    assert fission.get_referral(db, c.id, other).status == "stayed"  # type: ignore[union-attr]  # counted now
    assert [r.status for r in fission.list_rewards(db, workspace_id=ws)] == ["pending_fulfilment"]  # cleared → 2 valid


def test_bursts_hold_rewards_until_review(client, db: Session, tenant: Tenant, granted: list[signals.Signal]) -> None:
    ws = tenant.workspace_id
    c = community(db, ws)
    host, *crowd = customers(db, ws, 5)
    member_of(db, ws, c.id, host)
    fission.update_settings(db, workspace_id=ws, burst_joins=2, burst_minutes=10)
    db.commit()
    _milestone(db, ws, c.id, 3, 0)
    link = fission.personal_invite(db, workspace_id=ws, community_id=c.id, customer_id=host)
    db.commit()
    for i, who in enumerate(crowd[:3]):
        _join(db, ws, link.code, who, device=f"d{i}")
    flags = fission.list_flags(db, workspace_id=ws)
    assert [f.kind for f in flags] == ["burst"] and flags[0].details["joins"] == 3
    assert [r.status for r in fission.list_rewards(db, workspace_id=ws)] == ["held"] and granted == []
    _join(db, ws, link.code, crowd[3], device="d3")
    assert len(fission.list_flags(db, workspace_id=ws)) == 1  # one open burst flag per inviter
    r = client.post(
        f"/api/v1/fission/fraud-flags/{flags[0].id}/review", json={"decision": "clear"}, headers=tenant.headers()
    )
    assert r.status_code == 200
    assert [x["status"] for x in client.get("/api/v1/fission/rewards", headers=tenant.headers()).json()] == [
        "pending_fulfilment"
    ]
    assert len(granted) == 1


def test_confirmed_burst_cancels_held_rewards(db: Session, tenant: Tenant, granted: list[signals.Signal]) -> None:
    ws = tenant.workspace_id
    c = community(db, ws)
    host, *crowd = customers(db, ws, 3)
    member_of(db, ws, c.id, host)
    fission.update_settings(db, workspace_id=ws, burst_joins=1, burst_minutes=5)
    db.commit()
    _milestone(db, ws, c.id, 2, 0)
    link = fission.personal_invite(db, workspace_id=ws, community_id=c.id, customer_id=host)
    db.commit()
    for i, who in enumerate(crowd):
        _join(db, ws, link.code, who, device=f"e{i}")
    (flag,) = fission.list_flags(db, workspace_id=ws)
    fission.review_flag(db, workspace_id=ws, flag_id=flag.id, decision="confirm")
    db.commit()
    assert [r.status for r in fission.list_rewards(db, workspace_id=ws)] == ["cancelled"] and granted == []


def test_report_figures_on_a_known_tree(client, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c = community(db, ws)
    root, a, b, cc, d = customers(db, ws, 5)
    member_of(db, ws, c.id, root)
    db.commit()
    fission.create_invite(db, workspace_id=ws, community_id=c.id, label="海报")  # an operator link: not an inviter
    for inviter, invitee in [(root, a), (root, b), (a, cc), (cc, d)]:
        link = fission.personal_invite(db, workspace_id=ws, community_id=c.id, customer_id=inviter)
        for _ in range(2):
            fission.record_open(db, invite=link)
        db.commit()
        _join(db, ws, link.code, invitee)
    rep = client.get(f"/api/v1/fission/report?community_id={c.id}", headers=tenant.headers()).json()
    assert rep["links"] == 4 and rep["personal_links"] == 3 and rep["opens"] == 8
    assert rep["joins_via_invite"] == 4 and rep["referral_joins"] == 4 and rep["fraud_referrals"] == 0
    assert rep["inviters"] == 3 and rep["members"] == 5
    assert rep["i"] == round(8 / 3, 3) and rep["c"] == 0.5 and rep["k_factor"] == round(4 / 3, 3)
    assert abs(rep["k_factor"] - rep["i"] * rep["c"]) < 0.01  # K = i × c
    assert rep["k_members"] == 0.8
    assert rep["max_depth"] == 3 and rep["depth_distribution"] == {"1": 2, "2": 1, "3": 1}
    top = rep["top_inviters"][0]
    assert (top["customer_id"], top["referrals"], top["stayed"]) == (root, 2, 0)
    assert sum(p["joins"] for p in rep["daily_joins"]) == 4
    tree = client.get(f"/api/v1/communities/{c.id}/referral-tree", headers=tenant.headers()).json()
    assert len(tree) == 1 and tree[0]["customer_id"] == root and tree[0]["size"] == 4
    chain = tree[0]["children"]
    a_node = next(n for n in chain if n["customer_id"] == a)
    assert a_node["children"][0]["customer_id"] == cc and a_node["children"][0]["children"][0]["customer_id"] == d
    refs = client.get(f"/api/v1/communities/{c.id}/referrals?inviter_customer_id={root}", headers=tenant.headers())
    assert sorted(r["referee_customer_id"] for r in refs.json()) == sorted([a, b])
    # Another brand sees none of it.
    assert client.get("/api/v1/fission/report", headers=other_tenant.headers()).json()["referral_joins"] == 0
    assert client.get("/api/v1/fission/fraud-flags?status=all", headers=other_tenant.headers()).json() == []
    leaving = db.scalar(select(Referral).where(Referral.referee_customer_id == d))
    assert leaving is not None and leaving.depth == 3


def test_demo_builds_a_tree_rewards_and_a_flag_once(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c = community(db, ws)
    people = customers(db, ws, 12, prefix="demo")
    member_of(db, ws, c.id, people[0])
    db.commit()
    result = fission.ensure_demo_fission(db, workspace_id=ws)
    db.commit()
    assert result["community_id"] == c.id and result["rewards"] >= 1
    rep = fission.build_report(db, workspace_id=ws, community_id=c.id)
    assert rep.max_depth == 4 and rep.fraud_referrals == 1 and rep.flags == {"open": 1}
    assert fission.ensure_demo_fission(db, workspace_id=ws) == {}  # idempotent


def test_approving_an_invited_request_records_the_referral(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c = community(db, ws, visibility="private")
    host, friend = customers(db, ws, 2)
    member_of(db, ws, c.id, host)
    db.commit()
    link = fission.personal_invite(db, workspace_id=ws, community_id=c.id, customer_id=host)
    db.commit()
    asked = _join(db, ws, link.code, friend, device="dev-f")
    assert asked.member.status == "pending" and asked.referral is None
    assert fission.build_report(db, workspace_id=ws, community_id=c.id).joins_via_invite == 0
    community_service.approve_member(db, workspace_id=ws, community_id=c.id, member_id=asked.member.id)
    db.commit()  # the member_joined signal records the referral in its own transaction
    db.expire_all()
    referral = fission.get_referral(db, c.id, friend)
    assert referral is not None and referral.inviter_customer_id == host and referral.device_id == "dev-f"
    assert fission.build_report(db, workspace_id=ws, community_id=c.id).joins_via_invite == 1


def test_the_community_demo_job_runs_the_fission_step(db: Session, tenant: Tenant) -> None:
    from shequn.community import tasks as community_tasks
    from shequn.core.jobs import enqueue_job
    from shequn.core.models import JobRun

    ws = tenant.workspace_id
    customers(db, ws, 120, prefix="demojob")
    db.commit()
    enqueue_job(db, workspace_id=ws, kind=community_tasks.DEMO_JOB, params={"scale": 0.4})
    db.commit()
    db.expire_all()
    job = db.scalar(select(JobRun).where(JobRun.kind == community_tasks.DEMO_JOB))
    assert job is not None and job.status == "succeeded", job.error if job else None
    part = job.result["fission"]
    assert part["referrals"] == 9 and part["rewards"] >= 1
    rep = fission.build_report(db, workspace_id=ws, community_id=part["community_id"])
    assert rep.max_depth == 4 and rep.flags == {"open": 1}
