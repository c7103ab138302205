"""Community errors: stable codes, messages in community/locales (error.<code>)."""

from __future__ import annotations

from shequn.core.errors import Conflict, NotFound, ShequnError, ValidationFailed


class CommunityNotFound(NotFound):
    """No such community in this workspace."""

    code = "community_not_found"


class MemberNotFound(NotFound):
    """No such member in this community."""

    code = "community_member_not_found"


class EnforcementNotFound(NotFound):
    """No such enforcement in this workspace."""

    code = "enforcement_not_found"


class CommunityFull(Conflict):
    """The community has no free seat."""

    code = "community_full"


class CommunityArchived(Conflict):
    """The community is archived: nobody joins or posts."""

    code = "community_archived"


class CommunityNameTaken(Conflict):
    """Another community of the workspace has this name."""

    code = "community_name_taken"


class MemberRemoved(ShequnError):
    """A removed member cannot re-join (an operator can restore them)."""

    code = "member_removed"
    status_code = 403


class InviteRequired(ShequnError):
    """Joining this community needs an invitation."""

    code = "invite_required"
    status_code = 403


class NotAMember(ShequnError):
    """Only active members may do this (pending members wait for approval)."""

    code = "not_a_member"
    status_code = 403


class MemberMuted(ShequnError):
    """The member is muted until muted_until."""

    code = "member_muted"
    status_code = 403


class PolicyViolation(ValidationFailed):
    """The content was refused by a community policy; details name the policy, reason and action."""

    code = "policy_violation"
    status_code = 422


class BadTransition(Conflict):
    """The member's current status does not allow this action."""

    code = "community_bad_transition"


class AppealNotAllowed(Conflict):
    """The enforcement cannot be appealed (already appealed, undone, or not the member's own)."""

    code = "appeal_not_allowed"
