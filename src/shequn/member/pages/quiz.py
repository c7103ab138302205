"""Member H5 and member API: prize quiz: intro, start, one question at a time against the clock, submit, result."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.core.errors import ShequnError
from shequn.core.web import DbId, get_db
from shequn.member import web as mweb
from shequn.promotions.quiz import service as quiz_service
from shequn.promotions.quiz.errors import AttemptNotFound, QuizNotFound
from shequn.promotions.quiz.schemas import (
    AnswerIn,
    AnswerOut,
    MemberAttemptOut,
    MemberQuestionOut,
    MemberQuizOut,
    ResultOut,
    ReviewItem,
    StartOut,
    SubmitIn,
)

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1/m/quiz", tags=["member"])


def visible_quiz(db: Session, workspace_id: int, quiz_id: int) -> Any:
    """A quiz members may see (published, drawn or cancelled; drafts do not exist for them)."""
    quiz = quiz_service.get_quiz(db, workspace_id=workspace_id, quiz_id=quiz_id)
    if quiz.status == "draft":
        raise QuizNotFound(id=quiz_id)
    return quiz


def quiz_out(db: Session, quiz: Any) -> MemberQuizOut:
    """The public face of a quiz: never the answers, the seed only once drawn."""
    return MemberQuizOut(
        id=quiz.id,
        name=quiz.name,
        description=quiz.description,
        status=quiz_service.phase(quiz),
        starts_at=quiz.starts_at,
        ends_at=quiz.ends_at,
        time_limit_s=quiz.time_limit_s,
        questions_count=len(quiz_service.list_questions(db, quiz_id=quiz.id)),
        pass_mark=quiz.pass_mark,
        prize_rule=quiz.prize_rule,
        winners_cap=quiz.winners_cap,
        prize_kind=quiz.prize_kind,
        prize_name=quiz.prize_name,
        seed_hash=quiz.seed_hash,
        seed=quiz.seed if quiz.status == "drawn" else "",
    )


def attempt_out(db: Session, attempt: Any) -> MemberAttemptOut:
    """The member's attempt; scores and prize only once submitted."""
    done = attempt.status == "submitted"
    return MemberAttemptOut(
        status=attempt.status,
        started_at=attempt.started_at,
        deadline_at=attempt.deadline_at,
        remaining_s=quiz_service.remaining_s(attempt),
        answered=quiz_service.answered_ids(db, attempt_id=attempt.id),
        submitted_at=attempt.submitted_at,
        late=attempt.late,
        total=attempt.total,
        correct_count=attempt.correct_count if done else None,
        passed=attempt.passed if done else None,
        won=attempt.won if done else None,
        win_rank=attempt.win_rank if done else None,
        prize_status=attempt.prize_status if done else None,
    )


def questions_out(db: Session, quiz_id: int) -> list[MemberQuestionOut]:
    """The questions without their answers."""
    return [
        MemberQuestionOut(id=q.id, position=q.position, kind=q.kind, text=q.text, options=list(q.options))
        for q in quiz_service.list_questions(db, quiz_id=quiz_id)
    ]


def result_out(db: Session, quiz: Any, attempt: Any) -> ResultOut:
    """After submit: right or wrong per question; the correct options only once the quiz is over for everyone."""
    review: list[ReviewItem] = []
    if attempt.status == "submitted":
        over = quiz.status != "published" or utcnow() >= quiz.ends_at
        mine = quiz_service.answers_of(db, attempt_id=attempt.id)
        for q in quiz_service.list_questions(db, quiz_id=quiz.id):
            given = mine.get(q.id)
            review.append(
                ReviewItem(
                    id=q.id,
                    text=q.text,
                    options=list(q.options),
                    chosen=list(given.choices) if given else [],
                    correct=list(q.correct) if over else [],
                    right=bool(given and given.correct),
                )
            )
    return ResultOut(attempt=attempt_out(db, attempt), review=review)


# --- member API ---------------------------------------------------------------------------------


@api.get("/{quiz_id}", response_model=MemberQuizOut)
def get_quiz(quiz_id: DbId, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)) -> MemberQuizOut:
    """The quiz's rules, clock and prize."""
    return quiz_out(db, visible_quiz(db, member.workspace_id, quiz_id))


@api.post("/{quiz_id}/start", response_model=StartOut)
def start(
    quiz_id: DbId, request: Request, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> StartOut:
    """Start my one attempt (a second call resumes it with the same clock)."""
    quiz = visible_quiz(db, member.workspace_id, quiz_id)
    started = quiz_service.start_attempt(
        db,
        workspace_id=member.workspace_id,
        quiz_id=quiz.id,
        customer_id=member.customer_id,
        device_id=mweb.device_id(request),
    )
    db.commit()
    return StartOut(
        attempt=attempt_out(db, started.attempt), questions=questions_out(db, quiz.id), resumed=started.resumed
    )


@api.post("/{quiz_id}/answer", response_model=AnswerOut)
def answer(
    quiz_id: DbId, body: AnswerIn, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> AnswerOut:
    """Store one answer (refused after the attempt's deadline); whether it is right comes after submit."""
    attempt = quiz_service.answer(
        db,
        workspace_id=member.workspace_id,
        quiz_id=quiz_id,
        customer_id=member.customer_id,
        question_id=body.question_id,
        choices=body.choices,
    )
    db.commit()
    return AnswerOut(question_id=body.question_id, recorded=True, remaining_s=quiz_service.remaining_s(attempt))


@api.post("/{quiz_id}/submit", response_model=ResultOut)
def submit(
    quiz_id: DbId, body: SubmitIn, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> ResultOut:
    """Submit my attempt (final answers count only before the deadline); repeating returns the same result."""
    quiz = visible_quiz(db, member.workspace_id, quiz_id)
    attempt = quiz_service.submit(
        db, workspace_id=member.workspace_id, quiz_id=quiz.id, customer_id=member.customer_id, answers=body.answers
    )
    db.commit()
    return result_out(db, quiz, attempt)


@api.get("/{quiz_id}/result", response_model=ResultOut)
def result(quiz_id: DbId, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)) -> ResultOut:
    """My attempt and, once submitted, its review."""
    quiz = visible_quiz(db, member.workspace_id, quiz_id)
    attempt = quiz_service.find_attempt(db, quiz_id=quiz.id, customer_id=member.customer_id)
    if attempt is None:
        raise AttemptNotFound(id=quiz_id)
    return result_out(db, quiz, attempt)


# --- H5 page ------------------------------------------------------------------------------------


@router.get("/m/{ws_slug}/quiz/{quiz_id}", response_class=HTMLResponse)
def quiz_page(ws_slug: str, quiz_id: DbId, request: Request, db: Session = Depends(get_db)) -> HTMLResponse:
    """Intro, then (in the page's script) one question at a time with a countdown, then the result."""
    ws = mweb.workspace_by_slug(db, ws_slug)
    member = mweb.member_in(request, db, ws)
    try:
        quiz = visible_quiz(db, ws.id, quiz_id)
    except ShequnError as exc:
        return mweb.render(
            request,
            "m_message.html",
            workspace=ws,
            member=member,
            status=exc.status_code,
            title_key="quiz.m.title",
            message=exc.message(ws.locale or "zh-CN"),
        )
    attempt = quiz_service.find_attempt(db, quiz_id=quiz.id, customer_id=member.customer_id) if member else None
    refusal = ""
    if attempt is None:
        try:
            quiz_service.check_open(quiz, utcnow())
        except ShequnError as exc:
            refusal = exc.message(ws.locale or "zh-CN")
    return mweb.render(
        request,
        "quiz.html",
        workspace=ws,
        member=member,
        quiz=quiz_out(db, quiz),
        attempt=attempt_out(db, attempt) if attempt else None,
        refusal=refusal,
    )
