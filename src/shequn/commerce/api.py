"""Commerce API: products, orders (list, detail, push one or a batch), file imports."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from sqlalchemy.orm import Session

from shequn.commerce import service, webhooks
from shequn.commerce.canonical import OrderIn, ProductIn, RowError, check_text
from shequn.commerce.errors import WebhookRejected
from shequn.commerce.schemas import (
    OrderBatch,
    OrderDetailOut,
    OrderOut,
    OrderPush,
    ProductOut,
    ProductPush,
    PushResult,
    RowErrorOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
)
from shequn.core import jobs
from shequn.core.errors import NotFound, TooLarge, ValidationFailed
from shequn.core.schemas import JobOut, Paginated
from shequn.core.settings import get_settings
from shequn.core.web import DbId, Page, get_db, page_params
from shequn.identity.deps import require
from shequn.identity.roles import Perm
from shequn.identity.service import Actor

router = APIRouter(prefix="/api/v1", tags=["commerce"])


def _to_canonical(pushes: list[OrderPush]) -> list[OrderIn]:
    from shequn.commerce.sources.shequn import order_from_dict

    out: list[OrderIn] = []
    errors = []
    for i, p in enumerate(pushes):
        try:
            order = order_from_dict(
                p.model_dump(mode="json", exclude_none=True), default_source=p.source, shop_id=p.shop_id
            )
            check_text(order)
            out.append(order)
        except RowError as exc:
            prefix = f"orders[{i}]." if len(pushes) > 1 else ""
            errors.append({"field": prefix + exc.field, "message": exc.reason})
    if errors:
        raise ValidationFailed(details=errors)
    return out


@router.get("/products", response_model=Paginated[ProductOut])
def list_products(
    q: str = Query("", max_length=100),
    category: str = Query("", max_length=64),
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> Paginated[ProductOut]:
    """Products, by category then SKU."""
    rows, total = service.list_products(
        db, workspace_id=actor.workspace_id, q=q, category=category, limit=page.limit, offset=page.offset
    )
    return Paginated[ProductOut].of([ProductOut.model_validate(p) for p in rows], total, page.limit, page.offset)


@router.post("/products", response_model=dict[str, int])
def upsert_products(
    body: list[ProductPush], actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> dict[str, int]:
    """Create or update products by SKU."""
    created, updated = service.upsert_products(
        db, actor, [ProductIn(sku=p.sku, title=p.title, price=p.price, category=p.category, tags=p.tags) for p in body]
    )
    db.commit()
    return {"created": created, "updated": updated}


@router.get("/orders", response_model=Paginated[OrderOut])
def list_orders(
    q: str = Query("", max_length=64, description="source order id"),
    status: str = Query("", max_length=24),
    source: str = Query("", max_length=32),
    customer_id: int | None = Query(None, ge=1, le=2**63 - 1),
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> Paginated[OrderOut]:
    """Orders, newest first."""
    flt = service.OrderFilter(q=q, status=status, source=source, customer_id=customer_id)
    rows, total = service.list_orders(
        db, workspace_id=actor.workspace_id, flt=flt, limit=page.limit, offset=page.offset
    )
    return Paginated[OrderOut].of([OrderOut.model_validate(o) for o in rows], total, page.limit, page.offset)


@router.get("/orders/{order_id}", response_model=OrderDetailOut)
def get_order(
    order_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)
) -> OrderDetailOut:
    """One order with its line items."""
    o = service.get_order(db, workspace_id=actor.workspace_id, order_id=order_id)
    items = service.list_line_items(db, workspace_id=actor.workspace_id, order_ids=[o.id])[o.id]
    return OrderDetailOut(**OrderOut.model_validate(o).model_dump(), line_items=items)


@router.post("/orders", response_model=PushResult)
def push_order(
    body: OrderPush, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> PushResult:
    """Upsert one order (newer updated_at wins; send an Idempotency-Key to make retries safe)."""
    stats, ids = service.push_orders(db, actor, _to_canonical([body]))
    db.commit()
    return PushResult(
        received=stats.received, created=stats.created, updated=stats.updated, unchanged=stats.unchanged, order_ids=ids
    )


@router.post("/orders/batch", response_model=PushResult)
def push_orders(
    body: OrderBatch, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> PushResult:
    """Upsert up to 1,000 orders in one transaction: all valid or none written."""
    stats, ids = service.push_orders(db, actor, _to_canonical(body.orders))
    db.commit()
    return PushResult(
        received=stats.received, created=stats.created, updated=stats.updated, unchanged=stats.unchanged, order_ids=ids
    )


@router.post("/imports", response_model=JobOut, status_code=202)
async def start_import(
    file: UploadFile = File(...),
    source: str | None = Form(None, description="taobao, youzan, shopify, woocommerce, shequn; empty = detect"),
    shop_id: str = Form("default", max_length=64),
    kind: str = Form("orders", pattern="^(orders|products)$"),
    actor: Actor = Depends(require(Perm.IMPORT)),
    db: Session = Depends(get_db),
) -> JobOut:
    """Upload an order or product file; the import runs as a job (poll GET /imports/{id})."""
    limit = get_settings().max_upload_mb * 1024 * 1024
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(limit_mb=get_settings().max_upload_mb)
    job = service.start_import(
        db, actor, filename=file.filename or "upload.csv", data=data, source=source or None, shop_id=shop_id, kind=kind
    )
    db.commit()
    return JobOut.model_validate(job)


@router.get("/imports/{job_id}", response_model=JobOut)
def get_import(job_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)) -> JobOut:
    """An import job's status and progress."""
    job = jobs.get_job(db, workspace_id=actor.workspace_id, job_id=job_id)
    if job is None:
        raise NotFound(what="job")
    return JobOut.model_validate(job)


@router.get("/imports/{job_id}/errors", response_model=list[RowErrorOut])
def import_errors(
    job_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)
) -> list[RowErrorOut]:
    """The rows an import rejected, with row number, field and reason."""
    if jobs.get_job(db, workspace_id=actor.workspace_id, job_id=job_id) is None:
        raise NotFound(what="job")
    return [
        RowErrorOut.model_validate(e)
        for e in service.list_row_errors(db, workspace_id=actor.workspace_id, job_id=job_id)
    ]


@router.post("/webhooks", response_model=WebhookCreated, status_code=201)
def create_webhook(
    body: WebhookCreate, actor: Actor = Depends(require(Perm.MANAGE_TOKENS)), db: Session = Depends(get_db)
) -> WebhookCreated:
    """Create an inbound order webhook; give the URL and secret to the shop."""
    token, secret, hook = webhooks.create_webhook(
        db,
        actor,
        source=body.source,
        shop_id=body.shop_id,
        name=body.name,
        secret=body.secret,
        client_id=body.client_id,
    )
    db.commit()
    return WebhookCreated(
        **WebhookOut.model_validate(hook).model_dump(), url_path=f"/api/v1/hooks/orders/{token}", secret=secret
    )


@router.get("/webhooks", response_model=list[WebhookOut])
def list_webhooks(
    actor: Actor = Depends(require(Perm.MANAGE_TOKENS)), db: Session = Depends(get_db)
) -> list[WebhookOut]:
    """The workspace's inbound order webhooks."""
    return [WebhookOut.model_validate(h) for h in webhooks.list_webhooks(db, actor)]


@router.post("/hooks/orders/{token}", response_model=PushResult)
async def receive_order_webhook(token: str, request: Request, db: Session = Depends(get_db)) -> PushResult:
    """Receive orders from a shop; authenticated by the platform's signature, not a bearer token."""
    body = await request.body()
    hook = webhooks.find_webhook(db, token)
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        webhooks.verify_signature(hook, body, headers)
        orders = webhooks.parse_webhook_orders(hook, body)
    except (WebhookRejected, ValidationFailed):
        webhooks.record_delivery(hook, ok=False)
        db.commit()
        raise
    actor = Actor(workspace_id=hook.workspace_id, role="operator", ip=request.client.host if request.client else "")
    stats, ids = service.push_orders(db, actor, orders)
    webhooks.record_delivery(hook, ok=True)
    db.commit()
    return PushResult(
        received=stats.received, created=stats.created, updated=stats.updated, unchanged=stats.unchanged, order_ids=ids
    )
