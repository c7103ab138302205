"""The referral tree never forms a cycle and rewards are granted exactly once, in any order and under races."""

from __future__ import annotations

import threading
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.community import service as community_service
from shequn.community.fission import service as fission
from shequn.community.fission.models import Invite, Referral, Reward
from shequn.core.db import new_session
from shequn.core.errors import ShequnError
from tests.conftest import Tenant
from tests.integration.test_fission import community, customers, member_of

PEOPLE = 6
_counter = iter(range(10**9))

ops = st.lists(
    st.one_of(
        st.tuples(st.just("invite"), st.integers(0, PEOPLE - 1), st.integers(0, PEOPLE - 1)),
        st.tuples(st.just("leave"), st.integers(0, PEOPLE - 1), st.just(0)),
    ),
    min_size=1,
    max_size=25,
)


def _pool(db: Session, ws: int) -> list[int]:
    key = f"pool-{ws}"
    if key not in db.info:
        db.info[key] = customers(db, ws, PEOPLE, prefix="tree")
        db.commit()
    return list(db.info[key])


def _apply(db: Session, ws: int, cid: int, people: list[int], op: tuple[str, int, int]) -> None:
    kind, a, b = op
    if kind == "leave":
        community_service.leave_community(db, workspace_id=ws, community_id=cid, customer_id=people[a])
        db.commit()
        return
    inviter, invitee = people[a], people[b]
    member_of(db, ws, cid, inviter)  # an inviter is a member when they share their link
    link = fission.personal_invite(db, workspace_id=ws, community_id=cid, customer_id=inviter)
    try:
        fission.join_by_invite(db, workspace_id=ws, code=link.code, customer_id=invitee)
        db.commit()
    except ShequnError:  # self-invite: refused, nothing written
        db.rollback()


def assert_forest(db: Session, cid: int) -> dict[int, Referral]:
    """Every referee has one parent, following parents always ends, and stored paths are the real ancestors."""
    db.expire_all()
    rows = list(db.scalars(select(Referral).where(Referral.community_id == cid)))
    parent = {r.referee_customer_id: r for r in rows}
    assert len(parent) == len(rows)
    for r in rows:
        assert r.referee_customer_id != r.inviter_customer_id
        chain, node = [], r.inviter_customer_id
        while node in parent:
            assert node not in chain and node != r.referee_customer_id, "cycle"
            chain.append(node)
            node = parent[node].inviter_customer_id
        ancestors = [node, *reversed(chain)]
        assert r.path == "/" + "".join(f"{a}/" for a in ancestors)
        assert r.depth == len(ancestors) and r.root_customer_id == node
    return parent


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=ops, needed=st.integers(1, 3))
def test_random_join_orders_keep_a_forest_and_reward_once(db: Session, tenant: Tenant, steps, needed: int) -> None:
    ws = tenant.workspace_id
    people = _pool(db, ws)
    c = community(db, ws, name=f"树{next(_counter)}")
    m = fission.create_milestone(
        db,
        workspace_id=ws,
        community_id=c.id,
        name="即时奖励",
        invitees_required=needed,
        stay_days=0,
        reward_kind="points",
        reward_value="10",
    )
    db.commit()
    # A invites B, then B invites A (after A left) must not close a loop.
    for step in [*steps, ("invite", 0, 1), ("leave", 0, 0), ("invite", 1, 0)]:
        _apply(db, ws, c.id, people, step)
    parent = assert_forest(db, c.id)
    per_inviter: dict[int, int] = {}
    for r in parent.values():
        per_inviter[r.inviter_customer_id] = per_inviter.get(r.inviter_customer_id, 0) + 1
    rewarded = list(db.scalars(select(Reward.inviter_customer_id).where(Reward.milestone_id == m.id)))
    assert len(rewarded) == len(set(rewarded))
    assert set(rewarded) == {i for i, n in per_inviter.items() if n >= needed}


def _join_in_thread(code: str, ws: int, customer_id: int, out: list[Any], barrier: threading.Barrier) -> None:
    session = new_session()
    try:
        _join_once(session, code, ws, customer_id, out, barrier)
    except BaseException as exc:  # a failure must show in the assertion, not vanish with the thread
        out.append(repr(exc))
    finally:
        session.close()


def _join_once(
    session: Session, code: str, ws: int, customer_id: int, out: list[Any], barrier: threading.Barrier
) -> None:
    try:
        barrier.wait()
        result = fission.join_by_invite(session, workspace_id=ws, code=code, customer_id=customer_id)
        session.commit()
        out.append(result.member.status)
    except ShequnError as exc:
        session.rollback()
        out.append(exc.code)


def _race(code: str, ws: int, people: list[int]) -> list[Any]:
    out: list[Any] = []
    barrier = threading.Barrier(len(people))
    threads = [threading.Thread(target=_join_in_thread, args=(code, ws, p, out, barrier)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def test_concurrent_joins_grant_the_reward_once_and_respect_max_uses(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c = community(db, ws)
    host, *friends = customers(db, ws, 10, prefix="race")
    member_of(db, ws, c.id, host)
    db.commit()
    fission.create_milestone(
        db,
        workspace_id=ws,
        community_id=c.id,
        name="邀请3人",
        invitees_required=3,
        stay_days=0,
        reward_kind="badge",
        reward_value="达人",
    )
    link = fission.personal_invite(db, workspace_id=ws, community_id=c.id, customer_id=host)
    db.commit()
    assert _race(link.code, ws, friends[:6]) == ["active"] * 6
    assert db.scalar(select(func.count()).select_from(Reward).where(Reward.inviter_customer_id == host)) == 1
    assert db.scalar(select(func.count()).select_from(Referral).where(Referral.community_id == c.id)) == 6
    db.expire_all()
    assert db.get(Invite, link.id).uses == 6  # type: ignore[union-attr]

    # The same person racing themselves through one link uses it once.
    capped = fission.create_invite(db, workspace_id=ws, community_id=c.id, max_uses=1)
    db.commit()
    tries = _race(capped.code, ws, [friends[6]] * 4)
    assert tries.count("active") == 4
    db.expire_all()
    assert db.get(Invite, capped.id).uses == 1  # type: ignore[union-attr]
    # Two people racing for the last seat of a one-use link: one wins, the other is told it is used up.
    last = fission.create_invite(db, workspace_id=ws, community_id=c.id, max_uses=1)
    db.commit()
    assert sorted(_race(last.code, ws, friends[7:9])) == ["active", "invite_used_up"]


def test_concurrent_mutual_invites_never_form_a_cycle(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c = community(db, ws)
    a, b = customers(db, ws, 2, prefix="mutual")
    member_of(db, ws, c.id, a)
    member_of(db, ws, c.id, b)
    db.commit()
    link_a = fission.personal_invite(db, workspace_id=ws, community_id=c.id, customer_id=a)
    link_b = fission.personal_invite(db, workspace_id=ws, community_id=c.id, customer_id=b)
    for who in (a, b):
        community_service.leave_community(db, workspace_id=ws, community_id=c.id, customer_id=who)
    db.commit()
    # Both left; now each rejoins through the other's link at the same moment.
    out: list[Any] = []
    barrier = threading.Barrier(2)
    threads = [
        threading.Thread(target=_join_in_thread, args=(link_a.code, ws, b, out, barrier)),
        threading.Thread(target=_join_in_thread, args=(link_b.code, ws, a, out, barrier)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(out) == ["active", "active"]
    parent = assert_forest(db, c.id)
    assert len(parent) == 1  # exactly one of the two edges was drawn
