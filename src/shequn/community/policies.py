"""Machine-enforced community policies: a Protocol, the built-in variants and an explicit registry.

Later issues plug in more (e.g. listening's spam model) with `register_policy`. The gate `check_can_post`
runs the enabled policies in registry order and acts on the first finding: plain refusals, or a strike on
the warn → mute → remove ladder. Every action is an enforcement row with its evidence.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.community.models import Community, CommunityMember, CommunityPolicy, CommunityPostMark
from shequn.core.errors import ValidationFailed


@dataclass
class PostContext:
    """What a policy sees: the community, the author's membership, the content and the time."""

    session: Session
    community: Community
    member: CommunityMember
    text: str
    has_media: bool
    now: datetime
    text_hash: str

    @property
    def plain(self) -> str:
        """The text as the checks read it: NFKC (full-width ｗｘ → wx, ① → 1) without zero-width characters."""
        return plain_text(self.text)

    @property
    def on_probation(self) -> bool:
        """Whether the author is still a new member on probation."""
        return self.member.probation_until is not None and self.member.probation_until > self.now


@dataclass
class Finding:
    """Why content is refused; strike=True sends it up the warn → mute → remove ladder."""

    policy: str
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)
    strike: bool = False


class Policy(Protocol):
    """A pluggable policy: its kind, default config, config check and evaluation."""

    kind: str
    defaults: dict[str, Any]

    def check_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """Return the normalised config or raise ValidationFailed."""
        ...

    def evaluate(self, ctx: PostContext, config: dict[str, Any]) -> Finding | None:
        """A finding when the content breaks the policy, else None."""
        ...


def _int(config: dict[str, Any], key: str, lo: int, hi: int) -> int:
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValidationFailed(details=[{"field": f"config.{key}", "message": f"an integer from {lo} to {hi}"}])
    return value


def _bool(config: dict[str, Any], key: str) -> bool:
    value = config.get(key)
    if not isinstance(value, bool):
        raise ValidationFailed(details=[{"field": f"config.{key}", "message": "true or false"}])
    return value


def _merge(defaults: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    unknown = set(config) - set(defaults)
    if unknown:
        raise ValidationFailed(
            details=[{"field": f"config.{k}", "message": "unknown setting"} for k in sorted(unknown)]
        )
    return {**defaults, **config}


URL_RE = re.compile(r"(https?://|www\.|t\.cn/|\b[a-z0-9-]{2,}\.(?:com|cn|net|top|xyz|vip|cc|shop)\b)", re.I)
# A WeChat id after its usual lead-ins (微信/vx/wx …, or 加v / +v); a bare "v" alone would match ordinary words.
WECHAT_RE = re.compile(
    r"(?:(?<![a-z])(?:微信|薇信|威信|v信|vx|wx|weixin)|加\s*v|[+➕]\s*v)号?[\s:：]*([a-z][-_a-z0-9]{5,19})", re.I
)
PHONE_RE = re.compile(r"(?<!\d)1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}(?!\d)")
QR_RE = re.compile(r"(二维码|扫码|扫一扫|qr\s?code)", re.I)


_INVISIBLE = re.compile("[\u200b-\u200f\u2060-\u2064\ufeff\u00ad]")


def plain_text(text: str) -> str:
    """What spammers' disguises reduce to: NFKC-folded, invisible characters removed."""
    return _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))


def normalized_hash(text: str) -> str:
    """Hash of the text without spaces and punctuation, so trivially varied copies still match."""
    core = re.sub(r"[\W_]+", "", plain_text(text).lower())
    return hashlib.md5(core.encode(), usedforsecurity=False).hexdigest()


def _excerpt(text: str, match: re.Match[str]) -> str:
    start, end = max(0, match.start() - 10), min(len(text), match.end() + 10)
    return text[start:end]


class SpamPolicy:
    """Ads and spam: links, WeChat ids, phone numbers, QR-code lures, the same text again and again."""

    kind = "spam"
    defaults: dict[str, Any] = {
        "links": True,
        "wechat_ids": True,
        "phones": True,
        "qr": True,
        "repeat_limit": 2,
        "repeat_hours": 24,
        "mute_at": 2,
        "remove_at": 3,
        "mute_minutes": 60,
    }

    def check_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """Validate the heuristics switches and the ladder thresholds."""
        merged = _merge(self.defaults, config)
        for key in ("links", "wechat_ids", "phones", "qr"):
            _bool(merged, key)
        _int(merged, "repeat_limit", 1, 100)
        _int(merged, "repeat_hours", 1, 24 * 30)
        mute_at = _int(merged, "mute_at", 1, 100)
        remove_at = _int(merged, "remove_at", 1, 100)
        _int(merged, "mute_minutes", 1, 60 * 24 * 30)
        if remove_at < mute_at:
            raise ValidationFailed(details=[{"field": "config.remove_at", "message": "must not be below mute_at"}])
        return merged

    def evaluate(self, ctx: PostContext, config: dict[str, Any]) -> Finding | None:
        """The first spam signal found, as a strike."""
        text = ctx.plain
        checks = (("wechat_ids", WECHAT_RE, "wechat_id"), ("phones", PHONE_RE, "phone"), ("qr", QR_RE, "qr_code"))
        for switch, pattern, reason in checks:
            m = pattern.search(text) if config[switch] else None
            if m:
                return Finding(self.kind, reason, {"excerpt": _excerpt(text, m)}, strike=True)
        m = URL_RE.search(text) if config["links"] else None
        if m:
            return Finding(self.kind, "link", {"excerpt": _excerpt(text, m)}, strike=True)
        since = ctx.now - timedelta(hours=config["repeat_hours"])
        same = ctx.session.scalar(
            select(func.count())
            .select_from(CommunityPostMark)
            .where(
                CommunityPostMark.community_id == ctx.community.id,
                CommunityPostMark.customer_id == ctx.member.customer_id,
                CommunityPostMark.text_hash == ctx.text_hash,
                CommunityPostMark.created_at >= since,
            )
        )
        if ctx.text.strip() and (same or 0) >= config["repeat_limit"]:
            return Finding(self.kind, "repeated_text", {"excerpt": ctx.text[:60], "copies": same}, strike=True)
        return None


class BannedWordsPolicy:
    """Words this community does not allow (the list is per community)."""

    kind = "banned_words"
    defaults: dict[str, Any] = {"words": [], "strike": False}

    def check_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """Words: up to 500 non-empty strings of at most 50 characters."""
        merged = _merge(self.defaults, config)
        words = merged["words"]
        if not isinstance(words, list) or len(words) > 500:
            raise ValidationFailed(details=[{"field": "config.words", "message": "a list of up to 500 words"}])
        clean = []
        for w in words:
            if not isinstance(w, str) or not w.strip() or len(w) > 50:
                raise ValidationFailed(details=[{"field": "config.words", "message": "words of 1 to 50 characters"}])
            if w.strip() not in clean:
                clean.append(w.strip())
        merged["words"] = clean
        _bool(merged, "strike")
        return merged

    def evaluate(self, ctx: PostContext, config: dict[str, Any]) -> Finding | None:
        """The banned words the text contains (case-insensitive)."""
        lowered = ctx.plain.lower()
        hits = [w for w in config["words"] if w.lower() in lowered]
        if hits:
            return Finding(self.kind, "banned_word", {"words": hits[:10]}, strike=bool(config["strike"]))
        return None


def _posts_since(ctx: PostContext, since: datetime) -> int:
    return int(
        ctx.session.scalar(
            select(func.count())
            .select_from(CommunityPostMark)
            .where(
                CommunityPostMark.community_id == ctx.community.id,
                CommunityPostMark.customer_id == ctx.member.customer_id,
                CommunityPostMark.created_at >= since,
            )
        )
        or 0
    )


class FrequencyPolicy:
    """At most max_posts posts per window_minutes per member."""

    kind = "frequency"
    defaults: dict[str, Any] = {"max_posts": 10, "window_minutes": 60}

    def check_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """Both limits are positive integers."""
        merged = _merge(self.defaults, config)
        _int(merged, "max_posts", 1, 10_000)
        _int(merged, "window_minutes", 1, 60 * 24 * 7)
        return merged

    def evaluate(self, ctx: PostContext, config: dict[str, Any]) -> Finding | None:
        """Refuse once the member has posted max_posts times in the window."""
        count = _posts_since(ctx, ctx.now - timedelta(minutes=config["window_minutes"]))
        if count >= config["max_posts"]:
            evidence = {"posts": count, "max_posts": config["max_posts"], "window_minutes": config["window_minutes"]}
            return Finding(self.kind, "too_frequent", evidence)
        return None


class ProbationPolicy:
    """New members, for `days` after joining: no links, no media, fewer posts per day."""

    kind = "probation"
    defaults: dict[str, Any] = {"days": 3, "no_links": True, "no_media": True, "max_posts_per_day": 3}

    def check_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """days 0–90, switches, daily limit."""
        merged = _merge(self.defaults, config)
        _int(merged, "days", 0, 90)
        _bool(merged, "no_links")
        _bool(merged, "no_media")
        _int(merged, "max_posts_per_day", 1, 10_000)
        return merged

    def evaluate(self, ctx: PostContext, config: dict[str, Any]) -> Finding | None:
        """Refuse links, media or the n+1-th post of the day from a member on probation."""
        if not ctx.on_probation:
            return None
        until = ctx.member.probation_until.isoformat() if ctx.member.probation_until else None
        if config["no_media"] and ctx.has_media:
            return Finding(self.kind, "probation_media", {"probation_until": until})
        if config["no_links"] and URL_RE.search(ctx.plain):
            return Finding(self.kind, "probation_link", {"probation_until": until})
        count = _posts_since(ctx, ctx.now - timedelta(days=1))
        if count >= config["max_posts_per_day"]:
            return Finding(self.kind, "probation_frequency", {"posts": count, "probation_until": until})
        return None


# Order matters: cheap membership-stage checks first, then word lists, rate limits, spam heuristics.
POLICIES: dict[str, Policy] = {
    p.kind: p for p in (ProbationPolicy(), BannedWordsPolicy(), FrequencyPolicy(), SpamPolicy())
}


def register_policy(policy: Policy) -> None:
    """Plug in a policy variant (evaluated after the built-in ones)."""
    POLICIES[policy.kind] = policy


def effective_policies(session: Session, community: Community) -> list[tuple[str, bool, dict[str, Any]]]:
    """(kind, enabled, config) of every registered policy for the community (stored or default)."""
    stored = {
        p.kind: p
        for p in session.scalars(
            select(CommunityPolicy).where(
                CommunityPolicy.workspace_id == community.workspace_id, CommunityPolicy.community_id == community.id
            )
        )
    }
    out = []
    for kind, policy in POLICIES.items():
        row = stored.get(kind)
        config = {**policy.defaults, **(row.config if row else {})}
        out.append((kind, row.enabled if row else True, config))
    return out
