"""Share jobs of the Edge Server: the state machine and its persistence (SQLite and PostgreSQL),
release policies on an injected clock, reports arriving before and after the images, retries
with back-off, manual retry, autosend, and restarts in the middle of a job that never register
an exam twice."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydicom import dcmread
from sqlalchemy import text

from imaging_source.db import make_engine, upgrade
from imaging_source.dicomstore import DicomStore
from imaging_source.jobs import InvalidTransition, JobState, JobStore
from imaging_source.model import ExamReport
from imaging_source.rad68 import CodeChoices, PatientMapping, resolve_codes
from imaging_source.release import ReleasePolicy, decide
from imaging_source.schema import metadata
from imaging_source.submit import DocumentFile, SubmitOutcome, SubmitResult
from imaging_source.worker import JobRunner, RunnerConfig
from profiles.codes import load_code_set
from tests.support.dicom import StudySpec, make_study, part10_bytes
from tests.support.paths import CODES_XML
from xds.errors import ErrorCode, RegistryError
from xds.metadata.model import Submission
from xds.vocabulary import KOS_SOP_CLASS_UID, MIME_DICOM, ResponseStatus

HOUR = 3600.0
T0 = 1_750_000_000.0
AFFINITY = "1.3.6.1.4.1.21367.13.20.1000"
LOCAL = "1.3.6.1.4.1.21367.13.20.9999"
SOURCE_ID = "1.3.6.1.4.1.21367.13.80.1"


# -- fixtures -----------------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgresql"])
def imaging_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated Edge Server index on each database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'imaging.sqlite'}"
        return
    url = request.getfixturevalue("pg_database")
    engine = make_engine(url)
    upgrade(engine)
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    yield url


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Reports:
    by_accession: dict[str, ExamReport] = field(default_factory=dict)

    def report(self, accession: str) -> ExamReport | None:
        return self.by_accession.get(accession)

    def put(self, accession: str, *, final: bool, at: float, text: str = "No acute findings.", canceled: bool = False) -> None:
        self.by_accession[accession] = ExamReport(
            accession=accession, patient_id="PAT001", issuer="HOSP", status="F" if final else "P", final=final,
            text=text, status_time=at, received=at + 5, canceled=canceled,
        )


@dataclass
class Sent:
    submission: Submission
    documents: list[tuple[str, str, bytes]]  # entry id, mime, bytes


class FakeRepository:
    """Keeps registrations like a registry: a SubmissionSet uniqueId registers once (ITI TF-2b
    §3.42.4.1.3.5). ``script`` holds what the next calls do: "ok", "down" (nothing registered,
    transient), "lost" (registered, but the reply is lost: transient), "refuse" (permanent)."""

    def __init__(self) -> None:
        self.script: list[str] = []
        self.calls: list[Sent] = []
        self.registered: dict[str, Sent] = {}

    def send(self, submission: Submission, documents: Sequence[DocumentFile]) -> SubmitResult:
        sent = Sent(submission, [(d.entry_id, d.mime_type, Path(d.path).read_bytes()) for d in documents])
        self.calls.append(sent)
        action = self.script.pop(0) if self.script else "ok"
        ss_uid = submission.submission_sets[0].unique_id or ""
        if action == "down":
            return SubmitResult(SubmitOutcome.TRANSIENT, None, (), "repository not reachable: connection refused")
        if action == "refuse":
            error = RegistryError(ErrorCode.UNKNOWN_PATIENT_ID, "patient unknown")
            return SubmitResult(SubmitOutcome.PERMANENT, ResponseStatus.FAILURE, (error,), "XDSUnknownPatientId")
        if ss_uid in self.registered:
            error = RegistryError(ErrorCode.DUPLICATE_UNIQUE_ID_IN_REGISTRY, f"uniqueId {ss_uid} is already registered", ss_uid)
            return SubmitResult(SubmitOutcome.ALREADY_REGISTERED, ResponseStatus.FAILURE, (error,), "registered earlier")
        self.registered[ss_uid] = sent
        if action == "lost":
            return SubmitResult(SubmitOutcome.TRANSIENT, None, (), "read timeout")
        return SubmitResult(SubmitOutcome.ACCEPTED, ResponseStatus.SUCCESS, (), "registered")


@dataclass
class Edge:
    store: DicomStore
    jobs: JobStore
    clock: Clock
    reports: Reports
    repository: FakeRepository
    config: RunnerConfig
    work_dir: Path

    def runner(self) -> JobRunner:
        """A fresh runner on the same database and files (as after a restart)."""
        return JobRunner(
            self.store, self.jobs, sender=self.repository, config=self.config, work_dir=self.work_dir,
            reports=self.reports, clock=self.clock,
        )

    def load(self, spec: StudySpec) -> None:
        for ds in make_study(spec):
            self.store.store_bytes(part10_bytes(ds))

    def share(self, spec: StudySpec, policy: ReleasePolicy) -> int:
        return self.jobs.create(patient_id=spec.patient_id, issuer=spec.issuer, study_uid=spec.study_uid,
                                accession=spec.accession, policy=policy).id


def _choices() -> CodeChoices:
    codes = load_code_set(CODES_XML)
    return resolve_codes(
        {
            "class_images": "IMAGES^^1.3.6.1.4.1.19376.1.2.6.1",
            "class_reports": "REPORTS^^1.3.6.1.4.1.19376.1.2.6.1",
            "type_default": "18748-4^^2.16.840.1.113883.6.1",
            "type_report": "11528-7^^2.16.840.1.113883.6.1",
            "confidentiality": "N^^2.16.840.1.113883.5.25",
            "healthcare_facility_type": "22232009^^2.16.840.1.113883.6.96",
            "practice_setting": "309964003^^2.16.840.1.113883.6.96",
            "content_type": "UNSPECIFIED-CONTENT-TYPE^^1.3.6.1.4.1.21367.2017.3",
            "format_text": "urn:ihe:rad:TEXT^^1.3.6.1.4.1.19376.1.2.3",
            "format_pdf": "urn:ihe:rad:PDF^^1.3.6.1.4.1.19376.1.2.3",
        },
        codes,
    )


@pytest.fixture
def edge(imaging_db_url: str, tmp_path: Path) -> Iterator[Edge]:
    engine = make_engine(imaging_db_url)
    upgrade(engine)
    clock = Clock()
    config = RunnerConfig(
        source_id=SOURCE_ID,
        retrieve_ae_title="XDSEDGE",
        mapping=PatientMapping(AFFINITY, local_oid=LOCAL),
        choices=_choices(),
        codes=load_code_set(CODES_XML),
        release_delay_hours=72.0,
        retry_base_seconds=60.0,
        retry_max_seconds=600.0,
        max_attempts=5,
        report_poll_seconds=300.0,
    )
    yield Edge(DicomStore(tmp_path / "store", engine, fsync=False), JobStore(engine, clock=clock), clock, Reports(),
               FakeRepository(), config, tmp_path / "jobs")
    engine.dispose()


def _states(edge: Edge, job_id: int) -> list[str]:
    return [e.state.value for e in edge.jobs.events(job_id)]


def _our_manifests(edge: Edge, study_uid: str) -> list[str]:
    return [i.sop_uid for i in edge.store.study_instances(study_uid) if i.sop_class_uid == KOS_SOP_CLASS_UID]


# -- release policies (pure) -------------------------------------------------------------------------
def _report(*, final: bool, at: float | None, received: float = T0) -> ExamReport:
    return ExamReport(accession="A", patient_id="P", issuer="", status="F" if final else "P", final=final,
                      text="x", status_time=at, received=received)


def test_routine_waits_for_the_final_report_and_then_the_delay() -> None:
    assert decide(ReleasePolicy.ROUTINE, None, shared_at=T0, now=T0, delay_hours=72).waiting_for == "report"
    prelim = decide(ReleasePolicy.ROUTINE, _report(final=False, at=T0), shared_at=T0, now=T0 + 99 * HOUR, delay_hours=72)
    assert (prelim.ready, prelim.waiting_for, prelim.release_time) == (False, "report", None)
    final = _report(final=True, at=T0 + HOUR)
    early = decide(ReleasePolicy.ROUTINE, final, shared_at=T0, now=T0 + 73 * HOUR - 1, delay_hours=72)
    assert (early.ready, early.waiting_for, early.release_time) == (False, "release", T0 + 73 * HOUR)
    on_time = decide(ReleasePolicy.ROUTINE, final, shared_at=T0, now=T0 + 73 * HOUR, delay_hours=72)
    assert on_time.ready and on_time.release_time == T0 + 73 * HOUR
    site = decide(ReleasePolicy.ROUTINE, final, shared_at=T0, now=T0 + 2 * HOUR, delay_hours=1)
    assert site.ready and site.release_time == T0 + 2 * HOUR
    # No OBR-22: the delay counts from when the report was received.
    unstamped = decide(ReleasePolicy.ROUTINE, _report(final=True, at=None, received=T0 + 10), shared_at=T0, now=T0, delay_hours=72)
    assert unstamped.release_time == T0 + 10 + 72 * HOUR


def test_when_final_and_immediately() -> None:
    assert not decide(ReleasePolicy.WHEN_FINAL, None, shared_at=T0, now=T0).ready
    assert not decide(ReleasePolicy.WHEN_FINAL, _report(final=False, at=T0), shared_at=T0, now=T0 + HOUR).ready
    done = decide(ReleasePolicy.WHEN_FINAL, _report(final=True, at=T0 + 5), shared_at=T0, now=T0 + 6)
    assert done.ready and done.release_time == T0 + 5
    now = decide(ReleasePolicy.IMMEDIATELY, None, shared_at=T0 + 7, now=T0 + 8)
    assert now.ready and now.release_time == T0 + 7
    with pytest.raises(ValueError):
        decide(ReleasePolicy.ROUTINE, None, shared_at=T0, now=T0, delay_hours=-1)


# -- the state machine and its table -------------------------------------------------------------------
def test_states_move_with_timestamps_and_reject_skips(edge: Edge) -> None:
    job = edge.jobs.create(patient_id="PAT001", study_uid="1.2.3", policy=ReleasePolicy.ROUTINE)
    assert (job.state, job.state_since, job.attempts, job.next_attempt) == (JobState.QUEUED, T0, 0, T0)
    again = edge.jobs.create(patient_id="PAT001", study_uid="1.2.3", policy=ReleasePolicy.IMMEDIATELY)
    assert again.id == job.id and again.policy is ReleasePolicy.ROUTINE  # one active job per exam
    with pytest.raises(InvalidTransition):
        edge.jobs.transition(job.id, JobState.SUBMITTING)
    edge.clock.advance(10)
    moved = edge.jobs.transition(job.id, JobState.WAITING_REPORT, detail="no report", next_attempt=T0 + 500)
    assert (moved.state, moved.state_since, moved.next_attempt) == (JobState.WAITING_REPORT, T0 + 10, T0 + 500)
    assert edge.jobs.due() == []
    edge.clock.advance(490)
    assert [j.id for j in edge.jobs.due()] == [job.id]
    deferred = edge.jobs.defer(job.id, error="boom", next_attempt=T0 + 900)
    assert (deferred.state, deferred.attempts, deferred.last_error) == (JobState.WAITING_REPORT, 1, "boom")
    failed = edge.jobs.fail(job.id, "gave up")
    assert failed.state is JobState.FAILED and failed.next_attempt is None
    with pytest.raises(InvalidTransition):
        edge.jobs.transition(job.id, JobState.RETRIEVING)
    events = edge.jobs.events(job.id)
    assert [(e.state.value, e.at) for e in events] == [
        ("queued", T0), ("waiting-for-report", T0 + 10), ("waiting-for-report", T0 + 500), ("failed", T0 + 500)
    ]
    # A failed exam may be shared anew; the failed job stays in the history.
    fresh = edge.jobs.create(patient_id="PAT001", study_uid="1.2.3", policy=ReleasePolicy.IMMEDIATELY)
    assert fresh.id != job.id and [j.id for j in edge.jobs.for_study("1.2.3")] == [job.id, fresh.id]


def test_a_claimed_job_is_not_taken_by_another_runner(edge: Edge) -> None:
    job = edge.jobs.create(patient_id="PAT001", study_uid="1.2.9", policy=ReleasePolicy.IMMEDIATELY)
    assert edge.jobs.claim(job.id, lease_seconds=60) is not None
    assert edge.jobs.claim(job.id, lease_seconds=60) is None
    assert edge.jobs.due() == []
    edge.clock.advance(61)  # the lease of a runner that died expires
    assert edge.jobs.claim(job.id, lease_seconds=60) is not None


# -- the runner -------------------------------------------------------------------------------------------
def test_immediately_sends_the_manifest_without_a_report(edge: Edge) -> None:
    spec = StudySpec(accession="ACC10", modalities=("CT", "MR"), instances_per_series=2)
    edge.load(spec)
    job_id = edge.share(spec, ReleasePolicy.IMMEDIATELY)
    assert edge.runner().run_once() == 1
    job = edge.jobs.get(job_id)
    assert job is not None and job.state is JobState.DONE and job.release_time == T0 and job.submitted == T0
    assert _states(edge, job_id) == ["queued", "retrieving", "building", "submitting", "done"]
    (call,) = edge.repository.calls
    assert [(d[0], d[1]) for d in call.documents] == [("Manifest", MIME_DICOM)]
    (entry,) = call.submission.document_entries
    assert entry.unique_id == job.kos_uid == _our_manifests(edge, spec.study_uid)[0]
    kos = dcmread(edge.store.instance(job.kos_uid).path)
    referenced = {i.ReferencedSOPInstanceUID for s in kos.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence for i in s.ReferencedSOPSequence}
    images = {i.sop_uid for i in edge.store.study_instances(spec.study_uid) if i.sop_class_uid != KOS_SOP_CLASS_UID}
    assert len(images) == 4 and referenced == images
    assert call.documents[0][2] == edge.store.instance(job.kos_uid).path.read_bytes()


def test_routine_waits_for_report_and_delay_then_sends_both_documents(edge: Edge) -> None:
    spec = StudySpec(accession="ACC20")
    edge.load(spec)
    job_id = edge.share(spec, ReleasePolicy.ROUTINE)
    runner = edge.runner()
    runner.run_once()
    job = edge.jobs.get(job_id)
    assert job.state is JobState.WAITING_REPORT and job.next_attempt == T0 + 300 and job.release_time is None
    edge.reports.put("ACC20", final=False, at=T0 + 100)
    edge.clock.advance(300)
    runner.run_once()
    assert edge.jobs.get(job_id).state is JobState.WAITING_REPORT
    edge.reports.put("ACC20", final=True, at=T0 + 400)
    edge.clock.advance(300)
    runner.run_once()
    job = edge.jobs.get(job_id)
    assert job.state is JobState.WAITING_RELEASE and job.release_time == T0 + 400 + 72 * HOUR
    assert job.next_attempt == job.release_time and edge.repository.calls == []
    edge.clock.now = job.release_time - 1
    assert runner.run_once() == 0
    edge.clock.now = job.release_time
    runner.run_once()
    job = edge.jobs.get(job_id)
    assert job.state is JobState.DONE and job.release_time == T0 + 400 + 72 * HOUR
    assert _states(edge, job_id) == ["queued", "waiting-for-report", "waiting-for-release", "retrieving", "building", "submitting", "done"]
    (call,) = edge.repository.calls
    assert [(d[0], d[1]) for d in call.documents] == [("Manifest", MIME_DICOM), ("Report", "text/plain")]
    assert b"No acute findings." in call.documents[1][2]
    report_entry = call.submission.document_entries[1]
    assert report_entry.unique_id == job.report_uid and report_entry.creation_time == "20250615151320"


def test_when_final_report_arriving_before_the_images(edge: Edge) -> None:
    spec = StudySpec(accession="ACC30")
    edge.reports.put("ACC30", final=True, at=T0 - 50)
    job_id = edge.share(spec, ReleasePolicy.WHEN_FINAL)  # images not here yet, no PACS configured
    runner = edge.runner()
    runner.run_once()
    job = edge.jobs.get(job_id)
    assert job.state is JobState.RETRIEVING and job.attempts == 1 and job.next_attempt == T0 + 60
    assert "not stored" in job.last_error and job.release_time == T0 - 50
    edge.load(spec)  # the modality pushes the study
    edge.clock.advance(60)
    runner.run_once()
    job = edge.jobs.get(job_id)
    assert job.state is JobState.DONE and job.attempts == 0
    assert [d[0] for d in edge.repository.calls[0].documents] == ["Manifest", "Report"]


def test_a_report_arriving_after_the_images(edge: Edge) -> None:
    spec = StudySpec(accession="ACC31")
    edge.load(spec)
    job_id = edge.share(spec, ReleasePolicy.WHEN_FINAL)
    runner = edge.runner()
    runner.run_once()
    assert edge.jobs.get(job_id).state is JobState.WAITING_REPORT
    edge.reports.put("ACC31", final=True, at=T0 + 30, text="Fracture of the left radius.")
    edge.clock.advance(300)
    runner.run_once()
    assert edge.jobs.get(job_id).state is JobState.DONE
    assert b"Fracture of the left radius." in edge.repository.calls[0].documents[1][2]


def test_a_canceled_exam_fails(edge: Edge) -> None:
    spec = StudySpec(accession="ACC32")
    edge.load(spec)
    edge.reports.put("ACC32", final=False, at=T0, canceled=True)
    job_id = edge.share(spec, ReleasePolicy.ROUTINE)
    edge.runner().run_once()
    job = edge.jobs.get(job_id)
    assert job.state is JobState.FAILED and "canceled" in job.last_error and edge.repository.calls == []


def test_transient_failures_back_off_then_fail_and_manual_retry_sends(edge: Edge) -> None:
    spec = StudySpec(accession="ACC40")
    edge.load(spec)
    job_id = edge.share(spec, ReleasePolicy.IMMEDIATELY)
    edge.repository.script = ["down"] * 5
    runner = edge.runner()
    waits = []
    for _ in range(4):
        runner.run_once()
        job = edge.jobs.get(job_id)
        assert job.state is JobState.SUBMITTING and "connection refused" in job.last_error
        waits.append(job.next_attempt - edge.clock.now)
        assert runner.run_once() == 0  # not due before its time
        edge.clock.now = job.next_attempt
    assert waits == [60.0, 120.0, 240.0, 480.0]
    runner.run_once()
    job = edge.jobs.get(job_id)
    assert job.state is JobState.FAILED and job.attempts == 5 and "gave up after 5 attempts" in job.last_error
    assert len(edge.repository.calls) == 5
    # Every attempt carried the same uniqueIds.
    assert len({c.submission.submission_sets[0].unique_id for c in edge.repository.calls}) == 1
    assert len({c.submission.document_entries[0].unique_id for c in edge.repository.calls}) == 1

    retried = edge.jobs.retry(job_id)
    assert retried.state is JobState.QUEUED and retried.attempts == 0
    runner.run_once()
    done = edge.jobs.get(job_id)
    assert done.state is JobState.DONE and done.kos_uid == job.kos_uid and done.submission_uid == job.submission_uid
    assert len(_our_manifests(edge, spec.study_uid)) == 1
    assert list(edge.repository.registered) == [job.submission_uid]
    assert _states(edge, job_id)[-5:] == ["queued", "retrieving", "building", "submitting", "done"]
    with pytest.raises(InvalidTransition):
        edge.jobs.retry(job_id)


def test_backoff_is_capped(edge: Edge) -> None:
    runner = edge.runner()
    assert [runner.backoff(n) for n in (1, 2, 3, 4, 5, 6, 9)] == [60, 120, 240, 480, 600, 600, 600]


def test_a_permanent_refusal_fails_at_once(edge: Edge) -> None:
    spec = StudySpec(accession="ACC41")
    edge.load(spec)
    job_id = edge.share(spec, ReleasePolicy.IMMEDIATELY)
    edge.repository.script = ["refuse"]
    edge.runner().run_once()
    job = edge.jobs.get(job_id)
    assert job.state is JobState.FAILED and "XDSUnknownPatientId" in job.last_error
    assert len(edge.repository.calls) == 1


# -- restarts -------------------------------------------------------------------------------------------
def test_a_lost_reply_is_resubmitted_with_the_same_uniqueids_and_registered_once(edge: Edge) -> None:
    spec = StudySpec(accession="ACC50")
    edge.load(spec)
    edge.reports.put("ACC50", final=True, at=T0 - 10)
    job_id = edge.share(spec, ReleasePolicy.WHEN_FINAL)
    edge.repository.script = ["lost"]
    edge.runner().run_once()
    job = edge.jobs.get(job_id)
    assert job.state is JobState.SUBMITTING and job.attempts == 1
    # The Edge Server restarts: a new runner resumes the job.
    edge.clock.advance(5)
    runner = edge.runner()
    assert edge.jobs.resume_interrupted() == 1
    runner.run_once()
    job = edge.jobs.get(job_id)
    assert job.state is JobState.DONE
    first, second = edge.repository.calls
    assert len(edge.repository.registered) == 1
    for a, b in zip(first.submission.all_objects(), second.submission.all_objects(), strict=True):
        assert getattr(a, "unique_id", None) == getattr(b, "unique_id", None)
    assert first.documents == second.documents  # byte-identical manifest and report


class Crash(BaseException):
    """The process dies here (not an error a step could catch)."""


def _crashing_render(report: ExamReport, *, study: object = None, pdf: bool = False) -> tuple[bytes, str]:
    raise Crash


@pytest.mark.parametrize("stop_in", ["retrieving", "building", "building-after-manifest", "submitting"])
def test_restart_in_the_middle_of_a_job(edge: Edge, stop_in: str) -> None:
    spec = StudySpec(accession="ACC60", modalities=("CT",), instances_per_series=3)
    edge.load(spec)
    edge.reports.put("ACC60", final=True, at=T0 - 10)
    job_id = edge.share(spec, ReleasePolicy.WHEN_FINAL)
    crashed = edge.runner()
    job = edge.jobs.claim(job_id, lease_seconds=3600)  # the runner holds it when it dies
    target = JobState(stop_in.split("-")[0])
    while job.state is not target:
        job = crashed.step(job)
    if stop_in == "building-after-manifest":
        # It dies after storing the manifest, while rendering the report.
        crashed.render = _crashing_render
        with pytest.raises(Crash):
            crashed.step(job)
        job = edge.jobs.get(job_id)
        assert job.state is JobState.BUILDING and job.kos_uid is not None
        assert _our_manifests(edge, spec.study_uid) == [job.kos_uid]
    if stop_in == "submitting":
        # It dies after sending, before hearing the answer.
        crashed.sender.send(*crashed.submission_for(job))
    built_kos = job.kos_uid
    assert edge.jobs.due() == []  # still leased by the dead runner
    runner = edge.runner()
    runner.start()
    runner.stop()  # start() resumed the job and the first round finished it
    job = edge.jobs.get(job_id)
    assert job.state is JobState.DONE, edge.jobs.events(job_id)
    assert len(edge.repository.registered) == 1
    manifests = _our_manifests(edge, spec.study_uid)
    assert manifests == [job.kos_uid]
    if built_kos is not None:
        assert job.kos_uid == built_kos
    (entry, _report) = edge.repository.calls[-1].submission.document_entries
    assert entry.unique_id == job.kos_uid


def test_a_manifest_never_lists_an_earlier_manifest(edge: Edge) -> None:
    spec = StudySpec(accession="ACC70", instances_per_series=2)
    edge.load(spec)
    first = edge.share(spec, ReleasePolicy.IMMEDIATELY)
    runner = edge.runner()
    runner.run_once()
    edge.load(StudySpec(accession="ACC70", study_uid=spec.study_uid, modalities=("MR",), instances_per_series=1))
    second = edge.share(spec, ReleasePolicy.IMMEDIATELY)
    assert second != first
    runner.run_once()
    kos_uids = [edge.jobs.get(j).kos_uid for j in (first, second)]
    assert sorted(_our_manifests(edge, spec.study_uid)) == sorted(kos_uids)
    kos = dcmread(edge.store.instance(kos_uids[1]).path)
    referenced = {i.ReferencedSOPInstanceUID for s in kos.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence for i in s.ReferencedSOPSequence}
    assert kos_uids[0] not in referenced and len(referenced) == 3
    codes = [c.code for c in edge.repository.calls[1].submission.document_entries[0].event_codes]
    assert "CT" in codes and "MR" in codes and "KO" not in codes


def test_autosend_shares_exams_stored_after_it_was_enabled(edge: Edge, monkeypatch: pytest.MonkeyPatch) -> None:
    import imaging_source.dicomstore as dicomstore_module

    # The store stamps a study's creation with its own clock: give it the test's.
    monkeypatch.setattr(dicomstore_module, "time", SimpleNamespace(time=edge.clock))
    old = StudySpec(accession="ACC80")
    edge.load(old)
    edge.clock.advance(10)
    edge.jobs.enable_autosend("PAT001", issuer="HOSP", policy=ReleasePolicy.IMMEDIATELY)
    runner = edge.runner()
    assert runner.run_once() == 0
    edge.clock.advance(10)
    new = StudySpec(accession="ACC81")
    edge.load(new)
    runner.run_once()
    (job,) = edge.jobs.list()
    assert (job.study_uid, job.autosend, job.state) == (new.study_uid, True, JobState.DONE)
    assert edge.jobs.active_for_study(old.study_uid) is None
    runner.run_once()
    assert len(edge.jobs.list()) == 1  # not shared twice
    assert edge.jobs.disable_autosend("PAT001", issuer="HOSP")
    assert edge.jobs.autosend_patients() == []


def test_the_type_code_comes_from_the_ris_order_when_the_images_carry_none(edge: Edge) -> None:
    spec = StudySpec(accession="ACC90", procedure=("", "", ""))
    edge.load(spec)
    edge.reports.put("ACC90", final=True, at=T0 - 10)
    edge.reports.by_accession["ACC90"] = replace(
        edge.reports.by_accession["ACC90"], procedure_code="36643-5", procedure_scheme="LN", procedure_meaning="XR Chest 2V"
    )
    job_id = edge.share(spec, ReleasePolicy.WHEN_FINAL)
    edge.runner().run_once()
    assert edge.jobs.get(job_id).state is JobState.DONE
    manifest = edge.repository.calls[0].submission.document_entries[0]
    assert (manifest.type_code.code, manifest.type_code.scheme) == ("36643-5", "2.16.840.1.113883.6.1")


def test_a_report_the_renderer_cannot_make_fails_the_job(edge: Edge) -> None:
    spec = StudySpec(accession="ACC91")
    edge.load(spec)
    edge.reports.put("ACC91", final=True, at=T0 - 10)
    edge.config = replace(edge.config, report_pdf=True)  # the plain-text renderer makes no PDF
    job_id = edge.share(spec, ReleasePolicy.WHEN_FINAL)
    edge.runner().run_once()
    job = edge.jobs.get(job_id)
    assert job.state is JobState.FAILED and "cannot be rendered" in job.last_error
    assert edge.repository.calls == []


def test_with_the_report_book_of_the_ris_feed_and_a_pdf_report(edge: Edge) -> None:
    from imaging_source.report_document import render_report
    from imaging_source.reports import ReportBook
    from imaging_source.ris import Procedure, ReportEvent

    book = ReportBook(edge.store.engine, clock=edge.clock)
    spec = StudySpec(accession="ACC95")
    edge.load(spec)
    job_id = edge.share(spec, ReleasePolicy.ROUTINE)
    runner = JobRunner(edge.store, edge.jobs, sender=edge.repository, config=replace(edge.config, report_pdf=True),
                       work_dir=edge.work_dir, reports=book, render=render_report, clock=edge.clock)
    runner.run_once()
    assert edge.jobs.get(job_id).state is JobState.WAITING_REPORT
    book.record_report(ReportEvent(accession="ACC95", patient_id="PAT001", issuer="HOSP", status="F",
                                   status_time=T0 + 100, text="Impression: normal.", procedure=Procedure()))
    edge.clock.advance(300)
    runner.run_once()
    job = edge.jobs.get(job_id)
    assert job.state is JobState.WAITING_RELEASE and job.release_time == T0 + 100 + 72 * HOUR
    edge.clock.now = job.release_time
    runner.run_once()
    job = edge.jobs.get(job_id)
    assert job.state is JobState.DONE and job.report_mime == "application/pdf"
    (call,) = edge.repository.calls
    (_, mime, data) = call.documents[1]
    assert mime == "application/pdf" and data.startswith(b"%PDF")
    assert call.submission.document_entries[1].format_code.code == "urn:ihe:rad:PDF"


def test_a_final_report_after_an_immediate_share_is_sent_by_a_follow_up_job(edge: Edge) -> None:
    """Shared immediately, registered without a report; the final report arrives later: the next
    round (after report_poll_seconds) queues one follow-up job that sends a new manifest with the
    report; nothing more is queued once it is done, and a preliminary report queues nothing."""
    spec = StudySpec(accession="ACC-LATE", instances_per_series=2)
    edge.load(spec)
    first = edge.share(spec, ReleasePolicy.IMMEDIATELY)
    runner = edge.runner()
    runner.run_once()
    done = edge.jobs.get(first)
    assert done is not None and done.state is JobState.DONE and done.report_uid is None

    edge.reports.put("ACC-LATE", final=False, at=T0 + 60)
    edge.clock.advance(edge.config.report_poll_seconds)
    runner.run_once()
    assert [j.id for j in edge.jobs.for_study(spec.study_uid)] == [first], "a preliminary report is not shared"

    edge.reports.put("ACC-LATE", final=True, at=T0 + 3600)
    edge.clock.advance(edge.config.report_poll_seconds)
    runner.run_once()
    jobs = edge.jobs.for_study(spec.study_uid)
    assert len(jobs) == 2
    follow = jobs[1]
    assert follow.state is JobState.DONE and follow.report_uid and follow.kos_uid != done.kos_uid
    last = edge.repository.calls[-1]
    assert sorted(d[1] for d in last.documents) == sorted([MIME_DICOM, "text/plain"])
    assert b"No acute findings." in next(d[2] for d in last.documents if d[1] == "text/plain")

    edge.clock.advance(edge.config.report_poll_seconds)
    runner.run_once()
    assert len(edge.jobs.for_study(spec.study_uid)) == 2, "the report is sent once"
    assert edge.jobs.reportless_done(since=0) == []
