"""RFM through imports, the job queue and the API."""

from __future__ import annotations

from tests.conftest import Tenant
from tests.integration.test_commerce_api import order


def _buyer(i: int) -> dict:
    return {"identities": [{"source": "api", "kind": "customer_id", "value": f"rfm-{i}"}], "name": f"客户{i}"}


def test_import_queues_rfm_and_groups_are_listed(client, db, tenant: Tenant, other_tenant: Tenant) -> None:
    h = tenant.headers("operator")
    orders = []
    for i in range(10):
        for k in range(1 + i % 4):  # 1–4 orders each, spend rising with i
            orders.append(
                order(
                    f"RFM-{i}-{k}",
                    total=1000 * (i + 1),
                    customer=_buyer(i),
                    created_at=f"2026-{1 + i:02d}-0{1 + k}T10:00:00+08:00",
                    updated=f"2026-{1 + i:02d}-0{1 + k}T10:00:00+08:00",
                )
            )
    lines = ["source_order_id,status,total,currency,created_at,buyer_id,sku,title,quantity,unit_price"]
    for o in orders:
        lines.append(
            f"{o['source_order_id']},paid,{o['total']},CNY,{o['created_at'][:19].replace('T', ' ')},"
            f"{o['customer']['identities'][0]['value']},S,t,1,{o['total']}"
        )
    r = client.post(
        "/api/v1/imports", files={"file": ("rfm.csv", "\n".join(lines).encode())}, data={"source": "shequn"}, headers=h
    )
    assert r.status_code == 202, r.text
    groups = client.get("/api/v1/rfm", headers=tenant.headers("viewer", **{"Accept-Language": "zh-CN"})).json()
    assert len(groups) == 8 and sum(g["customers"] for g in groups) == 10
    names = {g["code"]: g["name"] for g in groups}
    assert names["important_value"] == "重要价值客户"
    top = client.get("/api/v1/customers?sort=spent&limit=1", headers=h).json()["items"][0]
    assert top["m_score"] == 5 and top["f_score"] == 5  # 4 orders of ¥80: the biggest spender
    latest = client.get("/api/v1/customers?sort=recent&limit=1", headers=h).json()["items"][0]
    assert latest["r_score"] == 5 and latest["last_order_at"].startswith("2026-10")
    members = client.get("/api/v1/customers?rfm_group=important_value", headers=h).json()
    assert members["total"] >= 1 and all(c["rfm_group"] == "important_value" for c in members["items"])
    # Another workspace sees none of it; viewers cannot trigger a refresh.
    assert sum(g["customers"] for g in client.get("/api/v1/rfm", headers=other_tenant.headers()).json()) == 0
    assert client.post("/api/v1/rfm/refresh", headers=tenant.headers("viewer")).status_code == 403
    assert client.post("/api/v1/rfm/refresh", headers=h).status_code == 202
