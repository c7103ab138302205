"""After a quiz: the random-K draw (seed revealed, verifiable), pending prizes retried, physical prizes shipped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.promotions.quiz import fairness, prizes
from shequn.promotions.quiz.errors import AttemptNotFound, DrawNotReady
from shequn.promotions.quiz.manage import changed, get_quiz
from shequn.promotions.quiz.models import Quiz, QuizAttempt
from shequn.promotions.quiz.play import award, finalize_expired


@dataclass(frozen=True)
class Draw:
    """A random-K draw as published: seed, its commitment, candidates and winners (attempt ids)."""

    quiz_id: int
    seed: str
    seed_hash: str
    k: int
    candidates: list[int]
    winners: list[int]


def candidate_ids(session: Session, *, quiz_id: int) -> list[int]:
    """Attempt ids eligible for the draw: correct and submitted in time, in id order."""
    return list(
        session.scalars(
            select(QuizAttempt.id)
            .where(
                QuizAttempt.quiz_id == quiz_id,
                QuizAttempt.status == "submitted",
                QuizAttempt.passed.is_(True),
                QuizAttempt.late.is_(False),
            )
            .order_by(QuizAttempt.id)
        )
    )


def draw(session: Session, *, workspace_id: int, quiz_id: int, now: datetime | None = None) -> Draw:
    """Draw K winners among the correct attempts once the quiz has ended, and reveal the seed."""
    now = now or utcnow()
    quiz = get_quiz(session, workspace_id=workspace_id, quiz_id=quiz_id)
    if quiz.prize_rule != "random_k" or quiz.status != "published" or now < quiz.ends_at:
        raise DrawNotReady(status=quiz.status)
    # Claim the draw first: two operators pressing "draw" at once cannot both draw.
    if not changed(
        session,
        update(Quiz).where(Quiz.id == quiz.id, Quiz.status == "published").values(status="drawn", drawn_at=now),
    ):
        raise DrawNotReady(status="drawn")
    session.refresh(quiz)
    finalize_expired(session, quiz=quiz, now=now)
    candidates = candidate_ids(session, quiz_id=quiz.id)
    winners = fairness.pick(quiz.seed, candidates, quiz.winners_cap or 0)
    by_id = {a.id: a for a in session.scalars(select(QuizAttempt).where(QuizAttempt.id.in_(winners or [0])))}
    for attempt_id in winners:
        award(session, quiz, by_id[attempt_id], cap=None)
    session.flush()
    return published_draw(session, quiz)


def published_draw(session: Session, quiz: Quiz) -> Draw:
    """The draw's public record (winners in draw order); before the draw the seed stays hidden."""
    candidates = candidate_ids(session, quiz_id=quiz.id)
    revealed = quiz.status == "drawn"
    winners = fairness.pick(quiz.seed, candidates, quiz.winners_cap or 0) if revealed else []
    return Draw(quiz.id, quiz.seed if revealed else "", quiz.seed_hash, quiz.winners_cap or 0, candidates, winners)


def retry_pending(session: Session, *, workspace_id: int, quiz_id: int) -> int:
    """Deliver prizes left pending (coupons or points that could not be granted yet); how many went out."""
    quiz = get_quiz(session, workspace_id=workspace_id, quiz_id=quiz_id)
    spec = prizes.PrizeSpec.of(quiz)
    done = 0
    for attempt in session.scalars(
        select(QuizAttempt).where(QuizAttempt.quiz_id == quiz.id, QuizAttempt.prize_status == "pending")
    ):
        status, ref = prizes.deliver(
            session,
            workspace_id=workspace_id,
            spec=spec,
            customer_id=attempt.customer_id,
            source="quiz",
            source_ref=f"{quiz.id}:{attempt.id}",
        )
        if status == "granted":
            attempt.prize_status, attempt.prize_ref = status, ref
            done += 1
    session.flush()
    return done


def ship(session: Session, *, workspace_id: int, quiz_id: int, attempt_id: int) -> QuizAttempt:
    """Move a physical prize one step: to_ship → shipped → delivered."""
    quiz = get_quiz(session, workspace_id=workspace_id, quiz_id=quiz_id)
    attempt = session.get(QuizAttempt, attempt_id)
    if attempt is None or attempt.quiz_id != quiz.id:
        raise AttemptNotFound(id=attempt_id)
    prizes.advance_shipping(session, attempt)
    return attempt
