"""Challenge errors: stable codes, messages in `locales/` as `error.<code>`."""

from __future__ import annotations

from shequn.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed


class ChallengeNotFound(NotFound):
    """No such challenge in this workspace (or not visible to members yet)."""

    code = "challenge_not_found"


class EntryNotFound(NotFound):
    """No such entry in this challenge (or it was withdrawn)."""

    code = "challenge_entry_not_found"


class ChallengeInvalid(ValidationFailed):
    """The challenge fails validation; details name the field."""

    code = "challenge_invalid"


class ChallengeLocked(Conflict):
    """A published challenge's hashtag, community and rules cannot change."""

    code = "challenge_locked"


class ChallengeBadTransition(Conflict):
    """The status change is not allowed from the current status."""

    code = "challenge_bad_transition"


class EntryClosed(Conflict):
    """The entry window is not open."""

    code = "challenge_entry_closed"


class PostNotEligible(Conflict):
    """The post cannot enter: not the member's own, another community, or not approved yet."""

    code = "challenge_post_not_eligible"


class VotingClosed(Conflict):
    """Voting is not open now (before or after the voting window, or a judged challenge)."""

    code = "challenge_voting_closed"


class SelfVote(PermissionDenied):
    """Members cannot vote for their own entry."""

    code = "challenge_self_vote"


class VoteLimit(Conflict):
    """The member has used all their votes in this challenge."""

    code = "challenge_vote_limit"


class NotJudged(Conflict):
    """Scores are given only in a judged challenge that has not been decided yet."""

    code = "challenge_not_judged"


class DecideNotReady(Conflict):
    """Winners are decided once, after voting (or the entry window, when judged) has closed."""

    code = "challenge_decide_not_ready"
