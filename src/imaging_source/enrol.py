"""Patient enrolment at the Edge Server (DESIGN §4): a consent grant in the registry per patient,
its code sheet, PIN resets and revocation, and the sync that puts each shared exam on the grant.

The registry keeps the grant (the access code and the PIN only as hashes); the Edge Server keeps
which grant is whose (``imaging_grant``: MRN + issuer -> grant id), never the code or the PIN. The
code is returned once, for the screen and the printed sheet.

Grant sync: when a share job is done (manifest and report registered), :meth:`GrantSync.job_done`
puts the exam (study UID, manifest uniqueId, report uniqueIds, release time) on the patient's
grant. The job stays done whatever the grant API does: the exam is first recorded as pending
(``imaging_grant_pending``), and an unreachable registry leaves it there for
:meth:`GrantSync.retry_pending`, which the job runner calls every round (exponential back-off);
a refusal (grant revoked or gone) is recorded and not retried. Exams shared before the patient
enrolled are put on the grant at enrolment.

Public API::

    EdgeGrant (frozen dataclass), PendingSync (frozen dataclass)
    GrantBook(engine, *, clock=time.time)
        .get(patient_id, *, issuer="") -> EdgeGrant | None
        .record(patient_id, *, issuer="", grant_id, affinity_patient_id, expires) -> EdgeGrant
        .forget(patient_id, *, issuer="") -> bool
        .mark_pending(job_id) / .pending(job_id) -> PendingSync | None / .pending_due(*, limit=50)
        .settle(job_id) / .postpone(job_id, *, error, next_attempt)
    Enrolment(client, book, jobs, mapping, *, clock=time.time)
        .enrol(patient_id, *, issuer="", pin, expires, replace=False) -> IssuedGrant   # pin None: PIN pending
        .reset_pin(patient_id, *, issuer="", pin) -> EdgeGrant
        .revoke(patient_id, *, issuer="") -> int
    GrantSync(client, book, jobs, *, clock=time.time, retry_base_seconds=60.0, retry_max_seconds=3600.0)
        .job_done(job) / .retry_pending() -> int / .sync(job) -> bool
    exam_of(job) -> ExamOnGrant
    code_sheet_pdf(*, access_code_display, patient_label, expires, release_delay_hours, portal_url) -> bytes
    AlreadyEnrolled, NotEnrolled (LookupError)
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Engine, delete, select, update

from imaging_source import schema as t
from imaging_source.grant_client import (
    ExamOnGrant,
    GrantApiError,
    GrantApiRefused,
    GrantApiUnavailable,
    GrantClient,
    GrantNotFound,
    IssuedGrant,
)
from imaging_source.jobs import Job, JobState, JobStore
from imaging_source.rad68 import PatientMapping
from imaging_source.report_document import text_pdf
from xds.security.pin import check_pin

__all__ = [
    "AlreadyEnrolled",
    "EdgeGrant",
    "Enrolment",
    "GrantBook",
    "GrantSync",
    "NotEnrolled",
    "PendingSync",
    "code_sheet_pdf",
    "exam_of",
]

log = logging.getLogger(__name__)

Clock = Callable[[], float]
_MAX_TEXT: Final = 2000


class AlreadyEnrolled(ValueError):
    """The patient has a grant; re-enrol with ``replace`` to revoke it and issue a new one."""


class NotEnrolled(LookupError):
    """The patient has no grant recorded here."""


@dataclass(frozen=True, slots=True)
class EdgeGrant:
    """Which registry grant belongs to which department patient."""

    patient_id: str
    issuer: str
    grant_id: str
    affinity_patient_id: str
    expires: float | None
    created: float


@dataclass(frozen=True, slots=True)
class PendingSync:
    """A done job whose exam is not on the grant yet; ``next_attempt`` None = given up."""

    job_id: int
    attempts: int
    next_attempt: float | None
    last_error: str


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."


def _grant(row: Any) -> EdgeGrant:
    return EdgeGrant(row.patient_id, row.issuer, row.grant_id, row.affinity_patient_id, row.expires, row.created)


def _pending(row: Any) -> PendingSync:
    return PendingSync(int(row.job_ref), int(row.attempts), row.next_attempt, row.last_error)


class GrantBook:
    """The Edge Server's grant table and pending-sync table (already migrated)."""

    def __init__(self, engine: Engine, *, clock: Clock = time.time) -> None:
        self.engine = engine
        self.clock = clock

    # -- MRN -> grant ----------------------------------------------------------------------------
    def get(self, patient_id: str, *, issuer: str = "") -> EdgeGrant | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.grant).where(t.grant.c.patient_id == patient_id, t.grant.c.issuer == issuer)
            ).first()
        return _grant(row) if row is not None else None

    def record(
        self, patient_id: str, *, issuer: str = "", grant_id: str, affinity_patient_id: str, expires: float | None
    ) -> EdgeGrant:
        """Remember the patient's grant (replacing an earlier one)."""
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(delete(t.grant).where(t.grant.c.patient_id == patient_id, t.grant.c.issuer == issuer))
            conn.execute(
                t.grant.insert().values(
                    patient_id=patient_id,
                    issuer=issuer,
                    grant_id=grant_id,
                    affinity_patient_id=affinity_patient_id,
                    expires=expires,
                    created=now,
                )
            )
        return EdgeGrant(patient_id, issuer, grant_id, affinity_patient_id, expires, now)

    def forget(self, patient_id: str, *, issuer: str = "") -> bool:
        with self.engine.begin() as conn:
            gone = conn.execute(delete(t.grant).where(t.grant.c.patient_id == patient_id, t.grant.c.issuer == issuer))
        return bool(gone.rowcount)

    # -- pending sync ----------------------------------------------------------------------------
    def mark_pending(self, job_id: int) -> None:
        """Record that the job's exam must be put on the grant (idempotent)."""
        now = self.clock()
        with self.engine.begin() as conn:
            exists = conn.execute(select(t.grant_pending.c.id).where(t.grant_pending.c.job_ref == job_id)).first()
            if exists is None:
                conn.execute(
                    t.grant_pending.insert().values(job_ref=job_id, attempts=0, next_attempt=now, last_error="", created=now)
                )

    def pending(self, job_id: int) -> PendingSync | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.grant_pending).where(t.grant_pending.c.job_ref == job_id)).first()
        return _pending(row) if row is not None else None

    def pending_due(self, *, limit: int = 50) -> list[PendingSync]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.grant_pending)
                .where(t.grant_pending.c.next_attempt.is_not(None), t.grant_pending.c.next_attempt <= self.clock())
                .order_by(t.grant_pending.c.next_attempt, t.grant_pending.c.id)
                .limit(limit)
            ).all()
        return [_pending(r) for r in rows]

    def settle(self, job_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(t.grant_pending).where(t.grant_pending.c.job_ref == job_id))

    def postpone(self, job_id: int, *, error: str, next_attempt: float | None) -> PendingSync | None:
        with self.engine.begin() as conn:
            conn.execute(
                update(t.grant_pending)
                .where(t.grant_pending.c.job_ref == job_id)
                .values(attempts=t.grant_pending.c.attempts + 1, next_attempt=next_attempt, last_error=_clip(error))
            )
        return self.pending(job_id)


def _utc(epoch: float | None) -> dt.datetime | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC)


def exam_of(job: Job) -> ExamOnGrant:
    """The exam of a done share job as the grant takes it: what was registered and when it is
    released (the release time the job's policy gave, DESIGN §4 release policy)."""
    return ExamOnGrant(
        study_uid=job.study_uid,
        manifest_unique_id=job.kos_uid,
        report_unique_ids=(job.report_uid,) if job.report_uid else (),
        release_time=_utc(job.release_time),
    )


def _done_exams(jobs: JobStore, patient_id: str, issuer: str) -> list[ExamOnGrant]:
    """The patient's registered exams, newest job per study."""
    latest: dict[str, Job] = {}
    for job in jobs.list(states=[JobState.DONE], patient_id=patient_id, limit=10_000):
        if job.issuer != issuer or not job.kos_uid:
            continue
        if job.study_uid not in latest or job.id > latest[job.study_uid].id:
            latest[job.study_uid] = job
    return [exam_of(j) for j in latest.values()]


class Enrolment:
    """Enrol, reset the PIN, revoke: the registry's grant API plus the local grant table."""

    def __init__(
        self, client: GrantClient, book: GrantBook, jobs: JobStore, mapping: PatientMapping, *, clock: Clock = time.time
    ) -> None:
        self.client = client
        self.book = book
        self.jobs = jobs
        self.mapping = mapping
        self.clock = clock

    def enrol(
        self, patient_id: str, *, issuer: str = "", pin: str | None, expires: dt.datetime, replace: bool = False
    ) -> IssuedGrant:
        """A new grant for the patient, holding the exams already shared; the code is in the result
        (and nowhere else). ``replace`` revokes an earlier grant first. ``pin`` None enrols with
        the PIN pending: the patient chooses it later in the portal."""
        if pin is not None:
            check_pin(pin)  # DESIGN §4: the policy is checked here too, before anything changes
        # The grant names the patient as the RAD-68 metadata does (ITI TF-3 §4.2.3.2 patientId).
        affinity = self.mapping.affinity_patient_id(patient_id, issuer)
        existing = self.book.get(patient_id, issuer=issuer)
        if existing is not None:
            if not replace:
                raise AlreadyEnrolled(f"patient {patient_id} is enrolled already (grant {existing.grant_id}); use --replace")
            self._revoke_remote(existing.grant_id)
            self.book.forget(patient_id, issuer=issuer)
        issued = self.client.create(
            patient_id=affinity, pin=pin, expires=expires, exams=_done_exams(self.jobs, patient_id, issuer)
        )
        try:
            self.book.record(
                patient_id,
                issuer=issuer,
                grant_id=issued.grant_id,
                affinity_patient_id=affinity,
                expires=expires.timestamp(),
            )
        except Exception:
            self._revoke_remote(issued.grant_id)  # no grant nobody here knows of
            raise
        log.info("enrolled a patient: grant %s", issued.grant_id)
        return issued

    def _must(self, patient_id: str, issuer: str) -> EdgeGrant:
        found = self.book.get(patient_id, issuer=issuer)
        if found is None:
            raise NotEnrolled(f"patient {patient_id} is not enrolled")
        return found

    def reset_pin(self, patient_id: str, *, issuer: str = "", pin: str) -> EdgeGrant:
        check_pin(pin)
        found = self._must(patient_id, issuer)
        self.client.reset_pin(found.grant_id, pin)
        log.info("PIN reset on grant %s", found.grant_id)
        return found

    def revoke(self, patient_id: str, *, issuer: str = "") -> int:
        """Revoke the patient's grant (and the shares made from it); the number revoked."""
        found = self._must(patient_id, issuer)
        count = self._revoke_remote(found.grant_id)
        self.book.forget(patient_id, issuer=issuer)
        log.info("revoked grant %s", found.grant_id)
        return count

    def _revoke_remote(self, grant_id: str) -> int:
        try:
            return self.client.revoke(grant_id)
        except GrantNotFound:
            return 0  # gone from the registry already
        except GrantApiRefused as exc:
            if exc.status == 409:  # revoked already
                return 0
            raise


class GrantSync:
    """Puts done share jobs' exams on the patients' grants (the job runner's hooks)."""

    def __init__(
        self,
        client: GrantClient,
        book: GrantBook,
        jobs: JobStore,
        *,
        clock: Clock = time.time,
        retry_base_seconds: float = 60.0,
        retry_max_seconds: float = 3600.0,
    ) -> None:
        self.client = client
        self.book = book
        self.jobs = jobs
        self.clock = clock
        self.retry_base_seconds = retry_base_seconds
        self.retry_max_seconds = retry_max_seconds

    def job_done(self, job: Job) -> None:
        """The job reached done: record the exam as pending, then try to put it on the grant."""
        if self.book.get(job.patient_id, issuer=job.issuer) is None:
            return  # not enrolled: the exam joins the grant at enrolment
        self.book.mark_pending(job.id)
        self.sync(job)

    def retry_pending(self) -> int:
        """Try the pending exams that are due; how many reached their grant."""
        done = 0
        for pending in self.book.pending_due():
            job = self.jobs.get(pending.job_id)
            if job is None:
                self.book.settle(pending.job_id)
                continue
            done += self.sync(job, attempts=pending.attempts)
        return done

    def backoff(self, attempts: int) -> float:
        return min(self.retry_max_seconds, self.retry_base_seconds * 2 ** max(0, attempts - 1))

    def sync(self, job: Job, *, attempts: int = 0) -> bool:
        """PUT the job's exam on the patient's grant; False when it stays pending or was refused."""
        grant = self.book.get(job.patient_id, issuer=job.issuer)
        if grant is None or job.state is not JobState.DONE or not job.kos_uid:
            self.book.settle(job.id)  # nothing to put on a grant
            return False
        exam = exam_of(job)
        try:
            self.client.put_exam(
                grant.grant_id,
                exam.study_uid,
                manifest_unique_id=exam.manifest_unique_id,
                report_unique_ids=exam.report_unique_ids,
                release_time=exam.release_time,
            )
        except GrantApiUnavailable as exc:
            wait = self.backoff(attempts + 1)
            log.info("job %d: exam not yet on grant %s (%s); trying again later", job.id, grant.grant_id, exc)
            self.book.postpone(job.id, error=str(exc), next_attempt=self.clock() + wait)
            return False
        except GrantApiError as exc:
            log.warning("job %d: grant %s refused the exam: %s", job.id, grant.grant_id, exc)
            self.book.postpone(job.id, error=str(exc), next_attempt=None)
            return False
        self.book.settle(job.id)
        log.info("job %d: exam on grant %s", job.id, grant.grant_id)
        return True


# -- the code sheet ---------------------------------------------------------------------------------
def _hours(value: float) -> str:
    return f"{value:g} hour" + ("" if value == 1 else "s")


def code_sheet_pdf(
    *,
    access_code_display: str,
    patient_label: str,
    expires: dt.datetime | None,
    release_delay_hours: float,
    portal_url: str,
    pin_later: bool = False,
) -> bytes:
    """The sheet handed to the patient: the code, how to use it, when images appear, where to go.
    The PIN is never printed (the patient chose it and keeps it; with ``pin_later`` the patient
    chooses it at the first sign-in to the portal)."""
    valid = expires.astimezone(dt.UTC).strftime("%Y-%m-%d") if expires is not None else "until revoked"
    header = [
        f"Access code: {access_code_display}",
        f"Patient: {patient_label}",
        f"Valid until: {valid}",
    ]
    body = [
        "How to use it",
        f"1. Go to {portal_url}",
        *(
            (
                "2. Enter the access code above. The first time, you are asked to choose a PIN",
                "   (4 to 12 digits, or a passphrase). Do not write it here; keep it to yourself.",
            )
            if pin_later
            else (
                "2. Enter the access code above and the PIN you chose when you enrolled.",
                "   The PIN is not printed on this sheet. Do not write it here; keep it to yourself.",
            )
        ),
        "3. Your shared exams are listed; you may view or download them, and share them with a doctor.",
        "",
        "When your images appear",
        f"Routine exams appear {_hours(release_delay_hours)} after the radiologist's final report,",
        "so that your doctor can go through the results with you first. Some exams may appear",
        "sooner, when your doctor asks for it.",
        "",
        "Keep this sheet safe",
        "Anyone who has both this code and your PIN can see your images. After several wrong",
        "attempts the code is locked for a while. If you lose this sheet or forget your PIN, ask the",
        "imaging department: they can reset your PIN, or revoke this code and give you a new one.",
    ]
    return text_pdf("Your access code for your medical images", header, body)
