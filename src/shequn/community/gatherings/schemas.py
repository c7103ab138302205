"""Gathering schemas: what operators send and read, what members see."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

Mode = Literal["online", "offline"]
Format = Literal["live", "salon", "meetup"]
Visibility = Literal["public", "members"]
Status = Literal["draft", "published", "cancelled", "finished"]
RegStatus = Literal["confirmed", "waitlisted", "cancelled"]

MAX_CAPACITY = 100_000


class GatheringFields(BaseModel):
    """Fields an operator may set; all optional so the same model checks a patch."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    mode: Mode | None = None
    format: Format | None = None
    visibility: Visibility | None = None
    community_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    title: str | None = Field(default=None, min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=5000)
    agenda: str | None = Field(default=None, max_length=5000)
    join_url: str | None = Field(default=None, max_length=500, pattern=r"^(https?://\S+)?$")
    venue: str | None = Field(default=None, max_length=120)
    city: str | None = Field(default=None, max_length=32)
    address: str | None = Field(default=None, max_length=255)
    cover_url: str | None = Field(default=None, max_length=500, pattern=r"^(https?://\S+|/\S*)?$")
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    registration_opens_at: AwareDatetime | None = None
    registration_closes_at: AwareDatetime | None = None
    checkin_opens_minutes: int | None = Field(default=None, ge=0, le=24 * 60)
    capacity: int | None = Field(default=None, ge=1, le=MAX_CAPACITY)
    waitlist_enabled: bool | None = None


class GatheringIn(GatheringFields):
    """A new gathering (starts as a draft)."""

    mode: Mode = "offline"
    format: Format = "meetup"
    visibility: Visibility = "public"
    title: str = Field(min_length=1, max_length=120)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    waitlist_enabled: bool = True

    @model_validator(mode="after")
    def _format_fits_mode(self) -> GatheringIn:
        """A live stream is online and a meetup offline; a salon may be either."""
        if (self.format == "live" and self.mode != "online") or (self.format == "meetup" and self.mode != "offline"):
            raise ValueError("format does not fit mode (live is online, meetup is offline)")
        return self


class GatheringPatch(GatheringFields):
    """Changes to a gathering; null clears capacity (unlimited) only when sent explicitly."""


class GatheringOut(BaseModel):
    """A gathering as operators see it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    community_id: int | None
    mode: str
    format: str
    visibility: str
    title: str
    description: str
    agenda: str
    join_url: str
    venue: str
    city: str
    address: str
    cover_url: str
    starts_at: datetime
    ends_at: datetime
    registration_opens_at: datetime | None
    registration_closes_at: datetime | None
    checkin_opens_minutes: int
    capacity: int | None
    waitlist_enabled: bool
    seats_taken: int
    waitlist_count: int
    status: str
    cancel_reason: str
    published_at: datetime | None
    cancelled_at: datetime | None
    created_at: datetime


class PublicGatheringOut(BaseModel):
    """A gathering as members see it (no operator bookkeeping; join URL only for confirmed members)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    mode: str
    format: str
    visibility: str
    title: str
    description: str
    agenda: str
    venue: str
    city: str
    address: str
    cover_url: str
    starts_at: datetime
    ends_at: datetime
    registration_opens_at: datetime | None
    registration_closes_at: datetime | None
    capacity: int | None
    seats_left: int | None
    waitlist_enabled: bool
    status: str


class RegistrationOut(BaseModel):
    """A registration as operators see it (masked phone)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    gathering_id: int
    customer_id: int
    status: str
    code: str
    source: str
    name: str
    phone_masked: str
    queued_at: datetime
    confirmed_at: datetime | None
    promoted_at: datetime | None
    cancelled_at: datetime | None
    cancelled_by: str
    late_cancel: bool
    checked_in_at: datetime | None
    waitlist_position: int | None = None


class RegisterIn(BaseModel):
    """An operator registering a customer (e.g. a phone sign-up taken at the desk)."""

    model_config = ConfigDict(extra="forbid")

    customer_id: int = Field(ge=1, le=2**63 - 1)


class RegisterOut(BaseModel):
    """The result of registering: the registration and whether it existed already."""

    registration: RegistrationOut
    already_registered: bool


class TicketOut(BaseModel):
    """A member's own registration: the code, the signed check-in URL and its QR as SVG."""

    registration: RegistrationOut
    already_registered: bool = False
    checkin_url: str
    qr_svg: str
    join_url: str = ""


class CheckinIn(BaseModel):
    """A check-in at the desk: the typed code, or the token from the member's QR."""

    model_config = ConfigDict(extra="forbid")

    code: str | None = Field(default=None, max_length=32)
    token: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _one_of(self) -> CheckinIn:
        """Exactly one way to identify the registration."""
        if bool(self.code) == bool(self.token):
            raise ValueError("send either code or token")
        return self


class SelfCheckinIn(BaseModel):
    """A member checking themselves in (offline: with the key from the venue's QR)."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(default="", max_length=200)


class CheckinOut(BaseModel):
    """A completed check-in."""

    registration: RegistrationOut
    method: str
    checked_in_at: datetime


class CancelIn(BaseModel):
    """Why an operator cancels a gathering."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=255)


class FeedbackIn(BaseModel):
    """An attendee's rating and comment."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    rating: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=1000)


class FeedbackOut(BaseModel):
    """One piece of feedback."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    gathering_id: int
    registration_id: int
    customer_id: int
    rating: int
    comment: str
    created_at: datetime


class AttendanceOut(BaseModel):
    """Attendance of one gathering."""

    registered: int
    confirmed: int
    waitlisted: int
    cancelled: int
    late_cancellations: int
    checked_in: int
    no_shows: int
    attendance_rate: float | None


class FeedbackSummaryOut(BaseModel):
    """Feedback of one gathering: average, distribution and an NPS-like score (5 promotes, 1–3 detract)."""

    count: int
    average: float | None
    distribution: dict[int, int]
    nps: int | None
    response_rate: float | None


class ReminderStatusOut(BaseModel):
    """How many reminders of each kind were recorded and delivered."""

    kind: str
    due: int
    sent: int
    failed: int


class ReportOut(BaseModel):
    """Attendance, feedback and reminders of one gathering."""

    attendance: AttendanceOut
    feedback: FeedbackSummaryOut
    reminders: list[ReminderStatusOut]


class MemberRegisterIn(BaseModel):
    """A member registering on the H5 page; a newcomer also gives a name (and optionally a phone)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    workspace: str = Field(min_length=1, max_length=64)
    name: str = Field(default="", max_length=64)
    phone: str = Field(default="", max_length=20)


class MemberRegisterOut(BaseModel):
    """The member's registration after registering, and where the H5 page goes next."""

    registration: RegistrationOut
    already_registered: bool
    next: str
