"""Member H5 and member API: post, review, ask and answer, react."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
