"""Analytics API: tracked-event ingest."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from shequn.analytics import service
from shequn.analytics.schemas import EventBatch, IngestResult
from shequn.core.web import get_db
from shequn.identity.deps import require
from shequn.identity.roles import Perm
from shequn.identity.service import Actor

router = APIRouter(prefix="/api/v1/events", tags=["analytics"])


@router.post("", response_model=IngestResult)
def ingest(
    body: EventBatch, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> IngestResult:
    """Record 1–1,000 tracked events, all or none; resent event_ids are skipped, so retries are safe."""
    result = service.ingest_events(db, workspace_id=actor.workspace_id, events=body.events)
    db.commit()
    return result
