"""Console strings: the console's own zh-CN/en catalogs, falling back to core's (error.*, file.*)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from shequn.core.i18n import LOCALES, normalize_locale, translate

_DIR = Path(__file__).parent / "locales"


@lru_cache(maxsize=4)
def catalog(locale: str) -> dict[str, str]:
    """The console's flat key → message catalog of a locale."""
    return dict(json.loads((_DIR / f"{locale}.json").read_text(encoding="utf-8")))


def t(key: str, locale: str, **params: Any) -> str:
    """A console string in locale (then the other locale, then core's catalogs, then the key)."""
    locale = normalize_locale(locale)
    text = catalog(locale).get(key)
    if text is None:
        text = next((catalog(o)[key] for o in LOCALES if key in catalog(o) and o != locale), None)
    if text is None:
        return translate(key, locale, **params)
    if not params:
        return text
    try:
        return text.format(**params)
    except (KeyError, IndexError, ValueError):
        return text
