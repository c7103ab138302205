"""Pydantic in/out of quizzes: operator forms and API, and what members see (never the answers before submit)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PrizeKind = Literal["coupon", "points", "physical", "none"]
PrizeRule = Literal["all", "first_n", "random_k"]
QuestionKind = Literal["single", "multiple", "truefalse"]
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]
TRUE_FALSE = ["对", "错"]


class QuizIn(BaseModel):
    """A new quiz (a draft until published)."""

    name: str = Field(min_length=1, max_length=120)
    description: str = Field("", max_length=4000)
    starts_at: datetime
    ends_at: datetime
    time_limit_s: int = Field(120, ge=10, le=3600)
    pass_mark: int | None = Field(None, ge=1, le=200)
    prize_rule: PrizeRule = "all"
    winners_cap: int | None = Field(None, ge=1, le=1_000_000)
    prize_kind: PrizeKind = "none"
    prize_name: str = Field("", max_length=120)
    prize_coupon_template_id: RowId | None = None
    prize_points: int = Field(0, ge=0, le=10_000_000)
    prize_cost_fen: int = Field(0, ge=0, le=10**12)
    campaign_id: RowId | None = None

    @model_validator(mode="after")
    def _rules(self) -> QuizIn:
        check_rules(self)
        return self


class QuizPatch(QuizIn):
    """A full edit of a draft quiz (the console form sends every field)."""


def check_rules(q: QuizIn) -> None:
    """Cross-field rules, each error naming its field."""
    if q.ends_at.tzinfo is None or q.starts_at.tzinfo is None:
        raise ValueError("starts_at/ends_at need a time zone")
    if q.ends_at <= q.starts_at:
        raise ValueError("ends_at must be after starts_at")
    if q.prize_rule != "all" and not q.winners_cap:
        raise ValueError("winners_cap is required for first_n and random_k")
    check_prize(q.prize_kind, q.prize_coupon_template_id, q.prize_points)


def check_prize(kind: str, coupon_template_id: int | None, points: int) -> None:
    """A coupon prize names its template, a points prize a positive amount (quizzes and challenges alike)."""
    if kind == "coupon" and not coupon_template_id:
        raise ValueError("prize_coupon_template_id is required for a coupon prize")
    if kind == "points" and points <= 0:
        raise ValueError("prize_points must be positive for a points prize")


class QuestionIn(BaseModel):
    """One question with its options and the 0-based indexes of the correct ones."""

    kind: QuestionKind = "single"
    text: str = Field(min_length=1, max_length=1000)
    options: list[str] = Field(default_factory=list, max_length=8)
    correct: list[int] = Field(min_length=1, max_length=8)

    @model_validator(mode="after")
    def _shape(self) -> QuestionIn:
        if self.kind == "truefalse" and not self.options:
            self.options = list(TRUE_FALSE)
        self.options = [o.strip()[:200] for o in self.options]
        if len(self.options) < 2 or any(not o for o in self.options):
            raise ValueError("options: at least two, none empty")
        if self.kind == "truefalse" and len(self.options) != 2:
            raise ValueError("options: a true/false question has two")
        self.correct = sorted(set(self.correct))
        if any(i < 0 or i >= len(self.options) for i in self.correct):
            raise ValueError("correct: an index is not an option")
        if self.kind != "multiple" and len(self.correct) != 1:
            raise ValueError("correct: exactly one for a single choice or true/false")
        return self


class QuestionOut(BaseModel):
    """A question as operators see it (with the answer)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    position: int
    kind: str
    text: str
    options: list[str]
    correct: list[int]


class QuizOut(BaseModel):
    """A quiz as operators see it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    status: str
    starts_at: datetime
    ends_at: datetime
    time_limit_s: int
    pass_mark: int | None
    prize_rule: str
    winners_cap: int | None
    prize_kind: str
    prize_name: str
    prize_coupon_template_id: int | None
    prize_points: int
    prize_cost_fen: int
    campaign_id: int | None
    winners_count: int
    attempts_count: int
    seed_hash: str
    seed: str
    drawn_at: datetime | None
    questions: list[QuestionOut] = []


class AttemptRow(BaseModel):
    """A participant row for operators (phone masked)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    name: str
    phone_masked: str
    status: str
    started_at: datetime
    submitted_at: datetime | None
    late: bool
    correct_count: int
    total: int
    passed: bool
    won: bool
    win_rank: int | None
    prize_status: str


class DrawOut(BaseModel):
    """A random-K draw: everything needed to check it."""

    quiz_id: int
    seed: str
    seed_hash: str
    k: int
    candidates: list[int]  # attempt ids of the correct submissions
    winners: list[int]  # attempt ids in draw order


# --- member side ---------------------------------------------------------------------------------


class MemberQuestionOut(BaseModel):
    """A question as members see it: options, never the correct ones."""

    id: int
    position: int
    kind: str
    text: str
    options: list[str]


class MemberQuizOut(BaseModel):
    """A quiz's public face: rules, clock, prize, and the draw's commitment (and seed once drawn)."""

    id: int
    name: str
    description: str
    status: str
    starts_at: datetime
    ends_at: datetime
    time_limit_s: int
    questions_count: int
    pass_mark: int | None
    prize_rule: str
    winners_cap: int | None
    prize_kind: str
    prize_name: str
    seed_hash: str
    seed: str


class MemberAttemptOut(BaseModel):
    """The member's attempt: clock, progress and (after submit) result and prize."""

    status: str
    started_at: datetime
    deadline_at: datetime
    remaining_s: int
    answered: list[int]
    submitted_at: datetime | None = None
    late: bool = False
    correct_count: int | None = None
    total: int
    passed: bool | None = None
    won: bool | None = None
    win_rank: int | None = None
    prize_status: str | None = None


class StartOut(BaseModel):
    """A started (or resumed) attempt with the questions to answer."""

    attempt: MemberAttemptOut
    questions: list[MemberQuestionOut]
    resumed: bool


class AnswerIn(BaseModel):
    """One answer: the chosen option indexes."""

    question_id: RowId
    choices: list[int] = Field(max_length=8)


class AnswerOut(BaseModel):
    """An answer recorded (not whether it is right: that comes after submit)."""

    question_id: int
    recorded: bool
    remaining_s: int


class SubmitIn(BaseModel):
    """Submit the attempt, optionally with final answers (counted only before the deadline)."""

    answers: dict[int, list[int]] = Field(default_factory=dict, max_length=200)


class ReviewItem(BaseModel):
    """After submit: a question with the member's choices and the correct ones."""

    id: int
    text: str
    options: list[str]
    chosen: list[int]
    correct: list[int]
    right: bool


class ResultOut(BaseModel):
    """The submitted attempt with its review."""

    attempt: MemberAttemptOut
    review: list[ReviewItem]
