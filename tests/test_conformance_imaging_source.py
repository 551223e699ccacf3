"""The imaging-source test plan against our own Edge Server, and against broken sources.

Our Edge Server is started through its CLI (``xds source serve``) on loopback; the test data
reaches it by C-STORE and every imaging-source suite must pass. Then a small in-process fake
Imaging Document Source, correct by default, is given one defect at a time (wrong bytes, a
non-MTOM response, HomeCommunityId echoed unasked, an error without location, a transfer syntax
that was not asked for, a mislabelled encoding, WADO answering 200 for a mismatched series, ...)
and the runner must fail exactly the case and the check that rule belongs to.
"""

from __future__ import annotations

import base64
import io
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from lxml import etree
from pydicom import dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conformance_tests.cli import conformance
from conformance_tests.data.dicom import DATA_ROOT, dataset_offset, imaging_test_data, instance_keys
from conformance_tests.instances import CONTEXT_KEY as INSTANCES_KEY
from conformance_tests.instances import CommandInstances, InstanceSource, PreloadedInstances, StoreInstances
from conformance_tests.model import RunResult, Verdict
from conformance_tests.patients import GivenPatients
from conformance_tests.plans import plan_for
from conformance_tests.plans.imaging_source import imaging_source_plan
from conformance_tests.plans.imaging_source.common import (
    EXPLICIT,
    IMPLICIT,
    SOURCE_ID_KEY,
    WADO_KEY,
    Ask,
    rad69_request,
)
from conformance_tests.plans.imaging_source.part10 import judge_instance
from conformance_tests.runner import RunConfig, Runner
from conformance_tests.schemas import SchemaSet
from xds.errors import ErrorCode, RegistryError
from xds.http.server import ServerThread, SoapRequest, SoapResponse, SoapService, soap_app
from xds.metadata.responses import build_registry_response
from xds.soap import OutgoingPart, new_content_id, xop_include
from xds.vocabulary import NS_XDS, NS_XDSI, Action, ResponseStatus

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO.parent / "shared" / "schemas"
SOURCE_ID = "1.3.6.1.4.1.21367.13.80.110"
DATA = imaging_test_data()
#: Short settle time for the load case (the fakes index synchronously).
SETTLE = 2.0

pytestmark = pytest.mark.skipif(not SCHEMAS.is_dir(), reason=f"shared schemas not found at {SCHEMAS}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _xds_script() -> list[str]:
    script = Path(sys.executable).parent / "xds"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "imageshare"]


@pytest.fixture(scope="module")
def schemas() -> SchemaSet:
    return SchemaSet.load(SCHEMAS)


@dataclass(frozen=True)
class Source:
    endpoint: str
    wado: str
    dicom_port: int


@pytest.fixture(scope="module")
def our_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    """``xds source serve`` on free loopback ports (HTTP and DICOM), RIS feed off."""
    directory = tmp_path_factory.mktemp("edge")
    port, dicom_port = _free_port(), _free_port()
    command = [*_xds_script(), "source", "serve", "--port", str(port), "--dicom-port", str(dicom_port),
               "--data-dir", str(directory), "--source-id", SOURCE_ID]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "XDS_SOURCE_MLLP_PORT": "0",
        "XDS_SOURCE_FSYNC": "false",
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
        yield Source(base + "/imaging-source", base + "/wado", dicom_port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _run(
    endpoint: str,
    schemas: SchemaSet,
    loader: InstanceSource,
    *,
    wado: str | None = None,
    cases: tuple[str, ...] = (),
    suites: tuple[str, ...] = (),
    options: frozenset[str] = frozenset(),
    settle: float = SETTLE,
) -> RunResult:
    context: dict[str, object] = {INSTANCES_KEY: loader, SOURCE_ID_KEY: SOURCE_ID}
    if wado:
        context[WADO_KEY] = wado
    config = RunConfig(
        endpoint=endpoint, schemas=schemas, patients=GivenPatients(()), timeout=30, options=options, context=context
    )
    return Runner(imaging_source_plan(settle=settle), config).run(cases=cases, suites=suites)


def _failures(result: RunResult) -> str:
    return "\n".join(
        f"{r.case.id} {r.verdict.value}: {r.summary()}" for r in result.cases if r.verdict is not Verdict.PASSED
    )


def _case(result: RunResult, case_id: str):  # type: ignore[no-untyped-def]
    return next(r for r in result.cases if r.case.id == case_id)


def _failed_checks(result: RunResult, case_id: str) -> list[tuple[str, str]]:
    return [(c.name, c.detail) for s in _case(result, case_id).steps for c in s.failed_checks]


# -- our Edge Server -----------------------------------------------------------------------------
def test_every_imaging_source_suite_passes_against_our_edge_server(our_source: Source, schemas: SchemaSet) -> None:
    loader = StoreInstances("127.0.0.1", our_source.dicom_port, called_ae="XDSEDGE")
    result = _run(our_source.endpoint, schemas, loader, wado=our_source.wado,
                  options=frozenset({"simple-soap", "wado"}), settle=30.0)  # fmt: skip
    plan = plan_for("imaging-source")
    assert {s.name for s in plan.suites} == {"load", "retrieve", "transfer-syntax", "errors", "wado", "soap", "submit"}
    verdicts = {r.case.id: r.verdict for r in result.cases}
    for suite, case in plan.all_cases():
        # RAD-68 (option submit) needs a repository simulator: tests/test_conformance_imaging_submit.py.
        wanted = Verdict.NOT_APPLICABLE if suite.name == "submit" else Verdict.PASSED
        assert verdicts.get(case.id) is wanted, f"{case.id}: {verdicts.get(case.id)}\n{_failures(result)}"
    assert result.passed, _failures(result)
    # The instances went over C-STORE, one exchange each, and came back byte for byte.
    load = _case(result, "ids-load").steps[0]
    assert [e.label for e in load.exchanges] == ["A-ASSOCIATE"] + [f"C-STORE {i.key}" for i in DATA.instances]
    details = {c.name: c.detail for s in _case(result, "4803b").steps for c in s.checks}
    assert all("byte-identical" in details[f"{i.key} content"] for i in DATA.study("mr").instances)
    implicit = {c.name: c.detail for s in _case(result, "ts-implicit").steps for c in s.checks}
    assert IMPLICIT in implicit["ct-1 Part 10"] and "re-encoded" in implicit["ct-1 content"]


def test_the_cli_runs_the_plan_against_our_edge_server(our_source: Source, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    outcome = CliRunner().invoke(
        conformance,
        ["run", "--actor", "imaging-source", "--endpoint", our_source.endpoint, "--source-id", SOURCE_ID,
         "--dicom", f"127.0.0.1:{our_source.dicom_port}", "--dicom-ae", "XDSEDGE", "--wado", our_source.wado,
         "--case", "4803c", "--case", "4802c", "--case", "4811-01", "--schemas", str(SCHEMAS), "--junit", str(junit)],
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    root = etree.parse(str(junit)).getroot()
    assert (root.get("failures"), root.get("errors")) == ("0", "0")
    names = [tc.get("name").split()[0] for tc in root.iter("testcase")]
    assert names == ["ids-load", "4803c", "4811-01", "4802c"]


def test_a_wrong_source_id_fails_the_load_case(our_source: Source, schemas: SchemaSet) -> None:
    loader = StoreInstances("127.0.0.1", our_source.dicom_port, called_ae="XDSEDGE")
    config = RunConfig(endpoint=our_source.endpoint, schemas=schemas, patients=GivenPatients(()), timeout=30,
                       context={INSTANCES_KEY: loader, SOURCE_ID_KEY: "1.2.3.4.5"})  # fmt: skip
    result = Runner(imaging_source_plan(settle=0.5), config).run(cases=("4803a",))
    assert [r.verdict for r in result.cases] == [Verdict.FAILED, Verdict.SKIPPED]
    assert ("status", "expected Success, got Failure") in _failed_checks(result, "ids-load")


# -- a fake Imaging Document Source with one defect at a time ------------------------------------
def _q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


@dataclass(frozen=True)
class Defects:
    corrupt: bool = False  # flips a Pixel Data byte of every returned instance
    inline: bool = False  # answers simple SOAP with inline base64
    echo_home: bool = False  # HomeCommunityId in every DocumentResponse
    no_location: bool = False  # XDSDocumentUniqueIdError without location
    any_repository: bool = False  # serves whatever the RepositoryUniqueId
    ignore_series: bool = False  # does not check the study and series of an instance
    ignore_ts: bool = False  # always Explicit VR LE, whatever was asked
    mislabel: bool = False  # says Implicit VR LE, sends Explicit VR LE bytes
    lossy: bool = False  # drops Issuer of Patient ID when re-encoding
    no_partial: bool = False  # all or nothing
    any_ts: bool = False  # Explicit VR LE even when only an unknown syntax was asked
    wrong_mime: bool = False  # application/octet-stream
    wrong_action: bool = False  # a made-up response action
    schema_invalid: bool = False  # an attribute the schema does not allow
    wado_any_series: bool = False  # WADO ignores studyUID and seriesUID
    wado_octet: bool = False  # WADO answers application/octet-stream
    late: int = 0  # the first N RAD-69 requests find nothing (asynchronous indexing)


@dataclass
class FakeSource:
    """RAD-69 and WADO-URI over the test data (and over files a pre-load command put in ``inbox``)."""

    defects: Defects = Defects()
    preloaded: bool = True
    inbox: Path | None = None
    calls: int = 0
    seen: list[bytes] = field(default_factory=list)

    def stored(self) -> dict[str, tuple[str, str, bytes]]:
        found = {i.sop_uid: (i.study_uid, i.series_uid, i.data) for i in DATA.instances} if self.preloaded else {}
        for path in sorted(self.inbox.glob("*.dcm")) if self.inbox else []:
            ds = dcmread(path, stop_before_pixels=True)
            found[str(ds.SOPInstanceUID)] = (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), path.read_bytes())
        return found

    def _encode(self, data: bytes, syntax: str) -> bytes:
        d = self.defects
        if d.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 1])
        if syntax == EXPLICIT:
            return data
        if d.mislabel:
            meta = FileMetaDataset()
            original = dcmread(io.BytesIO(data)).file_meta
            meta.MediaStorageSOPClassUID = original.MediaStorageSOPClassUID
            meta.MediaStorageSOPInstanceUID = original.MediaStorageSOPInstanceUID
            meta.TransferSyntaxUID = IMPLICIT
            meta.ImplementationClassUID = original.ImplementationClassUID
            buffer = io.BytesIO()
            buffer.write(b"\0" * 128 + b"DICM")
            write_file_meta_info(buffer, meta, enforce_standard=True)  # type: ignore[arg-type]
            return buffer.getvalue() + data[dataset_offset(data) :]
        ds = dcmread(io.BytesIO(data))
        if d.lossy:
            del ds.IssuerOfPatientID
        ds.file_meta.TransferSyntaxUID = IMPLICIT
        buffer = io.BytesIO()
        ds.save_as(buffer, implicit_vr=True, little_endian=True, enforce_file_format=True)
        return buffer.getvalue()

    def _syntax(self, wanted: list[str]) -> str | None:
        if self.defects.ignore_ts:
            return EXPLICIT
        native = [s for s in wanted if s in (EXPLICIT, IMPLICIT)]
        return native[0] if native else (EXPLICIT if self.defects.any_ts else None)

    async def retrieve(self, request: SoapRequest) -> SoapResponse:
        d = self.defects
        self.calls += 1
        body = request.body
        wanted = [(t.text or "").strip() for t in body.iter(_q(NS_XDSI, "TransferSyntaxUID"))]
        wanted = [w for w in wanted if w]
        stored = self.stored() if self.calls > d.late else {}
        errors: list[RegistryError] = []
        found: list[tuple[etree._Element, bytes]] = []
        if not wanted:
            errors.append(RegistryError(ErrorCode.REPOSITORY_ERROR, "no transfer syntax"))
        for study in body.iterfind(_q(NS_XDSI, "StudyRequest")):
            for series in study.iterfind(_q(NS_XDSI, "SeriesRequest")):
                for item in series.iterfind(_q(NS_XDS, "DocumentRequest")):
                    where = (study.get("studyInstanceUID") or "", series.get("seriesInstanceUID") or "")
                    repository = item.findtext(_q(NS_XDS, "RepositoryUniqueId")) or ""
                    uid = item.findtext(_q(NS_XDS, "DocumentUniqueId")) or ""
                    syntax = self._syntax(wanted)
                    if not wanted:
                        continue
                    if not all(where):
                        errors.append(RegistryError(ErrorCode.REPOSITORY_ERROR, "empty UID", uid))
                    elif repository != SOURCE_ID and not d.any_repository:
                        errors.append(RegistryError(ErrorCode.UNKNOWN_REPOSITORY_ID, repository, uid))
                    elif uid not in stored or (not d.ignore_series and stored[uid][:2] != where):
                        errors.append(RegistryError(ErrorCode.DOCUMENT_UNIQUE_ID_ERROR, uid, "" if d.no_location else uid))
                    elif syntax is None:
                        errors.append(RegistryError(ErrorCode.REPOSITORY_ERROR, "cannot encode", uid))
                    else:
                        found.append((item, self._encode(stored[uid][2], syntax)))
        if d.no_partial and errors:
            found = []
        status = ResponseStatus.SUCCESS if not errors else ResponseStatus.PARTIAL_SUCCESS if found else ResponseStatus.FAILURE
        root = etree.Element(_q(NS_XDS, "RetrieveDocumentSetResponse"), nsmap={"xds": NS_XDS})
        root.append(build_registry_response(errors, status=status))
        parts = []
        for item, data in found:
            response = etree.SubElement(root, _q(NS_XDS, "DocumentResponse"))
            if d.schema_invalid:
                response.set("invented", "1")
            home = item.findtext(_q(NS_XDS, "HomeCommunityId")) or ("urn:oid:1.2.3" if d.echo_home else None)
            if home:
                etree.SubElement(response, _q(NS_XDS, "HomeCommunityId")).text = home
            etree.SubElement(response, _q(NS_XDS, "RepositoryUniqueId")).text = SOURCE_ID
            etree.SubElement(response, _q(NS_XDS, "DocumentUniqueId")).text = item.findtext(_q(NS_XDS, "DocumentUniqueId"))
            mime = "application/octet-stream" if d.wrong_mime else "application/dicom"
            etree.SubElement(response, _q(NS_XDS, "mimeType")).text = mime
            document = etree.SubElement(response, _q(NS_XDS, "Document"))
            if d.inline:
                document.text = base64.b64encode(data).decode()
            else:
                content_id = new_content_id()
                document.append(xop_include(content_id))
                parts.append(OutgoingPart(content_id, mime, data))
        action = "urn:ihe:rad:2009:RetrieveImagingDocumentSetResponse" if d.wrong_action else Action.RAD69_RESPONSE
        return SoapResponse(action=action, body=root, attachments=parts, mtom=not d.inline)

    async def wado(self, request: Request) -> Response:
        d = self.defects
        params = request.query_params
        item = self.stored().get(params.get("objectUID", ""))
        if item is None or (not d.wado_any_series and item[:2] != (params.get("studyUID"), params.get("seriesUID"))):
            return Response(b"not found", status_code=404)
        data = self._encode(item[2], EXPLICIT)  # stored Explicit VR LE: as stored (or corrupted)
        return Response(data, media_type="application/octet-stream" if d.wado_octet else "application/dicom")


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[Callable[[FakeSource], str]]:
    """Start fake sources in server threads; returns the base URL (RAD-69 at /ids, WADO at /wado)."""
    servers: list[ServerThread] = []

    def start(source: FakeSource) -> str:
        service = SoapService(path="/ids", handlers={Action.RAD69: source.retrieve})
        app = soap_app(services=[service], spool_dir=tmp_path / f"spool{len(servers)}",
                       extra_routes=[Route("/wado", source.wado, methods=["GET"])])  # fmt: skip
        server = ServerThread(app)
        server.start()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


BROKEN = [
    pytest.param(Defects(corrupt=True), "4803a", "ct-1 content", "Pixel Data differs", id="wrong-bytes"),
    pytest.param(Defects(inline=True), "4803a", "MTOM response", "application/soap+xml", id="not-MTOM"),
    pytest.param(Defects(echo_home=True), "4820", "ct-1 HomeCommunityId", "response has urn:oid:1.2.3", id="echoes-home"),
    pytest.param(Defects(no_location=True), "4811-02", "XDSDocumentUniqueIdError location", "expected", id="no-location"),
    pytest.param(Defects(any_repository=True), "4811-01", "error XDSUnknownRepositoryId", "none", id="any-repository"),
    pytest.param(Defects(ignore_series=True), "4811-03", "status", "got Success", id="series-not-checked"),
    pytest.param(Defects(ignore_series=True), "4811-04", "status", "got Success", id="study-not-checked"),
    pytest.param(Defects(ignore_ts=True), "ts-implicit", "ct-1 Part 10", "was not requested", id="syntax-not-asked"),
    pytest.param(Defects(mislabel=True), "ts-implicit", "ct-1 Part 10", "not encoded as", id="mislabelled-syntax"),
    pytest.param(Defects(lossy=True), "ts-implicit", "ct-1 content", "(0010,0021) missing", id="lossy-re-encoding"),
    pytest.param(Defects(no_partial=True), "rad69-partial", "status", "got Failure", id="no-PartialSuccess"),
    pytest.param(Defects(any_ts=True), "4811-09", "status", "got Success", id="unsupported-syntax-served"),
    pytest.param(Defects(wrong_mime=True), "4803c", "mm-1 mimeType", "application/octet-stream", id="wrong-mimeType"),
    pytest.param(Defects(wrong_action=True), "ids-load", "wsa:Action", "RetrieveImagingDocumentSetResponse",
                 id="wrong-response-action"),
    pytest.param(Defects(schema_invalid=True), "ids-load", "XSD", "invented", id="schema-invalid"),
    pytest.param(Defects(wado_any_series=True), "4810", "HTTP status", "got 200", id="wado-mismatch-served"),
    pytest.param(Defects(wado_octet=True), "4802a", "Content-Type", "application/octet-stream", id="wado-content-type"),
    pytest.param(Defects(corrupt=True), "4802b", "mr-1 content", "Pixel Data differs", id="wado-wrong-bytes"),
]  # fmt: skip


@pytest.mark.parametrize(("defects", "case", "check", "detail"), BROKEN)
def test_a_source_with_one_defect_fails_that_check(
    fake: Callable[[FakeSource], str], schemas: SchemaSet, defects: Defects, case: str, check: str, detail: str
) -> None:
    base = fake(FakeSource(defects))
    result = _run(base + "/ids", schemas, PreloadedInstances(), wado=base + "/wado", cases=(case,),
                  options=frozenset({"wado"}))  # fmt: skip
    assert _case(result, case).verdict is Verdict.FAILED, _failures(result)
    failed = _failed_checks(result, case)
    matching = [d for name, d in failed if name == check]
    assert matching, f"no failed {check!r} check; failed: {failed}"
    assert any(detail in d for d in matching), matching


def test_the_fake_without_defects_passes_every_case(fake: Callable[[FakeSource], str], schemas: SchemaSet) -> None:
    base = fake(FakeSource())
    result = _run(base + "/ids", schemas, PreloadedInstances(), wado=base + "/wado",
                  options=frozenset({"wado", "simple-soap"}))  # fmt: skip
    assert len(result.cases) == len(plan_for("imaging-source").all_cases())
    assert result.passed, _failures(result)


def test_a_source_that_indexes_late_passes_after_settling(fake: Callable[[FakeSource], str], schemas: SchemaSet) -> None:
    base = fake(FakeSource(Defects(late=3)))
    result = _run(base + "/ids", schemas, PreloadedInstances(), cases=("4803a",), settle=30.0)
    assert result.passed, _failures(result)
    assert "4 attempts" in _case(result, "ids-load").steps[1].message


def test_without_the_data_the_load_case_fails_and_the_rest_is_skipped(
    fake: Callable[[FakeSource], str], schemas: SchemaSet
) -> None:
    base = fake(FakeSource(preloaded=False))
    result = _run(base + "/ids", schemas, PreloadedInstances(), cases=("4803a", "4811-02"), settle=0.5)
    assert [(r.case.id, r.verdict) for r in result.cases] == [
        ("ids-load", Verdict.FAILED), ("4803a", Verdict.SKIPPED), ("4811-02", Verdict.SKIPPED)
    ]  # fmt: skip
    assert ("status", "expected Success, got Failure") in _failed_checks(result, "ids-load")


def test_an_unreachable_storage_scp_is_a_runner_error(fake: Callable[[FakeSource], str], schemas: SchemaSet) -> None:
    base = fake(FakeSource())
    loader = StoreInstances("127.0.0.1", _free_port(), called_ae="NOBODY", timeout=5)
    result = _run(base + "/ids", schemas, loader, cases=("4803a",))
    assert [r.verdict for r in result.cases] == [Verdict.ERROR, Verdict.SKIPPED]
    assert _failed_checks(result, "ids-load")[0][0] == "association"


def test_the_preload_command_loads_each_file(
    fake: Callable[[FakeSource], str], schemas: SchemaSet, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    base = fake(FakeSource(preloaded=False, inbox=inbox))
    copy = f"{shlex.quote(sys.executable)} -c 'import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])' {{file}} {inbox}"
    loader = CommandInstances(copy, tmp_path / "files")
    result = _run(base + "/ids", schemas, loader, cases=("4803b",))
    assert result.passed, _failures(result)
    assert sorted(p.name for p in inbox.iterdir()) == sorted(i.file_name for i in DATA.instances)
    failing = CommandInstances(f"{shlex.quote(sys.executable)} -c 'raise SystemExit(3)' {{sop_uid}}", tmp_path / "f2")
    result = _run(base + "/ids", schemas, failing, cases=("4803b",))
    assert _case(result, "ids-load").verdict is Verdict.FAILED
    assert ("pre-load ct-1", "exit 3") in _failed_checks(result, "ids-load")


def test_the_cli_with_a_preload_command_and_wado(fake: Callable[[FakeSource], str], tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    base = fake(FakeSource(preloaded=False, inbox=inbox))
    copy = f"{shlex.quote(sys.executable)} -c 'import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])' {{file}} {inbox}"
    outcome = CliRunner().invoke(
        conformance,
        ["run", "--actor", "imaging-source", "--endpoint", base + "/ids", "--source-id", SOURCE_ID,
         "--preload-command", copy, "--wado", base + "/wado", "--suite", "wado", "--schemas", str(SCHEMAS),
         "--html", str(report)],
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    assert "4810" in outcome.output and "4802c" in outcome.output
    # The report holds the pre-load commands and the WADO requests as evidence.
    text = report.read_text(encoding="utf-8")
    assert "pre-load ct-1" in text and "RAD-55 unknown_object" in text and "requestType=WADO" in text


# -- the pieces on their own ---------------------------------------------------------------------
def test_the_test_data_is_deterministic_with_real_pixels_and_valid_uids() -> None:
    again = imaging_test_data()
    assert [i.data for i in again.instances] == [i.data for i in DATA.instances]
    assert len(DATA.instances) == 9 and {i.modality for i in DATA.instances} == {"CT", "MR"}
    uid = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+\Z")
    for item in DATA.instances:
        ds = item.dataset()
        for value in (item.sop_uid, item.series_uid, item.study_uid, *DATA.unknown_uids):
            assert uid.match(value) and len(value) <= 64 and value.startswith(DATA_ROOT + ".")
        assert ds.file_meta.TransferSyntaxUID == EXPLICIT
        pixels = ds.pixel_array
        assert pixels.shape == (32, 32) and len(set(pixels.flatten().tolist())) > 100
        assert item.data[dataset_offset(item.data) :] == item.dataset_bytes
    assert len({i.sop_uid for i in DATA.instances}) == 9
    assert set(DATA.unknown_uids).isdisjoint({i.sop_uid for i in DATA.instances})
    assert [len(s.series_uids) for s in DATA.studies] == [1, 2, 2]
    assert str(DATA.study("mr").instances[0].dataset().PatientName) == "MÜLLER^JÜRGEN"
    assert instance_keys() == tuple(i.key for i in DATA.instances)
    assert [instance_keys(s.key) for s in DATA.studies] == [tuple(i.key for i in s.instances) for s in DATA.studies]


def test_the_rad69_request_is_schema_valid_and_grouped(schemas: SchemaSet) -> None:
    items = [Ask(i.study_uid, i.series_uid, SOURCE_ID, i.sop_uid) for i in (*DATA.study("mr").instances, DATA.instances[0])]
    request = rad69_request(items, [EXPLICIT, IMPLICIT])
    assert schemas.validate(request) == []
    studies = request.findall(_q(NS_XDSI, "StudyRequest"))
    assert [len(s.findall(_q(NS_XDSI, "SeriesRequest"))) for s in studies] == [2, 1]
    assert [t.text for t in request.iter(_q(NS_XDSI, "TransferSyntaxUID"))] == [EXPLICIT, IMPLICIT]


def test_judging_an_instance_finds_each_kind_of_difference() -> None:
    item = DATA.instance("ct-2")
    ok = judge_instance(item, item.data, accepted=[EXPLICIT])
    assert all(c.passed for c in ok), ok
    assert not judge_instance(item, item.data, accepted=[IMPLICIT])[0].passed
    other = DATA.instance("ct-3")
    wrong = judge_instance(item, other.data, accepted=[EXPLICIT])
    assert [c.passed for c in wrong] == [False, False]
    assert not judge_instance(item, b"not dicom", accepted=[EXPLICIT])[0].passed
    assert not judge_instance(item, None, accepted=[EXPLICIT])[0].passed


def test_the_cli_needs_a_source_id_and_exactly_one_way_to_load(tmp_path: Path) -> None:
    base = ["run", "--actor", "imaging-source", "--endpoint", "http://127.0.0.1:9/ids", "--schemas", str(SCHEMAS)]
    missing = CliRunner().invoke(conformance, [*base, "--preloaded"])
    assert missing.exit_code == 2 and "--source-id" in missing.output
    two = CliRunner().invoke(conformance, [*base, "--source-id", SOURCE_ID, "--preloaded", "--dicom", "h:1"])
    assert two.exit_code == 2 and "one way" in two.output
    no_ae = CliRunner().invoke(conformance, [*base, "--source-id", SOURCE_ID, "--dicom", "127.0.0.1:9"])
    assert no_ae.exit_code == 2 and "--dicom-ae" in no_ae.output
    no_wado = CliRunner().invoke(conformance, [*base, "--source-id", SOURCE_ID, "--preloaded", "--option", "wado"])
    assert no_wado.exit_code == 2 and "--wado" in no_wado.output


def test_the_cli_writes_the_test_data_and_lists_the_plan(tmp_path: Path) -> None:
    outcome = CliRunner().invoke(conformance, ["dicom-data", str(tmp_path / "data")])
    assert outcome.exit_code == 0, outcome.output
    for item in DATA.instances:
        assert (tmp_path / "data" / item.file_name).read_bytes() == item.data
        assert item.sop_uid in outcome.output
    rows = (tmp_path / "data" / "uids.tsv").read_text().splitlines()
    assert len(rows) == 1 + len(DATA.instances)
    listing = CliRunner().invoke(conformance, ["list", "--actor", "imaging-source", "--steps"])
    assert listing.exit_code == 0, listing.output
    for case_id in ("ids-load", "4803a", "4803c", "4811-01", "4811-09", "4820", "4810", "ts-implicit", "soap-version"):
        assert case_id in listing.output
    assert "XDSUnknownRepositoryId" in listing.output and DATA.study("ct").study_uid in listing.output
