"""The runner's parts on their own: identifiers, metadata and HL7 builders, the XPath views and
assertions on hand-made replies, plan selection, and the command line."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from conformance_tests import assertions as a
from conformance_tests.cli import conformance
from conformance_tests.data.hl7 import adt_a01, read_ack
from conformance_tests.data.ids import IdFactory
from conformance_tests.data.metadata import Submission, document_spec, folder_spec
from conformance_tests.evidence import Exchange
from conformance_tests.model import Counts, failure, success
from conformance_tests.plans import plan_for
from conformance_tests.plans.registry.common import split_slot_values
from conformance_tests.response import ResponseView
from conformance_tests.schemas import SchemaError, SchemaSet
from conformance_tests.state import CaseState, RunData
from conformance_tests.transport import SoapAnswer, _read_envelope
from xds.query import build_adhoc_query
from xds.vocabulary import NS_RIM, IdScheme, Node, Scheme

SCHEMAS = Path(__file__).resolve().parents[1].parent / "shared" / "schemas"
needs_schemas = pytest.mark.skipif(not SCHEMAS.is_dir(), reason=f"shared schemas not found at {SCHEMAS}")
OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+\Z")

SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
Q = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
ERROR = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
MESSAGE_ID = "urn:uuid:11111111-2222-4333-8444-555555555555"


# -- identifiers and builders --------------------------------------------------------------------
def test_identifiers_are_fresh_valid_oids_and_cx_patient_ids() -> None:
    first, second = IdFactory(), IdFactory()
    oids = [first.oid() for _ in range(1000)] + [second.oid()]
    assert len(set(oids)) == len(oids)
    assert all(OID.match(o) and len(o) <= 64 for o in oids)
    assert first.root != second.root
    pid = first.patient_id("sq")
    assert re.fullmatch(r"CT[0-9A-F]{8}SQ\^\^\^&1\.3\.6\.1\.4\.1\.21367\.13\.20\.1000&ISO", pid)
    assert first.patient_id("sq") == pid and first.patient_id("sq2") != pid
    assert first.accession("b").endswith("^^^&1.3.6.1.4.1.21367.13.202.2000&ISO^urn:ihe:iti:xds:2013:accession")


@needs_schemas
def test_a_submission_is_schema_valid_with_unique_ids_and_the_content_hash() -> None:
    ids = IdFactory()
    pid = ids.patient_id("a")
    sub = Submission(ids, pid)
    spec = document_spec(ids, pid)
    doc = sub.add_document(spec)
    fd = sub.add_folder(folder_spec(ids, pid))
    sub.add_to_folder(fd, doc)
    element = sub.element()
    assert SchemaSet.load(SCHEMAS).validate(element) == []
    all_ids = element.xpath("//@id")
    assert len(all_ids) == len(set(all_ids))
    hash_value = element.xpath("//rim:Slot[@name='hash']/rim:ValueList/rim:Value/text()", namespaces={"rim": NS_RIM})
    assert hash_value == [hashlib.sha1(spec.content).hexdigest()]
    assert len(element.xpath("//rim:Association", namespaces={"rim": NS_RIM})) == 4


def test_omitted_attributes_are_left_out() -> None:
    ids = IdFactory()
    pid = ids.patient_id("a")
    ns = {"rim": NS_RIM}
    full = Submission(ids, pid)
    full.add_document(document_spec(ids, pid))
    lacking = Submission(ids, pid)
    lacking.add_document(document_spec(ids, pid, omit=frozenset({"classCode", "creationTime", "repositoryUniqueId"})))
    for sub, present in ((full, True), (lacking, False)):
        element = sub.element()
        assert (
            bool(element.xpath(f"//rim:Classification[@classificationScheme='{Scheme.DE_CLASS_CODE}']", namespaces=ns))
            is present
        )
        assert bool(element.xpath("//rim:Slot[@name='creationTime']", namespaces=ns)) is present
        assert bool(element.xpath("//rim:Slot[@name='repositoryUniqueId']", namespaces=ns)) is present
        assert element.xpath(
            f"//rim:ExternalIdentifier[@identificationScheme='{IdScheme.DE_PATIENT_ID}']/@value", namespaces=ns
        ) == [pid]


def test_adt_a01_is_hl7_v231_with_the_patient_in_pid3() -> None:
    message = adt_a01("P1^^^&1.2.3&ISO", control_id="C1", family="O|BRIEN")
    segments = message.decode().split("\r")
    assert segments[0].split("|")[8:12] == ["ADT^A01", "C1", "P", "2.3.1"]
    assert segments[1].startswith("EVN|A01|")
    pid = segments[2].split("|")
    assert pid[3] == "P1^^^&1.2.3&ISO" and pid[5] == "O\\F\\BRIEN^TEST^^^^^L"
    with pytest.raises(ValueError, match="assigning authority"):
        adt_a01("P1", control_id="C1")


def test_acks_are_read_in_both_modes() -> None:
    accepted = read_ack(b"MSH|^~\\&|R||S||2025||ACK|9|P|2.3.1\rMSA|AA|C1\r")
    assert accepted is not None and accepted.accepted and accepted.control_id == "C1"
    enhanced = read_ack(b"MSH|^~\\&|R||S||2025||ACK|9|P|2.5\rMSA|CA|C2\r")
    assert enhanced is not None and enhanced.accepted
    rejected = read_ack(b"MSH|^~\\&|R||S||2025||ACK|9|P|2.3.1\rMSA|AE|C3|bad id\rERR|^^^204\r")
    assert rejected is not None and not rejected.accepted and "bad id" in rejected.text and "ERR" in rejected.text
    assert read_ack(b"not hl7") is None
    assert read_ack(b"MSH|^~\\&|R||S||2025||ACK|9|P|2.3.1\r") is None


def test_list_values_can_be_spread_over_several_value_elements() -> None:
    request = build_adhoc_query(
        "GetDocuments", {"$XDSDocumentEntryEntryUUID": ["urn:uuid:a", "urn:uuid:b"]}, validate=False
    )
    rewritten = split_slot_values("$XDSDocumentEntryEntryUUID")(request, CaseState(RunData()))
    values = rewritten.xpath("//rim:Slot/rim:ValueList/rim:Value/text()", namespaces={"rim": NS_RIM})
    assert values == ["('urn:uuid:a')", "('urn:uuid:b')"]


# -- replies, views and assertions ---------------------------------------------------------------
def _answer(
    body: str, *, headers: str | None = None, content_type: str = "application/soap+xml", status: int = 200
) -> SoapAnswer:
    if headers is None:
        headers = (
            f'<wsa:Action s:mustUnderstand="true">urn:ihe:iti:2007:RegisterDocumentSet-bResponse</wsa:Action>'
            f"<wsa:RelatesTo>{MESSAGE_ID}</wsa:RelatesTo>"
        )
    data = (
        f'<s:Envelope xmlns:s="{SOAP}" xmlns:wsa="{WSA}" xmlns:rs="{RS}" xmlns:query="{Q}" xmlns:rim="{NS_RIM}">'
        f"<s:Header>{headers}</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()
    exchange = Exchange(label="t", protocol="HTTP", target="POST x", started="now", response_body=data,
                        response_status=f"HTTP {status}")  # fmt: skip
    answer = SoapAnswer(exchange=exchange, message_id=MESSAGE_ID, http_status=status, content_type=content_type)
    _read_envelope(answer, data)
    return answer


def _names(checks: list) -> dict[str, bool]:  # type: ignore[type-arg]
    return {c.name: c.passed for c in checks}


def _envelope_checks(answer: SoapAnswer) -> dict[str, bool]:
    return _names(a.check_envelope(ResponseView(answer), expected_action="urn:ihe:iti:2007:RegisterDocumentSet-bResponse",
                                   expected_body=f"{{{RS}}}RegistryResponse"))  # fmt: skip


def test_a_correct_reply_passes_every_envelope_check() -> None:
    results = _envelope_checks(_answer(f'<rs:RegistryResponse status="{SUCCESS}"/>'))
    assert results and all(results.values()), results


@pytest.mark.parametrize(
    ("answer", "failing"),
    [
        pytest.param(lambda: _answer(f'<rs:RegistryResponse status="{SUCCESS}"/>', content_type="text/xml"), "Content-Type", id="text/xml"),
        pytest.param(lambda: _answer(f'<rs:RegistryResponse status="{SUCCESS}"/>', status=500), "HTTP status", id="http-500"),
        pytest.param(lambda: _answer(f'<rs:RegistryResponse status="{SUCCESS}"/>', headers=f"<wsa:RelatesTo>{MESSAGE_ID}</wsa:RelatesTo>"),
                     "wsa:Action", id="no-action"),
        pytest.param(lambda: _answer(f'<rs:RegistryResponse status="{SUCCESS}"/>', headers=(
            "<wsa:Action> urn:ihe:iti:2007:RegisterDocumentSet-bResponse </wsa:Action>"
            f"<wsa:RelatesTo>{MESSAGE_ID}</wsa:RelatesTo>")), "wsa:Action", id="action-with-spaces"),
        pytest.param(lambda: _answer(f'<rs:RegistryResponse status="{SUCCESS}"/>', headers=(
            "<wsa:Action>urn:ihe:iti:2007:RegisterDocumentSet-bResponse</wsa:Action>")), "wsa:RelatesTo", id="no-relates-to"),
        pytest.param(lambda: _answer(f'<query:AdhocQueryResponse status="{SUCCESS}"/>'), "response body", id="wrong-body"),
        pytest.param(lambda: _answer('<s:Fault><s:Code><s:Value>s:Receiver</s:Value></s:Code><s:Reason><s:Text xml:lang="en">x</s:Text></s:Reason></s:Fault>', status=500),
                     "not a fault", id="fault"),
    ],
)  # fmt: skip
def test_each_envelope_rule_can_fail(answer, failing: str) -> None:  # type: ignore[no-untyped-def]
    results = _envelope_checks(answer())
    assert results.get(failing) is False, results


def test_a_multipart_reply_is_judged_by_its_root_part() -> None:
    envelope = _answer(f'<rs:RegistryResponse status="{SUCCESS}"/>').exchange.response_body
    body = (
        b"--b1\r\nContent-Type: text/plain\r\nContent-ID: <other@x>\r\n\r\nnot the root\r\n"
        b'--b1\r\nContent-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"\r\n'
        b"Content-ID: <root@x>\r\n\r\n" + envelope + b"\r\n--b1--\r\n"
    )
    content_type = 'multipart/related; boundary=b1; type="application/xop+xml"; start="<root@x>"; start-info="application/soap+xml"'
    exchange = Exchange(label="t", protocol="HTTP", target="x", started="now", response_body=body)
    answer = SoapAnswer(exchange=exchange, message_id=MESSAGE_ID, http_status=200, content_type=content_type)
    _read_envelope(answer, body)
    assert answer.multipart and answer.part_count == 2
    assert all(_envelope_checks(answer).values())
    answer.content_type = content_type.replace('; start-info="application/soap+xml"', "")
    assert _envelope_checks(answer)["Content-Type"] is False


def _error(code: str, severity: str = ERROR) -> str:
    return f'<rs:RegistryError errorCode="{code}" codeContext="ctx" severity="{severity}"/>'


def test_status_errors_and_warnings() -> None:
    warning = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning"
    ok_with_warning = ResponseView(_answer(
        f'<rs:RegistryResponse status="{SUCCESS}"><rs:RegistryErrorList>{_error("XDSExtraMetadataNotSaved", warning)}'
        "</rs:RegistryErrorList></rs:RegistryResponse>"))  # fmt: skip
    assert all(
        c.passed
        for c in a.check_status(ok_with_warning, success(warnings=["XDSExtraMetadataNotSaved"]), is_query=False)
    )
    assert not all(c.passed for c in a.check_status(ok_with_warning, success(warnings=["XDSOther"]), is_query=False))

    warning_status = ResponseView(
        _answer('<rs:RegistryResponse status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Warning"/>')
    )
    (status,) = [c for c in a.check_status(warning_status, success(), is_query=False) if c.name == "status"]
    assert not status.passed and "no 'Warning' status" in status.detail

    success_with_error = ResponseView(
        _answer(
            f'<rs:RegistryResponse status="{SUCCESS}"><rs:RegistryErrorList>{_error("XDSRegistryError")}</rs:RegistryErrorList></rs:RegistryResponse>'
        )
    )
    assert _names(a.check_status(success_with_error, success(), is_query=False))["no errors"] is False

    empty_failure = ResponseView(_answer(f'<rs:RegistryResponse status="{FAILURE}"/>'))
    results = _names(a.check_status(empty_failure, failure("XDSUnknownPatientId"), is_query=False))
    assert results["status"] and not results["error list"] and not results["error XDSUnknownPatientId"]

    query_failure_with_objects = ResponseView(
        _answer(
            f'<query:AdhocQueryResponse status="{FAILURE}"><rs:RegistryErrorList>{_error("XDSRegistryError")}</rs:RegistryErrorList>'
            '<rim:RegistryObjectList><rim:ObjectRef id="urn:uuid:1"/></rim:RegistryObjectList></query:AdhocQueryResponse>'
        )
    )
    assert _names(a.check_status(query_failure_with_objects, failure(), is_query=True))["no objects"] is False


def _package(pid: str, node: str, *, inside: bool) -> str:
    scheme = IdScheme.SS_PATIENT_ID if node == Node.SUBMISSION_SET else IdScheme.FD_PATIENT_ID
    unique = IdScheme.SS_UNIQUE_ID if node == Node.SUBMISSION_SET else IdScheme.FD_UNIQUE_ID
    escaped = pid.replace("&", "&amp;")
    ident = f"urn:uuid:{hashlib.md5((pid + node).encode()).hexdigest()[:8]}-0000-4000-8000-000000000000"
    classification = (
        f'<rim:Classification id="urn:uuid:c{ident[10:]}" classifiedObject="{ident}" classificationNode="{node}"/>'
    )
    package = (
        f'<rim:RegistryPackage id="{ident}" lid="{ident}" status="urn:oasis:names:tc:ebxml-regrep:StatusType:Approved">'
        '<rim:VersionInfo versionName="1"/>'
        + (classification if inside else "")
        + f'<rim:ExternalIdentifier id="urn:uuid:e{ident[10:]}" registryObject="{ident}" identificationScheme="{unique}" value="1.2.{len(pid)}"/>'
        f'<rim:ExternalIdentifier id="urn:uuid:f{ident[10:]}" registryObject="{ident}" identificationScheme="{scheme}" value="{escaped}"/>'
        "</rim:RegistryPackage>"
    )
    return package + ("" if inside else classification)


def test_packages_are_told_apart_and_leaf_class_results_checked() -> None:
    objects = _package("P1^^^&1.2&ISO", Node.SUBMISSION_SET, inside=True) + _package(
        "P1^^^&1.2&ISO", Node.FOLDER, inside=False
    )
    view = ResponseView(
        _answer(
            f'<query:AdhocQueryResponse status="{SUCCESS}"><rim:RegistryObjectList>{objects}</rim:RegistryObjectList></query:AdhocQueryResponse>'
        )
    )
    assert (len(view.submission_sets), len(view.folders)) == (1, 1)
    assert all(c.passed for c in a.check_counts(view, Counts(submission_sets=1, folders=1, documents=0)))
    assert _names(a.check_counts(view, Counts(folders=2)))["Folder count"] is False
    assert all(c.passed for c in a.check_leaf_class(view))

    two_patients = _package("P1^^^&1.2&ISO", Node.FOLDER, inside=True) + _package(
        "P2^^^&1.2&ISO", Node.FOLDER, inside=True
    )
    view = ResponseView(
        _answer(
            f'<query:AdhocQueryResponse status="{SUCCESS}"><rim:RegistryObjectList>{two_patients}</rim:RegistryObjectList></query:AdhocQueryResponse>'
        )
    )
    assert _names(a.check_leaf_class(view))["single patient"] is False

    symbolic = objects.replace('lid="', 'data-x="').replace('<rim:VersionInfo versionName="1"/>', "")
    view = ResponseView(
        _answer(
            f'<query:AdhocQueryResponse status="{SUCCESS}"><rim:RegistryObjectList>{symbolic}</rim:RegistryObjectList></query:AdhocQueryResponse>'
        )
    )
    (objects_check,) = [c for c in a.check_leaf_class(view) if c.name == "registry objects"]
    assert not objects_check.passed and "no lid" in objects_check.detail and "VersionInfo" in objects_check.detail


@needs_schemas
def test_schema_check_and_schema_directory() -> None:
    schemas = SchemaSet.load(SCHEMAS)
    assert a.check_schema(ResponseView(_answer(f'<rs:RegistryResponse status="{SUCCESS}"/>')), schemas).passed
    invalid = a.check_schema(ResponseView(_answer("<rs:RegistryResponse/>")), schemas)
    assert not invalid.passed and "status" in invalid.detail
    with pytest.raises(SchemaError):
        SchemaSet.load(SCHEMAS.parent)


# -- plans and the command line ------------------------------------------------------------------
def test_selecting_a_case_brings_its_prerequisites_in_plan_order() -> None:
    plan = plan_for("registry")
    assert [c.id for _, c in plan.select(cases=["12368"])] == ["12346", "12374", "12368"]
    assert {s.name for s, _ in plan.select(suites=["soap"])} == {"soap"}
    with pytest.raises(KeyError):
        plan.select(suites=["nope"])
    with pytest.raises(KeyError):
        plan.select(cases=["99999"])


def test_every_registry_case_names_its_tf_section_and_expected_outcomes() -> None:
    plan = plan_for("registry")
    ids = [case.id for _, case in plan.all_cases()]
    assert len(ids) == len(set(ids))
    for nist in ("11990", "11991", "11992", "11993", "11994", "11995", "11996", "11997", "11998", "11998a", "11999",
                 "12000", "12001", "12002", "12004", "12022", "12084", "12323", "12326", "12327", "12370", "12379",
                 "15806", "12051", "12346", "11897", "11898", "11899", "11901", "11902", "11903", "11904", "11905",
                 "11906", "11907", "11908", "11909", "12368", "15803", "12364"):  # fmt: skip
        assert nist in ids, nist
    for _, case in plan.all_cases():
        assert "TF" in case.tf or "SOAP" in case.tf, case.id
        for step in case.steps:
            assert step.expected(), f"{case.id}/{step.name}"


def test_cli_list_and_usage_errors() -> None:
    runner = CliRunner()
    listed = runner.invoke(conformance, ["list", "--actor", "registry", "--steps"])
    assert listed.exit_code == 0, listed.output
    assert (
        "11897" in listed.output
        and "ITI TF-2a §3.18" in listed.output
        and "-> Success; 5 DocumentEntry" in listed.output
    )
    everything = runner.invoke(conformance, ["list"])
    assert all(f"{actor}: " in everything.output for actor in ("registry", "repository", "imaging-source", "consumer"))
    no_command = runner.invoke(conformance, ["run", "--actor", "consumer"])
    assert no_command.exit_code == 2 and "--consumer-command" in no_command.output
    no_patients = runner.invoke(conformance, ["run", "--actor", "registry", "--endpoint", "http://x/registry",
                                              *(["--schemas", str(SCHEMAS)] if SCHEMAS.is_dir() else [])])  # fmt: skip
    assert no_patients.exit_code == 2 and "--mllp" in no_patients.output
