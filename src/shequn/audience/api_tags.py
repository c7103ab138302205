"""Tags API: CRUD, tagging by ids, by rule and by uploaded id list, refreshes; a customer's tags;
audience settings and lifecycle stage counts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from shequn.audience import service
from shequn.core.errors import TooLarge
from shequn.core.schemas import JobOut, Paginated
from shequn.core.settings import get_settings
from shequn.core.web import MAX_DB_INT, DbId, Page, get_db, page_params, request_locale
from shequn.identity.deps import require
from shequn.identity.roles import Perm
from shequn.identity.service import Actor

router = APIRouter(prefix="/api/v1/tags", tags=["tags"])
customer_tags_router = APIRouter(prefix="/api/v1/customers", tags=["tags"])
settings_router = APIRouter(prefix="/api/v1/audience", tags=["audience"])

MAX_IDS = 1000
CustomerId = Annotated[int, Field(ge=1, le=MAX_DB_INT)]


class TagOut(BaseModel):
    """A tag with how many customers carry it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: str
    color: str
    description: str
    rule: dict[str, Any] | None
    interest_key: str
    customers_count: int
    refreshed_at: datetime | None
    created_at: datetime


class TagCreate(BaseModel):
    """A new manual tag, or a rule tag with its rule (the segment rule language)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    kind: Literal["manual", "rule"] = "manual"
    color: str = Field("", max_length=16, description="empty, #rgb or #rrggbb")
    description: str = Field("", max_length=255)
    rule: dict[str, Any] | None = None


class TagPatch(BaseModel):
    """Fields to change; a new rule re-evaluates a rule tag."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=64)
    color: str | None = Field(None, max_length=16)
    description: str | None = Field(None, max_length=255)
    rule: dict[str, Any] | None = None


class CustomerIdsIn(BaseModel):
    """1 to 1,000 customer ids (merged ids are followed to the surviving customer)."""

    model_config = ConfigDict(extra="forbid")

    customer_ids: list[CustomerId] = Field(min_length=1, max_length=MAX_IDS)


class TaggedOut(BaseModel):
    """Customers newly tagged, and requested ids that are no customer of this workspace."""

    tagged: int
    missing: list[int]


class UntaggedOut(BaseModel):
    """Customers the tag was taken off."""

    untagged: int


class RuleBody(BaseModel):
    """A rule tree selecting the customers to tag."""

    model_config = ConfigDict(extra="forbid")

    rule: dict[str, Any]


class UnmatchedOut(BaseModel):
    """An uploaded row no customer was found for."""

    row: int
    value: str
    reason: str


class BulkTagOut(BaseModel):
    """Rows (or rule members) matched, customers newly tagged, and unmatched rows (the first 1,000)."""

    matched: int
    tagged: int
    unmatched: list[UnmatchedOut]
    unmatched_total: int


class CustomerTagOut(BaseModel):
    """A tag on a customer."""

    tag_id: int
    name: str
    kind: str
    color: str
    weight: float
    source: str
    created_at: datetime


class AudienceSettingsOut(BaseModel):
    """Audience settings of the workspace."""

    rfm_window_days: int
    interest_half_life_days: int
    lifecycle_new_days: int
    lifecycle_active_days: int
    lifecycle_lapsed_days: int


class AudienceSettingsIn(BaseModel):
    """Settings to change (omitted ones keep their value); lifecycle days need new ≤ active ≤ lapsed."""

    model_config = ConfigDict(extra="forbid")

    rfm_window_days: int | None = Field(None, ge=7, le=3650)
    interest_half_life_days: int | None = Field(None, ge=1, le=3650)
    lifecycle_new_days: int | None = Field(None, ge=1, le=3650)
    lifecycle_active_days: int | None = Field(None, ge=1, le=3650)
    lifecycle_lapsed_days: int | None = Field(None, ge=1, le=3650)


class StageOut(BaseModel):
    """Customers in one lifecycle stage."""

    stage: str
    name: str
    customers: int


def _bulk_out(result: service.BulkTagResult) -> BulkTagOut:
    return BulkTagOut(
        matched=result.matched,
        tagged=result.tagged,
        unmatched=[UnmatchedOut(row=u.row, value=u.value, reason=u.reason) for u in result.unmatched],
        unmatched_total=result.unmatched_total,
    )


@router.get("", response_model=Paginated[TagOut])
def list_tags(
    kind: str = Query("", pattern="^(|manual|rule|interest)$"),
    q: str = Query("", max_length=64, description="part of the name"),
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> Paginated[TagOut]:
    """The workspace's tags with customer counts, by kind then name."""
    rows, total = service.list_tags(
        db, workspace_id=actor.workspace_id, kind=kind or None, q=q, limit=page.limit, offset=page.offset
    )
    return Paginated[TagOut].of([TagOut.model_validate(t) for t in rows], total, page.limit, page.offset)


@router.post("", response_model=TagOut, status_code=201)
def create_tag(body: TagCreate, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)) -> TagOut:
    """Create a manual tag, or a rule tag (its customers are computed now)."""
    tag = service.create_tag(
        db,
        workspace_id=actor.workspace_id,
        name=body.name,
        kind=body.kind,
        color=body.color,
        description=body.description,
        rule=body.rule,
        created_by=actor.operator_id,
    )
    db.commit()
    return TagOut.model_validate(tag)


@router.post("/refresh", response_model=list[JobOut], status_code=202)
def refresh(actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)) -> list[JobOut]:
    """Queue the lifecycle, interest-tag and rule-tag refreshes."""
    jobs = service.request_tag_refresh(db, workspace_id=actor.workspace_id, created_by=actor.operator_id)
    db.commit()
    return [JobOut.model_validate(j) for j in jobs]


@router.get("/{tag_id}", response_model=TagOut)
def get_tag(tag_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)) -> TagOut:
    """One tag."""
    return TagOut.model_validate(service.get_tag(db, workspace_id=actor.workspace_id, tag_id=tag_id))


@router.patch("/{tag_id}", response_model=TagOut)
def update_tag(
    tag_id: DbId, body: TagPatch, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> TagOut:
    """Rename, recolour, describe, or change a rule tag's rule."""
    tag = service.update_tag(
        db,
        workspace_id=actor.workspace_id,
        tag_id=tag_id,
        name=body.name,
        color=body.color,
        description=body.description,
        rule=body.rule,
    )
    db.commit()
    return TagOut.model_validate(tag)


@router.delete("/{tag_id}", status_code=204)
def delete_tag(tag_id: DbId, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)) -> Response:
    """Delete a tag (refused while a rule tag or segment tests it) and take it off every customer."""
    service.delete_tag(db, workspace_id=actor.workspace_id, tag_id=tag_id)
    db.commit()
    return Response(status_code=204)


@router.post("/{tag_id}/customers", response_model=TaggedOut)
def tag_customers(
    tag_id: DbId, body: CustomerIdsIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> TaggedOut:
    """Put a manual tag on customers by id."""
    new, missing = service.tag_customers(
        db, workspace_id=actor.workspace_id, tag_id=tag_id, customer_ids=body.customer_ids
    )
    db.commit()
    return TaggedOut(tagged=len(new), missing=missing)


@router.delete("/{tag_id}/customers", response_model=UntaggedOut)
def untag_customers(
    tag_id: DbId, body: CustomerIdsIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> UntaggedOut:
    """Take a manual tag off customers by id."""
    removed = service.untag_customers(
        db, workspace_id=actor.workspace_id, tag_id=tag_id, customer_ids=body.customer_ids
    )
    db.commit()
    return UntaggedOut(untagged=len(removed))


@router.post("/{tag_id}/bulk", response_model=BulkTagOut)
def tag_by_rule(
    tag_id: DbId, body: RuleBody, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> BulkTagOut:
    """Put a manual tag on every customer a rule matches now."""
    result = service.tag_by_rule(db, workspace_id=actor.workspace_id, tag_id=tag_id, rule=body.rule)
    db.commit()
    return _bulk_out(result)


@router.post("/{tag_id}/upload", response_model=BulkTagOut)
async def tag_by_upload(
    tag_id: DbId,
    file: UploadFile = File(..., description="text or CSV, one customer id, phone, email or platform id a line"),
    actor: Actor = Depends(require(Perm.WRITE)),
    db: Session = Depends(get_db),
) -> BulkTagOut:
    """Put a manual tag on the customers an uploaded list names; rows naming nobody are reported."""
    limit = get_settings().max_upload_mb * 1024 * 1024
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(limit_mb=get_settings().max_upload_mb)
    result = service.tag_by_upload(db, workspace_id=actor.workspace_id, tag_id=tag_id, data=data)
    db.commit()
    return _bulk_out(result)


@customer_tags_router.get("/{customer_id}/tags", response_model=list[CustomerTagOut])
def customer_tags(
    customer_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)
) -> list[CustomerTagOut]:
    """A customer's tags with weights (interest scores) and sources (follows merges)."""
    c = service.get_customer(db, workspace_id=actor.workspace_id, customer_id=customer_id)
    return [
        CustomerTagOut(
            tag_id=t.id,
            name=t.name,
            kind=t.kind,
            color=t.color,
            weight=ct.weight,
            source=ct.source,
            created_at=ct.created_at,
        )
        for t, ct in service.list_customer_tags(db, workspace_id=actor.workspace_id, customer_id=c.id)
    ]


@settings_router.get("/settings", response_model=AudienceSettingsOut)
def get_audience_settings(
    actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)
) -> AudienceSettingsOut:
    """RFM window, interest half-life and lifecycle thresholds (days)."""
    settings = service.get_audience_settings(db, workspace_id=actor.workspace_id)
    out = AudienceSettingsOut(**service.settings_values(settings))
    db.commit()  # the row is created with defaults on first read
    return out


@settings_router.put("/settings", response_model=AudienceSettingsOut)
def put_audience_settings(
    body: AudienceSettingsIn, actor: Actor = Depends(require(Perm.MANAGE_WORKSPACE)), db: Session = Depends(get_db)
) -> AudienceSettingsOut:
    """Change settings; the refreshes they affect (RFM, interests, lifecycle) are queued."""
    settings = service.update_audience_settings(
        db, workspace_id=actor.workspace_id, changes=body.model_dump(exclude_none=True), created_by=actor.operator_id
    )
    out = AudienceSettingsOut(**service.settings_values(settings))
    db.commit()
    return out


@settings_router.get("/lifecycle", response_model=list[StageOut])
def lifecycle(
    request: Request, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)
) -> list[StageOut]:
    """Customers per lifecycle stage, named in the request's language."""
    english = request_locale(request) == "en"
    counts = service.lifecycle_counts(db, workspace_id=actor.workspace_id)
    return [
        StageOut(stage=stage, name=service.STAGE_NAMES[stage][1 if english else 0], customers=n)
        for stage, n in counts.items()
    ]
