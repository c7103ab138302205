"""Communities API: communities, members, sync, policies and enforcements."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["communities"])
