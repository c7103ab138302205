"""Community core services: join rules, leaving, the posting gate's basics, activity, signals."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.audience.schemas import CustomerIn, IdentityIn
from shequn.community import service as community_service
from shequn.community.models import CommunityMemberChange
from shequn.core import signals
from tests.conftest import Tenant


def make_customers(db: Session, workspace_id: int, n: int, prefix: str = "c") -> list[int]:
    """n new customers of the workspace (WeChat openids prefix-0 … prefix-n-1)."""
    people: list[CustomerIn | None] = [
        CustomerIn(identities=[IdentityIn("wechat", "openid", f"{prefix}-{i}")], name=f"成员{i}") for i in range(n)
    ]
    res = audience_service.resolve_customers(db, workspace_id=workspace_id, people=people)
    ids = [i for i in res.ids if i is not None]
    assert len(ids) == n
    return ids


def make_community(db: Session, workspace_id: int, **values: object) -> community_service.Community:
    """A community with sensible defaults."""
    values = {"name": "茶友品鉴群", "platform": "wecom_group", **values}
    return community_service.create_community(db, workspace_id=workspace_id, **values)


@pytest.fixture
def received() -> Iterator[list[signals.Signal]]:
    """Signals community.member_joined/left delivered after commit."""
    got: list[signals.Signal] = []
    signals.connect(community_service.MEMBER_JOINED, got.append)
    signals.connect(community_service.MEMBER_LEFT, got.append)
    yield got
    signals.disconnect(community_service.MEMBER_JOINED, got.append)
    signals.disconnect(community_service.MEMBER_LEFT, got.append)


def _history(db: Session, member_id: int) -> list[str]:
    return list(
        db.scalars(
            select(CommunityMemberChange.action)
            .where(CommunityMemberChange.member_id == member_id)
            .order_by(CommunityMemberChange.id)
        )
    )


def test_public_join_is_active_idempotent_and_signalled(db: Session, tenant: Tenant, received) -> None:
    ws = tenant.workspace_id
    c = make_community(db, ws)
    (cid,) = make_customers(db, ws, 1)
    m = community_service.join_community(db, workspace_id=ws, community_id=c.id, customer_id=cid, source="h5")
    again = community_service.join_community(db, workspace_id=ws, community_id=c.id, customer_id=cid, source="h5")
    db.commit()
    assert m.id == again.id and m.status == "active" and m.probation_until is not None
    assert _history(db, m.id) == ["joined"]
    assert c.members_count == 1
    assert [s.name for s in received] == ["community.member_joined"]
    assert received[0].payload == {
        "community_id": c.id,
        "customer_id": cid,
        "member_id": m.id,
        "invite_id": None,
        "inviter_customer_id": None,
    }
    pairs = community_service.list_communities_of(db, workspace_id=ws, customer_id=cid)
    assert [(x.id, y.id) for x, y in pairs] == [(c.id, m.id)]


def test_capacity_private_approval_and_removed_cannot_rejoin(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    full = make_community(db, ws, name="小群", capacity=1)
    a, b, d = make_customers(db, ws, 3)
    community_service.join_community(db, workspace_id=ws, community_id=full.id, customer_id=a, source="h5")
    with pytest.raises(community_service.CommunityFull):
        community_service.join_community(db, workspace_id=ws, community_id=full.id, customer_id=b, source="h5")
    assert community_service.get_membership(db, workspace_id=ws, community_id=full.id, customer_id=b) is None

    private = make_community(db, ws, name="新品体验官", visibility="private")
    m = community_service.join_community(db, workspace_id=ws, community_id=private.id, customer_id=b, source="h5")
    assert m.status == "pending" and private.members_count == 0
    with pytest.raises(community_service.NotAMember):
        community_service.check_can_post(db, workspace_id=ws, community_id=private.id, customer_id=b, text="你好")
    community_service.approve_member(db, workspace_id=ws, community_id=private.id, member_id=m.id)
    assert m.status == "active" and private.members_count == 1
    pre = community_service.join_community(
        db, workspace_id=ws, community_id=private.id, customer_id=d, source="invite", invite_id=7, approved=True
    )
    assert pre.status == "active" and pre.invite_id == 7

    community_service.leave_community(db, workspace_id=ws, community_id=private.id, customer_id=d, cause="removed")
    with pytest.raises(community_service.MemberRemoved):
        community_service.join_community(
            db, workspace_id=ws, community_id=private.id, customer_id=d, source="invite", approved=True
        )
    community_service.leave_community(db, workspace_id=ws, community_id=full.id, customer_id=a)
    back = community_service.join_community(db, workspace_id=ws, community_id=full.id, customer_id=a, source="h5")
    assert back.status == "active" and _history(db, back.id) == ["joined", "left", "rejoined"]
    db.commit()


def test_semi_public_needs_an_invite(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c = make_community(db, ws, visibility="semi_public")
    a, b = make_customers(db, ws, 2)
    with pytest.raises(community_service.InviteRequired):
        community_service.join_community(db, workspace_id=ws, community_id=c.id, customer_id=a, source="h5")
    m = community_service.join_community(db, workspace_id=ws, community_id=c.id, customer_id=b, source="invite")
    assert m.status == "active"
    assert community_service.can_read(db, c, b) and not community_service.can_read(db, c, None)


def test_gate_and_activity(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c = make_community(db, ws)
    (a,) = make_customers(db, ws, 1)
    community_service.join_community(db, workspace_id=ws, community_id=c.id, customer_id=a, source="h5")
    community_service.check_can_post(db, workspace_id=ws, community_id=c.id, customer_id=a, text="今天的龙井真香")
    with pytest.raises(community_service.PolicyViolation) as err:
        community_service.check_can_post(
            db, workspace_id=ws, community_id=c.id, customer_id=a, text="加微信 tea_shop88 领券"
        )
    db.commit()  # the caller's contract: keep the enforcement
    assert err.value.details["policy"] == "spam" and err.value.details["action"] == "warn"
    assert len(community_service.list_enforcements(db, workspace_id=ws, community_id=c.id)) == 1
    community_service.record_activity(db, workspace_id=ws, community_id=c.id, customer_id=a, kind="post")
    db.commit()
    m = community_service.get_membership(db, workspace_id=ws, community_id=c.id, customer_id=a)
    assert m is not None and m.last_active_at is not None
    from shequn.audience.models import CustomerActivity

    n = db.scalar(
        select(func.sum(CustomerActivity.count)).where(
            CustomerActivity.customer_id == a, CustomerActivity.ref == "community.post"
        )
    )
    assert n == 1


def test_memberships_follow_a_customer_merge(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    both = make_community(db, ws, name="两个身份都在")
    only_loser = make_community(db, ws, name="只有一个身份在")
    a, b = make_customers(db, ws, 2)
    community_service.join_community(db, workspace_id=ws, community_id=both.id, customer_id=a, source="h5")
    community_service.join_community(db, workspace_id=ws, community_id=both.id, customer_id=b, source="sync")
    community_service.join_community(db, workspace_id=ws, community_id=only_loser.id, customer_id=b, source="csv")
    community_service.record_activity(db, workspace_id=ws, community_id=both.id, customer_id=a, kind="post")
    community_service.record_activity(db, workspace_id=ws, community_id=both.id, customer_id=b, kind="post")
    db.commit()
    assert both.members_count == 2
    # One person turns out to hold both WeChat openids: audience merges b into a.
    person = CustomerIn(identities=[IdentityIn("wechat", "openid", "c-0"), IdentityIn("wechat", "openid", "c-1")])
    audience_service.resolve_customers(db, workspace_id=ws, people=[person])
    db.commit()
    db.expire_all()
    rows = community_service.list_communities_of(db, workspace_id=ws, customer_id=a)
    assert sorted(c.name for c, _ in rows) == ["两个身份都在", "只有一个身份在"]
    assert community_service.get_community(db, workspace_id=ws, community_id=both.id).members_count == 1
    assert community_service.list_communities_of(db, workspace_id=ws, customer_id=b) == []
    h = community_service.community_health(db, workspace_id=ws, community_id=both.id)
    assert h.top_contributors[0].customer_id == a and h.top_contributors[0].count == 2
    m = community_service.get_membership(db, workspace_id=ws, community_id=both.id, customer_id=a)
    assert m is not None and len(_history(db, m.id)) == 2  # both identities' join history is kept
