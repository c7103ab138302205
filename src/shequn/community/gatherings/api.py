"""Gatherings API: online and offline gatherings, registration, check-in, feedback."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["gatherings"])
