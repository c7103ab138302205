"""Community policies: the spam ladder, probation, frequency, banned words, repeats, undo and appeals."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from shequn.community import service as community_service
from shequn.community.models import CommunityMember
from shequn.core.clock import utcnow
from tests.conftest import Tenant
from tests.integration.test_communities_core import make_community, make_customers


def _setup(db: Session, ws: int, **policies: dict[str, Any]) -> tuple[int, int]:
    """A public community (probation off unless asked) with one member: (community_id, customer_id)."""
    c = make_community(db, ws)
    if "probation" not in policies:
        community_service.update_policy(
            db, workspace_id=ws, community_id=c.id, kind="probation", enabled=False, config={}
        )
    for kind, config in policies.items():
        community_service.update_policy(db, workspace_id=ws, community_id=c.id, kind=kind, enabled=True, config=config)
    (cid,) = make_customers(db, ws, 1)
    community_service.join_community(db, workspace_id=ws, community_id=c.id, customer_id=cid, source="h5")
    db.commit()
    return c.id, cid


def _post(db: Session, ws: int, c: int, cid: int, text: str, **kw: Any) -> dict[str, Any] | None:
    """Post through the gate like a route would: commit on refusal, return the refusal's details."""
    try:
        community_service.check_can_post(db, workspace_id=ws, community_id=c, customer_id=cid, text=text, **kw)
    except community_service.PolicyViolation as exc:
        db.commit()
        return dict(exc.details)
    db.commit()
    return None


def _member(db: Session, ws: int, c: int, cid: int) -> CommunityMember:
    db.expire_all()
    m = community_service.get_membership(db, workspace_id=ws, community_id=c, customer_id=cid)
    assert m is not None
    return m


def test_spam_ladder_warn_mute_remove_each_logged(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c, cid = _setup(db, ws, spam={"mute_at": 2, "remove_at": 3, "mute_minutes": 30})
    first = _post(db, ws, c, cid, "加微信 tea_shop88 领优惠券")
    assert first is not None and (first["policy"], first["reason"], first["action"]) == ("spam", "wechat_id", "warn")
    assert _member(db, ws, c, cid).status == "active"

    second = _post(db, ws, c, cid, "低价代购，电话 138-0013-8000")
    assert second is not None and (second["reason"], second["action"]) == ("phone", "mute")
    m = _member(db, ws, c, cid)
    assert m.status == "muted" and m.muted_until is not None and m.muted_until > utcnow() + timedelta(minutes=29)
    with pytest.raises(community_service.MemberMuted):
        _post(db, ws, c, cid, "我又来了")

    m.muted_until = utcnow() - timedelta(seconds=1)  # the mute runs out
    db.commit()
    third = _post(db, ws, c, cid, "扫码进群领红包")
    assert third is not None and (third["reason"], third["action"]) == ("qr_code", "remove")
    assert _member(db, ws, c, cid).status == "removed"
    with pytest.raises(community_service.MemberRemoved):
        community_service.join_community(db, workspace_id=ws, community_id=c, customer_id=cid, source="h5")
    rows = community_service.list_enforcements(db, workspace_id=ws, community_id=c)
    assert [(r.action, r.evidence["strikes"]) for r in reversed(rows)] == [("warn", 1), ("mute", 2), ("remove", 3)]
    assert "tea_shop88" in rows[-1].evidence["excerpt"]


def test_undo_restores_and_appeal_queue(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c, cid = _setup(db, ws, spam={"mute_at": 1, "remove_at": 2})
    details = _post(db, ws, c, cid, "看这里 https://spam.example.com")
    assert details is not None and details["action"] == "mute" and details["reason"] == "link"
    appealed = community_service.appeal_enforcement(
        db, workspace_id=ws, customer_id=cid, enforcement_id=details["enforcement_id"], text="我只是分享官网链接"
    )
    db.commit()
    assert appealed.appeal_status == "pending"
    queue = community_service.list_enforcements(db, workspace_id=ws, appeal_status="pending")
    assert [r.id for r in queue] == [details["enforcement_id"]]
    with pytest.raises(community_service.AppealNotAllowed):
        community_service.appeal_enforcement(
            db, workspace_id=ws, customer_id=cid, enforcement_id=details["enforcement_id"], text="再申诉一次"
        )
    done = community_service.decide_appeal(
        db, workspace_id=ws, enforcement_id=details["enforcement_id"], accept=True, actor_operator_id=tenant.owner_id
    )
    db.commit()
    m = _member(db, ws, c, cid)
    assert done.status == "undone" and done.appeal_status == "accepted"
    assert m.status == "active" and m.strikes == 0

    removal = community_service.operator_action(
        db, workspace_id=ws, community_id=c, member_id=m.id, action="remove", reason="广告", actor_operator_id=1
    )
    db.commit()
    assert _member(db, ws, c, cid).status == "removed"
    community_service.undo_enforcement(db, workspace_id=ws, enforcement_id=removal.id)
    community_service.undo_enforcement(db, workspace_id=ws, enforcement_id=removal.id)  # idempotent
    db.commit()
    assert _member(db, ws, c, cid).status == "active"


def test_appeal_of_someone_elses_enforcement_is_hidden(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c, cid = _setup(db, ws)
    details = _post(db, ws, c, cid, "加V：abc12345 拿货")
    assert details is not None
    with pytest.raises(community_service.EnforcementNotFound):
        community_service.appeal_enforcement(
            db, workspace_id=ws, customer_id=cid + 999, enforcement_id=details["enforcement_id"], text="不是我"
        )


def test_probation_blocks_links_media_and_extra_posts(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c, cid = _setup(db, ws, probation={"days": 7, "max_posts_per_day": 2}, spam={"links": False})
    assert _member(db, ws, c, cid).probation_until is not None
    media = _post(db, ws, c, cid, "晒一下我的茶具", has_media=True)
    assert media is not None and (media["policy"], media["reason"], media["action"]) == (
        "probation",
        "probation_media",
        "refuse",
    )
    link = _post(db, ws, c, cid, "我的博客 www.tea-notes.cn")
    assert link is not None and link["reason"] == "probation_link"
    assert _post(db, ws, c, cid, "大家好，我是新人") is None
    assert _post(db, ws, c, cid, "请问明前龙井怎么泡？") is None
    third = _post(db, ws, c, cid, "还有一个问题")
    assert third is not None and third["reason"] == "probation_frequency"
    m = _member(db, ws, c, cid)
    assert m.strikes == 0 and m.status == "active"  # probation refusals are not strikes
    m.probation_until = utcnow() - timedelta(minutes=1)
    db.commit()
    assert _post(db, ws, c, cid, "晒一下我的茶具", has_media=True) is None


def test_frequency_limit(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c, cid = _setup(db, ws, frequency={"max_posts": 3, "window_minutes": 10})
    for i in range(3):
        assert _post(db, ws, c, cid, f"第{i}条消息") is None
    refused = _post(db, ws, c, cid, "第四条")
    assert refused is not None and (refused["policy"], refused["reason"]) == ("frequency", "too_frequent")
    assert refused["evidence"]["max_posts"] == 3


def test_banned_words_per_community_and_optional_strike(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c, cid = _setup(db, ws, banned_words={"words": ["假货", "Fake"]})
    refused = _post(db, ws, c, cid, "这家是不是FAKE的？")
    assert refused is not None and refused["policy"] == "banned_words" and refused["evidence"]["words"] == ["Fake"]
    assert refused["action"] == "refuse" and _member(db, ws, c, cid).strikes == 0
    other = make_community(db, ws, name="另一个群")
    community_service.join_community(db, workspace_id=ws, community_id=other.id, customer_id=cid, source="h5")
    community_service.update_policy(
        db, workspace_id=ws, community_id=other.id, kind="probation", enabled=False, config={}
    )
    db.commit()
    assert _post(db, ws, other.id, cid, "这家是不是假货？") is None  # the list is per community
    community_service.update_policy(
        db,
        workspace_id=ws,
        community_id=c,
        kind="banned_words",
        enabled=True,
        config={"words": ["假货"], "strike": True},
    )
    db.commit()
    struck = _post(db, ws, c, cid, "假货")
    assert struck is not None and struck["action"] == "warn" and _member(db, ws, c, cid).strikes == 1


def test_repeated_text_is_spam_and_staff_are_exempt(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c, cid = _setup(db, ws, spam={"repeat_limit": 2})
    assert _post(db, ws, c, cid, "团购接龙！") is None
    assert _post(db, ws, c, cid, "团购 接龙") is None
    repeated = _post(db, ws, c, cid, "团购接龙!!")
    assert repeated is not None and repeated["reason"] == "repeated_text"
    m = _member(db, ws, c, cid)
    community_service.change_role(db, member=m, role="admin")
    db.commit()
    assert _post(db, ws, c, cid, "官方活动请加微信 brand_tea01") is None


def test_bad_policy_config_is_refused(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c = make_community(db, ws)
    with pytest.raises(community_service.ValidationFailed) as err:
        community_service.update_policy(
            db, workspace_id=ws, community_id=c.id, kind="spam", enabled=True, config={"mute_at": 3, "remove_at": 2}
        )
    assert err.value.details[0]["field"] == "config.remove_at"
    with pytest.raises(community_service.ValidationFailed):
        community_service.update_policy(
            db, workspace_id=ws, community_id=c.id, kind="frequency", enabled=True, config={"max_posts": "ten"}
        )
    with pytest.raises(community_service.ValidationFailed):
        community_service.update_policy(db, workspace_id=ws, community_id=c.id, kind="nope", enabled=True, config={})


def test_plugged_in_policy_runs_after_the_built_ins(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id

    class NoShouting:
        kind = "no_shouting"
        defaults: dict[str, Any] = {}

        def check_config(self, config: dict[str, Any]) -> dict[str, Any]:
            return config

        def evaluate(self, ctx: community_service.PostContext, config: dict[str, Any]) -> Any:
            if ctx.text.isupper():
                return community_service.Finding(self.kind, "shouting", {"text": ctx.text})
            return None

    community_service.register_policy(NoShouting())
    try:
        c, cid = _setup(db, ws)
        refused = _post(db, ws, c, cid, "HELLO EVERYONE")
        assert refused is not None and refused["policy"] == "no_shouting"
    finally:
        community_service.POLICIES.pop("no_shouting")


def test_expired_mutes_are_lifted_by_the_periodic_job(db: Session, tenant: Tenant) -> None:
    from shequn.community import tasks

    ws = tenant.workspace_id
    c, cid = _setup(db, ws)
    m = _member(db, ws, c, cid)
    community_service.operator_action(db, workspace_id=ws, community_id=c, member_id=m.id, action="mute", minutes=5)
    db.commit()
    tasks.lift_mutes()
    assert _member(db, ws, c, cid).status == "muted"  # not yet
    m = _member(db, ws, c, cid)
    m.muted_until = utcnow() - timedelta(seconds=1)
    db.commit()
    tasks.lift_mutes()
    m = _member(db, ws, c, cid)
    assert m.status == "active" and m.muted_until is None
    assert community_service.get_community(db, workspace_id=ws, community_id=c).members_count == 1


def test_disguised_contact_details_are_still_caught(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c, cid = _setup(db, ws, spam={"mute_at": 10, "remove_at": 10})
    for text, reason in [
        ("加ｖ：ａｂｃ１２３４５ 拿内部价", "wechat_id"),  # full-width letters and digits
        ("加微\u200b信 abc12345", "wechat_id"),  # a zero-width space inside 微信
        ("电话 １３８ ００１３ ８０００", "phone"),
    ]:
        refused = _post(db, ws, c, cid, text)
        assert refused is not None and refused["reason"] == reason, (text, refused)
