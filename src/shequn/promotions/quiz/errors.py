"""Quiz errors: stable codes, messages in `locales/` as `error.<code>`."""

from __future__ import annotations

from shequn.core.errors import Conflict, NotFound, ValidationFailed


class QuizNotFound(NotFound):
    """No such quiz in this workspace (or not visible to members yet)."""

    code = "quiz_not_found"


class QuestionNotFound(NotFound):
    """No such question in this quiz."""

    code = "quiz_question_not_found"


class AttemptNotFound(NotFound):
    """The member has not started this quiz (or no such attempt in this workspace)."""

    code = "quiz_attempt_not_found"


class QuizNotStarted(Conflict):
    """The quiz has not started yet."""

    code = "quiz_not_started"


class QuizEnded(Conflict):
    """The quiz has ended (or was cancelled): no new attempts."""

    code = "quiz_ended"


class QuizNotOpen(Conflict):
    """The quiz is not published."""

    code = "quiz_not_open"


class QuizTimeUp(Conflict):
    """The attempt's time limit has passed: this answer is not counted."""

    code = "quiz_time_up"


class AttemptSubmitted(Conflict):
    """The attempt is already submitted: answers can no longer change."""

    code = "quiz_attempt_submitted"


class QuizLocked(Conflict):
    """A published quiz's questions and rules cannot change."""

    code = "quiz_locked"


class QuizBadTransition(Conflict):
    """The status change is not allowed from the current status."""

    code = "quiz_bad_transition"


class DrawNotReady(Conflict):
    """The random draw happens once, after the quiz has ended, for a random-K quiz."""

    code = "quiz_draw_not_ready"


class QuizInvalid(ValidationFailed):
    """The quiz or question fails validation; details name the field."""

    code = "quiz_invalid"


class BadAnswer(ValidationFailed):
    """The answer does not fit the question (unknown option, several for a single choice)."""

    code = "quiz_bad_answer"


class PrizeNotShippable(Conflict):
    """Only a won physical prize moves through shipping, one step at a time."""

    code = "prize_not_shippable"
