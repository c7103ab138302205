"""Reviews, images, the member API, H5 pages and the public review API: verified purchase, one review per
product, helpful votes, upload limits, XSS payloads rendered escaped, only approved + masked in public."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.audience import engine as _engine  # noqa: F401  (see test_ugc_posts: listener registration)
from shequn.audience import service as audience_service
from shequn.community import service as community_service
from shequn.community.models import CommunityEnforcement
from shequn.community.ugc.models import Review
from tests.conftest import Tenant
from tests.integration.test_communities_core import make_community

XSS = '<script>alert(1)</script><img src=x onerror="alert(2)">'


def _png(size: tuple[int, int] = (64, 48), fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (40, 120, 80)).save(buf, format=fmt)
    return buf.getvalue()


def _buy(client, tenant: Tenant, order_id: str, buyer: str, name: str, status: str = "paid") -> int:
    body = {
        "source": "api",
        "source_order_id": order_id,
        "status": status,
        "total": 26800,
        "subtotal": 26800,
        "created_at": "2026-10-05T10:00:00+08:00",
        "paid_at": "2026-10-05T10:05:00+08:00",
        "line_items": [
            {
                "sku": "TEA-LJ-100",
                "title": "西湖龙井 明前特级 100g",
                "quantity": 1,
                "unit_price": 26800,
                "category": "绿茶",
            }
        ],
        "customer": {"name": name, "identities": [{"source": "api", "kind": "customer_id", "value": buyer}]},
    }
    r = client.post("/api/v1/orders", json=body, headers=tenant.headers())
    assert r.status_code == 200, r.text
    return _customer_of(client, tenant, r.json()["order_ids"][0])


def _customer_of(client, tenant: Tenant, order_id: int) -> int:
    return int(client.get(f"/api/v1/orders/{order_id}", headers=tenant.headers()).json()["customer_id"])


def _session(db: Session, tenant: Tenant, customer_id: int) -> dict[str, str]:
    """Member API headers for a customer (a redeemed one-time sign-in ticket)."""
    ticket, _ = audience_service.issue_member_ticket(db, workspace_id=tenant.workspace_id, customer_id=customer_id)
    token = audience_service.redeem_member_ticket(db, workspace_id=tenant.workspace_id, ticket=ticket, device_id="d")
    db.commit()
    return {"Authorization": f"Member {token}"}


def _product_id(client, tenant: Tenant) -> int:
    r = client.get("/api/v1/products", params={"q": "TEA-LJ-100"}, headers=tenant.headers())
    return int(r.json()["items"][0]["id"])


def _public(client, tenant: Tenant, **params: Any) -> dict[str, Any]:
    r = client.get(f"/api/v1/public/{tenant.slug}/products/TEA-LJ-100/reviews", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_review_verified_one_per_product_helpful_and_public(client, db: Session, tenant: Tenant) -> None:
    buyer = _buy(client, tenant, "O-1", "b-1", "张三丰")
    fan = _buy(client, tenant, "O-2", "b-2", "李四", status="refunded")
    pid = _product_id(client, tenant)
    me, other = _session(db, tenant, buyer), _session(db, tenant, fan)

    r = client.put(f"/api/v1/m/products/{pid}/review", json={"rating": 4, "body": "香气高扬"}, headers=me)
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["verified_purchase"] is True and first["author_name"] == "张**" and first["status"] == "approved"
    # Writing again replaces the review: still one row, edits counted.
    r = client.put(f"/api/v1/m/products/{pid}/review", json={"rating": 5, "body": "二泡更好"}, headers=me)
    assert r.json()["id"] == first["id"] and r.json()["rating"] == 5 and r.json()["edits"] == 1
    # A refunded order does not verify.
    r = client.put(f"/api/v1/m/products/{pid}/review", json={"rating": 2, "body": "一般"}, headers=other)
    assert r.json()["verified_purchase"] is False
    assert db.scalar(select(func.count()).select_from(Review)) == 2
    bad = client.put(f"/api/v1/m/products/{pid}/review", json={"rating": 6}, headers=me)
    assert bad.status_code == 422

    # Helpful votes: idempotent, own review refused.
    for _ in range(2):
        r = client.post(f"/api/v1/m/reviews/{first['id']}/helpful", json={"on": True}, headers=other)
        assert r.json()["helpful"] == 1
    assert client.post(f"/api/v1/m/reviews/{first['id']}/helpful", json={}, headers=me).status_code == 409

    body = _public(client, tenant, sort="helpful")
    assert body["summary"] == {"count": 2, "average": 3.5, "distribution": {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1}}
    assert [i["author"] for i in body["items"]] == ["张**", "李**"]
    assert body["items"][0]["helpful"] == 1 and body["items"][0]["verified_purchase"] is True
    assert _public(client, tenant, rating=2)["total"] == 1
    # Hidden by an operator: gone from the public API at once (the cache is dropped on commit).
    client.post(
        "/api/v1/ugc/moderation",
        json={"item_type": "review", "ids": [first["id"]], "action": "hide"},
        headers=tenant.headers(),
    )
    body = _public(client, tenant)
    assert body["summary"]["count"] == 1 and [i["author"] for i in body["items"]] == ["李**"]
    # Edited after an operator hid it: back to the queue, not straight back online.
    r = client.put(f"/api/v1/m/products/{pid}/review", json={"rating": 5, "body": "改好了"}, headers=me)
    assert r.json()["status"] == "pending" and _public(client, tenant)["summary"]["count"] == 1
    # Retried with the same Idempotency-Key: one effect, the reply replayed.
    key = {"Idempotency-Key": "review-retry-1", **other}
    a = client.put(f"/api/v1/m/products/{pid}/review", json={"rating": 3, "body": "再评"}, headers=key)
    b = client.put(f"/api/v1/m/products/{pid}/review", json={"rating": 3, "body": "再评"}, headers=key)
    assert a.json() == b.json() and b.headers.get("idempotent-replayed") == "true" and a.json()["edits"] == 1


def test_public_api_cors_and_unknown(client, db: Session, tenant: Tenant) -> None:
    _buy(client, tenant, "O-1", "b-1", "王五")
    r = client.get(
        f"/api/v1/public/{tenant.slug}/products/TEA-LJ-100/reviews", headers={"Origin": "https://shop.example"}
    )
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    client.patch("/api/v1/ugc/settings", json={"widget_origins": ["https://shop.example/"]}, headers=tenant.headers())
    r = client.get(
        f"/api/v1/public/{tenant.slug}/products/TEA-LJ-100/reviews", headers={"Origin": "https://shop.example"}
    )
    assert r.headers["access-control-allow-origin"] == "https://shop.example"
    etag = r.headers["etag"]
    again = client.get(f"/api/v1/public/{tenant.slug}/products/TEA-LJ-100/reviews", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert client.get(f"/api/v1/public/{tenant.slug}/products/NOPE/reviews").status_code == 404
    assert client.get("/api/v1/public/no-such-brand/products/TEA-LJ-100/reviews").status_code == 404


def test_upload_limits_and_serving(client, db: Session, tenant: Tenant) -> None:
    buyer = _buy(client, tenant, "O-1", "b-1", "赵六")
    me = _session(db, tenant, buyer)
    r = client.post("/api/v1/m/media", files={"file": ("a.png", _png(), "image/png")}, headers=me)
    assert r.status_code == 201, r.text
    sha, url = r.json()["sha256"], r.json()["url"]
    again = client.post("/api/v1/m/media", files={"file": ("b.png", _png(), "image/png")}, headers=me)
    assert again.json()["sha256"] == sha  # stored once by content
    img = client.get(url)
    assert img.status_code == 200 and img.headers["content-type"] == "image/png"
    assert img.headers["x-content-type-options"] == "nosniff"
    # Not an image (even when it claims to be), too many bytes, too many pixels.
    r = client.post("/api/v1/m/media", files={"file": ("x.png", b"<svg onload=alert(1)>", "image/png")}, headers=me)
    assert r.status_code == 415 and r.json()["code"] == "not_an_image"
    big = b"\xff\xd8" + b"0" * (5 * 1024 * 1024 + 10)
    r = client.post("/api/v1/m/media", files={"file": ("big.jpg", big, "image/jpeg")}, headers=me)
    assert r.status_code == 413 and r.json()["code"] == "image_too_large" and "5 MB" in r.json()["message"]
    r = client.post("/api/v1/m/media", files={"file": ("wide.png", _png((6100, 10)), "image/png")}, headers=me)
    assert r.status_code == 413 and "6000" in r.json()["message"]
    # Photos on a review must be this workspace's uploads.
    pid = _product_id(client, tenant)
    r = client.put(f"/api/v1/m/products/{pid}/review", json={"rating": 5, "media": ["f" * 64]}, headers=me)
    assert r.status_code == 422 and r.json()["code"] == "ugc_unknown_media"
    r = client.put(f"/api/v1/m/products/{pid}/review", json={"rating": 5, "media": [sha]}, headers=me)
    assert r.status_code == 200
    assert _public(client, tenant)["items"][0]["photos"] == [url]
    assert client.post("/api/v1/m/media", files={"file": ("a.png", _png(), "image/png")}).status_code == 401


def test_member_posts_xss_escaped_gate_and_feed(client, db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c = make_community(db, ws)
    db.commit()
    buyer = _buy(client, tenant, "O-1", "b-1", "钱七")
    community_service.join_community(db, workspace_id=ws, community_id=c.id, customer_id=buyer, source="h5")
    db.commit()
    me = _session(db, tenant, buyer)
    key = {"Idempotency-Key": "post-1", **me}
    body = {"kind": "question", "title": XSS, "body": f"请教 {XSS} #冲泡#"}
    r = client.post(f"/api/v1/m/communities/{c.id}/posts", json=body, headers=key)
    assert r.status_code == 201, r.text
    retry = client.post(f"/api/v1/m/communities/{c.id}/posts", json=body, headers=key)
    assert retry.json()["id"] == r.json()["id"]
    post_id = r.json()["id"]
    assert client.get(f"/api/v1/m/communities/{c.id}/posts", headers=me).json()["total"] == 1
    ans = client.post(f"/api/v1/m/posts/{post_id}/comments", json={"body": XSS}, headers=me)
    assert ans.status_code == 201
    r = client.post(f"/api/v1/m/posts/{post_id}/accept", json={"comment_id": ans.json()["id"]}, headers=me)
    assert r.json()["accepted_comment_id"] == ans.json()["id"]
    r = client.post("/api/v1/m/reactions", json={"item_type": "post", "item_id": post_id, "kind": "like"}, headers=me)
    assert r.json()["counts"] == {"like": 1}

    # H5 pages render user text escaped.
    client.cookies.set("shequn_member", me["Authorization"].split(" ", 1)[1])
    for url in (f"/m/{tenant.slug}/c/{c.id}", f"/m/{tenant.slug}/p/{post_id}"):
        page = client.get(url)
        assert page.status_code == 200, page.text
        assert "<script>alert(1)</script>" not in page.text and "<img src=x" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    client.cookies.clear()

    # The policy gate refuses spam; the enforcement is kept although the request failed.
    spam = {"body": "加微信 wx88886666 领券 http://a.example http://b.example"}
    r = client.post(f"/api/v1/m/communities/{c.id}/posts", json=spam, headers=me)
    assert r.status_code == 422 and r.json()["code"] == "policy_violation"
    assert db.scalar(select(func.count()).select_from(CommunityEnforcement)) >= 1
    assert client.get(f"/api/v1/m/communities/{c.id}/posts", headers=me).json()["total"] == 1


def test_review_xss_in_public_json_and_demo_page(client, db: Session, tenant: Tenant) -> None:
    buyer = _buy(client, tenant, "O-1", "b-1", "<b>孙</b>")
    pid = _product_id(client, tenant)
    me = _session(db, tenant, buyer)
    client.put(f"/api/v1/m/products/{pid}/review", json={"rating": 5, "body": XSS}, headers=me)
    item = _public(client, tenant)["items"][0]
    # JSON carries the text as data (the widget sets it with textContent); names are masked.
    assert item["body"] == XSS and item["author"] == "<**"
    page = client.get(f"/m/{tenant.slug}/reviews/TEA-LJ-100")
    assert page.status_code == 200 and 'src="/mstatic/reviews-widget.js' in page.text
    widget = client.get("/mstatic/reviews-widget.js").text
    assert "innerHTML" not in widget.replace("never innerHTML", "")


def test_member_isolation(client, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    c = make_community(db, tenant.workspace_id)
    db.commit()
    buyer = _buy(client, tenant, "O-1", "b-1", "周八")
    community_service.join_community(
        db, workspace_id=tenant.workspace_id, community_id=c.id, customer_id=buyer, source="h5"
    )
    db.commit()
    me = _session(db, tenant, buyer)
    post = client.post(f"/api/v1/m/communities/{c.id}/posts", json={"body": "本品牌"}, headers=me).json()
    r = client.post(
        "/api/v1/orders",
        json={
            "source": "api", "source_order_id": "X-1", "status": "paid", "total": 100, "subtotal": 100,
            "created_at": "2026-10-05T10:00:00+08:00",
            "line_items": [{"sku": "Z", "title": "z", "quantity": 1, "unit_price": 100}],
            "customer": {"name": "外人", "identities": [{"source": "api", "kind": "customer_id", "value": "x"}]},
        },
        headers=other_tenant.headers(),
    )  # fmt: skip
    stranger = _session(db, other_tenant, _customer_of(client, other_tenant, r.json()["order_ids"][0]))
    assert client.get(f"/api/v1/m/posts/{post['id']}", headers=stranger).status_code == 404
    assert client.get(f"/api/v1/m/communities/{c.id}/posts", headers=stranger).status_code == 404
    assert client.get(f"/api/v1/public/{other_tenant.slug}/products/TEA-LJ-100/reviews").status_code == 404
