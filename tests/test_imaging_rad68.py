"""RAD-68 from the Edge Server: DocumentEntry values per RAD TF-3 §4.68.4.1.2.3.2 (xds-notes §7.3)
checked by the RAD-68 validation profile and the ebRS/IHE XSDs, the MTOM request on the wire,
the sorting of answers into done / try again / give up, and end to end over real HTTP and DICOM:
Orthanc PACS -> C-MOVE into our store -> share job -> our repository and registry, which then
answer FindDocuments with the manifest and ITI-43 with its bytes; a PACS down then back, a
repository down then back."""

from __future__ import annotations

import base64
import copy
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from lxml import etree
from pydicom import dcmread

from imaging_source.cli import source as source_cli
from imaging_source.cli_share import register
from imaging_source.db import make_engine, upgrade
from imaging_source.dicomstore import DicomStore
from imaging_source.intake import Intake
from imaging_source.jobs import JobState, JobStore
from imaging_source.kos import encode_part10, kos_for_study
from imaging_source.model import ExamReport
from imaging_source.pacs import PacsClient, PacsNode
from imaging_source.rad68 import (
    DocumentFacts,
    ExamFacts,
    PatientMapping,
    build_submission,
    event_codes,
    parse_code,
    resolve_codes,
    type_code,
)
from imaging_source.release import ReleasePolicy
from imaging_source.scp import StorageSCP
from imaging_source.submit import DocumentFile, Rad68Sender, SubmitOutcome, build_request, classify
from imaging_source.worker import JobRunner, RunnerConfig
from profiles.codes import load_code_set
from tests.support.dicom import ACCESSION_ISSUER, StudySpec, free_port, make_study, orthanc_factory, part10_bytes, storescu, write_datasets
from tests.support.paths import CODES_XML, SCHEMAS
from tests.support.repository import REPOSITORY_ID, live_pair
from xds.errors import ErrorCode, RegistryError
from xds.http.server import ServerThread, SoapRequest, SoapResponse, SoapService, soap_app
from xds.metadata.ebrim import decode_submit_objects_request
from xds.metadata.responses import build_registry_response
from xds.metadata.validation import ValidationProfile, validate_submission
from xds.soap.fault import FaultCode, SoapFault
from xds.soap.mtom import XOP_INCLUDE
from xds.vocabulary import NS_LCM, NS_XDS, Action, ReferenceIdType, ResponseStatus
from xds.xml import qname

__all__ = ["orthanc_factory"]  # the fixture, imported for pytest

AET = "XDSEDGE"
AFFINITY = "1.3.6.1.4.1.21367.13.20.1000"
LOCAL = "1.3.6.1.4.1.21367.13.20.9999"
SOURCE_ID = "1.3.6.1.4.1.21367.13.80.1"
T0 = 1_750_000_000.0
CODES = load_code_set(CODES_XML)
DEFAULTS = {
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
}
MAPPING = PatientMapping(AFFINITY, local_oid=LOCAL)
AFFINITY_PID = f"PAT001^^^&{AFFINITY}&ISO"


def _config(**changes: Any) -> RunnerConfig:
    values: dict[str, Any] = {
        "source_id": SOURCE_ID,
        "retrieve_ae_title": AET,
        "mapping": MAPPING,
        "choices": resolve_codes(DEFAULTS, CODES),
        "codes": CODES,
        "retry_base_seconds": 30.0,
        "retry_max_seconds": 300.0,
        "max_attempts": 5,
    }
    values.update(changes)
    return RunnerConfig(**values)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DicomStore]:
    engine = make_engine(f"sqlite:///{tmp_path / 'imaging.sqlite'}")
    upgrade(engine)
    yield DicomStore(tmp_path / "store", engine, fsync=False)
    engine.dispose()


def _stored_exam(store: DicomStore, spec: StudySpec, tmp_path: Path) -> tuple[ExamFacts, DocumentFacts, Path]:
    for ds in make_study(spec):
        store.store_bytes(part10_bytes(ds))
    kos_bytes = encode_part10(kos_for_study(store, spec.study_uid, source_id=SOURCE_ID, retrieve_ae_title=AET))
    kos_path = tmp_path / "kos.dcm"
    kos_path.write_bytes(kos_bytes)
    kos = dcmread(kos_path)
    contents = store.contents(spec.study_uid)
    assert contents is not None
    exam = ExamFacts(
        study=contents.study,
        modalities=tuple(s.modality for s in contents.series),
        body_parts=tuple(s.body_part for s in contents.series),
    )
    facts = DocumentFacts(str(kos.SOPInstanceUID), "application/dicom", hashlib.sha1(kos_bytes).hexdigest(),
                          len(kos_bytes), f"{kos.ContentDate}{kos.ContentTime}")
    return exam, facts, kos_path


# -- metadata ------------------------------------------------------------------------------------------
def test_manifest_entry_carries_the_rad68_values(store: DicomStore, tmp_path: Path) -> None:
    spec = StudySpec(accession="ACC100", modalities=("CT", "MR"), procedure=("36643-5", "LN", "XR Chest 2V"))
    exam, manifest, _ = _stored_exam(store, spec, tmp_path)
    report = DocumentFacts("2.25.1234", "text/plain", "a" * 40, 10, "20250101120000")
    sub = build_submission(exam, manifest=manifest, report=report, submission_uid="2.25.999", source_id=SOURCE_ID,
                           submission_time="20250102030405", mapping=MAPPING, choices=resolve_codes(DEFAULTS, CODES), codes=CODES)
    assert validate_submission(sub, profile=ValidationProfile.RAD68_REPOSITORY, codes=CODES) == []
    (ss,) = sub.submission_sets
    kos_entry, report_entry = sub.document_entries
    assert ss.patient_id == kos_entry.patient_id == report_entry.patient_id == AFFINITY_PID
    assert (ss.unique_id, ss.source_id, ss.submission_time) == ("2.25.999", SOURCE_ID, "20250102030405")
    assert kos_entry.mime_type == "application/dicom"
    assert kos_entry.unique_id == manifest.unique_id  # the KOS SOP Instance UID
    assert (kos_entry.format_code.code, kos_entry.format_code.scheme) == ("1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1")
    assert (kos_entry.class_code.code, kos_entry.class_code.display) == ("IMAGES", "Images")
    assert [(c.code, c.scheme) for c in kos_entry.event_codes] == [
        ("CT", "1.2.840.10008.2.16.4"), ("MR", "1.2.840.10008.2.16.4"), ("43799004", "2.16.840.1.113883.6.96")
    ]
    assert kos_entry.event_codes[0].display == "Computed Tomography"
    assert (kos_entry.type_code.code, kos_entry.type_code.scheme) == ("36643-5", "2.16.840.1.113883.6.1")  # from the procedure
    assert kos_entry.reference_ids == [
        f"ACC100^^^&{ACCESSION_ISSUER}&ISO^{ReferenceIdType.ACCESSION}",
        f"{spec.study_uid}^^^^{ReferenceIdType.STUDY_INSTANCE_UID}",
    ]
    assert kos_entry.service_start_time == "20240102101500"
    assert kos_entry.creation_time == manifest.creation_time and len(manifest.creation_time) == 14
    assert kos_entry.source_patient_id == f"PAT001^^^&{LOCAL}&ISO"
    assert kos_entry.source_patient_info == [f"PID-3|PAT001^^^&{LOCAL}&ISO", "PID-5|Doe^Jane", "PID-7|19700101", "PID-8|F"]
    assert (kos_entry.hash, kos_entry.size) == (manifest.sha1, str(manifest.size))
    assert report_entry.mime_type == "text/plain" and report_entry.class_code.code == "REPORTS"
    assert (report_entry.format_code.code, report_entry.type_code.code) == ("urn:ihe:rad:TEXT", "11528-7")
    members = {(a.source, a.target, a.submission_set_status) for a in sub.associations}
    assert members == {("SubmissionSet", "Manifest", "Original"), ("SubmissionSet", "Report", "Original")}


def test_the_submission_request_is_valid_against_the_xsds(store: DicomStore, tmp_path: Path) -> None:
    spec = StudySpec(accession="ACC101")
    exam, manifest, kos_path = _stored_exam(store, spec, tmp_path)
    sub = build_submission(exam, manifest=manifest, report=None, submission_uid="2.25.7", source_id=SOURCE_ID,
                           submission_time="20250102030405", mapping=MAPPING, choices=resolve_codes(DEFAULTS, CODES), codes=CODES)
    request = build_request(sub, [DocumentFile("Manifest", kos_path, "application/dicom", "kos@test")])
    infoset = copy.deepcopy(request)
    (document,) = infoset.iter(qname(NS_XDS, "Document"))
    include = document.find(XOP_INCLUDE)
    assert include is not None and include.get("href") == "cid:kos@test"
    document.remove(include)
    document.text = base64.b64encode(kos_path.read_bytes()).decode()  # the XOP infoset
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "schema" / "IHE" / "XDS.b_DocumentRepository.xsd")))
    assert schema.validate(infoset), schema.error_log
    decoded = decode_submit_objects_request(request.find(qname(NS_LCM, "SubmitObjectsRequest")))
    assert [d.unique_id for d in decoded.submission.document_entries] == [manifest.unique_id]


def test_event_and_type_codes_come_from_the_affinity_domain(store: DicomStore, tmp_path: Path) -> None:
    codes = event_codes(["CT", "KO", "ZZ", "CT"], ["CHEST", "Abdomen", "NOSUCHPART"], CODES)
    assert [c.code for c in codes] == ["CT", "43799004", "818981001"]  # KO never; unknown codes left out
    assert [c.code for c in event_codes(["MR"], [], None)] == ["MR"]
    spec = StudySpec(accession="ACC102")  # a local procedure code (99LOCAL) the domain does not know
    exam, _, _ = _stored_exam(store, spec, tmp_path)
    default = parse_code(DEFAULTS["type_default"])
    assert type_code(exam.study, CODES, default) == default


def test_configured_codes_are_checked_against_the_domain() -> None:
    choices = resolve_codes(DEFAULTS, CODES)
    assert choices.practice_setting.display == "Radiology department (environment)"
    with pytest.raises(ValueError, match="confidentiality"):
        resolve_codes({**DEFAULTS, "confidentiality": "SECRET^^2.16.840.1.113883.5.25"}, CODES)
    with pytest.raises(ValueError):
        parse_code("no-scheme")


def test_patient_mapping() -> None:
    mapping = PatientMapping(AFFINITY, rule="IHERED-{patient_id}")
    assert mapping.affinity_patient_id("123") == f"IHERED-123^^^&{AFFINITY}&ISO"
    assert mapping.source_patient_id("123", "1.2.3.4") == "123^^^&1.2.3.4&ISO"
    with pytest.raises(ValueError, match="assigning authority"):
        mapping.source_patient_id("123", "HOSP")  # a namespace, no OID configured
    with pytest.raises(ValueError):
        PatientMapping("not-an-oid")
    with pytest.raises(ValueError):
        PatientMapping(AFFINITY, rule="{nope}")


# -- answers -------------------------------------------------------------------------------------------
def test_answers_are_sorted_into_outcomes() -> None:
    assert classify(ResponseStatus.SUCCESS, [], submission_uid="2.25.1").outcome is SubmitOutcome.ACCEPTED
    ours = RegistryError(ErrorCode.DUPLICATE_UNIQUE_ID_IN_REGISTRY, "uniqueId 2.25.1 is already registered", "2.25.1")
    assert classify(ResponseStatus.FAILURE, [ours], submission_uid="2.25.1").outcome is SubmitOutcome.ALREADY_REGISTERED
    theirs = RegistryError(ErrorCode.DUPLICATE_UNIQUE_ID_IN_REGISTRY, "uniqueId 2.25.8 is already registered", "2.25.8")
    assert classify(ResponseStatus.FAILURE, [theirs], submission_uid="2.25.1").outcome is SubmitOutcome.PERMANENT
    down = RegistryError(ErrorCode.REGISTRY_NOT_AVAILABLE, "registry unreachable")
    assert classify(ResponseStatus.FAILURE, [down], submission_uid="2.25.1").outcome is SubmitOutcome.TRANSIENT
    bad = RegistryError(ErrorCode.REPOSITORY_METADATA_ERROR, "hash mismatch")
    result = classify(ResponseStatus.FAILURE, [down, bad], submission_uid="2.25.1")
    assert result.outcome is SubmitOutcome.PERMANENT and "hash mismatch" in result.detail


@dataclass
class Recorder:
    """A repository stand-in over real HTTP: records each request, answers from a script."""

    answers: list[Any] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: SoapRequest) -> SoapResponse:
        parts = {cid: a.read_bytes() for cid, a in request.attachments.items()}
        self.requests.append({"is_mtom": request.is_mtom, "parts": parts, "body": copy.deepcopy(request.body),
                              "content_type": request.http_headers.get("content-type", "")})
        answer = self.answers.pop(0) if self.answers else []
        if isinstance(answer, SoapFault):
            raise answer
        return SoapResponse(action=Action.ITI41_RESPONSE, body=build_registry_response(answer))


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[tuple[Recorder, str]]:
    rec = Recorder()
    app = soap_app(services=[SoapService("/repository", {Action.ITI41: rec.handle})], spool_dir=tmp_path / "spool")
    with ServerThread(app) as server:
        yield rec, server.url + "/repository"


def test_rad68_goes_out_as_mtom_with_the_files_as_parts(store: DicomStore, tmp_path: Path, recorder: tuple[Recorder, str]) -> None:
    rec, url = recorder
    exam, manifest, kos_path = _stored_exam(store, StudySpec(accession="ACC103"), tmp_path)
    report_path = tmp_path / "report.txt"
    report_path.write_bytes(b"Normal chest.\n")
    report = DocumentFacts("2.25.55", "text/plain", hashlib.sha1(b"Normal chest.\n").hexdigest(), 14, "20250101000000")
    sub = build_submission(exam, manifest=manifest, report=report, submission_uid="2.25.77", source_id=SOURCE_ID,
                           submission_time="20250102030405", mapping=MAPPING, choices=resolve_codes(DEFAULTS, CODES), codes=CODES)
    documents = [DocumentFile("Manifest", kos_path, "application/dicom"), DocumentFile("Report", report_path, "text/plain")]
    result = Rad68Sender(url).send(sub, documents)
    assert result.outcome is SubmitOutcome.ACCEPTED
    (seen,) = rec.requests
    assert seen["is_mtom"] and seen["content_type"].startswith("multipart/related")
    assert 'type="application/xop+xml"' in seen["content_type"] and Action.ITI41 in seen["content_type"]
    assert sorted(seen["parts"].values()) == sorted([kos_path.read_bytes(), b"Normal chest.\n"])
    ids = [d.get("id") for d in seen["body"].iter(qname(NS_XDS, "Document"))]
    assert ids == ["Manifest", "Report"]


def test_transient_and_permanent_answers_over_http(store: DicomStore, tmp_path: Path, recorder: tuple[Recorder, str]) -> None:
    rec, url = recorder
    exam, manifest, kos_path = _stored_exam(store, StudySpec(accession="ACC104"), tmp_path)
    sub = build_submission(exam, manifest=manifest, report=None, submission_uid="2.25.78", source_id=SOURCE_ID,
                           submission_time="20250102030405", mapping=MAPPING, choices=resolve_codes(DEFAULTS, CODES), codes=CODES)
    docs = [DocumentFile("Manifest", kos_path, "application/dicom")]
    rec.answers = [
        [RegistryError(ErrorCode.REGISTRY_NOT_AVAILABLE, "registry down")],
        SoapFault(FaultCode.RECEIVER, "overloaded", http_status=503),
        [RegistryError(ErrorCode.UNKNOWN_PATIENT_ID, "who?")],
    ]
    sender = Rad68Sender(url)
    assert sender.send(sub, docs).outcome is SubmitOutcome.TRANSIENT
    fault = sender.send(sub, docs)
    assert fault.outcome is SubmitOutcome.TRANSIENT and "503" in fault.detail
    refused = sender.send(sub, docs)
    assert refused.outcome is SubmitOutcome.PERMANENT and "XDSUnknownPatientId" in refused.detail
    closed = Rad68Sender(f"http://127.0.0.1:{free_port()}/repository", timeout=5).send(sub, docs)
    assert closed.outcome is SubmitOutcome.TRANSIENT and "not reachable" in closed.detail


    def times_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    slow = Rad68Sender(url, transport=httpx.MockTransport(times_out)).send(sub, docs)
    assert slow.outcome is SubmitOutcome.TRANSIENT and "ReadTimeout" in slow.detail

    def not_soap(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="bad gateway", headers={"content-type": "text/html"})

    proxy = Rad68Sender(url, transport=httpx.MockTransport(not_soap)).send(sub, docs)
    assert proxy.outcome is SubmitOutcome.TRANSIENT and "502" in proxy.detail


# -- end to end ----------------------------------------------------------------------------------------
@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


class Reports:
    def __init__(self) -> None:
        self.by_accession: dict[str, ExamReport] = {}

    def report(self, accession: str) -> ExamReport | None:
        return self.by_accession.get(accession)


def _orthanc_with(orthanc_factory: Any, scp: StorageSCP, spec: StudySpec, tmp_path: Path) -> Any:
    pacs = orthanc_factory(modalities={"edge": (AET, "127.0.0.1", scp.port)})
    pacs.start()
    files = write_datasets(make_study(spec), tmp_path / "load")
    result = storescu(files, port=pacs.dicom_port, called=pacs.aet)
    assert result.returncode == 0, result.stderr
    return pacs


def test_end_to_end_pacs_to_registry_with_pacs_and_repository_down_then_back(
    orthanc_factory: Any, store: DicomStore, tmp_path: Path
) -> None:
    spec = StudySpec(accession="ACC200", modalities=("CT", "MR"), instances_per_series=2)
    with Intake(store) as intake, StorageSCP(store, ae_title=AET, port=free_port(), intake=intake) as scp:
        pacs = _orthanc_with(orthanc_factory, scp, spec, tmp_path)
        node = PacsNode("pacs1", pacs.aet, "127.0.0.1", pacs.dicom_port)
        (tmp_path / "xds").mkdir()
        with live_pair(tmp_path / "xds", f"sqlite:///{tmp_path / 'repository.sqlite'}") as live:
            live.feed(AFFINITY_PID)
            clock = Clock()
            reports = Reports()
            reports.by_accession["ACC200"] = ExamReport(
                accession="ACC200", patient_id="PAT001", issuer="HOSP", status="F", final=True,
                text="CT and MR: no abnormality.", status_time=T0 - 60, received=T0 - 50,
            )
            sender = Rad68Sender(f"http://127.0.0.1:{free_port()}/repository", timeout=10)  # nobody there yet
            jobs = JobStore(store.engine, clock=clock)
            runner = JobRunner(
                store, jobs, sender=sender, config=_config(), work_dir=tmp_path / "jobs", reports=reports,
                pacs=PacsClient(ae_title=AET, store=store, timeout=5, inactivity_timeout=30),
                nodes=lambda: [node], clock=clock,
            )
            job_id = jobs.create(patient_id="PAT001", issuer="HOSP", study_uid=spec.study_uid, accession="ACC200",
                                 policy=ReleasePolicy.WHEN_FINAL).id

            pacs.stop()  # the PACS is down
            runner.run_once()
            job = jobs.get(job_id)
            assert job.state is JobState.RETRIEVING and job.attempts == 1 and "PACS" in job.last_error
            assert store.count_instances(spec.study_uid) == 0

            pacs.start()  # back; the repository is still unreachable
            clock.now = job.next_attempt
            runner.run_once()
            job = jobs.get(job_id)
            assert job.state is JobState.SUBMITTING and job.attempts == 1 and "not reachable" in job.last_error
            assert store.count_instances(spec.study_uid) == 4 + 1  # the images and our manifest

            sender.endpoint = live.url  # the repository is reachable now
            clock.now = job.next_attempt
            runner.run_once()
            job = jobs.get(job_id)
            assert job.state is JobState.DONE, jobs.events(job_id)

            entries = {e.mime_type: e for e in live.patient_entries(AFFINITY_PID)}
            assert set(entries) == {"application/dicom", "text/plain"}
            kos_entry = entries["application/dicom"]
            assert kos_entry.unique_id == job.kos_uid
            assert kos_entry.format_code.code == "1.2.840.10008.5.1.4.1.1.88.59"
            assert kos_entry.repository_unique_id == REPOSITORY_ID
            assert f"{spec.study_uid}^^^^{ReferenceIdType.STUDY_INSTANCE_UID}" in kos_entry.reference_ids
            outcome, documents = live.retrieve([(REPOSITORY_ID, job.kos_uid), (REPOSITORY_ID, job.report_uid)])
            assert outcome.status == ResponseStatus.SUCCESS
            kos_file = store.instance(job.kos_uid)
            assert documents[job.kos_uid] == ("application/dicom", kos_file.path.read_bytes())
            assert documents[job.report_uid][0] == "text/plain"
            assert b"no abnormality" in documents[job.report_uid][1]
            kos = dcmread(kos_file.path)
            assert kos.AccessionNumber == "ACC200" and kos.PatientID == "PAT001"
            series = kos.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence
            assert sum(len(s.ReferencedSOPSequence) for s in series) == 4
            assert {s.RetrieveLocationUID for s in series} == {SOURCE_ID}

            # The same submission again (as after a lost reply): the registry refuses our
            # SubmissionSet uniqueId, which the sender reads as "registered earlier".
            again = sender.send(*runner.submission_for(job))
            assert again.outcome is SubmitOutcome.ALREADY_REGISTERED, again.detail
            assert len(live.patient_entries(AFFINITY_PID)) == 2


# -- the commands ------------------------------------------------------------------------------------------
def test_share_jobs_and_retry_commands(store: DicomStore, tmp_path: Path) -> None:
    register(source_cli)
    spec = StudySpec(accession="ACC300")
    for ds in make_study(spec):
        store.store_bytes(part10_bytes(ds))
    db = ["--db", str(store.engine.url), "--store", str(store.root), "--data-dir", str(tmp_path / "data")]
    runner = CliRunner()
    result = runner.invoke(source_cli, ["share", "PAT001", "--all", "--release", "immediately", *db])
    assert result.exit_code == 0, result.output
    assert "ACC300" in result.output and "immediately" in result.output
    result = runner.invoke(source_cli, ["share", "PAT001", "--study", spec.study_uid, *db])
    assert result.exit_code == 0 and "job 1:" in result.output  # the active job, not a second one
    result = runner.invoke(source_cli, ["share", "OTHER", "--study", spec.study_uid, *db])
    assert result.exit_code != 0 and "belongs to patient PAT001" in result.output
    jobs = JobStore(store.engine)
    jobs.fail(1, "repository refused: XDSUnknownPatientId")
    result = runner.invoke(source_cli, ["jobs", *db])
    assert result.exit_code == 0 and "failed" in result.output and "XDSUnknownPatientId" in result.output
    result = runner.invoke(source_cli, ["retry", "1", *db])
    assert result.exit_code == 0 and jobs.get(1).state is JobState.QUEUED
    assert runner.invoke(source_cli, ["retry", "99", *db]).exit_code != 0
    result = runner.invoke(source_cli, ["share", "PAT001", "--autosend", "--release", "when-final", *db])
    assert result.exit_code == 0 and [p.patient_id for p in jobs.autosend_patients()] == ["PAT001"]
    assert runner.invoke(source_cli, ["share", "PAT001", *db]).exit_code != 0


def test_the_runner_of_the_settings_checks_its_codes(store: DicomStore, tmp_path: Path) -> None:
    from imaging_source.config import SourceSettings
    from imaging_source.worker import runner_from_settings

    settings = SourceSettings(data_dir=tmp_path / "edge", codes=CODES_XML, local_patient_id_oid=LOCAL,
                              repository_url="http://127.0.0.1:1/repository", fsync=False)
    runner = runner_from_settings(settings, store)
    assert runner.config.choices.class_images.display == "Images"
    assert runner.config.mapping.affinity_patient_id("X") == f"X^^^&{AFFINITY}&ISO"
    assert runner.sender.endpoint == "http://127.0.0.1:1/repository"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="practice_setting"):
        runner_from_settings(SourceSettings(data_dir=tmp_path / "edge", codes=CODES_XML, practice_setting_code="Nope^^1.2.3"), store)


def test_an_accession_without_an_oid_issuer_is_left_out_or_gets_the_configured_one(store: DicomStore, tmp_path: Path) -> None:
    """ITI TF-3 Table 4.2.3.1.7-2: the accession's CXi carries ``&OID&ISO``. A local, non-OID
    issuer in the images is replaced by the configured OID; without one the accession is not
    sent (a bare ``ACC^^^^...`` fails every validator)."""
    import dataclasses

    from imaging_source.rad68 import _reference_ids

    spec = StudySpec(accession="ACC300")
    exam, _manifest, _ = _stored_exam(store, spec, tmp_path)
    local = dataclasses.replace(exam.study, accession_issuer="RADIOLOGY")
    study_ref = f"{spec.study_uid}^^^^{ReferenceIdType.STUDY_INSTANCE_UID}"
    assert _reference_ids(local, accession_oid="") == [study_ref]
    assert _reference_ids(local, accession_oid="1.2.3.4") == [f"ACC300^^^&1.2.3.4&ISO^{ReferenceIdType.ACCESSION}", study_ref]
    named = dataclasses.replace(exam.study, accession_issuer="1.9.8")
    assert _reference_ids(named, accession_oid="1.2.3.4")[0] == f"ACC300^^^&1.9.8&ISO^{ReferenceIdType.ACCESSION}"
