"""Patient search for the console: by MRN (Patient ID, exact or prefix) or by name words, over
the Edge Server's index (patients named by stored images) and the RIS's open orders (patients
whose images have not arrived yet).

DICOM names are ``Family^Given^Middle`` (PS3.5 §6.2.1): every word typed must occur in the name,
in any order and any case, so "jane doe", "Doe" and "doe^jane" all find ``Doe^Jane``. ``%`` and
``_`` typed by the user are matched literally.

Public API::

    PatientHit (frozen dataclass)
    search_patients(engine, query, *, limit=50) -> list[PatientHit]
    display_name(pn) -> str
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Engine, and_, func, or_, select

from imaging_source import schema as t

__all__ = ["PatientHit", "display_name", "search_patients"]

_MAX_LIMIT: Final = 200
_WORDS: Final = re.compile(r"[^\s^,]+")


@dataclass(frozen=True, slots=True)
class PatientHit:
    patient_id: str
    issuer: str
    name: str
    birth_date: str
    sex: str
    studies: int
    enrolled: bool


def display_name(pn: str) -> str:
    """``Doe^Jane^M`` as ``DOE, Jane M`` (family name first, as on a worklist)."""
    parts = pn.split("=", 1)[0].split("^")
    family = parts[0].strip()
    given = " ".join(p.strip() for p in parts[1:3] if p.strip())
    if family and given:
        return f"{family.upper()}, {given}"
    return family.upper() or given


def _like(word: str) -> str:
    escaped = word.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_patients(engine: Engine, query: str, *, limit: int = 50) -> list[PatientHit]:
    """Patients whose MRN starts with ``query`` or whose name holds every word of it."""
    text = query.strip()[:128]
    if not text:
        return []
    limit = max(1, min(limit, _MAX_LIMIT))
    words = _WORDS.findall(text)
    mrn_prefix = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    by_name = and_(*[func.lower(t.patient.c.name).like(_like(w), escape="\\") for w in words]) if words else None
    condition = t.patient.c.patient_id.like(mrn_prefix, escape="\\")
    if by_name is not None:
        condition = or_(condition, by_name)
    studies = (
        select(func.count(t.study.c.id)).where(t.study.c.patient_ref == t.patient.c.id).correlate(t.patient).scalar_subquery()
    )
    enrolled = (
        select(t.grant.c.id)
        .where(t.grant.c.patient_id == t.patient.c.patient_id, t.grant.c.issuer == t.patient.c.issuer)
        .exists()
    )
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.patient, studies.label("studies"), enrolled.label("enrolled"))
            .where(condition)
            .order_by(t.patient.c.name, t.patient.c.patient_id)
            .limit(limit)
        ).all()
        hits = [
            PatientHit(r.patient_id, r.issuer, r.name, r.birth_date, r.sex, int(r.studies or 0), bool(r.enrolled))
            for r in rows
        ]
        if len(hits) < limit:
            # Patients known only from RIS orders (no images yet): by MRN only, orders carry no name.
            known = {(h.patient_id, h.issuer) for h in hits}
            orders = conn.execute(
                select(t.order.c.patient_id, t.order.c.issuer)
                .where(t.order.c.patient_id.like(mrn_prefix, escape="\\"), t.order.c.canceled.is_(False))
                .distinct()
                .order_by(t.order.c.patient_id)
                .limit(limit)
            ).all()
            for o in orders:
                if len(hits) >= limit:
                    break
                if (o.patient_id, o.issuer) in known or any(h.patient_id == o.patient_id for h in hits):
                    continue
                grant = conn.execute(
                    select(t.grant.c.id).where(t.grant.c.patient_id == o.patient_id, t.grant.c.issuer == o.issuer)
                ).first()
                hits.append(PatientHit(o.patient_id, o.issuer, "", "", "", 0, grant is not None))
    return hits
