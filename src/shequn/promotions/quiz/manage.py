"""Operators' side of quizzes: drafts, questions in order, publish (with the draw commitment), cancel."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.core.sqlutil import changed
from shequn.promotions.campaigns import service as campaigns_service
from shequn.promotions.quiz import fairness
from shequn.promotions.quiz.errors import QuestionNotFound, QuizBadTransition, QuizInvalid, QuizLocked, QuizNotFound
from shequn.promotions.quiz.models import Quiz, QuizQuestion
from shequn.promotions.quiz.schemas import QuestionIn, QuizIn

EDITABLE = ("draft",)
MAX_QUESTIONS = 50
_QUIZ_FIELDS = (
    "name", "description", "starts_at", "ends_at", "time_limit_s", "pass_mark", "prize_rule", "winners_cap",
    "prize_kind", "prize_name", "prize_coupon_template_id", "prize_points", "prize_cost_fen", "campaign_id",
)  # fmt: skip


def get_quiz(session: Session, *, workspace_id: int, quiz_id: int) -> Quiz:
    """A quiz of this workspace (QuizNotFound otherwise)."""
    quiz = session.get(Quiz, quiz_id)
    if quiz is None or quiz.workspace_id != workspace_id:
        raise QuizNotFound(id=quiz_id)
    return quiz


def list_quizzes(
    session: Session, *, workspace_id: int, campaign_id: int | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[Quiz], int]:
    """A page of the workspace's quizzes, latest start first."""
    q = select(Quiz).where(Quiz.workspace_id == workspace_id)
    if campaign_id is not None:
        q = q.where(Quiz.campaign_id == campaign_id)
    total = session.scalar(q.with_only_columns(func.count(Quiz.id))) or 0
    rows = session.scalars(q.order_by(Quiz.starts_at.desc(), Quiz.id.desc()).limit(limit).offset(offset))
    return list(rows), int(total)


def _check_campaign(session: Session, workspace_id: int, campaign_id: int | None) -> None:
    """A campaign id must be one of this workspace's campaigns."""
    if not campaigns_service.campaign_belongs(session, workspace_id=workspace_id, campaign_id=campaign_id):
        raise QuizInvalid(details=[{"field": "campaign_id", "message": "no such campaign"}])


def create_quiz(session: Session, *, workspace_id: int, data: QuizIn, created_by: int | None = None) -> Quiz:
    """A draft quiz (questions are added next)."""
    _check_campaign(session, workspace_id, data.campaign_id)
    now = utcnow()
    quiz = Quiz(
        workspace_id=workspace_id,
        status="draft",
        created_by=created_by,
        created_at=now,
        updated_at=now,
        winners_count=0,
        attempts_count=0,
        seed_hash="",
        seed="",
        **{k: getattr(data, k) for k in _QUIZ_FIELDS},
    )
    session.add(quiz)
    session.flush()
    return quiz


def update_quiz(session: Session, *, workspace_id: int, quiz_id: int, data: QuizIn) -> Quiz:
    """Edit a draft (a published quiz is locked: people are answering under its rules)."""
    quiz = get_quiz(session, workspace_id=workspace_id, quiz_id=quiz_id)
    if quiz.status not in EDITABLE:
        raise QuizLocked()
    _check_campaign(session, workspace_id, data.campaign_id)
    for k in _QUIZ_FIELDS:
        setattr(quiz, k, getattr(data, k))
    quiz.updated_at = utcnow()
    session.flush()
    return quiz


def list_questions(session: Session, *, quiz_id: int) -> list[QuizQuestion]:
    """A quiz's questions in order."""
    return list(
        session.scalars(
            select(QuizQuestion).where(QuizQuestion.quiz_id == quiz_id).order_by(QuizQuestion.position, QuizQuestion.id)
        )
    )


def _editable(session: Session, workspace_id: int, quiz_id: int) -> Quiz:
    quiz = get_quiz(session, workspace_id=workspace_id, quiz_id=quiz_id)
    if quiz.status not in EDITABLE:
        raise QuizLocked()
    return quiz


def add_question(session: Session, *, workspace_id: int, quiz_id: int, data: QuestionIn) -> QuizQuestion:
    """Append a question to a draft quiz."""
    quiz = _editable(session, workspace_id, quiz_id)
    existing = list_questions(session, quiz_id=quiz.id)
    if len(existing) >= MAX_QUESTIONS:
        raise QuizInvalid(details=[{"field": "questions", "message": f"at most {MAX_QUESTIONS}"}])
    question = QuizQuestion(
        workspace_id=workspace_id,
        quiz_id=quiz.id,
        position=(existing[-1].position + 1) if existing else 1,
        kind=data.kind,
        text=data.text.strip(),
        options=list(data.options),
        correct=list(data.correct),
        created_at=utcnow(),
    )
    session.add(question)
    session.flush()
    return question


def _question(session: Session, quiz: Quiz, question_id: int) -> QuizQuestion:
    question = session.get(QuizQuestion, question_id)
    if question is None or question.quiz_id != quiz.id:
        raise QuestionNotFound(id=question_id)
    return question


def update_question(
    session: Session, *, workspace_id: int, quiz_id: int, question_id: int, data: QuestionIn
) -> QuizQuestion:
    """Change a question of a draft quiz."""
    quiz = _editable(session, workspace_id, quiz_id)
    question = _question(session, quiz, question_id)
    question.kind, question.text = data.kind, data.text.strip()
    question.options, question.correct = list(data.options), list(data.correct)
    session.flush()
    return question


def delete_question(session: Session, *, workspace_id: int, quiz_id: int, question_id: int) -> None:
    """Remove a question from a draft quiz."""
    quiz = _editable(session, workspace_id, quiz_id)
    session.delete(_question(session, quiz, question_id))
    session.flush()


def move_question(session: Session, *, workspace_id: int, quiz_id: int, question_id: int, delta: int) -> None:
    """Move a question up (-1) or down (+1); positions are renumbered 1..n."""
    quiz = _editable(session, workspace_id, quiz_id)
    rows = list_questions(session, quiz_id=quiz.id)
    ids = [q.id for q in rows]
    if question_id not in ids:
        raise QuestionNotFound(id=question_id)
    i = ids.index(question_id)
    j = max(0, min(len(rows) - 1, i + delta))
    rows[i], rows[j] = rows[j], rows[i]
    for pos, q in enumerate(rows, start=1):
        q.position = pos
    session.flush()


def publish_quiz(session: Session, *, workspace_id: int, quiz_id: int) -> Quiz:
    """Open a draft to members; a random-K quiz commits to its seed here (sha256 published, seed kept)."""
    quiz = get_quiz(session, workspace_id=workspace_id, quiz_id=quiz_id)
    if quiz.status != "draft":
        raise QuizBadTransition(status=quiz.status)
    questions = list_questions(session, quiz_id=quiz.id)
    if not questions:
        raise QuizInvalid(details=[{"field": "questions", "message": "add at least one question"}])
    if quiz.pass_mark is not None and quiz.pass_mark > len(questions):
        raise QuizInvalid(details=[{"field": "pass_mark", "message": "more than the number of questions"}])
    if quiz.ends_at <= utcnow():
        raise QuizInvalid(details=[{"field": "ends_at", "message": "already past"}])
    seed = fairness.new_seed()
    quiz.seed, quiz.seed_hash = seed, fairness.commitment(seed)
    quiz.status, quiz.published_at, quiz.updated_at = "published", utcnow(), utcnow()
    session.flush()
    return quiz


def cancel_quiz(session: Session, *, workspace_id: int, quiz_id: int) -> Quiz:
    """Call a draft or running quiz off (prizes already granted stay granted)."""
    quiz = get_quiz(session, workspace_id=workspace_id, quiz_id=quiz_id)
    if quiz.status not in ("draft", "published"):
        raise QuizBadTransition(status=quiz.status)
    quiz.status, quiz.updated_at = "cancelled", utcnow()
    session.flush()
    return quiz


def needed_to_pass(quiz: Quiz, total: int) -> int:
    """Correct questions needed to count as correct (all of them unless a pass mark is set)."""
    return min(quiz.pass_mark, total) if quiz.pass_mark is not None else total


def bump(session: Session, quiz_id: int, column: str, cap: int | None = None) -> int | None:
    """Add one to a counter of the quiz if it stays within cap; the new value, or None when capped."""
    col = getattr(Quiz, column)
    stmt = update(Quiz).where(Quiz.id == quiz_id).values({column: col + 1})
    if cap is not None:
        stmt = stmt.where(col < cap)
    if not changed(session, stmt):
        return None
    return int(session.scalar(select(col).where(Quiz.id == quiz_id)) or 0)
