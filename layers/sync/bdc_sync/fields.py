"""Defensive reading of DocDB record fields.

Real records miss sections, carry ``null`` where a list belongs and strings where an
object belongs. Table modules read fields through these helpers so that a damaged
field yields an empty value, and only a record that cannot be read at all raises
``MalformedRecord`` (the framework then skips and counts it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any


class MalformedRecord(ValueError):
    """A record that cannot give a row; the message says which field and why."""


def get_path(record: Any, path: str, default: Any = None) -> Any:
    """The value at a dotted path, or ``default`` when any step is missing or not a dict."""
    current = record
    for part in path.split("."):
        if not isinstance(current, dict):
            return default
        current = current.get(part)
        if current is None:
            return default
    return current


def as_text(value: Any) -> str | None:
    """A scalar as text; None for missing values and for containers."""
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return str(value)
    return clean_text(str(value))


def clean_text(text: str) -> str:
    """Drop lone surrogates that JSON allows but UTF-8 (and parquet) does not."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def as_list(value: Any) -> list[Any]:
    """A list field as a list: None becomes empty, a lone value becomes one item."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def texts(values: Iterable[Any]) -> list[str]:
    """The usable text items of a list, in order."""
    return [text for text in (as_text(v) for v in values) if text]


def record_id(record: Any) -> str:
    """The record's ``_id`` as text; a record without one is malformed."""
    if not isinstance(record, dict) or record.get("_id") is None:
        raise MalformedRecord("record has no _id")
    return str(record["_id"])


def require_dict(record: dict, path: str) -> dict:
    """A section that must be an object when present (absent gives ``{}``)."""
    value = get_path(record, path)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedRecord(f"{path} is {type(value).__name__}, expected an object")
    return value


_OFFSET_RE = re.compile(r"([+-]\d{2})(\d{2})$")


def parse_datetime(value: Any) -> datetime | None:
    """An ISO-8601 timestamp (``Z``, offsets, space separator) or None if unparseable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    text = _OFFSET_RE.sub(r"\1:\2", text)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def parse_date(value: Any) -> date | None:
    """A calendar date from ``YYYY-MM-DD`` (or a timestamp), else None."""
    if not isinstance(value, str):
        return None
    moment = parse_datetime(value)
    if moment is not None:
        return moment.date()
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def to_utc(value: Any) -> datetime | None:
    """A timestamp in UTC; naive times are taken as UTC."""
    moment = parse_datetime(value)
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
