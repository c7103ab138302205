"""Message catalogs (zh-CN, en) and locale negotiation."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"
_DIR = Path(__file__).parent / "locales"


_PACKAGE = _DIR.parent.parent


def _catalog_files(locale: str) -> list[Path]:
    """Core's catalog first, then every package's `locales/{locale}.json` and `locales/*.{locale}.json`.

    Files, not imports: core may not import the domains, yet each domain keeps its own messages.
    """
    found = {*_PACKAGE.glob(f"**/locales/{locale}.json"), *_PACKAGE.glob(f"**/locales/*.{locale}.json")}
    core = _DIR / f"{locale}.json"
    return [core, *sorted(found - {core})]


@lru_cache(maxsize=4)
def catalog(locale: str) -> dict[str, str]:
    """The flat key → message catalog of a locale (all packages' catalogs merged; core wins)."""
    merged: dict[str, str] = {}
    for path in reversed(_catalog_files(locale)):
        merged.update(json.loads(path.read_text(encoding="utf-8")))
    return merged


def normalize_locale(value: str | None) -> str:
    """Map zh, zh-cn, zh-Hans, en-US … onto a supported locale."""
    if not value:
        return DEFAULT_LOCALE
    v = value.strip().lower()
    if v.startswith("en"):
        return "en"
    return DEFAULT_LOCALE


def negotiate(accept_language: str | None) -> str:
    """Pick the best supported locale from an Accept-Language header."""
    if not accept_language:
        return DEFAULT_LOCALE
    best: tuple[float, str] | None = None
    for part in accept_language.split(","):
        lang, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        lang = lang.strip().lower()
        if lang.startswith(("zh", "en")) and (best is None or weight > best[0]):
            best = (weight, normalize_locale(lang))
    return best[1] if best else DEFAULT_LOCALE


def translate(key: str, locale: str, **params: Any) -> str:
    """Look key up in locale, falling back to the other locale, then to the key itself."""
    text = catalog(normalize_locale(locale)).get(key)
    if text is None:
        for other in LOCALES:
            text = catalog(other).get(key)
            if text is not None:
                break
    if text is None:
        return key
    try:
        return text.format(**params)
    except (KeyError, IndexError, ValueError):
        return text
