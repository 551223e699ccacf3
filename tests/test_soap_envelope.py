"""SOAP 1.2 envelope and WS-Addressing rules, builders, faults, and Content-Type classification."""

from __future__ import annotations

import pytest
from lxml import etree

from xds.soap.envelope import (
    UNDERSTOOD_HEADERS,
    Packaging,
    build_request,
    build_response,
    parse_envelope,
    parse_envelope_bytes,
    request_envelope,
    request_packaging,
    soap_content_type,
)
from xds.soap.fault import FaultCode, SoapFault, parse_fault
from xds.vocabulary import (
    NS_SOAP11,
    NS_SOAP12,
    NS_WSA,
    NS_WSSE,
    WSA_ANONYMOUS,
    WSA_FAULT_ACTION,
    Action,
    WsaFault,
)
from xds.xml import parse_xml

S = NS_SOAP12
WSA = NS_WSA
ITI18 = Action.ITI18


def envelope(
    headers: str = "",
    body: str = '<q:AdhocQueryRequest xmlns:q="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"/>',
    *,
    ns: str = S,
) -> bytes:
    return (
        f'<soap:Envelope xmlns:soap="{ns}" xmlns:wsa="{WSA}">'
        f"<soap:Header>{headers}</soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>"
    ).encode()


def action(value: str = ITI18, *, mu: str | None = "true") -> str:
    attr = f' soap:mustUnderstand="{mu}"' if mu is not None else ""
    return f"<wsa:Action{attr}>{value}</wsa:Action>"


MESSAGE_ID = "<wsa:MessageID>urn:uuid:11111111-2222-3333-4444-555555555555</wsa:MessageID>"


def fault_of(data: bytes, **kwargs: object) -> SoapFault:
    with pytest.raises(SoapFault) as info:
        parse_envelope_bytes(data, **kwargs)  # type: ignore[arg-type]
    return info.value


def body_element() -> etree._Element:
    element = etree.Element("{urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0}AdhocQueryRequest")
    etree.SubElement(element, "{urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0}AdhocQuery", id="x")
    return element


# -- parsing: the good cases -----------------------------------------------------------------------
def test_parses_addressing_headers_and_body() -> None:
    data = envelope(
        action()
        + MESSAGE_ID
        + f"<wsa:ReplyTo><wsa:Address>{WSA_ANONYMOUS}</wsa:Address></wsa:ReplyTo>"
        + "<wsa:To> http://registry/xds </wsa:To>"
        + "<wsa:From><wsa:Address>http://me</wsa:Address></wsa:From>"
        + "<wsa:FaultTo><wsa:Address>http://faults</wsa:Address></wsa:FaultTo>"
        + "<wsa:RelatesTo>urn:uuid:prev</wsa:RelatesTo>"
    )
    env = parse_envelope_bytes(data)
    assert env.action == ITI18
    assert env.message_id == "urn:uuid:11111111-2222-3333-4444-555555555555"
    assert env.addressing.reply_to == WSA_ANONYMOUS
    assert env.addressing.to == "http://registry/xds"
    assert env.addressing.from_address == "http://me"
    assert env.addressing.fault_to == "http://faults"
    assert env.relates_to == "urn:uuid:prev"
    assert env.body is not None and etree.QName(env.body).localname == "AdhocQueryRequest"
    assert len(env.headers) == 7
    assert not env.is_fault


def test_action_with_surrounding_whitespace_is_stripped() -> None:
    env = parse_envelope_bytes(envelope(action(f"\n   {ITI18}\t\n")))
    assert env.action == ITI18


def test_relates_to_with_other_relationship_is_not_the_reply() -> None:
    data = envelope(
        action()
        + '<wsa:RelatesTo RelationshipType="urn:other">urn:uuid:a</wsa:RelatesTo>'
        + "<wsa:RelatesTo>urn:uuid:b</wsa:RelatesTo>"
    )
    assert parse_envelope_bytes(data).relates_to == "urn:uuid:b"


def test_header_is_optional_and_body_may_be_empty() -> None:
    data = f'<soap:Envelope xmlns:soap="{S}"><soap:Body/></soap:Envelope>'.encode()
    env = parse_envelope_bytes(data, require_action=False)
    assert env.header is None and env.headers == () and env.body is None


def test_comments_and_processing_instructions_are_ignored() -> None:
    data = (
        f'<soap:Envelope xmlns:soap="{S}" xmlns:wsa="{WSA}"><!-- c --><soap:Header><!-- h -->{action()}'
        f"</soap:Header><?pi x?><soap:Body><!-- b --><x:R xmlns:x='urn:x'/></soap:Body></soap:Envelope>"
    ).encode()
    env = parse_envelope_bytes(data)
    assert env.body is not None and env.body.tag == "{urn:x}R"
    assert len(env.headers) == 1


def test_header_blocks_lookup() -> None:
    env = parse_envelope_bytes(envelope(action() + MESSAGE_ID))
    assert len(env.header_blocks(f"{{{WSA}}}MessageID")) == 1
    assert env.header_blocks("{urn:none}X") == ()


# -- parsing: version and structure faults ---------------------------------------------------------
def test_soap11_envelope_is_version_mismatch() -> None:
    fault = fault_of(envelope(action(), ns=NS_SOAP11))
    assert fault.code is FaultCode.VERSION_MISMATCH
    assert fault.status == 400
    # SOAP 1.2 Part 1 §5.4.7: the fault lists the supported envelope in an Upgrade header.
    reply = parse_xml(fault.to_envelope())
    supported = reply.find(f"{{{S}}}Header/{{{S}}}Upgrade/{{{S}}}SupportedEnvelope")
    assert supported is not None
    prefix, _, local = supported.get("qname").partition(":")
    assert (supported.nsmap[prefix], local) == (S, "Envelope")


def test_envelope_in_unknown_namespace_is_version_mismatch() -> None:
    assert fault_of(envelope(action(), ns="urn:not-soap")).code is FaultCode.VERSION_MISMATCH


def test_root_that_is_not_an_envelope_is_sender_fault() -> None:
    fault = fault_of(b'<q:AdhocQueryRequest xmlns:q="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"/>')
    assert fault.code is FaultCode.SENDER and fault.status == 400


@pytest.mark.parametrize(
    "inner",
    [
        "<soap:Header/>",
        "",
        "<soap:Body/><soap:Header/>",
        "<soap:Header/><soap:Body/><soap:Body/>",
        "<soap:Header/><soap:Body/><x:Trailer xmlns:x='urn:x'/>",
    ],
    ids=["no-body", "empty", "body-before-header", "two-bodies", "element-after-body"],
)
def test_envelope_structure_errors_are_sender_faults(inner: str) -> None:
    data = f'<soap:Envelope xmlns:soap="{S}">{inner}</soap:Envelope>'.encode()
    assert fault_of(data, require_action=False).code is FaultCode.SENDER


@pytest.mark.parametrize("document", [b"not xml", b"<soap:Envelope", b"", b"<!DOCTYPE x []><x/>"])
def test_unparseable_bytes_are_sender_faults(document: bytes) -> None:
    fault = fault_of(document)
    assert fault.code is FaultCode.SENDER and fault.subcode is None


def test_dtd_in_envelope_is_refused() -> None:
    data = b'<!DOCTYPE e [<!ENTITY x "y">]>' + envelope(action(), body="<x:B xmlns:x='urn:x'>&x;</x:B>")
    fault = fault_of(data)
    assert fault.code is FaultCode.SENDER and "DTD" in fault.reason


# -- parsing: WS-Addressing faults ----------------------------------------------------------------
def test_missing_action_is_message_addressing_header_required() -> None:
    fault = fault_of(envelope(MESSAGE_ID))
    assert fault.code is FaultCode.SENDER
    assert fault.subcode == WsaFault.MESSAGE_ADDRESSING_HEADER_REQUIRED
    assert fault.relates_to == "urn:uuid:11111111-2222-3333-4444-555555555555"
    assert fault.detail and fault.detail[0].text == "wsa:Action"


def test_action_in_submission_namespace_is_not_an_action() -> None:
    old = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
    headers = f'<old:Action xmlns:old="{old}">{ITI18}</old:Action>'
    fault = fault_of(envelope(headers))
    assert fault.subcode == WsaFault.MESSAGE_ADDRESSING_HEADER_REQUIRED


def test_action_in_submission_namespace_with_must_understand_is_not_understood() -> None:
    old = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
    headers = f'<old:Action xmlns:old="{old}" soap:mustUnderstand="1">{ITI18}</old:Action>'
    fault = fault_of(envelope(headers))
    assert fault.code is FaultCode.MUST_UNDERSTAND
    assert fault.not_understood == (f"{{{old}}}Action",)


def test_repeated_action_is_invalid_cardinality() -> None:
    fault = fault_of(envelope(action() + action()))
    assert fault.code is FaultCode.SENDER
    assert fault.subcodes == (WsaFault.INVALID_ADDRESSING_HEADER, WsaFault.INVALID_CARDINALITY)


def test_empty_action_is_invalid_addressing_header() -> None:
    fault = fault_of(envelope(action("   ")))
    assert fault.subcode == WsaFault.INVALID_ADDRESSING_HEADER


def test_action_may_be_optional_for_replies() -> None:
    assert parse_envelope_bytes(envelope(MESSAGE_ID), require_action=False).action is None


# -- parsing: mustUnderstand ----------------------------------------------------------------------
@pytest.mark.parametrize("flag", ["true", "1", " true "])
def test_unknown_must_understand_header_is_must_understand_fault(flag: str) -> None:
    headers = action() + MESSAGE_ID + f'<x:Custom xmlns:x="urn:custom" soap:mustUnderstand="{flag}"/>'
    fault = fault_of(envelope(headers))
    assert fault.code is FaultCode.MUST_UNDERSTAND
    assert fault.status == 400
    assert fault.not_understood == ("{urn:custom}Custom",)
    assert fault.relates_to == "urn:uuid:11111111-2222-3333-4444-555555555555"
    # SOAP 1.2 Part 1 §5.4.8: one env:NotUnderstood header block naming the QName.
    reply = parse_xml(fault.to_envelope())
    blocks = reply.findall(f"{{{S}}}Header/{{{S}}}NotUnderstood")
    assert len(blocks) == 1
    prefix, _, local = blocks[0].get("qname").partition(":")
    assert (blocks[0].nsmap[prefix], local) == ("urn:custom", "Custom")


@pytest.mark.parametrize(
    "block",
    [
        '<x:Custom xmlns:x="urn:custom" soap:mustUnderstand="false"/>',
        '<x:Custom xmlns:x="urn:custom" soap:mustUnderstand="0"/>',
        '<x:Custom xmlns:x="urn:custom"/>',
        f'<x:Custom xmlns:x="urn:custom" soap:mustUnderstand="true" soap:role="{S}/role/none"/>',
        '<x:Custom xmlns:x="urn:custom" soap:mustUnderstand="true" soap:role="http://other/role"/>',
        f'<wsse:Security xmlns:wsse="{NS_WSSE}" soap:mustUnderstand="true"/>',
    ],
    ids=["false", "zero", "absent", "role-none", "other-role", "wsse-security"],
)
def test_headers_that_need_not_be_understood(block: str) -> None:
    assert parse_envelope_bytes(envelope(action() + block)).action == ITI18


@pytest.mark.parametrize("role", [f"{S}/role/next", f"{S}/role/ultimateReceiver"])
def test_headers_targeted_at_us_must_be_understood(role: str) -> None:
    block = f'<x:Custom xmlns:x="urn:custom" soap:mustUnderstand="true" soap:role="{role}"/>'
    assert fault_of(envelope(action() + block)).code is FaultCode.MUST_UNDERSTAND


def test_understood_set_is_extensible() -> None:
    block = '<x:Custom xmlns:x="urn:custom" soap:mustUnderstand="true"/>'
    env = parse_envelope_bytes(
        envelope(action() + block), understood=UNDERSTOOD_HEADERS | {"{urn:custom}Custom"}
    )
    assert env.header_blocks("{urn:custom}Custom")


def test_invalid_must_understand_value_is_sender_fault() -> None:
    block = '<x:Custom xmlns:x="urn:custom" soap:mustUnderstand="yes"/>'
    assert fault_of(envelope(action() + block)).code is FaultCode.SENDER


def test_must_understand_check_can_be_skipped_for_replies() -> None:
    block = '<x:Custom xmlns:x="urn:custom" soap:mustUnderstand="true"/>'
    assert parse_envelope_bytes(envelope(action() + block), check_must_understand=False).action == ITI18


# -- builders -------------------------------------------------------------------------------------
def test_request_envelope_has_the_ihe_headers() -> None:
    data = build_request(body_element(), action=ITI18, to="http://registry/xds")
    env = parse_envelope_bytes(data)
    assert env.action == ITI18
    assert env.message_id is not None and env.message_id.startswith("urn:uuid:")
    assert env.addressing.reply_to == WSA_ANONYMOUS
    assert env.addressing.to == "http://registry/xds"
    action_el = env.header_blocks(f"{{{WSA}}}Action")[0]
    assert action_el.get(f"{{{S}}}mustUnderstand") == "true"
    assert env.body is not None and env.body[0].get("id") == "x"
    assert data.startswith(b"<?xml")


def test_request_message_ids_are_fresh_unless_given() -> None:
    first = parse_envelope_bytes(build_request(body_element(), action=ITI18)).message_id
    second = parse_envelope_bytes(build_request(body_element(), action=ITI18)).message_id
    assert first != second
    given = parse_envelope_bytes(build_request(body_element(), action=ITI18, message_id="urn:uuid:fixed"))
    assert given.message_id == "urn:uuid:fixed"


def test_response_envelope_relates_to_the_request() -> None:
    data = build_response(body_element(), action=Action.ITI18_RESPONSE, relates_to="urn:uuid:req")
    env = parse_envelope_bytes(data)
    assert env.action == Action.ITI18_RESPONSE
    assert env.relates_to == "urn:uuid:req"
    assert env.message_id and env.message_id != "urn:uuid:req"
    assert env.header_blocks(f"{{{WSA}}}Action")[0].get(f"{{{S}}}mustUnderstand") == "true"


def test_response_without_request_message_id_has_no_relates_to() -> None:
    env = parse_envelope_bytes(build_response(body_element(), action="urn:a", relates_to=None))
    assert env.relates_to is None and env.header_blocks(f"{{{WSA}}}RelatesTo") == ()


def test_body_with_a_parent_is_copied_and_root_body_is_moved() -> None:
    holder = etree.Element("holder")
    child = etree.SubElement(holder, "{urn:x}B")
    env = request_envelope(child, action="urn:a")
    assert child.getparent() is holder
    assert env.find(f"{{{S}}}Body/{{urn:x}}B") is not None
    root_body = etree.Element("{urn:x}C")
    env2 = request_envelope(root_body, action="urn:a")
    assert root_body.getparent() is env2.find(f"{{{S}}}Body")


def test_extra_headers_are_included_in_order() -> None:
    security = etree.Element(f"{{{NS_WSSE}}}Security", nsmap={"wsse": NS_WSSE})
    custom = etree.Element("{urn:custom}Trace")
    env = parse_envelope_bytes(build_request(body_element(), action=ITI18, extra_headers=[security, custom]))
    assert [h.tag for h in env.headers][-2:] == [security.tag, custom.tag]


# -- faults ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "status"),
    [
        (FaultCode.SENDER, 400),
        (FaultCode.VERSION_MISMATCH, 400),
        (FaultCode.MUST_UNDERSTAND, 400),
        (FaultCode.RECEIVER, 500),
        (FaultCode.DATA_ENCODING_UNKNOWN, 500),
    ],
)
def test_fault_http_status(code: FaultCode, status: int) -> None:
    assert SoapFault(code, "x").status == status
    assert SoapFault(code, "x", http_status=413).status == 413


def test_fault_envelope_round_trip() -> None:
    detail = etree.Element("{urn:d}Info")
    detail.text = "more"
    fault = SoapFault(
        FaultCode.SENDER,
        "no such action",
        subcode=(WsaFault.INVALID_ADDRESSING_HEADER, WsaFault.INVALID_CARDINALITY),
        detail=[detail],
        node="http://node",
    )
    data = fault.to_envelope(relates_to="urn:uuid:req")
    env = parse_envelope_bytes(data)
    assert env.action == WSA_FAULT_ACTION
    assert env.relates_to == "urn:uuid:req"
    assert env.is_fault
    back = env.fault(http_status=400)
    assert back is not None
    assert back.code is FaultCode.SENDER
    assert back.subcodes == fault.subcodes
    assert back.reason == "no such action"
    assert back.status == 400
    assert back.relates_to == "urn:uuid:req"
    assert back.node == "http://node"
    assert back.detail[0].tag == "{urn:d}Info" and back.detail[0].text == "more"


def test_fault_subcode_in_foreign_namespace_round_trips() -> None:
    fault = SoapFault(FaultCode.RECEIVER, "busy", subcode="{urn:ihe:custom}Busy")
    back = parse_envelope_bytes(fault.to_envelope()).fault()
    assert back is not None and back.subcode == "{urn:ihe:custom}Busy" and back.status == 500


def test_parse_fault_resolves_prefixes_whatever_they_are() -> None:
    xml = f"""<e:Fault xmlns:e="{S}" xmlns:a="{WSA}">
      <e:Code><e:Value>e:Sender</e:Value><e:Subcode><e:Value>a:ActionNotSupported</e:Value></e:Subcode></e:Code>
      <e:Reason><e:Text xml:lang="de">Nein</e:Text><e:Text xml:lang="en-US">No</e:Text></e:Reason>
    </e:Fault>"""
    fault = parse_fault(parse_xml(xml.encode()))
    assert fault.code is FaultCode.SENDER
    assert fault.subcode == WsaFault.ACTION_NOT_SUPPORTED
    assert fault.reason == "No"


def test_parse_soap11_fault() -> None:
    xml = f"""<s:Fault xmlns:s="{NS_SOAP11}"><faultcode>s:Client</faultcode>
      <faultstring>bad request</faultstring></s:Fault>"""
    fault = parse_fault(parse_xml(xml.encode()), http_status=500)
    assert fault.code is FaultCode.SENDER and fault.reason == "bad request" and fault.status == 500


def test_parse_fault_refuses_other_elements() -> None:
    with pytest.raises(ValueError):
        parse_fault(etree.Element("{urn:x}NotAFault"))


def test_fault_str_names_code_and_subcode() -> None:
    text = str(SoapFault(FaultCode.SENDER, "why", subcode=WsaFault.ACTION_NOT_SUPPORTED))
    assert "Sender" in text and "ActionNotSupported" in text and "why" in text


# -- HTTP binding: Content-Type ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "packaging"),
    [
        ("application/soap+xml", Packaging.SIMPLE),
        (
            'Application/SOAP+XML; charset=UTF-8; action="urn:ihe:iti:2007:RegistryStoredQuery"',
            Packaging.SIMPLE,
        ),
        (
            'multipart/related; boundary=MIMEBoundary_x; type="application/xop+xml"; start="<r@x>"; '
            'start-info="application/soap+xml"',
            Packaging.MTOM,
        ),
        ("multipart/related; boundary=b", Packaging.MTOM),
    ],
)
def test_request_packaging_accepts_soap12_and_mtom(value: str, packaging: Packaging) -> None:
    assert request_packaging(value)[0] is packaging


@pytest.mark.parametrize(
    "value",
    [
        "text/xml; charset=utf-8",
        'multipart/related; boundary=b; type="text/xml"',
        'multipart/related; boundary=b; type="application/xop+xml"; start-info="text/xml"',
    ],
)
def test_soap11_content_types_are_version_mismatch(value: str) -> None:
    with pytest.raises(SoapFault) as info:
        request_packaging(value)
    assert info.value.code is FaultCode.VERSION_MISMATCH


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "application/json",
        "multipart/form-data; boundary=x",
        'multipart/related; type="image/png"',
        "nonsense",
    ],
)
def test_other_content_types_are_415(value: str | None) -> None:
    with pytest.raises(SoapFault) as info:
        request_packaging(value)
    assert info.value.code is FaultCode.SENDER and info.value.status == 415


def test_soap_content_type_carries_the_action() -> None:
    assert soap_content_type("urn:a") == 'application/soap+xml; charset=UTF-8; action="urn:a"'
    assert soap_content_type() == "application/soap+xml; charset=UTF-8"


def test_parse_envelope_takes_a_parsed_tree() -> None:
    root = parse_xml(envelope(action()))
    assert parse_envelope(root).root is root
