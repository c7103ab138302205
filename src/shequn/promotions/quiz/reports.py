"""What a quiz's page shows: participants, correct rate per question, score distribution, winners, summary."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.promotions.common import ActivitySummary, participations_by_day
from shequn.promotions.quiz.manage import list_questions
from shequn.promotions.quiz.models import Quiz, QuizAnswer, QuizAttempt


@dataclass(frozen=True)
class QuestionStat:
    """How one question went: answers, right answers and the rate."""

    question_id: int
    position: int
    text: str
    answered: int
    right: int

    @property
    def rate(self) -> float:
        """Share of submitted attempts that got it right (0..1)."""
        return self.right / self.answered if self.answered else 0.0


def list_attempts(
    session: Session, *, workspace_id: int, quiz_id: int, winners_only: bool = False, limit: int = 50, offset: int = 0
) -> tuple[list[QuizAttempt], int]:
    """A page of participants: winners by rank, everyone else by submit time."""
    q = select(QuizAttempt).where(QuizAttempt.workspace_id == workspace_id, QuizAttempt.quiz_id == quiz_id)
    if winners_only:
        q = q.where(QuizAttempt.won.is_(True))
    total = session.scalar(q.with_only_columns(func.count(QuizAttempt.id))) or 0
    order = (QuizAttempt.win_rank, QuizAttempt.id) if winners_only else (QuizAttempt.id,)
    return list(session.scalars(q.order_by(*order).limit(limit).offset(offset))), int(total)


def question_stats(session: Session, *, quiz_id: int) -> list[QuestionStat]:
    """Correct rate per question over submitted attempts (answers scored at submit)."""
    counts = {
        qid: (int(n), int(r or 0))
        for qid, n, r in session.execute(
            select(QuizAnswer.question_id, func.count(QuizAnswer.id), func.sum(cast(QuizAnswer.correct, Integer)))
            .join(QuizAttempt, QuizAttempt.id == QuizAnswer.attempt_id)
            .where(QuizAnswer.quiz_id == quiz_id, QuizAttempt.status == "submitted")
            .group_by(QuizAnswer.question_id)
        )
    }
    submitted = session.scalar(
        select(func.count(QuizAttempt.id)).where(QuizAttempt.quiz_id == quiz_id, QuizAttempt.status == "submitted")
    )
    out = []
    for q in list_questions(session, quiz_id=quiz_id):
        right = counts.get(q.id, (0, 0))[1]
        # Unanswered questions count as wrong: the rate is over everyone who submitted.
        out.append(QuestionStat(q.id, q.position, q.text, int(submitted or 0), right))
    return out


def score_distribution(session: Session, *, quiz_id: int) -> list[tuple[int, int]]:
    """(correct answers, attempts) for 0..number of questions, over submitted attempts."""
    total = len(list_questions(session, quiz_id=quiz_id))
    found = dict(
        session.execute(
            select(QuizAttempt.correct_count, func.count(QuizAttempt.id))
            .where(QuizAttempt.quiz_id == quiz_id, QuizAttempt.status == "submitted")
            .group_by(QuizAttempt.correct_count)
        ).all()
    )
    return [(n, int(found.get(n, 0))) for n in range(total + 1)]


def totals(session: Session, *, quiz_id: int) -> dict[str, int]:
    """Attempts, submitted, correct, winners and prize cost of a quiz."""
    row = session.execute(
        select(
            func.count(QuizAttempt.id),
            func.count(QuizAttempt.submitted_at),
            func.sum(cast(QuizAttempt.passed, Integer)),
            func.sum(cast(QuizAttempt.won, Integer)),
            func.sum(QuizAttempt.prize_cost_fen),
        ).where(QuizAttempt.quiz_id == quiz_id)
    ).one()
    return {
        "attempts": int(row[0] or 0),
        "submitted": int(row[1] or 0),
        "passed": int(row[2] or 0),
        "winners": int(row[3] or 0),
        "cost_fen": int(row[4] or 0),
    }


def phase(quiz: Quiz) -> str:
    """draft | upcoming | running | ended | drawn | cancelled (status and the clock together)."""
    if quiz.status != "published":
        return quiz.status
    now = utcnow()
    if now < quiz.starts_at:
        return "upcoming"
    return "running" if now < quiz.ends_at else "ended"


def summarize(session: Session, *, workspace_id: int, campaign_id: int) -> list[ActivitySummary]:
    """The campaign's quizzes for the campaign page."""
    quizzes = session.scalars(
        select(Quiz).where(Quiz.workspace_id == workspace_id, Quiz.campaign_id == campaign_id).order_by(Quiz.id)
    )
    out = []
    for quiz in quizzes:
        t = totals(session, quiz_id=quiz.id)
        out.append(
            ActivitySummary(
                kind="quiz",
                id=quiz.id,
                name=quiz.name,
                status=phase(quiz),
                starts_at=quiz.starts_at,
                ends_at=quiz.ends_at,
                participants=t["attempts"],
                actions=t["submitted"],
                wins=t["winners"],
                cost_fen=t["cost_fen"],
                console_url=f"/quizzes/{quiz.id}",
                extra={
                    "correct": t["passed"],
                    **participations_by_day(
                        session,
                        workspace_id,
                        QuizAttempt.submitted_at,
                        [QuizAttempt.quiz_id == quiz.id, QuizAttempt.submitted_at.is_not(None)],
                    ),
                },
            )
        )
    return out
