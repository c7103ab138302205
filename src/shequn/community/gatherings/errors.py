"""Gathering errors: stable codes, messages in `locales/` as `error.<code>`."""

from __future__ import annotations

from shequn.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed


class GatheringNotFound(NotFound):
    """No such gathering in this workspace (or not visible to this member)."""

    code = "gathering_not_found"


class RegistrationNotFound(NotFound):
    """No such registration in this workspace, or not the member's own."""

    code = "registration_not_found"


class GatheringNotOpen(Conflict):
    """The gathering is a draft, cancelled or finished: nobody can register."""

    code = "gathering_not_open"


class RegistrationNotOpen(Conflict):
    """The registration window has not opened yet."""

    code = "registration_not_open"


class RegistrationClosed(Conflict):
    """The registration window has closed (or the gathering has started)."""

    code = "registration_closed"


class GatheringFull(Conflict):
    """Every seat is taken and the gathering keeps no waitlist."""

    code = "gathering_full"


class MembersOnly(PermissionDenied):
    """The gathering is for members of its community only."""

    code = "gathering_members_only"


class BadGatheringTransition(Conflict):
    """The status change is not allowed from the current status (e.g. publish a cancelled gathering)."""

    code = "gathering_bad_transition"


class CapacityBelowConfirmed(Conflict):
    """Capacity cannot drop below the seats already confirmed."""

    code = "gathering_capacity_below_confirmed"


class CheckinCodeInvalid(ValidationFailed):
    """No registration of this gathering has this code (or the QR signature does not match)."""

    code = "checkin_code_invalid"


class AlreadyCheckedIn(Conflict):
    """The code was used already; the first check-in stands."""

    code = "already_checked_in"


class CheckinNotOpen(Conflict):
    """Check-in opens shortly before the start."""

    code = "checkin_not_open"


class CheckinClosed(Conflict):
    """Check-in closed when the gathering ended (or it was cancelled)."""

    code = "checkin_closed"


class RegistrationNotConfirmed(Conflict):
    """A waitlisted or cancelled registration cannot check in."""

    code = "registration_not_confirmed"


class CancelNotAllowed(Conflict):
    """The registration cannot be cancelled (checked in already, or the gathering is over)."""

    code = "registration_cancel_not_allowed"


class FeedbackNotAllowed(PermissionDenied):
    """Only attendees give feedback, and only once the gathering has started."""

    code = "feedback_not_allowed"


class FeedbackExists(Conflict):
    """This attendee has already given feedback."""

    code = "feedback_exists"
