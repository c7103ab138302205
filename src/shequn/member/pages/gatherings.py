"""Member H5 and member API: gatherings, register, check in, feedback."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
