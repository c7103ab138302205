"""Tags end to end: manual and rule tags, bulk tagging by rule and by uploaded list, interest and
lifecycle refreshes, audience settings, roles, workspace isolation and the console page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.audience.models import Customer, CustomerChange, CustomerTag, Tag
from shequn.core.clock import utcnow
from shequn.core.models import JobRun
from tests.conftest import Tenant
from tests.integration.test_commerce_api import order
from tests.integration.test_console import _csrf, login

BIG = {"type": "attr", "field": "total_spent", "op": "gte", "value": 20000}


def _buyer(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "identities": [{"source": "wechat", "kind": "openid", "value": f"oid-{i}"}],
        "name": f"客户{i}",
        "city": "杭州",
        "phone": f"1380013{i:04d}",
        "phone_verified": True,
        "email": f"buyer{i}@example.com",
        **extra,
    }


def _push(client: Any, tenant: Tenant, oid: str, i: int, total: int = 12800, **extra: Any) -> None:
    r = client.post(
        "/api/v1/orders", json=order(oid, total=total, customer=_buyer(i), **extra), headers=tenant.headers()
    )
    assert r.status_code == 200, r.text


def _ids(db: Session, workspace_id: int) -> dict[str, int]:
    """Customer name → id."""
    db.expire_all()
    rows = db.execute(select(Customer.name, Customer.id).where(Customer.workspace_id == workspace_id))
    return {name: cid for name, cid in rows}


def _tag(client: Any, tenant: Tenant, name: str, **body: Any) -> dict[str, Any]:
    r = client.post("/api/v1/tags", json={"name": name, **body}, headers=tenant.headers())
    assert r.status_code == 201, r.text
    return r.json()


def _tagged(db: Session, tag_id: int) -> set[int]:
    db.expire_all()
    return set(db.scalars(select(CustomerTag.customer_id).where(CustomerTag.tag_id == tag_id)))


def _changes(db: Session, workspace_id: int) -> int:
    db.expire_all()
    q = select(func.count()).select_from(CustomerChange).where(CustomerChange.workspace_id == workspace_id)
    return db.scalar(q) or 0


def test_manual_tag_names_tagging_by_id_and_soft_delete(client, db: Session, tenant: Tenant) -> None:
    for i in (1, 2):
        _push(client, tenant, f"M-{i}", i)
    ids = _ids(db, tenant.workspace_id)
    vip = _tag(client, tenant, "  VIP  ", color="#d4380d", description="大客户")
    assert vip["name"] == "VIP" and vip["kind"] == "manual" and vip["customers_count"] == 0

    # Names: unique per workspace (409), 1–64 characters (422), each naming the field.
    r = client.post("/api/v1/tags", json={"name": "VIP"}, headers=tenant.headers())
    assert r.status_code == 409 and r.json()["code"] == "tag_name_taken"
    assert r.json()["details"][0]["field"] == "name"
    for bad in ("   ", "x" * 65, ""):
        r = client.post("/api/v1/tags", json={"name": bad}, headers=tenant.headers())
        assert r.status_code == 422, bad
        assert r.json()["details"][0]["field"] == "name"
    r = client.post("/api/v1/tags", json={"name": "坏颜色", "color": "red"}, headers=tenant.headers())
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "color"
    r = client.post("/api/v1/tags", json={"name": "手动带规则", "rule": BIG}, headers=tenant.headers())
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "rule"

    before = _changes(db, tenant.workspace_id)
    r = client.post(
        f"/api/v1/tags/{vip['id']}/customers", json={"customer_ids": [ids["客户1"], 999_999]}, headers=tenant.headers()
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"tagged": 1, "missing": [999_999]}
    assert _changes(db, tenant.workspace_id) == before + 1  # segments re-evaluate the tagged customer
    again = client.post(
        f"/api/v1/tags/{vip['id']}/customers",
        json={"customer_ids": [ids["客户1"], ids["客户2"]]},
        headers=tenant.headers(),
    ).json()
    assert again == {"tagged": 1, "missing": []}
    assert client.get(f"/api/v1/tags/{vip['id']}", headers=tenant.headers()).json()["customers_count"] == 2
    mine = client.get(f"/api/v1/customers/{ids['客户1']}/tags", headers=tenant.headers("viewer")).json()
    assert [(t["name"], t["source"], t["weight"]) for t in mine] == [("VIP", "manual", 1.0)]

    r = client.request(
        "DELETE", f"/api/v1/tags/{vip['id']}/customers", json={"customer_ids": [ids["客户2"]]}, headers=tenant.headers()
    )
    assert r.json() == {"untagged": 1}
    assert _tagged(db, vip["id"]) == {ids["客户1"]}

    renamed = client.patch(f"/api/v1/tags/{vip['id']}", json={"name": "VIP 客户"}, headers=tenant.headers()).json()
    assert renamed["name"] == "VIP 客户"
    listed = client.get("/api/v1/tags?kind=manual", headers=tenant.headers("viewer")).json()
    assert [(t["name"], t["customers_count"]) for t in listed["items"]] == [("VIP 客户", 1)]

    before = _changes(db, tenant.workspace_id)
    assert client.delete(f"/api/v1/tags/{vip['id']}", headers=tenant.headers()).status_code == 204
    assert client.get(f"/api/v1/tags/{vip['id']}", headers=tenant.headers()).status_code == 404
    assert _tagged(db, vip["id"]) == set()
    assert _changes(db, tenant.workspace_id) == before + 1
    assert client.get(f"/api/v1/customers/{ids['客户1']}/tags", headers=tenant.headers()).json() == []
    # The deleted tag keeps its row (soft delete) but frees its name.
    db.expire_all()
    assert db.get(Tag, vip["id"]).deleted_at is not None  # type: ignore[union-attr]
    assert _tag(client, tenant, "VIP 客户")["id"] != vip["id"]


def test_rule_tags_follow_their_rule_and_refuse_self_reference(client, db: Session, tenant: Tenant) -> None:
    _push(client, tenant, "R-1", 1, total=30000)
    _push(client, tenant, "R-2", 2, total=10000)
    ids = _ids(db, tenant.workspace_id)
    big = _tag(client, tenant, "高消费", kind="rule", rule=BIG)
    assert big["customers_count"] == 1 and big["refreshed_at"] is not None
    assert _tagged(db, big["id"]) == {ids["客户1"]}
    r = client.post("/api/v1/tags", json={"name": "无规则", "kind": "rule"}, headers=tenant.headers())
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "rule"

    # Rule errors name the leaf: a bad field, itself, a tag that does not exist.
    r = client.post(
        "/api/v1/tags",
        json={"name": "坏规则", "kind": "rule", "rule": {"type": "attr", "field": "nope", "op": "eq", "value": 1}},
        headers=tenant.headers(),
    )
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "rule.field"
    selfish = {"type": "tag", "tag_id": big["id"], "op": "has"}
    r = client.patch(f"/api/v1/tags/{big['id']}", json={"rule": selfish}, headers=tenant.headers())
    assert r.status_code == 422 and r.json()["details"][0]["code"] == "self_reference"
    r = client.post(
        "/api/v1/tags",
        json={"name": "幽灵", "kind": "rule", "rule": {"type": "tag", "tag_id": 987654, "op": "has"}},
        headers=tenant.headers(),
    )
    assert r.status_code == 422 and r.json()["details"][0] == {
        "field": "rule.tag_id",
        "code": "unknown_tag",
        "message": "no tag 987654 in this workspace",
    }

    # A rule tag over another rule tag; a cycle back is refused, and the inner tag cannot be deleted.
    outer = _tag(
        client,
        tenant,
        "高消费杭州",
        kind="rule",
        rule={"type": "and", "rules": [selfish, {"type": "attr", "field": "city", "op": "eq", "value": "杭州"}]},
    )
    assert outer["customers_count"] == 1
    cycle = {"type": "tag", "tag_id": outer["id"], "op": "has"}
    r = client.patch(f"/api/v1/tags/{big['id']}", json={"rule": cycle}, headers=tenant.headers())
    assert r.status_code == 422 and r.json()["details"][0]["code"] == "tag_cycle"
    r = client.delete(f"/api/v1/tags/{big['id']}", headers=tenant.headers())
    assert r.status_code == 409 and r.json()["code"] == "tag_in_use" and "高消费杭州" in r.json()["message"]
    # Computed tags are not tagged by hand.
    r = client.post(
        f"/api/v1/tags/{big['id']}/customers", json={"customer_ids": [ids["客户2"]]}, headers=tenant.headers()
    )
    assert r.status_code == 409 and r.json()["code"] == "tag_not_manual"

    # Customer 2 spends more: the incremental refresh after the order re-evaluates only that customer.
    _push(client, tenant, "R-3", 2, total=15000)
    changed = audience_service.refresh_rule_tags(db, workspace_id=tenant.workspace_id, ids=[ids["客户2"]])
    db.commit()
    assert changed == 0  # already applied by the job the order queued
    assert _tagged(db, big["id"]) == {ids["客户1"], ids["客户2"]}
    assert _tagged(db, outer["id"]) == {ids["客户1"], ids["客户2"]}  # refreshed after the tag it tests
    # A narrower rule drops members on the spot, and the refresh job keeps it so.
    r = client.patch(
        f"/api/v1/tags/{big['id']}",
        json={"rule": {**BIG, "value": 25000}, "description": "≥ ¥250"},
        headers=tenant.headers(),
    )
    assert r.json()["customers_count"] == 2 and r.json()["description"] == "≥ ¥250"
    r = client.patch(f"/api/v1/tags/{big['id']}", json={"rule": {**BIG, "value": 28000}}, headers=tenant.headers())
    assert r.json()["customers_count"] == 1
    jobs = client.post("/api/v1/tags/refresh", headers=tenant.headers("operator"))
    assert jobs.status_code == 202, jobs.text
    kinds = [j["kind"] for j in jobs.json()]
    assert kinds == ["audience.refresh_lifecycle", "audience.refresh_interests", "audience.refresh_rule_tags"]
    db.expire_all()
    finished = db.scalars(select(JobRun).where(JobRun.id.in_([j["id"] for j in jobs.json()]))).all()
    assert all(j.status == "succeeded" for j in finished), [(j.kind, j.error) for j in finished]
    assert _tagged(db, big["id"]) == {ids["客户1"]}
    assert _tagged(db, outer["id"]) == {ids["客户1"]}


def test_bulk_tagging_by_rule_and_by_uploaded_list(client, db: Session, tenant: Tenant) -> None:
    for i in range(1, 6):
        _push(client, tenant, f"B-{i}", i, total=5000 * i)
    ids = _ids(db, tenant.workspace_id)
    tag = _tag(client, tenant, "活动名单")
    upload = "\n".join(
        [
            "手机号",  # a header row is skipped
            str(ids["客户1"]),  # a shequn customer id
            "138-0013-0002",  # a phone, formatted
            "BUYER3@Example.com",  # an email, any case
            "oid-4",  # a platform id
            "",
            "13900000000",  # nobody's phone
            "'oid-4",  # a spreadsheet's text prefix; the same person again
            "x" * 300,
            '"not, anyone",extra',
        ]
    ).encode()
    r = client.post(
        f"/api/v1/tags/{tag['id']}/upload", files={"file": ("list.csv", upload, "text/csv")}, headers=tenant.headers()
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["matched"] == 5 and body["tagged"] == 4 and body["unmatched_total"] == 3
    assert [(u["row"], u["reason"]) for u in body["unmatched"]] == [
        (7, "not_found"),
        (9, "too_long"),
        (10, "not_found"),
    ]
    assert body["unmatched"][2]["value"] == "not, anyone"
    assert _tagged(db, tag["id"]) == {ids[f"客户{i}"] for i in (1, 2, 3, 4)}

    # GBK-encoded lists (Excel on Chinese Windows) and re-uploads are fine: nobody is tagged twice.
    again = client.post(
        f"/api/v1/tags/{tag['id']}/upload",
        files={"file": ("名单.txt", "客户id\noid-4\n".encode("gbk"), "text/plain")},
        headers=tenant.headers(),
    ).json()
    assert again["matched"] == 1 and again["tagged"] == 0
    r = client.post(f"/api/v1/tags/{tag['id']}/upload", files={"file": ("e.csv", b"\n\n")}, headers=tenant.headers())
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "file"

    # By filter: everyone who spent at least ¥200 (customers 4 and 5), only 5 is new.
    r = client.post(f"/api/v1/tags/{tag['id']}/bulk", json={"rule": BIG}, headers=tenant.headers())
    assert r.status_code == 200, r.text
    assert r.json() == {"matched": 2, "tagged": 1, "unmatched": [], "unmatched_total": 0}
    assert client.get(f"/api/v1/tags/{tag['id']}", headers=tenant.headers()).json()["customers_count"] == 5
    r = client.post(
        f"/api/v1/tags/{tag['id']}/bulk", json={"rule": {"type": "and", "rules": []}}, headers=tenant.headers()
    )
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "rule.rules"


def test_merged_customer_ids_follow_the_survivor(client, db: Session, tenant: Tenant) -> None:
    _push(client, tenant, "G-1", 1)
    _push(client, tenant, "G-2", 2)
    ids = _ids(db, tenant.workspace_id)
    loser, winner = ids["客户2"], ids["客户1"]
    db.execute(Customer.__table__.update().where(Customer.id == loser).values(merged_into_id=winner))
    db.commit()
    tag = _tag(client, tenant, "合并")
    r = client.post(f"/api/v1/tags/{tag['id']}/customers", json={"customer_ids": [loser]}, headers=tenant.headers())
    assert r.json() == {"tagged": 1, "missing": []}
    assert _tagged(db, tag["id"]) == {winner}


def test_interest_and_lifecycle_refresh(client, db: Session, tenant: Tenant) -> None:
    now = utcnow()

    def at(days_ago: int) -> str:
        return (now - timedelta(days=days_ago)).isoformat()

    def push(oid: str, i: int, days_ago: int, category: str = "绿茶") -> None:
        body = order(oid, customer=_buyer(i), created_at=at(days_ago), updated=at(days_ago))
        body["line_items"][0]["category"] = category
        r = client.post("/api/v1/orders", json=body, headers=tenant.headers())
        assert r.status_code == 200, r.text

    _tag(client, tenant, "兴趣·红茶")  # a manual tag already has the name an interest tag would take
    push("L-1", 1, 3)  # new
    push("L-2a", 2, 200)
    push("L-2b", 2, 10, "红茶")  # won back: 190 days between orders
    push("L-3", 3, 120, "红茶")  # at risk
    push("L-4", 4, 400)  # lapsed
    push("L-5a", 5, 60)
    push("L-5b", 5, 40)  # active

    jobs = client.post("/api/v1/tags/refresh", headers=tenant.headers())
    assert jobs.status_code == 202
    stages = {
        s["stage"]: s["customers"] for s in client.get("/api/v1/audience/lifecycle", headers=tenant.headers()).json()
    }
    assert stages == {"new": 1, "active": 1, "at_risk": 1, "lapsed": 1, "won_back": 1}
    ids = _ids(db, tenant.workspace_id)
    db.expire_all()
    assert db.get(Customer, ids["客户2"]).lifecycle == "won_back"  # type: ignore[union-attr]
    names = client.get("/api/v1/audience/lifecycle", headers=tenant.headers(**{"Accept-Language": "en"})).json()
    assert names[0] == {"stage": "new", "name": "New", "customers": 1}
    # A second run changes nothing, so it logs nobody as changed.
    before = _changes(db, tenant.workspace_id)
    assert audience_service.refresh_lifecycle(db, workspace_id=tenant.workspace_id) == 0
    db.commit()
    assert _changes(db, tenant.workspace_id) == before

    interests = client.get("/api/v1/tags?kind=interest", headers=tenant.headers()).json()["items"]
    by_name = {t["name"]: t for t in interests}
    assert set(by_name) == {"兴趣·绿茶", "兴趣·红茶·2"}
    assert by_name["兴趣·绿茶"]["interest_key"] == "绿茶"
    # Half-life 90 days, a purchase day worth 3: green tea 3 days ago ≈ 2.93 and 60 + 40 days ago ≈ 4.09
    # carry the tag; 200 days ago ≈ 0.64 and 400 days ago ≈ 0.14 fall below 1.0.
    assert by_name["兴趣·绿茶"]["customers_count"] == 2 and by_name["兴趣·红茶·2"]["customers_count"] == 2
    weights = {
        t["name"]: t["weight"]
        for t in client.get(f"/api/v1/customers/{ids['客户1']}/tags", headers=tenant.headers()).json()
    }
    assert weights == {"兴趣·绿茶": round(3 * 0.5 ** (3 / 90), 3)}
    assert client.get(f"/api/v1/customers/{ids['客户4']}/tags", headers=tenant.headers()).json() == []
    assert _tagged(db, by_name["兴趣·红茶·2"]["id"]) == {ids["客户2"], ids["客户3"]}

    # A shorter half-life (owners only) queues the refreshes it affects; customer 3's red tea then fades out.
    r = client.put("/api/v1/audience/settings", json={"interest_half_life_days": 30}, headers=tenant.headers("admin"))
    assert r.status_code == 403
    r = client.put("/api/v1/audience/settings", json={"interest_half_life_days": 30}, headers=tenant.headers())
    assert r.status_code == 200 and r.json()["interest_half_life_days"] == 30
    assert _tagged(db, by_name["兴趣·红茶·2"]["id"]) == {ids["客户2"]}
    # Deleting an interest tag opts out of it: the next refresh does not bring it back.
    assert client.delete(f"/api/v1/tags/{by_name['兴趣·红茶·2']['id']}", headers=tenant.headers()).status_code == 204
    audience_service.refresh_interests(db, workspace_id=tenant.workspace_id)
    db.commit()
    left = client.get("/api/v1/tags?kind=interest", headers=tenant.headers()).json()["items"]
    assert [t["name"] for t in left] == ["兴趣·绿茶"]

    # Incremental: a lapsed buyer orders again; the job the order queued moves only them.
    push("L-4b", 4, 0)
    assert audience_service.refresh_lifecycle(db, workspace_id=tenant.workspace_id, ids=[ids["客户4"]]) == 0
    result = audience_service.refresh_interests(db, workspace_id=tenant.workspace_id, ids=[ids["客户4"]])
    db.commit()
    assert result.changed == 0  # both already applied incrementally
    db.expire_all()
    assert db.get(Customer, ids["客户4"]).lifecycle == "won_back"  # type: ignore[union-attr]
    assert _tagged(db, by_name["兴趣·绿茶"]["id"]) == {ids["客户1"], ids["客户4"], ids["客户5"]}


def test_audience_settings_validation_and_rfm_window(client, db: Session, tenant: Tenant) -> None:
    h = tenant.headers()
    assert client.get("/api/v1/audience/settings", headers=tenant.headers("viewer")).json() == {
        "rfm_window_days": 365,
        "interest_half_life_days": 90,
        "lifecycle_new_days": 30,
        "lifecycle_active_days": 90,
        "lifecycle_lapsed_days": 180,
    }
    r = client.put("/api/v1/audience/settings", json={"rfm_window_days": 3, "interest_half_life_days": 0}, headers=h)
    assert r.status_code == 422
    assert {d["field"] for d in r.json()["details"]} == {"rfm_window_days", "interest_half_life_days"}
    r = client.put("/api/v1/audience/settings", json={"lifecycle_new_days": 120}, headers=h)
    assert r.status_code == 422 and [d["field"] for d in r.json()["details"]] == ["lifecycle_new_days"]
    r = client.put("/api/v1/audience/settings", json={"lifecycle_lapsed_days": 60}, headers=h)
    assert r.status_code == 422 and [d["field"] for d in r.json()["details"]] == ["lifecycle_active_days"]
    r = client.put("/api/v1/audience/settings", json={"surprise": 1}, headers=h)
    assert r.status_code == 422

    # The RFM window comes from the settings: orders of ~200 days ago fall out of a 30-day window.
    _push(client, tenant, "W-1", 1)
    assert audience_service.refresh_rfm(db, workspace_id=tenant.workspace_id) == 1
    db.commit()
    r = client.put("/api/v1/audience/settings", json={"rfm_window_days": 30, "lifecycle_new_days": 7}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["rfm_window_days"] == 30 and r.json()["lifecycle_new_days"] == 7
    db.expire_all()
    queued = set(db.scalars(select(JobRun.kind).where(JobRun.workspace_id == tenant.workspace_id)))
    assert {"audience.refresh_rfm", "audience.refresh_lifecycle"} <= queued
    assert "audience.refresh_interests" not in queued  # the half-life did not change
    groups = client.get("/api/v1/rfm", headers=h).json()
    assert sum(g["customers"] for g in groups) == 0
    settings = audience_service.get_audience_settings(db, workspace_id=tenant.workspace_id)
    assert settings.epoch >= 2  # every RFM refresh bumps the epoch: scores moved for everyone


def test_roles_and_workspace_isolation(client, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    _push(client, tenant, "I-1", 1)
    cid = _ids(db, tenant.workspace_id)["客户1"]
    tag = _tag(client, tenant, "私有")
    viewer = tenant.headers("viewer")
    assert client.get("/api/v1/tags", headers=viewer).status_code == 200
    assert client.post("/api/v1/tags", json={"name": "x"}, headers=viewer).status_code == 403
    assert client.post("/api/v1/tags/refresh", headers=tenant.headers("analyst")).status_code == 403
    assert client.put("/api/v1/audience/settings", json={}, headers=tenant.headers("operator")).status_code == 403

    other = other_tenant.headers()
    tid = tag["id"]
    ids = {"customer_ids": [cid]}
    calls = [
        client.get(f"/api/v1/tags/{tid}", headers=other),
        client.patch(f"/api/v1/tags/{tid}", json={"name": "偷"}, headers=other),
        client.post(f"/api/v1/tags/{tid}/customers", json=ids, headers=other),
        client.request("DELETE", f"/api/v1/tags/{tid}/customers", json=ids, headers=other),
        client.post(f"/api/v1/tags/{tid}/bulk", json={"rule": BIG}, headers=other),
        client.post(f"/api/v1/tags/{tid}/upload", files={"file": ("a.csv", str(cid).encode())}, headers=other),
        client.delete(f"/api/v1/tags/{tid}", headers=other),
        client.get(f"/api/v1/customers/{cid}/tags", headers=other),
    ]
    assert [r.status_code for r in calls] == [404] * len(calls), [r.text for r in calls]
    assert client.get("/api/v1/tags", headers=other).json()["total"] == 0
    # Another workspace's tag cannot be referenced by a rule, and its own tag cannot reach our customer.
    r = client.post(
        "/api/v1/tags",
        json={"name": "偷看", "kind": "rule", "rule": {"type": "tag", "tag_id": tid, "op": "has"}},
        headers=other,
    )
    assert r.status_code == 422 and r.json()["details"][0]["code"] == "unknown_tag"
    theirs = _tag(client, other_tenant, "他们的")
    r = client.post(f"/api/v1/tags/{theirs['id']}/customers", json=ids, headers=other)
    assert r.json() == {"tagged": 0, "missing": [cid]}
    r = client.post(
        f"/api/v1/tags/{theirs['id']}/upload", files={"file": ("a.csv", b"13800130001\noid-1\n")}, headers=other
    )
    assert r.json()["matched"] == 0 and r.json()["tagged"] == 0
    assert _tagged(db, tid) == set() and _tagged(db, theirs["id"]) == set()
    db.expire_all()
    assert db.get(Tag, tid).name == "私有"  # type: ignore[union-attr]


def test_console_tags_page(client, db: Session, tenant: Tenant) -> None:
    _push(client, tenant, "C-1", 1)
    csrf = login(client)
    page = client.get("/tags")
    assert page.status_code == 200 and "标签" in page.text and "生命周期" in page.text
    assert 'href="/tags"' in client.get("/").text  # in the navigation
    r = client.post("/tags", data={"name": "老朋友", "color": "#d4380d", "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    page = client.get("/tags?done=created")
    assert "老朋友" in page.text and "标签已创建" in page.text
    r = client.post("/tags", data={"name": "老朋友", "csrf": csrf})
    assert r.status_code == 409 and "已有名为 老朋友 的标签" in r.text
    tag_id = _tag(client, tenant, "名单")["id"]
    r = client.post(
        "/tags/upload",
        data={"tag_id": str(tag_id), "csrf": csrf},
        files={"file": ("list.csv", b"13800130001\nnobody\n", "text/csv")},
    )
    assert r.status_code == 200, r.text
    assert "匹配的行" in r.text and "nobody" in r.text and "未找到客户" in r.text
    assert _tagged(db, tag_id) == set(_ids(db, tenant.workspace_id).values())
    assert client.post("/tags", data={"name": "无令牌"}).status_code == 403  # no CSRF token
    r = client.post("/tags/refresh", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    client.post("/lang", data={"lang": "en", "csrf": csrf})
    english = client.get("/tags?done=refresh").text
    assert "Lifecycle stages" in english and "Refresh queued" in english and "Interest tags" in english
    assert _csrf(english) == csrf
