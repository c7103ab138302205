"""File imports through the API and the job queue: every format, bad rows kept out, good rows kept."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from shequn.commerce.models import ImportRowError, Order
from tests.conftest import FIXTURES, Tenant

ORDERS = FIXTURES / "orders"


def upload(client, tenant: Tenant, name: str, data: bytes | None = None, role: str = "operator", **form: str):
    payload = data if data is not None else (ORDERS / name).read_bytes()
    return client.post("/api/v1/imports", files={"file": (name, payload)}, data=form, headers=tenant.headers(role))


def finished(client, tenant: Tenant, job: dict) -> dict:
    # Jobs run right after commit in the test configuration; the job row tells the outcome.
    r = client.get(f"/api/v1/imports/{job['id']}", headers=tenant.headers("viewer"))
    assert r.status_code == 200
    return r.json()


def test_taobao_gbk_export_keeps_good_rows_and_reports_bad_ones(client, db, tenant: Tenant) -> None:
    r = upload(client, tenant, "taobao_orders.csv")
    assert r.status_code == 202, r.text
    job = finished(client, tenant, r.json())
    assert job["status"] == "succeeded", job
    assert job["result"]["failed"] == 2 and job["result"]["created"] == 4 and job["result"]["unchanged"] == 1
    errors = client.get(f"/api/v1/imports/{job['id']}/errors", headers=tenant.headers("viewer")).json()
    assert [(e["row"], e["field"]) for e in errors] == [(4, "订单状态"), (5, "买家应付货款")]
    ids = set(db.scalars(select(Order.source_order_id)))
    assert "3012345678901234567" in ids  # 19-digit id kept exactly, as a string
    first = db.scalar(select(Order).where(Order.source_order_id == "3012345678901234567"))
    assert first.total == 20900 and first.status == "completed"
    assert first.placed_at.isoformat() == "2025-11-10T16:05:00+00:00"  # naive Shanghai time → UTC
    # The receiver's phone is kept only masked, even inside the stored source record.
    assert "13800138000" not in json.dumps(first.raw, ensure_ascii=False)
    assert "138****8000" in json.dumps(first.raw, ensure_ascii=False)
    # The uploaded file is gone once imported.
    from shequn.core.settings import get_settings

    assert not any(get_settings().upload_dir.rglob("*.csv"))
    # Importing the same file again doubles nothing.
    again = finished(client, tenant, upload(client, tenant, "taobao_orders.csv").json())
    assert again["result"]["created"] == 0 and again["result"]["unchanged"] == 5
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Order)) == 4


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("youzan_orders.json", "youzan"),
        ("shopify_orders.json", "shopify"),
        ("shopify_orders.csv", "shopify"),
        ("woocommerce_orders.json", "woocommerce"),
        ("shequn_orders.json", "shequn"),
        ("shequn_orders.csv", "shequn"),
    ],
)
def test_each_format_imports_with_detection(client, db, tenant: Tenant, name: str, source: str) -> None:
    job = finished(client, tenant, upload(client, tenant, name).json())
    assert job["status"] == "succeeded", job
    assert job["result"]["created"] >= 1
    db.expire_all()
    assert set(db.scalars(select(Order.source).distinct())) == {source}


def test_whole_file_problems_are_reported_and_write_nothing(client, db, tenant: Tenant) -> None:
    cases = [
        ("utf16.csv", "", "bad_encoding"),
        ("not_json.json", "youzan", "bad_json"),
        ("not_json.json", "", "unsupported_format"),
        ("taobao_missing_id.csv", "taobao", "missing_columns"),
    ]
    for name, source, code in cases:
        job = finished(client, tenant, upload(client, tenant, name, source=source).json())
        assert job["result"].get("file_error") == code, (name, job)
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Order)) == 0
    assert db.scalar(select(func.count()).select_from(ImportRowError)) == 0


def test_products_file(client, db, tenant: Tenant) -> None:
    job = finished(client, tenant, upload(client, tenant, "products.csv", kind="products").json())
    assert job["status"] == "succeeded" and job["result"]["created"] >= 1
    products = client.get("/api/v1/products", headers=tenant.headers("viewer")).json()
    assert products["total"] == job["result"]["created"]
    assert all(p["price"] >= 0 for p in products["items"])


def test_upload_limits_and_roles(client, tenant: Tenant, monkeypatch) -> None:
    assert upload(client, tenant, "taobao_orders.csv", role="viewer").status_code == 403
    assert upload(client, tenant, "taobao_orders.csv", role="analyst").status_code == 403
    empty = upload(client, tenant, "empty.csv", data=b"")
    assert empty.status_code == 422
    assert upload(client, tenant, "x.csv", data=b"a,b\n1,2\n", source="amazon").status_code == 422
    monkeypatch.setenv("SHEQUN_MAX_UPLOAD_MB", "1")
    from shequn.core.settings import get_settings

    get_settings.cache_clear()
    try:
        big = upload(client, tenant, "big.csv", data=b"a" * (2 * 1024 * 1024))
        assert big.status_code == 413 and big.json()["code"] == "too_large"
        assert "1 MB" in big.json()["message"]
    finally:
        monkeypatch.delenv("SHEQUN_MAX_UPLOAD_MB")
        get_settings.cache_clear()


def test_other_workspace_cannot_see_my_import(client, tenant: Tenant, other_tenant: Tenant) -> None:
    job = upload(client, tenant, "taobao_orders.csv").json()
    assert client.get(f"/api/v1/imports/{job['id']}", headers=other_tenant.headers()).status_code == 404
    assert client.get(f"/api/v1/imports/{job['id']}/errors", headers=other_tenant.headers()).status_code == 404


def test_error_report_is_capped_but_every_bad_row_counted(client, db, tenant: Tenant, monkeypatch) -> None:
    from shequn.commerce import ingest

    monkeypatch.setattr(ingest, "MAX_KEPT_ERRORS", 3)
    lines = ["source_order_id,status,total,currency,created_at,buyer_id,sku,title,quantity,unit_price"]
    lines += [f"B{i},teleported,100,CNY,2026-01-01 10:00:00,b{i},S,t,1,100" for i in range(8)]
    lines += ["G1,paid,100,CNY,2026-01-01 10:00:00,g1,S,t,1,100"]
    job = finished(
        client, tenant, upload(client, tenant, "bad.csv", data="\n".join(lines).encode(), source="shequn").json()
    )
    assert job["result"]["failed"] == 8 and job["result"]["created"] == 1
    errors = client.get(f"/api/v1/imports/{job['id']}/errors", headers=tenant.headers("viewer")).json()
    assert len(errors) == 3


def test_streamed_body_without_length_is_capped(client, tenant: Tenant, monkeypatch) -> None:
    monkeypatch.setenv("SHEQUN_MAX_UPLOAD_MB", "1")
    from shequn.core.settings import get_settings

    get_settings.cache_clear()
    try:

        def chunks():
            for _ in range(40):
                yield b"x" * 65536

        r = client.post("/api/v1/orders", content=chunks(), headers=tenant.headers("operator"))
        assert r.status_code == 413 and r.json()["code"] == "too_large"
        small = client.post(
            "/api/v1/orders",
            content=iter([b'{"source_order_id": "x"}']),
            headers=tenant.headers("operator", **{"Content-Type": "application/json"}),
        )
        assert small.status_code == 422  # reached the route and was validated
    finally:
        monkeypatch.delenv("SHEQUN_MAX_UPLOAD_MB")
        get_settings.cache_clear()
