"""Identity API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RoleName = Literal["owner", "admin", "operator", "analyst", "viewer"]


class MeOut(BaseModel):
    """Who the token is."""

    workspace_id: int
    workspace_slug: str
    workspace_name: str
    timezone: str
    currency: str
    role: str
    token_id: int | None


class TokenCreate(BaseModel):
    """A new API token."""

    name: str = Field(min_length=1, max_length=120)
    role: Literal["admin", "operator", "analyst", "viewer"] = "operator"


class TokenOut(BaseModel):
    """A token as listed (never the secret)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    role: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    """A token just created: the only time the secret is shown."""

    token: str


class OperatorInvite(BaseModel):
    """Add an operator to the workspace."""

    email: str = Field(min_length=3, max_length=254)
    name: str = Field(default="", max_length=120)
    password: str = Field(min_length=8, max_length=200)
    role: RoleName


class OperatorOut(BaseModel):
    """An operator and their role here."""

    id: int
    email: str
    name: str
    role: str


class AuditOut(BaseModel):
    """An audit entry."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    actor_operator_id: int | None
    actor_token_id: int | None
    action: str
    target_type: str
    target_id: str
    details: dict[str, Any]
    ip: str
    created_at: datetime


class WorkspaceUpdate(BaseModel):
    """Fields of the workspace to change (omitted ones stay)."""

    name: str | None = Field(default=None, max_length=120)
    timezone: str | None = Field(default=None, max_length=64, description="IANA name, e.g. Asia/Shanghai")
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    locale: Literal["zh-CN", "en"] | None = None


class RoleUpdate(BaseModel):
    """A new role for an operator."""

    role: RoleName
