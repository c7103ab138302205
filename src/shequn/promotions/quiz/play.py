"""Members taking a quiz: one attempt each, a server-side clock, answers kept only before the deadline, scoring.

The clock lives on the attempt row (started_at, deadline_at), never in the browser: an answer that arrives
after deadline_at is refused, and the score counts only answers stored before it. Submitting is a
conditional UPDATE (`status = 'submitted' WHERE status = 'started'`), so a double submit or a replay scores
once and returns the same result. First-N prizes take a slot with `winners_count + 1 WHERE winners_count < N`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.core.clock import utcnow
from shequn.core.errors import ShequnError
from shequn.promotions.campaigns.budget import BudgetExhausted
from shequn.promotions.quiz import links, prizes
from shequn.promotions.quiz.errors import (
    AttemptNotFound,
    AttemptSubmitted,
    BadAnswer,
    QuestionNotFound,
    QuizEnded,
    QuizNotOpen,
    QuizNotStarted,
    QuizTimeUp,
)
from shequn.promotions.quiz.manage import bump, changed, get_quiz, list_questions, needed_to_pass
from shequn.promotions.quiz.models import Quiz, QuizAnswer, QuizAttempt, QuizQuestion

# Submitting (not answering) a few seconds late still counts as on time: the network is slow sometimes,
# and the answers scored are only those stored before the deadline anyway.
SUBMIT_GRACE = timedelta(seconds=5)


@dataclass
class Started:
    """An attempt and whether it already existed (a second start resumes the same clock)."""

    attempt: QuizAttempt
    resumed: bool


def find_attempt(session: Session, *, quiz_id: int, customer_id: int) -> QuizAttempt | None:
    """The customer's attempt at a quiz, if any."""
    return session.scalar(
        select(QuizAttempt).where(QuizAttempt.quiz_id == quiz_id, QuizAttempt.customer_id == customer_id)
    )


def check_open(quiz: Quiz, now: datetime) -> None:
    """The quiz is published and running now."""
    if quiz.status != "published":
        raise QuizEnded() if quiz.status in ("drawn", "cancelled") else QuizNotOpen()
    if now < quiz.starts_at:
        raise QuizNotStarted(starts_at=quiz.starts_at.isoformat())
    if now >= quiz.ends_at:
        raise QuizEnded()


def start_attempt(
    session: Session,
    *,
    workspace_id: int,
    quiz_id: int,
    customer_id: int,
    device_id: str = "",
    now: datetime | None = None,
) -> Started:
    """Start the customer's one attempt (or resume it: the clock is not reset)."""
    now = now or utcnow()
    quiz = get_quiz(session, workspace_id=workspace_id, quiz_id=quiz_id)
    customer = audience_service.get_customer(session, workspace_id=workspace_id, customer_id=customer_id)
    existing = find_attempt(session, quiz_id=quiz.id, customer_id=customer.id)
    if existing is not None:
        return Started(existing, True)
    check_open(quiz, now)
    links.check_member_action(
        session, workspace_id=workspace_id, action="quiz.answer", customer_id=customer.id, device_id=device_id
    )
    attempt = QuizAttempt(
        workspace_id=workspace_id,
        quiz_id=quiz.id,
        customer_id=customer.id,
        name=(customer.name or "")[:120],
        phone_masked=(customer.phone_masked or "")[:20],
        device_id=device_id[:64],
        status="started",
        started_at=now,
        deadline_at=min(now + timedelta(seconds=quiz.time_limit_s), quiz.ends_at),
        late=False,
        correct_count=0,
        total=len(list_questions(session, quiz_id=quiz.id)),
        passed=False,
        won=False,
        prize_status="none",
        prize_ref="",
        prize_cost_fen=0,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(attempt)
            session.flush()
    except IntegrityError:  # the same member started twice at once: both get the one attempt
        again = find_attempt(session, quiz_id=quiz.id, customer_id=customer.id)
        if again is None:
            raise
        return Started(again, True)
    bump(session, quiz.id, "attempts_count")
    return Started(attempt, False)


def _question(session: Session, quiz_id: int, question_id: int) -> QuizQuestion:
    question = session.get(QuizQuestion, question_id)
    if question is None or question.quiz_id != quiz_id:
        raise QuestionNotFound(id=question_id)
    return question


def check_choices(question: QuizQuestion, choices: list[int]) -> list[int]:
    """The choices, deduplicated and sorted, if they fit the question (BadAnswer otherwise)."""
    picked = sorted(set(choices))
    if not picked or any(c < 0 or c >= len(question.options) for c in picked):
        raise BadAnswer(details=[{"field": "choices", "message": "not an option of this question"}])
    if question.kind != "multiple" and len(picked) != 1:
        raise BadAnswer(details=[{"field": "choices", "message": "choose exactly one"}])
    return picked


def _attempt_of(session: Session, workspace_id: int, quiz_id: int, customer_id: int) -> tuple[Quiz, QuizAttempt]:
    quiz = get_quiz(session, workspace_id=workspace_id, quiz_id=quiz_id)
    customer = audience_service.get_customer(session, workspace_id=workspace_id, customer_id=customer_id)
    attempt = find_attempt(session, quiz_id=quiz.id, customer_id=customer.id)
    if attempt is None:
        raise AttemptNotFound(id=quiz_id)
    return quiz, attempt


def _store(session: Session, attempt: QuizAttempt, question: QuizQuestion, picked: list[int], now: datetime) -> None:
    """Insert or replace the stored answer (a changed mind before the deadline is allowed)."""
    existing = session.scalar(
        select(QuizAnswer).where(QuizAnswer.attempt_id == attempt.id, QuizAnswer.question_id == question.id)
    )
    if existing is not None:
        existing.choices, existing.answered_at = picked, now
        session.flush()
        return
    try:
        with session.begin_nested():
            session.add(
                QuizAnswer(
                    workspace_id=attempt.workspace_id,
                    quiz_id=attempt.quiz_id,
                    attempt_id=attempt.id,
                    question_id=question.id,
                    choices=picked,
                    correct=False,
                    answered_at=now,
                )
            )
            session.flush()
    except IntegrityError:  # the same answer sent twice at once: keep the latest choice
        row = session.scalar(
            select(QuizAnswer).where(QuizAnswer.attempt_id == attempt.id, QuizAnswer.question_id == question.id)
        )
        if row is None:
            raise
        row.choices, row.answered_at = picked, now
        session.flush()


def answer(
    session: Session,
    *,
    workspace_id: int,
    quiz_id: int,
    customer_id: int,
    question_id: int,
    choices: list[int],
    now: datetime | None = None,
) -> QuizAttempt:
    """Store one answer before the attempt's deadline (QuizTimeUp after it; AttemptSubmitted once submitted)."""
    now = now or utcnow()
    quiz, attempt = _attempt_of(session, workspace_id, quiz_id, customer_id)
    question = _question(session, quiz.id, question_id)
    picked = check_choices(question, choices)
    # Touching the attempt row under the same conditions serialises this answer with a concurrent submit:
    # either the answer lands first and is scored, or the submit wins and the answer is refused.
    live = changed(
        session,
        update(QuizAttempt)
        .where(QuizAttempt.id == attempt.id, QuizAttempt.status == "started", QuizAttempt.deadline_at >= now)
        .values(updated_at=now),
    )
    if not live:
        session.refresh(attempt)
        raise AttemptSubmitted() if attempt.status == "submitted" else QuizTimeUp()
    _store(session, attempt, question, picked, now)
    return attempt


def submit(
    session: Session,
    *,
    workspace_id: int,
    quiz_id: int,
    customer_id: int,
    answers: dict[int, list[int]] | None = None,
    now: datetime | None = None,
) -> QuizAttempt:
    """Submit the attempt: score it once and decide the prize; a repeat returns the same result."""
    now = now or utcnow()
    quiz, attempt = _attempt_of(session, workspace_id, quiz_id, customer_id)
    if attempt.status == "submitted":
        return attempt
    if answers and now <= attempt.deadline_at:
        checked = [(_question(session, quiz.id, qid), choices) for qid, choices in sorted(answers.items())]
        for question, choices in checked:
            _store(session, attempt, question, check_choices(question, choices), now)
    return finalize(session, quiz, attempt, now=now, late=now > attempt.deadline_at + SUBMIT_GRACE)


def finalize(session: Session, quiz: Quiz, attempt: QuizAttempt, *, now: datetime, late: bool) -> QuizAttempt:
    """Close the attempt once (conditional UPDATE), score the answers stored before its deadline, decide the prize."""
    done = changed(
        session,
        update(QuizAttempt)
        .where(QuizAttempt.id == attempt.id, QuizAttempt.status == "started")
        .values(status="submitted", submitted_at=now, late=late, updated_at=now),
    )
    session.refresh(attempt)
    if not done:  # submitted meanwhile by a concurrent request: its result is the result
        return attempt
    questions = {q.id: q for q in list_questions(session, quiz_id=quiz.id)}
    rows = list(session.scalars(select(QuizAnswer).where(QuizAnswer.attempt_id == attempt.id)))
    right = 0
    for row in rows:
        q = questions.get(row.question_id)
        row.correct = bool(q is not None and row.answered_at <= attempt.deadline_at and row.choices == q.correct)
        right += row.correct
    attempt.correct_count, attempt.total = right, len(questions)
    attempt.passed = bool(questions) and right >= needed_to_pass(quiz, len(questions))
    session.flush()
    if attempt.passed and not late and quiz.status == "published" and quiz.prize_rule != "random_k":
        award(session, quiz, attempt, cap=quiz.winners_cap if quiz.prize_rule == "first_n" else None)
    return attempt


def award(session: Session, quiz: Quiz, attempt: QuizAttempt, *, cap: int | None) -> bool:
    """Take a winner slot (within cap) and give the prize, together or not at all; whether it won."""
    try:
        with session.begin_nested():
            rank = bump(session, quiz.id, "winners_count", cap)
            if rank is None:
                return False
            grant = prizes.grant_prize(
                session,
                workspace_id=quiz.workspace_id,
                spec=prizes.PrizeSpec.of(quiz),
                customer_id=attempt.customer_id,
                source="quiz",
                source_ref=f"{quiz.id}:{attempt.id}",
            )
            attempt.won, attempt.win_rank = True, rank
            attempt.prize_status, attempt.prize_ref, attempt.prize_cost_fen = grant.status, grant.ref, grant.cost_fen
            session.flush()
    except ShequnError as exc:  # no budget, or the coupon's own stock or cap: no win, the slot stays free
        session.refresh(attempt)
        attempt.prize_status = "no_budget" if isinstance(exc, BudgetExhausted) else "failed"
        session.flush()
        return False
    return True


def remaining_s(attempt: QuizAttempt, now: datetime | None = None) -> int:
    """Whole seconds left on the attempt's clock (0 once submitted or past)."""
    if attempt.status != "started":
        return 0
    return max(0, int((attempt.deadline_at - (now or utcnow())).total_seconds()))


def answered_ids(session: Session, *, attempt_id: int) -> list[int]:
    """The questions the attempt has answered."""
    return list(session.scalars(select(QuizAnswer.question_id).where(QuizAnswer.attempt_id == attempt_id)))


def answers_of(session: Session, *, attempt_id: int) -> dict[int, QuizAnswer]:
    """The attempt's stored answers by question."""
    return {a.question_id: a for a in session.scalars(select(QuizAnswer).where(QuizAnswer.attempt_id == attempt_id))}


def finalize_expired(session: Session, *, quiz: Quiz, now: datetime | None = None) -> int:
    """Close attempts whose clock ran out unsubmitted (scored, marked late: no prize); how many."""
    now = now or utcnow()
    stale = list(
        session.scalars(
            select(QuizAttempt).where(
                QuizAttempt.quiz_id == quiz.id, QuizAttempt.status == "started", QuizAttempt.deadline_at < now
            )
        )
    )
    for attempt in stale:
        finalize(session, quiz, attempt, now=now, late=True)
    return len(stale)
