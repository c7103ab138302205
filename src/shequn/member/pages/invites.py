"""Member H5 and member API: open an invite, join by invite."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
