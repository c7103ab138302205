"""UGC challenges: entries from the hashtag and by explicit entering, voting rules (one per entry, a maximum,
no self-vote, only inside the window), moderation withdrawing entries, winners by votes or judges' scores with
deterministic ties, prizes and results, roles and isolation between brands."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

# Registers the audience Session listeners at import (see tests/integration/test_ugc_posts.py).
from shequn.audience import engine as _engine  # noqa: F401
from shequn.community import service as community_service
from shequn.community.ugc import service as ugc_service
from shequn.core.clock import utcnow
from shequn.identity import service as identity_service
from shequn.promotions.challenges import service
from shequn.promotions.challenges.errors import DecideNotReady, SelfVote, VotingClosed
from shequn.promotions.challenges.models import Challenge, ChallengeEntry
from shequn.promotions.challenges.schemas import ChallengeIn
from tests.conftest import Tenant
from tests.integration.test_communities_core import make_community, make_customers
from tests.integration.test_gatherings_member import sign_in
from tests.integration.test_ugc_posts import _member, _post

API = "/api/v1/challenges"
MAPI = "/api/v1/m/challenges"
TAG = "春茶晒单"


def make_challenge(db: Session, tenant: Tenant, community_id: int, *, publish: bool = True, **extra: Any) -> Challenge:
    """A challenge whose entry and voting windows are open now."""
    now = utcnow()
    values: dict[str, Any] = {
        "name": "春茶晒单大赛",
        "community_id": community_id,
        "hashtag": f"#{TAG}#",
        "entry_starts_at": now - timedelta(hours=1),
        "entry_ends_at": now + timedelta(hours=1),
        "vote_starts_at": now - timedelta(hours=1),
        "vote_ends_at": now + timedelta(hours=2),
        "max_votes_per_member": 2,
        "winners_cap": 2,
        **extra,
    }
    c = service.create_challenge(db, workspace_id=tenant.workspace_id, data=ChallengeIn(**values))
    if publish:
        service.publish_challenge(db, workspace_id=tenant.workspace_id, challenge_id=c.id)
    db.commit()
    return c


def close_voting(db: Session, challenge_id: int) -> None:
    """Move the windows into the past (as time would)."""
    past = utcnow() - timedelta(seconds=1)
    db.execute(update(Challenge).where(Challenge.id == challenge_id).values(vote_ends_at=past, entry_ends_at=past))
    db.commit()


def test_entries_voting_winners_and_results_end_to_end(client, db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    community = make_community(db, ws)
    a, b, c, d = _member(db, ws, community.id, 4)
    pa = _post(db, ws, community.id, a, f"我的春茶茶席 #{TAG}#")
    pb = _post(db, ws, community.id, b, f"#{TAG}# 今年的明前龙井")
    pc = _post(db, ws, community.id, c, "没有带话题的帖子")
    now = utcnow()
    body = {
        "name": "春茶晒单大赛",
        "community_id": community.id,
        "hashtag": f"#{TAG}#",
        "entry_starts_at": (now - timedelta(hours=1)).isoformat(),
        "entry_ends_at": (now + timedelta(hours=1)).isoformat(),
        "vote_starts_at": (now - timedelta(hours=1)).isoformat(),
        "vote_ends_at": (now + timedelta(hours=2)).isoformat(),
        "max_votes_per_member": 2,
        "winners_cap": 2,
        "prize_kind": "physical",
        "prize_name": "茶礼盒",
        "prize_cost_fen": 9900,
    }
    h = tenant.headers("operator")
    res = client.post(API, json=body, headers=h)
    assert res.status_code == 201, res.text
    cid = res.json()["id"]
    assert res.json()["hashtag"] == TAG
    assert client.post(f"{API}/{cid}/publish", headers=h).status_code == 200
    assert client.post(f"{API}/{cid}/sync", headers=h).json()["entries_count"] == 2
    listed = client.get(f"{API}/{cid}/entries", headers=tenant.headers("viewer")).json()
    assert {e["post_id"] for e in listed["items"]} == {pa.id, pb.id}
    ea, eb = (next(e["id"] for e in listed["items"] if e["post_id"] == p.id) for p in (pa, pb))

    # c enters a post without the hashtag explicitly; nobody can enter someone else's post.
    sign_in(client, tenant, c)
    entered = client.post(f"{MAPI}/{cid}/entries", json={"post_id": pc.id})
    assert entered.status_code == 201, entered.text
    again = client.post(f"{MAPI}/{cid}/entries", json={"post_id": pc.id})
    assert again.json()["id"] == entered.json()["id"]
    stolen = client.post(f"{MAPI}/{cid}/entries", json={"post_id": pa.id})
    assert stolen.status_code == 409 and stolen.json()["code"] == "challenge_post_not_eligible"
    ec = entered.json()["id"]

    sign_in(client, tenant, d)
    first = client.post(f"{MAPI}/{cid}/entries/{ea}/vote", json={})
    assert first.status_code == 200 and first.json() == {
        "entry_id": ea,
        "already_voted": False,
        "entry_votes": 1,
        "votes_left": 1,
    }
    repeat = client.post(f"{MAPI}/{cid}/entries/{ea}/vote", json={})
    assert repeat.json()["already_voted"] is True and repeat.json()["entry_votes"] == 1
    assert client.post(f"{MAPI}/{cid}/entries/{eb}/vote", json={}).json()["votes_left"] == 0
    over = client.post(f"{MAPI}/{cid}/entries/{ec}/vote", json={})
    assert over.status_code == 409 and over.json()["code"] == "challenge_vote_limit"
    gallery = client.get(f"{MAPI}/{cid}/entries").json()
    assert [e["voted"] for e in gallery if e["id"] in (ea, eb)] == [True, True]
    assert all(e["win_rank"] is None for e in gallery)

    sign_in(client, tenant, a)
    own = client.post(f"{MAPI}/{cid}/entries/{ea}/vote", json={})
    assert own.status_code == 403 and own.json()["code"] == "challenge_self_vote"
    assert client.post(f"{MAPI}/{cid}/entries/{eb}/vote", json={}).status_code == 200
    sign_in(client, tenant, c)
    assert client.post(f"{MAPI}/{cid}/entries/{eb}/vote", json={}).status_code == 200
    # b: 3 votes, a: 1, c's entry: 0 (no votes, not eligible to win)

    assert client.post(f"{API}/{cid}/decide", headers=h).json()["code"] == "challenge_decide_not_ready"
    close_voting(db, cid)
    late = client.post(f"{MAPI}/{cid}/entries/{ec}/vote", json={})
    assert late.status_code == 409 and late.json()["code"] == "challenge_voting_closed"
    decided = client.post(f"{API}/{cid}/decide", headers=h)
    assert decided.status_code == 200 and decided.json()["status"] == "decided"
    assert client.get(f"{MAPI}/{cid}/winners").json() == []  # not published yet
    assert client.post(f"{API}/{cid}/publish-results", headers=h).status_code == 200
    won = client.get(f"{MAPI}/{cid}/winners").json()
    assert [(w["id"], w["win_rank"]) for w in won] == [(eb, 1), (ea, 2)]
    ranked = client.get(f"{API}/{cid}/entries", headers=h).json()["items"]
    assert [e["prize_status"] for e in ranked[:2]] == ["to_ship", "to_ship"]
    assert client.post(f"{API}/{cid}/entries/{eb}/ship", headers=h).json()["prize_status"] == "shipped"
    assert client.post(f"{API}/{cid}/decide", headers=h).status_code == 409  # once


def test_vote_outside_window_self_vote_and_moderation(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    community = make_community(db, ws)
    a, b = _member(db, ws, community.id, 2)
    pa = _post(db, ws, community.id, a, f"#{TAG}# 一")
    ch = make_challenge(db, tenant, community.id, vote_starts_at=utcnow() + timedelta(minutes=30))
    service.sync_entries(db, challenge=ch)
    db.commit()
    (entry,) = service.list_entries(db, challenge=ch)[0]
    with pytest.raises(VotingClosed):
        service.vote(db, workspace_id=ws, challenge_id=ch.id, entry_id=entry.id, customer_id=b)
    open_at = utcnow() + timedelta(minutes=31)
    service.vote(db, workspace_id=ws, challenge_id=ch.id, entry_id=entry.id, customer_id=b, now=open_at)
    with pytest.raises(SelfVote):
        service.vote(db, workspace_id=ws, challenge_id=ch.id, entry_id=entry.id, customer_id=a, now=open_at)
    with pytest.raises(VotingClosed):
        service.vote(
            db,
            workspace_id=ws,
            challenge_id=ch.id,
            entry_id=entry.id,
            customer_id=b,
            now=ch.vote_ends_at + timedelta(seconds=1),
        )
    db.commit()
    # Hidden by a moderator: the entry is withdrawn at the next sync, and back when approved again.
    owner = identity_service.Actor(workspace_id=ws, role="owner", operator_id=tenant.owner_id)
    ugc_service.moderate(db, owner, item_type="post", ids=[pa.id], action="hide")
    service.sync_entries(db, challenge=ch)
    db.commit()
    assert service.list_entries(db, challenge=ch)[1] == 0 and db.get(Challenge, ch.id).entries_count == 0
    ugc_service.moderate(db, owner, item_type="post", ids=[pa.id], action="approve")
    service.sync_entries(db, challenge=ch)
    db.commit()
    assert service.list_entries(db, challenge=ch)[1] == 1


def test_ties_are_broken_deterministically(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    community = make_community(db, ws)
    authors = _member(db, ws, community.id, 4, prefix="au")
    voters = _member(db, ws, community.id, 2, prefix="vo")
    for i, who in enumerate(authors):
        _post(db, ws, community.id, who, f"#{TAG}# 作品 {i}")
    ch = make_challenge(db, tenant, community.id, winners_cap=2, max_votes_per_member=4)
    service.sync_entries(db, challenge=ch)
    rows = service.list_entries(db, challenge=ch, order="newest")[0][::-1]  # oldest first
    # Entries 1 and 2 get two votes each, 0 and 3 one each: 1 and 2 tie for first.
    for entry in rows[1:3]:
        for v in voters:
            service.vote(db, workspace_id=ws, challenge_id=ch.id, entry_id=entry.id, customer_id=v)
    for entry in (rows[0], rows[3]):
        service.vote(db, workspace_id=ws, challenge_id=ch.id, entry_id=entry.id, customer_id=voters[0])
    db.commit()
    close_voting(db, ch.id)
    with pytest.raises(DecideNotReady):
        service.decide(db, workspace_id=ws, challenge_id=ch.id, now=utcnow() - timedelta(hours=1))
    winners = service.decide(db, workspace_id=ws, challenge_id=ch.id)
    db.commit()
    # Equal votes: the earlier post ranks first (then the lower id), every time.
    assert [w.id for w in winners] == [rows[1].id, rows[2].id]
    again = service.pick_winners(db.get(Challenge, ch.id), service.standings(db, challenge=db.get(Challenge, ch.id)))
    assert [w.id for w in again] == [rows[1].id, rows[2].id]


def test_judging_mode(client, db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    community = make_community(db, ws)
    a, b, c = _member(db, ws, community.id, 3)
    for who in (a, b, c):
        _post(db, ws, community.id, who, f"#{TAG}# 评审作品")
    ch = make_challenge(db, tenant, community.id, mode="judge", winners_cap=2, prize_kind="points", prize_points=30)
    service.sync_entries(db, challenge=ch)
    db.commit()
    rows = service.list_entries(db, challenge=ch, order="newest")[0][::-1]
    h = tenant.headers("operator")
    sign_in(client, tenant, c)
    assert client.post(f"{MAPI}/{ch.id}/entries/{rows[0].id}/vote", json={}).json()["code"] == "challenge_voting_closed"
    for entry, score in zip(rows, (70, 90, 70), strict=True):
        r = client.post(f"{API}/{ch.id}/entries/{entry.id}/score", json={"score": score}, headers=h)
        assert r.status_code == 200 and r.json()["score"] == score
    assert client.post(f"{API}/{ch.id}/entries/{rows[0].id}/score", json={"score": 101}, headers=h).status_code == 422
    close_voting(db, ch.id)
    assert client.post(f"{API}/{ch.id}/decide", headers=h).status_code == 200
    ranked = client.get(f"{API}/{ch.id}/entries?order=score", headers=h).json()["items"]
    assert [(e["id"], e["win_rank"], e["prize_status"]) for e in ranked] == [
        (rows[1].id, 1, "granted"),
        (rows[0].id, 2, "granted"),
        (rows[2].id, None, "none"),
    ]


def test_viewer_cannot_write_and_brands_are_isolated(client, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    ws = tenant.workspace_id
    community = make_community(db, ws)
    (a,) = _member(db, ws, community.id, 1)
    _post(db, ws, community.id, a, f"#{TAG}# 作品")
    ch = make_challenge(db, tenant, community.id)
    v = tenant.headers("viewer")
    assert client.post(f"{API}/{ch.id}/sync", headers=v).status_code == 403
    assert client.post(f"{API}/{ch.id}/cancel", headers=v).status_code == 403
    assert client.get(f"{API}/{ch.id}", headers=v).status_code == 200
    other = other_tenant.headers("owner")
    for path in (f"{API}/{ch.id}", f"{API}/{ch.id}/entries"):
        assert client.get(path, headers=other).status_code == 404
    assert client.post(f"{API}/{ch.id}/cancel", headers=other).status_code == 404
    body = {
        **ChallengeIn(
            name="x",
            community_id=community.id,
            hashtag="x",
            entry_starts_at=utcnow(),
            entry_ends_at=utcnow() + timedelta(hours=1),
            vote_starts_at=utcnow(),
            vote_ends_at=utcnow() + timedelta(hours=1),
        ).model_dump(mode="json")
    }
    # Another brand cannot point a challenge at this brand's community.
    res = client.post(API, json=body, headers=other)
    assert res.status_code == 422 and "community_id" in res.text
    (stranger,) = _member(db, other_tenant.workspace_id, make_community(db, other_tenant.workspace_id).id, 1, "st")
    sign_in(client, other_tenant, stranger)
    assert client.get(f"{MAPI}/{ch.id}").status_code == 404
    entry = service.list_entries(db, challenge=ch)[0]
    assert client.post(f"{MAPI}/{ch.id}/entries/{entry[0].id if entry else 1}/vote", json={}).status_code == 404


def test_private_community_entries_are_hidden_from_outsiders(client, db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    community = make_community(db, ws, visibility="private")
    (a,) = make_customers(db, ws, 1, prefix="in")
    community_service.join_community(
        db, workspace_id=ws, community_id=community.id, customer_id=a, source="manual", approved=True
    )
    db.commit()
    _post(db, ws, community.id, a, f"#{TAG}# 私密群作品")
    ch = make_challenge(db, tenant, community.id)
    service.sync_entries(db, challenge=ch)
    db.commit()
    (entry,) = service.list_entries(db, challenge=ch)[0]
    (outsider,) = _member(db, ws, make_community(db, ws, name="另一个群").id, 1, prefix="out")
    sign_in(client, tenant, outsider)
    assert client.get(f"{MAPI}/{ch.id}/entries").json() == []
    refused = client.post(f"{MAPI}/{ch.id}/entries/{entry.id}/vote", json={})
    assert refused.status_code == 404 and refused.json()["code"] == "challenge_entry_not_found"
    assert "data-members-only" in client.get(f"/m/{tenant.slug}/challenges/{ch.id}").text


def test_blacklisted_member_cannot_vote_and_the_sweep_finds_new_posts(client, db: Session, tenant: Tenant) -> None:
    from shequn.promotions.challenges import tasks

    ws = tenant.workspace_id
    community = make_community(db, ws)
    a, b = _member(db, ws, community.id, 2)
    ch = make_challenge(db, tenant, community.id)
    _post(db, ws, community.id, a, f"#{TAG}# 定时同步的作品")
    assert tasks.sweep() == {"challenges": 1, "new_entries": 1}
    assert tasks.sweep()["new_entries"] == 0
    db.expire_all()
    (entry,) = service.list_entries(db, challenge=db.get(Challenge, ch.id))[0]
    block = {"kind": "customer", "value": str(b), "reason": "刷票"}
    assert client.post("/api/v1/guard/blocks", json=block, headers=tenant.headers("owner")).status_code in (200, 201)
    sign_in(client, tenant, b)
    refused = client.post(f"{MAPI}/{ch.id}/entries/{entry.id}/vote", json={})
    assert refused.status_code == 403 and refused.json()["code"] != "challenge_self_vote"
    assert db.get(ChallengeEntry, entry.id).votes_count == 0
