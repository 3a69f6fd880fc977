"""Normalisation of people's names and instrument ids, as tables.md defines it."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

# Anything but a Unicode letter, digit or space (``\w`` without ``_``): ``Tomás`` stays one word.
_NOT_NAME_CHAR = re.compile(r"[^\w ]|_")
_SPACES = re.compile(r"\s+")
_INSTRUMENT = re.compile(r"^[^_-]+[_-](?P<name>.+)_(?:\d{8}|\d{4}-\d{2}-\d{2}|2[3-6]\d{4})$")


def _key(name: str) -> str:
    return name.lower().replace(" ", "")


def _dedupe(names: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    unique: list[str] = []
    for name in names:
        key = _key(name)
        if key not in seen:
            seen.add(key)
            unique.append(name)
    return unique


def clean_names(raw: Sequence[str]) -> list[str]:
    """One row's names: split on commas, keep (Unicode) letters/digits/spaces, Title Case, de-duplicate.

    Then a one-word name is dropped when it is the first word of exactly one
    multi-word name of the same row (``["Huy", "Huy Nguyen"]`` → ``["Huy Nguyen"]``).
    """
    cleaned: list[str] = []
    for value in raw:
        # NFC first: a decomposed "á" (a + combining accent) would otherwise lose its accent
        # to the character filter and split the word in two.
        for part in unicodedata.normalize("NFC", value).split(","):
            text = _SPACES.sub(" ", _NOT_NAME_CHAR.sub(" ", part)).strip().title()
            if text:
                cleaned.append(text)
    names = _dedupe(cleaned)
    firsts = [name.split(" ")[0].lower() for name in names if " " in name]
    return [name for name in names if " " in name or firsts.count(name.lower()) != 1]


def one_word_map(rows: Iterable[Sequence[str]]) -> dict[str, str]:
    """Table-wide map from a one-word name to the only multi-word name starting with it."""
    full_by_first: dict[str, set[str]] = {}
    for names in rows:
        for name in names:
            if " " in name:
                full_by_first.setdefault(name.split(" ")[0].lower(), set()).add(name)
    return {first: next(iter(fulls)) for first, fulls in full_by_first.items() if len(fulls) == 1}


def apply_one_word_map(names: Sequence[str], mapping: dict[str, str]) -> list[str]:
    """Replace matched one-word names; unmatched or ambiguous ones stay."""
    return _dedupe(mapping.get(name.lower(), name) if " " not in name else name for name in names)


def normalize_instrument_id(instrument_id: str | None) -> str:
    """``<prefix>[_-]<name>_<date>`` → ``<name>``, then without ``_`` and ``-``."""
    if not instrument_id:
        return ""
    match = _INSTRUMENT.match(instrument_id)
    core = match.group("name") if match else instrument_id
    return core.replace("_", "").replace("-", "")
