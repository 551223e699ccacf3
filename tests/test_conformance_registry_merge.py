"""The registry ``merge`` suite (ITI-8 ADT^A40) against a fake registry: an MLLP listener on
loopback for the feed and an HTTP fake for ITI-42 / ITI-18, sharing one patient table. The fake
merges correctly unless told to break one rule; each broken variant must fail the check that
rule is about. Without ``--option merge`` the cases are not applicable and nothing is sent."""

from __future__ import annotations

import copy
import socketserver
import threading
import uuid as uuidlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from lxml import etree

from conformance_tests.model import RunResult, Verdict
from conformance_tests.patients import FeedPatients, GivenPatients, PatientSource, adt_a40
from conformance_tests.plans import plan_for
from conformance_tests.runner import RunConfig, Runner
from conformance_tests.schemas import SchemaSet
from xds.soap import response_envelope
from xds.vocabulary import (
    NS_QUERY,
    NS_RIM,
    NS_RS,
    NS_WSA,
    Action,
    AssociationType,
    IdScheme,
    Node,
    ResponseStatus,
    Severity,
    Status,
)
from xds.xml import parse_xml, to_bytes

SCHEMAS = Path(__file__).resolve().parents[1].parent / "shared" / "schemas"
pytestmark = pytest.mark.skipif(not SCHEMAS.is_dir(), reason=f"shared schemas not found at {SCHEMAS}")

ENDPOINT = "http://fake.invalid/registry"
RIM = f"{{{NS_RIM}}}"
RS = f"{{{NS_RS}}}"
PATIENT_SCHEMES = (IdScheme.DE_PATIENT_ID, IdScheme.SS_PATIENT_ID)
QUERY_NAMES = {
    "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4": "GetDocuments",
    "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d": "FindDocuments",
    "urn:uuid:51224314-5390-4169-9b91-b1980040715a": "GetSubmissionSets",
}
#: One broken rule each.
BREAKS = (
    "nack",  # the A40 is answered AE
    "no-move",  # the A40 is acknowledged, but nothing changes
    "no-patient-rewrite",  # the entries answer under the surviving id but keep the subsumed patientId
    "ss-not-moved",  # the DocumentEntries move, the SubmissionSet keeps the subsumed patientId
    "subsumed-still-answers",  # a query by the subsumed id still returns the moved entries
    "still-accepted",  # ITI-42 still takes the subsumed id
)


@pytest.fixture(scope="module")
def schemas() -> SchemaSet:
    return SchemaSet.load(SCHEMAS)


# -- the fake registry ---------------------------------------------------------------------------
def _hl7_fields(message: bytes) -> dict[str, list[str]]:
    """Segment name -> its fields (index n is field n; for MSH, n is MSH-(n+1))."""
    segments = [s for s in message.decode("ascii").split("\r") if s]
    return {s.split("|")[0]: s.split("|") for s in segments}


@dataclass
class FakeMergeRegistry:
    """A patient table fed over MLLP, and just enough ITI-42 / ITI-18 to judge a merge."""

    breaks: frozenset[str] = frozenset()
    known: set[str] = field(default_factory=set)
    #: subsumed id -> surviving id
    merged: dict[str, str] = field(default_factory=dict)
    objects: dict[str, etree._Element] = field(default_factory=dict)
    hl7: list[bytes] = field(default_factory=list)
    bodies: list[etree._Element] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # -- ITI-8 -----------------------------------------------------------------------------------
    def feed(self, message: bytes) -> bytes:
        with self.lock:
            self.hl7.append(message)
            fields = _hl7_fields(message)
            msh = fields["MSH"]
            event = msh[8].split("^")[1]
            code, text = "AA", ""
            if event == "A01":
                self.known.add(fields["PID"][3])
            elif event == "A40" and "nack" in self.breaks:
                code, text = "AE", "merge not supported"
            elif event == "A40":
                self._merge(surviving=fields["PID"][3], subsumed=fields["MRG"][1])
            else:
                code, text = "AR", f"event {event} not supported"
            return (
                f"MSH|^~\\&|FAKE|REG|{msh[2]}|{msh[3]}|20250101000000||ACK^{event}|ACK{msh[9]}|P|2.3.1\r"
                f"MSA|{code}|{msh[9]}|{text}\r"
            ).encode("ascii")

    def _merge(self, *, surviving: str, subsumed: str) -> None:
        self.known.add(surviving)
        self.merged[subsumed] = surviving
        if self.breaks & {"no-move", "no-patient-rewrite"}:
            return
        for element in self.objects.values():
            is_package = etree.QName(element).localname == "RegistryPackage"
            if is_package and "ss-not-moved" in self.breaks:
                continue
            for ext in element.iter(f"{RIM}ExternalIdentifier"):
                if ext.get("identificationScheme") in PATIENT_SCHEMES and ext.get("value") == subsumed:
                    ext.set("value", surviving)

    # -- SOAP ------------------------------------------------------------------------------------
    def __call__(self, request: httpx.Request) -> httpx.Response:
        envelope = parse_xml(request.read())
        message_id = envelope.findtext(f".//{{{NS_WSA}}}MessageID")
        action = (envelope.findtext(f".//{{{NS_WSA}}}Action") or "").strip()
        body = envelope.find("{http://www.w3.org/2003/05/soap-envelope}Body")[0]  # type: ignore[index]
        self.bodies.append(copy.deepcopy(body))
        with self.lock:
            if action == Action.ITI18:
                answer, reply = self._query(body), Action.ITI18_RESPONSE
            else:
                answer, reply = self._register(body), Action.ITI42_RESPONSE
        data = to_bytes(response_envelope(answer, action=reply, relates_to=message_id), xml_declaration=True)
        return httpx.Response(200, content=data, headers={"content-type": "application/soap+xml; charset=UTF-8"})

    def _accepts(self, patient_id: str) -> bool:
        if patient_id in self.merged and "still-accepted" not in self.breaks:
            return False
        return patient_id in self.known

    def _register(self, body: etree._Element) -> etree._Element:
        top = body.find(f"{RIM}RegistryObjectList")
        assert top is not None
        for ext in top.iter(f"{RIM}ExternalIdentifier"):
            if ext.get("identificationScheme") in PATIENT_SCHEMES and not self._accepts(ext.get("value") or ""):
                response = etree.Element(f"{RS}RegistryResponse", status=ResponseStatus.FAILURE)
                errors = etree.SubElement(response, f"{RS}RegistryErrorList", highestSeverity=Severity.ERROR)
                context = f"{ext.get('value')} is not a known patient"
                etree.SubElement(errors, f"{RS}RegistryError", errorCode="XDSUnknownPatientId",
                                 codeContext=context, severity=Severity.ERROR)  # fmt: skip
                return response
        ids = {e.get("id") or "": f"urn:uuid:{uuidlib.uuid4()}" for e in top}
        for element in top.iter():
            for attr in ("id", "classifiedObject", "registryObject", "sourceObject", "targetObject"):
                if element.get(attr) in ids:
                    element.set(attr, ids[element.get(attr) or ""])
        for element in top:
            self.objects[element.get("id") or ""] = copy.deepcopy(element)
        return etree.Element(f"{RS}RegistryResponse", status=ResponseStatus.SUCCESS)

    # -- ITI-18 ----------------------------------------------------------------------------------
    def _query(self, body: etree._Element) -> etree._Element:
        adhoc = body.find(f"{RIM}AdhocQuery")
        assert adhoc is not None
        params = {s.get("name"): _values(s) for s in adhoc.findall(f"{RIM}Slot")}
        found = getattr(self, f"_q_{QUERY_NAMES[adhoc.get('id') or '']}")(params)
        response = etree.Element(f"{{{NS_QUERY}}}AdhocQueryResponse", status=ResponseStatus.SUCCESS)
        objects = etree.SubElement(response, f"{RIM}RegistryObjectList")
        for element in found:
            objects.append(_answer(element))
        return response

    def _kind(self, local: str) -> list[etree._Element]:
        return [e for e in self.objects.values() if etree.QName(e).localname == local]

    def _patients_of(self, patient_id: str) -> set[str]:
        """The patientIds whose entries a query by ``patient_id`` returns."""
        wanted = {patient_id}
        if "no-patient-rewrite" in self.breaks:
            wanted |= {old for old, new in self.merged.items() if new == patient_id}
        if "subsumed-still-answers" in self.breaks and patient_id in self.merged:
            wanted.add(self.merged[patient_id])
        return wanted

    def _q_FindDocuments(self, params: dict[str, list[str]]) -> list[etree._Element]:
        wanted = self._patients_of(params["$XDSDocumentEntryPatientId"][0])
        return [e for e in self._kind("ExtrinsicObject") if _ext(e, IdScheme.DE_PATIENT_ID) in wanted]

    def _q_GetDocuments(self, params: dict[str, list[str]]) -> list[etree._Element]:
        wanted = params["$XDSDocumentEntryUniqueId"]
        return [e for e in self._kind("ExtrinsicObject") if _ext(e, IdScheme.DE_UNIQUE_ID) in wanted]

    def _q_GetSubmissionSets(self, params: dict[str, list[str]]) -> list[etree._Element]:
        links = [a for a in self._kind("Association") if a.get("associationType") == AssociationType.HAS_MEMBER
                 and a.get("targetObject") in params["$uuid"]]  # fmt: skip
        sets = [self.objects[a.get("sourceObject") or ""] for a in links]
        nodes = [c for c in self._kind("Classification") if c.get("classificationNode") == Node.SUBMISSION_SET
                 and c.get("classifiedObject") in {s.get("id") for s in sets}]  # fmt: skip
        return sets + nodes + links


def _ext(element: etree._Element, scheme: str) -> str | None:
    for ext in element.findall(f"{RIM}ExternalIdentifier"):
        if ext.get("identificationScheme") == scheme:
            return ext.get("value")
    return None


def _values(slot: etree._Element) -> list[str]:
    items: list[str] = []
    for value in slot.iter(f"{RIM}Value"):
        text = (value.text or "").strip().strip("()")
        items += [item.strip().strip("'") for item in text.split(",") if item.strip()]
    return items


def _answer(stored: etree._Element) -> etree._Element:
    """A LeafClass answer: status, lid and VersionInfo on every registry object (ebRIM 3.0 order)."""
    element = copy.deepcopy(stored)
    local = etree.QName(element).localname
    if local in ("Association", "Classification"):
        if local == "Association":
            element.set("status", Status.APPROVED)
        return element
    element.set("status", Status.APPROVED)
    element.set("lid", element.get("id") or "")
    position = sum(len(element.findall(f"{RIM}{name}")) for name in ("Slot", "Name", "Description"))
    element.insert(position, etree.Element(f"{RIM}VersionInfo", versionName="1"))
    return element


class _MllpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        buffer = b""
        while b"\x1c\r" not in buffer:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            buffer += chunk
        message = buffer[buffer.index(b"\x0b") + 1 : buffer.index(b"\x1c\r")]
        reply = self.server.registry.feed(message)  # type: ignore[attr-defined]
        self.request.sendall(b"\x0b" + reply + b"\x1c\r")


Serve = Callable[[FakeMergeRegistry], int]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """``serve(registry)`` starts an MLLP listener on loopback for ``registry``; returns its port."""
    servers: list[socketserver.ThreadingTCPServer] = []

    def start(registry: FakeMergeRegistry) -> int:
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _MllpHandler)
        server.daemon_threads = True
        server.registry = registry  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return int(server.server_address[1])

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# -- running -------------------------------------------------------------------------------------
def _run(
    schemas: SchemaSet, registry: FakeMergeRegistry, patients: PatientSource, *, options: frozenset[str]
) -> RunResult:
    config = RunConfig(endpoint=ENDPOINT, schemas=schemas, patients=patients, timeout=5, options=options)
    runner = Runner(plan_for("registry"), config, http_transport=httpx.MockTransport(registry), sleep=lambda _: None)
    return runner.run(suites=("merge",))


def _run_fed(schemas: SchemaSet, serve: Serve, breaks: frozenset[str] = frozenset()) -> tuple[
    RunResult, FakeMergeRegistry
]:
    registry = FakeMergeRegistry(breaks=breaks)
    port = serve(registry)
    return _run(schemas, registry, FeedPatients("127.0.0.1", port, timeout=5), options=frozenset({"merge"})), registry


def _verdicts(result: RunResult) -> dict[str, Verdict]:
    return {r.case.id: r.verdict for r in result.cases}


def _failed_checks(result: RunResult, case_id: str) -> set[str]:
    case = next(r for r in result.cases if r.case.id == case_id)
    return {c.name for s in case.steps for c in s.failed_checks}


# -- tests ---------------------------------------------------------------------------------------
def test_the_merge_suite_passes_against_a_registry_that_merges(schemas: SchemaSet, serve: Serve) -> None:
    result, registry = _run_fed(schemas, serve)
    failures = {r.case.id: r.summary() for r in result.cases if r.verdict is not Verdict.PASSED}
    assert failures == {}
    assert set(_verdicts(result)) == {"merge-a40", "merge-subsumed-id"}
    # The A40s went over MLLP with PID-3 = the surviving id and MRG-1 = the subsumed one.
    patients = result.extra["patients"]
    merges = [_hl7_fields(m) for m in registry.hl7 if b"|ADT^A40|" in m]
    assert [(m["PID"][3], m["MRG"][1]) for m in merges] == [
        (patients["mrgkeep"], patients["mrgold"]),
        (patients["mrgkeep2"], patients["mrgold2"]),
    ]
    assert registry.merged == {patients["mrgold"]: patients["mrgkeep"], patients["mrgold2"]: patients["mrgkeep2"]}
    assert [problem for body in registry.bodies for problem in schemas.validate(body)] == []


def test_without_the_option_the_cases_are_not_applicable_and_nothing_is_sent(
    schemas: SchemaSet, serve: Serve
) -> None:
    registry = FakeMergeRegistry()
    port = serve(registry)
    result = _run(schemas, registry, FeedPatients("127.0.0.1", port, timeout=5), options=frozenset())
    assert {r.verdict for r in result.cases} == {Verdict.NOT_APPLICABLE}
    assert {r.message for r in result.cases} == {
        "not applicable: option 'merge' not declared "
        "(--option merge, with the ITI-8 feed --mllp (pre-loaded patients cannot be merged))"
    }
    assert result.passed
    assert registry.hl7 == [] and registry.bodies == []


def test_declared_without_an_iti8_feed_the_cases_are_runner_errors(schemas: SchemaSet) -> None:
    registry = FakeMergeRegistry()
    given = GivenPatients(["P1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"])
    result = _run(schemas, registry, given, options=frozenset({"merge"}))
    assert set(_verdicts(result).values()) == {Verdict.ERROR}
    for case in result.cases:
        assert "no ITI-8 feed" in case.summary() and "--mllp" in case.summary()
    assert not result.passed
    assert registry.bodies == []


@pytest.mark.parametrize(
    ("broken", "case_id", "checks"),
    [
        ("nack", "merge-a40", {"ACK code"}),
        ("nack", "merge-subsumed-id", {"ACK code"}),
        ("no-move", "merge-a40", {"DocumentEntry count", "which DocumentEntries"}),
        ("no-patient-rewrite", "merge-a40", {"d1 patientId"}),
        ("ss-not-moved", "merge-a40", {"SubmissionSet patientId"}),
        ("subsumed-still-answers", "merge-a40", {"DocumentEntry count", "which DocumentEntries"}),
        ("still-accepted", "merge-subsumed-id", {"status", "error XDSUnknownPatientId"}),
    ],
)
def test_a_registry_that_breaks_one_rule_fails_that_check(
    schemas: SchemaSet, serve: Serve, broken: str, case_id: str, checks: set[str]
) -> None:
    assert broken in BREAKS
    result, _ = _run_fed(schemas, serve, frozenset({broken}))
    assert _verdicts(result)[case_id] is Verdict.FAILED
    assert checks <= _failed_checks(result, case_id)
    assert not result.passed


@pytest.mark.parametrize(
    ("broken", "unaffected"),
    [("still-accepted", "merge-a40"), ("no-move", "merge-subsumed-id"), ("ss-not-moved", "merge-subsumed-id")],
)
def test_a_broken_rule_fails_only_the_case_it_belongs_to(
    schemas: SchemaSet, serve: Serve, broken: str, unaffected: str
) -> None:
    result, _ = _run_fed(schemas, serve, frozenset({broken}))
    assert _verdicts(result)[unaffected] is Verdict.PASSED


def test_every_broken_variant_fails_some_case(schemas: SchemaSet, serve: Serve) -> None:
    for broken in BREAKS:
        result, _ = _run_fed(schemas, serve, frozenset({broken}))
        assert not result.passed, broken


def test_the_a40_message_names_the_surviving_id_in_pid3_and_the_subsumed_one_in_mrg1() -> None:
    keep, old = "KEEP1^^^&1.2.3&ISO", "OLD1^^^&1.2.3&ISO"
    fields = _hl7_fields(adt_a40(keep, old, control_id="CTL42"))
    assert list(fields) == ["MSH", "EVN", "PID", "MRG"]
    assert (fields["MSH"][8], fields["MSH"][9], fields["MSH"][11]) == ("ADT^A40", "CTL42", "2.3.1")
    assert fields["EVN"][1] == "A40"
    assert (fields["PID"][3], fields["MRG"][1]) == (keep, old)
    with pytest.raises(ValueError, match="assigning authority"):
        adt_a40("KEEP1", old, control_id="CTL43")
