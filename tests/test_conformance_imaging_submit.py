"""The imaging-source ``submit`` suite (RAD-68, NIST ids_2018-4801a/b/c): our Edge Server started
through its CLI sends each test study to the runner's repository simulator, made to by the
``xds source share`` command as the submit template, and every case passes. Then a fake source
in this process submits a RAD-68 with one defect at a time (an instance missing from the KOS, a
wrong formatCode, simple SOAP instead of MTOM, a KOS of another study, ...) and the runner must
fail exactly the check that rule belongs to.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from lxml import etree
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from conformance_tests.cli import conformance
from conformance_tests.data.dicom import TestStudy, imaging_test_data
from conformance_tests.evidence import Exchange
from conformance_tests.instances import CONTEXT_KEY as INSTANCES_KEY
from conformance_tests.instances import PreloadedInstances, StoreInstances
from conformance_tests.model import EnvelopeVariant, RequestPackaging, RunResult, Suite, TestPlan, Verdict
from conformance_tests.patients import GivenPatients
from conformance_tests.plans.imaging_source import imaging_source_plan
from conformance_tests.plans.imaging_source.common import SOURCE_ID_KEY
from conformance_tests.plans.imaging_source.provided import ProvidedRequest, cx_components
from conformance_tests.plans.imaging_source.submit import SUBMIT_KEY, SubmitSettings
from conformance_tests.runner import RunConfig, Runner
from conformance_tests.schemas import SchemaSet
from conformance_tests.simulators.repository import CONTEXT_KEY as REPOSITORY_KEY
from conformance_tests.simulators.repository import RepositorySimulator
from conformance_tests.transport import SoapTransport
from xds.metadata.ebrim import encode_submit_objects_request
from xds.metadata.model import Association, Code, DocumentEntry, Submission, SubmissionSet
from xds.vocabulary import NS_XDS, Action, ResponseStatus, SubmissionSetStatus

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SCHEMAS = SHARED / "schemas"
CODES = SHARED / "affinity-domain" / "codes.xml"
SOURCE_ID = "1.3.6.1.4.1.21367.13.80.110"
AFFINITY = "1.3.6.1.4.1.21367.13.20.1000"
LOCAL = "1.3.6.1.4.1.21367.13.20.9999"
ACCESSION_ISSUER = "1.3.6.1.4.1.21367.13.202.2000"
KOS = "1.2.840.10008.5.1.4.1.1.88.59"
DATA = imaging_test_data()
SUBMIT_CASES = ("4801a", "4801b", "4801c")

pytestmark = pytest.mark.skipif(
    not (SCHEMAS.is_dir() and CODES.is_file()), reason=f"shared schemas and codes not found under {SHARED}"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _xds() -> list[str]:
    script = Path(sys.executable).with_name("xds")
    return [str(script)] if script.is_file() else [sys.executable, "-c", "from imageshare.cli import main; main()"]


@pytest.fixture(scope="module")
def schemas() -> SchemaSet:
    return SchemaSet.load(SCHEMAS)


@dataclass(frozen=True)
class Edge:
    endpoint: str
    dicom_port: int
    data_dir: Path
    repository_port: int

    def share_template(self) -> str:
        """``xds source share`` as the submit template: the running server's job runner sends RAD-68."""
        words = [*_xds(), "source", "share", "{patient}", "--study", "{study_uid}", "--release", "immediately",
                 "--data-dir", str(self.data_dir)]  # fmt: skip
        return shlex.join(words)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    """``xds source serve`` sending RAD-68 to http://127.0.0.1:PORT/repository, where each test
    starts its repository simulator."""
    directory = tmp_path_factory.mktemp("edge")
    port, dicom_port, repository_port = _free_port(), _free_port(), _free_port()
    command = [*_xds(), "source", "serve", "--port", str(port), "--dicom-port", str(dicom_port),
               "--data-dir", str(directory), "--source-id", SOURCE_ID,
               "--repository-url", f"http://127.0.0.1:{repository_port}/repository"]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "XDS_SOURCE_MLLP_PORT": "0",
        "XDS_SOURCE_FSYNC": "false",
        "XDS_SOURCE_JOB_POLL_SECONDS": "0.5",
        "XDS_SOURCE_CODES": str(CODES),
        "XDS_SOURCE_LOCAL_PATIENT_ID_OID": LOCAL,
        "XDS_SOURCE_AFFINITY_DOMAIN_OID": AFFINITY,
        "XDS_SOURCE_ACCESSION_ISSUER_OID": ACCESSION_ISSUER,
        "XDS_SOURCE_RETRY_BASE_SECONDS": "1",
    }
    log_path = directory / "source.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=directory)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"the Edge Server exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                if httpx.get(base + "/imaging-source", timeout=2).status_code == 200:
                    with socket.create_connection(("127.0.0.1", dicom_port), timeout=2):
                        break
            except (httpx.HTTPError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the Edge Server did not start:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield Edge(base + "/imaging-source", dicom_port, directory, repository_port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _failures(result: RunResult) -> str:
    return "\n".join(
        f"{r.case.id} {r.verdict.value}: {r.summary()}" for r in result.cases if r.verdict is not Verdict.PASSED
    )


def _case(result: RunResult, case_id: str):  # type: ignore[no-untyped-def]
    return next(r for r in result.cases if r.case.id == case_id)


def _failed_checks(result: RunResult, case_id: str) -> list[tuple[str, str]]:
    return [(c.name, c.detail) for s in _case(result, case_id).steps for c in s.failed_checks]


# -- our Edge Server -----------------------------------------------------------------------------
def test_every_submit_case_passes_against_our_edge_server(edge: Edge, schemas: SchemaSet) -> None:
    with RepositorySimulator(port=edge.repository_port) as simulator:
        context = {
            INSTANCES_KEY: StoreInstances("127.0.0.1", edge.dicom_port, called_ae="XDSEDGE"),
            SOURCE_ID_KEY: SOURCE_ID,
            REPOSITORY_KEY: simulator,
            SUBMIT_KEY: SubmitSettings(template=edge.share_template(), timeout=90.0, schemas=schemas),
        }
        config = RunConfig(endpoint=edge.endpoint, schemas=schemas, patients=GivenPatients(()), timeout=30,
                           options=frozenset({"submit"}), assigning_authority=AFFINITY, context=context)  # fmt: skip
        result = Runner(imaging_source_plan(settle=30.0), config).run(suites=("submit",))
        documents = simulator.documents
    assert [r.case.id for r in result.cases] == ["ids-load", *SUBMIT_CASES]
    assert result.passed, _failures(result)
    assert all(r.verdict is Verdict.PASSED for r in result.cases), _failures(result)
    # Each case judged a real submission: the command ran, a RAD-68 arrived, and every check held.
    for case_id, study in zip(SUBMIT_CASES, ("ct", "mr", "mm")):
        steps = _case(result, case_id).steps
        assert [s.step.name for s in steps] == ["submit", "envelope", "kos", "metadata"]
        labels = [e.label for e in steps[0].exchanges]
        assert labels == ["submit command", "RAD-68 received by the repository simulator"], labels
        checks = {c.name: c.detail for s in steps for c in s.checks}
        assert DATA.study(study).study_uid in checks["referenceIdList studyInstanceUID"]
        assert len(checks) >= 30
    # The simulator kept the manifests it was sent: one KOS per study, under its SOP Instance UID.
    manifests = [d for d in documents if d.mime_type == "application/dicom"]
    assert len(manifests) == 3 and all(KOS.encode() in d.data for d in manifests)


def test_the_cli_runs_the_submit_suite_against_our_edge_server(edge: Edge, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    outcome = CliRunner().invoke(
        conformance,
        ["run", "--actor", "imaging-source", "--endpoint", edge.endpoint, "--source-id", SOURCE_ID,
         "--dicom", f"127.0.0.1:{edge.dicom_port}", "--dicom-ae", "XDSEDGE", "--case", "4801c",
         "--registry-sim-port", str(edge.repository_port), "--command", f"submit={edge.share_template()}",
         "--submit-timeout", "90", "--assigning-authority", AFFINITY, "--schemas", str(SCHEMAS),
         "--html", str(report)],
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    assert f"http://127.0.0.1:{edge.repository_port}/repository" in outcome.output
    text = report.read_text(encoding="utf-8")
    assert "4801c" in text and "RAD-68 received by the repository simulator" in text and "submit command" in text


# -- a fake source that submits with one defect at a time ----------------------------------------
@dataclass(frozen=True)
class Defects:
    missing_instance: bool = False  # the KOS leaves out the study's last instance
    other_study: bool = False  # the KOS also references another study's series
    self_reference: bool = False  # the KOS lists itself among its references
    image_series: bool = False  # the KOS is put in an image series
    wrong_title: bool = False  # title (113000, DCM) instead of 113030
    wrong_patient: bool = False  # Patient's Name differs from the images
    wrong_location: bool = False  # Retrieve Location UID is not the source's id
    no_ae: bool = False  # no Retrieve AE Title
    not_kos: bool = False  # the manifest's SOP Class is not KOS (a CT image class)
    wrong_format: bool = False  # formatCode urn:ihe:rad:TEXT
    wrong_mime: bool = False  # mimeType application/octet-stream
    wrong_unique_id: bool = False  # uniqueId is not the KOS SOP Instance UID
    accession_without_issuer: bool = False  # ACC^^^^urn:ihe:iti:xds:2013:accession
    study_uid_with_issuer: bool = False  # UID^^^&OID&ISO^urn:ihe:iti:xds:2016:studyInstanceUID
    no_study_reference: bool = False  # no studyInstanceUID in referenceIdList
    ko_event_code: bool = False  # KO listed as an event code
    wrong_hash: bool = False  # the hash slot does not match the part
    wrong_size: bool = False
    foreign_patient: bool = False  # patientId in another assigning authority
    no_language: bool = False  # languageCode left out
    simple_soap: bool = False  # application/soap+xml, the document inline (no MTOM)
    wrong_action: bool = False  # wsa:Action of ITI-42
    schema_invalid: bool = False  # an attribute the schema does not allow
    no_document: bool = False  # the DocumentEntry has no xds:Document


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _kos(study: TestStudy, d: Defects) -> tuple[bytes, str]:
    """A KOS manifest of ``study`` as a Part 10 file, and its SOP Instance UID."""
    images = study.instances[0].dataset()
    ds = Dataset()
    ds.SpecificCharacterSet = images.SpecificCharacterSet
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2" if d.not_kos else KOS
    ds.SOPInstanceUID = f"{study.study_uid}.99.1"
    ds.SeriesInstanceUID = study.series_uids[0] if d.image_series else f"{study.study_uid}.99"
    ds.Modality = "KO"
    for keyword in ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber",
                    "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "ReferringPhysicianName"):  # fmt: skip
        setattr(ds, keyword, images.get(keyword, ""))
    if d.wrong_patient:
        ds.PatientName = "SOMEONE^ELSE"
    ds.ConceptNameCodeSequence = [_code("113000" if d.wrong_title else "113030", "DCM", "Manifest")]
    ds.ContentDate, ds.ContentTime = "20250102", "120000"
    studies = [study, DATA.study("mr")] if d.other_study else [study]
    evidence = []
    for referenced in studies:
        series_items = []
        for series_uid in referenced.series_uids:
            item = Dataset()
            item.SeriesInstanceUID = series_uid
            if not d.no_ae:
                item.RetrieveAETitle = "FAKEIDS"
            item.RetrieveLocationUID = "1.2.3.4" if d.wrong_location else SOURCE_ID
            instances = list(referenced.series(series_uid))
            if d.missing_instance and referenced is study and series_uid == study.series_uids[-1]:
                instances = instances[:-1]
            sops = []
            for instance in instances:
                sop = Dataset()
                sop.ReferencedSOPClassUID, sop.ReferencedSOPInstanceUID = instance.sop_class_uid, instance.sop_uid
                sops.append(sop)
            if d.self_reference and referenced is study:
                sop = Dataset()
                sop.ReferencedSOPClassUID, sop.ReferencedSOPInstanceUID = KOS, ds.SOPInstanceUID
                sops.append(sop)
            item.ReferencedSOPSequence = sops
            series_items.append(item)
        study_item = Dataset()
        study_item.StudyInstanceUID = referenced.study_uid
        study_item.ReferencedSeriesSequence = series_items
        evidence.append(study_item)
    ds.CurrentRequestedProcedureEvidenceSequence = evidence
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue(), str(ds.SOPInstanceUID)


def _request(study: TestStudy, d: Defects) -> etree._Element:
    """A ProvideAndRegisterDocumentSetRequest for the study's manifest (the document inline; the
    transport makes it an XOP part for MTOM)."""
    images = study.instances[0].dataset()
    data, kos_uid = _kos(study, d)
    authority = "1.2.3.4.5" if d.foreign_patient else AFFINITY
    pid = f"FAKE{study.key.upper()}^^^&{authority}&ISO"
    accession = str(images.AccessionNumber)
    references = [f"{accession}^^^^urn:ihe:iti:xds:2013:accession" if d.accession_without_issuer
                  else f"{accession}^^^&{ACCESSION_ISSUER}&ISO^urn:ihe:iti:xds:2013:accession"]  # fmt: skip
    if not d.no_study_reference:
        issuer = f"&{ACCESSION_ISSUER}&ISO" if d.study_uid_with_issuer else ""
        references.append(f"{study.study_uid}^^^{issuer}^urn:ihe:iti:xds:2016:studyInstanceUID")
    events = [Code(m, "1.2.840.10008.2.16.4", m) for m in sorted({i.modality for i in study.instances})]
    if d.ko_event_code:
        events.append(Code("KO", "1.2.840.10008.2.16.4", "Key Object Selection"))
    fmt = Code("urn:ihe:rad:TEXT", "1.3.6.1.4.1.19376.1.2.3", "text") if d.wrong_format else Code(KOS, "1.2.840.10008.2.6.1", "KOS")
    entry = DocumentEntry(
        id="Manifest", mime_type="application/octet-stream" if d.wrong_mime else "application/dicom",
        unique_id=f"{kos_uid}.7" if d.wrong_unique_id else kos_uid, patient_id=pid,
        class_code=Code("IMAGES", "1.3.6.1.4.1.19376.1.2.6.1", "Images"),
        confidentiality_codes=[Code("N", "2.16.840.1.113883.5.25", "normal")], event_codes=events, format_code=fmt,
        healthcare_facility_type_code=Code("22232009", "2.16.840.1.113883.6.96", "Hospital"),
        practice_setting_code=Code("309964003", "2.16.840.1.113883.6.96", "Radiology"),
        type_code=Code("18748-4", "2.16.840.1.113883.6.1", "Diagnostic imaging study"),
        creation_time="20250102120000", hash="0" * 40 if d.wrong_hash else hashlib.sha1(data).hexdigest(),
        size=str(len(data) + 1 if d.wrong_size else len(data)), language_code=None if d.no_language else "en-US",
        source_patient_id=f"{images.PatientID}^^^&{LOCAL}&ISO", reference_ids=references,
    )  # fmt: skip
    ss = SubmissionSet(id="SubmissionSet", unique_id=f"{study.study_uid}.98", source_id="1.2.3.4.5.6", patient_id=pid,
                       submission_time="20250102120000", content_type_code=Code("UNSPECIFIED", "1.3.6.1.4.1.21367.2017.3"))  # fmt: skip
    member = Association(id="HasMember", source="SubmissionSet", target="Manifest",
                         submission_set_status=SubmissionSetStatus.ORIGINAL)  # fmt: skip
    root = etree.Element(f"{{{NS_XDS}}}ProvideAndRegisterDocumentSetRequest", nsmap={"xds": NS_XDS})
    submit = encode_submit_objects_request(Submission(submission_sets=[ss], document_entries=[entry], associations=[member]))
    root.append(submit)
    if d.schema_invalid:
        submit.find(".//{*}ExtrinsicObject").set("invented", "1")
    if not d.no_document:
        etree.SubElement(root, f"{{{NS_XDS}}}Document", id="Manifest").text = base64.b64encode(data).decode()
    return root


def _submit(simulator: RepositorySimulator, study_key: str, d: Defects) -> None:
    """The fake source sends its RAD-68 (before the run: the runner, given no command, takes a
    submission that already arrived, as from an autosending source)."""
    variant = EnvelopeVariant(action=Action.ITI42) if d.wrong_action else None
    packaging = RequestPackaging.SIMPLE if d.simple_soap else RequestPackaging.MTOM
    with SoapTransport(simulator.url, timeout=30) as transport:
        answer = transport.send(Action.ITI41, _request(DATA.study(study_key), d), label="fake RAD-68",
                                variant=variant, packaging=packaging)  # fmt: skip
    assert not answer.exchange.error, answer.exchange.error


def _submit_plan() -> TestPlan:
    """The submit cases on their own: the fake serves no RAD-69, so the load case is left out."""
    plan = imaging_source_plan()
    cases = tuple(dataclasses.replace(c, requires=()) for c in plan.suite("submit").cases)
    return dataclasses.replace(plan, suites=(Suite(name="submit", title="submit", cases=cases),))


def _run_fake(simulator: RepositorySimulator, schemas: SchemaSet, case_id: str, *, timeout: float = 5.0,
              template: str | None = None, prompt: Callable[[str], None] | None = None) -> RunResult:  # fmt: skip
    context = {
        INSTANCES_KEY: PreloadedInstances(),
        SOURCE_ID_KEY: SOURCE_ID,
        REPOSITORY_KEY: simulator,
        SUBMIT_KEY: SubmitSettings(template=template, timeout=timeout, schemas=schemas, prompt=prompt),
    }
    config = RunConfig(endpoint="http://127.0.0.1:9/ids", schemas=schemas, patients=GivenPatients(()), timeout=5,
                       options=frozenset({"submit"}), assigning_authority=AFFINITY, context=context)  # fmt: skip
    return Runner(_submit_plan(), config).run(cases=(case_id,))


@pytest.fixture
def simulator() -> Iterator[RepositorySimulator]:
    with RepositorySimulator() as running:
        yield running


BROKEN = [
    pytest.param(Defects(missing_instance=True), "ct", "4801a", "KOS evidence instances", "1 instance(s) missing", id="kos-missing-instance"),
    pytest.param(Defects(missing_instance=True), "mr", "4801b", "KOS evidence instances", "missing", id="kos-missing-instance-2nd-series"),
    pytest.param(Defects(other_study=True), "ct", "4801a", "KOS evidence study", "expected only", id="kos-other-study"),
    pytest.param(Defects(self_reference=True), "ct", "4801a", "KOS no self reference", "references itself", id="kos-self-reference"),
    pytest.param(Defects(image_series=True), "ct", "4801a", "KOS new series and instance", "image series", id="kos-in-image-series"),
    pytest.param(Defects(wrong_title=True), "ct", "4801a", "KOS title", "113000", id="kos-title"),
    pytest.param(Defects(wrong_patient=True), "mr", "4801b", "KOS patient and study", "PatientName", id="kos-patient-name"),
    pytest.param(Defects(wrong_location=True), "ct", "4801a", "KOS Retrieve Location UID", "1.2.3.4", id="kos-retrieve-location"),
    pytest.param(Defects(no_ae=True), "ct", "4801a", "KOS Retrieve AE Title", "no Retrieve AE Title", id="kos-no-ae"),
    pytest.param(Defects(not_kos=True), "ct", "4801a", "KOS SOP Class", "SOP Class UID 1.2.840.10008.5.1.4.1.1.2", id="not-a-kos"),
    pytest.param(Defects(wrong_format=True), "ct", "4801a", "formatCode", "urn:ihe:rad:TEXT", id="formatCode"),
    pytest.param(Defects(wrong_mime=True), "ct", "4801a", "mimeType", "application/octet-stream", id="mimeType"),
    pytest.param(Defects(wrong_unique_id=True), "ct", "4801a", "uniqueId", "the KOS SOP Instance UID is", id="uniqueId"),
    pytest.param(Defects(accession_without_issuer=True), "ct", "4801a", "referenceIdList accession", "CXi.4", id="accession-no-issuer"),
    pytest.param(Defects(study_uid_with_issuer=True), "ct", "4801a", "referenceIdList studyInstanceUID", "only CXi.1 and CXi.5", id="study-uid-form"),
    pytest.param(Defects(no_study_reference=True), "ct", "4801a", "referenceIdList studyInstanceUID", "0 referenceIdList", id="no-study-reference"),
    pytest.param(Defects(ko_event_code=True), "mm", "4801c", "eventCodeList modalities", "KO", id="event-code-KO"),
    pytest.param(Defects(wrong_hash=True), "ct", "4801a", "hash and size", "SHA-1", id="hash"),
    pytest.param(Defects(wrong_size=True), "ct", "4801a", "hash and size", "bytes", id="size"),
    pytest.param(Defects(foreign_patient=True), "ct", "4801a", "patientId", "not in the affinity domain", id="patientId-domain"),
    pytest.param(Defects(no_language=True), "ct", "4801a", "required attributes", "languageCode", id="required-attribute"),
    pytest.param(Defects(simple_soap=True), "ct", "4801a", "MTOM request", "application/soap+xml", id="not-MTOM"),
    pytest.param(Defects(wrong_action=True), "ct", "4801a", "wsa:Action", Action.ITI42, id="wsa-action"),
    pytest.param(Defects(schema_invalid=True), "ct", "4801a", "XSD", "invented", id="schema-invalid"),
    pytest.param(Defects(no_document=True), "ct", "4801a", "Document per DocumentEntry", "XDSMissingDocument", id="no-document"),
]  # fmt: skip


@pytest.mark.parametrize(("defects", "study", "case", "check", "detail"), BROKEN)
def test_a_source_with_one_defect_fails_that_check(
    simulator: RepositorySimulator, schemas: SchemaSet, defects: Defects, study: str, case: str, check: str, detail: str
) -> None:
    _submit(simulator, study, defects)
    result = _run_fake(simulator, schemas, case)
    assert _case(result, case).verdict is Verdict.FAILED, _failures(result)
    failed = _failed_checks(result, case)
    matching = [d for name, d in failed if name == check]
    assert matching, f"no failed {check!r} check; failed: {failed}"
    assert any(detail in d for d in matching), matching


@pytest.mark.parametrize(("study", "case"), [("ct", "4801a"), ("mr", "4801b"), ("mm", "4801c")])
def test_the_fake_without_defects_passes(simulator: RepositorySimulator, schemas: SchemaSet, study: str, case: str) -> None:
    _submit(simulator, study, Defects())
    result = _run_fake(simulator, schemas, case)
    assert result.passed and _case(result, case).verdict is Verdict.PASSED, _failures(result)
    # The simulator answered Success and kept the manifest.
    assert simulator.exchanges[0].response_status == "HTTP 200"
    assert ResponseStatus.SUCCESS.encode() in simulator.exchanges[0].response_body
    assert [d.mime_type for d in simulator.documents] == ["application/dicom"]


def test_a_submission_of_another_study_does_not_count(simulator: RepositorySimulator, schemas: SchemaSet) -> None:
    _submit(simulator, "mr", Defects())
    shown: list[str] = []
    result = _run_fake(simulator, schemas, "4801a", timeout=0.5, prompt=shown.append)
    # Without a command the operator is told what to make the source do, and where to send it.
    ct = DATA.study("ct")
    assert len(shown) == 1 and ct.study_uid in shown[0] and simulator.url in shown[0] and "IDSACC01" in shown[0]
    case = _case(result, "4801a")
    assert case.verdict is Verdict.FAILED
    assert ("RAD-68 received", f"no request about study {DATA.study('ct').study_uid} within 0.5 s (1 other request(s) "
            "arrived)") in _failed_checks(result, "4801a")  # fmt: skip
    # The judging steps say there is nothing to judge rather than passing.
    assert all(s.verdict is Verdict.FAILED for s in case.steps)


def test_a_failing_submit_command_fails_the_case(simulator: RepositorySimulator, schemas: SchemaSet) -> None:
    template = f"{shlex.quote(sys.executable)} -c 'raise SystemExit(4)' {{study_uid}} {{repository}}"
    result = _run_fake(simulator, schemas, "4801a", template=template)
    assert ("submit command", "exit 4") in _failed_checks(result, "4801a")
    command = _case(result, "4801a").steps[0].exchanges[0]
    assert DATA.study("ct").study_uid in command.target and simulator.url in command.target


def test_without_the_option_the_suite_is_not_applicable(schemas: SchemaSet) -> None:
    config = RunConfig(endpoint="http://127.0.0.1:9/ids", schemas=schemas, patients=GivenPatients(()), timeout=5,
                       context={SOURCE_ID_KEY: SOURCE_ID})  # fmt: skip
    result = Runner(_submit_plan(), config).run()
    assert [(r.case.id, r.verdict) for r in result.cases] == [(c, Verdict.NOT_APPLICABLE) for c in SUBMIT_CASES]
    assert "--command submit=TEMPLATE" in result.cases[0].message


def test_reading_a_request_resolves_parts_and_the_study(simulator: RepositorySimulator) -> None:
    _submit(simulator, "mm", Defects())
    provided = ProvidedRequest.read(simulator.exchanges[0])
    assert provided.media_type == "multipart/related" and provided.root is not None
    assert provided.concerns(DATA.study("mm").study_uid) and not provided.concerns(DATA.study("ct").study_uid)
    (data,) = provided.documents.values()
    assert data is not None and data[128:132] == b"DICM"
    infoset = provided.infoset()
    assert infoset is not None and infoset.findtext(f"{{{NS_XDS}}}Document") == base64.b64encode(data).decode()
    assert cx_components("A^^^&1.2&ISO^urn:x") == ["A", "", "", "&1.2&ISO", "urn:x"]
    assert cx_components("A") == ["A", "", "", "", ""]


def test_the_cli_lists_the_submit_suite_and_refuses_a_wrong_command_kind() -> None:
    listing = CliRunner().invoke(conformance, ["list", "--actor", "imaging-source"])
    assert listing.exit_code == 0, listing.output
    for text in ("4801a", "4801b", "4801c", "{repository}", "{study_uid}", "{accession}", "{dicom}", "option submit"):
        assert text in listing.output
    wrong = CliRunner().invoke(
        conformance, ["run", "--actor", "imaging-source", "--endpoint", "http://127.0.0.1:9/ids", "--source-id", SOURCE_ID,
                      "--preloaded", "--command", "fetch=x", "--schemas", str(SCHEMAS)],
    )  # fmt: skip
    assert wrong.exit_code == 2 and "submit=TEMPLATE" in wrong.output


def test_the_simulator_records_a_request_its_soap_layer_refuses(simulator: RepositorySimulator) -> None:
    reply = httpx.post(simulator.url, content=b"<not-soap/>", headers={"content-type": "application/soap+xml"})
    assert reply.status_code >= 400
    (exchange,) = simulator.exchanges
    assert isinstance(exchange, Exchange) and exchange.request_body == b"<not-soap/>"
    assert simulator.documents == []
