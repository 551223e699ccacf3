"""Enrolment at the Edge Server against a real registry on loopback (DESIGN §4): the code shown
once and printed on a PDF sheet, the Edge index holding neither code nor PIN, the code and PIN
trading for a token, done share jobs putting their exams on the grant (and waiting for a registry
that is down), PIN reset, re-enrolment, revocation, and logs free of codes and PINs."""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from pypdf import PdfReader
from sqlalchemy import Engine, text

from imaging_source.cli import source
from imaging_source.db import make_engine, upgrade
from imaging_source.dicomstore import DicomStore
from imaging_source.enrol import GrantBook, GrantSync, code_sheet_pdf
from imaging_source.grant_client import GrantApiRefused, GrantApiUnavailable, GrantClient, GrantNotFound
from imaging_source.jobs import JobState, JobStore
from imaging_source.model import ExamReport
from imaging_source.rad68 import CodeChoices, PatientMapping, resolve_codes
from imaging_source.release import ReleasePolicy
from imaging_source.schema import metadata
from imaging_source.submit import DocumentFile, SubmitOutcome, SubmitResult
from imaging_source.worker import JobRunner, RunnerConfig
from profiles.codes import load_code_set
from registry.app import build_registry_app
from registry.config import RegistrySettings
from tests.support.dicom import StudySpec, make_study, part10_bytes
from tests.support.paths import CODES_XML
from xds.http.server import ServerThread
from xds.metadata.model import Submission
from xds.vocabulary import ResponseStatus

API_KEY = "edge-grant-api-key-0123456789"
AFFINITY = "1.3.6.1.4.1.21367.13.20.1000"
LOCAL = "1.3.6.1.4.1.21367.13.20.9999"
SOURCE_ID = "1.3.6.1.4.1.21367.13.80.1"
PIN = "blue heron 1937"
NEW_PIN = "green lantern 2048"
T0 = 1_750_000_000.0
CODE_LINE = re.compile(r"access code: (\d{4}-\d{4})")


# -- the registry and the Edge ---------------------------------------------------------------------
@dataclass
class Registry:
    url: str

    def grant(self, grant_id: str) -> dict[str, object]:
        reply = httpx.get(f"{self.url}/consent/grants/{grant_id}", headers={"authorization": f"Bearer {API_KEY}"})
        assert reply.status_code == 200, reply.text
        grant = reply.json()["grant"]
        assert isinstance(grant, dict)
        return grant

    def token(self, code: str, pin: str) -> httpx.Response:
        return httpx.post(f"{self.url}/consent/token", data={"code": code, "pin": pin}, timeout=30)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    settings = RegistrySettings(
        db=f"sqlite:///{tmp_path / 'registry.sqlite'}",
        data_dir=tmp_path / "registry",
        mllp_port=0,
        access_policy="consent",
        grant_api_key=API_KEY,
        token_lifetime_s=120,
    )
    with ServerThread(build_registry_app(settings)) as server:
        yield Registry(server.url)


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class Reports:
    by_accession: dict[str, ExamReport] = field(default_factory=dict)

    def report(self, accession: str) -> ExamReport | None:
        return self.by_accession.get(accession)


class AcceptingRepository:
    """A repository that registers every submission (the grant sync is what is tested here)."""

    def __init__(self) -> None:
        self.sent: list[Submission] = []

    def send(self, submission: Submission, documents: Sequence[DocumentFile]) -> SubmitResult:
        self.sent.append(submission)
        return SubmitResult(SubmitOutcome.ACCEPTED, ResponseStatus.SUCCESS, (), "registered")


def _choices() -> CodeChoices:
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
        load_code_set(CODES_XML),
    )


@dataclass
class Edge:
    db_url: str
    engine: Engine
    store: DicomStore
    jobs: JobStore
    book: GrantBook
    clock: Clock
    reports: Reports
    work_dir: Path
    registry: Registry

    def cli(self, *args: str, input: str | None = None) -> Result:
        env = {"XDS_SOURCE_GRANT_API_KEY": API_KEY, "XDS_SOURCE_AFFINITY_DOMAIN_OID": AFFINITY}
        return CliRunner().invoke(
            source,
            [*args, "--db", self.db_url, "--data-dir", str(self.work_dir.parent),
             "--grant-api-url", f"{self.registry.url}/consent"],
            input=input,
            env=env,
        )

    def enrol(self, mrn: str, *extra: str, pin: str = PIN) -> tuple[str, Path, Result]:
        sheet = self.work_dir.parent / f"sheet-{mrn}-{len(extra)}.pdf"
        result = self.cli("enrol", mrn, "--issuer", "HOSP", "--sheet", str(sheet), *extra, input=f"{pin}\n{pin}\n")
        assert result.exit_code == 0, result.output
        codes = CODE_LINE.findall(result.output)
        assert len(codes) == 1, result.output
        return codes[0], sheet, result

    def runner(self, sync: GrantSync) -> JobRunner:
        config = RunnerConfig(
            source_id=SOURCE_ID,
            retrieve_ae_title="XDSEDGE",
            mapping=PatientMapping(AFFINITY, local_oid=LOCAL),
            choices=_choices(),
            codes=load_code_set(CODES_XML),
            retry_base_seconds=60.0,
            retry_max_seconds=600.0,
        )
        return JobRunner(
            self.store, self.jobs, sender=AcceptingRepository(), config=config, work_dir=self.work_dir,
            reports=self.reports, clock=self.clock, on_done=sync.job_done, on_round=sync.retry_pending,
        )

    def sync(self, client: GrantClient) -> GrantSync:
        return GrantSync(client, self.book, self.jobs, clock=self.clock, retry_base_seconds=60.0, retry_max_seconds=600.0)

    def exam(self, accession: str) -> StudySpec:
        """A stored study of patient PAT001 with a final report an hour after T0."""
        spec = StudySpec(accession=accession)
        for ds in make_study(spec):
            self.store.store_bytes(part10_bytes(ds))
        self.reports.by_accession[accession] = ExamReport(
            accession=accession, patient_id=spec.patient_id, issuer=spec.issuer, status="F", final=True,
            text="No acute findings.", status_time=T0 - 3600, received=T0 - 3500,
        )
        return spec

    def dump(self) -> list[str]:
        with self.engine.connect() as conn:
            return [str(v) for table in metadata.sorted_tables for row in conn.execute(table.select()) for v in row]


@pytest.fixture
def edge(tmp_path: Path, registry: Registry) -> Iterator[Edge]:
    url = f"sqlite:///{tmp_path / 'edge' / 'imaging.sqlite'}"
    (tmp_path / "edge").mkdir()
    engine = make_engine(url)
    upgrade(engine)
    clock = Clock()
    yield Edge(url, engine, DicomStore(tmp_path / "edge" / "dicom", engine, fsync=False), JobStore(engine, clock=clock),
               GrantBook(engine, clock=clock), clock, Reports(), tmp_path / "edge" / "jobs", registry)
    engine.dispose()


def _dead_url() -> str:
    """A loopback URL where nothing listens (the registry is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/consent"


def _exam_uids(grant: dict[str, object]) -> dict[str, dict[str, object]]:
    exams = grant["exams"]
    assert isinstance(exams, list)
    return {e["study_uid"]: e for e in exams}


# -- tests -----------------------------------------------------------------------------------------
def test_enrol_shows_the_code_once_prints_it_and_keeps_neither_code_nor_pin(
    edge: Edge, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    display, sheet, result = edge.enrol("PAT001")
    assert result.output.count(display) == 1 and PIN not in result.output
    code = display.replace("-", "")
    pages = "".join(page.extract_text() for page in PdfReader(sheet).pages)
    assert display in pages and "72 hours" in pages and "http://127.0.0.1:8040/" in pages
    assert PIN not in pages
    recorded = edge.book.get("PAT001", issuer="HOSP")
    assert recorded is not None and recorded.affinity_patient_id == f"PAT001^^^&{AFFINITY}&ISO"
    dumped = edge.dump()
    assert recorded.grant_id in dumped
    assert not [v for v in dumped if code in v or display in v or PIN in v]
    # The code and the PIN get a token from the registry; the registry's grant names the patient.
    assert edge.registry.token(display, PIN).status_code == 200
    assert edge.registry.token(code, "wrong pin 0000").status_code == 401
    assert edge.registry.grant(recorded.grant_id)["patient_id"] == recorded.affinity_patient_id
    assert code not in caplog.text and display not in caplog.text and PIN not in caplog.text


def test_a_done_share_job_puts_its_exam_on_the_grant(edge: Edge, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    display, _, _ = edge.enrol("PAT001")
    grant = edge.book.get("PAT001", issuer="HOSP")
    assert grant is not None
    spec = edge.exam("ACC-E1")
    job_id = edge.jobs.create(patient_id="PAT001", issuer="HOSP", study_uid=spec.study_uid, accession="ACC-E1",
                              policy=ReleasePolicy.ROUTINE).id
    edge.clock.now = T0 + 80 * 3600  # past the 72 h routine delay after the final report
    with GrantClient(f"{edge.registry.url}/consent", API_KEY) as client:
        assert edge.runner(edge.sync(client)).run_once() == 1
    job = edge.jobs.get(job_id)
    assert job is not None and job.state is JobState.DONE and job.release_time == T0 - 3600 + 72 * 3600
    on_grant = _exam_uids(edge.registry.grant(grant.grant_id))[spec.study_uid]
    assert on_grant["manifest_unique_id"] == job.kos_uid
    assert on_grant["report_unique_ids"] == [job.report_uid]
    released = dt.datetime.fromisoformat(str(on_grant["release_time"]))
    assert released == dt.datetime.fromtimestamp(T0 - 3600 + 72 * 3600, dt.UTC)  # final report + 72 h
    assert edge.book.pending(job_id) is None
    # The released exam is in the token's scope.
    token = edge.registry.token(display, PIN)
    assert token.status_code == 200 and job.kos_uid is not None and job.kos_uid in token.text
    assert PIN not in caplog.text and display not in caplog.text and display.replace("-", "") not in caplog.text


def test_registry_down_during_sync_is_retried_later(edge: Edge) -> None:
    edge.enrol("PAT001")
    grant = edge.book.get("PAT001", issuer="HOSP")
    assert grant is not None
    spec = edge.exam("ACC-E2")
    job_id = edge.jobs.create(patient_id="PAT001", issuer="HOSP", study_uid=spec.study_uid, accession="ACC-E2",
                              policy=ReleasePolicy.WHEN_FINAL).id
    live = GrantClient(f"{edge.registry.url}/consent", API_KEY)
    sync = edge.sync(GrantClient(_dead_url(), API_KEY, timeout=5))
    runner = edge.runner(sync)
    assert runner.run_once() == 1
    job = edge.jobs.get(job_id)
    assert job is not None and job.state is JobState.DONE  # the job is done whatever the grant API did
    pending = edge.book.pending(job_id)
    assert pending is not None and pending.attempts == 1 and pending.next_attempt == T0 + 60.0
    assert "not reachable" in pending.last_error
    assert _exam_uids(edge.registry.grant(grant.grant_id)) == {}
    # Still down at the next due round: the back-off doubles.
    edge.clock.now = T0 + 61
    runner.run_once()
    again = edge.book.pending(job_id)
    assert again is not None and again.attempts == 2 and again.next_attempt == T0 + 61 + 120.0
    # The registry is back; a round before the next try does nothing, the next one puts the exam.
    sync.client = live
    edge.clock.now = T0 + 100
    runner.run_once()
    assert edge.book.pending(job_id) is not None and _exam_uids(edge.registry.grant(grant.grant_id)) == {}
    edge.clock.now = T0 + 200
    runner.run_once()
    assert edge.book.pending(job_id) is None
    assert _exam_uids(edge.registry.grant(grant.grant_id))[spec.study_uid]["manifest_unique_id"] == job.kos_uid
    live.close()


def test_exams_shared_before_enrolment_join_the_grant(edge: Edge) -> None:
    spec = edge.exam("ACC-E3")
    edge.jobs.create(patient_id="PAT001", issuer="HOSP", study_uid=spec.study_uid, accession="ACC-E3",
                     policy=ReleasePolicy.IMMEDIATELY)
    with GrantClient(f"{edge.registry.url}/consent", API_KEY) as client:
        sync = edge.sync(client)
        edge.runner(sync).run_once()
    (job,) = edge.jobs.list(patient_id="PAT001")
    assert job.state is JobState.DONE and edge.book.pending(job.id) is None  # not enrolled: nothing pending
    edge.enrol("PAT001")
    grant = edge.book.get("PAT001", issuer="HOSP")
    assert grant is not None
    assert _exam_uids(edge.registry.grant(grant.grant_id))[spec.study_uid]["manifest_unique_id"] == job.kos_uid


def test_pin_reset_replace_and_revoke(edge: Edge, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    first, _, _ = edge.enrol("PAT001")
    old = edge.book.get("PAT001", issuer="HOSP")
    assert old is not None
    reset = edge.cli("pin-reset", "PAT001", "--issuer", "HOSP", input=f"{NEW_PIN}\n{NEW_PIN}\n")
    assert reset.exit_code == 0, reset.output
    assert edge.registry.token(first, PIN).status_code == 401
    assert edge.registry.token(first, NEW_PIN).status_code == 200
    # Enrolling again needs --replace; the replacement revokes the old code.
    refused = edge.cli("enrol", "PAT001", "--issuer", "HOSP", input=f"{PIN}\n{PIN}\n")
    assert refused.exit_code == 1 and "--replace" in refused.output
    second, _, _ = edge.enrol("PAT001", "--replace")
    assert second != first
    new = edge.book.get("PAT001", issuer="HOSP")
    assert new is not None and new.grant_id != old.grant_id
    assert edge.registry.grant(old.grant_id)["revoked"] is True
    assert edge.registry.token(first, NEW_PIN).status_code == 401
    assert edge.registry.token(second, PIN).status_code == 200
    # Revocation.
    revoked = edge.cli("revoke", "PAT001", "--issuer", "HOSP", "--yes")
    assert revoked.exit_code == 0, revoked.output
    assert edge.book.get("PAT001", issuer="HOSP") is None
    assert edge.registry.grant(new.grant_id)["revoked"] is True
    assert edge.registry.token(second, PIN).status_code == 401
    gone = edge.cli("revoke", "PAT001", "--issuer", "HOSP", "--yes")
    assert gone.exit_code == 1 and "not enrolled" in gone.output
    for secret in (first, second, first.replace("-", ""), second.replace("-", ""), PIN, NEW_PIN):
        assert secret not in caplog.text


def test_mismatched_or_weak_pins_are_refused_before_the_registry_is_asked(edge: Edge) -> None:
    mismatch = edge.cli("enrol", "PAT001", "--issuer", "HOSP", input=f"{PIN}\n{NEW_PIN}\n")
    assert mismatch.exit_code != 0 and "do not match" in mismatch.output
    weak = edge.cli("enrol", "PAT001", "--issuer", "HOSP", input="12\n12\n")
    assert weak.exit_code == 1 and "Error: a numeric PIN" in weak.output
    assert edge.book.get("PAT001", issuer="HOSP") is None
    assert edge.dump() == []
    edge.enrol("PAT001")
    bad_reset = edge.cli("pin-reset", "PAT001", "--issuer", "HOSP", input=f"{NEW_PIN}\n{PIN}\n")
    assert bad_reset.exit_code != 0 and "do not match" in bad_reset.output
    no_key = CliRunner().invoke(source, ["revoke", "PAT001", "--yes", "--db", edge.db_url], env={"XDS_SOURCE_GRANT_API_KEY": ""})
    assert no_key.exit_code != 0 and "grant_api_key" in no_key.output


def test_client_errors_are_precise(edge: Edge) -> None:
    with GrantClient(f"{edge.registry.url}/consent", API_KEY) as client:
        with pytest.raises(GrantNotFound):
            client.get("no-such-grant")
    with GrantClient(f"{edge.registry.url}/consent", "a-wrong-key") as wrong:
        with pytest.raises(GrantApiRefused) as refused:
            wrong.get("no-such-grant")
        assert refused.value.status == 401
    with GrantClient(_dead_url(), API_KEY, timeout=5) as dead:
        with pytest.raises(GrantApiUnavailable) as down:
            dead.reset_pin("g", PIN)
        assert PIN not in str(down.value)


def test_code_sheet_without_enrolment() -> None:
    data = code_sheet_pdf(access_code_display="1234-5670", patient_label="X1", expires=dt.datetime(2030, 1, 2, tzinfo=dt.UTC),
                          release_delay_hours=24, portal_url="https://images.example.org/")
    pages = "".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    assert "1234-5670" in pages and "24 hours" in pages and "2030-01-02" in pages and "https://images.example.org/" in pages


def test_runner_from_settings_wires_the_grant_sync_only_with_a_key(tmp_path: Path) -> None:
    from imaging_source.config import SourceSettings
    from imaging_source.worker import runner_from_settings

    engine = make_engine(f"sqlite:///{tmp_path / 'imaging.sqlite'}")
    upgrade(engine)
    store = DicomStore(tmp_path / "dicom", engine, fsync=False)
    try:
        plain = runner_from_settings(SourceSettings(data_dir=tmp_path), store)
        assert not isinstance(getattr(plain.on_done, "__self__", None), GrantSync)
        wired = runner_from_settings(SourceSettings(data_dir=tmp_path, grant_api_key=API_KEY, grant_api_url="http://192.0.2.1/consent"), store)
        sync = getattr(wired.on_done, "__self__", None)
        assert isinstance(sync, GrantSync) and sync.client.base_url == "http://192.0.2.1/consent"
        assert getattr(wired.on_round, "__self__", None) is sync
        sync.client.close()
    finally:
        engine.dispose()
