"""The job runner: takes due share jobs and moves each through its states, one step at a time.

Steps (:mod:`imaging_source.jobs` names the states):

* **queued / waiting**: the exam's report is looked up and the release policy applied
  (:mod:`imaging_source.release`); the job waits for its report (looked at again every
  ``report_poll_seconds``) or for its release time, which it records;
* **retrieving**: the exam is fetched from the PACS (C-FIND, then C-MOVE of what is missing,
  :meth:`PacsClient.retrieve_exam`); with no PACS configured the stored copy is used;
* **building**: the KOS manifest (:mod:`imaging_source.kos`) is built and written into the
  store, and the final report, if any, rendered to a file; a manifest or report made by an
  earlier attempt is reused, and the uniqueIds are recorded before anything is sent;
* **submitting**: RAD-68 with both documents (:mod:`imaging_source.rad68`,
  :mod:`imaging_source.submit`), then done.

A transient failure (PACS or repository down, timeouts, XDSRegistryNotAvailable...) leaves the job
in its state and tries again after an exponential back-off (``retry_base_seconds`` doubling up to
``retry_max_seconds``); after ``max_attempts`` the job fails. Permanent failures fail at once.
:meth:`JobStore.retry` is the manual retry.

Restart: on :meth:`JobRunner.start` the leases of a stopped runner are dropped and jobs caught in
a working state are resumed. Every step is idempotent: retrieval skips what is stored, building
reuses the recorded manifest and report, and a submission whose outcome was lost is sent again
with the same uniqueIds, so the registry refuses a second registration
(``XDSDuplicateUniqueIdInRegistry`` on our SubmissionSet, read as "done").

Public API::

    ReportLookup (Protocol): report(accession) -> ExamReport | None
    ReportRenderer (Protocol): (report, *, study=None, pdf=False) -> (bytes, mimeType)
    Sender (Protocol): send(submission, documents) -> SubmitResult
    NoReports, plain_text_report
    RunnerConfig(...), RunnerConfig.from_settings(settings)
    JobRunner(store, jobs, *, sender, config, work_dir, reports=NoReports(), render=plain_text_report,
              pacs=None, nodes=lambda: (), clock=time.time, on_done=no-op, on_round=no-op)
        .step(job) -> Job          # one state step
        .advance(job) -> Job       # steps while the job is due
        .run_once() -> int         # autosend scan + every due job
        .submission_for(job) -> (Submission, [DocumentFile])   # what a built job sends
        .scan_autosend() -> int
        .backoff(attempts) -> float
        .start() / .stop() / .wake()
    runner_from_settings(settings, store) -> JobRunner
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, Protocol

from pydicom import dcmread

from imaging_source.config import SourceSettings
from imaging_source.dicomstore import DicomStore
from imaging_source.header import read_dataset_header
from imaging_source.jobs import Job, JobState, JobStore
from imaging_source.kos import build_kos, encode_part10
from imaging_source.model import ExamReport, StudyContents, StudyRecord
from imaging_source.pacs import PacsClient, PacsDirectory, PacsError, PacsNode
from imaging_source.rad68 import (
    MANIFEST_ID,
    MIME_PDF,
    MIME_TEXT,
    REPORT_ID,
    CodeChoices,
    DocumentFacts,
    ExamFacts,
    PatientMapping,
    build_submission,
    dtm,
    resolve_codes,
)
from imaging_source.release import decide, final_time
from imaging_source.report_document import render_report
from imaging_source.reports import ReportBook
from imaging_source.submit import DocumentFile, Rad68Sender, SubmitOutcome, SubmitResult
from xds.metadata.model import Submission
from xds.metadata.validation import ValidationProfile, validate_submission
from xds.metadata.validation_rules import CodeValidator
from xds.vocabulary import MIME_DICOM

__all__ = [
    "JobRunner",
    "NoReports",
    "ReportLookup",
    "ReportRenderer",
    "RunnerConfig",
    "Sender",
    "plain_text_report",
    "runner_from_settings",
]

log = logging.getLogger(__name__)

_CHUNK: Final = 1 << 20


class ReportLookup(Protocol):
    """Where the RIS's reports are kept (the report intake's ``ReportBook``)."""

    def report(self, accession: str) -> ExamReport | None: ...


class ReportRenderer(Protocol):
    """Turns a report into a document: ``(bytes, mimeType)``."""

    def __call__(self, report: ExamReport, *, study: StudyRecord | None = None, pdf: bool = False) -> tuple[bytes, str]: ...


class Sender(Protocol):
    def send(self, submission: Submission, documents: Sequence[DocumentFile]) -> SubmitResult: ...


class NoReports:
    """A report book with no reports (an Edge Server without a RIS feed)."""

    def report(self, accession: str) -> ExamReport | None:
        return None


def plain_text_report(report: ExamReport, *, study: StudyRecord | None = None, pdf: bool = False) -> tuple[bytes, str]:
    """The report text as UTF-8 ``text/plain`` (the RSNA v1-v4 report document, rsna-image-share §2.7)."""
    if pdf:
        raise ValueError("this renderer writes text only")
    lines = []
    if study is not None:
        lines.append(f"Patient: {study.patient.name} ({study.patient.patient_id})")
        lines.append(f"Exam: {study.description} {study.study_date} accession {study.accession}".rstrip())
        lines.append("")
    lines.append(report.text)
    return ("\n".join(lines).rstrip("\n") + "\n").encode("utf-8"), MIME_TEXT


class _Transient(Exception):
    """Try again later."""


class _Permanent(Exception):
    """Trying again will not help."""


@dataclass(frozen=True, kw_only=True)
class RunnerConfig:
    """What the runner needs of the settings, resolved once (codes checked at start)."""

    source_id: str
    retrieve_ae_title: str
    mapping: PatientMapping
    choices: CodeChoices
    codes: CodeValidator | None = None
    accession_oid: str = ""
    language: str = "en-US"
    author_institution: str = ""
    report_pdf: bool = False
    release_delay_hours: float = 72.0
    retry_base_seconds: float = 60.0
    retry_max_seconds: float = 3600.0
    max_attempts: int = 10
    report_poll_seconds: float = 300.0
    poll_seconds: float = 5.0
    lease_seconds: float = 3600.0

    @classmethod
    def from_settings(cls, settings: SourceSettings, *, codes: CodeValidator | None = None) -> RunnerConfig:
        """Resolve the settings; loads ``settings.codes`` unless ``codes`` is given.
        Raises ValueError for codes the affinity domain does not know, or a bad mapping."""
        if codes is None and settings.codes is not None:
            from profiles.codes import load_code_set

            codes = load_code_set(settings.codes)
        choices = resolve_codes(
            {
                "class_images": settings.class_code_images,
                "class_reports": settings.class_code_reports,
                "type_default": settings.type_code_default,
                "type_report": settings.type_code_report,
                "confidentiality": settings.confidentiality_code,
                "healthcare_facility_type": settings.healthcare_facility_type_code,
                "practice_setting": settings.practice_setting_code,
                "content_type": settings.content_type_code,
                "format_text": settings.format_code_text,
                "format_pdf": settings.format_code_pdf,
            },
            codes,
        )
        return cls(
            source_id=settings.source_id,
            retrieve_ae_title=settings.retrieve_ae(),
            mapping=PatientMapping(
                settings.affinity_domain_oid, settings.patient_id_rule, settings.local_patient_id_oid
            ),
            choices=choices,
            codes=codes,
            accession_oid=settings.accession_issuer_oid,
            language=settings.language_code,
            author_institution=settings.author_institution,
            report_pdf=settings.report_pdf,
            release_delay_hours=settings.release_delay_hours,
            retry_base_seconds=settings.retry_base_seconds,
            retry_max_seconds=settings.retry_max_seconds,
            max_attempts=settings.max_attempts,
            report_poll_seconds=settings.report_poll_seconds,
            poll_seconds=settings.job_poll_seconds,
        )


#: How far back :meth:`JobRunner.scan_late_reports` looks for exams sent without their report.
LATE_REPORT_WINDOW: Final = 90 * 86400.0


def _sha1_size(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha1(), 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _write_atomic(path: Path, data: bytes) -> None:
    """Write, fsync, rename: a crash leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _new_oid() -> str:
    """A fresh OID under the UUID arc (ITI TF-3 §4.2.3.2.26, §4.2.3.3.12: uniqueIds may be 2.25 OIDs)."""
    return f"2.25.{uuid.uuid4().int}"


def _without(contents: StudyContents, excluded: set[str]) -> StudyContents:
    """The study's contents minus our own earlier manifests (a KOS never lists a KOS of ours)."""
    series = []
    for item in contents.series:
        kept = tuple(ref for ref in item.instances if ref.sop_uid not in excluded)
        if kept:
            series.append(replace(item, instances=kept))
    return replace(contents, series=tuple(series))


class JobRunner:
    """Runs share jobs; :meth:`run_once` is the whole loop body, :meth:`start` runs it in a thread."""

    def __init__(
        self,
        store: DicomStore,
        jobs: JobStore,
        *,
        sender: Sender,
        config: RunnerConfig,
        work_dir: Path,
        reports: ReportLookup | None = None,
        render: ReportRenderer = plain_text_report,
        pacs: PacsClient | None = None,
        nodes: Callable[[], Sequence[PacsNode]] = tuple,
        clock: Callable[[], float] = time.time,
        on_done: Callable[[Job], object] = lambda job: None,
        on_round: Callable[[], object] = lambda: None,
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.sender = sender
        self.config = config
        self.work_dir = Path(work_dir)
        self.reports: ReportLookup = reports if reports is not None else NoReports()
        self.render = render
        self.pacs = pacs
        self.nodes = nodes
        self.clock = clock
        # Grant sync (imaging_source.enrol.GrantSync): a job that reached done, and each round.
        self.on_done = on_done
        self.on_round = on_round
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_late_scan = 0.0

    # -- the loop ------------------------------------------------------------------------------
    def run_once(self) -> int:
        """Queue autosend exams and late reports, then advance every due job; the number of jobs
        touched."""
        self.scan_autosend()
        self.scan_late_reports()
        try:
            self.on_round()
        except Exception:  # the hook keeps its own retry state; the jobs go on
            log.exception("share job round hook failed")
        touched = 0
        for job in self.jobs.due(limit=50):
            claimed = self.jobs.claim(job.id, lease_seconds=self.config.lease_seconds)
            if claimed is None:
                continue
            touched += 1
            try:
                self.advance(claimed)
            finally:
                self.jobs.release(claimed.id)
        return touched

    def scan_late_reports(self) -> int:
        """Follow up exams shared *immediately* whose final report came after their manifest was
        registered: a new share job of the study sends a new manifest with the report, and the
        grant then lists that one (rsna-image-share §4.8: final reports are shared; a report
        acknowledged to the RIS must reach the patient). Looked at every ``report_poll_seconds``,
        over the jobs done in the last ``LATE_REPORT_WINDOW`` seconds; the number of jobs queued."""
        now = self.clock()
        if now < self._next_late_scan:
            return 0
        self._next_late_scan = now + self.config.report_poll_seconds
        queued = 0
        for done in self.jobs.reportless_done(since=now - LATE_REPORT_WINDOW):
            accession = done.accession or self._accession(done)
            report = self.reports.report(accession) if accession else None
            if report is None or not report.final or report.canceled or not report.text.strip():
                continue
            follow = self.jobs.create(
                patient_id=done.patient_id, issuer=done.issuer, study_uid=done.study_uid, accession=accession, policy=done.policy
            )
            log.info("job %d: the final report of %s came after job %d was done; sending it", follow.id, accession or done.study_uid, done.id)
            queued += 1
        return queued

    def advance(self, job: Job) -> Job:
        """Step ``job`` while it stays due (a ready exam goes from queued to done in one call)."""
        while job.active and (job.next_attempt is None or job.next_attempt <= self.clock()):
            before = (job.state, job.attempts, job.next_attempt)
            job = self.step(job)
            if (job.state, job.attempts, job.next_attempt) == before:
                break
        return job

    def step(self, job: Job) -> Job:
        """Do the work of the job's current state once (see the module notes)."""
        handlers: dict[JobState, Callable[[Job], Job]] = {
            JobState.QUEUED: self._gate,
            JobState.WAITING_REPORT: self._gate,
            JobState.WAITING_RELEASE: self._gate,
            JobState.RETRIEVING: self._retrieve,
            JobState.BUILDING: self._build,
            JobState.SUBMITTING: self._submit,
        }
        handler = handlers.get(job.state)
        if handler is None:
            return job
        try:
            return handler(job)
        except _Permanent as exc:
            log.warning("job %d failed: %s", job.id, exc)
            return self.jobs.fail(job.id, str(exc))
        except _Transient as exc:
            return self._defer(job, str(exc))
        except Exception as exc:  # an unexpected fault is retried like a transient one, and logged
            log.exception("job %d: unexpected error in %s", job.id, job.state)
            return self._defer(job, f"{type(exc).__name__}: {exc}")

    def backoff(self, attempts: int) -> float:
        """Seconds before attempt ``attempts + 1``: base x 2^(attempts-1), capped."""
        return min(self.config.retry_max_seconds, self.config.retry_base_seconds * 2 ** max(0, attempts - 1))

    def _defer(self, job: Job, error: str) -> Job:
        attempts = job.attempts + 1
        if attempts >= self.config.max_attempts:
            log.warning("job %d failed after %d attempts: %s", job.id, attempts, error)
            return self.jobs.fail(job.id, f"gave up after {attempts} attempts: {error}")
        log.info("job %d (%s): %s; trying again later", job.id, job.state, error)
        return self.jobs.defer(job.id, error=error, next_attempt=self.clock() + self.backoff(attempts))

    # -- queued / waiting ----------------------------------------------------------------------
    def _accession(self, job: Job) -> str:
        if job.accession:
            return job.accession
        study = self.store.study(job.study_uid)
        return study.accession if study is not None else ""

    def _gate(self, job: Job) -> Job:
        accession = self._accession(job)
        report = self.reports.report(accession) if accession else None
        if report is not None and report.canceled:
            # rsna-image-share §2.4 (status -24): a canceled exam is not sent.
            raise _Permanent("the exam was canceled by the RIS")
        now = self.clock()
        decision = decide(
            job.policy, report, shared_at=job.created, now=now, delay_hours=self.config.release_delay_hours
        )
        fields: dict[str, Any] = {"release_time": decision.release_time}
        if accession != job.accession:
            fields["accession"] = accession
        if decision.ready:
            return self.jobs.transition(job.id, JobState.RETRIEVING, detail=decision.reason, **fields)
        if decision.waiting_for == "report":
            return self.jobs.transition(
                job.id,
                JobState.WAITING_REPORT,
                detail="" if job.state is JobState.WAITING_REPORT else decision.reason,
                next_attempt=now + self.config.report_poll_seconds,
                **fields,
            )
        assert decision.release_time is not None
        return self.jobs.transition(
            job.id,
            JobState.WAITING_RELEASE,
            detail="" if job.state is JobState.WAITING_RELEASE else decision.reason,
            next_attempt=decision.release_time,
            **fields,
        )

    # -- retrieving ------------------------------------------------------------------------------
    def _retrieve(self, job: Job) -> Job:
        nodes = [n for n in self.nodes() if n.enabled]
        stored = self.store.count_instances(job.study_uid)
        if self.pacs is not None and nodes:
            try:
                results = self.pacs.retrieve_exam(
                    nodes,
                    patient_id=job.patient_id,
                    accession=job.accession or None,
                    study_uid=job.study_uid,
                    ours=self.jobs.manifest_uids(job.study_uid),
                )
            except PacsError as exc:  # PacsUnavailable included: no PACS answered
                raise _Transient(f"PACS: {exc}") from None
            mine = [r for r in results if r.study_uid == job.study_uid]
            if mine and not all(r.complete for r in mine):
                got = ", ".join(f"{r.received} of {r.expected if r.expected is not None else '?'}" for r in mine)
                raise _Transient(f"retrieval incomplete: {got} instances")
            if not mine and stored == 0:
                raise _Transient("the study is on no configured PACS and not stored here")
        elif stored == 0:
            raise _Transient("the study is not stored here and no PACS is configured")
        return self.jobs.transition(job.id, JobState.BUILDING, detail=f"{self.store.count_instances(job.study_uid)} instances stored")

    # -- building ------------------------------------------------------------------------------
    def _job_dir(self, job: Job) -> Path:
        return self.work_dir / str(job.id)

    def _report_path(self, job: Job, mime: str) -> Path:
        return self._job_dir(job) / ("report.pdf" if mime == MIME_PDF else "report.txt")

    def _manifest(self, job: Job) -> str:
        """The KOS of the exam: the recorded one when it is stored, else a new one (its UID
        recorded before it is stored, so a crash cannot leave an unknown manifest behind)."""
        if job.kos_uid:
            existing = self.store.instance(job.kos_uid)
            if existing is not None and existing.path.is_file():
                return job.kos_uid
        contents = self.store.contents(job.study_uid)
        if contents is None:
            raise _Transient("the study is not stored here")
        contents = _without(contents, self.jobs.manifest_uids(job.study_uid))
        if not contents.series:
            raise _Transient("the study has no instance to reference")
        sample = self.store.instance(contents.series[0].instances[0].sop_uid)
        if sample is None:
            raise _Transient("the study changed while its manifest was built")
        header = read_dataset_header(sample.path)
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        kos = build_kos(
            contents, header, source_id=self.config.source_id, retrieve_ae_title=self.config.retrieve_ae_title, now=now
        )
        uid = str(kos.SOPInstanceUID)
        self.jobs.update(job.id, kos_uid=uid)
        self.store.store_bytes(encode_part10(kos))
        return uid

    def _report_document(self, job: Job, contents_study: StudyRecord | None) -> tuple[str | None, str | None]:
        """The report document's (uniqueId, mimeType): the recorded one when its file is there,
        else rendered from the final report now (None, None without a final report)."""
        if job.report_uid and job.report_mime and self._report_path(job, job.report_mime).is_file():
            return job.report_uid, job.report_mime
        accession = self._accession(job)
        report = self.reports.report(accession) if accession else None
        # rsna-image-share §4.8: only final reports are shared.
        if report is None or not report.final or report.canceled or not report.text.strip():
            return None, None
        try:
            data, mime = self.render(report, study=contents_study, pdf=self.config.report_pdf)
        except ValueError as exc:  # the renderer cannot make this kind of document
            raise _Permanent(f"the report cannot be rendered: {exc}") from None
        uid = job.report_uid or _new_oid()
        path = self._report_path(job, mime)
        _write_atomic(path.with_suffix(".json"), json.dumps({"creation_time": dtm(final_time(report))}).encode())
        _write_atomic(path, data)
        self.jobs.update(job.id, report_uid=uid, report_mime=mime)
        return uid, mime

    def _build(self, job: Job) -> Job:
        kos_uid = self._manifest(job)
        job = self.jobs.get(job.id) or job
        report_uid, report_mime = self._report_document(job, self.store.study(job.study_uid))
        return self.jobs.transition(
            job.id,
            JobState.SUBMITTING,
            detail=f"manifest {kos_uid}" + (f", report {report_uid}" if report_uid else ", no report"),
            submission_uid=job.submission_uid or _new_oid(),
            report_uid=report_uid,
            report_mime=report_mime,
        )

    # -- submitting ------------------------------------------------------------------------------
    def submission_for(self, job: Job) -> tuple[Submission, list[DocumentFile]]:
        """The RAD-68 metadata and documents of a built job (the same uniqueIds every time)."""
        if not (job.kos_uid and job.submission_uid):
            raise _Permanent("the job has no manifest; retry it to build one")
        kos = self.store.instance(job.kos_uid)
        if kos is None or not kos.path.is_file():
            raise _Permanent(f"manifest {job.kos_uid} is no longer stored; retry the job to build a new one")
        contents = self.store.contents(job.study_uid)
        if contents is None:
            raise _Permanent("the study is no longer stored")
        excluded = self.jobs.manifest_uids(job.study_uid)
        kept = _without(contents, excluded)
        study = contents.study
        if not study.procedure_code and job.accession:
            # RAD TF-3 §4.68.4.1.2.3.2 typeCode: the images carry no procedure code; the RIS's order may.
            ordered = self.reports.report(job.accession)
            if ordered is not None and ordered.procedure_code:
                study = replace(
                    study,
                    procedure_code=ordered.procedure_code,
                    procedure_scheme=ordered.procedure_scheme,
                    procedure_meaning=ordered.procedure_meaning,
                )
        exam = ExamFacts(
            study=study,
            modalities=tuple(dict.fromkeys(s.modality for s in kept.series if s.modality)),
            body_parts=tuple(dict.fromkeys(s.body_part for s in kept.series if s.body_part)),
        )
        sha1, size = _sha1_size(kos.path)
        header = dcmread(kos.path, stop_before_pixels=True)
        created = f"{header.get('ContentDate', '')}{str(header.get('ContentTime', '')).split('.')[0]}"
        manifest = DocumentFacts(kos.sop_uid, MIME_DICOM, sha1, size, created or dtm(self.clock()))
        documents = [DocumentFile(MANIFEST_ID, kos.path, MIME_DICOM)]
        report = None
        if job.report_uid and job.report_mime:
            path = self._report_path(job, job.report_mime)
            if not path.is_file():
                raise _Permanent("the report document is no longer there; retry the job to render it again")
            sidecar = path.with_suffix(".json")
            creation = json.loads(sidecar.read_bytes())["creation_time"] if sidecar.is_file() else dtm(self.clock())
            r_sha1, r_size = _sha1_size(path)
            report = DocumentFacts(job.report_uid, job.report_mime, r_sha1, r_size, creation)
            documents.append(DocumentFile(REPORT_ID, path, job.report_mime))
        submission = build_submission(
            exam,
            manifest=manifest,
            report=report,
            submission_uid=job.submission_uid,
            source_id=self.config.source_id,
            submission_time=dtm(self.clock()),
            mapping=self.config.mapping,
            choices=self.config.choices,
            codes=self.config.codes,
            accession_oid=self.config.accession_oid,
            language=self.config.language,
            author_institution=self.config.author_institution,
        )
        return submission, documents

    def _submit(self, job: Job) -> Job:
        try:
            submission, documents = self.submission_for(job)
        except ValueError as exc:  # an unmappable patient ID, say
            raise _Permanent(str(exc)) from None
        # RAD TF-3 §4.68.4.1.2: check what we send with the repository's own rules first.
        problems = [e for e in validate_submission(submission, profile=ValidationProfile.RAD68_REPOSITORY, codes=self.config.codes) if e.is_error]
        if problems:
            raise _Permanent("metadata refused before sending: " + "; ".join(f"{e.code_text}: {e.context}" for e in problems))
        result = self.sender.send(submission, documents)
        if result.done:
            done = self.jobs.transition(job.id, JobState.DONE, detail=result.detail, submitted=self.clock())
            try:
                self.on_done(done)
            except Exception:  # the job is done whatever the hook does
                log.exception("job %d: done hook failed", job.id)
            return done
        if result.outcome is SubmitOutcome.TRANSIENT:
            raise _Transient(f"repository: {result.detail}")
        raise _Permanent(f"repository refused the submission: {result.detail}")

    # -- autosend ----------------------------------------------------------------------------------
    def scan_autosend(self) -> int:
        """Queue a job for each newly stored exam of an autosend patient; the number queued."""
        queued = 0
        for patient in self.jobs.autosend_patients():
            for study_uid, accession in self.jobs.unshared_studies(patient.patient_id, issuer=patient.issuer, since=patient.since):
                self.jobs.create(
                    patient_id=patient.patient_id,
                    issuer=patient.issuer,
                    study_uid=study_uid,
                    accession=accession,
                    policy=patient.policy,
                    autosend=True,
                )
                queued += 1
        return queued

    # -- the thread ----------------------------------------------------------------------------
    def start(self) -> None:
        """Resume interrupted jobs and run the loop in a daemon thread."""
        if self._thread is not None:
            return
        resumed = self.jobs.resume_interrupted()
        if resumed:
            log.info("resuming %d interrupted share job(s)", resumed)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="share-jobs", daemon=True)
        self._thread.start()

    def stop(self, *, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        """Look at the queue now (a report arrived, an exam was shared)."""
        self._wake.set()

    def _loop(self) -> None:
        # One round always runs first: the jobs resumed at start are looked at even when the
        # runner is stopped at once.
        while True:
            try:
                self.run_once()
            except Exception:  # keep serving: the database may be back at the next round
                log.exception("share job round failed")
            if self._stop.is_set():
                return
            self._wake.wait(self.config.poll_seconds)
            self._wake.clear()

    def __enter__(self) -> JobRunner:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def runner_from_settings(settings: SourceSettings, store: DicomStore) -> JobRunner:
    """The runner ``xds source serve`` starts: PACS from the index, RAD-68 to ``repository_url``."""
    directory = PacsDirectory(store.engine)
    jobs = JobStore(store.engine)
    hooks: dict[str, Any] = {}
    if settings.grant_api_key:
        from imaging_source.enrol import GrantBook, GrantSync
        from imaging_source.grant_client import GrantClient

        sync = GrantSync(
            GrantClient(settings.grant_api_url, settings.grant_api_key),
            GrantBook(store.engine),
            jobs,
            retry_base_seconds=settings.retry_base_seconds,
            retry_max_seconds=settings.retry_max_seconds,
        )
        hooks = {"on_done": sync.job_done, "on_round": sync.retry_pending}
    return JobRunner(
        store,
        jobs,
        sender=Rad68Sender(settings.repository_url, timeout=settings.repository_timeout, spool_dir=settings.data_dir / "spool"),
        config=RunnerConfig.from_settings(settings),
        work_dir=settings.data_dir / "jobs",
        reports=ReportBook(store.engine),
        render=render_report,
        pacs=PacsClient(
            ae_title=settings.ae_title,
            store=store,
            timeout=settings.pacs_timeout,
            inactivity_timeout=settings.retrieve_inactivity_timeout,
        ),
        nodes=lambda: directory.list(enabled_only=True),
        **hooks,
    )
