"""The repository test plan against our own Document Repository, and against broken ones.

Our repository is started through its CLI (``python -m repository serve``) on loopback, sending
ITI-42 to the runner's registry simulator; every repository suite must pass against it. Then a
small in-process fake repository, correct by default, is given one defect at a time (it drops
the hash, keeps a document the registry refused, does not check hashes, answers with its own
error instead of the registry's, edits the metadata, echoes HomeCommunityId, answers ITI-43 with
inline base64, ...) and the runner must fail exactly the case and the check that rule belongs
to. Reply-level defects of our real repository (a SOAP 1.1 reply, a schema-invalid body) go
through a rewriting proxy.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from lxml import etree

from conformance_tests.cli import conformance
from conformance_tests.model import RunResult, Verdict
from conformance_tests.patients import GivenPatients
from conformance_tests.plans import plan_for
from conformance_tests.runner import RunConfig, Runner
from conformance_tests.schemas import SchemaSet
from conformance_tests.rmd import ITI86_ACTION, ITI86_RESPONSE_ACTION
from conformance_tests.simulators.registry import CONTEXT_KEY, RegistrySimulator
from xds.errors import ErrorCode, RegistryError
from xds.http.server import ServerThread, SoapRequest, SoapResponse, SoapService, soap_app
from xds.metadata.responses import build_registry_response
from xds.soap import OutgoingPart, build_request, new_content_id, soap_content_type, xop_include
from xds.vocabulary import NS_LCM, NS_RIM, NS_RS, NS_XDS, Action, IdScheme, ResponseStatus, SlotName
from xds.xml import parse_xml

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO.parent / "shared" / "schemas"
REPOSITORY_ID = "1.3.6.1.4.1.21367.13.40.216"

pytestmark = pytest.mark.skipif(not SCHEMAS.is_dir(), reason=f"shared schemas not found at {SCHEMAS}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def schemas() -> SchemaSet:
    return SchemaSet.load(SCHEMAS)


@pytest.fixture(scope="module")
def simulator(schemas: SchemaSet) -> Iterator[RegistrySimulator]:
    with RegistrySimulator(schemas=schemas) as sim:
        yield sim


@pytest.fixture(scope="module")
def our_repository(simulator: RegistrySimulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m repository serve`` on a free loopback port, sending ITI-42 to the simulator."""
    directory = tmp_path_factory.mktemp("repository")
    port = _free_port()
    command = [
        sys.executable, "-m", "repository", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--registry", simulator.url, "--repository-id", REPOSITORY_ID, "--data-dir", str(directory),
        "--registry-timeout", "10",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    log_path = directory / "repository.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    url = f"http://127.0.0.1:{port}/repository"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"the repository exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the repository did not start:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield url
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
    simulator: RegistrySimulator,
    *,
    cases: tuple[str, ...] = (),
    suites: tuple[str, ...] = (),
    options: frozenset[str] = frozenset(),
    transport: httpx.BaseTransport | None = None,
) -> RunResult:
    config = RunConfig(
        endpoint=endpoint,
        schemas=schemas,
        patients=GivenPatients(()),
        timeout=30,
        options=options,
        context={CONTEXT_KEY: simulator},
    )
    return Runner(plan_for("repository"), config, http_transport=transport).run(cases=cases, suites=suites)


def _failures(result: RunResult) -> str:
    return "\n".join(
        f"{r.case.id} {r.verdict.value}: {r.summary()}" for r in result.cases if r.verdict is not Verdict.PASSED
    )


def _failed_checks(result: RunResult, case_id: str) -> list[tuple[str, str]]:
    case = next(r for r in result.cases if r.case.id == case_id)
    return [(c.name, c.detail) for s in case.steps for c in s.failed_checks]


# -- our repository ------------------------------------------------------------------------------
def test_every_repository_suite_passes_against_our_repository(
    our_repository: str, schemas: SchemaSet, simulator: RegistrySimulator
) -> None:
    result = _run(our_repository, schemas, simulator, options=frozenset({"simple-soap"}))
    verdicts = {r.case.id: r.verdict for r in result.cases}
    plan = plan_for("repository")
    assert {s.name for s in plan.suites} == {"provide", "retrieve", "soap", "remove-documents"}
    # Over http:// without the options, 12028 (TLS) and ITI-86 (not implemented) are not applicable.
    optional = {"tls", "remove-documents"}
    for _suite, case in plan.all_cases():
        expected = Verdict.NOT_APPLICABLE if case.option in optional else Verdict.PASSED
        assert verdicts.get(case.id) is expected, f"{case.id}: {verdicts.get(case.id)}\n{_failures(result)}"
    assert result.passed, _failures(result)
    removal = next(r for r in result.cases if r.case.id == "rd-one")
    assert removal.message == "not applicable: option 'remove-documents' not declared (--option remove-documents)"
    assert removal.steps == []
    # The checks on the ITI-42 really ran: every forwarding step saw one registration.
    first = next(r for r in result.cases if r.case.id == "11966").steps[0]
    names = {c.name for c in first.checks}
    assert {"one ITI-42 sent", "d1 hash", "d1 size", "d1 repositoryUniqueId", "metadata relayed unchanged"} <= names
    assert [e.label for e in first.exchanges] == ["ITI-41 submit", "ITI-42 received by the registry simulator"]
    assert b"RegisterDocumentSet-b" in first.exchanges[1].request_body


def test_the_repository_id_learned_is_the_configured_one(
    our_repository: str, schemas: SchemaSet, simulator: RegistrySimulator
) -> None:
    result = _run(our_repository, schemas, simulator, cases=("12029",))
    assert result.passed, _failures(result)
    registration = simulator.registrations[-1]
    values = [
        v.text
        for e in registration.document_entries()
        for s in e.iterfind(f"{{{NS_RIM}}}Slot")
        if s.get("name") == SlotName.REPOSITORY_UNIQUE_ID
        for v in s.iter(f"{{{NS_RIM}}}Value")
    ]
    assert values == [REPOSITORY_ID]


def test_simple_soap_cases_are_skipped_unless_the_option_is_given(
    our_repository: str, schemas: SchemaSet, simulator: RegistrySimulator
) -> None:
    result = _run(our_repository, schemas, simulator, cases=("pnr-simple-soap", "ret-simple-request"))
    assert [(r.case.id, r.verdict) for r in result.cases] == [
        ("pnr-simple-soap", Verdict.NOT_APPLICABLE),
        ("ret-simple-request", Verdict.NOT_APPLICABLE),
    ]


# -- reply-level defects of our repository, through a rewriting proxy ----------------------------
Mutation = Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]]


def _proxy(target: str, mutate: Mutation) -> httpx.MockTransport:
    client = httpx.Client(timeout=30)

    def handle(request: httpx.Request) -> httpx.Response:
        reply = client.post(target, content=request.read(), headers={"content-type": request.headers["content-type"]})
        body, headers = mutate(reply.content, {"content-type": reply.headers.get("content-type", "")})
        return httpx.Response(reply.status_code, content=body, headers=headers)

    return httpx.MockTransport(handle)


def _soap11(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return body.replace(b"http://www.w3.org/2003/05/soap-envelope", b"http://schemas.xmlsoap.org/soap/envelope/"), headers


def _schema_invalid(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return re.sub(rb"(<(\w+:)?RegistryResponse [^>]*?)(/?)>", rb'\1 invented="1"\3>', body, count=1), headers


@pytest.mark.parametrize(
    ("mutate", "check"), [(_soap11, "SOAP 1.2 envelope"), (_schema_invalid, "XSD")], ids=["SOAP-1.1-reply", "schema-invalid"]
)
def test_a_reply_level_defect_fails_its_check(
    our_repository: str, schemas: SchemaSet, simulator: RegistrySimulator, mutate: Mutation, check: str
) -> None:
    result = _run(our_repository, schemas, simulator, cases=("11966",), transport=_proxy(our_repository, mutate))
    assert check in [name for name, _ in _failed_checks(result, "11966")], _failures(result)
    assert not result.passed


def test_the_unmutated_proxy_passes(our_repository: str, schemas: SchemaSet, simulator: RegistrySimulator) -> None:
    result = _run(our_repository, schemas, simulator, cases=("11966",), transport=_proxy(our_repository, lambda b, h: (b, h)))
    assert result.passed, _failures(result)


# -- a fake repository with one defect at a time -------------------------------------------------
def _q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


@dataclass(frozen=True)
class Defects:
    drop_hash: bool = False  # ITI-42 without the hash slot
    keep_refused: bool = False  # keeps documents the registry refused
    skip_hash_check: bool = False  # registers a wrong hash/size
    own_error: bool = False  # answers XDSRepositoryError instead of relaying the registry's errors
    edit_metadata: bool = False  # changes the document title on the way
    wrong_down_code: bool = False  # XDSRepositoryError when the registry is down
    allow_duplicates: bool = False  # no XDSRepositoryDuplicateUniqueIdInMessage
    echo_home: bool = False  # HomeCommunityId in every DocumentResponse
    inline_retrieve: bool = False  # ITI-43 as simple SOAP with inline base64
    wrong_mime: bool = False  # returns application/octet-stream
    corrupt: bool = False  # flips a byte of every returned document
    simple_response: bool = False  # ITI-41 answered as simple SOAP whatever the request
    no_location: bool = False  # XDSDocumentUniqueIdError without location
    any_repository: bool = False  # serves documents whatever the RepositoryUniqueId
    remove_nothing: bool = False  # ITI-86 answers Success but keeps the documents
    remove_unknown_ok: bool = False  # ITI-86 answers Success for a document it never had


def _slot(entry: etree._Element, name: str) -> str | None:
    for slot in entry.iterfind(_q(NS_RIM, "Slot")):
        if slot.get("name") == name:
            value = slot.find(f"{_q(NS_RIM, 'ValueList')}/{_q(NS_RIM, 'Value')}")
            return None if value is None else (value.text or "").strip()
    return None


def _set_slot(entry: etree._Element, name: str, value: str) -> None:
    for slot in list(entry.iterfind(_q(NS_RIM, "Slot"))):
        if slot.get("name") == name:
            entry.remove(slot)
    slot = etree.Element(_q(NS_RIM, "Slot"), name=name)
    etree.SubElement(etree.SubElement(slot, _q(NS_RIM, "ValueList")), _q(NS_RIM, "Value")).text = value
    entry.insert(0, slot)


def _unique_id(entry: etree._Element) -> str:
    for ext in entry.iterfind(_q(NS_RIM, "ExternalIdentifier")):
        if ext.get("identificationScheme") == IdScheme.DE_UNIQUE_ID:
            return ext.get("value") or ""
    return ""


@dataclass
class FakeRepository:
    """ITI-41 and ITI-43, just enough to pass the plan, with optional defects."""

    registry: str
    defects: Defects = Defects()
    documents: dict[str, tuple[str, bytes]] = field(default_factory=dict)

    def _reply(self, errors: list[RegistryError], *, request: SoapRequest) -> SoapResponse:
        mtom = False if self.defects.simple_response else None
        return SoapResponse(action=Action.ITI41_RESPONSE, body=build_registry_response(errors), mtom=mtom)

    async def provide(self, request: SoapRequest) -> SoapResponse:
        d = self.defects
        sor = request.body.find(_q(NS_LCM, "SubmitObjectsRequest"))
        assert sor is not None
        entries = {e.get("id"): e for e in sor.iter(_q(NS_RIM, "ExtrinsicObject"))}
        contents = {x.get("id"): request.binary(x).read_bytes() for x in request.body.iterfind(_q(NS_XDS, "Document"))}
        errors = [RegistryError(ErrorCode.MISSING_DOCUMENT, f"{i} has no document", i) for i in entries if i not in contents]
        errors += [RegistryError(ErrorCode.MISSING_DOCUMENT_METADATA, f"{i} has no entry", i) for i in contents if i not in entries]
        counts = Counter(_unique_id(e) for e in entries.values())
        if not d.allow_duplicates:
            errors += [RegistryError(ErrorCode.REPOSITORY_DUPLICATE_UNIQUE_ID_IN_MESSAGE, u, u) for u, n in counts.items() if n > 1]
        for entry_id, entry in entries.items():
            data = contents.get(entry_id, b"")
            given_hash, given_size = _slot(entry, SlotName.HASH), _slot(entry, SlotName.SIZE)
            wrong = (given_hash is not None and given_hash.lower() != hashlib.sha1(data).hexdigest()) or (
                given_size is not None and given_size != str(len(data))
            )
            if wrong and not d.skip_hash_check:
                errors.append(RegistryError(ErrorCode.REPOSITORY_METADATA_ERROR, f"{entry_id}: hash or size", entry_id))
        if errors:
            return self._reply(errors, request=request)
        for entry_id, entry in entries.items():
            data = contents[entry_id]
            if not d.drop_hash:
                _set_slot(entry, SlotName.HASH, hashlib.sha1(data).hexdigest())
            _set_slot(entry, SlotName.SIZE, str(len(data)))
            _set_slot(entry, SlotName.REPOSITORY_UNIQUE_ID, REPOSITORY_ID)
            if d.edit_metadata:
                for text in entry.iter(_q(NS_RIM, "LocalizedString")):
                    text.set("value", "edited by the repository")
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                reply = await client.post(
                    self.registry,
                    content=build_request(sor, action=Action.ITI42, to=self.registry),
                    headers={"content-type": soap_content_type(Action.ITI42)},
                )
        except httpx.ConnectError:
            code = ErrorCode.REPOSITORY_ERROR if d.wrong_down_code else ErrorCode.REGISTRY_NOT_AVAILABLE
            return self._reply([RegistryError(code, "the registry is not available")], request=request)
        response = parse_xml(reply.content).find(f".//{_q(NS_RS, 'RegistryResponse')}")
        assert response is not None
        accepted = response.get("status") == ResponseStatus.SUCCESS
        if accepted or d.keep_refused:
            for entry_id, entry in entries.items():
                self.documents[_unique_id(entry)] = (entry.get("mimeType") or "", contents[entry_id])
        if accepted:
            return self._reply([], request=request)
        if d.own_error:
            return self._reply([RegistryError(ErrorCode.REPOSITORY_ERROR, "the registry said no")], request=request)
        return SoapResponse(action=Action.ITI41_RESPONSE, body=response, mtom=False if d.simple_response else None)

    async def retrieve(self, request: SoapRequest) -> SoapResponse:
        d = self.defects
        errors: list[RegistryError] = []
        found: list[tuple[etree._Element, str, bytes]] = []
        for item in request.body.iterfind(_q(NS_XDS, "DocumentRequest")):
            repository = item.findtext(_q(NS_XDS, "RepositoryUniqueId")) or ""
            uid = item.findtext(_q(NS_XDS, "DocumentUniqueId")) or ""
            if repository != REPOSITORY_ID and not d.any_repository:
                errors.append(RegistryError(ErrorCode.UNKNOWN_REPOSITORY_ID, repository, uid))
            elif uid not in self.documents:
                errors.append(RegistryError(ErrorCode.DOCUMENT_UNIQUE_ID_ERROR, uid, "" if d.no_location else uid))
            else:
                mime, data = self.documents[uid]
                found.append((item, mime, data))
        status = ResponseStatus.SUCCESS if not errors else ResponseStatus.PARTIAL_SUCCESS if found else ResponseStatus.FAILURE
        root = etree.Element(_q(NS_XDS, "RetrieveDocumentSetResponse"), nsmap={"xds": NS_XDS})
        root.append(build_registry_response(errors, status=status))
        parts = []
        for item, mime, data in found:
            response = etree.SubElement(root, _q(NS_XDS, "DocumentResponse"))
            home = item.findtext(_q(NS_XDS, "HomeCommunityId")) or ("urn:oid:1.2.3" if d.echo_home else None)
            if home:
                etree.SubElement(response, _q(NS_XDS, "HomeCommunityId")).text = home
            etree.SubElement(response, _q(NS_XDS, "RepositoryUniqueId")).text = REPOSITORY_ID
            etree.SubElement(response, _q(NS_XDS, "DocumentUniqueId")).text = item.findtext(_q(NS_XDS, "DocumentUniqueId"))
            etree.SubElement(response, _q(NS_XDS, "mimeType")).text = "application/octet-stream" if d.wrong_mime else mime
            if d.corrupt:
                data = bytes([data[0] ^ 1]) + data[1:]
            document = etree.SubElement(response, _q(NS_XDS, "Document"))
            if d.inline_retrieve:
                document.text = base64.b64encode(data).decode()
            else:
                content_id = new_content_id()
                document.append(xop_include(content_id))
                parts.append(OutgoingPart(content_id, mime, data))
        return SoapResponse(action=Action.ITI43_RESPONSE, body=root, attachments=parts, mtom=not d.inline_retrieve)


    async def remove(self, request: SoapRequest) -> SoapResponse:
        """ITI-86 Remove Documents (ITI TF-2b §3.86.4.1.3), ITI-43 semantics per DocumentRequest."""
        d = self.defects
        errors: list[RegistryError] = []
        removed = 0
        for item in request.body.iterfind(_q(NS_XDS, "DocumentRequest")):
            repository = item.findtext(_q(NS_XDS, "RepositoryUniqueId")) or ""
            uid = item.findtext(_q(NS_XDS, "DocumentUniqueId")) or ""
            if repository != REPOSITORY_ID:
                errors.append(RegistryError(ErrorCode.UNKNOWN_REPOSITORY_ID, repository, uid))
            elif uid not in self.documents and not d.remove_unknown_ok:
                errors.append(RegistryError(ErrorCode.DOCUMENT_UNIQUE_ID_ERROR, uid, uid))
            else:
                removed += 1
                if not d.remove_nothing:
                    self.documents.pop(uid, None)
        status = ResponseStatus.SUCCESS if not errors else ResponseStatus.PARTIAL_SUCCESS if removed else ResponseStatus.FAILURE
        return SoapResponse(action=ITI86_RESPONSE_ACTION, body=build_registry_response(errors, status=status))


@pytest.fixture
def fake(simulator: RegistrySimulator, tmp_path: Path) -> Iterator[Callable[[Defects], str]]:
    """Start fake repositories (in server threads) that send ITI-42 to the simulator."""
    servers: list[ServerThread] = []

    def start(defects: Defects) -> str:
        repository = FakeRepository(simulator.url, defects)
        handlers = {Action.ITI41: repository.provide, Action.ITI43: repository.retrieve, ITI86_ACTION: repository.remove}
        service = SoapService(path="/repository", handlers=handlers)
        server = ServerThread(soap_app(services=[service], spool_dir=tmp_path / f"spool{len(servers)}"))
        server.start()
        servers.append(server)
        return server.url + "/repository"

    yield start
    for server in servers:
        server.stop()


BROKEN = [
    pytest.param(Defects(drop_hash=True), "11966", "d1 hash", "got []", id="drops-hash"),
    pytest.param(Defects(keep_refused=True), "11986", "status", "expected Failure, got Success", id="keeps-refused-document"),
    pytest.param(Defects(skip_hash_check=True), "11981", "no ITI-42 sent", "reached the registry", id="no-hash-check"),
    pytest.param(Defects(own_error=True), "11986", "relayed XDSPatientIdDoesNotMatch", "XDSRepositoryError",
                 id="registry-error-not-relayed"),
    pytest.param(Defects(edit_metadata=True), "11966", "metadata relayed unchanged", "changed", id="edits-metadata"),
    pytest.param(Defects(wrong_down_code=True), "pnr-registry-down", "error XDSRegistryNotAvailable", "XDSRepositoryError",
                 id="registry-down-wrong-code"),
    pytest.param(Defects(allow_duplicates=True), "pnr-duplicate-uid", "error XDSRepositoryDuplicateUniqueIdInMessage",
                 "none", id="duplicates-accepted"),
    pytest.param(Defects(echo_home=True), "12029", "d1 HomeCommunityId", "response has urn:oid:1.2.3", id="echoes-home"),
    pytest.param(Defects(inline_retrieve=True), "12029", "MTOM response", "application/soap+xml", id="retrieve-not-MTOM"),
    pytest.param(Defects(wrong_mime=True), "12360", "pdf mimeType", "application/octet-stream", id="wrong-mimeType"),
    pytest.param(Defects(corrupt=True), "12029", "d1 bytes", "got", id="bytes-differ"),
    pytest.param(Defects(simple_response=True), "11966", "response packaging", "response simple SOAP",
                 id="ITI-41-answer-not-MTOM"),
    pytest.param(Defects(no_location=True), "ret-unknown-uid", "XDSDocumentUniqueIdError location", "expected",
                 id="error-without-location"),
    pytest.param(Defects(any_repository=True), "ret-unknown-repository", "error XDSUnknownRepositoryId", "none",
                 id="any-repository-id"),
    pytest.param(Defects(remove_nothing=True), "rd-one", "status", "expected Failure, got Success",
                 id="ITI-86-removes-nothing"),
    pytest.param(Defects(remove_nothing=True), "rd-two", "status", "expected Failure, got Success",
                 id="ITI-86-removes-nothing-of-two"),
    pytest.param(Defects(remove_unknown_ok=True), "rd-unknown", "status", "expected Failure, got Success",
                 id="ITI-86-unknown-document-accepted"),
    pytest.param(Defects(remove_unknown_ok=True), "rd-partial", "status", "expected PartialSuccess, got Success",
                 id="ITI-86-partial-as-success"),
]  # fmt: skip


@pytest.mark.parametrize(("defects", "case", "check", "detail"), BROKEN)
def test_a_repository_with_one_defect_fails_that_check(
    fake: Callable[[Defects], str],
    schemas: SchemaSet,
    simulator: RegistrySimulator,
    defects: Defects,
    case: str,
    check: str,
    detail: str,
) -> None:
    # The fake claims ITI-86 (the option), so the remove-documents cases are judged.
    result = _run(fake(defects), schemas, simulator, cases=(case,), options=frozenset({"remove-documents"}))
    outcome = next(r for r in result.cases if r.case.id == case)
    assert outcome.verdict is Verdict.FAILED, _failures(result)
    failed = _failed_checks(result, case)
    matching = [d for name, d in failed if name == check]
    assert matching, f"no failed {check!r} check; failed: {failed}"
    assert any(detail in d for d in matching), matching


def test_the_fake_without_defects_passes_the_cases_above(
    fake: Callable[[Defects], str], schemas: SchemaSet, simulator: RegistrySimulator
) -> None:
    cases = tuple(sorted({p.values[1] for p in BROKEN}))  # type: ignore[misc]
    result = _run(fake(Defects()), schemas, simulator, cases=cases, options=frozenset({"remove-documents"}))
    assert {r.case.id for r in result.cases} >= set(cases)
    assert result.passed, _failures(result)


def test_the_remove_documents_suite_passes_against_a_peer_that_declares_it(
    fake: Callable[[Defects], str], schemas: SchemaSet, simulator: RegistrySimulator
) -> None:
    endpoint = fake(Defects())
    declared = _run(endpoint, schemas, simulator, suites=("remove-documents",), options=frozenset({"remove-documents"}))
    verdicts = {r.case.id: r.verdict for r in declared.cases}
    assert verdicts == dict.fromkeys(("rd-one", "rd-two", "rd-unknown", "rd-partial", "rd-other-repository"),
                                     Verdict.PASSED), _failures(declared)  # fmt: skip
    sent = [e for r in declared.cases for s in r.steps for e in s.exchanges if e.label.startswith("ITI-86")]
    assert sent and all(b"urn:ihe:iti:2017:RemoveDocuments" in e.request_body for e in sent)
    assert all(b"RemoveDocumentsRequest" in e.request_body and b"urn:ihe:iti:rmd:2017" in e.request_body for e in sent)
    # The same peer without the option declared: not applicable, and no ITI-86 is sent.
    undeclared = _run(endpoint, schemas, simulator, suites=("remove-documents",))
    assert {r.verdict for r in undeclared.cases} == {Verdict.NOT_APPLICABLE}
    assert not [s for r in undeclared.cases for s in r.steps]


# -- the CLI -------------------------------------------------------------------------------------
def test_the_cli_starts_the_simulator_on_the_given_port(
    schemas: SchemaSet, tmp_path: Path
) -> None:
    port = _free_port()
    repository = FakeRepository(f"http://127.0.0.1:{port}/registry")
    service = SoapService(path="/repository", handlers={Action.ITI41: repository.provide, Action.ITI43: repository.retrieve})
    junit, report, evidence = tmp_path / "junit.xml", tmp_path / "report.html", tmp_path / "evidence"
    with ServerThread(soap_app(services=[service], spool_dir=tmp_path / "spool")) as server:
        outcome = CliRunner().invoke(
            conformance,
            [
                "run", "--actor", "repository", "--endpoint", server.url + "/repository",
                "--registry-sim-port", str(port), "--case", "11966", "--case", "11986",
                "--schemas", str(SCHEMAS), "--junit", str(junit), "--html", str(report),
                "--evidence-dir", str(evidence),
            ],
        )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    assert f"http://127.0.0.1:{port}/registry" in outcome.output
    root = etree.parse(str(junit)).getroot()
    assert (root.get("failures"), root.get("errors")) == ("0", "0")
    assert [tc.get("name").split()[0] for tc in root.iter("testcase")] == ["11966", "11986"]
    # The ITI-42 the repository sent is part of the evidence, next to the ITI-41 and ITI-43.
    text = report.read_text(encoding="utf-8")
    assert "ITI-42 received by the registry simulator" in text and "RegisterDocumentSet-b" in text
    files = [p.read_text(encoding="utf-8", errors="replace") for p in evidence.rglob("*.txt")]
    assert any("RegisterDocumentSet-b" in f and "SubmitObjectsRequest" in f for f in files)


def test_the_cli_lists_the_repository_plan() -> None:
    outcome = CliRunner().invoke(conformance, ["list", "--actor", "repository", "--steps"])
    assert outcome.exit_code == 0, outcome.output
    for case_id in ("11966", "11981", "11983", "11986", "12369", "15816", "RAT-1113", "12029", "12360", "ret-partial"):
        assert case_id in outcome.output
    assert "XDSRepositoryMetadataError" in outcome.output


# -- the simulator on its own --------------------------------------------------------------------
def test_the_simulator_records_what_it_faults_and_can_be_down(simulator: RegistrySimulator) -> None:
    with simulator.observe() as seen:
        reply = httpx.post(simulator.url, content=b"<x/>", headers={"content-type": "text/xml"})
    assert reply.status_code >= 400
    assert seen.registrations == [] and len(seen.exchanges) == 1
    assert seen.exchanges[0].request_body == b"<x/>" and seen.exchanges[0].response_status.startswith("HTTP 4")
    with simulator.stopped(), pytest.raises(httpx.ConnectError):
        httpx.post(simulator.url, content=b"<x/>")
    assert httpx.get(simulator.url).status_code == 200


def test_the_simulator_refuses_when_told_and_answers_get_documents(simulator: RegistrySimulator) -> None:
    sor = etree.Element(_q(NS_LCM, "SubmitObjectsRequest"), nsmap={"lcm": NS_LCM, "rim": NS_RIM})
    entry = etree.SubElement(etree.SubElement(sor, _q(NS_RIM, "RegistryObjectList")), _q(NS_RIM, "ExtrinsicObject"), id="e1")
    etree.SubElement(entry, _q(NS_RIM, "ExternalIdentifier"), identificationScheme=IdScheme.DE_UNIQUE_ID, value="1.2.3.99")

    def register() -> etree._Element:
        reply = httpx.post(simulator.url, content=build_request(sor, action=Action.ITI42),
                           headers={"content-type": soap_content_type(Action.ITI42)})  # fmt: skip
        found = parse_xml(reply.content).find(f".//{_q(NS_RS, 'RegistryResponse')}")
        assert found is not None
        return found

    with simulator.refusing(("XDSRegistryError", "no")):
        refused = register()
    assert refused.get("status") == ResponseStatus.FAILURE
    assert [e.get("errorCode") for e in refused.iter(_q(NS_RS, "RegistryError"))] == ["XDSRegistryError"]
    assert register().get("status") == ResponseStatus.SUCCESS
    query = etree.fromstring(
        b'<query:AdhocQueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0" '
        b'xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"><query:ResponseOption returnType="LeafClass"/>'
        b'<rim:AdhocQuery id="urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"><rim:Slot name="$XDSDocumentEntryUniqueId">'
        b"<rim:ValueList><rim:Value>('1.2.3.99')</rim:Value></rim:ValueList></rim:Slot></rim:AdhocQuery>"
        b"</query:AdhocQueryRequest>"
    )
    reply = httpx.post(simulator.url, content=build_request(query, action=Action.ITI18),
                       headers={"content-type": soap_content_type(Action.ITI18)})  # fmt: skip
    # Only the accepted registration is known to the registry.
    assert len(parse_xml(reply.content).findall(f".//{_q(NS_RIM, 'ExtrinsicObject')}")) == 1


def test_without_a_simulator_the_cases_err_instead_of_passing(schemas: SchemaSet) -> None:
    config = RunConfig(endpoint="http://fake.invalid/repository", schemas=schemas, patients=GivenPatients(()))
    transport = httpx.MockTransport(lambda request: httpx.Response(500))
    result = Runner(plan_for("repository"), config, http_transport=transport).run(cases=("11966",))
    assert [r.verdict for r in result.cases] == [Verdict.ERROR]
    assert "registry simulator" in result.cases[0].steps[0].message


