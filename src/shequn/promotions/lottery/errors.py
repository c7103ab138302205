"""Lottery errors: stable codes, messages in `locales/` as `error.<code>`."""

from __future__ import annotations

from shequn.core.errors import Conflict, NotFound, ValidationFailed


class LotteryNotFound(NotFound):
    """No such lottery in this workspace (or not visible to members yet)."""

    code = "lottery_not_found"


class LotteryInvalid(ValidationFailed):
    """The lottery or its prize table is not valid; details name each field."""

    code = "lottery_invalid"


class LotteryLocked(Conflict):
    """The prize table and rules are fixed once the lottery is published (the seed commits to them)."""

    code = "lottery_locked"


class LotteryBadTransition(Conflict):
    """The lottery cannot move to that status from where it is."""

    code = "lottery_bad_transition"


class LotteryNotStarted(Conflict):
    """The lottery has not started yet."""

    code = "lottery_not_started"


class LotteryEnded(Conflict):
    """The lottery has ended (or was cancelled)."""

    code = "lottery_ended"


class RevealTooEarly(Conflict):
    """The seed is revealed only after the lottery ends, so nobody can predict draws still to come."""

    code = "lottery_reveal_too_early"


class NoDrawsLeft(Conflict):
    """Today's free draws are used up (buy one with points if the lottery allows it)."""

    code = "lottery_no_draws_left"


class NotBuyable(Conflict):
    """This lottery sells no extra draws, or today's bought draws are used up."""

    code = "lottery_not_buyable"


class BadDrawNo(Conflict):
    """The draw number is not the member's next one (a forged or stale request)."""

    code = "lottery_bad_draw_no"


class DrawConflict(Conflict):
    """This draw number was already drawn with other inputs (a replay that changed the request)."""

    code = "lottery_draw_conflict"


class DrawNotFound(NotFound):
    """No such prize/draw for this member or workspace."""

    code = "lottery_draw_not_found"


class BadFulfilment(Conflict):
    """The prize is not physical, or the fulfilment cannot move that way."""

    code = "lottery_bad_fulfilment"
