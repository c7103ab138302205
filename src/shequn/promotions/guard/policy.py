"""Default limits per member action and the bot-like heuristics, each overridable per workspace."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache

# Subject rules: at most `limit` attempts per window for one customer / device / phone hash / public IP.
SUBJECT_RULES = ("customer", "device", "phone", "ip")
# Guessing rules: at most `limit` *failed* attempts (record_failure) per window; the next attempt is refused.
FAILURE_RULES = {"fail_customer": "customer", "fail_device": "device", "fail_ip": "ip"}
# Heuristics shared by every action (stored under action "*"):
#  burst            – one device (or, without a device, one customer) sustaining more than one action per
#                     100 ms after a burst of 8: no thumb taps that fast, scripts do;
#  device_customers – more than 3 different customers acting from one device within 10 minutes (account farms
#                     behind one phone; a family sharing a phone stays under it);
#  ip_customers     – more than 30 different customers from one public IP within 10 minutes (generous because
#                     of carrier NAT and office networks).
HEURISTIC_RULES = ("burst", "device_customers", "ip_customers")
ANY_ACTION = "*"


@dataclass(frozen=True)
class Rule:
    """At most `limit` per `window_ms`; limit 0 means the rule is off."""

    limit: int
    window_ms: int

    @property
    def window_s(self) -> float:
        """The window in seconds."""
        return self.window_ms / 1000


def _r(limit: int, window_s: float) -> Rule:
    return Rule(limit, int(window_s * 1000))


HEURISTICS: dict[str, Rule] = {
    "burst": _r(8, 0.8),
    "device_customers": _r(3, 600),
    "ip_customers": _r(30, 600),
}

DEFAULTS: dict[str, dict[str, Rule]] = {
    "coupon.claim": {"customer": _r(20, 60), "device": _r(30, 60), "phone": _r(20, 60), "ip": _r(300, 60)},
    # Code guessing: 10 wrong codes per 10 minutes per customer and per device (and 50 per public IP).
    "coupon.code": {
        "customer": _r(30, 60),
        "device": _r(60, 60),
        "ip": _r(300, 60),
        "fail_customer": _r(10, 600),
        "fail_device": _r(10, 600),
        "fail_ip": _r(50, 600),
    },
    # Members retry a sold-out or not-yet-open flash sale by tapping; the stock script decides, this only
    # stops machine-speed hammering.
    "flash.claim": {"customer": _r(20, 10), "device": _r(30, 10), "ip": _r(1000, 10)},
    "lottery.draw": {"customer": _r(30, 60), "device": _r(60, 60), "phone": _r(30, 60), "ip": _r(600, 60)},
    "quiz.answer": {"customer": _r(60, 60), "device": _r(120, 60), "ip": _r(1200, 60)},
    "challenge.vote": {"customer": _r(30, 60), "device": _r(60, 60), "phone": _r(30, 60), "ip": _r(600, 60)},
}
# Actions without their own defaults (new member endpoints) still get a per-customer and per-device ceiling.
GENERIC: dict[str, Rule] = {"customer": _r(60, 60), "device": _r(120, 60)}

ACTIONS = tuple(DEFAULTS)
RULES_OF_ACTION = SUBJECT_RULES + tuple(FAILURE_RULES)


def default_rules(action: str) -> dict[str, Rule]:
    """The built-in rules of an action ("*": the heuristics)."""
    if action == ANY_ACTION:
        return dict(HEURISTICS)
    return dict(DEFAULTS.get(action, GENERIC))


def valid_rule(action: str, rule: str) -> bool:
    """Whether (action, rule) names something an override can set."""
    if action == ANY_ACTION:
        return rule in HEURISTIC_RULES
    return len(action) <= 32 and rule in RULES_OF_ACTION


@lru_cache(maxsize=65_536)
def public_ip(ip: str | None) -> str | None:
    """The address when it identifies a client; loopback (a proxy on this host, a bench) and junk do not."""
    if not ip:
        return None
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if addr.is_loopback or addr.is_unspecified:
        return None
    return addr.compressed
