"""Reading the consent gate's audit log (JSON lines, :mod:`xds.security.audit`) for the console,
newest first, a page at a time, without ever reading the whole file.

The log only grows, and may be large. A page is read backwards from a byte offset (the end of the
file for the first page) in fixed blocks, stopping after ``limit`` records or after
``max_bytes`` scanned; the offset of the oldest line read is the cursor of the next page. A
torn or foreign line is skipped, not trusted.

Public API::

    GatedRetrieval (frozen dataclass)
    RetrievalPage (frozen dataclass: records, next_before)
    read_page(path, *, before=None, limit=50, max_bytes=1 MiB) -> RetrievalPage
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

__all__ = ["GatedRetrieval", "RetrievalPage", "read_page"]

_BLOCK: Final = 64 * 1024
_MAX_LINE: Final = 64 * 1024
_MAX_LIMIT: Final = 500


@dataclass(frozen=True, slots=True)
class GatedRetrieval:
    """One audit record of a gated retrieval (fields as :class:`xds.security.audit.AuditLog` writes)."""

    time: str
    actor: str
    transaction: str
    who: str
    client: str
    outcome: str
    requested: int
    returned: int
    withheld: int
    reason: str


@dataclass(frozen=True, slots=True)
class RetrievalPage:
    records: tuple[GatedRetrieval, ...]
    #: Byte offset to pass as ``before`` for the next (older) page; None at the start of the file.
    next_before: int | None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(value: Any) -> str:
    return value[:200] if isinstance(value, str) else ""


def _record(line: bytes) -> GatedRetrieval | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("time"), str):
        return None
    return GatedRetrieval(
        time=_text(data.get("time")),
        actor=_text(data.get("actor")),
        transaction=_text(data.get("transaction")),
        who=_text(data.get("who")),
        client=_text(data.get("client")),
        outcome=_text(data.get("outcome")),
        requested=_int(data.get("requested")),
        returned=_int(data.get("returned")),
        withheld=_int(data.get("withheld")),
        reason=_text(data.get("reason")),
    )


def read_page(path: Path | None, *, before: int | None = None, limit: int = 50, max_bytes: int = 1 << 20) -> RetrievalPage:
    """Up to ``limit`` records ending before byte ``before`` (None: the end), newest first."""
    limit = max(1, min(limit, _MAX_LIMIT))
    if path is None:
        return RetrievalPage((), None)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return RetrievalPage((), None)
    try:
        size = os.fstat(fd).st_size
        end = size if before is None else max(0, min(before, size))
        records: list[GatedRetrieval] = []
        carry = b""  # bytes of a line whose beginning lies further back
        position = end  # file offset of the first byte of ``carry``
        consumed = end  # offset of the oldest line looked at: the next page ends there
        scanned = 0
        while len(records) < limit and scanned < max_bytes and position > 0:
            step = min(_BLOCK, position)
            position -= step
            scanned += step
            data = os.pread(fd, step, position) + carry
            pieces = data.split(b"\n")
            # The first piece is whole only at the start of the file.
            whole = pieces if position == 0 else pieces[1:]
            carry = b"" if position == 0 else pieces[0]
            offset = position + len(data)
            for piece in reversed(whole):
                offset -= len(piece) + 1
                consumed = offset + 1  # where this line starts
                if piece.strip():
                    record = _record(piece) if len(piece) <= _MAX_LINE else None
                    if record is not None:
                        records.append(record)
                        if len(records) >= limit:
                            break
            if len(carry) > _MAX_LINE:
                consumed, carry = position, b""  # a runaway line: not one of ours, skipped
            if position == 0:
                break
        return RetrievalPage(tuple(records), consumed if consumed > 0 else None)
    finally:
        os.close(fd)
