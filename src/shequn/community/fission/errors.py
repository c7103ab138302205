"""Fission errors: invites that cannot be used, and objects that do not exist in the workspace."""

from shequn.core.errors import Conflict, NotFound, ShequnError, ValidationFailed


class InviteNotFound(NotFound):
    """No such invite (or it belongs to another workspace)."""

    code = "invite_not_found"


class InviteExpired(ShequnError):
    """The invite's expiry has passed."""

    code = "invite_expired"
    status_code = 410


class InviteUsedUp(Conflict):
    """The invite reached its maximum number of uses."""

    code = "invite_used_up"


class InviteDisabled(ShequnError):
    """An operator disabled the invite."""

    code = "invite_disabled"
    status_code = 410


class InviteSelf(ValidationFailed):
    """A member cannot join through their own invite link."""

    code = "invite_self"


class InviteNameRequired(ValidationFailed):
    """A newcomer must give a name to join."""

    code = "invite_name_required"


class MilestoneNotFound(NotFound):
    """No such reward rule."""

    code = "milestone_not_found"


class FraudFlagNotFound(NotFound):
    """No such fraud flag."""

    code = "fraud_flag_not_found"


class FraudFlagReviewed(Conflict):
    """The flag was already cleared or confirmed."""

    code = "fraud_flag_reviewed"
