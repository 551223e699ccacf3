"""The consumer test plan against our own consumer (``xds consumer query|retrieve|fetch``), and
against deliberately broken consumers.

Our consumer is run through its CLI, as an operator would, against the runner's simulated
registry, repository and imaging sources; every case with a template must pass. Then a small
fake consumer script written here (correct by default) is given one defect at a time: SOAP 1.1,
no wsa:Action, an unquoted patient id, a retrieved file with one byte changed or dropped, exit
status 0 after a registry Failure; and our own ``fetch`` is run with templates that leave out a
source, ignore the batch size, accept no uncompressed syntax or damage a DICOM file. Each time
the runner must fail the case, and the check, that rule belongs to.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from conformance_tests.cli import conformance
from conformance_tests.data.consumer import consumer_test_data
from conformance_tests.model import RunResult, Verdict
from conformance_tests.patients import GivenPatients
from conformance_tests.plans import plan_for
from conformance_tests.plans.consumer.common import COMMANDS_KEY, KINDS, OUT_KEY, PEERS_KEY, TIMEOUT_KEY
from conformance_tests.runner import RunConfig, Runner
from conformance_tests.schemas import SchemaSet
from conformance_tests.simulators.consumer_peers import ConsumerPeers
from conformance_tests.simulators.registry_data import parse_values

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO.parent / "shared" / "schemas"
XDS = str(REPO / ".venv" / "bin" / "xds")
PY = shlex.quote(sys.executable)

pytestmark = pytest.mark.skipif(not SCHEMAS.is_dir(), reason=f"shared schemas not found at {SCHEMAS}")

OURS = {
    "query": f"{XDS} consumer query --registry {{registry}} --patient {{patient}} --xml",
    "retrieve": f"{XDS} consumer retrieve {{unique_ids}} --repository {{repository}} --repository-id {{repository_id}} "
    "--registry {registry} --out {out} --no-progress",
    "fetch": f"{XDS} consumer fetch --registry {{registry}} --repository {{repository}} --patient {{patient}} --out {{out}} "
    "--source {source_id}={source} --source {source2_id}={source2} --batch {batch} --no-progress",
}

# A minimal consumer: FindDocuments (LeafClass or ObjectRef + GetDocuments) with hand-made
# envelopes, ITI-43 through the project's SOAP client; ``--defect`` breaks one thing.
FAKE = r'''
import argparse, sys, uuid
from pathlib import Path
import httpx
from lxml import etree
from xds.http.client import SoapClient
from xds.xml import parse_xml

SOAP12, SOAP11 = "http://www.w3.org/2003/05/soap-envelope", "http://schemas.xmlsoap.org/soap/envelope/"
WSA, RIM = "http://www.w3.org/2005/08/addressing", "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
QUERY, XDS = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0", "urn:ihe:iti:xds-b:2007"
FIND, GET = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d", "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"

def stored_query(url, query_id, slots, return_type, defect):
    ns = SOAP11 if defect == "soap11" else SOAP12
    env = etree.Element(f"{{{ns}}}Envelope", nsmap={"s": ns, "wsa": WSA})
    header = etree.SubElement(env, f"{{{ns}}}Header")
    if defect != "no-action":
        action = etree.SubElement(header, f"{{{WSA}}}Action")
        action.text = "urn:ihe:iti:2007:RegistryStoredQuery"
        action.set(f"{{{ns}}}mustUnderstand", "true")
    etree.SubElement(header, f"{{{WSA}}}MessageID").text = f"urn:uuid:{uuid.uuid4()}"
    etree.SubElement(header, f"{{{WSA}}}To").text = url
    body = etree.SubElement(env, f"{{{ns}}}Body")
    request = etree.SubElement(body, f"{{{QUERY}}}AdhocQueryRequest", nsmap={"query": QUERY, "rim": RIM})
    etree.SubElement(request, f"{{{QUERY}}}ResponseOption", returnType=return_type, returnComposedObjects="true")
    query = etree.SubElement(request, f"{{{RIM}}}AdhocQuery", id=query_id)
    for name, text in slots:
        slot = etree.SubElement(query, f"{{{RIM}}}Slot", name=name)
        etree.SubElement(etree.SubElement(slot, f"{{{RIM}}}ValueList"), f"{{{RIM}}}Value").text = text
    kind = "text/xml" if defect == "soap11" else "application/soap+xml"
    reply = httpx.post(url, content=etree.tostring(env), headers={"content-type": f"{kind}; charset=UTF-8"}, timeout=30)
    print(reply.text)
    if reply.status_code != 200:
        sys.exit(2)
    root = parse_xml(reply.content)
    response = root.find(f"{{{SOAP12}}}Body/{{{QUERY}}}AdhocQueryResponse")
    ok = response is not None and response.get("status", "").endswith(":Success")
    if not ok and defect != "exit0":
        sys.exit(1)
    return response

def main():
    p = argparse.ArgumentParser()
    p.add_argument("kind")
    p.add_argument("uids", nargs="*")
    for name in ("--registry", "--repository", "--repository-id", "--patient", "--out", "--defect"):
        p.add_argument(name)
    a = p.parse_args()
    if a.kind in ("query", "objectref"):
        pid = a.patient if a.defect == "unquoted" else "'" + a.patient + "'"
        slots = [("$XDSDocumentEntryPatientId", pid), ("$XDSDocumentEntryStatus", f"('{APPROVED}')")]
        found = stored_query(a.registry, FIND, slots, "ObjectRef" if a.kind == "objectref" else "LeafClass", a.defect)
        if a.kind == "objectref" and found is not None:
            ids = [r.get("id") for r in found.iter(f"{{{RIM}}}ObjectRef")]
            listed = "(" + ",".join(f"'{i}'" for i in ids) + ")"
            stored_query(a.registry, GET, [("$XDSDocumentEntryEntryUUID", listed)], "LeafClass", a.defect)
        return
    request = etree.Element(f"{{{XDS}}}RetrieveDocumentSetRequest", nsmap={"xds": XDS})
    for uid in a.uids:
        item = etree.SubElement(request, f"{{{XDS}}}DocumentRequest")
        etree.SubElement(item, f"{{{XDS}}}RepositoryUniqueId").text = a.repository_id
        etree.SubElement(item, f"{{{XDS}}}DocumentUniqueId").text = uid
    with SoapClient(a.repository) as client, client.call("urn:ihe:iti:2007:RetrieveDocumentSet", request, mtom=True) as reply:
        for item in reply.body.iter(f"{{{XDS}}}DocumentResponse"):
            data = reply.binary(item.find(f"{{{XDS}}}Document")).read_bytes()
            if a.defect == "corrupt":
                data = data[:5] + bytes([data[5] ^ 0x20]) + data[6:]
            elif a.defect == "drop":
                data = data[:-1]
            Path(a.out, item.findtext(f"{{{XDS}}}DocumentUniqueId") + ".bin").write_bytes(data)
        failed = reply.body.find("{urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0}RegistryResponse").get("status").endswith(":Failure")
    sys.exit(1 if failed and a.defect != "exit0" else 0)

main()
'''

# Runs our fetch, then changes one byte of the pixel data of one retrieved instance.
DAMAGE = r'''
import subprocess, sys
from pathlib import Path
code = subprocess.run(sys.argv[2:]).returncode
files = sorted(Path(sys.argv[1]).rglob("*.3.1.1.1.dcm"))
data = bytearray(files[0].read_bytes())
data[-10] ^= 0xFF
files[0].write_bytes(bytes(data))
sys.exit(code)
'''


@pytest.fixture(scope="module")
def schemas() -> SchemaSet:
    return SchemaSet.load(SCHEMAS)


@pytest.fixture(scope="module")
def peers() -> Iterator[ConsumerPeers]:
    with ConsumerPeers() as sim:
        yield sim


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fakes")
    (directory / "fake_consumer.py").write_text(FAKE)
    (directory / "damage.py").write_text(DAMAGE)
    return directory


def _run(
    peers: ConsumerPeers, schemas: SchemaSet, templates: dict[str, str], out: Path, *cases: str
) -> RunResult:
    config = RunConfig(
        endpoint="",
        schemas=schemas,
        patients=GivenPatients(()),
        options=frozenset(templates),
        context={PEERS_KEY: peers, COMMANDS_KEY: templates, OUT_KEY: out, TIMEOUT_KEY: 120.0},
    )
    return Runner(plan_for("consumer"), config).run(cases=cases)


def _verdicts(result: RunResult) -> dict[str, Verdict]:
    return {r.case.id: r.verdict for r in result.cases}


def _failed_checks(result: RunResult, case_id: str) -> set[str]:
    found = [r for r in result.cases if r.case.id == case_id]
    assert found, f"case {case_id} did not run"
    return {c.name for s in found[0].steps for c in s.checks if not c.passed}


def _fake(scripts: Path, kind: str, defect: str | None = None) -> str:
    arguments = {
        "query": "--registry {registry} --patient {patient}",
        "objectref": "--registry {registry} --patient {patient}",
        "retrieve": "{unique_ids} --repository {repository} --repository-id {repository_id} --out {out}",
    }[kind]
    extra = f" --defect {defect}" if defect else ""
    return f"{PY} {shlex.quote(str(scripts / 'fake_consumer.py'))} {kind} {arguments}{extra}"


# -- our consumer -------------------------------------------------------------------------------
def test_every_case_passes_against_our_consumer(peers: ConsumerPeers, schemas: SchemaSet, tmp_path: Path) -> None:
    result = _run(peers, schemas, OURS, tmp_path)
    verdicts = _verdicts(result)
    assert verdicts.pop("idc-objectref") is Verdict.SKIPPED  # our CLI has no ObjectRef query
    failing = {k: _failed_checks(result, k) for k, v in verdicts.items() if v is not Verdict.PASSED}
    assert set(verdicts.values()) == {Verdict.PASSED}, failing
    assert len(verdicts) == 11
    checks = {c.name for r in result.cases for s in r.steps for c in s.checks}
    assert {"ITI-18 wsa:Action", "ITI-43 MTOM request", "Study/Series/Document hierarchy", "batches",
            "DICOM instances in {out}", "documents in {out}", "exit status"} <= checks  # fmt: skip


def test_the_cli_runs_the_plan_with_command_templates(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    outcome = CliRunner().invoke(
        conformance,
        ["run", "--actor", "consumer", "--command", f"query={OURS['query']}", "--command", f"retrieve={OURS['retrieve']}",
         "--case", "idc-find-documents", "--case", "idc-retrieve-two", "--schemas", str(SCHEMAS), "--junit", str(junit),
         "--out-dir", str(tmp_path / "out")],
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    root = etree.parse(str(junit)).getroot()
    assert (root.get("failures"), root.get("errors")) == ("0", "0")
    assert [tc.get("name").split()[0] for tc in root.iter("testcase")] == ["idc-find-documents", "idc-retrieve-two"]
    kept = [p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()]
    data = consumer_test_data()
    assert data.document("report").content in kept and data.document("letter").content in kept


def test_the_cli_needs_a_template_and_lists_the_placeholders() -> None:
    missing = CliRunner().invoke(conformance, ["run", "--actor", "consumer", "--schemas", str(SCHEMAS)])
    assert missing.exit_code == 2 and "--consumer-command" in missing.output
    bad = CliRunner().invoke(conformance, ["run", "--actor", "consumer", "--command", "nonsense", "--schemas", str(SCHEMAS)])
    assert bad.exit_code == 2 and "KIND=TEMPLATE" in bad.output
    listing = CliRunner(env={"COLUMNS": "200"}).invoke(conformance, ["list", "--actor", "consumer", "--steps"])
    assert listing.exit_code == 0, listing.output
    for placeholder in ("{registry}", "{unique_ids}", "{source_id}", "{batch}", "{out}", "{patient}"):
        assert placeholder in listing.output
    for kind in KINDS:
        assert f"option {kind}" in listing.output


# -- the fake consumer, correct and broken ------------------------------------------------------
def test_the_correct_fake_consumer_passes(
    peers: ConsumerPeers, schemas: SchemaSet, scripts: Path, tmp_path: Path
) -> None:
    templates = {kind: _fake(scripts, kind) for kind in ("query", "objectref", "retrieve")}
    cases = ("idc-find-documents", "idc-objectref", "idc-query-failure", "idc-retrieve-one", "idc-retrieve-two",
             "idc-retrieve-partial", "idc-retrieve-failure")  # fmt: skip
    result = _run(peers, schemas, templates, tmp_path, *cases)
    assert _verdicts(result) == dict.fromkeys(cases, Verdict.PASSED), [
        (k, _failed_checks(result, k)) for k in cases
    ]


@pytest.mark.parametrize(
    ("kind", "defect", "case", "check"),
    [
        ("query", "soap11", "idc-find-documents", "ITI-18 SOAP 1.2 envelope"),
        ("query", "no-action", "idc-find-documents", "ITI-18 wsa:Action"),
        ("query", "unquoted", "idc-find-documents", "FindDocuments patient and status"),
        ("query", "unquoted", "idc-find-documents", "parameter values"),
        ("retrieve", "corrupt", "idc-retrieve-one", "documents in {out}"),
        ("retrieve", "drop", "idc-retrieve-two", "documents in {out}"),
        ("query", "exit0", "idc-query-failure", "exit status"),
        ("retrieve", "exit0", "idc-retrieve-failure", "exit status"),
    ],
)
def test_a_broken_consumer_fails_that_check(
    peers: ConsumerPeers, schemas: SchemaSet, scripts: Path, tmp_path: Path, kind: str, defect: str, case: str, check: str
) -> None:
    result = _run(peers, schemas, {kind: _fake(scripts, kind, defect)}, tmp_path, case)
    assert _verdicts(result) == {case: Verdict.FAILED}
    assert check in _failed_checks(result, case)


# -- our fetch, with templates that break the imaging flow --------------------------------------
@pytest.mark.parametrize(
    ("change", "case", "check"),
    [
        (lambda t: t.replace(" --source {source2_id}={source2}", ""), "idc-flow", "DICOM instances in {out}"),
        (lambda t: t.replace(" --source {source2_id}={source2}", ""), "idc-flow", "RAD-69 request sent"),
        (lambda t: t.replace("{batch}", "100"), "idc-batches", "batches"),
        (lambda t: t + " --transfer-syntax 1.2.840.10008.1.2.4.50", "idc-flow", "TransferSyntaxUIDList"),
        (lambda t: t.replace("--source {source_id}={source}", "--source {source_id}={source2}"), "idc-flow",
         "Study/Series/Document hierarchy"),
        (lambda t: f"{PY} -c 'import subprocess, sys; subprocess.run(sys.argv[1:])' " + t, "idc-fetch-registry-error",
         "exit status"),
    ],
)
def test_a_broken_fetch_fails_that_check(
    peers: ConsumerPeers, schemas: SchemaSet, tmp_path: Path, change: object, case: str, check: str
) -> None:
    template = change(OURS["fetch"])  # type: ignore[operator]
    result = _run(peers, schemas, {"fetch": template}, tmp_path, case)
    assert _verdicts(result) == {case: Verdict.FAILED}
    assert check in _failed_checks(result, case)


def test_a_damaged_instance_fails_the_byte_comparison(
    peers: ConsumerPeers, schemas: SchemaSet, scripts: Path, tmp_path: Path
) -> None:
    template = f"{PY} {shlex.quote(str(scripts / 'damage.py'))} {{out}} {OURS['fetch']}"
    result = _run(peers, schemas, {"fetch": template}, tmp_path, "idc-flow")
    assert _verdicts(result) == {"idc-flow": Verdict.FAILED}
    assert _failed_checks(result, "idc-flow") == {"DICOM instances in {out}"}


def test_a_missing_template_placeholder_is_a_failed_setup_check(
    peers: ConsumerPeers, schemas: SchemaSet, tmp_path: Path
) -> None:
    result = _run(peers, schemas, {"query": "echo {no_such_placeholder}"}, tmp_path, "idc-find-documents")
    assert _failed_checks(result, "idc-find-documents") == {"command template"}


# -- the simulated peers ------------------------------------------------------------------------
def test_stored_query_values_are_read_strictly() -> None:
    assert parse_values("'a^^^&1.2&ISO'") == ["a^^^&1.2&ISO"]
    assert parse_values("('x', 'it''s')") == ["x", "it's"]
    assert parse_values("20240101") == ["20240101"]
    assert parse_values("a^^^&1.2&ISO") is None
    assert parse_values("('x', y)") is None


def test_the_test_data_is_deterministic_and_consistent() -> None:
    first, second = consumer_test_data(), consumer_test_data()
    assert [d.content for d in first.documents] == [d.content for d in second.documents]
    assert [etree.tostring(o) for o in first.objects] == [etree.tostring(o) for o in second.objects]
    kos = first.document("kos-ct")
    assert kos.mime_type == "application/dicom" and kos.content[128:132] == b"DICM"
    # RAD TF-3 §4.68.4.1.2.3.2: the manifest's uniqueId is its SOP Instance UID.
    assert kos.unique_id.encode() in kos.content
    locations = {first.location_of(i) for i in first.instances_of("kos-mm")}
    assert len(locations) == 2
    assert first.of_patient(first.other_patient_id) and not set(first.of_patient(first.patient_id)) & set(
        first.of_patient(first.other_patient_id)
    )
