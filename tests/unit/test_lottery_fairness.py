"""The lottery's randomness on its own: determinism, range, no modulo bias (rejection path included), the
cumulative-weight pick, a chi-square goodness-of-fit over 60,000 seeded draws, and the documented stand-alone
snippet agreeing with the reference implementation."""

from __future__ import annotations

import hashlib
import hmac
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

from scipy.stats import chisquare

from shequn.promotions.lottery import fairness

DOC = Path(__file__).resolve().parents[2] / "docs" / "promotions-lottery.md"


def doc_snippet() -> dict[str, Any]:
    """The verification snippet from docs/promotions-lottery.md, executed as a module."""
    match = re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert match, "the doc must carry the stand-alone snippet"
    lines = match.group(1).splitlines()
    assert len([ln for ln in lines if ln.strip()]) <= 40  # short enough to read and trust
    scope: dict[str, Any] = {"__name__": "snippet"}
    exec(compile(match.group(1), str(DOC), "exec"), scope)  # our own documentation, not user input
    return scope


def test_numbers_are_deterministic_in_range_and_commitment_is_sha256() -> None:
    seed = bytes(range(32))
    assert fairness.commitment_of(seed) == hashlib.sha256(seed).hexdigest()
    a = fairness.draw_number(seed, "7:abc:1", 1000)
    assert a == fairness.draw_number(seed, "7:abc:1", 1000) and 0 <= a < 1000
    assert fairness.message_of(7, "abc", 1) == "7:abc:1" and fairness.message_of(7, "abc", 1, "n0") == "7:abc:1:n0"
    assert len(fairness.new_seed()) == 32 and fairness.new_seed() != fairness.new_seed()


def test_rejection_sampling_skips_the_biased_tail() -> None:
    # With W = 2**63 + 1 almost half of all 64-bit chunks lie in the biased tail and must be skipped.
    total = 2**63 + 1
    limit = 2**64 - 2**64 % total
    rejected = 0
    for i in range(200):
        msg = f"1:p:{i}"
        digest = hmac.new(b"k" * 32, msg.encode(), hashlib.sha256).digest()
        chunks = [int.from_bytes(digest[j : j + 8], "big") for j in range(0, 32, 8)]
        got = fairness.draw_number(b"k" * 32, msg, total)
        usable = [x for x in chunks if x < limit]
        if usable:
            assert got == usable[0] % total
        rejected += chunks[0] >= limit
    assert 60 < rejected < 140  # the tail really is hit, and handled


def test_pick_follows_cumulative_weights() -> None:
    weights = [3, 0, 2, 5]
    assert [fairness.pick(weights, n) for n in range(10)] == [0, 0, 0, 2, 2, 3, 3, 3, 3, 3]


def test_chi_square_over_many_seeded_draws() -> None:
    weights = [1, 4, 10, 25, 60]
    rng = random.Random(20261124)
    seed = bytes(rng.getrandbits(8) for _ in range(32))
    counts = Counter(
        fairness.pick(weights, fairness.draw_number(seed, f"9:{i % 500:04x}:{i // 500 + 1}", sum(weights)))
        for i in range(60_000)
    )
    observed = [counts[i] for i in range(len(weights))]
    expected = [60_000 * w / sum(weights) for w in weights]
    assert chisquare(observed, expected).pvalue > 0.001


def test_doc_snippet_agrees_with_the_reference() -> None:
    snippet = doc_snippet()
    rng = random.Random(7)
    for total in (1, 3, 100, 2**40 + 7, 2**63 + 1):
        seed = bytes(rng.getrandbits(8) for _ in range(32))
        for i in range(50):
            msg = f"3:{rng.getrandbits(64):016x}:{i}"
            assert snippet["number"](seed, msg, total) == fairness.draw_number(seed, msg, total)
