"""Console UGC pages: queue with bulk moderation, post detail (pin, answer, accept), topics, reviews; XSS
escaped; roles; isolation."""

from __future__ import annotations

from sqlalchemy.orm import Session

from shequn.audience import engine as _engine  # noqa: F401  (see test_ugc_posts: listener registration)
from shequn.community import service as community_service
from shequn.community.ugc import service as ugc_service
from tests.conftest import Tenant, make_tenant
from tests.integration.test_communities_core import make_community, make_customers
from tests.integration.test_console import add_operator, login

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _setup(db: Session, tenant: Tenant) -> tuple[int, int, int]:
    ws = tenant.workspace_id
    c = make_community(db, ws)
    a, b = make_customers(db, ws, 2, prefix="cm")
    for cid in (a, b):
        community_service.join_community(db, workspace_id=ws, community_id=c.id, customer_id=cid, source="h5")
    ugc_service.update_settings(db, workspace_id=ws, changes={"post_moderation": "pre"})
    q = ugc_service.create_post(
        db, workspace_id=ws, community_id=c.id, customer_id=a, kind="question", title=XSS, body=f"{XSS} #泡法#"
    )
    p = ugc_service.create_post(db, workspace_id=ws, community_id=c.id, customer_id=b, body="第二条")
    db.commit()
    return c.id, q.id, p.id


def test_queue_bulk_approve_detail_answer_accept(client, db: Session, tenant: Tenant) -> None:
    _, qid, pid = _setup(db, tenant)
    csrf = login(client)
    page = client.get("/ugc")
    assert page.status_code == 200 and 'data-pending="post">2<' in page.text.replace(" ", "")
    assert "<script>alert" not in page.text and "&lt;script&gt;" in page.text
    r = client.post(
        "/ugc/moderate",
        data={"csrf": csrf, "item_type": "post", "ids": [str(qid), str(pid)], "action": "approve", "back": "/ugc"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "done=moderated" in r.headers["location"]
    assert ugc_service.queue_counts(db, workspace_id=tenant.workspace_id)["post"] == 0
    detail = client.get(f"/ugc/posts/{qid}")
    assert detail.status_code == 200 and "<img src=x" not in detail.text
    r = client.post(f"/ugc/posts/{qid}/answer", data={"csrf": csrf, "body": "官方解答：85℃"}, follow_redirects=False)
    assert r.status_code == 303
    post = ugc_service.post_payload(db, post=ugc_service.get_post(db, workspace_id=tenant.workspace_id, post_id=qid))
    answer_id = post["comments"][0]["id"]
    client.post(f"/ugc/posts/{qid}/accept", data={"csrf": csrf, "comment_id": str(answer_id)})
    client.post(f"/ugc/posts/{qid}/feature", data={"csrf": csrf, "featured": "1"})
    db.expire_all()
    got = ugc_service.get_post(db, workspace_id=tenant.workspace_id, post_id=qid)
    assert got.accepted_comment_id == answer_id and got.featured is True
    topics = client.get("/ugc/topics")
    assert topics.status_code == 200 and 'data-topic="泡法"' in topics.text
    reviews = client.get("/ugc/reviews")
    assert reviews.status_code == 200
    r = client.post("/ugc/moderate", data={"item_type": "post", "ids": [str(pid)], "action": "hide"})
    assert r.status_code == 403  # no CSRF token


def test_viewer_reads_but_cannot_moderate_and_isolation(client, db: Session, tenant: Tenant) -> None:
    _, qid, _ = _setup(db, tenant)
    add_operator(db, tenant, "viewer@example.com", "viewer")
    csrf = login(client, "viewer@example.com", "password-456")
    assert client.get("/ugc").status_code == 200
    r = client.post("/ugc/moderate", data={"csrf": csrf, "item_type": "post", "ids": [str(qid)], "action": "approve"})
    assert r.status_code == 403
    other = make_tenant(db, "brand-z", "owner-z@example.com")
    client.cookies.clear()
    login(client, "owner-z@example.com", "password-123")
    assert client.get(f"/ugc/posts/{qid}").status_code == 404
    assert other.workspace_id != tenant.workspace_id
