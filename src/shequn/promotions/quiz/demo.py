"""The quiz layer of the demo brand: a tea-knowledge quiz in the demo campaign, with some people who took it."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.core.clock import utcnow
from shequn.promotions.quiz import manage, play
from shequn.promotions.quiz.models import Quiz
from shequn.promotions.quiz.schemas import QuestionIn, QuizIn

DEMO_NAME = "春茶知识有奖问答"
QUESTIONS = (
    QuestionIn(kind="single", text="明前龙井指的是哪个节气前采摘的茶？", options=["谷雨", "清明", "立夏"], correct=[1]),
    QuestionIn(
        kind="multiple",
        text="以下哪些属于六大茶类？（多选）",
        options=["白茶", "花草茶", "黑茶", "乌龙茶"],
        correct=[0, 2, 3],
    ),
    QuestionIn(kind="truefalse", text="绿茶适合用 100℃ 沸水长时间焖泡。", options=[], correct=[1]),
)
DEMO_PEOPLE = 40


def demo_step(session: Session, *, workspace_id: int, campaign_id: int | None) -> dict[str, int]:
    """Create the demo quiz once, published and running, with answers from some of the demo customers."""
    existing = session.scalar(select(Quiz.id).where(Quiz.workspace_id == workspace_id, Quiz.name == DEMO_NAME))
    if existing is not None:
        return {"quizzes": 0, "attempts": 0}
    now = utcnow()
    quiz = manage.create_quiz(
        session,
        workspace_id=workspace_id,
        data=QuizIn(
            name=DEMO_NAME,
            description="答对全部 3 题即可参与，前 20 名答对的茶友各得 200 积分。",
            starts_at=now - timedelta(days=2),
            ends_at=now + timedelta(days=5),
            time_limit_s=90,
            prize_rule="first_n",
            winners_cap=20,
            prize_kind="points",
            prize_name="200 积分",
            prize_points=200,
            campaign_id=campaign_id,
        ),
    )
    for spec in QUESTIONS:
        manage.add_question(session, workspace_id=workspace_id, quiz_id=quiz.id, data=spec)
    manage.publish_quiz(session, workspace_id=workspace_id, quiz_id=quiz.id)
    people, _ = audience_service.list_customers(
        session, workspace_id=workspace_id, flt=audience_service.CustomerFilter(), limit=DEMO_PEOPLE
    )
    rng = random.Random(f"demo-quiz-{workspace_id}")
    questions = manage.list_questions(session, quiz_id=quiz.id)
    for i, person in enumerate(people):
        at = now - timedelta(days=1, minutes=30 * i)
        play.start_attempt(session, workspace_id=workspace_id, quiz_id=quiz.id, customer_id=person.id, now=at)
        for q in questions:
            # Most people know most answers; about one in four slips on each question.
            pick = list(q.correct) if rng.random() < 0.75 else [(q.correct[0] + 1) % len(q.options)]
            play.answer(
                session,
                workspace_id=workspace_id,
                quiz_id=quiz.id,
                customer_id=person.id,
                question_id=q.id,
                choices=pick,
                now=at + timedelta(seconds=10),
            )
        play.submit(
            session, workspace_id=workspace_id, quiz_id=quiz.id, customer_id=person.id, now=at + timedelta(seconds=40)
        )
    return {"quizzes": 1, "attempts": len(people)}
