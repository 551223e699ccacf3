"""Patients known to the registry (ITI TF-2a §3.8.4: the Patient Identity Feed).

Implements the feed's sink: add or update a patient, merge a subsumed ID into a surviving one.
A merged ID is no longer known: new submissions under it get XDSUnknownPatientId, and its objects
answer under the surviving ID.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, bindparam, insert, select, update

from registry.patients import Patient
from registry.store import objects
from registry.store import schema as t

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# Built once: every ITI-42 asks it (constructing the Select per call costs more than running it).
_MERGED_INTO = select(t.patient.c.merged_into).where(t.patient.c.patient_id == bindparam("pid"))


class PatientStore:
    """The registry's patient table; the ITI-8 feed and ``xds registry patient add`` write it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def is_known(self, patient_id: str) -> bool:
        with self.engine.connect() as conn:
            return self.is_known_with(conn, patient_id)

    @staticmethod
    def is_known_with(conn: Connection, patient_id: str) -> bool:
        row = conn.execute(_MERGED_INTO, {"pid": patient_id}).first()
        return row is not None and row.merged_into is None

    def add_or_update(self, patient: Patient) -> bool:
        """Create or update a patient; True when it was created. An already known patient is a
        success (ITI TF-2a §3.8.4.1.3)."""
        p = t.patient
        values = {
            "family_name": patient.family_name,
            "given_name": patient.given_name,
            "birth_date": patient.birth_date,
            "sex": patient.sex,
            "updated": _now(),
        }
        with self.engine.begin() as conn:
            exists = conn.execute(select(p.c.id).where(p.c.patient_id == patient.patient_id)).first()
            if exists:
                conn.execute(update(p).where(p.c.id == exists.id).values(**values, merged_into=None))
                return False
            conn.execute(insert(p).values(patient_id=patient.patient_id, **values))
            return True

    def merge(self, *, surviving_id: str, merged_id: str) -> None:
        """ITI-8 A40: the merged ID's objects now answer under the surviving ID."""
        p = t.patient
        with self.engine.begin() as conn:
            if conn.execute(select(p.c.id).where(p.c.patient_id == surviving_id)).first() is None:
                conn.execute(insert(p).values(patient_id=surviving_id, updated=_now()))
            row = conn.execute(select(p.c.id).where(p.c.patient_id == merged_id)).first()
            if row is None:
                conn.execute(insert(p).values(patient_id=merged_id, merged_into=surviving_id, updated=_now()))
            else:
                conn.execute(update(p).where(p.c.id == row.id).values(merged_into=surviving_id, updated=_now()))
            moved = objects.rewrite_patient_id(conn, old=merged_id, new=surviving_id)
            # Earlier merges into the now-merged ID follow it to the survivor.
            conn.execute(update(p).where(p.c.merged_into == merged_id).values(merged_into=surviving_id))
        log.info("ITI-8 merge: %d objects moved to the surviving patient", moved)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return len(conn.execute(select(t.patient.c.id).where(t.patient.c.merged_into.is_(None))).all())
