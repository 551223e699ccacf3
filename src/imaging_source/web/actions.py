"""The console's audit trail: what staff did, when, to which patient (``imaging_staff_action``).

Every state-changing console action and every look at a patient's jacket is one row. ``detail``
is free text for people (which exams, which policy, which job); it never holds a PIN or an
access code, and callers pass nothing of the kind.

Public API::

    StaffAction (StrEnum of action names), ActionRecord (frozen dataclass)
    StaffLog(engine, *, clock=time.time)
        .record(staff, action, *, patient_id="", issuer="", detail="") -> None
        .page(*, before_id=None, limit=50, patient_id=None, staff=None) -> list[ActionRecord]
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Engine, select

from imaging_source import schema as t

__all__ = ["ActionRecord", "StaffAction", "StaffLog"]

_MAX_DETAIL: Final = 2000
_MAX_PAGE: Final = 200


class StaffAction(enum.StrEnum):
    SIGN_IN = "sign-in"
    SIGN_IN_FAILED = "sign-in-failed"
    SIGN_OUT = "sign-out"
    VIEW_PATIENT = "view-patient"
    ENROL = "enrol"
    CODE_SHEET = "code-sheet"
    PIN_RESET = "pin-reset"
    REVOKE = "revoke"
    SHARE = "share"
    AUTOSEND_ON = "autosend-on"
    AUTOSEND_OFF = "autosend-off"
    RETRY = "retry"
    STAFF_ADD = "staff-add"
    STAFF_DISABLE = "staff-disable"
    STAFF_ENABLE = "staff-enable"


@dataclass(frozen=True, slots=True)
class ActionRecord:
    id: int
    at: float
    staff: str
    action: str
    patient_id: str
    issuer: str
    detail: str


class StaffLog:
    """Append and read the staff action table (already migrated)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    def record(self, staff: str, action: StaffAction, *, patient_id: str = "", issuer: str = "", detail: str = "") -> None:
        text = detail if len(detail) <= _MAX_DETAIL else detail[: _MAX_DETAIL - 3] + "..."
        with self.engine.begin() as conn:
            conn.execute(
                t.staff_action.insert().values(
                    at=self.clock(),
                    staff=staff[:64],
                    action=StaffAction(action).value,
                    patient_id=patient_id[:64],
                    issuer=issuer[:64],
                    detail=text,
                )
            )

    def page(
        self, *, before_id: int | None = None, limit: int = 50, patient_id: str | None = None, staff: str | None = None
    ) -> list[ActionRecord]:
        """Newest first, at most ``limit`` (capped) rows older than ``before_id``."""
        query = select(t.staff_action).order_by(t.staff_action.c.id.desc()).limit(max(1, min(limit, _MAX_PAGE)))
        if before_id is not None:
            query = query.where(t.staff_action.c.id < before_id)
        if patient_id:
            query = query.where(t.staff_action.c.patient_id == patient_id)
        if staff:
            query = query.where(t.staff_action.c.staff == staff)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [ActionRecord(int(r.id), r.at, r.staff, r.action, r.patient_id, r.issuer, r.detail) for r in rows]
