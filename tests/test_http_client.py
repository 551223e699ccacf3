"""The httpx SOAP clients against a real loopback server, plus crafted replies via MockTransport."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from lxml import etree

from xds.http.client import AsyncSoapClient, SoapClient, SoapConnectionError, SoapProtocolError
from xds.http.server import ServerThread, SoapRequest, SoapResponse, SoapService, soap_app
from xds.soap.attachments import Attachment
from xds.soap.envelope import build_response, parse_envelope_bytes, soap_content_type
from xds.soap.fault import FaultCode, SoapFault
from xds.soap.mtom import xop_include
from xds.soap.mtom_encode import OutgoingPart, encode_mtom
from xds.vocabulary import NS_QUERY, NS_RS, NS_XDS, WSA_FAULT_ACTION, Action, ResponseStatus, WsaFault

T = "urn:test:client"


async def stored_query(request: SoapRequest) -> SoapResponse:
    response = etree.Element(f"{{{NS_QUERY}}}AdhocQueryResponse", status=ResponseStatus.SUCCESS)
    response.set(f"{{{T}}}to", request.envelope.addressing.to or "")
    response.set(f"{{{T}}}reply-to", request.envelope.addressing.reply_to or "")
    response.set(f"{{{T}}}mtom", str(request.is_mtom))
    response.set(f"{{{T}}}headers", " ".join(h.tag for h in request.headers))
    return SoapResponse(action=Action.ITI18_RESPONSE, body=response)


async def provide(request: SoapRequest) -> SoapResponse:
    response = etree.Element(f"{{{NS_RS}}}RegistryResponse", status=ResponseStatus.SUCCESS)
    for element, attachment in request.resolve_xop().items():
        etree.SubElement(
            response,
            f"{{{T}}}Doc",
            id=element.get("id", ""),
            sha1=attachment.sha1_hex,
            size=str(attachment.size),
        )
    return SoapResponse(action=Action.ITI41_RESPONSE, body=response)


async def retrieve(request: SoapRequest) -> SoapResponse:
    """Answers with the number of bytes asked for (the Document text), as an MTOM part."""
    size = int(request.body.findtext(f"{{{T}}}Size") or "0")
    data = bytes(range(256)) * (size // 256) + b"\r\n"[: size % 256]
    response = etree.Element(f"{{{NS_XDS}}}RetrieveDocumentSetResponse")
    document = etree.SubElement(
        etree.SubElement(response, f"{{{NS_XDS}}}DocumentResponse"), f"{{{NS_XDS}}}Document"
    )
    document.append(xop_include("doc@server"))
    return SoapResponse(
        action=Action.ITI43_RESPONSE,
        body=response,
        attachments=[OutgoingPart("doc@server", "application/dicom", data)],
        mtom=True,
    )


async def reject(request: SoapRequest) -> SoapResponse:
    raise SoapFault(FaultCode.SENDER, "go away", subcode="{urn:test}Custom")


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = soap_app(
        services=[
            SoapService(
                path="/xds",
                handlers={
                    Action.ITI18: stored_query,
                    Action.ITI41: provide,
                    Action.ITI43: retrieve,
                    "urn:test:reject": reject,
                },
            )
        ],
        spool_dir=tmp_path_factory.mktemp("server-spool"),
    )
    with ServerThread(app) as running:
        yield running.url + "/xds"


def query() -> etree._Element:
    return etree.Element(f"{{{NS_QUERY}}}AdhocQueryRequest")


def retrieve_request(size: int) -> etree._Element:
    body = etree.Element(f"{{{NS_XDS}}}RetrieveDocumentSetRequest")
    etree.SubElement(body, f"{{{T}}}Size").text = str(size)
    return body


def expected_document(size: int) -> bytes:
    return bytes(range(256)) * (size // 256) + b"\r\n"[: size % 256]


# -- sync client against the real server ---------------------------------------------------------------
def test_simple_call(server_url: str, tmp_path: Path) -> None:
    with SoapClient(server_url, timeout=10, spool_dir=tmp_path) as client:
        reply = client.call(Action.ITI18, query())
    assert reply.action == Action.ITI18_RESPONSE
    assert reply.http_status == 200 and not reply.is_mtom
    assert reply.body.get("status") == ResponseStatus.SUCCESS
    assert reply.body.get(f"{{{T}}}to") == server_url
    assert reply.body.get(f"{{{T}}}reply-to") == "http://www.w3.org/2005/08/addressing/anonymous"
    assert reply.body.get(f"{{{T}}}mtom") == "False"


def test_extra_headers_and_message_id(server_url: str) -> None:
    security = etree.Element(
        "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd}Security"
    )
    with SoapClient(server_url, timeout=10) as client:
        reply = client.call(Action.ITI18, query(), extra_headers=[security], message_id="urn:uuid:given")
    assert reply.envelope.relates_to == "urn:uuid:given"
    assert security.tag in reply.body.get(f"{{{T}}}headers", "")


def test_mtom_request_streams_files_and_bytes(server_url: str, tmp_path: Path) -> None:
    big = tmp_path / "big.dcm"
    big_data = os.urandom(2 << 20) + b"\r\n"
    big.write_bytes(big_data)
    body = etree.Element(f"{{{NS_XDS}}}ProvideAndRegisterDocumentSetRequest")
    for doc_id, cid in (("Document01", "big@client"), ("Document02", "small@client")):
        etree.SubElement(body, f"{{{NS_XDS}}}Document", id=doc_id).append(xop_include(cid))
    attachments = [
        OutgoingPart("big@client", "application/dicom", big),
        Attachment.from_bytes(b"\r\nsmall", content_id="small@client", content_type="text/plain"),
    ]
    with SoapClient(server_url, timeout=30) as client:
        reply = client.call(Action.ITI41, body, attachments=attachments)
    # Simple request packaging is not forced on the answer: the request was MTOM, so is the reply.
    assert reply.is_mtom
    docs = {d.get("id"): d for d in reply.body}
    assert docs["Document01"].get("sha1") == hashlib.sha1(big_data).hexdigest()
    assert docs["Document01"].get("size") == str(len(big_data))
    assert docs["Document02"].get("sha1") == hashlib.sha1(b"\r\nsmall").hexdigest()


def test_mtom_reply_attachments_are_spooled_and_cleaned_up(server_url: str, tmp_path: Path) -> None:
    size = (3 << 20) + 1
    with SoapClient(server_url, timeout=30, spool_dir=tmp_path / "spool") as client:
        reply = client.call(Action.ITI43, retrieve_request(size), mtom=True)
    with reply:
        assert reply.is_mtom
        ((element, attachment),) = reply.resolve_xop().items()
        assert element.tag == f"{{{NS_XDS}}}Document"
        assert attachment.path is not None and attachment.path.parent == tmp_path / "spool"
        assert attachment.size == size
        assert attachment.sha1_hex == hashlib.sha1(expected_document(size)).hexdigest()
        assert reply.binary(element) is attachment
        kept = attachment.path
    assert not kept.exists()


def test_moved_reply_attachment_is_kept(server_url: str, tmp_path: Path) -> None:
    with SoapClient(server_url, timeout=30, spool_dir=tmp_path / "spool") as client:
        with client.call(Action.ITI43, retrieve_request(100_000)) as reply:
            (attachment,) = reply.attachments.values()
            target = attachment.move_to(tmp_path / "kept.dcm")
    assert target.read_bytes() == expected_document(100_000)


def test_fault_reply_raises_soap_fault(server_url: str) -> None:
    with SoapClient(server_url, timeout=10) as client, pytest.raises(SoapFault) as info:
        client.call("urn:test:reject", query())
    assert info.value.code is FaultCode.SENDER
    assert info.value.subcode == "{urn:test}Custom"
    assert info.value.reason == "go away"
    assert info.value.status == 400


def test_unknown_action_fault_has_the_wsa_subcode(server_url: str) -> None:
    with SoapClient(server_url, timeout=10) as client, pytest.raises(SoapFault) as info:
        client.call("urn:nobody:serves:this", query())
    assert info.value.subcode == WsaFault.ACTION_NOT_SUPPORTED


def test_connection_refused_is_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with SoapClient(f"http://127.0.0.1:{port}/xds", timeout=5) as client, pytest.raises(SoapConnectionError):
        client.call(Action.ITI18, query())


def test_silent_server_is_a_connection_error() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/xds"
        with SoapClient(url, timeout=0.5) as client, pytest.raises(SoapConnectionError):
            client.call(Action.ITI18, query())
    finally:
        thread.join(timeout=5)
        for sock in accepted:
            sock.close()
        listener.close()


# -- crafted replies -------------------------------------------------------------------------------------
def mock_client(handler, **kwargs) -> SoapClient:  # type: ignore[no-untyped-def]
    return SoapClient("http://peer.test/xds", timeout=5, transport=httpx.MockTransport(handler), **kwargs)


def reply_to(
    request: httpx.Request, *, relates_to: str | None = "same", action: str = Action.ITI18_RESPONSE
) -> bytes:
    sent = parse_envelope_bytes(request.content)
    relation = sent.message_id if relates_to == "same" else relates_to
    body = etree.Element(f"{{{NS_QUERY}}}AdhocQueryResponse", status=ResponseStatus.SUCCESS)
    return build_response(body, action=action, relates_to=relation)


def test_request_is_built_as_ihe_expects() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=reply_to(request), headers={"content-type": soap_content_type()})

    with mock_client(handler) as client:
        client.call(Action.ITI18, query())
    request = seen[0]
    assert request.headers["content-type"] == soap_content_type(Action.ITI18)
    assert int(request.headers["content-length"]) == len(request.content)
    envelope = parse_envelope_bytes(request.content)
    assert envelope.action == Action.ITI18 and envelope.addressing.to == "http://peer.test/xds"
    assert envelope.message_id is not None and envelope.message_id.startswith("urn:uuid:")


def test_relates_to_mismatch_is_a_protocol_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        content = reply_to(request, relates_to="urn:uuid:other")
        return httpx.Response(200, content=content, headers={"content-type": soap_content_type()})

    with mock_client(handler) as client:
        with pytest.raises(SoapProtocolError, match="RelatesTo"):
            client.call(Action.ITI18, query())


def test_missing_relates_to_is_a_protocol_error_unless_unchecked() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=reply_to(request, relates_to=None), headers={"content-type": soap_content_type()}
        )

    with mock_client(handler) as client, pytest.raises(SoapProtocolError):
        client.call(Action.ITI18, query())
    with mock_client(handler, check_relates_to=False) as client:
        assert client.call(Action.ITI18, query()).action == Action.ITI18_RESPONSE


@pytest.mark.parametrize(
    ("status", "content_type", "content"),
    [
        (404, "text/html", b"<html>not here</html>"),
        (200, "application/json", b"{}"),
        (200, None, b""),
        (200, "application/soap+xml", b"not xml"),
        (200, "application/soap+xml", b"<x:NotAnEnvelope xmlns:x='urn:x'/>"),
        (
            500,
            "application/soap+xml",
            b"<soap:Envelope xmlns:soap='http://www.w3.org/2003/05/soap-envelope'>"
            b"<soap:Body><x:Y xmlns:x='urn:x'/></soap:Body></soap:Envelope>",
        ),
        (200, "multipart/related; boundary=b", b"--b\r\n\r\n<x/>"),
        (200, "multipart/related", b"--b\r\n\r\n<x/>\r\n--b--"),
    ],
    ids=[
        "html-404",
        "json",
        "no-type",
        "not-xml",
        "not-envelope",
        "500-not-fault",
        "mime-truncated",
        "mime-no-boundary",
    ],
)
def test_unusable_replies_are_protocol_errors(status: int, content_type: str | None, content: bytes) -> None:
    headers = {"content-type": content_type} if content_type else {}
    with mock_client(lambda r: httpx.Response(status, content=content, headers=headers)) as client:
        with pytest.raises(SoapProtocolError) as info:
            client.call(Action.ITI18, query())
    assert info.value.http_status in (status, None)


def test_soap11_fault_reply_is_still_a_soap_fault() -> None:
    content = (
        b"<s:Envelope xmlns:s='http://schemas.xmlsoap.org/soap/envelope/'><s:Body><s:Fault>"
        b"<faultcode>s:Server</faultcode><faultstring>old stack</faultstring></s:Fault></s:Body></s:Envelope>"
    )
    with mock_client(
        lambda r: httpx.Response(500, content=content, headers={"content-type": "text/xml"})
    ) as client:
        with pytest.raises(SoapFault) as info:
            client.call(Action.ITI18, query())
    assert (
        info.value.code is FaultCode.RECEIVER
        and info.value.reason == "old stack"
        and info.value.status == 500
    )


def test_soap11_reply_that_is_not_a_fault_is_a_protocol_error() -> None:
    content = (
        b"<s:Envelope xmlns:s='http://schemas.xmlsoap.org/soap/envelope/'>"
        b"<s:Body><x:R xmlns:x='urn:x'/></s:Body></s:Envelope>"
    )
    with mock_client(
        lambda r: httpx.Response(200, content=content, headers={"content-type": "text/xml"})
    ) as client:
        with pytest.raises(SoapProtocolError, match="SOAP 1.2"):
            client.call(Action.ITI18, query())


def test_fault_reply_in_mtom_is_a_soap_fault(tmp_path: Path) -> None:
    fault = SoapFault(FaultCode.RECEIVER, "repository busy")

    def handler(request: httpx.Request) -> httpx.Response:
        payload = encode_mtom(fault.to_envelope(relates_to=parse_envelope_bytes(request.content).message_id))
        return httpx.Response(500, content=b"".join(payload), headers={"content-type": payload.content_type})

    with mock_client(handler, spool_dir=tmp_path) as client, pytest.raises(SoapFault) as info:
        client.call(Action.ITI43, retrieve_request(1))
    assert info.value.code is FaultCode.RECEIVER and info.value.status == 500
    assert info.value.relates_to is not None


def test_oversize_simple_reply_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=reply_to(request), headers={"content-type": soap_content_type()})

    with (
        mock_client(handler, max_envelope_bytes=100) as client,
        pytest.raises(SoapProtocolError, match="larger"),
    ):
        client.call(Action.ITI18, query())


def test_transport_errors_become_connection_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with mock_client(handler) as client, pytest.raises(SoapConnectionError):
        client.call(Action.ITI18, query())


def test_fault_action_envelope_without_fault_body_is_not_mistaken_for_success() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400,
            content=reply_to(request, action=WSA_FAULT_ACTION),
            headers={"content-type": soap_content_type()},
        )

    with mock_client(handler) as client, pytest.raises(SoapProtocolError):
        client.call(Action.ITI18, query())


# -- async client -----------------------------------------------------------------------------------------
def test_async_client_simple_mtom_and_fault(server_url: str, tmp_path: Path) -> None:
    source = tmp_path / "upload.bin"
    data = os.urandom((2 << 20) + 3)
    source.write_bytes(data)

    async def scenario() -> None:
        async with AsyncSoapClient(server_url, timeout=30, spool_dir=tmp_path / "spool") as client:
            reply = await client.call(Action.ITI18, query())
            assert reply.action == Action.ITI18_RESPONSE and not reply.is_mtom

            body = etree.Element(f"{{{NS_XDS}}}ProvideAndRegisterDocumentSetRequest")
            etree.SubElement(body, f"{{{NS_XDS}}}Document", id="D").append(xop_include("up@client"))
            reply = await client.call(
                Action.ITI41, body, attachments=[OutgoingPart("up@client", "x/y", source)]
            )
            assert reply.body[0].get("sha1") == hashlib.sha1(data).hexdigest()

            size = (2 << 20) + 77
            with await client.call(Action.ITI43, retrieve_request(size), mtom=True) as reply:
                (attachment,) = reply.attachments.values()
                assert attachment.sha1_hex == hashlib.sha1(expected_document(size)).hexdigest()
                spooled = attachment.path
            assert spooled is not None and not spooled.exists()

            with pytest.raises(SoapFault) as info:
                await client.call("urn:test:reject", query())
            assert info.value.subcode == "{urn:test}Custom"

    anyio.run(scenario)


def test_async_client_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def scenario() -> None:
        async with AsyncSoapClient(f"http://127.0.0.1:{port}/x", timeout=5) as client:
            with pytest.raises(SoapConnectionError):
                await client.call(Action.ITI18, query())

    anyio.run(scenario)


def test_async_client_relates_to_check_with_mock_transport() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await request.aread()
        return httpx.Response(
            200,
            content=reply_to(request, relates_to="urn:uuid:x"),
            headers={"content-type": soap_content_type()},
        )

    async def scenario() -> None:
        async with AsyncSoapClient(
            "http://peer.test/x", timeout=5, transport=httpx.MockTransport(handler)
        ) as client:
            with pytest.raises(SoapProtocolError):
                await client.call(Action.ITI18, query())

    anyio.run(scenario)
