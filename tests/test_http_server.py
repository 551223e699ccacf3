"""The SOAP server over a real loopback socket: dispatch, packaging, every bad input, cleanup, TLS."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from lxml import etree

from xds.http.server import ServerThread, SoapRequest, SoapResponse, SoapService, soap_app
from xds.soap.attachments import Attachment, Spool
from xds.soap.envelope import build_request, parse_envelope_bytes
from xds.soap.fault import FaultCode, SoapFault
from xds.soap.mtom import MtomReceiver, xop_include
from xds.soap.mtom_decode import parse_content_type
from xds.soap.mtom_encode import OutgoingPart, encode_mtom
from xds.vocabulary import (
    NS_QUERY,
    NS_RIM,
    NS_RS,
    NS_SOAP11,
    NS_SOAP12,
    NS_WSA,
    NS_XDS,
    WSA_FAULT_ACTION,
    Action,
    ResponseStatus,
    WsaFault,
)
from xds.wsdl import DOCUMENT_REGISTRY, WsdlProvider
from xds.xml import parse_xml

SCHEMAS = Path(__file__).resolve().parents[1].parent / "shared" / "schemas"
MAX_BODY = 4 << 20
MAX_ENVELOPE = 256 << 10
T = "urn:test:transport"


# -- the services under test ----------------------------------------------------------------------
async def stored_query(request: SoapRequest) -> SoapResponse:
    response = etree.Element(f"{{{NS_QUERY}}}AdhocQueryResponse", nsmap={"query": NS_QUERY, "rim": NS_RIM})
    response.set("status", ResponseStatus.SUCCESS)
    etree.SubElement(response, f"{{{NS_RIM}}}RegistryObjectList")
    # Echo what the transport told the handler, so tests can check it.
    response.set(f"{{{T}}}mtom", str(request.is_mtom))
    response.set(f"{{{T}}}client", request.client[0] if request.client else "")
    response.set(f"{{{T}}}endpoint", request.endpoint_url)
    response.set(f"{{{T}}}cert", "yes" if request.tls_client_cert else "no")
    return SoapResponse(action=Action.ITI18_RESPONSE, body=response)


async def failing_register(request: SoapRequest) -> SoapResponse:
    raise RuntimeError("database on fire")


def _registry_response(entries: list[etree._Element]) -> etree._Element:
    response = etree.Element(f"{{{NS_RS}}}RegistryResponse", nsmap={"rs": NS_RS, "t": T})
    response.set("status", ResponseStatus.SUCCESS)
    response.extend(entries)
    return response


async def provide(request: SoapRequest) -> SoapResponse:
    """ITI-41-like: reports each document's size and hashes; keeps documents with id 'keep'."""
    entries = []
    for document in request.body.iter(f"{{{NS_XDS}}}Document"):
        attachment = request.binary(document)
        entry = etree.Element(f"{{{T}}}Doc", id=document.get("id", ""))
        entry.set("size", str(attachment.size))
        entry.set("sha1", attachment.sha1_hex)
        entry.set("sha256", attachment.sha256_hex)
        if document.get("id") == "keep":
            entry.set("path", str(attachment.detach()))
        entries.append(entry)
    return SoapResponse(action=Action.ITI41_RESPONSE, body=_registry_response(entries))


async def retrieve_echo(request: SoapRequest) -> SoapResponse:
    """ITI-43-like: sends every received attachment back (always MTOM)."""
    response = etree.Element(f"{{{NS_XDS}}}RetrieveDocumentSetResponse", nsmap={"xds": NS_XDS})
    parts: list[Attachment | OutgoingPart] = []
    for cid, attachment in sorted(request.attachments.items()):
        document = etree.SubElement(
            etree.SubElement(response, f"{{{NS_XDS}}}DocumentResponse"), f"{{{NS_XDS}}}Document"
        )
        document.append(xop_include(cid))
        parts.append(attachment)
    parts.append(OutgoingPart("generated@server", "text/plain", b"from the server\r\n"))
    return SoapResponse(action=Action.ITI43_RESPONSE, body=response, attachments=parts, mtom=True)


async def resolve_all(request: SoapRequest) -> SoapResponse:
    request.resolve_xop()  # raises a Sender fault for an unknown cid
    return SoapResponse(action="urn:test:resolvedResponse", body=_registry_response([]))


async def not_a_response(request: SoapRequest) -> SoapResponse:
    return "oops"  # type: ignore[return-value]


async def missing_file(request: SoapRequest) -> SoapResponse:
    part = OutgoingPart("gone@server", "application/dicom", Path("/nonexistent/study.dcm"))
    return SoapResponse(action="urn:test:missingResponse", body=_registry_response([]), attachments=[part])


@dataclass
class Server:
    url: str
    port: int
    spool: Path

    @property
    def registry(self) -> str:
        return self.url + "/registry"

    @property
    def repository(self) -> str:
        return self.url + "/repository"


def make_app(spool: Path):  # type: ignore[no-untyped-def]
    return soap_app(
        services=[
            SoapService(
                path="/registry",
                handlers={Action.ITI18: stored_query, Action.ITI42: failing_register},
                wsdl=WsdlProvider(DOCUMENT_REGISTRY, schema_dir=SCHEMAS),
                name="Document Registry",
            ),
            SoapService(
                path="/repository",
                handlers={
                    Action.ITI41: provide,
                    Action.ITI43: retrieve_echo,
                    "urn:test:resolve": resolve_all,
                    "urn:test:broken": not_a_response,
                    "urn:test:missing": missing_file,
                },
            ),
        ],
        spool_dir=spool,
        max_body_bytes=MAX_BODY,
        max_envelope_bytes=MAX_ENVELOPE,
        memory_threshold=1024,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    spool = tmp_path_factory.mktemp("spool")
    with ServerThread(make_app(spool)) as running:
        yield Server(running.url, running.port, spool)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


# -- request builders ---------------------------------------------------------------------------------
def query_body() -> etree._Element:
    body = etree.Element(f"{{{NS_QUERY}}}AdhocQueryRequest", nsmap={"query": NS_QUERY, "rim": NS_RIM})
    etree.SubElement(body, f"{{{NS_RIM}}}AdhocQuery", id="urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d")
    return body


def envelope_text(headers: str, *, ns: str = NS_SOAP12, body: str | None = None) -> bytes:
    payload = body if body is not None else f'<query:AdhocQueryRequest xmlns:query="{NS_QUERY}"/>'
    return (
        f'<soap:Envelope xmlns:soap="{ns}" xmlns:wsa="{NS_WSA}"><soap:Header>{headers}</soap:Header>'
        f"<soap:Body>{payload}</soap:Body></soap:Envelope>"
    ).encode()


ACTION_18 = f'<wsa:Action soap:mustUnderstand="true">{Action.ITI18}</wsa:Action>'
MESSAGE_ID = "<wsa:MessageID>urn:uuid:00000000-0000-0000-0000-000000000042</wsa:MessageID>"
SOAP12 = "application/soap+xml; charset=UTF-8"


def fault_from(response: httpx.Response) -> SoapFault:
    assert response.headers["content-type"].startswith("application/soap+xml")
    assert parse_content_type(response.headers["content-type"]).param("action") == WSA_FAULT_ACTION
    envelope = parse_envelope_bytes(response.content, require_action=False)
    assert envelope.action == WSA_FAULT_ACTION
    fault = envelope.fault(http_status=response.status_code)
    assert fault is not None, response.text
    return fault


def good_query_works(http: httpx.Client, server: Server) -> None:
    message_id = "urn:uuid:99999999-0000-0000-0000-000000000001"
    data = build_request(query_body(), action=Action.ITI18, message_id=message_id)
    response = http.post(server.registry, content=data, headers={"content-type": SOAP12})
    assert response.status_code == 200, response.text
    envelope = parse_envelope_bytes(response.content)
    assert envelope.action == Action.ITI18_RESPONSE and envelope.relates_to == message_id


def spool_files(server: Server) -> list[Path]:
    return sorted(server.spool.iterdir())


# -- simple SOAP ----------------------------------------------------------------------------------------
def test_simple_soap_request_gets_simple_soap_response(http: httpx.Client, server: Server) -> None:
    message_id = "urn:uuid:12345678-0000-0000-0000-000000000000"
    data = build_request(query_body(), action=Action.ITI18, to=server.registry, message_id=message_id)
    response = http.post(server.registry, content=data, headers={"content-type": SOAP12})
    assert response.status_code == 200
    ctype = parse_content_type(response.headers["content-type"])
    assert ctype.media_type == "application/soap+xml"
    assert ctype.param("action") == Action.ITI18_RESPONSE
    envelope = parse_envelope_bytes(response.content)
    assert envelope.action == Action.ITI18_RESPONSE
    assert envelope.relates_to == message_id
    assert envelope.message_id and envelope.message_id != message_id
    assert envelope.body is not None and envelope.body.get("status") == ResponseStatus.SUCCESS
    assert envelope.body.get(f"{{{T}}}mtom") == "False"
    assert envelope.body.get(f"{{{T}}}client") == "127.0.0.1"
    assert envelope.body.get(f"{{{T}}}endpoint") == server.registry
    assert envelope.body.get(f"{{{T}}}cert") == "no"


def test_soapaction_header_is_ignored(http: httpx.Client, server: Server) -> None:
    data = build_request(query_body(), action=Action.ITI18)
    response = http.post(
        server.registry,
        content=data,
        headers={"content-type": f'{SOAP12}; action="urn:wrong"', "SOAPAction": '"urn:also-wrong"'},
    )
    assert response.status_code == 200
    assert parse_envelope_bytes(response.content).action == Action.ITI18_RESPONSE


def test_request_without_message_id_is_answered_without_relates_to(
    http: httpx.Client, server: Server
) -> None:
    response = http.post(server.registry, content=envelope_text(ACTION_18), headers={"content-type": SOAP12})
    assert response.status_code == 200
    assert parse_envelope_bytes(response.content).relates_to is None


def test_chunked_request_body_is_accepted(http: httpx.Client, server: Server) -> None:
    data = build_request(query_body(), action=Action.ITI18)
    response = http.post(
        server.registry, content=iter([data[:100], data[100:]]), headers={"content-type": SOAP12}
    )
    assert response.status_code == 200 and "content-length" not in response.request.headers


# -- MTOM ------------------------------------------------------------------------------------------------
def provide_request(*documents: tuple[str, str]) -> bytes:
    """A ProvideAndRegister-like body: (document id, cid) pairs as xop:Includes."""
    body = etree.Element(f"{{{NS_XDS}}}ProvideAndRegisterDocumentSetRequest", nsmap={"xds": NS_XDS})
    for doc_id, cid in documents:
        document = etree.SubElement(body, f"{{{NS_XDS}}}Document", id=doc_id)
        document.append(xop_include(cid))
    return build_request(
        body, action=Action.ITI41, message_id="urn:uuid:00000000-0000-0000-0000-000000000041"
    )


def test_mtom_request_is_streamed_hashed_and_answered_in_mtom(http: httpx.Client, server: Server) -> None:
    big = os.urandom(3 << 20) + b"\r\n"
    small = b"\r\nsmall\r\n"
    payload = encode_mtom(
        provide_request(("Document01", "big@client"), ("Document02", "small one@client")),
        [("big@client", "application/dicom", big), ("small one@client", "text/plain", small)],
        action=Action.ITI41,
    )
    response = http.post(
        server.repository,
        content=iter(payload),
        headers={"content-type": payload.content_type, "content-length": str(payload.length)},
    )
    assert response.status_code == 200, response.text
    # Answered in the packaging of the request.
    assert parse_content_type(response.headers["content-type"]).media_type == "multipart/related"
    with Spool(server.spool.parent / "client-spool") as spool:
        receiver = MtomReceiver(response.headers["content-type"], sink_factory=spool.sink)
        receiver.feed(response.content)
        message = receiver.close()
        assert message.attachments == {}
        envelope = parse_envelope_bytes(message.root)
    assert envelope.relates_to == "urn:uuid:00000000-0000-0000-0000-000000000041"
    docs = {d.get("id"): d for d in envelope.body.iter(f"{{{T}}}Doc")}  # type: ignore[union-attr]
    assert docs["Document01"].get("size") == str(len(big))
    assert docs["Document01"].get("sha1") == hashlib.sha1(big).hexdigest()
    assert docs["Document01"].get("sha256") == hashlib.sha256(big).hexdigest()
    assert docs["Document02"].get("sha1") == hashlib.sha1(small).hexdigest()
    assert spool_files(server) == []


def test_mtom_parts_in_any_order_with_tolerant_headers(http: httpx.Client, server: Server) -> None:
    root = provide_request(("Document01", "doc1@host"))
    body = (
        b"preamble\r\n"
        b"--XYZ\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"Content-ID: doc1@host\r\n\r\n"
        b"AAEC\r\nAw==\r\n"
        b"--XYZ\r\n"
        b'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"\r\n'
        b"Content-ID: <root@host>\r\n\r\n" + root + b"\r\n--XYZ--\r\n"
    )
    content_type = 'multipart/related; boundary="XYZ"; type="application/xop+xml"; start="<root@host>"'
    response = http.post(server.repository, content=body, headers={"content-type": content_type})
    assert response.status_code == 200, response.text


def test_mtom_response_streams_attachments_back(http: httpx.Client, server: Server) -> None:
    data = os.urandom(1 << 20) + b"\r\n--MIMEBoundary"
    body = etree.Element(f"{{{NS_XDS}}}RetrieveDocumentSetRequest")
    payload = encode_mtom(
        build_request(body, action=Action.ITI43), [("a@x", "application/dicom", data)], action=Action.ITI43
    )
    response = http.post(
        server.repository, content=b"".join(payload), headers={"content-type": payload.content_type}
    )
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    ctype = parse_content_type(response.headers["content-type"])
    assert ctype.param("type") == "application/xop+xml" and ctype.param("action") == Action.ITI43_RESPONSE
    with Spool(server.spool.parent / "client-spool-2") as spool:
        receiver = MtomReceiver(response.headers["content-type"], sink_factory=spool.sink)
        receiver.feed(response.content)
        message = receiver.close()
        assert message.attachments["a@x"].read_bytes() == data
        assert message.attachments["generated@server"].read_bytes() == b"from the server\r\n"
    assert spool_files(server) == []


def test_simple_request_answered_in_mtom_when_the_handler_forces_it(
    http: httpx.Client, server: Server
) -> None:
    body = etree.Element(f"{{{NS_XDS}}}RetrieveDocumentSetRequest")
    response = http.post(
        server.repository, content=build_request(body, action=Action.ITI43), headers={"content-type": SOAP12}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("multipart/related")


def test_detached_attachments_survive_the_request(http: httpx.Client, server: Server) -> None:
    payload = encode_mtom(
        provide_request(("keep", "k@x"), ("drop", "d@x")),
        [("k@x", "x/y", b"K" * 5000), ("d@x", "x/y", b"D" * 5000)],
    )
    response = http.post(
        server.repository, content=b"".join(payload), headers={"content-type": payload.content_type}
    )
    assert response.status_code == 200
    with Spool(server.spool.parent / "client-spool-3") as spool:
        receiver = MtomReceiver(response.headers["content-type"], sink_factory=spool.sink)
        receiver.feed(response.content)
        envelope = parse_envelope_bytes(receiver.close().root)
    kept = Path(next(envelope.body.iter(f"{{{T}}}Doc")).get("path"))  # type: ignore[union-attr]
    try:
        assert kept.read_bytes() == b"K" * 5000
        assert spool_files(server) == [kept]
    finally:
        kept.unlink()


def test_inline_base64_in_simple_soap_reaches_the_handler_as_an_attachment(
    http: httpx.Client, server: Server
) -> None:
    body = etree.Element(f"{{{NS_XDS}}}ProvideAndRegisterDocumentSetRequest")
    etree.SubElement(body, f"{{{NS_XDS}}}Document", id="inline").text = "SGVsbG8="
    response = http.post(
        server.repository, content=build_request(body, action=Action.ITI41), headers={"content-type": SOAP12}
    )
    assert response.status_code == 200
    doc = next(parse_envelope_bytes(response.content).body.iter(f"{{{T}}}Doc"))  # type: ignore[union-attr]
    assert doc.get("sha1") == hashlib.sha1(b"Hello").hexdigest()


# -- every bad input: fault code, subcode, status; and the server keeps serving ------------------------
MIME_CT = 'multipart/related; boundary=B; type="application/xop+xml"'
OVERSIZE = envelope_text(ACTION_18 + "<wsa:MessageID>" + "x" * (MAX_ENVELOPE + 10) + "</wsa:MessageID>")
BAD_INPUTS = {
    "not-xml": (SOAP12, b"this is not XML", 400, FaultCode.SENDER, None),
    "empty-body": (SOAP12, b"", 400, FaultCode.SENDER, None),
    "soap11-envelope": (
        SOAP12,
        envelope_text(ACTION_18, ns=NS_SOAP11),
        400,
        FaultCode.VERSION_MISMATCH,
        None,
    ),
    "text-xml": ("text/xml; charset=utf-8", envelope_text(ACTION_18), 400, FaultCode.VERSION_MISMATCH, None),
    "missing-action": (
        SOAP12,
        envelope_text(MESSAGE_ID),
        400,
        FaultCode.SENDER,
        WsaFault.MESSAGE_ADDRESSING_HEADER_REQUIRED,
    ),
    "unknown-action": (
        SOAP12,
        envelope_text(MESSAGE_ID + '<wsa:Action soap:mustUnderstand="true">urn:unknown</wsa:Action>'),
        400,
        FaultCode.SENDER,
        WsaFault.ACTION_NOT_SUPPORTED,
    ),
    "action-of-another-endpoint": (
        SOAP12,
        envelope_text(MESSAGE_ID + f"<wsa:Action>{Action.ITI43}</wsa:Action>"),
        400,
        FaultCode.SENDER,
        WsaFault.ACTION_NOT_SUPPORTED,
    ),
    "unknown-must-understand": (
        SOAP12,
        envelope_text(ACTION_18 + MESSAGE_ID + '<x:Policy xmlns:x="urn:x" soap:mustUnderstand="true"/>'),
        400,
        FaultCode.MUST_UNDERSTAND,
        None,
    ),
    "empty-soap-body": (SOAP12, envelope_text(ACTION_18, body=""), 400, FaultCode.SENDER, None),
    "oversize-envelope": (SOAP12, OVERSIZE, 413, FaultCode.SENDER, None),
    "oversize-body": (MIME_CT, b"--B\r\n\r\n" + b"x" * (MAX_BODY + 1), 413, FaultCode.SENDER, None),
    "dtd": (
        SOAP12,
        b"<!DOCTYPE e [<!ELEMENT e ANY>]>" + envelope_text(ACTION_18),
        400,
        FaultCode.SENDER,
        None,
    ),
    "external-entity": (
        SOAP12,
        b'<!DOCTYPE e [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        + envelope_text(
            ACTION_18,
            body=f'<query:AdhocQueryRequest xmlns:query="{NS_QUERY}">&xxe;</query:AdhocQueryRequest>',
        ),
        400,
        FaultCode.SENDER,
        None,
    ),
    "entity-bomb": (
        SOAP12,
        b'<!DOCTYPE e [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
        + envelope_text(ACTION_18, body="<x:B xmlns:x='urn:x'>&d;&d;&d;&d;&d;&d;&d;&d;</x:B>"),
        400,
        FaultCode.SENDER,
        None,
    ),
    "undefined-entity": (
        SOAP12,
        envelope_text(ACTION_18, body="<x:B xmlns:x='urn:x'>&nope;</x:B>"),
        400,
        FaultCode.SENDER,
        None,
    ),
    "mime-no-closing-boundary": (
        MIME_CT,
        b"--B\r\nContent-ID: <r>\r\n\r\n"
        + envelope_text(ACTION_18)
        + b"\r\n--B\r\nContent-ID: <a>\r\n\r\nbinary...",
        400,
        FaultCode.SENDER,
        None,
    ),
    "mime-no-boundary-parameter": (
        'multipart/related; type="application/xop+xml"',
        b"--B\r\n\r\nx\r\n--B--",
        400,
        FaultCode.SENDER,
        None,
    ),
    "mime-not-multipart-body": (MIME_CT, envelope_text(ACTION_18), 400, FaultCode.SENDER, None),
    "mime-header-too-long": (
        MIME_CT,
        b"--B\r\nX-Long: " + b"a" * 100_000 + b"\r\n\r\nx\r\n--B--",
        400,
        FaultCode.SENDER,
        None,
    ),
    "mime-bad-base64": (
        MIME_CT,
        b"--B\r\n\r\n" + envelope_text(ACTION_18) + b"\r\n--B\r\nContent-ID: <a>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!!\r\n--B--",
        400,
        FaultCode.SENDER,
        None,
    ),
    "json": ("application/json", b"{}", 415, FaultCode.SENDER, None),
    "no-content-type": (None, envelope_text(ACTION_18), 415, FaultCode.SENDER, None),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_input_gets_the_right_fault_and_the_server_keeps_serving(
    case: str, http: httpx.Client, server: Server
) -> None:
    content_type, body, status, code, subcode = BAD_INPUTS[case]
    headers = {"content-type": content_type} if content_type is not None else {}
    response = http.post(server.registry, content=body, headers=headers)
    assert response.status_code == status, response.text
    fault = fault_from(response)
    assert fault.code is code
    assert fault.subcode == subcode
    if code is FaultCode.MUST_UNDERSTAND:
        reply = parse_xml(response.content)
        assert reply.find(f"{{{NS_SOAP12}}}Header/{{{NS_SOAP12}}}NotUnderstood") is not None
    if MESSAGE_ID in body.decode("latin-1"):
        assert fault.relates_to == "urn:uuid:00000000-0000-0000-0000-000000000042"
    assert "root:" not in response.text  # no /etc/passwd content, ever
    good_query_works(http, server)
    assert spool_files(server) == []


def test_unknown_xop_reference_is_a_sender_fault(http: httpx.Client, server: Server) -> None:
    body = etree.Element(f"{{{NS_XDS}}}Doc")
    body.append(xop_include("missing@x"))
    payload = encode_mtom(build_request(body, action="urn:test:resolve"), [("other@x", "x/y", b"1")])
    response = http.post(
        server.repository, content=b"".join(payload), headers={"content-type": payload.content_type}
    )
    assert response.status_code == 400
    assert fault_from(response).code is FaultCode.SENDER
    good_query_works(http, server)


def test_handler_exception_is_a_receiver_fault_and_the_server_keeps_serving(
    http: httpx.Client, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    data = build_request(
        etree.Element("{urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0}SubmitObjectsRequest"),
        action=Action.ITI42,
    )
    response = http.post(server.registry, content=data, headers={"content-type": SOAP12})
    assert response.status_code == 500
    fault = fault_from(response)
    assert fault.code is FaultCode.RECEIVER
    assert "database on fire" not in fault.reason  # internals are logged, not sent
    assert fault.relates_to == parse_envelope_bytes(data).message_id
    good_query_works(http, server)


def test_response_that_cannot_be_built_is_a_receiver_fault(http: httpx.Client, server: Server) -> None:
    data = build_request(etree.Element("{urn:x}Any"), action="urn:test:missing")
    response = http.post(server.repository, content=data, headers={"content-type": SOAP12})
    assert response.status_code == 500 and fault_from(response).code is FaultCode.RECEIVER
    good_query_works(http, server)


def test_handler_returning_garbage_is_a_receiver_fault(http: httpx.Client, server: Server) -> None:
    data = build_request(etree.Element("{urn:x}Any"), action="urn:test:broken")
    response = http.post(server.repository, content=data, headers={"content-type": SOAP12})
    assert response.status_code == 500 and fault_from(response).code is FaultCode.RECEIVER


# -- raw sockets: what httpx would not send ------------------------------------------------------------
def raw_exchange(port: int, request: bytes, *, send_all: bool = True) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        if send_all:
            sock.sendall(request)
        else:
            sock.sendall(request.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return status, headers, rest


def test_an_oversize_body_sent_whole_gets_its_413_and_the_connection_stays_usable(server: Server) -> None:
    """A client that sends the whole body before reading (most do) must see the 413, not a reset
    of a connection closed under its feet: a modest excess is read and dropped first, and the
    next request on the same connection is answered."""
    excess = MAX_BODY + 3_000_000
    too_large = (
        b"POST /registry HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/soap+xml\r\n"
        + f"Content-Length: {excess}\r\n\r\n".encode()
        + b"x" * excess
    )
    query = envelope_text(ACTION_18)
    good = (
        b"POST /registry HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/soap+xml\r\n"
        + f"Content-Length: {len(query)}\r\n\r\n".encode()
        + query
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(too_large)
        reader = sock.makefile("rb")
        status_line = reader.readline()
        headers = {}
        while (line := reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = reader.read(int(headers["content-length"]))
        assert status_line.split()[1] == b"413"
        assert headers.get("connection") != "close"
        fault = parse_envelope_bytes(body, require_action=False).fault()
        assert fault is not None and fault.code is FaultCode.SENDER
        sock.sendall(good)
        assert reader.readline().split()[1] == b"200"


def test_declared_oversize_body_is_refused_before_it_is_sent(server: Server, http: httpx.Client) -> None:
    request = (
        b"POST /registry HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/soap+xml\r\n"
        + f"Content-Length: {MAX_BODY * 10}\r\n\r\n".encode()
    )
    status, headers, body = raw_exchange(server.port, request, send_all=False)
    assert status == 413
    assert headers.get("connection") == "close"
    fault = parse_envelope_bytes(body, require_action=False).fault()
    assert fault is not None and fault.code is FaultCode.SENDER
    good_query_works(http, server)


def test_raw_chunked_mtom_with_lf_only_lines(server: Server, http: httpx.Client) -> None:
    root = provide_request(("Document01", "doc1@host"))
    mime = b"--b\nContent-ID: <r>\n\n" + root + b"\n--b\nContent-ID: <doc1@host>\n\nPAYLOAD\n--b--\n"
    chunked = b"".join(
        b"%x\r\n%s\r\n" % (len(mime[i : i + 50]), mime[i : i + 50]) for i in range(0, len(mime), 50)
    )
    request = (
        b"POST /repository HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b'Content-Type: multipart/related; boundary=b; start="<r>"\r\nConnection: close\r\n\r\n'
        + chunked
        + b"0\r\n\r\n"
    )
    status, headers, body = raw_exchange(server.port, request)
    assert status == 200
    with Spool(server.spool.parent / "raw-spool") as spool:
        receiver = MtomReceiver(headers["content-type"], sink_factory=spool.sink)
        receiver.feed(body)
        envelope = parse_envelope_bytes(receiver.close().root)
    doc = next(envelope.body.iter(f"{{{T}}}Doc"))  # type: ignore[union-attr]
    assert doc.get("sha1") == hashlib.sha1(b"PAYLOAD").hexdigest()
    good_query_works(http, server)


def test_client_disconnecting_mid_upload_leaves_no_spool_files(server: Server, http: httpx.Client) -> None:
    head = (
        b"POST /repository HTTP/1.1\r\nHost: x\r\nContent-Type: " + MIME_CT.encode() + b"\r\n"
        b"Content-Length: 3000000\r\n\r\n"
    )
    part = b"--B\r\nContent-ID: <r>\r\n\r\n<x/>\r\n--B\r\nContent-ID: <a>\r\n\r\n" + b"x" * 200_000
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head + part)
    good_query_works(http, server)  # the server is alive
    # The aborted request's spool file is gone once the server has noticed the disconnect.
    for _ in range(200):
        if not spool_files(server):
            break
        good_query_works(http, server)
    assert spool_files(server) == []


# -- GET: WSDL, schemas, description -----------------------------------------------------------------
def test_get_wsdl_uses_the_url_the_client_used(http: httpx.Client, server: Server) -> None:
    response = http.get(server.registry + "?wsdl")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/xml")
    wsdl = parse_xml(response.content)
    address = wsdl.find(".//{http://schemas.xmlsoap.org/wsdl/soap12/}address")
    assert address is not None and address.get("location") == server.registry
    other = http.get(f"http://localhost:{server.port}/registry?WSDL")
    assert f"http://localhost:{server.port}/registry" in other.text


def test_get_schema_and_path_traversal(http: httpx.Client, server: Server) -> None:
    ok = http.get(server.registry + "?xsd=schema/ebRS/query.xsd")
    assert ok.status_code == 200 and b"AdhocQueryRequest" in ok.content
    for name in (
        "../README.md",
        "schema/../../shared/DESIGN.md",
        "/etc/passwd",
        "schema/ebRS/../../../x.xsd",
        "README.md",
        "nope.xsd",
    ):
        response = http.get(server.registry, params={"xsd": name})
        assert response.status_code == 404, name


def test_wsdl_on_a_service_without_one_is_404(http: httpx.Client, server: Server) -> None:
    assert http.get(server.repository + "?wsdl").status_code == 404


def test_plain_get_describes_the_endpoint(http: httpx.Client, server: Server) -> None:
    response = http.get(server.registry)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert Action.ITI18 in response.text and "Document Registry" in response.text and "?wsdl" in response.text


def test_other_methods_and_paths(http: httpx.Client, server: Server) -> None:
    assert http.put(server.registry, content=b"x").status_code == 405
    assert http.post(server.url + "/nowhere", content=b"x").status_code == 404


# -- TLS with a client certificate -------------------------------------------------------------------
def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=Test CA", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=d)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "2", "-extfile", "san.ext", cwd=d)  # fmt: skip
    return d


def test_tls_client_certificate_reaches_the_handler(pki: Path, tmp_path: Path) -> None:
    import ssl

    app = make_app(tmp_path / "spool")
    with ServerThread(
        app,
        ssl_certfile=pki / "server.pem",
        ssl_keyfile=pki / "server.key",
        ssl_ca_certs=pki / "ca.pem",
    ) as running:
        assert running.url.startswith("https://")
        context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        context.load_cert_chain(pki / "client.pem", pki / "client.key")
        data = build_request(query_body(), action=Action.ITI18)
        with httpx.Client(verify=context) as client:
            response = client.post(running.url + "/registry", content=data, headers={"content-type": SOAP12})
        assert response.status_code == 200
        assert parse_envelope_bytes(response.content).body.get(f"{{{T}}}cert") == "yes"  # type: ignore[union-attr]
        anonymous = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        with httpx.Client(verify=anonymous) as client:
            response = client.post(running.url + "/registry", content=data, headers={"content-type": SOAP12})
        assert parse_envelope_bytes(response.content).body.get(f"{{{T}}}cert") == "no"  # type: ignore[union-attr]


def test_a_refused_request_is_read_before_the_answer_so_the_client_gets_it(server: Server) -> None:
    """A request refused before its body is read (here SOAP 1.1's text/xml) still reaches its
    fault when the body comes in a later packet: the server reads the rest of a body of
    reasonable size before it answers and closes, since bytes arriving at a closed socket make
    the kernel reset the connection and the client then loses the answer (RFC 9112 §9.6)."""
    data = envelope_text(ACTION_18)
    head = (
        f"POST /registry HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Content-Type: text/xml; charset=utf-8\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    ).encode()
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(head)
            time.sleep(0.3)  # the server has the headers; the body follows in a later packet
            sock.sendall(data)
            time.sleep(0.3)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        status, _, rest = received.partition(b"\r\n")
        assert status.startswith(b"HTTP/1.1 400"), received[:200]
        assert b"VersionMismatch" in rest


def test_a_refused_small_request_keeps_its_connection(server: Server, http: httpx.Client) -> None:
    """The refused request's body was read, so the connection stays open for the next request
    (no ``Connection: close``), and the next request on it is served."""
    refused = http.post(server.registry, content=envelope_text(ACTION_18), headers={"content-type": "text/xml"})
    assert refused.status_code == 400 and refused.headers.get("connection", "").lower() != "close"
    good_query_works(http, server)
