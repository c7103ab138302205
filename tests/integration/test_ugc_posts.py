"""UGC posts, topics, comments, Q&A, reactions and moderation (services and the operator API)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

# Registers its Session listeners now: imported lazily inside an after-commit callback it would mutate the
# listener deque SQLAlchemy is iterating (reported to the lead; not a UGC problem).
from shequn.audience import engine as _engine  # noqa: F401
from shequn.audience.models import CustomerActivity
from shequn.community import service as community_service
from shequn.community.models import CommunityEnforcement
from shequn.community.ugc import service as ugc_service
from shequn.community.ugc.errors import (
    AnswerNotAcceptable,
    EmptyContent,
    MembersOnly,
    NotAQuestion,
    NotTheAsker,
    UnknownReaction,
)
from shequn.community.ugc.models import Reaction
from tests.conftest import Tenant
from tests.integration.test_communities_core import make_community, make_customers


def _member(db: Session, ws: int, community_id: int, n: int = 1, prefix: str = "u") -> list[int]:
    ids = make_customers(db, ws, n, prefix=prefix)
    for cid in ids:
        community_service.join_community(db, workspace_id=ws, community_id=community_id, customer_id=cid, source="h5")
    db.commit()
    return ids


def _post(db: Session, ws: int, community_id: int, customer_id: int, body: str, **kw: object) -> ugc_service.Post:
    post = ugc_service.create_post(
        db, workspace_id=ws, community_id=community_id, customer_id=customer_id, body=body, **kw
    )
    db.commit()
    return post


def test_parse_hashtags_weibo_and_plain() -> None:
    assert ugc_service.parse_hashtags("今天喝 #明前龙井# 配 #Tea #茶具 分享 #明前龙井#") == ["明前龙井", "tea", "茶具"]
    assert ugc_service.parse_hashtags("no tags, just # alone and ##") == []
    assert ugc_service.parse_hashtags("#春茶 上新#") == ["春茶 上新"]


def test_post_with_topics_counts_and_activity(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c = make_community(db, ws)
    a, b = _member(db, ws, c.id, 2)
    p1 = _post(db, ws, c.id, a, "第一次冲泡 #明前龙井# 好香 #春茶")
    _post(db, ws, c.id, b, "我也买了 #明前龙井#")
    assert p1.status == "approved" and p1.hashtags == ["明前龙井", "春茶"]
    assert p1.author_name == "成**"  # masked, no group nickname
    topics, total = ugc_service.list_topics(db, workspace_id=ws)
    assert total == 2 and [(t.name, t.posts_count) for t in topics] == [("明前龙井", 2), ("春茶", 1)]
    rows, n = ugc_service.list_posts(db, workspace_id=ws, flt=ugc_service.PostFilter(topic="春茶"))
    assert n == 1 and rows[0].id == p1.id
    # Every accepted post feeds the audience as community.post
    got = db.scalar(
        select(func.sum(CustomerActivity.count)).where(
            CustomerActivity.customer_id == a, CustomerActivity.ref == "community.post"
        )
    )
    assert got == 1


def test_policy_gate_refuses_and_the_enforcement_survives(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c = make_community(db, ws)
    (a,) = _member(db, ws, c.id)
    (outsider,) = make_customers(db, ws, 1, prefix="out")
    db.commit()
    with pytest.raises(community_service.NotAMember):
        ugc_service.create_post(db, workspace_id=ws, community_id=c.id, customer_id=outsider, body="hi")
    db.rollback()
    with pytest.raises(community_service.PolicyViolation):
        ugc_service.create_post(
            db, workspace_id=ws, community_id=c.id, customer_id=a, body="加我微信 wx123456 领优惠 http://spam.example"
        )
    db.commit()  # what the routes do: keep the enforcement, nothing of the post
    assert db.scalar(select(func.count()).select_from(CommunityEnforcement)) >= 1
    assert ugc_service.list_posts(db, workspace_id=ws, flt=ugc_service.PostFilter())[1] == 0
    with pytest.raises(EmptyContent):
        ugc_service.create_post(db, workspace_id=ws, community_id=c.id, customer_id=a, body="   ")


def test_pre_moderation_hides_until_approved(client, db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c = make_community(db, ws)
    a, b = _member(db, ws, c.id, 2)
    ugc_service.update_settings(db, workspace_id=ws, changes={"community_moderation": {str(c.id): "pre"}})
    db.commit()
    post = _post(db, ws, c.id, a, "等待审核的帖子 #新茶#")
    assert post.status == "pending"
    # The author sees it; another member does not; the topic counts approved posts only.
    mine = ugc_service.list_posts(
        db, workspace_id=ws, flt=ugc_service.PostFilter(community_id=c.id, viewer_customer_id=a)
    )
    theirs = ugc_service.list_posts(
        db, workspace_id=ws, flt=ugc_service.PostFilter(community_id=c.id, viewer_customer_id=b)
    )
    assert mine[1] == 1 and theirs[1] == 0
    assert ugc_service.get_topic(db, workspace_id=ws, name="新茶").posts_count == 0

    r = client.post(
        "/api/v1/ugc/moderation",
        json={"item_type": "post", "ids": [post.id], "action": "approve"},
        headers=tenant.headers("operator"),
    )
    assert r.status_code == 200 and r.json() == {"changed": 1}
    db.expire_all()
    assert ugc_service.get_topic(db, workspace_id=ws, name="新茶").posts_count == 1
    theirs = ugc_service.list_posts(
        db, workspace_id=ws, flt=ugc_service.PostFilter(community_id=c.id, viewer_customer_id=b)
    )
    assert theirs[1] == 1
    # Hiding takes it away again, unpins it, and a repeat changes nothing.
    client.post(f"/api/v1/ugc/posts/{post.id}/feature", json={"featured": True}, headers=tenant.headers())
    body = {"item_type": "post", "ids": [post.id], "action": "hide", "reason": "off topic"}
    assert client.post("/api/v1/ugc/moderation", json=body, headers=tenant.headers()).json() == {"changed": 1}
    assert client.post("/api/v1/ugc/moderation", json=body, headers=tenant.headers()).json() == {"changed": 0}
    got = client.get(f"/api/v1/ugc/posts/{post.id}", headers=tenant.headers()).json()
    assert got["status"] == "hidden" and got["moderation_reason"] == "off topic" and got["featured"] is False
    assert got["moderated_at"] is not None  # moderated_by names the operator (API tokens have none)


def test_questions_answers_and_accepted_answer_rules(client, db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c = make_community(db, ws)
    asker, helper, other = _member(db, ws, c.id, 3)
    q = _post(db, ws, c.id, asker, "龙井怎么泡不苦？", kind="question", title="泡法求助")
    plain = _post(db, ws, c.id, asker, "普通帖子")
    ans = ugc_service.create_comment(db, workspace_id=ws, post_id=q.id, customer_id=helper, body="85度水，别闷")
    reply = ugc_service.create_comment(
        db, workspace_id=ws, post_id=q.id, customer_id=other, body="同意", parent_id=ans.id
    )
    db.commit()
    db.refresh(q)
    assert q.comments_count == 2
    with pytest.raises(NotTheAsker):
        ugc_service.accept_answer(db, workspace_id=ws, post_id=q.id, comment_id=ans.id, customer_id=other)
    with pytest.raises(AnswerNotAcceptable):  # a reply is not an answer
        ugc_service.accept_answer(db, workspace_id=ws, post_id=q.id, comment_id=reply.id, customer_id=asker)
    with pytest.raises(NotAQuestion):
        ugc_service.accept_answer(db, workspace_id=ws, post_id=plain.id, comment_id=None, customer_id=asker)
    ugc_service.accept_answer(db, workspace_id=ws, post_id=q.id, comment_id=ans.id, customer_id=asker)
    db.commit()
    assert q.accepted_comment_id == ans.id
    # An operator answers through the API and may change the accepted answer.
    r = client.post(f"/api/v1/ugc/posts/{q.id}/comments", json={"body": "官方：80-85℃"}, headers=tenant.headers())
    assert r.status_code == 201 and r.json()["status"] == "approved"
    official = r.json()["id"]
    r = client.post(f"/api/v1/ugc/posts/{q.id}/accept", json={"comment_id": official}, headers=tenant.headers())
    assert r.status_code == 200 and r.json()["accepted_comment_id"] == official
    # Hiding the accepted answer clears the choice and the count follows.
    client.post(
        "/api/v1/ugc/moderation",
        json={"item_type": "comment", "ids": [official], "action": "hide"},
        headers=tenant.headers(),
    )
    got = client.get(f"/api/v1/ugc/posts/{q.id}", headers=tenant.headers()).json()
    assert got["accepted_comment_id"] is None and got["comments_count"] == 2
    r = client.post(f"/api/v1/ugc/posts/{q.id}/accept", json={"comment_id": official}, headers=tenant.headers())
    assert r.status_code == 409 and r.json()["code"] == "ugc_answer_not_acceptable"
    assert client.post(f"/api/v1/ugc/posts/{plain.id}/accept", json={}, headers=tenant.headers()).status_code == 409


def test_reactions_are_idempotent(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c = make_community(db, ws)
    a, b = _member(db, ws, c.id, 2)
    post = _post(db, ws, c.id, a, "晒茶")
    for _ in range(3):
        counts = ugc_service.set_reaction(
            db, workspace_id=ws, customer_id=b, item_type="post", item_id=post.id, kind="like", on=True
        )
    ugc_service.set_reaction(
        db, workspace_id=ws, customer_id=b, item_type="post", item_id=post.id, kind="love", on=True
    )
    counts = ugc_service.set_reaction(
        db, workspace_id=ws, customer_id=a, item_type="post", item_id=post.id, kind="like", on=True
    )
    db.commit()
    assert counts == {"like": 2, "love": 1}
    for _ in range(2):
        counts = ugc_service.set_reaction(
            db, workspace_id=ws, customer_id=b, item_type="post", item_id=post.id, kind="like", on=False
        )
    db.commit()
    assert counts == {"like": 1, "love": 1}
    assert db.scalar(select(func.count()).select_from(Reaction)) == 2
    with pytest.raises(UnknownReaction):
        ugc_service.set_reaction(
            db, workspace_id=ws, customer_id=b, item_type="post", item_id=post.id, kind="💩", on=True
        )


def test_private_community_feed_is_members_only(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c = make_community(db, ws, name="VIP 私享群", visibility="private")
    semi = make_community(db, ws, name="半公开群", visibility="semi_public")
    (outsider,) = make_customers(db, ws, 1, prefix="o")
    db.commit()
    with pytest.raises(MembersOnly):
        ugc_service.feed_access(db, workspace_id=ws, community_id=c.id, customer_id=outsider)
    assert ugc_service.feed_access(db, workspace_id=ws, community_id=semi.id, customer_id=None) == "featured"


def test_workspace_isolation_and_roles(client, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c = make_community(db, ws)
    (a,) = _member(db, ws, c.id)
    post = _post(db, ws, c.id, a, "本品牌的帖子")
    other = other_tenant.headers()
    assert client.get(f"/api/v1/ugc/posts/{post.id}", headers=other).status_code == 404
    assert client.get("/api/v1/ugc/posts", headers=other).json()["total"] == 0
    r = client.post(
        "/api/v1/ugc/moderation", json={"item_type": "post", "ids": [post.id], "action": "hide"}, headers=other
    )
    assert r.status_code == 404
    r = client.post(f"/api/v1/communities/{c.id}/posts", json={"body": "串号"}, headers=other)
    assert r.status_code == 404
    # Viewers read but cannot moderate or post.
    viewer = tenant.headers("viewer")
    assert client.get("/api/v1/ugc/posts", headers=viewer).json()["total"] == 1
    r = client.post(
        "/api/v1/ugc/moderation", json={"item_type": "post", "ids": [post.id], "action": "hide"}, headers=viewer
    )
    assert r.status_code == 403
    assert client.post(f"/api/v1/communities/{c.id}/posts", json={"body": "x"}, headers=viewer).status_code == 403
