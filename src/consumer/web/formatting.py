"""Dates for people: the exam dates the registry holds (DICOM DA/DT, HL7 DTM or ISO 8601) and
the grant's times, shown as unambiguous ``YYYY-MM-DD`` (and ``HH:MM UTC``) in every language."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

__all__ = ["format_date", "format_moment", "parse_day_end"]

_COMPACT: Final = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})?(\d{2})?")


def format_date(text: str) -> str:
    """``20261115093000`` / ``2026-11-15T09:30:00Z`` -> ``2026-11-15``; anything else as given."""
    value = (text or "").strip()
    match = _COMPACT.match(value)
    if match:
        return f"{match.group(1)}-{match.group(2)}-{match.group(3)}"
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        return value


def format_moment(moment: datetime | None) -> str:
    """A point in time as ``YYYY-MM-DD HH:MM UTC`` ('' for None)."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def parse_day_end(text: str) -> datetime | None:
    """A date field (``YYYY-MM-DD``) -> the last second of that day, UTC; None if malformed."""
    try:
        day = datetime.strptime(text.strip(), "%Y-%m-%d")
    except ValueError:
        return None
    return day.replace(hour=23, minute=59, second=59, tzinfo=UTC)
