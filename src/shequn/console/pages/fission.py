"""Console: invite links, referral trees, rewards, the fission report."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
