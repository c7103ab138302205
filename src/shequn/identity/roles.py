"""Roles and what each may do."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """Operator roles, most powerful first."""

    OWNER = "owner"
    ADMIN = "admin"
    OPERATOR = "operator"
    ANALYST = "analyst"
    VIEWER = "viewer"


class Perm(StrEnum):
    """Permissions checked by services and routes."""

    READ = "read"  # see data (PII masked)
    EXPORT = "export"  # download data and reports
    WRITE = "write"  # change business data: customers, products, orders, campaigns
    IMPORT = "import"  # run imports and demo loads
    MANAGE_TOKENS = "manage_tokens"
    MANAGE_OPERATORS = "manage_operators"
    MANAGE_WORKSPACE = "manage_workspace"
    VIEW_AUDIT = "view_audit"


ROLE_PERMS: dict[Role, frozenset[Perm]] = {
    Role.VIEWER: frozenset({Perm.READ}),
    Role.ANALYST: frozenset({Perm.READ, Perm.EXPORT}),
    Role.OPERATOR: frozenset({Perm.READ, Perm.EXPORT, Perm.WRITE, Perm.IMPORT}),
    Role.ADMIN: frozenset(
        {Perm.READ, Perm.EXPORT, Perm.WRITE, Perm.IMPORT, Perm.MANAGE_TOKENS, Perm.MANAGE_OPERATORS, Perm.VIEW_AUDIT}
    ),
    Role.OWNER: frozenset(Perm),
}

ROLE_RANK = {Role.OWNER: 5, Role.ADMIN: 4, Role.OPERATOR: 3, Role.ANALYST: 2, Role.VIEWER: 1}


def has_perm(role: str, perm: Perm) -> bool:
    """Whether role grants perm."""
    try:
        return perm in ROLE_PERMS[Role(role)]
    except ValueError:
        return False


def can_grant(granter: str, role: str) -> bool:
    """An operator may hand out roles up to their own, and only owners make owners."""
    try:
        return ROLE_RANK[Role(role)] <= ROLE_RANK[Role(granter)]
    except ValueError:
        return False
