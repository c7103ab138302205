"""Orders pushed and imported end to end: upsert rules, idempotency, merges, isolation, bad input."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from shequn.audience.models import Customer, CustomerIdentity
from shequn.commerce.models import Order, OrderLineItem, Product
from tests.conftest import Tenant


def order(
    oid: str,
    *,
    total: int = 12800,
    updated: str = "2026-05-01T10:00:00+08:00",
    status: str = "paid",
    customer: dict[str, Any] | None = None,
    source: str = "api",
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "source": source,
        "shop_id": "main",
        "source_order_id": oid,
        "status": status,
        "total": total,
        "created_at": "2026-05-01T09:00:00+08:00",
        "updated_at": updated,
        "line_items": [
            {"sku": "TEA-LJ-250", "title": "龙井 250g", "quantity": 2, "unit_price": total // 2, "category": "绿茶"}
        ],
        "customer": customer
        or {
            "identities": [{"source": source, "kind": "customer_id", "value": "c-1"}],
            "name": "王小明",
            "city": "杭州",
            "phone": "13800138000",
            "phone_verified": True,
        },
    }
    body.update(extra)
    return body


def count(db, model) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model))


def test_push_creates_order_customer_product_and_facts(client, db, tenant: Tenant) -> None:
    r = client.post("/api/v1/orders", json=order("A1"), headers=tenant.headers("operator"))
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 1
    oid = r.json()["order_ids"][0]
    detail = client.get(f"/api/v1/orders/{oid}", headers=tenant.headers("viewer")).json()
    assert detail["total"] == 12800 and detail["line_items"][0]["quantity"] == 2
    cust = client.get(f"/api/v1/customers/{detail['customer_id']}", headers=tenant.headers("viewer")).json()
    assert cust["orders_count"] == 1 and cust["total_spent"] == 12800 and cust["avg_order_value"] == 12800
    assert cust["phone_masked"] == "138****8000"
    assert "13800138000" not in str(cust)
    assert cust["top_categories"][0]["category"] == "绿茶"
    assert count(db, Product) == 1


def test_retry_with_idempotency_key_does_not_double(client, db, tenant: Tenant) -> None:
    h = tenant.headers("operator", **{"Idempotency-Key": "push-1"})
    first = client.post("/api/v1/orders", json=order("B1"), headers=h)
    second = client.post("/api/v1/orders", json=order("B1"), headers=h)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert second.headers.get("idempotent-replayed") == "true"
    assert count(db, Order) == 1 and count(db, OrderLineItem) == 1
    reused = client.post("/api/v1/orders", json=order("B2"), headers=h)
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
    too_long = client.post(
        "/api/v1/orders", json=order("B3"), headers=tenant.headers("operator", **{"Idempotency-Key": "k" * 256})
    )
    assert too_long.status_code == 400


def test_errors_are_replayed_too(client, db, tenant: Tenant) -> None:
    h = tenant.headers("viewer", **{"Idempotency-Key": "denied-1"})
    a = client.post("/api/v1/orders", json=order("C1"), headers=h)
    b = client.post("/api/v1/orders", json=order("C1"), headers=h)
    assert a.status_code == b.status_code == 403 and a.json() == b.json()


def test_newer_update_wins_older_is_ignored(client, db, tenant: Tenant) -> None:
    h = tenant.headers("operator")
    client.post("/api/v1/orders", json=order("D1", total=10000, updated="2026-05-02T10:00:00+08:00"), headers=h)
    r = client.post("/api/v1/orders", json=order("D1", total=5000, updated="2026-05-01T10:00:00+08:00"), headers=h)
    assert r.json()["unchanged"] == 1
    r = client.post(
        "/api/v1/orders",
        json=order("D1", total=20000, status="completed", updated="2026-05-03T10:00:00+08:00"),
        headers=h,
    )
    assert r.json()["updated"] == 1
    db.expire_all()
    o = db.scalar(select(Order))
    assert o.total == 20000 and o.status == "completed"
    assert count(db, OrderLineItem) == 1  # lines replaced, not appended


def test_batch_is_all_or_nothing_with_field_paths(client, db, tenant: Tenant) -> None:
    bad = order("E2")
    bad["line_items"][0]["quantity"] = 0
    r = client.post("/api/v1/orders/batch", json={"orders": [order("E1"), bad]}, headers=tenant.headers("operator"))
    assert r.status_code == 422
    fields = [d["field"] for d in r.json()["details"]]
    assert "orders[1].line_items[0].quantity" in fields
    assert count(db, Order) == 0
    neg = order("E3", total=-5)
    r = client.post("/api/v1/orders", json=neg, headers=tenant.headers("operator", **{"Accept-Language": "en"}))
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "total"
    r = client.post("/api/v1/orders", json=order("E4", status="teleported"), headers=tenant.headers("operator"))
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "status"
    ok = client.post(
        "/api/v1/orders/batch", json={"orders": [order("E5"), order("E6")]}, headers=tenant.headers("operator")
    )
    assert ok.json()["created"] == 2


def _buyer(
    source: str, cid: str, *, phone: str | None = None, verified: bool = False, nick: str | None = None
) -> dict[str, Any]:
    idents = [{"source": source, "kind": "customer_id", "value": cid}]
    if nick:
        idents = [{"source": source, "kind": "buyer_nick", "value": nick, "verified": True}]
    return {"identities": idents, "name": "买家", "phone": phone, "phone_verified": verified}


def test_merge_rules(client, db, tenant: Tenant) -> None:
    h = tenant.headers("operator")
    # Same verified phone on two stores → one customer with both orders.
    client.post(
        "/api/v1/orders",
        json=order("M1", source="youzan", customer=_buyer("youzan", "yz-1", phone="13900001111", verified=True)),
        headers=h,
    )
    client.post(
        "/api/v1/orders",
        json=order(
            "M2",
            source="shopify",
            total=5000,
            customer=_buyer("shopify", "sp-9", phone="+86 139-0000-1111", verified=True),
        ),
        headers=h,
    )
    # An unverified receiver phone (a gift) must not merge.
    client.post(
        "/api/v1/orders",
        json=order("M3", source="taobao", customer=_buyer("taobao", "", phone="13900001111", nick="tb_gift")),
        headers=h,
    )
    # The same nickname on another platform must not merge either.
    client.post(
        "/api/v1/orders",
        json=order("M4", source="weibo-shop", customer=_buyer("weibo-shop", "", nick="tb_gift")),
        headers=h,
    )
    # The same Taobao nick again is the same Taobao account.
    client.post(
        "/api/v1/orders", json=order("M5", source="taobao", customer=_buyer("taobao", "", nick="tb_gift")), headers=h
    )
    db.expire_all()
    live = db.scalars(select(Customer).where(Customer.merged_into_id.is_(None))).all()
    assert len(live) == 3
    by_orders = sorted((c.orders_count, c.total_spent) for c in live)
    assert by_orders == [(1, 12800), (2, 17800), (2, 25600)]


def test_late_identity_merges_two_existing_customers(client, db, tenant: Tenant) -> None:
    h = tenant.headers("operator")
    a = client.post(
        "/api/v1/orders",
        json=order(
            "N1", customer={"identities": [{"source": "wechat", "kind": "unionid", "value": "U1", "verified": True}]}
        ),
        headers=h,
    ).json()
    b = client.post(
        "/api/v1/orders",
        json=order("N2", customer={"identities": [{"source": "youzan", "kind": "customer_id", "value": "Y1"}]}),
        headers=h,
    ).json()
    # An order carrying both identities reveals they are one person.
    client.post(
        "/api/v1/orders",
        json=order(
            "N3",
            customer={
                "identities": [
                    {"source": "wechat", "kind": "unionid", "value": "U1", "verified": True},
                    {"source": "youzan", "kind": "customer_id", "value": "Y1"},
                ]
            },
        ),
        headers=h,
    )
    db.expire_all()
    cids = {o.customer_id for o in db.scalars(select(Order))}
    assert len(cids) == 1
    winner = cids.pop()
    assert db.get(Customer, winner).orders_count == 3
    first = client.get(f"/api/v1/orders/{a['order_ids'][0]}", headers=h).json()["customer_id"]
    second = client.get(f"/api/v1/orders/{b['order_ids'][0]}", headers=h).json()["customer_id"]
    assert first == second == winner
    timeline = client.get(f"/api/v1/customers/{winner}/timeline", headers=h).json()
    assert {e["kind"] for e in timeline} >= {"order", "merge"}
    assert (
        db.scalar(select(func.count()).select_from(CustomerIdentity).where(CustomerIdentity.customer_id == winner)) == 2
    )


def test_workspaces_never_see_each_other(client, db, tenant: Tenant, other_tenant: Tenant) -> None:
    r = client.post("/api/v1/orders", json=order("W1"), headers=tenant.headers("operator")).json()
    oid = r["order_ids"][0]
    cid = client.get(f"/api/v1/orders/{oid}", headers=tenant.headers()).json()["customer_id"]
    for path in (f"/api/v1/orders/{oid}", f"/api/v1/customers/{cid}", f"/api/v1/customers/{cid}/timeline"):
        resp = client.get(path, headers=other_tenant.headers())
        assert resp.status_code == 404, path
    assert client.get("/api/v1/customers", headers=other_tenant.headers()).json()["total"] == 0
    assert client.get("/api/v1/orders", headers=other_tenant.headers()).json()["total"] == 0
    # The same source order id in another workspace is a different order.
    client.post("/api/v1/orders", json=order("W1"), headers=other_tenant.headers("operator"))
    assert count(db, Order) == 2


def test_pagination_and_search(client, db, tenant: Tenant) -> None:
    h = tenant.headers("operator")
    orders = [
        order(
            f"P{i}",
            customer={
                "identities": [{"source": "api", "kind": "customer_id", "value": f"c{i}"}],
                "name": f"客户{i}",
                "city": "上海" if i % 2 else "北京",
            },
        )
        for i in range(7)
    ]
    client.post("/api/v1/orders/batch", json={"orders": orders}, headers=h)
    page = client.get("/api/v1/customers?limit=3&offset=0", headers=h).json()
    assert page["total"] == 7 and len(page["items"]) == 3 and page["next_offset"] == 3
    last = client.get("/api/v1/customers?limit=3&offset=6", headers=h).json()
    assert len(last["items"]) == 1 and last["next_offset"] is None
    assert client.get("/api/v1/customers?city=上海", headers=h).json()["total"] == 3
    assert client.get("/api/v1/customers?q=客户4", headers=h).json()["items"][0]["name"] == "客户4"
    assert client.get("/api/v1/customers?q=c5", headers=h).json()["items"][0]["name"] == "客户5"
    assert client.get("/api/v1/customers?limit=0", headers=h).status_code == 422


def test_nul_and_broken_unicode_are_refused_not_crashed(client, db, tenant: Tenant) -> None:
    h = tenant.headers("operator", **{"Content-Type": "application/json"})
    nul = '{"source_order_id": "X\\u0000", "status": "paid", "total": 1, "created_at": "2026-01-01T00:00:00Z"}'
    r = client.post("/api/v1/orders", content=nul.encode(), headers=h)
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "source_order_id"
    broken = (
        '{"source_order_id": "Y1", "status": "paid", "total": 1, "created_at": "2026-01-01T00:00:00Z", '
        '"line_items": [{"sku": "\\udafe", "quantity": 1, "unit_price": 1}]}'
    )
    r = client.post("/api/v1/orders", content=broken.encode(), headers=h)
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "line_items[0].sku"
    assert count(db, Order) == 0
