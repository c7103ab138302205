"""Display formatting for console pages: the shared helpers live in core (the member pages use them too)."""

from shequn.core.fmt import (
    CURRENCY_SYMBOLS,
    local_dt,
    money,
    money_short,
    number,
    pct,
    yuan_to_fen,
    zone,
)

__all__ = [
    "CURRENCY_SYMBOLS",
    "local_dt",
    "money",
    "money_short",
    "number",
    "pct",
    "yuan_to_fen",
    "zone",
]
