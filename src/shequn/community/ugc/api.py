"""UGC API: posts, topics, reviews, questions and answers, reactions, moderation."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["ugc"])
