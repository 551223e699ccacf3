"""Share jobs: one persisted job per shared exam, moving through named states with timestamps.

::

    queued -> waiting-for-report -> waiting-for-release -> retrieving -> building -> submitting -> done
                                   (any state but done) -> failed -> (manual retry) -> queued

As in the RSNA Edge Server (rsna-image-share §2.4), each state change is also written as an
event row, so a job's history can be shown; the job row holds the current state, when it was
entered, the attempt count, the next try, the release time and the last error.

A transient failure leaves the job in its state with ``next_attempt`` pushed back (exponential
back-off, computed by the caller); too many attempts, or a permanent failure, end in ``failed``,
from which :meth:`JobStore.retry` starts it again. The identities a submission needs (the
SubmissionSet uniqueId, the KOS SOP Instance UID, the report uniqueId) are kept on the row, so a
submission repeated after a crash carries the same uniqueIds (ITI TF-2b §3.42.4.1.3.5: the
registry refuses a second SubmissionSet with the same uniqueId, so a repeat cannot register
twice).

Claims use a lease (a conditional UPDATE on both SQLite and PostgreSQL), so several runners can
share one queue; a runner that died leaves a lease that simply expires.

Public API::

    JobState (StrEnum), ACTIVE_STATES, WAITING_STATES, WORK_STATES
    Job (frozen dataclass), JobEvent
    JobStore(engine, *, clock=time.time)
        .create(patient_id=, study_uid=, issuer="", accession="", policy=, autosend=False) -> Job
        .get(job_id) -> Job | None
        .list(*, states=None, patient_id=None, limit=500) -> list[Job]
        .for_study(study_uid) -> list[Job]
        .active_for_study(study_uid) -> Job | None
        .manifest_uids(study_uid) -> set[str]
        .due(*, limit=20) -> list[Job]
        .claim(job_id, *, lease_seconds) -> Job | None
        .release(job_id) -> None
        .transition(job_id, state, *, detail="", next_attempt=None, **fields) -> Job
        .update(job_id, **fields) -> Job
        .defer(job_id, *, error, next_attempt) -> Job      # a transient failure
        .fail(job_id, error) -> Job
        .retry(job_id) -> Job                               # manual retry
        .resume_interrupted() -> int                       # at start-up
        .events(job_id) -> list[JobEvent]
        .enable_autosend(patient_id, *, issuer="", policy) / .disable_autosend(...) / .autosend_patients()
        .unshared_studies(patient_id, *, issuer, since) -> list[tuple[str, str]]
    InvalidTransition(ValueError)
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Engine, and_, delete, or_, select, update

from imaging_source import schema as t
from imaging_source.release import ReleasePolicy

__all__ = [
    "ACTIVE_STATES",
    "WAITING_STATES",
    "WORK_STATES",
    "AutosendPatient",
    "InvalidTransition",
    "Job",
    "JobEvent",
    "JobState",
    "JobStore",
]

Clock = Callable[[], float]
_MAX_TEXT: Final = 2000


class JobState(enum.StrEnum):
    """The named states of a share job (rsna-image-share §2.4 status codes, by name)."""

    QUEUED = "queued"
    WAITING_REPORT = "waiting-for-report"
    WAITING_RELEASE = "waiting-for-release"
    RETRIEVING = "retrieving"
    BUILDING = "building"
    SUBMITTING = "submitting"
    DONE = "done"
    FAILED = "failed"


WAITING_STATES: Final = frozenset({JobState.QUEUED, JobState.WAITING_REPORT, JobState.WAITING_RELEASE})
WORK_STATES: Final = frozenset({JobState.RETRIEVING, JobState.BUILDING, JobState.SUBMITTING})
ACTIVE_STATES: Final = WAITING_STATES | WORK_STATES

#: Allowed transitions. Waiting states may be re-entered (a report changes), failure is always
#: possible, and a failed job may only go back to the start.
_NEXT: Final[Mapping[JobState, frozenset[JobState]]] = {
    JobState.QUEUED: frozenset({JobState.WAITING_REPORT, JobState.WAITING_RELEASE, JobState.RETRIEVING}),
    JobState.WAITING_REPORT: frozenset({JobState.WAITING_REPORT, JobState.WAITING_RELEASE, JobState.RETRIEVING}),
    JobState.WAITING_RELEASE: frozenset({JobState.WAITING_REPORT, JobState.WAITING_RELEASE, JobState.RETRIEVING}),
    JobState.RETRIEVING: frozenset({JobState.BUILDING}),
    JobState.BUILDING: frozenset({JobState.SUBMITTING}),
    JobState.SUBMITTING: frozenset({JobState.DONE}),
    JobState.DONE: frozenset(),
    JobState.FAILED: frozenset({JobState.QUEUED}),
}


class InvalidTransition(ValueError):
    """A state change the job's state machine does not allow."""


@dataclass(frozen=True, slots=True)
class Job:
    """One shared exam and where its sending stands."""

    id: int
    patient_id: str
    issuer: str
    study_uid: str
    accession: str
    policy: ReleasePolicy
    state: JobState
    state_since: float
    created: float
    attempts: int
    next_attempt: float | None
    lease_until: float | None
    release_time: float | None
    last_error: str
    autosend: bool
    submission_uid: str | None
    kos_uid: str | None
    report_uid: str | None
    report_mime: str | None
    submitted: float | None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One state change of a job, with its time and what happened."""

    state: JobState
    at: float
    detail: str


@dataclass(frozen=True, slots=True)
class AutosendPatient:
    """A patient whose future exams are shared as they arrive (rsna-image-share §2.5, v5 autosend)."""

    patient_id: str
    issuer: str
    policy: ReleasePolicy
    since: float


def _job(row: Any) -> Job:
    return Job(
        id=int(row.id),
        patient_id=row.patient_id,
        issuer=row.issuer,
        study_uid=row.study_uid,
        accession=row.accession,
        policy=ReleasePolicy(row.policy),
        state=JobState(row.state),
        state_since=row.state_since,
        created=row.created,
        attempts=int(row.attempts),
        next_attempt=row.next_attempt,
        lease_until=row.lease_until,
        release_time=row.release_time,
        last_error=row.last_error,
        autosend=bool(row.autosend),
        submission_uid=row.submission_uid,
        kos_uid=row.kos_uid,
        report_uid=row.report_uid,
        report_mime=row.report_mime,
        submitted=row.submitted,
    )


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."


# Columns a caller may set through transition()/update().
_SETTABLE: Final = frozenset(
    {"release_time", "submission_uid", "kos_uid", "report_uid", "report_mime", "submitted", "accession", "last_error"}
)


class JobStore:
    """The job table of the Edge Server's index (already migrated)."""

    def __init__(self, engine: Engine, *, clock: Clock = time.time) -> None:
        self.engine = engine
        self.clock = clock

    # -- creation and lookups ------------------------------------------------------------------
    def create(
        self,
        *,
        patient_id: str,
        study_uid: str,
        policy: ReleasePolicy,
        issuer: str = "",
        accession: str = "",
        autosend: bool = False,
    ) -> Job:
        """Queue a share of one exam; an exam with an active job keeps that job (returned)."""
        if not patient_id or not study_uid:
            raise ValueError("a share job needs a patient ID and a Study Instance UID")
        now = self.clock()
        with self.engine.begin() as conn:
            existing = conn.execute(
                select(t.job)
                .where(t.job.c.study_uid == study_uid, t.job.c.state.in_([s.value for s in ACTIVE_STATES]))
                .order_by(t.job.c.id)
            ).first()
            if existing is not None:
                return _job(existing)
            job_id = conn.execute(
                t.job.insert().values(
                    patient_id=patient_id,
                    issuer=issuer,
                    study_uid=study_uid,
                    accession=accession,
                    policy=ReleasePolicy(policy).value,
                    state=JobState.QUEUED.value,
                    state_since=now,
                    created=now,
                    attempts=0,
                    next_attempt=now,
                    last_error="",
                    autosend=autosend,
                )
            ).inserted_primary_key[0]
            conn.execute(t.job_event.insert().values(job_ref=job_id, state=JobState.QUEUED.value, at=now, detail=f"shared ({policy})"))
            row = conn.execute(select(t.job).where(t.job.c.id == job_id)).one()
        return _job(row)

    def get(self, job_id: int) -> Job | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.job).where(t.job.c.id == job_id)).first()
        return _job(row) if row is not None else None

    def _must(self, conn: Any, job_id: int) -> Any:
        row = conn.execute(select(t.job).where(t.job.c.id == job_id)).first()
        if row is None:
            raise LookupError(f"no job {job_id}")
        return row

    def list(
        self, *, states: Iterable[JobState] | None = None, patient_id: str | None = None, limit: int = 500
    ) -> list[Job]:
        """Jobs, newest first."""
        query = select(t.job).order_by(t.job.c.id.desc()).limit(limit)
        if states is not None:
            query = query.where(t.job.c.state.in_([JobState(s).value for s in states]))
        if patient_id is not None:
            query = query.where(t.job.c.patient_id == patient_id)
        with self.engine.connect() as conn:
            return [_job(row) for row in conn.execute(query)]

    def for_study(self, study_uid: str) -> list[Job]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.job).where(t.job.c.study_uid == study_uid).order_by(t.job.c.id)).all()
        return [_job(row) for row in rows]

    def active_for_study(self, study_uid: str) -> Job | None:
        return next((j for j in self.for_study(study_uid) if j.active), None)

    def reportless_done(self, *, since: float, limit: int = 200) -> list[Job]:
        """Done jobs that registered a manifest without a report, done at ``since`` or later,
        each the newest job of its study (an exam shared *immediately* before its report was
        final, not yet followed up), newest first."""
        newer = t.job.alias("newer")
        query = (
            select(t.job)
            .where(
                t.job.c.state == JobState.DONE.value,
                t.job.c.report_uid.is_(None),
                t.job.c.state_since >= since,
                ~select(newer.c.id).where(newer.c.study_uid == t.job.c.study_uid, newer.c.id > t.job.c.id).exists(),
            )
            .order_by(t.job.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_job(row) for row in conn.execute(query)]

    def manifest_uids(self, study_uid: str) -> set[str]:
        """The KOS SOP Instance UIDs this Edge Server made for a study (kept out of new manifests)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.job.c.kos_uid).where(t.job.c.study_uid == study_uid, t.job.c.kos_uid.is_not(None))
            ).scalars()
            return {uid for uid in rows if uid}

    def events(self, job_id: int) -> list[JobEvent]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.job_event).where(t.job_event.c.job_ref == job_id).order_by(t.job_event.c.id)
            ).all()
        return [JobEvent(JobState(r.state), r.at, r.detail) for r in rows]

    # -- the queue -------------------------------------------------------------------------------
    def due(self, *, limit: int = 20) -> list[Job]:
        """Active jobs whose next try has come and that nobody holds, oldest try first."""
        now = self.clock()
        query = (
            select(t.job)
            .where(
                t.job.c.state.in_([s.value for s in ACTIVE_STATES]),
                or_(t.job.c.next_attempt.is_(None), t.job.c.next_attempt <= now),
                or_(t.job.c.lease_until.is_(None), t.job.c.lease_until <= now),
            )
            .order_by(t.job.c.next_attempt, t.job.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_job(row) for row in conn.execute(query)]

    def claim(self, job_id: int, *, lease_seconds: float) -> Job | None:
        """Take a due job for ``lease_seconds`` (None when another runner holds it)."""
        now = self.clock()
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(t.job)
                .where(
                    t.job.c.id == job_id,
                    t.job.c.state.in_([s.value for s in ACTIVE_STATES]),
                    or_(t.job.c.lease_until.is_(None), t.job.c.lease_until <= now),
                )
                .values(lease_until=now + lease_seconds)
            ).rowcount
            if not taken:
                return None
            return _job(self._must(conn, job_id))

    def release(self, job_id: int) -> None:
        """Give up a claim (the job stays where it is)."""
        with self.engine.begin() as conn:
            conn.execute(update(t.job).where(t.job.c.id == job_id).values(lease_until=None))

    # -- changes ---------------------------------------------------------------------------------
    def _event(self, conn: Any, job_id: int, state: JobState, at: float, detail: str) -> None:
        conn.execute(t.job_event.insert().values(job_ref=job_id, state=state.value, at=at, detail=_clip(detail)))

    def transition(
        self,
        job_id: int,
        state: JobState,
        *,
        detail: str = "",
        next_attempt: float | None = None,
        **fields: Any,
    ) -> Job:
        """Move a job to ``state`` (checked against the state machine), note the event, and set
        ``fields``; ``next_attempt`` None means "now". Entering a new state resets the attempts."""
        unknown = set(fields) - _SETTABLE
        if unknown:
            raise TypeError(f"cannot set {', '.join(sorted(unknown))} on a job")
        now = self.clock()
        with self.engine.begin() as conn:
            row = self._must(conn, job_id)
            current = JobState(row.state)
            if state not in _NEXT[current]:
                raise InvalidTransition(f"job {job_id}: {current} -> {state} is not allowed")
            values: dict[str, Any] = dict(fields)
            values["state"] = state.value
            values["next_attempt"] = None if state in (JobState.DONE, JobState.FAILED) else (
                now if next_attempt is None else next_attempt
            )
            if state != current:
                values["state_since"] = now
                values["attempts"] = 0
                values.setdefault("last_error", "")
            conn.execute(update(t.job).where(t.job.c.id == job_id).values(**values))
            if state != current or detail:
                self._event(conn, job_id, state, now, detail)
            return _job(self._must(conn, job_id))

    def update(self, job_id: int, **fields: Any) -> Job:
        """Set recorded values (identities, release time) without a state change."""
        unknown = set(fields) - _SETTABLE
        if unknown:
            raise TypeError(f"cannot set {', '.join(sorted(unknown))} on a job")
        with self.engine.begin() as conn:
            conn.execute(update(t.job).where(t.job.c.id == job_id).values(**fields))
            return _job(self._must(conn, job_id))

    def defer(self, job_id: int, *, error: str, next_attempt: float) -> Job:
        """A transient failure: one more attempt counted, the error kept, the next try set; the
        job stays in its state (and its lease is given up)."""
        now = self.clock()
        with self.engine.begin() as conn:
            row = self._must(conn, job_id)
            conn.execute(
                update(t.job)
                .where(t.job.c.id == job_id)
                .values(attempts=t.job.c.attempts + 1, last_error=_clip(error), next_attempt=next_attempt, lease_until=None)
            )
            self._event(conn, job_id, JobState(row.state), now, f"attempt failed: {error}")
            return _job(self._must(conn, job_id))

    def fail(self, job_id: int, error: str) -> Job:
        """End a job in ``failed`` (from any state but done)."""
        now = self.clock()
        with self.engine.begin() as conn:
            row = self._must(conn, job_id)
            if JobState(row.state) is JobState.DONE:
                raise InvalidTransition(f"job {job_id} is done")
            conn.execute(
                update(t.job)
                .where(t.job.c.id == job_id)
                .values(
                    state=JobState.FAILED.value,
                    state_since=now,
                    last_error=_clip(error),
                    next_attempt=None,
                    lease_until=None,
                    attempts=t.job.c.attempts + 1,
                )
            )
            self._event(conn, job_id, JobState.FAILED, now, error)
            return _job(self._must(conn, job_id))

    def retry(self, job_id: int) -> Job:
        """Manual retry (rsna-image-share §4.9): a failed job starts again from ``queued`` (its
        identities kept, so nothing already registered is registered twice); an active job is
        made due now with its attempts reset."""
        now = self.clock()
        with self.engine.begin() as conn:
            row = self._must(conn, job_id)
            state = JobState(row.state)
            if state is JobState.DONE:
                raise InvalidTransition(f"job {job_id} is done; share the exam again to send it again")
            values: dict[str, Any] = {"attempts": 0, "next_attempt": now, "lease_until": None}
            if state is JobState.FAILED:
                values.update(state=JobState.QUEUED.value, state_since=now)
                state = JobState.QUEUED
            conn.execute(update(t.job).where(t.job.c.id == job_id).values(**values))
            self._event(conn, job_id, state, now, "manual retry")
            return _job(self._must(conn, job_id))

    def resume_interrupted(self) -> int:
        """At start-up: drop the leases of jobs a stopped runner held, and make jobs caught in a
        working state due now (each step is idempotent). The number of jobs resumed."""
        now = self.clock()
        with self.engine.begin() as conn:
            resumed = conn.execute(
                update(t.job)
                .where(t.job.c.state.in_([s.value for s in WORK_STATES]))
                .values(lease_until=None, next_attempt=now)
            ).rowcount
            conn.execute(
                update(t.job)
                .where(t.job.c.state.in_([s.value for s in WAITING_STATES]), t.job.c.lease_until.is_not(None))
                .values(lease_until=None)
            )
        return int(resumed or 0)

    # -- autosend ----------------------------------------------------------------------------------
    def enable_autosend(self, patient_id: str, *, issuer: str = "", policy: ReleasePolicy) -> AutosendPatient:
        """Share every exam of the patient stored from now on (rsna-image-share §2.5, autosend)."""
        now = self.clock()
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(t.autosend)
                .where(t.autosend.c.patient_id == patient_id, t.autosend.c.issuer == issuer)
                .values(policy=ReleasePolicy(policy).value)
            ).rowcount
            if not changed:
                conn.execute(
                    t.autosend.insert().values(patient_id=patient_id, issuer=issuer, policy=ReleasePolicy(policy).value, since=now)
                )
            row = conn.execute(
                select(t.autosend).where(t.autosend.c.patient_id == patient_id, t.autosend.c.issuer == issuer)
            ).one()
        return AutosendPatient(row.patient_id, row.issuer, ReleasePolicy(row.policy), row.since)

    def disable_autosend(self, patient_id: str, *, issuer: str = "") -> bool:
        with self.engine.begin() as conn:
            return bool(
                conn.execute(
                    delete(t.autosend).where(t.autosend.c.patient_id == patient_id, t.autosend.c.issuer == issuer)
                ).rowcount
            )

    def autosend_patients(self) -> list[AutosendPatient]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.autosend).order_by(t.autosend.c.id)).all()
        return [AutosendPatient(r.patient_id, r.issuer, ReleasePolicy(r.policy), r.since) for r in rows]

    def unshared_studies(self, patient_id: str, *, issuer: str, since: float) -> list[tuple[str, str]]:
        """(Study Instance UID, accession) of the patient's studies first stored at or after
        ``since`` that have no job yet."""
        has_job = select(t.job.c.id).where(t.job.c.study_uid == t.study.c.study_uid).exists()
        query = (
            select(t.study.c.study_uid, t.study.c.accession)
            .select_from(t.study.join(t.patient))
            .where(
                and_(t.patient.c.patient_id == patient_id, t.patient.c.issuer == issuer),
                t.study.c.created >= since,
                ~has_job,
            )
            .order_by(t.study.c.id)
        )
        with self.engine.connect() as conn:
            return [(r.study_uid, r.accession) for r in conn.execute(query)]
