"""Commit-reveal draws anyone can check: sha256(seed) is published first, the seed after the draw.

Each candidate's place is sha256("{seed}:{candidate id}"); the K smallest win. With the revealed seed and
the published candidate ids, anyone recomputes the same winners, and the organiser could not have picked
a seed after seeing the candidates because the commitment was public before anyone took part.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable


def new_seed() -> str:
    """A fresh secret seed (256 bits, hex)."""
    return secrets.token_hex(32)


def commitment(seed: str) -> str:
    """What is published before the draw: sha256 of the seed (hex)."""
    return hashlib.sha256(seed.encode()).hexdigest()


def place(seed: str, candidate_id: int) -> str:
    """A candidate's place in the draw order (smaller wins)."""
    return hashlib.sha256(f"{seed}:{candidate_id}".encode()).hexdigest()


def pick(seed: str, candidate_ids: Iterable[int], k: int) -> list[int]:
    """The k winners among the candidates, in draw order."""
    return sorted(set(candidate_ids), key=lambda c: (place(seed, c), c))[: max(k, 0)]


def verify(*, seed: str, seed_hash: str, candidate_ids: Iterable[int], k: int, winners: list[int]) -> bool:
    """Whether the seed matches its commitment and yields exactly these winners."""
    return hmac.compare_digest(commitment(seed), seed_hash) and pick(seed, candidate_ids, k) == winners
