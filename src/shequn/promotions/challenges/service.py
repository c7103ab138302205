"""UGC challenges: the one module other packages, pages and jobs call."""

from __future__ import annotations

from shequn.promotions.challenges.entries import (
    eligible_posts,
    enter_post,
    entries_of,
    get_entry,
    list_entries,
    maybe_sync,
    sync_entries,
)
from shequn.promotions.challenges.manage import (
    cancel_challenge,
    create_challenge,
    entry_open,
    get_challenge,
    list_challenges,
    normalize_hashtag,
    phase,
    publish_challenge,
    update_challenge,
    voting_open,
)
from shequn.promotions.challenges.models import Challenge, ChallengeEntry
from shequn.promotions.challenges.results import (
    decide,
    decide_ready,
    pick_winners,
    publish_results,
    ship,
    standings,
    summarize,
    votes_over_time,
    winners,
)
from shequn.promotions.challenges.voting import VoteResult, judge, vote, voted_entry_ids, votes_used

__all__ = [
    "Challenge",
    "ChallengeEntry",
    "VoteResult",
    "cancel_challenge",
    "create_challenge",
    "decide",
    "decide_ready",
    "eligible_posts",
    "enter_post",
    "entries_of",
    "entry_open",
    "get_challenge",
    "get_entry",
    "judge",
    "list_challenges",
    "list_entries",
    "maybe_sync",
    "normalize_hashtag",
    "phase",
    "pick_winners",
    "publish_challenge",
    "publish_results",
    "ship",
    "standings",
    "summarize",
    "sync_entries",
    "update_challenge",
    "vote",
    "voted_entry_ids",
    "votes_over_time",
    "votes_used",
    "voting_open",
    "winners",
]
