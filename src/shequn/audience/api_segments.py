"""Segments API: CRUD, live preview, refresh, members, history, profile, export and discovery."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from shequn.audience import discovery, profiles, rfm, segment_members, segments
from shequn.audience.lifecycle import STAGE_NAMES
from shequn.audience.rules import FIELDS, OPS
from shequn.audience.schemas import (
    CountOut,
    CustomerOut,
    PreviewOut,
    RuleIn,
    SegmentChangeOut,
    SegmentIn,
    SegmentOut,
    SegmentPatch,
    SegmentProfileOut,
)
from shequn.core.db import new_session
from shequn.core.errors import NotFound, ValidationFailed
from shequn.core.jobs import enqueue_job, get_job
from shequn.core.schemas import JobOut, Paginated
from shequn.core.web import DbId, Page, get_db, page_params, request_locale
from shequn.identity.deps import require
from shequn.identity.roles import Perm
from shequn.identity.service import Actor

router = APIRouter(prefix="/api/v1/segments", tags=["segments"])

LIFECYCLE_NAMES = STAGE_NAMES
EXPORT_COLUMNS = (
    "id",
    "name",
    "phone_masked",
    "email_masked",
    "province",
    "city",
    "orders_count",
    "total_spent_yuan",
    "last_order_at",
    "rfm_group",
    "lifecycle",
)


@router.get("/fields")
def rule_fields() -> dict[str, Any]:
    """The rule language: attribute fields with their types and operators, and the other leaf types."""
    return {
        "fields": {
            name: {"type": f.type, "nullable": f.nullable, "choices": list(f.choices)} for name, f in FIELDS.items()
        },
        "operators": {t: list(ops) for t, ops in OPS.items()},
        "leaf_types": ["attr", "tag", "purchase", "event", "segment"],
        "groups": ["and", "or", "not"],
    }


@router.get("", response_model=list[SegmentOut])
def list_segments(actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)) -> list[SegmentOut]:
    """The workspace's segments."""
    return [SegmentOut.model_validate(s) for s in segments.list_segments(db, workspace_id=actor.workspace_id)]


@router.post("", response_model=SegmentOut, status_code=201)
def create_segment(
    body: SegmentIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> SegmentOut:
    """Create a segment and fill it now; a static one keeps this snapshot."""
    seg = segments.create_segment(
        db,
        workspace_id=actor.workspace_id,
        name=body.name,
        rule=body.rule,
        kind=body.kind,
        description=body.description,
        created_by=actor.operator_id,
    )
    db.commit()
    return SegmentOut.model_validate(seg)


@router.post("/preview", response_model=PreviewOut)
def preview(body: RuleIn, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)) -> PreviewOut:
    """How many customers a rule matches right now, with a sample (the rule builder's live count)."""
    count, people = segments.preview(db, workspace_id=actor.workspace_id, rule=body.rule)
    return PreviewOut(count=count, sample=[CustomerOut.model_validate(c) for c in people])


@router.get("/{segment_id}", response_model=SegmentOut)
def get_segment(
    segment_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)
) -> SegmentOut:
    """One segment."""
    return SegmentOut.model_validate(segments.get_segment(db, workspace_id=actor.workspace_id, segment_id=segment_id))


@router.patch("/{segment_id}", response_model=SegmentOut)
def update_segment(
    segment_id: DbId, body: SegmentPatch, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> SegmentOut:
    """Rename, describe or change the rule of a segment."""
    seg = segments.update_segment(
        db,
        workspace_id=actor.workspace_id,
        segment_id=segment_id,
        name=body.name,
        description=body.description,
        rule=body.rule,
    )
    db.commit()
    return SegmentOut.model_validate(seg)


@router.delete("/{segment_id}", status_code=204)
def delete_segment(
    segment_id: DbId, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> Response:
    """Delete a segment no other segment refers to."""
    segments.delete_segment(db, workspace_id=actor.workspace_id, segment_id=segment_id)
    db.commit()
    return Response(status_code=204)


@router.post("/{segment_id}/refresh", response_model=JobOut, status_code=202)
def refresh_segment(
    segment_id: DbId, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> JobOut:
    """Re-evaluate a segment over the whole workspace in the background (a static one re-snapshots)."""
    seg = segments.get_segment(db, workspace_id=actor.workspace_id, segment_id=segment_id)
    if seg.kind == "static" and not seg.rule:
        raise ValidationFailed(details=[{"field": "segment_id", "message": "this snapshot has no rule to re-run"}])
    job = enqueue_job(
        db,
        workspace_id=actor.workspace_id,
        kind=segments.SEGMENT_REFRESH_JOB,
        params={"segment_id": seg.id},
        created_by=actor.operator_id,
    )
    db.commit()
    return JobOut.model_validate(job)


@router.get("/{segment_id}/members", response_model=Paginated[CustomerOut])
def members(
    segment_id: DbId,
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> Paginated[CustomerOut]:
    """A page of the segment's members, biggest spenders first."""
    people, total = segment_members.list_members(
        db, workspace_id=actor.workspace_id, segment_id=segment_id, limit=page.limit, offset=page.offset
    )
    return Paginated[CustomerOut].of([CustomerOut.model_validate(c) for c in people], total, page.limit, page.offset)


@router.get("/{segment_id}/history", response_model=list[SegmentChangeOut])
def history(
    segment_id: DbId,
    customer_id: int | None = Query(None, ge=1, le=2**62),
    limit: int = Query(100, ge=1, le=1000),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> list[SegmentChangeOut]:
    """Who entered or left the segment, newest first."""
    rows = segment_members.list_history(
        db, workspace_id=actor.workspace_id, segment_id=segment_id, limit=limit, customer_id=customer_id
    )
    return [SegmentChangeOut.model_validate(r) for r in rows]


def _labelled(rows: list[tuple[str, int, int]], names: dict[str, tuple[str, str]], en: bool) -> list[CountOut]:
    return [CountOut(key=k, label=names[k][1 if en else 0] if k in names else k, count=n, amount=a) for k, n, a in rows]


@router.get("/{segment_id}/profile", response_model=SegmentProfileOut)
def profile(
    segment_id: DbId, request: Request, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)
) -> SegmentProfileOut:
    """Size, spend, RFM and lifecycle mix, top categories, cities and tags, and size over time."""
    p = profiles.segment_profile(db, workspace_id=actor.workspace_id, segment_id=segment_id)
    en = request_locale(request) == "en"
    return SegmentProfileOut(
        size=p.size,
        buyers=p.buyers,
        total_spent=p.total_spent,
        avg_spent=p.avg_spent,
        avg_orders=p.avg_orders,
        rfm=_labelled(p.rfm, rfm.GROUP_NAMES, en),
        lifecycle=_labelled(p.lifecycle, LIFECYCLE_NAMES, en),
        categories=_labelled(p.categories, {}, en),
        cities=_labelled(p.cities, {}, en),
        tags=_labelled(p.tags, {}, en),
        sizes=p.sizes,
    )


def _csv_line(values: list[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(values)
    return buf.getvalue()


def member_csv(workspace_id: int, segment_id: int) -> Iterator[str]:
    """The segment's members as CSV with PII masked (UTF-8 BOM so Excel reads Chinese), in its own session."""
    yield "\ufeff" + _csv_line(list(EXPORT_COLUMNS))
    with new_session() as session:
        for c in segment_members.iter_member_rows(session, workspace_id=workspace_id, segment_id=segment_id):
            last = c.last_order_at.isoformat() if c.last_order_at else ""
            yield _csv_line(
                [
                    c.id,
                    c.name,
                    c.phone_masked,
                    c.email_masked,
                    c.province,
                    c.city,
                    c.orders_count,
                    f"{c.total_spent / 100:.2f}",
                    last,
                    c.rfm_group or "",
                    c.lifecycle or "",
                ]
            )


def identities_csv(workspace_id: int, segment_id: int, source: str) -> Iterator[str]:
    """The members' identities on one platform (a channel audience: openids, WeCom ids, Weibo uids)."""
    yield _csv_line(["customer_id", "source", "kind", "value"])
    with new_session() as session:
        for row in segment_members.iter_member_identities(
            session, workspace_id=workspace_id, segment_id=segment_id, source=source
        ):
            yield _csv_line(list(row))


@router.get("/{segment_id}/export.csv")
def export_csv(
    segment_id: DbId, actor: Actor = Depends(require(Perm.EXPORT)), db: Session = Depends(get_db)
) -> StreamingResponse:
    """Download the members as CSV (phones and emails masked)."""
    seg = segments.get_segment(db, workspace_id=actor.workspace_id, segment_id=segment_id)
    return StreamingResponse(
        member_csv(actor.workspace_id, seg.id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="segment-{seg.id}.csv"'},
    )


@router.get("/{segment_id}/audience.csv")
def export_audience(
    segment_id: DbId,
    source: str = Query(..., min_length=1, max_length=32, description="platform, e.g. wechat, wecom, weibo, taobao"),
    actor: Actor = Depends(require(Perm.EXPORT)),
    db: Session = Depends(get_db),
) -> StreamingResponse:
    """Download the members' platform ids on one platform, for a channel audience (no phone hashes)."""
    seg = segments.get_segment(db, workspace_id=actor.workspace_id, segment_id=segment_id)
    return StreamingResponse(
        identities_csv(actor.workspace_id, seg.id, source),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="segment-{seg.id}-audience.csv"'},
    )


class DiscoverIn(BaseModel):
    """Discovery options: k clusters, or None to choose k by silhouette."""

    k: int | None = Field(None, ge=2, le=12)


class SaveClusterIn(BaseModel):
    """Save one discovered cluster as a static segment."""

    job_id: int = Field(ge=1, le=2**62)
    cluster: int = Field(ge=0, le=50)
    name: str = Field(min_length=1, max_length=100)


@router.post("/discover", response_model=JobOut, status_code=202)
def discover(body: DiscoverIn, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)) -> JobOut:
    """Cluster customers (k-means on RFM, interests, engagement) in the background; the result lists proposals."""
    job = enqueue_job(
        db,
        workspace_id=actor.workspace_id,
        kind=discovery.DISCOVERY_JOB,
        params={"k": body.k},
        created_by=actor.operator_id,
    )
    db.commit()
    return JobOut.model_validate(job)


@router.post("/discover/save", response_model=SegmentOut, status_code=201)
def save_cluster(
    body: SaveClusterIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> SegmentOut:
    """Save a proposal from a finished discovery job as a static segment of today's nearest customers."""
    job = get_job(db, workspace_id=actor.workspace_id, job_id=body.job_id)
    if job is None or job.kind != discovery.DISCOVERY_JOB:
        raise NotFound()
    if job.status != "succeeded":
        raise ValidationFailed(details=[{"field": "job_id", "message": f"the discovery job is {job.status}"}])
    seg = discovery.save_cluster(
        db,
        workspace_id=actor.workspace_id,
        result=job.result,
        cluster=body.cluster,
        name=body.name,
        created_by=actor.operator_id,
    )
    db.commit()
    return SegmentOut.model_validate(seg)
