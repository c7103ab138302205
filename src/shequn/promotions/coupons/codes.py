"""Unique coupon codes: generated in bulk without look-alike characters, unique per workspace, exported masked."""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterator

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.core.db import new_session
from shequn.promotions.coupons.errors import CouponInvalid
from shequn.promotions.coupons.models import CouponCode, CouponGrant
from shequn.promotions.coupons.templates import get_template

# No 0/O, 1/I/L: a code read aloud or copied by hand from a poster still works.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
BATCH = 5_000
MAX_ROUNDS = 20


def new_code(length: int) -> str:
    """One random code from the safe alphabet."""
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def mask_code(code: str) -> str:
    """A code as exports show it once claimed: first two and last two characters."""
    return code[:2] + "*" * max(0, len(code) - 4) + code[-2:] if len(code) > 4 else "*" * len(code)


def generate_codes(session: Session, *, workspace_id: int, template_id: int, count: int, length: int = 10) -> int:
    """Add count new unique codes to a unique-code template; a clash with an existing code is drawn again."""
    tpl = get_template(session, workspace_id=workspace_id, template_id=template_id)
    if tpl.code_mode != "unique":
        raise CouponInvalid(field="code_mode")
    if not 8 <= length <= 12:
        raise CouponInvalid(field="length")
    pg = session.get_bind().dialect.name == "postgresql"
    made = 0
    now = utcnow()
    for _ in range(MAX_ROUNDS):
        if made >= count:
            break
        want = min(BATCH, count - made)
        rows = [
            {"workspace_id": workspace_id, "template_id": tpl.id, "code": c, "created_at": now}
            for c in {new_code(length) for _ in range(want)}
        ]
        ins = postgresql.insert(CouponCode) if pg else sqlite.insert(CouponCode)
        stmt = ins.values(rows).on_conflict_do_nothing(index_elements=["workspace_id", "code"]).returning(CouponCode.id)
        made += len(session.execute(stmt).all())
    session.flush()
    return made


def code_counts(session: Session, *, workspace_id: int, template_id: int) -> tuple[int, int]:
    """(codes generated, codes claimed) of a template."""
    row = session.execute(
        select(func.count(CouponCode.id), func.count(CouponCode.grant_id)).where(
            CouponCode.workspace_id == workspace_id, CouponCode.template_id == template_id
        )
    ).one()
    return int(row[0]), int(row[1])


def export_code_rows(session: Session, *, workspace_id: int, template_id: int) -> Iterator[list[str]]:
    """CSV rows of a template's codes: unclaimed codes in full (to hand out), claimed ones masked with their state."""
    tpl = get_template(session, workspace_id=workspace_id, template_id=template_id)
    yield ["code", "status", "grant_state", "claimed_at"]
    after = 0
    while True:
        page = session.execute(
            select(CouponCode.id, CouponCode.code, CouponCode.claimed_at, CouponGrant.state)
            .outerjoin(CouponGrant, CouponGrant.id == CouponCode.grant_id)
            .where(CouponCode.workspace_id == workspace_id, CouponCode.template_id == tpl.id, CouponCode.id > after)
            .order_by(CouponCode.id)
            .limit(BATCH)
        ).all()
        if not page:
            return
        for _id, code, claimed_at, state in page:
            if claimed_at is None:
                yield [code, "unclaimed", "", ""]
            else:
                yield [mask_code(code), "claimed", state or "", claimed_at.isoformat()]
        after = page[-1][0]


def codes_csv(workspace_id: int, template_id: int) -> Iterator[str]:
    """The export as CSV text chunks (UTF-8 BOM so Excel reads it), in its own session for a streamed response."""
    first = True
    with new_session() as session:
        for row in export_code_rows(session, workspace_id=workspace_id, template_id=template_id):
            buf = io.StringIO()
            csv.writer(buf).writerow(row)
            yield ("\ufeff" if first else "") + buf.getvalue()
            first = False
