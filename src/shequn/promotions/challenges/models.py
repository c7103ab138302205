"""Tables of promotions.challenges: challenges, their entries (UGC posts), votes and each voter's tally."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shequn.core.clock import utcnow
from shequn.core.types import Base, BigId, UTCDateTime
from shequn.promotions.quiz.models import PrizeMixin, WonMixin


class Challenge(PrizeMixin, Base):
    """A UGC challenge: posts with a hashtag in a community compete, by members' votes or by judges."""

    __tablename__ = "promo_challenges"
    __table_args__ = (
        Index("ix_promo_challenges_ws_entry", "workspace_id", "entry_starts_at"),
        Index("ix_promo_challenges_campaign", "campaign_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("promo_campaigns.id", ondelete="SET NULL"))
    community_id: Mapped[int] = mapped_column(BigId)  # plain id: the challenge's history outlives the community
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    hashtag: Mapped[str] = mapped_column(String(40))  # normalised topic name, shown as #话题#
    mode: Mapped[str] = mapped_column(String(6), default="vote")  # vote | judge
    status: Mapped[str] = mapped_column(String(12), default="draft")  # draft | published | decided | cancelled
    entry_starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    entry_ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    vote_starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    vote_ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    max_votes_per_member: Mapped[int] = mapped_column(Integer, default=3)
    winners_cap: Mapped[int] = mapped_column(Integer, default=3)
    entries_count: Mapped[int] = mapped_column(Integer, default=0)
    votes_count: Mapped[int] = mapped_column(Integer, default=0)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    results_published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChallengeEntry(WonMixin, Base):
    """A post entered in a challenge (found by its hashtag or entered by its author)."""

    __tablename__ = "promo_challenge_entries"
    __table_args__ = (
        UniqueConstraint("challenge_id", "post_id", name="uq_promo_challenge_entries_challenge_post"),
        Index("ix_promo_challenge_entries_rank", "challenge_id", "status", "votes_count"),
        Index("ix_promo_challenge_entries_ws_customer", "workspace_id", "customer_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    challenge_id: Mapped[int] = mapped_column(ForeignKey("promo_challenges.id", ondelete="CASCADE"))
    post_id: Mapped[int] = mapped_column(BigId)  # plain id: a UGC post (read through the ugc service)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    author_name: Mapped[str] = mapped_column(String(120), default="")
    title: Mapped[str] = mapped_column(String(200), default="")
    excerpt: Mapped[str] = mapped_column(String(280), default="")
    media: Mapped[str] = mapped_column(String(64), default="")  # first image hash of the post, if any
    source: Mapped[str] = mapped_column(String(8), default="hashtag")  # hashtag | member | operator
    status: Mapped[str] = mapped_column(String(12), default="active")  # active | withdrawn (post no longer approved)
    votes_count: Mapped[int] = mapped_column(Integer, default=0)
    score: Mapped[int | None] = mapped_column(Integer)  # judging mode: 0–100
    judged_by: Mapped[int | None] = mapped_column(BigId)
    judged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChallengeVote(Base):
    """One member's vote for one entry (the unique key makes a retried vote harmless)."""

    __tablename__ = "promo_challenge_votes"
    __table_args__ = (
        UniqueConstraint("entry_id", "customer_id", name="uq_promo_challenge_votes_entry_customer"),
        Index("ix_promo_challenge_votes_challenge_time", "challenge_id", "created_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    challenge_id: Mapped[int] = mapped_column(ForeignKey("promo_challenges.id", ondelete="CASCADE"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("promo_challenge_entries.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChallengeVoter(Base):
    """How many votes a member has cast in a challenge (a conditional counter enforces the maximum)."""

    __tablename__ = "promo_challenge_voters"

    challenge_id: Mapped[int] = mapped_column(ForeignKey("promo_challenges.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    votes_used: Mapped[int] = mapped_column(Integer, default=0)
