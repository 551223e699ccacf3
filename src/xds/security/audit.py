"""The append-only audit log of the retrieval gates (DESIGN §4 "Abuse": every presentation and
every gated transaction is an audit record: who, what, when, outcome; PINs and codes never
appear in logs).

The repository and the Edge Server verify the consent token locally (no database call), so
their audit is a local file: one JSON object (RFC 8259) per line, UTF-8, with the fields

    time         UTC, ISO 8601 (``2026-11-29T04:50:00.123456+00:00``)
    actor        "repository" or "imaging-source"
    transaction  "ITI-43", "RAD-69" or "RAD-55"
    who          the verified assertion's subject (the grant id), or "anonymous"
    client       the client's address, or null
    outcome      "permitted", "partial", "refused-token" or "withheld-all"
    requested, returned, withheld   counts of documents / instances
    reason       the kind of refusal ("no-token", "tampered", "expired", ...), or null

Nothing of the request is copied in except the grant id and the counts: never a code, a PIN or
any part of the assertion.

What the writes rely on: the file is opened with ``O_APPEND`` and each record is one
``os.write`` of one complete line. POSIX write(2) makes the positioning at end-of-file and the
write one atomic step for ``O_APPEND`` on a local file system, so records of concurrent writers
(threads here, worker processes of the same deployment) never overwrite one another; a write to a
regular file is not split unless it is interrupted or the disk fills up, which this module
reports as an error rather than retrying the rest (a retry could interleave). Records are small
(a few hundred bytes, far below PIPE_BUF = 4096 on Linux). There is no user-space buffer: after
:meth:`AuditLog.record` returns the line is in the kernel's page cache (``fsync=True`` also
forces it to the disk). A lock serialises the threads of one process (and guards ``close``).

Public API::

    AuditLog(path, *, clock=utc_now, fsync=False)
        .record(*, actor, transaction, outcome, who=ANONYMOUS, client=None,
                requested=0, returned=0, withheld=0, reason=None) -> None
        .close() -> None
    Outcome, RefusalKind, ANONYMOUS
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Final

__all__ = ["ANONYMOUS", "AuditError", "AuditLog", "Outcome", "RefusalKind"]

#: ``who`` of a request without a verified assertion.
ANONYMOUS: Final = "anonymous"
#: Longest value kept of a free-text field (grant id, client address): records stay small.
_MAX_FIELD: Final = 200


class Outcome(StrEnum):
    """What the gate did with a request."""

    PERMITTED = "permitted"  # nothing withheld
    PARTIAL = "partial"  # some of it outside the scope, the rest answered
    REFUSED_TOKEN = "refused-token"  # no token, or one that must not be trusted
    WITHHELD_ALL = "withheld-all"  # a valid token, but nothing asked for is in its scope


class RefusalKind(StrEnum):
    """Why a token was refused (the fault's cause, never its content)."""

    NO_TOKEN = "no-token"
    MALFORMED_HEADER = "malformed-header"
    UNSUPPORTED_TOKEN = "unsupported-token"
    MALFORMED = "malformed"
    TAMPERED = "tampered"  # signature missing, altered, or by another key
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    WRONG_AUDIENCE = "wrong-audience"


class AuditError(OSError):
    """A record could not be written whole."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _short(value: str | None) -> str | None:
    return None if value is None else value[:_MAX_FIELD]


class AuditLog:
    """One JSON object per line appended to ``path`` (created 0600, its directory 0700)."""

    def __init__(self, path: Path, *, clock: Callable[[], datetime] = _utc_now, fsync: bool = False) -> None:
        self.path = Path(path)
        self.clock = clock
        self.fsync = fsync
        self._lock = threading.Lock()
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        # The mode applies when the file is created; the umask can only take bits away.
        self._fd: int | None = os.open(self.path, flags, 0o600)

    def record(
        self,
        *,
        actor: str,
        transaction: str,
        outcome: Outcome | str,
        who: str = ANONYMOUS,
        client: str | None = None,
        requested: int = 0,
        returned: int = 0,
        withheld: int = 0,
        reason: RefusalKind | str | None = None,
    ) -> None:
        """Append one record (see the module documentation for the fields)."""
        moment = self.clock()
        if moment.tzinfo is None:
            raise ValueError("the audit clock must be timezone-aware")
        entry = {
            "time": moment.astimezone(UTC).isoformat(),
            "actor": actor,
            "transaction": transaction,
            "who": _short(who) or ANONYMOUS,
            "client": _short(client),
            "outcome": str(outcome),
            "requested": int(requested),
            "returned": int(returned),
            "withheld": int(withheld),
            "reason": None if reason is None else str(reason),
        }
        # ensure_ascii: the line is plain ASCII, and no control character can break it in two.
        line = (json.dumps(entry, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")
        with self._lock:
            if self._fd is None:
                raise AuditError("the audit log is closed")
            written = os.write(self._fd, line)
            if written != len(line):
                raise AuditError(f"the audit record was written partially ({written} of {len(line)} bytes)")
            if self.fsync:
                os.fsync(self._fd)

    def close(self) -> None:
        """Close the file; later records raise :class:`AuditError`."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
