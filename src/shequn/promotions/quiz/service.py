"""Prize quizzes: the one module other packages, pages and jobs call."""

from __future__ import annotations

from shequn.promotions.quiz import fairness
from shequn.promotions.quiz.draw import Draw, candidate_ids, draw, published_draw, retry_pending, ship
from shequn.promotions.quiz.links import campaign_choices, coupon_choices
from shequn.promotions.quiz.manage import (
    add_question,
    cancel_quiz,
    create_quiz,
    delete_question,
    get_quiz,
    list_questions,
    list_quizzes,
    move_question,
    publish_quiz,
    update_question,
    update_quiz,
)
from shequn.promotions.quiz.models import Quiz, QuizAttempt, QuizQuestion
from shequn.promotions.quiz.play import (
    answer,
    answered_ids,
    answers_of,
    check_open,
    finalize_expired,
    find_attempt,
    remaining_s,
    start_attempt,
    submit,
)
from shequn.promotions.quiz.reports import (
    QuestionStat,
    list_attempts,
    phase,
    question_stats,
    score_distribution,
    summarize,
    totals,
)

__all__ = [
    "Draw",
    "QuestionStat",
    "Quiz",
    "QuizAttempt",
    "QuizQuestion",
    "add_question",
    "answer",
    "answered_ids",
    "answers_of",
    "campaign_choices",
    "cancel_quiz",
    "candidate_ids",
    "check_open",
    "coupon_choices",
    "create_quiz",
    "delete_question",
    "draw",
    "fairness",
    "finalize_expired",
    "find_attempt",
    "get_quiz",
    "list_attempts",
    "list_questions",
    "list_quizzes",
    "move_question",
    "phase",
    "publish_quiz",
    "published_draw",
    "question_stats",
    "remaining_s",
    "retry_pending",
    "score_distribution",
    "ship",
    "start_attempt",
    "submit",
    "summarize",
    "totals",
    "update_question",
    "update_quiz",
]
