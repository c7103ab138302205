"""Display formatting: money from fen, times in the workspace zone, counts and percentages."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shequn.core.clock import as_utc

CURRENCY_SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "JP¥", "HKD": "HK$"}


def money(fen: int | None, currency: str = "CNY") -> str:
    """Integer fen as ¥1,234.56 (never through floats)."""
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(int(fen)), 100)
    symbol = CURRENCY_SYMBOLS.get(currency.upper(), currency.upper() + " ")
    return f"{sign}{symbol}{yuan:,}.{cents:02d}"


def money_short(fen: int, locale: str) -> str:
    """A compact amount for chart labels: ¥1.5万 / ¥15k (no trailing .0)."""
    yuan = fen / 100
    units = ((1e8, "亿"), (1e4, "万")) if locale == "zh-CN" else ((1e6, "M"), (1e3, "k"))
    for size, suffix in units:
        if yuan >= size:
            return f"¥{yuan / size:.1f}".removesuffix(".0") + suffix
    return f"¥{yuan:,.0f}"


def yuan_to_fen(text: str) -> int | None:
    """Parse a yuan amount typed by a person ("199", "199.5", "1,299.00") into fen; None if blank or bad."""
    text = (text or "").strip().replace(",", "").replace("¥", "")
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if value < 0 or not value.is_finite():
        return None
    return int((value * 100).to_integral_value())


def zone(tz: str) -> ZoneInfo:
    """A ZoneInfo, falling back to Asia/Shanghai for unknown names."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Asia/Shanghai")


def local_dt(value: datetime | None, tz: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A UTC timestamp shown in the workspace's zone."""
    if value is None:
        return "—"
    return as_utc(value).astimezone(zone(tz)).strftime(fmt)


def number(value: int | None) -> str:
    """1234567 → 1,234,567."""
    return "—" if value is None else f"{int(value):,}"


def pct(part: float, whole: float, digits: int = 1) -> str:
    """part/whole as a percentage string; — when whole is 0."""
    if not whole:
        return "—"
    return f"{100 * part / whole:.{digits}f}%"
