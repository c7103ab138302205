"""Product reviews: one per customer and product, verified purchase, helpful votes, summary, public listing."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shequn.commerce import service as commerce_service
from shequn.commerce.canonical import PAID_STATUSES
from shequn.commerce.errors import ProductNotFound
from shequn.community.ugc import common, media
from shequn.community.ugc.errors import OwnReview, ReviewNotFound
from shequn.community.ugc.models import Review, ReviewVote
from shequn.core.clock import utcnow
from shequn.core.db import on_commit

ORDERS_SCANNED = 500  # a customer's most recent orders are enough to prove a purchase
CACHE_SECONDS = 30.0


class Product(Protocol):
    """What UGC reads of a commerce product (commerce's models stay behind its service)."""

    id: int
    sku: str
    title: str


def find_product(session: Session, *, workspace_id: int, sku_or_id: str) -> Product:
    """A product by SKU (exact), else by numeric id (ProductNotFound otherwise)."""
    key = (sku_or_id or "").strip()
    if key:
        rows, _ = commerce_service.list_products(session, workspace_id=workspace_id, q=key, limit=500)
        for p in rows:
            if p.sku == key:
                return p
    if key.isdigit() and len(key) < 19:
        return commerce_service.get_product(session, workspace_id=workspace_id, product_id=int(key))
    raise ProductNotFound(id=key[:64])


def has_purchased(session: Session, *, workspace_id: int, customer_id: int, product: Product) -> bool:
    """Whether the customer has a paid (not fully refunded) order with this product."""
    orders, _ = commerce_service.list_orders(
        session,
        workspace_id=workspace_id,
        flt=commerce_service.OrderFilter(customer_id=customer_id),
        limit=ORDERS_SCANNED,
    )
    paid = [o.id for o in orders if o.status in PAID_STATUSES]
    lines = commerce_service.list_line_items(session, workspace_id=workspace_id, order_ids=paid)
    return any(
        li.product_id == product.id or (li.sku and li.sku == product.sku) for items in lines.values() for li in items
    )


def purchased_products(session: Session, *, workspace_id: int, customer_id: int, limit: int = 50) -> list[Product]:
    """Products the customer bought (paid orders, newest first): what the H5 offers to review."""
    orders, _ = commerce_service.list_orders(
        session,
        workspace_id=workspace_id,
        flt=commerce_service.OrderFilter(customer_id=customer_id),
        limit=ORDERS_SCANNED,
    )
    paid = [o.id for o in orders if o.status in PAID_STATUSES]
    lines = commerce_service.list_line_items(session, workspace_id=workspace_id, order_ids=paid)
    out: list[Product] = []
    seen: set[int] = set()
    for oid in paid:
        for li in lines.get(oid, []):
            if li.product_id and li.product_id not in seen:
                seen.add(li.product_id)
                try:
                    out.append(
                        commerce_service.get_product(session, workspace_id=workspace_id, product_id=li.product_id)
                    )
                except ProductNotFound:
                    continue
    return out[:limit]


def upsert_review(
    session: Session,
    *,
    workspace_id: int,
    product_id: int,
    customer_id: int,
    rating: int,
    body: str,
    media_refs: Sequence[str] = (),
    community_id: int | None = None,
) -> Review:
    """Write or replace the customer's review of a product (one per customer and product)."""
    product = commerce_service.get_product(session, workspace_id=workspace_id, product_id=product_id)
    refs = media.check_refs(session, workspace_id=workspace_id, refs=list(media_refs))
    body = body.strip()
    if community_id is not None:
        common.gate(
            session,
            workspace_id=workspace_id,
            community_id=community_id,
            customer_id=customer_id,
            text=body,
            has_media=bool(refs),
        )
    status = common.initial_status(session, workspace_id=workspace_id, community_id=community_id, review=True)
    verified = has_purchased(session, workspace_id=workspace_id, customer_id=customer_id, product=product)
    author = common.author_name(session, workspace_id=workspace_id, customer_id=customer_id, community_id=community_id)
    now = utcnow()
    review = _existing(session, workspace_id, product.id, customer_id)
    if review is None:
        review = Review(
            workspace_id=workspace_id,
            product_id=product.id,
            customer_id=customer_id,
            helpful_count=0,
            reply="",
            edits=0,
            created_at=now,
        )
        try:
            with session.begin_nested():  # a concurrent first review of the same product by the same customer
                _fill(review, status, rating, body, refs, verified, author, community_id, now)
                session.add(review)
        except IntegrityError:
            found = _existing(session, workspace_id, product.id, customer_id)
            assert found is not None
            review = found
            _edit(review, status, rating, body, refs, verified, author, community_id, now)
    else:
        _edit(review, status, rating, body, refs, verified, author, community_id, now)
    session.flush()
    common.record(session, workspace_id=workspace_id, community_id=community_id, customer_id=customer_id, kind="review")
    invalidate(session, workspace_id=workspace_id, product_id=product.id)
    return review


def _existing(session: Session, workspace_id: int, product_id: int, customer_id: int) -> Review | None:
    return session.scalar(
        select(Review).where(
            Review.workspace_id == workspace_id, Review.product_id == product_id, Review.customer_id == customer_id
        )
    )


def _fill(
    review: Review,
    status: str,
    rating: int,
    body: str,
    refs: list[str],
    verified: bool,
    author: str,
    community_id: int | None,
    now: Any,
) -> None:
    review.status, review.moderation_reason, review.moderated_by, review.moderated_at = status, "", None, None
    review.rating, review.body, review.media, review.verified_purchase = rating, body, refs, verified
    review.author_name, review.community_id, review.updated_at = author, community_id, now


def _edit(review: Review, status: str, *args: Any) -> None:
    """An edit replaces the text; one an operator turned down goes back to the queue instead of straight up."""
    if review.status in ("rejected", "hidden"):
        status = "pending"
    _fill(review, status, *args)
    review.edits += 1


def get_review(session: Session, *, workspace_id: int, review_id: int) -> Review:
    """A review of this workspace."""
    review = session.get(Review, review_id)
    if review is None or review.workspace_id != workspace_id:
        raise ReviewNotFound()
    return review


@dataclass(frozen=True)
class ReviewFilter:
    """Filters of review lists."""

    product_id: int | None = None
    status: str = ""
    rating: int | None = None
    customer_id: int | None = None


def list_reviews(
    session: Session, *, workspace_id: int, flt: ReviewFilter, sort: str = "recent", limit: int = 20, offset: int = 0
) -> tuple[list[Review], int]:
    """A page of reviews and the total: recent (newest first) or helpful (most votes first)."""
    stmt = select(Review).where(Review.workspace_id == workspace_id)
    if flt.product_id is not None:
        stmt = stmt.where(Review.product_id == flt.product_id)
    if flt.status:
        stmt = stmt.where(Review.status == flt.status)
    if flt.rating is not None:
        stmt = stmt.where(Review.rating == flt.rating)
    if flt.customer_id is not None:
        stmt = stmt.where(Review.customer_id == flt.customer_id)
    total = session.scalar(stmt.with_only_columns(func.count(Review.id))) or 0
    order = [Review.helpful_count.desc()] if sort == "helpful" else []
    rows = session.scalars(
        stmt.order_by(*order, Review.created_at.desc(), Review.id.desc()).limit(limit).offset(offset)
    )
    return list(rows), total


@dataclass
class Summary:
    """Approved reviews of a product: how many, the average rating and the count per star."""

    count: int = 0
    average: float = 0.0
    distribution: dict[int, int] = field(default_factory=lambda: dict.fromkeys(range(1, 6), 0))


def summary(session: Session, *, workspace_id: int, product_id: int) -> Summary:
    """The rating summary of a product's approved reviews."""
    out = Summary()
    for rating, n in session.execute(
        select(Review.rating, func.count())
        .where(Review.workspace_id == workspace_id, Review.product_id == product_id, Review.status == "approved")
        .group_by(Review.rating)
    ):
        out.distribution[int(rating)] = int(n)
    out.count = sum(out.distribution.values())
    if out.count:
        out.average = round(sum(r * n for r, n in out.distribution.items()) / out.count, 2)
    return out


def product_summaries(session: Session, *, workspace_id: int, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    """Per reviewed product: reviews (all statuses), approved, pending, average approved rating (console)."""
    rows = session.execute(
        select(
            Review.product_id,
            func.count(),
            func.sum(case((Review.status == "approved", 1), else_=0)),
            func.sum(case((Review.status == "pending", 1), else_=0)),
            func.avg(Review.rating).filter(Review.status == "approved"),
        )
        .where(Review.workspace_id == workspace_id)
        .group_by(Review.product_id)
        .order_by(func.count().desc(), Review.product_id)
        .limit(limit)
        .offset(offset)
    ).all()
    out = []
    for pid, total, approved, pending, avg in rows:
        try:
            product = commerce_service.get_product(session, workspace_id=workspace_id, product_id=pid)
        except ProductNotFound:
            continue
        out.append(
            {
                "product_id": pid,
                "sku": product.sku,
                "title": product.title,
                "total": int(total),
                "approved": int(approved or 0),
                "pending": int(pending or 0),
                "average": round(float(avg), 2) if avg is not None else None,
            }
        )
    return out


def set_helpful(session: Session, *, workspace_id: int, review_id: int, customer_id: int, on: bool) -> int:
    """Vote a review helpful or take the vote back (idempotent); returns the review's helpful count."""
    review = get_review(session, workspace_id=workspace_id, review_id=review_id)
    if review.status != "approved":
        raise ReviewNotFound()
    if review.customer_id == customer_id:
        raise OwnReview()
    if on:
        ins = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(
            ins(ReviewVote)
            .values(review_id=review.id, customer_id=customer_id, workspace_id=workspace_id, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["review_id", "customer_id"])
        )
    else:
        session.execute(
            delete(ReviewVote).where(ReviewVote.review_id == review.id, ReviewVote.customer_id == customer_id)
        )
    votes = select(func.count()).where(ReviewVote.review_id == Review.id).scalar_subquery()
    session.execute(
        update(Review)
        .where(Review.id == review.id)
        .values(helpful_count=votes)
        .execution_options(synchronize_session=False)
    )
    session.refresh(review)
    invalidate(session, workspace_id=workspace_id, product_id=review.product_id)
    return review.helpful_count


def set_reply(session: Session, *, workspace_id: int, review_id: int, reply: str) -> Review:
    """The brand's public reply under a review."""
    review = get_review(session, workspace_id=workspace_id, review_id=review_id)
    review.reply = reply.strip()
    session.flush()
    invalidate(session, workspace_id=workspace_id, product_id=review.product_id)
    return review


# --- the public listing and its cache -----------------------------------------------------------

_cache: dict[tuple[Any, ...], tuple[float, dict[str, Any]]] = {}
_versions: dict[tuple[int, int], int] = {}
_lock = threading.Lock()


def invalidate(session: Session, *, workspace_id: int, product_id: int) -> None:
    """Drop the product's cached public listing once this transaction commits."""

    def bump() -> None:
        with _lock:
            _versions[(workspace_id, product_id)] = _versions.get((workspace_id, product_id), 0) + 1

    on_commit(session, bump)


def public_reviews(
    session: Session,
    *,
    workspace_id: int,
    workspace_slug: str,
    sku_or_id: str,
    sort: str = "recent",
    rating: int | None = None,
    limit: int = 10,
    offset: int = 0,
) -> dict[str, Any]:
    """What a product page shows: approved reviews only, masked names, summary and distribution (cached)."""
    product = find_product(session, workspace_id=workspace_id, sku_or_id=sku_or_id)
    with _lock:
        version = _versions.get((workspace_id, product.id), 0)
    key = (workspace_id, product.id, version, sort, rating, limit, offset)
    now = time.monotonic()
    hit = _cache.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    rows, total = list_reviews(
        session,
        workspace_id=workspace_id,
        flt=ReviewFilter(product_id=product.id, status="approved", rating=rating),
        sort=sort,
        limit=limit,
        offset=offset,
    )
    s = summary(session, workspace_id=workspace_id, product_id=product.id)
    body = {
        "product": {"id": product.id, "sku": product.sku, "title": product.title},
        "summary": {
            "count": s.count,
            "average": s.average,
            "distribution": {str(k): v for k, v in s.distribution.items()},
        },
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if offset + limit < total else None,
        "items": [
            {
                "id": r.id,
                "author": common.mask_name(r.author_name),
                "rating": r.rating,
                "body": r.body,
                "photos": [media.media_url(workspace_slug, h) for h in r.media],
                "verified_purchase": r.verified_purchase,
                "helpful": r.helpful_count,
                "reply": r.reply,
                "created_at": r.created_at.isoformat(),
                "edited": r.edits > 0,
            }
            for r in rows
        ],
    }
    with _lock:
        if len(_cache) > 5000:  # bounded: a crawler walking offsets must not grow memory without end
            _cache.clear()
        _cache[key] = (now + CACHE_SECONDS, body)
    return body
