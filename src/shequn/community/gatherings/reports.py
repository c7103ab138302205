"""Attendance, feedback (giving it and summing it up), reminder status and the registrant export."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shequn.community.gatherings.errors import FeedbackExists, FeedbackNotAllowed, RegistrationNotFound
from shequn.community.gatherings.manage import get_gathering
from shequn.community.gatherings.models import (
    Gathering,
    GatheringFeedback,
    GatheringRegistration,
    GatheringReminder,
)
from shequn.community.gatherings.registration import find_registration
from shequn.community.gatherings.schemas import AttendanceOut, FeedbackSummaryOut, ReminderStatusOut
from shequn.core.clock import utcnow
from shequn.core.signals import send_on_commit

FEEDBACK_DAYS = 30
REMINDER_KINDS = ("24h", "1h")
EXPORT_COLUMNS = (
    "registration_id",
    "name",
    "phone_masked",
    "status",
    "source",
    "queued_at",
    "confirmed_at",
    "promoted",
    "cancelled_at",
    "cancelled_by",
    "late_cancel",
    "checked_in_at",
    "code",
)


def attendance(session: Session, *, workspace_id: int, gathering_id: int) -> AttendanceOut:
    """Who registered, who came, who did not, and who cancelled late (within 24 h of the start)."""
    g = get_gathering(session, workspace_id=workspace_id, gathering_id=gathering_id)
    r = GatheringRegistration
    row = session.execute(
        select(
            func.count(r.id),
            func.sum(case((r.status == "confirmed", 1), else_=0)),
            func.sum(case((r.status == "waitlisted", 1), else_=0)),
            func.sum(case((r.status == "cancelled", 1), else_=0)),
            func.sum(case((r.late_cancel.is_(True), 1), else_=0)),
            func.sum(case((r.checked_in_at.is_not(None), 1), else_=0)),
        ).where(r.workspace_id == workspace_id, r.gathering_id == g.id)
    ).one()
    registered, confirmed, waitlisted, cancelled, late, came = (int(v or 0) for v in row)
    # No-shows exist only once the gathering is over; before that a confirmed person may still come.
    over = g.status == "finished" or g.ends_at < utcnow()
    no_shows = confirmed - came if over else 0
    rate = round(came / confirmed, 4) if confirmed else None
    return AttendanceOut(
        registered=registered,
        confirmed=confirmed,
        waitlisted=waitlisted,
        cancelled=cancelled,
        late_cancellations=late,
        checked_in=came,
        no_shows=no_shows,
        attendance_rate=rate,
    )


def recent_checkins(
    session: Session, *, workspace_id: int, gathering_id: int, limit: int = 15
) -> list[GatheringRegistration]:
    """The latest arrivals, newest first (the desk's list)."""
    return list(
        session.scalars(
            select(GatheringRegistration)
            .where(
                GatheringRegistration.workspace_id == workspace_id,
                GatheringRegistration.gathering_id == gathering_id,
                GatheringRegistration.checked_in_at.is_not(None),
            )
            .order_by(GatheringRegistration.checked_in_at.desc(), GatheringRegistration.id.desc())
            .limit(limit)
        )
    )


def give_feedback(
    session: Session,
    *,
    workspace_id: int,
    gathering_id: int,
    customer_id: int,
    rating: int,
    comment: str = "",
    now: datetime | None = None,
) -> GatheringFeedback:
    """An attendee's one rating (1–5) and comment, from their check-in until 30 days after the end."""
    now = now or utcnow()
    g = get_gathering(session, workspace_id=workspace_id, gathering_id=gathering_id)
    reg = find_registration(session, gathering_id=g.id, customer_id=customer_id)
    if reg is None:
        raise RegistrationNotFound(id=gathering_id)
    if reg.checked_in_at is None or now > g.ends_at + timedelta(days=FEEDBACK_DAYS):
        raise FeedbackNotAllowed()
    if not 1 <= rating <= 5:
        raise FeedbackNotAllowed()
    fb = GatheringFeedback(
        workspace_id=workspace_id,
        gathering_id=g.id,
        registration_id=reg.id,
        customer_id=reg.customer_id,
        rating=rating,
        comment=comment[:1000],
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(fb)
            session.flush()
    except IntegrityError:
        raise FeedbackExists() from None
    send_on_commit(
        session, "gathering.feedback", workspace_id, gathering_id=g.id, customer_id=reg.customer_id, rating=rating
    )
    return fb


def get_feedback_of(session: Session, *, gathering_id: int, customer_id: int) -> GatheringFeedback | None:
    """The member's feedback on a gathering, if given."""
    return session.scalar(
        select(GatheringFeedback).where(
            GatheringFeedback.gathering_id == gathering_id, GatheringFeedback.customer_id == customer_id
        )
    )


def list_feedback(
    session: Session, *, workspace_id: int, gathering_id: int, limit: int = 50, offset: int = 0
) -> list[GatheringFeedback]:
    """A gathering's feedback, newest first."""
    return list(
        session.scalars(
            select(GatheringFeedback)
            .where(GatheringFeedback.workspace_id == workspace_id, GatheringFeedback.gathering_id == gathering_id)
            .order_by(GatheringFeedback.created_at.desc(), GatheringFeedback.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )


def feedback_summary(session: Session, *, workspace_id: int, gathering_id: int) -> FeedbackSummaryOut:
    """Average, 1–5 distribution, response rate and an NPS-like score: % of 5s minus % of 1–3s."""
    g = get_gathering(session, workspace_id=workspace_id, gathering_id=gathering_id)
    counts = dict(
        session.execute(
            select(GatheringFeedback.rating, func.count(GatheringFeedback.id))
            .where(GatheringFeedback.workspace_id == workspace_id, GatheringFeedback.gathering_id == g.id)
            .group_by(GatheringFeedback.rating)
        ).all()
    )
    distribution = {star: int(counts.get(star, 0)) for star in range(1, 6)}
    total = sum(distribution.values())
    attendees = session.scalar(
        select(func.count(GatheringRegistration.id)).where(
            GatheringRegistration.gathering_id == g.id, GatheringRegistration.checked_in_at.is_not(None)
        )
    )
    if not total:
        return FeedbackSummaryOut(count=0, average=None, distribution=distribution, nps=None, response_rate=None)
    average = sum(star * n for star, n in distribution.items()) / total
    promoters = distribution[5]
    detractors = distribution[1] + distribution[2] + distribution[3]
    return FeedbackSummaryOut(
        count=total,
        average=round(average, 2),
        distribution=distribution,
        nps=round(100 * (promoters - detractors) / total),
        response_rate=round(total / attendees, 4) if attendees else None,
    )


def reminder_status(session: Session, *, workspace_id: int, gathering_id: int) -> list[ReminderStatusOut]:
    """Recorded reminders per kind and how many a channel has delivered."""
    m = GatheringReminder
    rows = session.execute(
        select(
            m.kind,
            func.sum(case((m.status == "due", 1), else_=0)),
            func.sum(case((m.status == "sent", 1), else_=0)),
            func.sum(case((m.status == "failed", 1), else_=0)),
        )
        .where(m.workspace_id == workspace_id, m.gathering_id == gathering_id)
        .group_by(m.kind)
    ).all()
    found = {kind: (int(d or 0), int(s or 0), int(f or 0)) for kind, d, s, f in rows}
    return [
        ReminderStatusOut(
            kind=k, due=found.get(k, (0, 0, 0))[0], sent=found.get(k, (0, 0, 0))[1], failed=found.get(k, (0, 0, 0))[2]
        )
        for k in REMINDER_KINDS
    ]


def reminder_kinds_of(session: Session, *, registration_ids: list[int]) -> dict[int, list[str]]:
    """Which reminders each registration has had recorded (for the registrations table)."""
    if not registration_ids:
        return {}
    out: dict[int, list[str]] = {}
    rows = session.execute(
        select(GatheringReminder.registration_id, GatheringReminder.kind).where(
            GatheringReminder.registration_id.in_(registration_ids)
        )
    ).all()
    for rid, kind in rows:
        out.setdefault(rid, []).append(kind)
    return out


def _cell(text: str) -> str:
    """Neutralise spreadsheet formulas in a member-typed cell (=, +, -, @ at the start)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_rows(
    session: Session, *, workspace_id: int, gathering_id: int, tz: str, batch: int = 2000
) -> Iterator[list[str]]:
    """Registrants as CSV rows (header first; phones masked; times in the workspace zone)."""
    from shequn.core.fmt import local_dt

    g: Gathering = get_gathering(session, workspace_id=workspace_id, gathering_id=gathering_id)
    yield list(EXPORT_COLUMNS)
    last_id = 0
    while True:
        page = list(
            session.scalars(
                select(GatheringRegistration)
                .where(
                    GatheringRegistration.workspace_id == workspace_id,
                    GatheringRegistration.gathering_id == g.id,
                    GatheringRegistration.id > last_id,
                )
                .order_by(GatheringRegistration.id)
                .limit(batch)
            )
        )
        if not page:
            return
        for r in page:
            yield [
                str(r.id),
                _cell(r.name),
                r.phone_masked,
                r.status,
                r.source,
                local_dt(r.queued_at, tz) if r.queued_at else "",
                local_dt(r.confirmed_at, tz) if r.confirmed_at else "",
                "yes" if r.promoted_at else "",
                local_dt(r.cancelled_at, tz) if r.cancelled_at else "",
                r.cancelled_by,
                "yes" if r.late_cancel else "",
                local_dt(r.checked_in_at, tz) if r.checked_in_at else "",
                r.code,
            ]
        last_id = page[-1].id
