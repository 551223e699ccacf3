"""The lean HTTP/1.1 client: its sans-I/O response parser, and the client against small asyncio
servers that misbehave on purpose (whether a request was sent is what the repository's ITI-42
outcome depends on)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import anyio
import pytest
from lxml import etree

from xds.http.client import LeanAsyncSoapClient, SoapConnectionError
from xds.http.http11 import (
    HttpExchangeError,
    HttpProtocolError,
    LeanHttpClient,
    RequestNotSent,
    ResponseParser,
)
from xds.http.server import ServerThread, SoapRequest, SoapResponse, SoapService, soap_app
from xds.soap.fault import FaultCode, SoapFault
from xds.vocabulary import NS_QUERY, Action, ResponseStatus

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Two: a\r\nx-two: b\r\n\r\n"
    b"3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nTrailer: t\r\n\r\n"
)


def parse(data: bytes, *, step: int | None = None, max_body: int = 1 << 20, eof: bool = False) -> ResponseParser:
    parser = ResponseParser(max_body_bytes=max_body)
    pieces = [data] if step is None else [data[i : i + step] for i in range(0, len(data), step)]
    for piece in pieces:
        parser.feed(piece)
    if eof:
        parser.feed_eof()
    return parser


# -- the parser ----------------------------------------------------------------------------------
@pytest.mark.parametrize("step", [None, 1, 2, 7])
def test_content_length_and_chunked_bodies_whatever_the_pieces(step: int | None) -> None:
    for raw in (OK, CHUNKED):
        parser = parse(raw, step=step)
        assert parser.complete and parser.keep_alive
        response = parser.response
        assert response.status == 200 and response.body == b"hello"
    assert parse(CHUNKED, step=step).response.headers["x-two"] == "a, b"


def test_interim_responses_are_skipped() -> None:
    parser = parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n" + OK, step=3)
    assert parser.response.status == 200 and parser.response.body == b"hello"
    assert "link" not in parser.response.headers


def test_body_until_the_end_of_the_connection() -> None:
    parser = parse(b"HTTP/1.1 500 Oops\r\nContent-Type: text/plain\r\n\r\nbroken", eof=False)
    assert not parser.complete
    parser.feed_eof()
    assert parser.complete and not parser.keep_alive
    assert parser.response.status == 500 and parser.response.body == b"broken"


@pytest.mark.parametrize(
    "raw",
    [
        OK.replace(b"Content-Type", b"Connection: close\r\nContent-Type"),
        OK.replace(b"HTTP/1.1", b"HTTP/1.0"),
        OK + b"HTTP/1.1 200 OK\r\n",  # bytes after the response: out of step
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",  # framed by the end of the connection
    ],
)
def test_connections_that_cannot_be_reused(raw: bytes) -> None:
    parser = parse(raw)
    if not parser.complete:
        parser.feed_eof()
    assert parser.complete and not parser.keep_alive


def test_no_body_statuses() -> None:
    parser = parse(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert parser.complete and parser.keep_alive and parser.response.body == b""


@pytest.mark.parametrize(
    ("raw", "max_body"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", 10),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello!\r\n6\r\nhello!\r\n", 10),
        (b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 11, 10),
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * (70 << 10), 1 << 20),
        (b"HTTP/1.1 2000 OK\r\n\r\n", 10),
        (b"HTTP/2 200 OK\r\n\r\n", 10),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\n", 10),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n", 10),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 10),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhiX\r\n", 10),
        (b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", 10),
        (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", 10),
    ],
)
def test_malformed_or_oversized_responses_are_refused(raw: bytes, max_body: int) -> None:
    with pytest.raises(HttpProtocolError):
        parse(raw, max_body=max_body)


def test_end_of_stream_before_the_end_of_the_response() -> None:
    for raw in (OK[:-1], CHUNKED[:-2], OK[:20]):
        parser = parse(raw)
        with pytest.raises(HttpProtocolError):
            parser.feed_eof()


# -- the client against scripted servers ---------------------------------------------------------
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Recorder"], Awaitable[None]]


class Recorder:
    """What a scripted server saw: connections and complete requests (head + body)."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await reader.readexactly(length)
        self.requests.append(head + body)
        return body


async def run_with_server(script: Script, client_part: Callable[[str, Recorder], Awaitable[None]]) -> Recorder:
    recorder = Recorder()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        recorder.connections += 1
        try:
            await script(reader, writer, recorder)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await client_part(f"http://127.0.0.1:{port}/soap?x=1", recorder)
    return recorder


async def keep_alive_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, recorder: Recorder) -> None:
    while (body := await recorder.read_request(reader)) is not None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (body[:3], body[3:]):
            if piece:
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        writer.write(b"0\r\n\r\n")
        await writer.drain()


def test_requests_share_one_keep_alive_connection() -> None:
    async def client_part(url: str, recorder: Recorder) -> None:
        client = LeanHttpClient(url, timeout=5, headers={"Authorization": "Bearer k"})
        try:
            for body in (b"first body", b"", b"x" * 100_000):
                response = await client.post(body, headers={"content-type": "text/plain", "content-length": "999"})
                assert response.status == 200 and response.body == body
        finally:
            await client.aclose()

    recorder = anyio.run(run_with_server, keep_alive_echo, client_part)
    assert recorder.connections == 1 and len(recorder.requests) == 3
    first = recorder.requests[0]
    assert first.startswith(b"POST /soap?x=1 HTTP/1.1\r\n")
    assert b"\r\nauthorization: Bearer k\r\n" in first and b"\r\ncontent-length: 10\r\n" in first
    assert b"999" not in first  # the length is the body's own


def test_an_idle_connection_closed_by_the_server_is_replaced_before_sending() -> None:
    async def one_answer_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, recorder: Recorder) -> None:
        await recorder.read_request(reader)
        writer.write(OK)  # announces keep-alive (HTTP/1.1), then closes anyway
        await writer.drain()

    async def client_part(url: str, recorder: Recorder) -> None:
        client = LeanHttpClient(url, timeout=5)
        try:
            assert (await client.post(b"one", headers={})).body == b"hello"
            await asyncio.sleep(0.2)  # the server's close reaches the idle connection
            assert (await client.post(b"two", headers={})).body == b"hello"
        finally:
            await client.aclose()

    recorder = anyio.run(run_with_server, one_answer_then_close, client_part)
    assert recorder.connections == 2
    assert [r.rsplit(b"\r\n\r\n", 1)[1] for r in recorder.requests] == [b"one", b"two"]


def test_bytes_arriving_on_an_idle_connection_make_it_unusable() -> None:
    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, recorder: Recorder) -> None:
        if recorder.connections == 1:
            await recorder.read_request(reader)
            writer.write(OK)
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate")  # nobody asked
            await writer.drain()
            await asyncio.sleep(1)
        else:
            await keep_alive_echo(reader, writer, recorder)

    async def client_part(url: str, recorder: Recorder) -> None:
        client = LeanHttpClient(url, timeout=5)
        try:
            assert (await client.post(b"one", headers={})).body == b"hello"
            await asyncio.sleep(0.2)
            assert (await client.post(b"two", headers={})).body == b"two"
        finally:
            await client.aclose()

    recorder = anyio.run(run_with_server, chatty, client_part)
    assert recorder.connections == 2


def test_idle_connections_expire() -> None:
    async def client_part(url: str, recorder: Recorder) -> None:
        client = LeanHttpClient(url, timeout=5, idle_expiry=0.05)
        try:
            await client.post(b"a", headers={})
            await asyncio.sleep(0.1)
            await client.post(b"b", headers={})
        finally:
            await client.aclose()

    recorder = anyio.run(run_with_server, keep_alive_echo, client_part)
    assert recorder.connections == 2 and len(recorder.requests) == 2


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_refused_connection_is_not_sent() -> None:
    async def scenario() -> None:
        client = LeanHttpClient(f"http://127.0.0.1:{_closed_port()}/x", timeout=5)
        with pytest.raises(RequestNotSent):
            await client.post(b"data", headers={})

    anyio.run(scenario)


@pytest.mark.parametrize("behaviour", ["close", "reset", "silent", "garbage"])
def test_failures_after_the_request_was_written_may_have_been_processed(behaviour: str) -> None:
    async def misbehave(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, recorder: Recorder) -> None:
        await recorder.read_request(reader)
        if behaviour == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        elif behaviour == "silent":
            await asyncio.sleep(2)
        elif behaviour == "garbage":
            writer.write(b"SMTP ready\r\n\r\n")
            await writer.drain()

    async def client_part(url: str, recorder: Recorder) -> None:
        client = LeanHttpClient(url, timeout=0.5)
        try:
            with pytest.raises(HttpExchangeError) as info:
                await client.post(b"payload", headers={})
            assert not isinstance(info.value, RequestNotSent)
        finally:
            await client.aclose()

    recorder = anyio.run(run_with_server, misbehave, client_part)
    assert len(recorder.requests) == 1


def test_a_cancelled_exchange_never_leaves_its_connection_for_reuse() -> None:
    async def slow_then_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, recorder: Recorder) -> None:
        if recorder.connections == 1:
            await recorder.read_request(reader)
            await asyncio.sleep(0.3)
            writer.write(OK)  # the late answer to the cancelled request
        await keep_alive_echo(reader, writer, recorder)

    async def client_part(url: str, recorder: Recorder) -> None:
        client = LeanHttpClient(url, timeout=5)
        try:
            with anyio.move_on_after(0.1):
                await client.post(b"cancelled", headers={})
                pytest.fail("not cancelled")
            response = await client.post(b"next", headers={})
            assert response.body == b"next"  # not the late answer to the first request
        finally:
            await client.aclose()

    recorder = anyio.run(run_with_server, slow_then_echo, client_part)
    assert recorder.connections == 2


# -- the SOAP client on it -----------------------------------------------------------------------
async def stored_query(request: SoapRequest) -> SoapResponse:
    response = etree.Element(f"{{{NS_QUERY}}}AdhocQueryResponse", status=ResponseStatus.SUCCESS)
    response.set("to", request.envelope.addressing.to or "")
    return SoapResponse(action=Action.ITI18_RESPONSE, body=response)


async def reject(request: SoapRequest) -> SoapResponse:
    raise SoapFault(FaultCode.SENDER, "go away", subcode="{urn:test}Custom")


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = soap_app(
        services=[SoapService(path="/xds", handlers={Action.ITI18: stored_query, "urn:test:reject": reject})],
        spool_dir=tmp_path_factory.mktemp("server-spool"),
    )
    with ServerThread(app) as running:
        yield running.url + "/xds"


def test_lean_soap_client_calls_answers_and_faults(server_url: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with LeanAsyncSoapClient(server_url, timeout=10, spool_dir=tmp_path) as client:
            for _ in range(3):
                with await client.call(Action.ITI18, etree.Element(f"{{{NS_QUERY}}}AdhocQueryRequest")) as reply:
                    assert reply.action == Action.ITI18_RESPONSE and not reply.is_mtom
                    assert reply.body.get("to") == server_url
            with pytest.raises(SoapFault) as info:
                await client.call("urn:test:reject", etree.Element(f"{{{NS_QUERY}}}AdhocQueryRequest"))
            assert info.value.subcode == "{urn:test}Custom"

    anyio.run(scenario)


def test_lean_soap_client_connection_errors_say_whether_the_request_left() -> None:
    async def scenario() -> None:
        async with LeanAsyncSoapClient(f"http://127.0.0.1:{_closed_port()}/x", timeout=5) as client:
            with pytest.raises(SoapConnectionError) as info:
                await client.call(Action.ITI18, etree.Element(f"{{{NS_QUERY}}}AdhocQueryRequest"))
            assert isinstance(info.value.__cause__, RequestNotSent)

    anyio.run(scenario)
