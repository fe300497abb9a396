"""zh-CN and English message catalogues for pages, reports and notifications.

Each catalogue is a TOML file of dotted keys; a test checks both have the same keys.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

LANGUAGES = ("zh-CN", "en")
LOCALES = Path(__file__).parent / "locales"
Translate = Callable[..., str]


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{full}."))
        else:
            out[full] = str(value)
    return out


@cache
def catalogue(lang: str) -> dict[str, str]:
    with (LOCALES / f"{lang}.toml").open("rb") as fh:
        return _flatten(tomllib.load(fh))


def normalise(lang: str | None) -> str | None:
    if not lang:
        return None
    lang = lang.strip()
    if lang.lower().startswith("zh"):
        return "zh-CN"
    if lang.lower().startswith("en"):
        return "en"
    return None


def from_accept_language(header: str | None) -> str | None:
    for part in (header or "").split(","):
        found = normalise(part.split(";")[0])
        if found:
            return found
    return None


def translator(lang: str) -> Translate:
    messages = catalogue(lang if lang in LANGUAGES else "en")
    fallback = catalogue("en")

    def t(key: str, **params: Any) -> str:
        text = messages.get(key) or fallback.get(key) or key
        return text.format(**params) if params else text

    return t
