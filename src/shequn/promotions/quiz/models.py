"""Tables of promotions.quiz: quizzes, their questions, one attempt per customer and its answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shequn.core.clock import utcnow
from shequn.core.types import Base, BigId, JSONType, Money, UTCDateTime


class PrizeMixin:
    """What one winner gets: the prize columns of a quiz or a challenge."""

    prize_kind: Mapped[str] = mapped_column(String(10), default="none")  # coupon | points | physical | none
    prize_name: Mapped[str] = mapped_column(String(120), default="")
    prize_coupon_template_id: Mapped[int | None] = mapped_column(BigId)
    prize_points: Mapped[int] = mapped_column(Integer, default=0)
    prize_cost_fen: Mapped[int] = mapped_column(Money, default=0)  # per prize, charged to the campaign budget


class WonMixin:
    """A winning row's place and prize: an attempt or an entry."""

    win_rank: Mapped[int | None] = mapped_column(Integer)
    won: Mapped[bool] = mapped_column(Boolean, default=False)
    # none | pending | granted | to_ship | shipped | delivered | no_budget | failed (see prizes.STATUSES)
    prize_status: Mapped[str] = mapped_column(String(10), default="none")
    prize_ref: Mapped[str] = mapped_column(String(64), default="")
    prize_cost_fen: Mapped[int] = mapped_column(Money, default=0)  # what was charged to the campaign


class Quiz(PrizeMixin, Base):
    """A prize quiz: questions answered against a clock, and a prize rule for those who answer right."""

    __tablename__ = "promo_quizzes"
    __table_args__ = (
        Index("ix_promo_quizzes_ws_starts", "workspace_id", "starts_at"),
        Index("ix_promo_quizzes_campaign", "campaign_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("promo_campaigns.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(12), default="draft")  # draft | published | drawn | cancelled
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    time_limit_s: Mapped[int] = mapped_column(Integer, default=120)
    # Correct questions needed to count as "correct"; None: every question.
    pass_mark: Mapped[int | None] = mapped_column(Integer)
    prize_rule: Mapped[str] = mapped_column(String(8), default="all")  # all | first_n | random_k
    winners_cap: Mapped[int | None] = mapped_column(Integer)  # N or K; None with "all"
    # Moved only by conditional UPDATEs: first-N winners are decided by who passes `winners_count < cap` first.
    winners_count: Mapped[int] = mapped_column(Integer, default=0)
    attempts_count: Mapped[int] = mapped_column(Integer, default=0)
    # Random-K: sha256(seed) is published when the quiz is published; the seed itself at the draw.
    seed_hash: Mapped[str] = mapped_column(String(64), default="")
    seed: Mapped[str] = mapped_column(String(64), default="")
    drawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuizQuestion(Base):
    """One question: single choice, multiple choice or true/false, with its options and correct indexes."""

    __tablename__ = "promo_quiz_questions"
    __table_args__ = (Index("ix_promo_quiz_questions_quiz", "quiz_id", "position"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    quiz_id: Mapped[int] = mapped_column(ForeignKey("promo_quizzes.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(10), default="single")  # single | multiple | truefalse
    text: Mapped[str] = mapped_column(Text)
    options: Mapped[list[Any]] = mapped_column(JSONType, default=list)  # option texts
    correct: Mapped[list[Any]] = mapped_column(JSONType, default=list)  # 0-based indexes into options
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuizAttempt(WonMixin, Base):
    """A customer's one attempt: its clock, score, and (if it won) the prize and its fulfilment."""

    __tablename__ = "promo_quiz_attempts"
    __table_args__ = (
        UniqueConstraint("quiz_id", "customer_id", name="uq_promo_quiz_attempts_quiz_customer"),
        Index("ix_promo_quiz_attempts_quiz_status", "quiz_id", "status", "submitted_at"),
        Index("ix_promo_quiz_attempts_ws_customer", "workspace_id", "customer_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    quiz_id: Mapped[int] = mapped_column(ForeignKey("promo_quizzes.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120), default="")  # snapshot for the console list
    phone_masked: Mapped[str] = mapped_column(String(20), default="")
    device_id: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(10), default="started")  # started | submitted
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    late: Mapped[bool] = mapped_column(Boolean, default=False)  # submitted after the deadline
    correct_count: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    passed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuizAnswer(Base):
    """The answer to one question of an attempt (kept only if given before the attempt's deadline)."""

    __tablename__ = "promo_quiz_answers"
    __table_args__ = (
        UniqueConstraint("attempt_id", "question_id", name="uq_promo_quiz_answers_attempt_question"),
        Index("ix_promo_quiz_answers_quiz_question", "quiz_id", "question_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    quiz_id: Mapped[int] = mapped_column(ForeignKey("promo_quizzes.id", ondelete="CASCADE"))
    attempt_id: Mapped[int] = mapped_column(ForeignKey("promo_quiz_attempts.id", ondelete="CASCADE"))
    question_id: Mapped[int] = mapped_column(ForeignKey("promo_quiz_questions.id", ondelete="CASCADE"))
    choices: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    correct: Mapped[bool] = mapped_column(Boolean, default=False)  # scored at submit
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
