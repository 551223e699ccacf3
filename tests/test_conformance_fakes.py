"""The runner against deliberately broken peers that need no real registry: a registry that answers
Success to everything, one that cannot be reached, and patient feeds and pre-load steps that fail.
Each must turn into failed (or erred) cases, never into a passing run."""

from __future__ import annotations

import socket
import socketserver
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from lxml import etree

from conformance_tests.model import RunResult, Verdict
from conformance_tests.patients import CommandPatients, FeedPatients, GivenPatients, PatientSource
from conformance_tests.plans import plan_for
from conformance_tests.report import junit_xml
from conformance_tests.runner import RunConfig, Runner
from conformance_tests.schemas import SchemaSet
from xds.soap import response_envelope
from xds.vocabulary import NS_QUERY, NS_RIM, NS_RS, NS_WSA, Action, ResponseStatus
from xds.xml import parse_xml, to_bytes

SCHEMAS = Path(__file__).resolve().parents[1].parent / "shared" / "schemas"
pytestmark = pytest.mark.skipif(not SCHEMAS.is_dir(), reason=f"shared schemas not found at {SCHEMAS}")

ENDPOINT = "http://fake.invalid/registry"
PATIENTS = tuple(f"FAKE{n}^^^&1.3.6.1.4.1.21367.13.20.1000&ISO" for n in range(4))


@pytest.fixture(scope="module")
def schemas() -> SchemaSet:
    return SchemaSet.load(SCHEMAS)


def _yes_registry(request: httpx.Request) -> httpx.Response:
    """Answers every request, whatever it is, with a well-formed Success."""
    envelope = parse_xml(request.read())
    message_id = envelope.findtext(f".//{{{NS_WSA}}}MessageID")
    action = envelope.findtext(f".//{{{NS_WSA}}}Action") or ""
    if action == Action.ITI18:
        body = etree.Element(f"{{{NS_QUERY}}}AdhocQueryResponse", status=ResponseStatus.SUCCESS)
        etree.SubElement(body, f"{{{NS_RIM}}}RegistryObjectList")
        reply_action = Action.ITI18_RESPONSE
    else:
        body = etree.Element(f"{{{NS_RS}}}RegistryResponse", status=ResponseStatus.SUCCESS)
        reply_action = Action.ITI42_RESPONSE
    reply = to_bytes(response_envelope(body, action=reply_action, relates_to=message_id), xml_declaration=True)
    return httpx.Response(200, content=reply, headers={"content-type": "application/soap+xml; charset=UTF-8"})


def _run(
    schemas: SchemaSet,
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    patients: PatientSource | None = None,
    cases: tuple[str, ...] = (),
) -> RunResult:
    config = RunConfig(endpoint=ENDPOINT, schemas=schemas, patients=patients or GivenPatients(PATIENTS), timeout=5)
    runner = Runner(plan_for("registry"), config, http_transport=httpx.MockTransport(handler), sleep=lambda _: None)
    return runner.run(cases=cases)


def _failed_checks(result: RunResult, case_id: str) -> set[str]:
    case = next(r for r in result.cases if r.case.id == case_id)
    return {c.name for s in case.steps for c in s.failed_checks}


def test_a_registry_that_answers_success_to_everything_fails(schemas: SchemaSet) -> None:
    result = _run(schemas, _yes_registry)
    verdicts = {r.case.id: r.verdict for r in result.cases}
    assert not result.passed
    assert verdicts["patients"] is Verdict.PASSED  # pre-registered ids need no exchange
    # A rejection expected, Success answered.
    assert {"status", "error list", "error XDSUnknownPatientId"} <= _failed_checks(result, "11996")
    # Counts of what was registered.
    assert "DocumentEntry count" in _failed_checks(result, "11990")
    # SOAP-level rules.
    assert {"HTTP status", "fault code"} <= _failed_checks(result, "soap-action")
    assert "fault code" in _failed_checks(result, "soap-mustunderstand")
    # The query data cannot be read back, so the query tests are not run, and say why.
    assert verdicts["12346"] is Verdict.FAILED
    skipped = next(r for r in result.cases if r.case.id == "11897")
    assert skipped.verdict is Verdict.SKIPPED and "12346" in skipped.message
    # Every register case fails against such a peer: each one checks something the peer does not do.
    register_cases = [case.id for case in plan_for("registry").suite("register").cases]
    assert [c for c in register_cases if verdicts[c] is not Verdict.FAILED] == []
    root = etree.fromstring(junit_xml(result))
    assert int(root.get("failures")) == sum(1 for v in verdicts.values() if v is Verdict.FAILED) > 20


def test_an_unreachable_peer_is_an_error_not_a_pass(schemas: SchemaSet) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    result = _run(schemas, refuse, cases=("11990",))
    case = next(r for r in result.cases if r.case.id == "11990")
    assert case.verdict is Verdict.ERROR
    assert case.steps[0].exchanges[0].error.startswith("ConnectError")
    assert case.steps[1].verdict is Verdict.SKIPPED
    assert not result.passed


def test_a_reply_that_is_not_xml_fails_the_reply_check(schemas: SchemaSet) -> None:
    result = _run(schemas, lambda request: httpx.Response(200, content=b"OK", headers={"content-type": "text/plain"}),
                  cases=("11990",))  # fmt: skip
    assert {"reply"} <= _failed_checks(result, "11990")


class _AckServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, ack: Callable[[bytes], bytes]) -> None:
        self.ack = ack
        self.received: list[bytes] = []
        super().__init__(("127.0.0.1", 0), _AckHandler)


class _AckHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data = b""
        while b"\x1c\r" not in data:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            data += chunk
        message = data[data.index(b"\x0b") + 1 : data.index(b"\x1c\r")]
        server: _AckServer = self.server  # type: ignore[assignment]
        server.received.append(message)
        self.request.sendall(b"\x0b" + server.ack(message) + b"\x1c\r")


def _control_id(message: bytes) -> str:
    return message.split(b"\r")[0].decode().split("|")[9]


@pytest.fixture
def ack_server(request: pytest.FixtureRequest) -> Iterator[_AckServer]:
    server = _AckServer(request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _reject(message: bytes) -> bytes:
    return f"MSH|^~\\&|REG||CT||20250101||ACK|1|P|2.3.1\rMSA|AE|{_control_id(message)}|unknown assigning authority\r".encode()


def _wrong_control_id(message: bytes) -> bytes:
    return b"MSH|^~\\&|REG||CT||20250101||ACK|1|P|2.3.1\rMSA|AA|SOMETHING-ELSE\r"


@pytest.mark.parametrize(
    ("ack_server", "check"), [(_reject, "ACK code"), (_wrong_control_id, "ACK control id")], indirect=["ack_server"]
)
def test_a_patient_feed_that_does_not_accept_fails_the_setup(
    schemas: SchemaSet, ack_server: _AckServer, check: str
) -> None:
    host, port = ack_server.server_address[:2]
    result = _run(schemas, _yes_registry, patients=FeedPatients(str(host), int(port)), cases=("11990",))
    setup, case = result.cases
    assert setup.case.id == "patients" and setup.verdict is Verdict.FAILED
    assert check in _failed_checks(result, "patients")
    assert case.verdict is Verdict.SKIPPED and "patients" in case.message
    # The feed received ITI-8 ADT^A01 v2.3.1 messages with the patient in PID-3.
    assert ack_server.received and all(
        b"|ADT^A01|" in m and b"|2.3.1" in m and b"\rPID|||CT" in m for m in ack_server.received
    )


def test_a_feed_nobody_listens_to_is_an_error(schemas: SchemaSet) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = _run(schemas, _yes_registry, patients=FeedPatients("127.0.0.1", port, timeout=2), cases=("11990",))
    assert result.cases[0].verdict is Verdict.ERROR


def test_a_failing_preload_command_fails_the_setup(schemas: SchemaSet) -> None:
    command = f"{sys.executable} -c 'import sys; sys.exit(3)' {{pid}}"
    result = _run(schemas, _yes_registry, patients=CommandPatients(command), cases=("11990",))
    setup = result.cases[0]
    assert setup.verdict is Verdict.FAILED
    assert setup.steps[0].exchanges[0].response_status == "exit 3"
    assert result.cases[1].verdict is Verdict.SKIPPED


def test_too_few_preregistered_patients_is_refused_before_anything_is_sent(schemas: SchemaSet) -> None:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return _yes_registry(request)

    with pytest.raises(ValueError, match="pre-registered patient ids are needed"):
        _run(schemas, record, patients=GivenPatients(PATIENTS[:1]))
    assert sent == []


def test_options_not_declared_are_not_applicable_and_declared_ones_run(schemas: SchemaSet) -> None:
    skipped = _run(schemas, _yes_registry, cases=("12364",))
    outcome = next(r for r in skipped.cases if r.case.id == "12364")
    assert outcome.verdict is Verdict.NOT_APPLICABLE
    assert outcome.message == "not applicable: option 'mpq' not declared (--option mpq)"
    config = RunConfig(endpoint=ENDPOINT, schemas=schemas, patients=GivenPatients(PATIENTS), options=frozenset({"mpq"}))
    result = Runner(plan_for("registry"), config, http_transport=httpx.MockTransport(_yes_registry)).run(
        cases=("12364",)
    )
    # Prerequisites come first; against this peer they fail, so 12364 is skipped for that reason.
    assert [r.case.id for r in result.cases] == ["patients", "12346", "12374", "12364"]
    assert "prerequisite" in result.cases[-1].message
