"""Quizzes under concurrency (real threads, own sessions, SQLite and PostgreSQL): exactly N first-N winners,
a raced double submit scores once, a raced double start makes one attempt."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.promotions.guard.errors import RateLimited, TooFast
from shequn.promotions.quiz import service
from shequn.promotions.quiz.models import QuizAttempt
from tests.conftest import Tenant
from tests.integration.test_gatherings import people
from tests.integration.test_gatherings_concurrency import _race as race
from tests.integration.test_quiz import answers_for, make_quiz

THREADS = 12


def test_first_n_under_races_gives_exactly_n_winners(db: Session, tenant: Tenant) -> None:
    ws, n = tenant.workspace_id, 5
    quiz = make_quiz(db, tenant, prize_rule="first_n", winners_cap=n, prize_kind="points", prize_points=5)
    crowd = people(db, tenant, THREADS)
    answers = answers_for(db, quiz.id)
    for c in crowd:
        service.start_attempt(db, workspace_id=ws, quiz_id=quiz.id, customer_id=c)
    db.commit()

    def submit(customer_id: int) -> Callable[[Session], Any]:
        return lambda s: (
            service.submit(s, workspace_id=ws, quiz_id=quiz.id, customer_id=customer_id, answers=answers).won
        )

    results = race([submit(c) for c in crowd])
    assert all(isinstance(r, bool) for r in results), results
    assert sum(results) == n
    db.expire_all()
    ranks = sorted(
        r for r in db.scalars(select(QuizAttempt.win_rank).where(QuizAttempt.quiz_id == quiz.id)) if r is not None
    )
    assert ranks == list(range(1, n + 1))
    assert db.get(service.Quiz, quiz.id).winners_count == n


def test_raced_double_submit_scores_once_and_double_start_makes_one_attempt(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    quiz = make_quiz(db, tenant, prize_rule="all", prize_kind="points", prize_points=7)
    (c,) = people(db, tenant, 1)
    starts = race([lambda s: service.start_attempt(s, workspace_id=ws, quiz_id=quiz.id, customer_id=c).resumed] * 6)
    # The guard may refuse part of a same-member burst as bot-like; whoever passes gets the one attempt.
    assert all(isinstance(r, bool | TooFast | RateLimited) for r in starts), starts
    assert [r for r in starts if isinstance(r, bool)].count(False) == 1
    answers = answers_for(db, quiz.id)
    subs = race([lambda s: service.submit(s, workspace_id=ws, quiz_id=quiz.id, customer_id=c, answers=answers).won] * 6)
    assert subs == [True] * 6
    db.expire_all()
    assert db.scalar(select(func.count(QuizAttempt.id)).where(QuizAttempt.quiz_id == quiz.id)) == 1
    assert db.get(service.Quiz, quiz.id).winners_count == 1
    from shequn.loyalty import service as loyalty_service

    assert loyalty_service.get_balance(db, workspace_id=ws, customer_id=c) == 7
