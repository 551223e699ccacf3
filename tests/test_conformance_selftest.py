"""The conformance runner against our own Document Registry, started through its CLI on loopback.

The whole registry plan must pass against it. Then the same registry is put behind a proxy that
breaks its answers in one precise way each (lid removed, query errors in a RegistryResponse, a
"Warning" status, SOAP 1.1, a wrong RelatesTo, a schema-invalid body, a missing object, Success
for everything), and the runner must fail exactly the case and the check that rule belongs to.
"""

from __future__ import annotations

import os
import re
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

from conformance_tests.cli import conformance
from conformance_tests.model import RunResult, Verdict
from conformance_tests.patients import CommandPatients, FeedPatients
from conformance_tests.plans import plan_for
from conformance_tests.runner import RunConfig, Runner
from conformance_tests.schemas import SchemaSet
from xds.xml import parse_xml

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SCHEMAS = SHARED / "schemas"
CODES = SHARED / "affinity-domain" / "codes.xml"

pytestmark = pytest.mark.skipif(
    not (SCHEMAS.is_dir() and CODES.is_file()), reason=f"shared schemas and codes not found under {SHARED}"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _xds_command() -> list[str]:
    """The installed ``xds`` command, or the same entry point through this interpreter."""
    script = Path(sys.executable).with_name("xds")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from imageshare.cli import main; main()"]


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


@dataclass(frozen=True)
class LiveRegistry:
    url: str
    mllp_port: int
    db_url: str


@pytest.fixture(scope="module")
def live_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRegistry]:
    """``xds registry serve`` on free loopback ports with SQLite in a temporary directory."""
    directory = tmp_path_factory.mktemp("registry")
    port, mllp_port = _free_port(), _free_port()
    db_url = f"sqlite:///{directory / 'registry.sqlite'}"
    log = (directory / "registry.log").open("wb")
    command = [
        *_xds_command(), "registry", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--mllp-port", str(mllp_port), "--db", db_url, "--data-dir", str(directory), "--codes", str(CODES),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=_environment())
    url = f"http://127.0.0.1:{port}/registry"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                log.flush()
                pytest.fail(
                    f"the registry exited with {process.returncode}:\n{(directory / 'registry.log').read_text()}"
                )
            try:
                if httpx.get(url + "?wsdl", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the registry did not start:\n{(directory / 'registry.log').read_text()}")
            time.sleep(0.2)
        yield LiveRegistry(url=url, mllp_port=mllp_port, db_url=db_url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def schemas() -> SchemaSet:
    return SchemaSet.load(SCHEMAS)


def _run(
    live: LiveRegistry,
    schemas: SchemaSet,
    *,
    cases: tuple[str, ...] = (),
    suites: tuple[str, ...] = (),
    transport: httpx.BaseTransport | None = None,
    options: frozenset[str] = frozenset(),
) -> RunResult:
    config = RunConfig(
        endpoint=live.url, schemas=schemas, patients=FeedPatients("127.0.0.1", live.mllp_port), timeout=30,
        options=options,
    )
    return Runner(plan_for("registry"), config, http_transport=transport).run(cases=cases, suites=suites)


def _failures(result: RunResult) -> str:
    return "\n".join(
        f"{r.case.id} {r.verdict.value}: {r.summary()}" for r in result.cases if r.verdict is not Verdict.PASSED
    )


# -- the whole plan against our registry ---------------------------------------------------------
def test_the_whole_registry_plan_passes_against_our_registry(live_registry: LiveRegistry, schemas: SchemaSet) -> None:
    # Our registry takes ITI-8 merges (ADT^A40) and the runner feeds it: the merge suite runs.
    declared = frozenset({"merge"})
    result = _run(live_registry, schemas, options=declared)
    plan = plan_for("registry")
    verdicts = {r.case.id: r.verdict for r in result.cases}
    for _suite, case in plan.all_cases():
        assert case.id in verdicts, f"{case.id} was not run"
        expected = Verdict.NOT_APPLICABLE if case.option and case.option not in declared else Verdict.PASSED
        assert verdicts[case.id] is expected, _failures(result)
    assert verdicts["patients"] is Verdict.PASSED
    assert result.passed, _failures(result)


def test_every_request_the_runner_sent_is_schema_valid(live_registry: LiveRegistry, schemas: SchemaSet) -> None:
    result = _run(live_registry, schemas, suites=("register",))
    bodies = 0
    for case in result.cases:
        for step in case.steps:
            for exchange in step.exchanges:
                if exchange.protocol != "HTTP":
                    continue
                envelope = parse_xml(exchange.request_body)
                body = envelope.xpath("/*[local-name()='Envelope']/*[local-name()='Body']/*[1]")[0]
                assert schemas.validate(body) == [], f"{case.case.id}/{step.step.name}"
                bodies += 1
    assert bodies > 50


def test_patients_can_be_preloaded_with_the_registry_cli_instead_of_iti8(
    live_registry: LiveRegistry, schemas: SchemaSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = shlex.join([*_xds_command(), "registry", "patient", "add", "{pid}", "--db", live_registry.db_url])
    patients = CommandPatients(template)
    config = RunConfig(endpoint=live_registry.url, schemas=schemas, patients=patients, timeout=30)
    monkeypatch.setenv("PYTHONPATH", _environment()["PYTHONPATH"])  # for the command's fallback form
    result = Runner(plan_for("registry"), config).run(cases=("11990", "11996", "11997"))
    assert [r.case.id for r in result.cases] == ["patients", "11990", "11996", "11997"]
    assert result.passed, _failures(result)
    setup = result.cases[0]
    assert all(e.protocol == "command" and e.response_status == "exit 0" for s in setup.steps for e in s.exchanges)


def test_the_cli_runs_a_suite_and_writes_junit_html_and_evidence(live_registry: LiveRegistry, tmp_path: Path) -> None:
    junit, report, evidence = tmp_path / "junit.xml", tmp_path / "report.html", tmp_path / "evidence"
    outcome = CliRunner().invoke(
        conformance,
        [
            "run", "--actor", "registry", "--endpoint", live_registry.url,
            "--mllp", f"127.0.0.1:{live_registry.mllp_port}", "--suite", "soap", "--case", "11990",
            "--schemas", str(SCHEMAS), "--junit", str(junit), "--html", str(report), "--evidence-dir", str(evidence),
        ],
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    root = etree.parse(str(junit)).getroot()
    assert root.tag == "testsuites"
    assert (root.get("failures"), root.get("errors")) == ("0", "0")
    names = [tc.get("name").split()[0] for tc in root.iter("testcase")]
    assert names == ["patients", "11990", "soap-action", "soap-mustunderstand", "soap-version"]
    text = report.read_text(encoding="utf-8")
    assert "11990" in text and "RegisterDocumentSet-bResponse" in text
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", text, re.I)
    files = sorted(p.name for p in evidence.rglob("*.txt"))
    assert any(name.endswith("-request.txt") for name in files) and any(
        name.endswith("-response.txt") for name in files
    )


def test_with_an_iti8_feed_the_cli_runs_the_merge_suite_and_without_it_reports_it_not_applicable(
    live_registry: LiveRegistry, tmp_path: Path
) -> None:
    """--mllp declares the merge option (ADT^A40 can be sent); pre-loaded patients cannot be merged."""
    fed = CliRunner().invoke(
        conformance,
        [
            "run", "--actor", "registry", "--endpoint", live_registry.url, "--mllp", f"127.0.0.1:{live_registry.mllp_port}",
            "--suite", "merge", "--schemas", str(SCHEMAS), "--junit", str(tmp_path / "fed.xml"),
        ],
    )  # fmt: skip
    assert fed.exit_code == 0, fed.output
    cases = {tc.get("name").split()[0]: tc for tc in etree.parse(str(tmp_path / "fed.xml")).getroot().iter("testcase")}
    assert {"merge-a40", "merge-subsumed-id"} <= set(cases)
    for name in ("merge-a40", "merge-subsumed-id"):
        verdicts = [child.tag for child in cases[name] if child.tag in ("failure", "error", "skipped")]
        assert verdicts == [], f"{name} passed: {verdicts}"
    template = shlex.join([*_xds_command(), "registry", "patient", "add", "{pid}", "--db", live_registry.db_url])
    preloaded = CliRunner().invoke(
        conformance,
        [
            "run", "--actor", "registry", "--endpoint", live_registry.url, "--preload-command", template,
            "--suite", "merge", "--schemas", str(SCHEMAS), "--junit", str(tmp_path / "preloaded.xml"),
        ],
        env=_environment(),
    )  # fmt: skip
    assert preloaded.exit_code == 0, preloaded.output
    skipped = [tc.find("skipped") for tc in etree.parse(str(tmp_path / "preloaded.xml")).getroot().iter("testcase")
               if tc.get("name").startswith("merge-")]  # fmt: skip
    assert skipped and all(s is not None and s.get("type") == "not-applicable" for s in skipped)


# -- broken registries: our registry behind a proxy that breaks one rule -------------------------
Mutation = Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]]

NS_Q = b"urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
NS_RS = b"urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"


def _proxy(target: str, mutate: Mutation, *, forward: Callable[[bytes], bool] = lambda _: True) -> httpx.MockTransport:
    """An HTTP transport that forwards to ``target`` and rewrites the reply with ``mutate``."""
    client = httpx.Client(timeout=30)

    def handle(request: httpx.Request) -> httpx.Response:
        reply = client.post(target, content=request.read(), headers={"content-type": request.headers["content-type"]})
        headers = {"content-type": reply.headers.get("content-type", "")}
        body, headers = mutate(reply.content, headers)
        return httpx.Response(reply.status_code, content=body, headers=headers)

    return httpx.MockTransport(handle)


def _strip_lid(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    body = re.sub(rb' lid="[^"]*"', b"", body)
    return re.sub(rb"<(\w+:)?VersionInfo[^>]*/>", b"", body), headers


def _query_errors_as_registry_response(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    if b"AdhocQueryResponse" in body and b"ResponseStatusType:Failure" in body:
        root = parse_xml(body)
        response = root.xpath("//*[local-name()='AdhocQueryResponse']")[0]
        replacement = etree.Element(f"{{{NS_RS.decode()}}}RegistryResponse", status=response.get("status"))
        for child in response:
            if etree.QName(child).localname == "RegistryErrorList":
                replacement.append(child)
        response.getparent().replace(response, replacement)
        body = etree.tostring(root)
    return body, headers


def _warning_status(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    if b"RegistryResponse" in body and b"AdhocQueryResponse" not in body:
        body = body.replace(b"ResponseStatusType:Success", b"ResponseStatusType:Warning")
    return body, headers


def _soap11(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    body = body.replace(b"http://www.w3.org/2003/05/soap-envelope", b"http://schemas.xmlsoap.org/soap/envelope/")
    return body, {"content-type": "text/xml; charset=UTF-8"}


def _wrong_relates_to(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return re.sub(
        rb"(RelatesTo[^>]*>)urn:uuid:[0-9a-f-]+", rb"\1urn:uuid:00000000-0000-0000-0000-000000000000", body
    ), headers


def _schema_invalid(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    root = parse_xml(body)
    for response in root.xpath("//*[local-name()='RegistryResponse']"):
        etree.SubElement(response, f"{{{NS_RS.decode()}}}NotInTheSchema")
    return etree.tostring(root), headers


def _drop_a_document(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    root = parse_xml(body)
    documents = root.xpath("//*[local-name()='RegistryObjectList']/*[local-name()='ExtrinsicObject']")
    if len(documents) > 1:
        documents[-1].getparent().remove(documents[-1])
    return etree.tostring(root), headers


def _success_for_registrations(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    root = parse_xml(body)
    for response in root.xpath("//*[local-name()='RegistryResponse']"):
        response.set("status", "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success")
        for errors in response.xpath("*[local-name()='RegistryErrorList']"):
            response.remove(errors)
    return etree.tostring(root), headers


BROKEN = [
    pytest.param(_strip_lid, ("11990",), "11990", "registry objects", "no lid", id="lid-and-VersionInfo-missing"),
    pytest.param(_query_errors_as_registry_response, ("sq-errors",), "sq-errors", "response body", "RegistryResponse",
                 id="query-errors-in-RegistryResponse"),
    pytest.param(_warning_status, ("11990",), "11990", "status", "no 'Warning' status", id="Warning-status"),
    pytest.param(_soap11, ("11990",), "11990", "SOAP 1.2 envelope", "SOAP 1.1", id="SOAP-1.1-reply"),
    pytest.param(_wrong_relates_to, ("11990",), "11990", "wsa:RelatesTo", "00000000", id="wrong-RelatesTo"),
    pytest.param(_schema_invalid, ("11990",), "11990", "XSD", "NotInTheSchema", id="schema-invalid-body"),
    pytest.param(_drop_a_document, ("11991",), "11991", "DocumentEntry count", "expected 2, got 1", id="object-missing"),
    pytest.param(_success_for_registrations, ("11996",), "11996", "error XDSUnknownPatientId", "none",
                 id="Success-for-an-unknown-patient"),
]  # fmt: skip


@pytest.mark.parametrize(("mutate", "cases", "failing_case", "check", "detail"), BROKEN)
def test_a_registry_that_breaks_one_rule_fails_that_check(
    live_registry: LiveRegistry,
    schemas: SchemaSet,
    mutate: Mutation,
    cases: tuple[str, ...],
    failing_case: str,
    check: str,
    detail: str,
) -> None:
    result = _run(live_registry, schemas, cases=cases, transport=_proxy(live_registry.url, mutate))
    outcome = {r.case.id: r for r in result.cases}
    failed = outcome[failing_case]
    assert failed.verdict is Verdict.FAILED, _failures(result)
    failing_checks = [c for s in failed.steps for c in s.failed_checks]
    matching = [c for c in failing_checks if c.name == check]
    assert matching, f"no failed {check!r} check; failed: {[(c.name, c.detail) for c in failing_checks]}"
    assert any(detail in c.detail for c in matching), [c.detail for c in matching]
    assert not result.passed


def test_the_unbroken_proxy_passes(live_registry: LiveRegistry, schemas: SchemaSet) -> None:
    """The proxy itself changes nothing: the failures above come from the mutations."""
    result = _run(live_registry, schemas, cases=("11990", "11991", "11996"),
                  transport=_proxy(live_registry.url, lambda b, h: (b, h)))  # fmt: skip
    assert result.passed, _failures(result)
