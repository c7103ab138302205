"""Identity: login, roles, tokens, audit, workspace isolation."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from shequn.core.errors import PermissionDenied
from shequn.identity import service
from shequn.identity.errors import InvalidCredentials
from shequn.identity.models import ApiToken, Operator
from shequn.identity.roles import Perm, Role, can_grant, has_perm
from tests.conftest import Tenant


def test_password_is_argon2_and_login_checks_it(db, tenant: Tenant) -> None:
    op = db.get(Operator, tenant.owner_id)
    assert op.password_hash.startswith("$argon2id$")
    token, cs = service.login(db, email="OWNER-A@example.com", password="password-123")
    db.commit()
    assert service.get_console_session(db, token) is not None
    assert cs.token_hash != token  # only the hash is stored
    with pytest.raises(InvalidCredentials):
        service.login(db, email="owner-a@example.com", password="wrong-password")
    with pytest.raises(InvalidCredentials):
        service.login(db, email="nobody@example.com", password="password-123")
    service.logout(db, token)
    db.commit()
    assert service.get_console_session(db, token) is None


def test_role_matrix() -> None:
    assert has_perm("viewer", Perm.READ) and not has_perm("viewer", Perm.WRITE)
    assert has_perm("analyst", Perm.EXPORT) and not has_perm("analyst", Perm.IMPORT)
    assert has_perm("operator", Perm.IMPORT) and not has_perm("operator", Perm.MANAGE_TOKENS)
    assert has_perm("admin", Perm.MANAGE_OPERATORS) and not has_perm("admin", Perm.MANAGE_WORKSPACE)
    assert all(has_perm("owner", p) for p in Perm)
    assert not has_perm("nonsense", Perm.READ)
    assert can_grant("admin", "operator") and not can_grant("admin", "owner")


def test_tokens_hashed_and_revocable(client, db, tenant: Tenant) -> None:
    r = client.post("/api/v1/tokens", json={"name": "shop sync", "role": "operator"}, headers=tenant.headers("admin"))
    assert r.status_code == 201, r.text
    plain = r.json()["token"]
    stored = db.scalar(select(ApiToken).where(ApiToken.name == "shop sync"))
    assert stored is not None and stored.token_hash != plain and plain not in stored.token_hash
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {plain}"}).json()["role"] == "operator"
    assert client.delete(f"/api/v1/tokens/{stored.id}", headers=tenant.headers("admin")).status_code == 204
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {plain}"})
    assert r.status_code == 401 and r.json()["code"] == "invalid_token"


def test_invalid_and_missing_tokens(client, tenant: Tenant) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        r = client.get("/api/v1/customers", headers=headers)
        assert r.status_code == 401
        body = r.json()
        assert set(body) == {"code", "message", "details"}


def test_error_messages_follow_the_request_locale(client) -> None:
    zh = client.get("/api/v1/me", headers={"Authorization": "Bearer x", "Accept-Language": "zh-CN,zh;q=0.9"})
    en = client.get("/api/v1/me", headers={"Authorization": "Bearer x", "Accept-Language": "en-US,en;q=0.8"})
    assert zh.json()["message"] == "API 令牌无效或已被吊销"
    assert en.json()["message"] == "The API token is invalid or revoked"


def test_viewer_cannot_write(client, tenant: Tenant) -> None:
    r = client.post(
        "/api/v1/products", json=[{"sku": "X1", "title": "x", "price": 100}], headers=tenant.headers("viewer")
    )
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    r = client.post("/api/v1/tokens", json={"name": "t", "role": "viewer"}, headers=tenant.headers("operator"))
    assert r.status_code == 403
    r = client.post(
        "/api/v1/operators",
        json={"email": "x@example.com", "password": "longenough", "role": "owner"},
        headers=tenant.headers("admin"),
    )
    assert r.status_code == 403  # admins cannot mint owners


def test_operators_and_audit(client, db, tenant: Tenant) -> None:
    r = client.post(
        "/api/v1/operators",
        json={"email": "ana@example.com", "name": "Ana", "password": "password-123", "role": "analyst"},
        headers=tenant.headers("admin"),
    )
    assert r.status_code == 201, r.text
    roles = {o["email"]: o["role"] for o in client.get("/api/v1/operators", headers=tenant.headers("viewer")).json()}
    assert roles["ana@example.com"] == "analyst"
    audit = client.get("/api/v1/audit", headers=tenant.headers("admin")).json()
    assert any(a["action"] == "operator.invited" for a in audit["items"])
    assert client.get("/api/v1/audit", headers=tenant.headers("operator")).status_code == 403


def test_service_refuses_without_permission(db, tenant: Tenant) -> None:
    viewer = service.Actor(workspace_id=tenant.workspace_id, role=Role.VIEWER.value)
    with pytest.raises(PermissionDenied):
        service.create_api_token(db, viewer, name="x", role="viewer")


def test_workspace_settings_owner_only_and_validated(client, db, tenant: Tenant) -> None:
    r = client.patch("/api/v1/workspace", json={"name": "山茶集旗舰"}, headers=tenant.headers("admin"))
    assert r.status_code == 403
    bad = client.patch(
        "/api/v1/workspace", json={"timezone": "Mars/Olympus", "currency": "cny"}, headers=tenant.headers("owner")
    )
    assert bad.status_code == 422
    assert {d["field"] for d in bad.json()["details"]} == {"timezone", "currency"}
    ok = client.patch(
        "/api/v1/workspace", json={"name": "山茶集旗舰", "timezone": "Asia/Tokyo"}, headers=tenant.headers("owner")
    )
    assert ok.status_code == 200 and ok.json()["timezone"] == "Asia/Tokyo"
    audit = client.get("/api/v1/audit", headers=tenant.headers("owner")).json()["items"]
    assert audit[0]["action"] == "workspace.updated" and audit[0]["details"]["timezone"] == [
        "Asia/Shanghai",
        "Asia/Tokyo",
    ]


def test_timezone_change_rebuilds_the_dashboard_days(client, db, tenant: Tenant) -> None:
    from shequn.commerce import service as commerce_service
    from tests.integration.test_commerce_api import order

    # 23:30 in Shanghai on Oct 31 is already Nov 1 in Tokyo.
    client.post(
        "/api/v1/orders",
        json=order("TZ1", created_at="2026-10-31T23:30:00+08:00", updated="2026-10-31T23:30:00+08:00"),
        headers=tenant.headers("operator"),
    )
    months = {
        m
        for m, _, _ in commerce_service.gmv_by_month(
            db, workspace_id=tenant.workspace_id, tz="Asia/Shanghai", months=36
        )
    }
    assert months == {"2026-10"}
    client.patch("/api/v1/workspace", json={"timezone": "Asia/Tokyo"}, headers=tenant.headers("owner"))
    db.expire_all()
    months = {
        m for m, _, _ in commerce_service.gmv_by_month(db, workspace_id=tenant.workspace_id, tz="Asia/Tokyo", months=36)
    }
    assert months == {"2026-11"}


def test_roles_change_and_removal_rules(client, db, tenant: Tenant) -> None:
    h_admin, h_owner = tenant.headers("admin"), tenant.headers("owner")
    ana = client.post(
        "/api/v1/operators",
        json={"email": "ana@example.com", "password": "password-123", "role": "analyst"},
        headers=h_admin,
    ).json()
    assert client.patch(f"/api/v1/operators/{ana['id']}", json={"role": "operator"}, headers=h_admin).status_code == 200
    assert client.patch(f"/api/v1/operators/{ana['id']}", json={"role": "owner"}, headers=h_admin).status_code == 403
    # Admins cannot touch owners; the last owner can be neither demoted nor removed.
    owner_id = tenant.owner_id
    assert client.patch(f"/api/v1/operators/{owner_id}", json={"role": "viewer"}, headers=h_admin).status_code == 403
    from shequn.identity import service
    from shequn.identity.errors import LastOwner

    second_owner = service.Actor(workspace_id=tenant.workspace_id, role="owner", operator_id=ana["id"])
    with pytest.raises(LastOwner):
        service.set_member_role(db, second_owner, operator_id=owner_id, role="viewer")
    db.rollback()
    assert client.delete(f"/api/v1/operators/{ana['id']}", headers=h_owner).status_code == 204
    emails = {o["email"] for o in client.get("/api/v1/operators", headers=h_owner).json()}
    assert "ana@example.com" not in emails
    assert client.delete("/api/v1/operators/99999", headers=h_owner).status_code == 404


def test_wrong_passwords_lock_the_account_for_a_while(db, tenant: Tenant) -> None:
    from shequn.identity.errors import TooManyAttempts

    for _ in range(service.FREE_ATTEMPTS):
        with pytest.raises(InvalidCredentials):
            service.login(db, email="owner-a@example.com", password="guess-guess")
        db.commit()
    # Locked now, even with the right password.
    with pytest.raises(TooManyAttempts):
        service.login(db, email="owner-a@example.com", password="password-123")
    op = db.get(Operator, tenant.owner_id)
    from shequn.core.clock import utcnow

    op.locked_until = utcnow()  # time passes
    db.commit()
    service.login(db, email="owner-a@example.com", password="password-123")
    db.commit()
    db.refresh(op)
    assert op.failed_logins == 0 and op.locked_until is None


def test_migrations_run_on_a_database_with_data(backend: str) -> None:
    """Downgrade to the first revision and back up with rows present (PostgreSQL refuses NOT NULL columns
    without defaults on non-empty tables, SQLite needs batch mode)."""
    from alembic import command

    from shequn.core.db import session_scope
    from shequn.core.migrate import alembic_config

    with session_scope() as s:
        service.bootstrap_owner(
            s, email="m@example.com", password="password-123", name="m", workspace_slug="mig-ws", workspace_name="m"
        )
    command.downgrade(alembic_config(), "0001")
    command.upgrade(alembic_config(), "head")
    with session_scope() as s:
        assert service.get_operator_by_email(s, "m@example.com").failed_logins == 0
