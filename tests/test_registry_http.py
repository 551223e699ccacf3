"""The Document Registry as a service over real loopback sockets: ITI-42 and ITI-18 through HTTP,
the ITI-8 feed over MLLP, bad input answered precisely while the service keeps serving, every
response checked against the ebRS schemas, and zeep (a stock WSDL-driven client, unmodified)
calling both transactions through the served WSDL."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lxml import etree

from registry.app import build_registry_app
from registry.config import RegistrySettings
from tests.support import factory as f
from xds.http.client import SoapClient
from xds.http.server import ServerThread
from xds.metadata.ebrim import decode_registry_object_list, encode_submit_objects_request
from xds.metadata.responses import parse_adhoc_query_response, parse_registry_response
from xds.query import build_adhoc_query
from xds.soap.fault import SoapFault
from xds.vocabulary import NS_QUERY, NS_RS, NS_SOAP12, Action, ResponseStatus, Status
from xds.xml import parse_xml

FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Live:
    def __init__(self, server: ServerThread, mllp_port: int, schemas: Path) -> None:
        self.url = server.url + "/registry"
        self.mllp_port = mllp_port
        self.client = SoapClient(self.url, timeout=30)
        rs = etree.parse(str(schemas / "schema" / "ebRS" / "rs.xsd"))
        query = etree.parse(str(schemas / "schema" / "ebRS" / "query.xsd"))
        self.rs_schema = etree.XMLSchema(rs)
        self.query_schema = etree.XMLSchema(query)

    def feed(self, pid: str) -> None:
        from xds.hl7.mllp import send_mllp

        local, authority = pid.split("^^^")
        message = (
            "MSH|^~\\&|TEST^^|HOSP^^|REG^^|HOSP^^|20250101120000||ADT^A01|CTRL1|P|2.3.1\r"
            "EVN|A01|20250101120000\r"
            f"PID|||{local}^^^{authority}||DOE^JANE||19700101|F\r"
        ).encode()
        ack = send_mllp("127.0.0.1", self.mllp_port, message, timeout=10)
        assert b"MSA|AA|CTRL1" in ack, ack

    def register(self, sub) -> tuple[str, list]:  # type: ignore[no-untyped-def]
        reply = self.client.call(Action.ITI42, encode_submit_objects_request(sub))
        assert reply.action == Action.ITI42_RESPONSE
        assert self.rs_schema.validate(reply.body), self.rs_schema.error_log
        result = parse_registry_response(reply.body)
        return result.status, list(result.errors)

    def query(self, params: dict[str, object]):  # type: ignore[no-untyped-def]
        reply = self.client.call(Action.ITI18, build_adhoc_query(FIND_DOCUMENTS, params, validate=False))
        assert reply.action == Action.ITI18_RESPONSE
        assert self.query_schema.validate(reply.body), self.query_schema.error_log
        return parse_adhoc_query_response(reply.body)


@pytest.fixture
def live(registry_db_url: str, tmp_path: Path, codes_xml: Path, schemas_dir: Path) -> Iterator[Live]:
    mllp = _free_port()
    settings = RegistrySettings(db=registry_db_url, data_dir=tmp_path, codes=codes_xml, schemas=schemas_dir, mllp_port=mllp)
    with ServerThread(build_registry_app(settings)) as server:
        yield Live(server, mllp, schemas_dir)


def test_feed_register_and_query_over_the_wire(live: Live) -> None:
    pid = f.patient_id()
    status, errors = live.register(f.submission(pid))
    assert status == ResponseStatus.FAILURE and [e.code_text for e in errors] == ["XDSUnknownPatientId"]
    live.feed(pid)
    sub = f.submission(pid, entries=2)
    status, errors = live.register(sub)
    assert (status, errors) == (ResponseStatus.SUCCESS, [])
    answer = live.query({"$XDSDocumentEntryPatientId": pid, "$XDSDocumentEntryStatus": [Status.APPROVED]})
    assert answer.status == ResponseStatus.SUCCESS
    found = decode_registry_object_list(answer.object_list).submission.document_entries
    assert sorted(d.unique_id for d in found) == sorted(d.unique_id for d in sub.document_entries)


def test_query_error_comes_back_inside_adhoc_query_response(live: Live) -> None:
    answer = live.query({"$XDSDocumentEntryStatus": [Status.APPROVED]} | {"$XDSDocumentEntryPatientId": None})
    assert answer.status == ResponseStatus.FAILURE
    assert [e.code_text for e in answer.errors] == ["XDSStoredQueryMissingParam"]


def test_action_that_does_not_match_the_body(live: Live) -> None:
    reply = live.client.call(Action.ITI42, build_adhoc_query(FIND_DOCUMENTS, {"$XDSDocumentEntryPatientId": f.patient_id(), "$XDSDocumentEntryStatus": [Status.APPROVED]}))
    assert reply.body.tag == f"{{{NS_RS}}}RegistryResponse"
    assert parse_registry_response(reply.body).status == ResponseStatus.FAILURE
    reply = live.client.call(Action.ITI18, encode_submit_objects_request(f.submission(f.patient_id())))
    assert reply.body.tag == f"{{{NS_QUERY}}}AdhocQueryResponse"
    assert parse_adhoc_query_response(reply.body).status == ResponseStatus.FAILURE


def test_unknown_action_is_a_fault_and_the_service_keeps_serving(live: Live) -> None:
    with pytest.raises(SoapFault) as raised:
        live.client.call("urn:ihe:iti:2007:RetrieveDocumentSet", encode_submit_objects_request(f.submission(f.patient_id())))
    assert raised.value.http_status == 400
    assert "ActionNotSupported" in str(raised.value.subcode)
    pid = f.patient_id()
    live.feed(pid)
    assert live.register(f.submission(pid)) == (ResponseStatus.SUCCESS, [])


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/soap+xml", b"this is not XML", 400),
        ("text/xml", b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>', 400),
        ("application/soap+xml", b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', 400),
        ("application/json", b"{}", 415),
    ],
)
def test_bad_input_gets_a_fault_and_nothing_is_stored(live: Live, content_type: str, body: bytes, status: int) -> None:
    response = httpx.post(live.url, content=body, headers={"content-type": content_type}, timeout=10)
    assert response.status_code == status
    assert b"Fault" in response.content
    pid = f.patient_id()
    live.feed(pid)
    assert live.register(f.submission(pid)) == (ResponseStatus.SUCCESS, [])


def test_wsdl_is_served_with_the_endpoint_address(live: Live) -> None:
    response = httpx.get(live.url + "?wsdl", timeout=10)
    assert response.status_code == 200
    assert live.url.encode() in response.content
    assert b"DocumentRegistry_RegistryStoredQuery" in response.content


def _zeep_value(el: etree._Element) -> dict[str, object]:
    """An ebRIM element as the keyword values zeep's typed API takes (attributes, Slots, Name)."""
    local = etree.QName(el).localname
    if local == "ValueList":
        return {"_value_1": [{"Value": v.text} for v in el]}
    if local in ("Name", "Description"):
        return {"_value_1": [{"LocalizedString": dict(ls.attrib)} for ls in el]}
    values: dict[str, object] = dict(el.attrib)
    for child in el:
        name = etree.QName(child).localname
        if name in ("Classification", "ExternalIdentifier"):
            continue  # zeep 4.3 loses the inherited id and Slot of these recursive types
        converted = _zeep_value(child)
        if name in ("Name", "Description", "ValueList", "VersionInfo"):
            values[name] = converted
        else:
            values.setdefault(name, []).append(converted)  # type: ignore[union-attr]
    return values


def test_zeep_calls_iti18_and_iti42_through_the_served_wsdl(live: Live) -> None:
    """zeep builds both requests from the served WSDL and the schemas it imports.

    zeep 4.3 cannot express nested Classifications and ExternalIdentifiers of ebRIM (its
    recursive ClassificationType loses the inherited ``id`` and ``Slot``), and it writes the
    objects of a RegistryObjectList as ``rim:Identifiable`` with ``xsi:type``. The registry
    reads that typing, so zeep's ITI-42 reaches the checklist and gets its precise findings; a
    complete submission is registered with our client, and zeep's ITI-18 finds it.
    """
    zeep = pytest.importorskip("zeep")
    rim = "{urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0}"
    types = {"ExtrinsicObject": "ExtrinsicObjectType", "RegistryPackage": "RegistryPackageType", "Association": "AssociationType1"}

    pid = f.patient_id()
    live.feed(pid)
    client = zeep.Client(live.url + "?wsdl")
    sub = f.submission(pid)
    objects = [
        client.get_type(rim + types[etree.QName(el).localname])(**_zeep_value(el))
        for el in encode_submit_objects_request(sub).find(rim + "RegistryObjectList")
        if etree.QName(el).localname in types
    ]
    result = client.service["DocumentRegistry_RegisterDocumentSet-b"](RegistryObjectList={"Identifiable": objects})
    assert result.status == ResponseStatus.FAILURE
    contexts = " ".join(e.codeContext for e in result.RegistryErrorList.RegistryError)
    assert "SubmissionSet" in contexts and "unexpected element" not in contexts

    assert live.register(sub) == (ResponseStatus.SUCCESS, [])
    # zeep cannot parse the members of rim:Identifiable's substitution group either, so its raw
    # response (a public zeep setting) is read with our parser and checked against query.xsd.
    with client.settings(raw_response=True):
        raw = client.service.DocumentRegistry_RegistryStoredQuery(
            ResponseOption={"returnType": "LeafClass", "returnComposedObjects": True},
            AdhocQuery={
                "id": FIND_DOCUMENTS,
                "Slot": [
                    {"name": "$XDSDocumentEntryPatientId", "ValueList": {"_value_1": [{"Value": f"'{pid}'"}]}},
                    {"name": "$XDSDocumentEntryStatus", "ValueList": {"_value_1": [{"Value": f"('{Status.APPROVED}')"}]}},
                ],
            },
        )
    assert raw.status_code == 200
    body = parse_xml(raw.content).find(f"{{{NS_SOAP12}}}Body")[0]
    assert live.query_schema.validate(body), live.query_schema.error_log
    answer = parse_adhoc_query_response(body)
    assert answer.status == ResponseStatus.SUCCESS
    found = decode_registry_object_list(answer.object_list).submission.document_entries
    assert [d.unique_id for d in found] == [sub.document_entries[0].unique_id]


def test_schema_violation_is_a_metadata_error_when_schemas_are_configured(live: Live) -> None:
    pid = f.patient_id()
    live.feed(pid)
    request = encode_submit_objects_request(f.submission(pid))
    rim = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
    entry = request.find(f"{{{rim}}}RegistryObjectList/{{{rim}}}ExtrinsicObject")
    entry.insert(0, etree.Element(f"{{{rim}}}Bogus"))
    reply = live.client.call(Action.ITI42, request)
    result = parse_registry_response(reply.body)
    assert result.status == ResponseStatus.FAILURE
    assert {e.code_text for e in result.errors} == {"XDSRegistryMetadataError"}
    assert any("schema violation" in e.context and "Bogus" in e.context for e in result.errors)
    after = live.query({"$XDSDocumentEntryPatientId": pid, "$XDSDocumentEntryStatus": [Status.APPROVED]})
    assert decode_registry_object_list(after.object_list).submission.document_entries == []


def test_a40_merge_over_mllp_moves_entries_to_the_surviving_id(live: Live) -> None:
    from xds.hl7.mllp import send_mllp

    survivor, merged = f.patient_id(), f.patient_id()
    live.feed(survivor)
    live.feed(merged)
    sub = f.submission(merged)
    assert live.register(sub) == (ResponseStatus.SUCCESS, [])
    s_local, authority = survivor.split("^^^")
    m_local, _ = merged.split("^^^")
    a40 = (
        "MSH|^~\\&|TEST|HOSP|REG|HOSP|20250101130000||ADT^A40^ADT_A39|CTRL40|P|2.5\r"
        "EVN|A40|20250101130000\r"
        f"PID|||{s_local}^^^{authority}||DOE^JANE\r"
        f"MRG|{m_local}^^^{authority}\r"
    ).encode()
    assert b"MSA|AA|CTRL40" in send_mllp("127.0.0.1", live.mllp_port, a40, timeout=10)
    moved = live.query({"$XDSDocumentEntryPatientId": survivor, "$XDSDocumentEntryStatus": [Status.APPROVED]})
    entries = decode_registry_object_list(moved.object_list).submission.document_entries
    assert [(d.unique_id, d.patient_id) for d in entries] == [(sub.document_entries[0].unique_id, survivor)]
    gone = live.query({"$XDSDocumentEntryPatientId": merged, "$XDSDocumentEntryStatus": [Status.APPROVED]})
    assert decode_registry_object_list(gone.object_list).submission.document_entries == []
    status, errors = live.register(f.submission(merged))
    assert status == ResponseStatus.FAILURE and [e.code_text for e in errors] == ["XDSUnknownPatientId"]
