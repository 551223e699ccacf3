"""The consumer test plan against our own consumer (``xds consumer query|retrieve|fetch``), and
against deliberately broken consumers.

Our consumer is run through its CLI, as an operator would, against the runner's simulated
registry, repository and imaging sources; every case with a template must pass. Then a small
fake consumer script written here (correct by default) is given one defect at a time: SOAP 1.1,
no wsa:Action, an unquoted patient id, a retrieved file with one byte changed or dropped, exit
status 0 after a registry Failure; and our own ``fetch`` is run with templates that leave out a
source, ignore the batch size, accept no uncompressed syntax or damage a DICOM file. Each time
the runner must fail the case, and the check, that rule belongs to. A second fake, an imaging
consumer (ITI-18, ITI-43, then RAD-69 or WADO-URI), passes the homeCommunityId and WADO cases
and fails them with one defect at a time (no HomeCommunityId, no contentType, the wrong source).
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

# A minimal imaging consumer: FindDocuments, ITI-43 of the manifests (application/dicom), then
# the instances of each KOS by RAD-69 (``fetch``) or WADO-URI (``wado``) from the source its
# Retrieve Location UID names. It sends back the homeCommunityId the metadata carries (ITI TF-2a
# §3.18.4.1.2.3.8); ``--defect`` breaks one thing.
FAKE_IMAGING = r'''
import argparse, io, sys
from pathlib import Path
import httpx
from lxml import etree
from pydicom import dcmread
from xds.http.client import SoapClient

RIM, QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0", "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
XDS, XDSI, RS = "urn:ihe:iti:xds-b:2007", "urn:ihe:rad:xdsi-b:2009", "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
FIND = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"

def el(parent, ns, local, text=None, **attrs):
    e = etree.SubElement(parent, f"{{{ns}}}{local}", **attrs)
    if text is not None:
        e.text = text
    return e

def manifests(registry, patient):
    request = etree.Element(f"{{{QUERY}}}AdhocQueryRequest", nsmap={"query": QUERY, "rim": RIM})
    el(request, QUERY, "ResponseOption", returnType="LeafClass", returnComposedObjects="true")
    query = el(request, RIM, "AdhocQuery", id=FIND)
    for name, text in (("$XDSDocumentEntryPatientId", f"'{patient}'"), ("$XDSDocumentEntryStatus", f"('{APPROVED}')")):
        el(el(el(query, RIM, "Slot", name=name), RIM, "ValueList"), RIM, "Value", text)
    with SoapClient(registry) as client, client.call("urn:ihe:iti:2007:RegistryStoredQuery", request) as reply:
        found = []
        for entry in reply.body.iter(f"{{{RIM}}}ExtrinsicObject"):
            if entry.get("mimeType") != "application/dicom":
                continue
            uid = next(x.get("value") for x in entry.iter(f"{{{RIM}}}ExternalIdentifier") if x.get("identificationScheme") == UNIQUE_ID)
            repo = next(s.findtext(f"{{{RIM}}}ValueList/{{{RIM}}}Value") for s in entry.iter(f"{{{RIM}}}Slot") if s.get("name") == "repositoryUniqueId")
            found.append((uid, repo, entry.get("home")))
        return found

def document_request(parent, home, repository, uid, defect):
    item = el(parent, XDS, "DocumentRequest")
    if home and defect != "no-home":
        el(item, XDS, "HomeCommunityId", home)
    el(item, XDS, "RepositoryUniqueId", repository)
    el(item, XDS, "DocumentUniqueId", uid)

def main():
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["fetch", "wado"])
    for name in ("--registry", "--repository", "--patient", "--out", "--defect"):
        p.add_argument(name)
    p.add_argument("--source", action="append", default=[])
    a = p.parse_args()
    out = Path(a.out)
    endpoints = dict(item.split("=", 1) for item in a.source)
    if a.defect == "swap":
        endpoints = dict(zip(endpoints, reversed(list(endpoints.values()))))
    failed = 0
    for uid, repository, home in manifests(a.registry, a.patient):
        request = etree.Element(f"{{{XDS}}}RetrieveDocumentSetRequest", nsmap={"xds": XDS})
        document_request(request, home, repository, uid, a.defect)
        with SoapClient(a.repository) as client, client.call("urn:ihe:iti:2007:RetrieveDocumentSet", request, mtom=True) as reply:
            kos = reply.binary(reply.body.find(f"{{{XDS}}}DocumentResponse/{{{XDS}}}Document")).read_bytes()
        (out / f"{uid}.kos.dcm").write_bytes(kos)
        for study in dcmread(io.BytesIO(kos)).CurrentRequestedProcedureEvidenceSequence:
            for series in study.ReferencedSeriesSequence:
                url = endpoints[series.RetrieveLocationUID]
                sops = [i.ReferencedSOPInstanceUID for i in series.ReferencedSOPSequence]
                if a.kind == "wado":
                    for sop in sops:
                        params = {"requestType": "WADO", "studyUID": study.StudyInstanceUID,
                                  "seriesUID": series.SeriesInstanceUID, "objectUID": sop}
                        if a.defect != "no-content-type":
                            params["contentType"] = "application/dicom"
                        got = httpx.get(url, params=params, timeout=30)
                        if got.status_code == 200:
                            (out / f"{sop}.dcm").write_bytes(got.content)
                        else:
                            failed += 1
                    continue
                rad69 = etree.Element(f"{{{XDSI}}}RetrieveImagingDocumentSetRequest", nsmap={"xdsi": XDSI, "xds": XDS})
                series_request = el(el(rad69, XDSI, "StudyRequest", studyInstanceUID=study.StudyInstanceUID),
                                    XDSI, "SeriesRequest", seriesInstanceUID=series.SeriesInstanceUID)
                for sop in sops:
                    document_request(series_request, home, series.RetrieveLocationUID, sop, a.defect)
                el(el(rad69, XDSI, "TransferSyntaxUIDList"), XDSI, "TransferSyntaxUID", "1.2.840.10008.1.2.1")
                with SoapClient(url) as client, client.call("urn:ihe:rad:2009:RetrieveImagingDocumentSet", rad69, mtom=True) as reply:
                    for item in reply.body.iter(f"{{{XDS}}}DocumentResponse"):
                        data = reply.binary(item.find(f"{{{XDS}}}Document")).read_bytes()
                        (out / (item.findtext(f"{{{XDS}}}DocumentUniqueId") + ".dcm")).write_bytes(data)
    sys.exit(1 if failed else 0)

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
    (directory / "fake_imaging.py").write_text(FAKE_IMAGING)
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
    assert verdicts.pop("idc-objectref") is Verdict.NOT_APPLICABLE  # our CLI has no ObjectRef query
    # Our CLI has no WADO flow: no template, so not applicable (never passed).
    assert (verdicts.pop("idc-wado"), verdicts.pop("idc-wado-not-found")) == (Verdict.NOT_APPLICABLE,) * 2
    # Judged on its own below (our fetch does not send the homeCommunityId back).
    verdicts.pop("idc-home-community")
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


# -- homeCommunityId and WADO: the imaging fake, correct and broken ------------------------------
def _imaging(scripts: Path, kind: str, defect: str | None = None) -> str:
    sources = "--source {source_id}=%s --source {source2_id}=%s" % (
        ("{source}", "{source2}") if kind == "fetch" else ("{wado}", "{wado2}")
    )
    extra = f" --defect {defect}" if defect else ""
    return (f"{PY} {shlex.quote(str(scripts / 'fake_imaging.py'))} {kind} --registry {{registry}} "
            f"--repository {{repository}} --patient {{patient}} --out {{out}} {sources}{extra}")  # fmt: skip


def test_the_imaging_fake_passes_the_home_community_and_wado_cases(
    peers: ConsumerPeers, schemas: SchemaSet, scripts: Path, tmp_path: Path
) -> None:
    templates = {"fetch": _imaging(scripts, "fetch"), "wado": _imaging(scripts, "wado")}
    cases = ("idc-flow", "idc-home-community", "idc-wado", "idc-wado-not-found")
    result = _run(peers, schemas, templates, tmp_path, *cases)
    assert _verdicts(result) == dict.fromkeys(cases, Verdict.PASSED), [(k, _failed_checks(result, k)) for k in cases]
    checks = {c.name for r in result.cases for s in r.steps for c in s.checks}
    assert {"ITI-43 HomeCommunityId", "RAD-69 HomeCommunityId", "WADO-URI parameters",
            "WADO endpoint by Retrieve Location UID"} <= checks  # fmt: skip
    # The WADO GETs are part of the evidence, with their query strings.
    wado = next(r for r in result.cases if r.case.id == "idc-wado")
    gets = [e.target for s in wado.steps for e in s.exchanges if e.target.startswith("GET ")]
    assert len(gets) == len(consumer_test_data().referenced_instances)
    assert all("requestType=WADO" in g and "contentType=application%2Fdicom" in g for g in gets)


@pytest.mark.parametrize(
    ("kind", "defect", "case", "checks"),
    [
        ("fetch", "no-home", "idc-home-community", {"ITI-43 HomeCommunityId", "RAD-69 HomeCommunityId"}),
        ("wado", "no-content-type", "idc-wado", {"WADO-URI parameters", "DICOM instances in {out}", "exit status"}),
        ("wado", "swap", "idc-wado", {"WADO endpoint by Retrieve Location UID", "DICOM instances in {out}",
                                      "exit status"}),
    ],
)  # fmt: skip
def test_a_broken_imaging_consumer_fails_that_check(
    peers: ConsumerPeers, schemas: SchemaSet, scripts: Path, tmp_path: Path, kind: str, defect: str, case: str,
    checks: set[str],
) -> None:  # fmt: skip
    result = _run(peers, schemas, {kind: _imaging(scripts, kind, defect)}, tmp_path, case)
    assert _verdicts(result) == {case: Verdict.FAILED}
    assert _failed_checks(result, case) == checks


def test_a_home_community_id_the_metadata_does_not_carry_fails(
    peers: ConsumerPeers, schemas: SchemaSet, tmp_path: Path
) -> None:
    # Our retrieve, told to send a homeCommunityId the registry never returned (ITI TF-2b §3.43.4.1.2).
    template = OURS["retrieve"] + " --home urn:oid:1.2.3.4"
    result = _run(peers, schemas, {"retrieve": template}, tmp_path, "idc-retrieve-one")
    assert _verdicts(result) == {"idc-retrieve-one": Verdict.FAILED}
    assert _failed_checks(result, "idc-retrieve-one") == {"ITI-43 HomeCommunityId"}


def test_our_fetch_sends_the_home_community_id_back(peers: ConsumerPeers, schemas: SchemaSet, tmp_path: Path) -> None:
    result = _run(peers, schemas, {"fetch": OURS["fetch"]}, tmp_path, "idc-home-community")
    assert _verdicts(result) == {"idc-home-community": Verdict.PASSED}, _failed_checks(result, "idc-home-community")
