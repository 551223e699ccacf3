"""The Edge Server's report book: the RIS's reports and orders, keyed by accession number.

rsna-image-share §2.13: RSNA kept one ``reports`` row per status change and read the latest. Here
``imaging_report`` holds the newest version of each accession's report (with a version counter)
and ``imaging_report_version`` every version received, applied or not; ``imaging_order`` holds
each order's latest state. Keying by accession lets a report arrive before or after its images.

Out-of-order safety: a version whose status time (OBR-22) is older than the stored one is kept in
the history but does not replace the newer report; the same holds for orders and ORC-9. When
either time is unknown, the later arrival wins. Every write starts with a write statement, so on
SQLite the transaction takes the write lock at once (no stale-snapshot upgrade failures) and on
PostgreSQL the row lock of the UPDATE orders concurrent writers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, false, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from imaging_source import schema as t
from imaging_source.model import ExamReport
from imaging_source.ris import CANCELED_RESULT_STATUS, FINAL_STATUSES, NEW_ORDER, OrderEvent, ReportEvent

_IN_CHUNK = 500


@dataclass(frozen=True, slots=True)
class ExamOrder:
    """The latest state of one RIS order (ORM^O01), keyed by accession number."""

    accession: str
    patient_id: str
    issuer: str
    placer_number: str
    procedure_code: str
    procedure_scheme: str
    procedure_meaning: str
    order_control: str  # ORC-1 of the last applied message
    order_status: str  # ORC-5
    canceled: bool
    transaction_time: float | None
    scheduled_time: float | None
    created: float
    updated: float


def _insert(engine: Engine) -> Callable[..., Any]:
    if engine.dialect.name == "sqlite":
        return sqlite.insert
    if engine.dialect.name == "postgresql":
        return postgresql.insert
    raise ValueError(f"the report book supports SQLite and PostgreSQL, not {engine.dialect.name}")


def _not_older(column: Any, new_time: float | None) -> Any:
    """SQL: the stored time is unknown, the new one is unknown, or the new one is not older."""
    if new_time is None:
        return true()
    return or_(column.is_(None), column <= new_time)


def _patient_filter(table: Any, patient_id: str, issuer: str | None) -> Any:
    where = table.c.patient_id == patient_id
    if issuer is not None:
        where = and_(where, table.c.issuer == issuer)
    return where


class ReportBook:
    """Stores ORU/ORM events and answers "what is the latest word on this exam?"."""

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self._clock = clock
        self._insert = _insert(engine)

    # -- writing ----------------------------------------------------------------------------------
    def record_report(self, event: ReportEvent) -> ExamReport:
        """Store one report version; return the exam's latest report (which may be a newer one)."""
        now = self._clock()
        values = {
            "patient_id": event.patient_id,
            "issuer": event.issuer,
            "status": event.status,
            "final": event.status in FINAL_STATUSES,
            "text": event.text,
            "status_time": event.status_time,
            "received": now,
            "message_id": event.message_id[:64],
            "procedure_code": event.procedure.code[:64],
            "procedure_scheme": event.procedure.scheme[:64],
            "procedure_meaning": event.procedure.meaning[:200],
        }
        with self.engine.begin() as conn:
            applied = self._apply_report(conn, event, values)
            conn.execute(
                t.report_version.insert().values(
                    accession=event.accession,
                    patient_id=event.patient_id,
                    issuer=event.issuer,
                    status=event.status,
                    text=event.text,
                    status_time=event.status_time,
                    received=now,
                    message_id=event.message_id[:64],
                    applied=applied,
                )
            )
            found = self._reports(conn, t.report.c.accession == event.accession)
        return found[0]

    def _apply_report(self, conn: Connection, event: ReportEvent, values: dict[str, Any]) -> bool:
        changes = dict(values, version=t.report.c.version + 1)
        if event.study_uid:
            changes["study_uid"] = event.study_uid[:64]
        guarded = update(t.report).where(
            t.report.c.accession == event.accession, _not_older(t.report.c.status_time, event.status_time)
        )
        if conn.execute(guarded.values(**changes)).rowcount:
            return True
        inserted = conn.execute(
            self._insert(t.report)
            .values(accession=event.accession, version=1, study_uid=event.study_uid[:64], **values)
            .on_conflict_do_nothing(index_elements=["accession"])
            .returning(t.report.c.id)
        ).first()
        if inserted is not None:  # (rowcount is -1 on PostgreSQL with RETURNING)
            return True
        # A row exists (or appeared concurrently): apply only if not older than it.
        return bool(conn.execute(guarded.values(**changes)).rowcount)

    def record_order(self, event: OrderEvent) -> ExamOrder:
        """Store one order message (new, changed, status, canceled); return the order's state."""
        now = self._clock()
        values: dict[str, Any] = {
            "patient_id": event.patient_id,
            "issuer": event.issuer,
            "order_control": event.control,
            "order_status": event.order_status,
            "transaction_time": event.transaction_time,
            "updated": now,
        }
        if event.placer_number:
            values["placer_number"] = event.placer_number[:64]
        if event.procedure.code or event.procedure.meaning:
            values["procedure_code"] = event.procedure.code[:64]
            values["procedure_scheme"] = event.procedure.scheme[:64]
            values["procedure_meaning"] = event.procedure.meaning[:200]
        if event.scheduled_time is not None:
            values["scheduled_time"] = event.scheduled_time
        # HL7 table 0119: a cancellation sticks until a new order (NW) for the accession revives it.
        changes = dict(values)
        if event.canceled:
            changes["canceled"] = True
        elif event.control == NEW_ORDER:
            changes["canceled"] = False
        with self.engine.begin() as conn:
            guarded = update(t.order).where(
                t.order.c.accession == event.accession, _not_older(t.order.c.transaction_time, event.transaction_time)
            )
            if not conn.execute(guarded.values(**changes)).rowcount:
                inserted = conn.execute(
                    self._insert(t.order)
                    .values(accession=event.accession, canceled=event.canceled, created=now, **values)
                    .on_conflict_do_nothing(index_elements=["accession"])
                    .returning(t.order.c.id)
                ).first()
                if inserted is None:
                    conn.execute(guarded.values(**changes))
            row = conn.execute(select(t.order).where(t.order.c.accession == event.accession)).one()
        return _order(row)

    # -- reading ----------------------------------------------------------------------------------
    def _reports(self, conn: Connection, where: Any) -> list[ExamReport]:
        """Reports joined with their order's cancellation, newest status first."""
        rows = conn.execute(
            select(t.report, t.order.c.canceled.label("order_canceled"))
            .select_from(t.report.outerjoin(t.order, t.order.c.accession == t.report.c.accession))
            .where(where)
            .order_by(t.report.c.status_time.desc().nulls_last(), t.report.c.accession)
        ).all()
        return [_report(row) for row in rows]

    def report(self, accession: str) -> ExamReport | None:
        """The latest report of an exam; an exam canceled by ORM without a report yields a
        report with ``canceled=True`` and empty status; None when nothing is known or only an
        open order."""
        with self.engine.connect() as conn:
            found = self._reports(conn, t.report.c.accession == accession)
            if found:
                return found[0]
            row = conn.execute(select(t.order).where(t.order.c.accession == accession, t.order.c.canceled)).first()
        return _canceled_order_report(row) if row is not None else None

    def reports(self, accessions: Iterable[str]) -> dict[str, ExamReport]:
        """:meth:`report` for many accessions at once (accessions without a report are absent)."""
        wanted = sorted(set(a for a in accessions if a))
        out: dict[str, ExamReport] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start : start + _IN_CHUNK]
                for found in self._reports(conn, t.report.c.accession.in_(chunk)):
                    out[found.accession] = found
                rest = [a for a in chunk if a not in out]
                if rest:
                    for row in conn.execute(
                        select(t.order).where(t.order.c.accession.in_(rest), t.order.c.canceled)
                    ):
                        out[row.accession] = _canceled_order_report(row)
        return out

    def for_patient(self, patient_id: str, issuer: str | None = None) -> list[ExamReport]:
        """Every exam report of a patient (and each ORM-canceled exam), newest status first.

        ``issuer`` None matches the Patient ID under any assigning authority."""
        with self.engine.connect() as conn:
            found = self._reports(conn, _patient_filter(t.report, patient_id, issuer))
            known = {r.accession for r in found}
            rows = conn.execute(
                select(t.order).where(_patient_filter(t.order, patient_id, issuer), t.order.c.canceled)
            ).all()
        found += [_canceled_order_report(row) for row in rows if row.accession not in known]
        return found

    def canceled_accessions(self, patient_id: str, issuer: str | None = None) -> set[str]:
        """Accessions of the patient's canceled exams (ORM cancellation, or result status X)."""
        with self.engine.connect() as conn:
            ordered = conn.execute(
                select(t.order.c.accession).where(_patient_filter(t.order, patient_id, issuer), t.order.c.canceled)
            ).scalars()
            reported = conn.execute(
                select(t.report.c.accession).where(
                    _patient_filter(t.report, patient_id, issuer), t.report.c.status == CANCELED_RESULT_STATUS
                )
            ).scalars()
            return set(ordered) | set(reported)

    def order(self, accession: str) -> ExamOrder | None:
        """The latest state of one order."""
        with self.engine.connect() as conn:
            row = conn.execute(select(t.order).where(t.order.c.accession == accession)).first()
        return _order(row) if row is not None else None

    def orders_for_patient(self, patient_id: str, issuer: str | None = None, *, include_canceled: bool = False) -> list[ExamOrder]:
        """A patient's orders, newest first (canceled ones only when asked)."""
        where = _patient_filter(t.order, patient_id, issuer)
        if not include_canceled:
            where = and_(where, t.order.c.canceled == false())
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.order).where(where).order_by(
                    t.order.c.scheduled_time.desc().nulls_last(), t.order.c.created.desc(), t.order.c.accession
                )
            ).all()
        return [_order(row) for row in rows]

    def history(self, accession: str) -> list[tuple[str, float | None, bool]]:
        """Every version received for an accession: (status, status time, applied), in arrival order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.report_version.c.status, t.report_version.c.status_time, t.report_version.c.applied)
                .where(t.report_version.c.accession == accession)
                .order_by(t.report_version.c.id)
            ).all()
        return [(r.status, r.status_time, bool(r.applied)) for r in rows]


def _report(row: Any) -> ExamReport:
    return ExamReport(
        accession=row.accession,
        patient_id=row.patient_id,
        issuer=row.issuer,
        status=row.status,
        final=bool(row.final),
        text=row.text,
        status_time=row.status_time,
        received=row.received,
        canceled=bool(row.order_canceled) or row.status == CANCELED_RESULT_STATUS,
        study_uid=row.study_uid,
        procedure_code=row.procedure_code,
        procedure_scheme=row.procedure_scheme,
        procedure_meaning=row.procedure_meaning,
    )


def _canceled_order_report(row: Any) -> ExamReport:
    return ExamReport(
        accession=row.accession,
        patient_id=row.patient_id,
        issuer=row.issuer,
        status="",
        final=False,
        text="",
        status_time=row.transaction_time,
        received=row.updated,
        canceled=True,
        procedure_code=row.procedure_code,
        procedure_scheme=row.procedure_scheme,
        procedure_meaning=row.procedure_meaning,
    )


def _order(row: Any) -> ExamOrder:
    return ExamOrder(
        accession=row.accession,
        patient_id=row.patient_id,
        issuer=row.issuer,
        placer_number=row.placer_number,
        procedure_code=row.procedure_code,
        procedure_scheme=row.procedure_scheme,
        procedure_meaning=row.procedure_meaning,
        order_control=row.order_control,
        order_status=row.order_status,
        canceled=bool(row.canceled),
        transaction_time=row.transaction_time,
        scheduled_time=row.scheduled_time,
        created=row.created,
        updated=row.updated,
    )
