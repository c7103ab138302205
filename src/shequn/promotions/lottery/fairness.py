"""Commit-reveal randomness: anyone holding the revealed seed can recompute every draw.

Publishing draws a secret 32-byte seed and shows commitment = sha256(seed). Each draw's number is
HMAC-SHA256(seed, f"{lottery_id}:{player}:{draw_no}" [+ f":{client_nonce}"]), read as 64-bit big-endian
chunks and mapped to [0, total_weight) by rejection sampling: a chunk x is used only if
x < 2**64 − (2**64 mod W), so every residue x mod W has exactly the same number of pre-images (no modulo
bias); a rejected chunk moves to the next one, and after four the message is re-hashed with "#1", "#2" …
(a rejection has probability W / 2**64, i.e. never in practice). The prize is the first row of the table,
in position order, whose cumulative weight exceeds the number. docs/promotions-lottery.md carries the same
logic as a stand-alone snippet; tests check both agree.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

SEED_BYTES = 32
SPAN = 2**64


def new_seed() -> bytes:
    """A fresh secret seed from the OS's CSPRNG."""
    return secrets.token_bytes(SEED_BYTES)


def commitment_of(seed: bytes) -> str:
    """The public commitment to a seed: sha256 in hex."""
    return hashlib.sha256(seed).hexdigest()


def player_of(lottery_id: int, customer_id: int, commitment: str) -> str:
    """A customer's public pseudonym in one lottery (not linkable across lotteries by the id alone)."""
    return hashlib.sha256(f"{lottery_id}:{customer_id}:{commitment}".encode()).hexdigest()[:16]


def message_of(lottery_id: int, player: str, draw_no: int, client_nonce: str = "") -> str:
    """The HMAC message of one draw."""
    base = f"{lottery_id}:{player}:{draw_no}"
    return f"{base}:{client_nonce}" if client_nonce else base


def draw_number(seed: bytes, message: str, total_weight: int) -> int:
    """A uniform number in [0, total_weight) from the seed and the message (rejection sampling, no bias)."""
    if total_weight <= 0:
        raise ValueError("total weight must be positive")
    limit = SPAN - SPAN % total_weight
    counter = 0
    while True:
        msg = message if counter == 0 else f"{message}#{counter}"
        digest = hmac.new(seed, msg.encode(), hashlib.sha256).digest()
        for i in range(0, 32, 8):
            x = int.from_bytes(digest[i : i + 8], "big")
            if x < limit:
                return x % total_weight
        counter += 1


def pick(weights: Sequence[int], number: int) -> int:
    """The index of the prize whose cumulative weight range holds number."""
    acc = 0
    for index, weight in enumerate(weights):
        acc += weight
        if number < acc:
            return index
    raise ValueError("number outside the prize table")


def verify_log(
    seed_hex: str,
    commitment: str,
    lottery_id: int,
    prizes: Sequence[Mapping[str, Any]],
    draws: Sequence[Mapping[str, Any]],
) -> list[str]:
    """Recompute a revealed lottery from its public record; returns the problems found (empty: it checks out).

    prizes: {id, weight, stock, kind} in position order; draws: {player, draw_no, client_nonce, number,
    chosen_prize_id, prize_id, fallback} in log order. Stock is replayed in log order: a chosen prize with stock
    left must have been awarded unless the log says the budget or the coupon failed.
    """
    seed = bytes.fromhex(seed_hex)
    problems = [] if commitment_of(seed) == commitment else ["the seed does not match the commitment"]
    weights = [int(p["weight"]) for p in prizes]
    left = {p["id"]: p["stock"] for p in prizes}
    thanks = next(p["id"] for p in prizes if p["kind"] == "thanks")
    for i, d in enumerate(draws):
        msg = message_of(lottery_id, d["player"], d["draw_no"], d["client_nonce"] or "")
        number = draw_number(seed, msg, sum(weights))
        chosen = prizes[pick(weights, number)]["id"]
        if number != d["number"] or chosen != d["chosen_prize_id"]:
            problems.append(f"draw {i + 1}: number or chosen prize differs")
            continue
        stock = left[chosen]
        out_of_stock = stock is not None and stock <= 0
        expected = thanks if out_of_stock or d["fallback"] in ("budget", "coupon") else chosen
        if d["prize_id"] != expected or (out_of_stock and d["fallback"] != "stock"):
            problems.append(f"draw {i + 1}: awarded prize differs from the stock replay")
        if expected == chosen and stock is not None:
            left[chosen] = stock - 1
    return problems
