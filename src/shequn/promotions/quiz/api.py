"""Operator API of promotions.quiz: quizzes, questions, publish, participants, the random draw, fulfilment."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from sqlalchemy.orm import Session

from shequn.core.schemas import Paginated
from shequn.core.web import DbId, Page, get_db, page_params
from shequn.identity import service as identity_service
from shequn.identity.deps import require
from shequn.identity.roles import Perm
from shequn.identity.service import Actor
from shequn.promotions.quiz import service
from shequn.promotions.quiz.schemas import AttemptRow, DrawOut, QuestionIn, QuestionOut, QuizIn, QuizOut, QuizPatch

router = APIRouter(prefix="/api/v1/quizzes", tags=["promotions"])


def quiz_out(db: Session, quiz: service.Quiz) -> QuizOut:
    """A quiz with its questions; the seed only once drawn (before that only its commitment)."""
    out = QuizOut.model_validate(quiz)
    out.seed = quiz.seed if quiz.status == "drawn" else ""
    out.questions = [QuestionOut.model_validate(q) for q in service.list_questions(db, quiz_id=quiz.id)]
    return out


@router.get("", response_model=Paginated[QuizOut])
def list_quizzes(
    campaign_id: int | None = None,
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> Paginated[QuizOut]:
    """The workspace's quizzes, latest start first."""
    rows, total = service.list_quizzes(
        db, workspace_id=actor.workspace_id, campaign_id=campaign_id, limit=page.limit, offset=page.offset
    )
    return Paginated.of([quiz_out(db, q) for q in rows], total, page.limit, page.offset)


@router.post("", response_model=QuizOut, status_code=201)
def create_quiz(body: QuizIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)) -> QuizOut:
    """Create a draft quiz."""
    quiz = service.create_quiz(db, workspace_id=actor.workspace_id, data=body, created_by=actor.operator_id)
    identity_service.record_audit(db, actor, "quiz.create", "quiz", quiz.id, {"name": quiz.name})
    db.commit()
    return quiz_out(db, quiz)


@router.get("/{quiz_id}", response_model=QuizOut)
def get_quiz(quiz_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)) -> QuizOut:
    """A quiz with its questions and answers."""
    return quiz_out(db, service.get_quiz(db, workspace_id=actor.workspace_id, quiz_id=quiz_id))


@router.put("/{quiz_id}", response_model=QuizOut)
def update_quiz(
    quiz_id: DbId, body: QuizPatch, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> QuizOut:
    """Edit a draft quiz."""
    quiz = service.update_quiz(db, workspace_id=actor.workspace_id, quiz_id=quiz_id, data=body)
    db.commit()
    return quiz_out(db, quiz)


@router.post("/{quiz_id}/questions", response_model=QuestionOut, status_code=201)
def add_question(
    quiz_id: DbId, body: QuestionIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> QuestionOut:
    """Append a question to a draft quiz."""
    question = service.add_question(db, workspace_id=actor.workspace_id, quiz_id=quiz_id, data=body)
    db.commit()
    return QuestionOut.model_validate(question)


@router.put("/{quiz_id}/questions/{question_id}", response_model=QuestionOut)
def update_question(
    quiz_id: DbId,
    question_id: DbId,
    body: QuestionIn,
    actor: Actor = Depends(require(Perm.WRITE)),
    db: Session = Depends(get_db),
) -> QuestionOut:
    """Change a question of a draft quiz."""
    question = service.update_question(
        db, workspace_id=actor.workspace_id, quiz_id=quiz_id, question_id=question_id, data=body
    )
    db.commit()
    return QuestionOut.model_validate(question)


@router.delete("/{quiz_id}/questions/{question_id}", status_code=204)
def delete_question(
    quiz_id: DbId, question_id: DbId, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> Response:
    """Remove a question from a draft quiz."""
    service.delete_question(db, workspace_id=actor.workspace_id, quiz_id=quiz_id, question_id=question_id)
    db.commit()
    return Response(status_code=204)


@router.post("/{quiz_id}/publish", response_model=QuizOut)
def publish(quiz_id: DbId, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)) -> QuizOut:
    """Open the quiz to members (a random-K quiz publishes its seed commitment now)."""
    quiz = service.publish_quiz(db, workspace_id=actor.workspace_id, quiz_id=quiz_id)
    identity_service.record_audit(db, actor, "quiz.publish", "quiz", quiz.id, {"seed_hash": quiz.seed_hash})
    db.commit()
    return quiz_out(db, quiz)


@router.post("/{quiz_id}/cancel", response_model=QuizOut)
def cancel(quiz_id: DbId, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)) -> QuizOut:
    """Call the quiz off."""
    quiz = service.cancel_quiz(db, workspace_id=actor.workspace_id, quiz_id=quiz_id)
    identity_service.record_audit(db, actor, "quiz.cancel", "quiz", quiz.id, {})
    db.commit()
    return quiz_out(db, quiz)


@router.post("/{quiz_id}/draw", response_model=DrawOut)
def draw(quiz_id: DbId, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)) -> DrawOut:
    """Draw the random-K winners after the end; the seed is revealed."""
    result = service.draw(db, workspace_id=actor.workspace_id, quiz_id=quiz_id)
    identity_service.record_audit(db, actor, "quiz.draw", "quiz", quiz_id, {"winners": len(result.winners)})
    db.commit()
    return DrawOut.model_validate(result, from_attributes=True)


@router.get("/{quiz_id}/draw", response_model=DrawOut)
def get_draw(quiz_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)) -> DrawOut:
    """The draw's record (seed empty until drawn)."""
    quiz = service.get_quiz(db, workspace_id=actor.workspace_id, quiz_id=quiz_id)
    return DrawOut.model_validate(service.published_draw(db, quiz), from_attributes=True)


@router.get("/{quiz_id}/attempts", response_model=Paginated[AttemptRow])
def attempts(
    quiz_id: DbId,
    winners: bool = False,
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> Paginated[AttemptRow]:
    """Participants (or winners only), phones masked."""
    quiz = service.get_quiz(db, workspace_id=actor.workspace_id, quiz_id=quiz_id)
    rows, total = service.list_attempts(
        db, workspace_id=actor.workspace_id, quiz_id=quiz.id, winners_only=winners, limit=page.limit, offset=page.offset
    )
    return Paginated.of([AttemptRow.model_validate(a) for a in rows], total, page.limit, page.offset)


@router.post("/{quiz_id}/attempts/{attempt_id}/ship", response_model=AttemptRow)
def ship(
    quiz_id: DbId, attempt_id: DbId, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> AttemptRow:
    """Move a physical prize to its next state (to_ship → shipped → delivered)."""
    attempt = service.ship(db, workspace_id=actor.workspace_id, quiz_id=quiz_id, attempt_id=attempt_id)
    db.commit()
    return AttemptRow.model_validate(attempt)
