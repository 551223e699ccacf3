"""MLLP framing, and the ITI-8 feed served over a real socket on 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from xds.hl7.v2 import parse_message
from registry.iti8 import PatientIdentityFeed
from xds.hl7.mllp import (
    Frame,
    MllpClient,
    MllpDecoder,
    MllpError,
    MllpServer,
    OversizeFrame,
    frame,
    send_mllp,
    serve_mllp,
)
from registry.patients import Patient

OID = "1.3.6.1.4.1.21367.13.20.1000"
HOST = "127.0.0.1"
SAFETY = 10.0  # upper bound for awaits, so a broken server fails the test instead of hanging it


@dataclass
class MemorySink:
    """A small in-memory PatientIdentitySink."""

    patients: dict[str, Patient] = field(default_factory=dict)
    merges: list[tuple[str, str]] = field(default_factory=list)
    threads: set[int] = field(default_factory=set)

    def add_or_update(self, patient: Patient) -> bool:
        self.threads.add(threading.get_ident())
        created = patient.patient_id not in self.patients
        self.patients[patient.patient_id] = patient
        return created

    def merge(self, *, surviving_id: str, merged_id: str) -> None:
        self.threads.add(threading.get_ident())
        self.merges.append((surviving_id, merged_id))
        self.patients.pop(merged_id, None)

    def is_known(self, patient_id: str) -> bool:
        return patient_id in self.patients


def adt(event: str, control_id: str, patient: str = "IHEBLUE-1234", *, mrg: str | None = None, padding: int = 0) -> bytes:
    segments = [
        f"MSH|^~\\&|NIST_SENDER^^|NIST^^|NIST_RECEIVER^^|NIST^^|20240101120000||ADT^{event}|{control_id}|P|2.3.1",
        "EVN||20240101120000",
        f"PID|||{patient}^^^&{OID}&ISO||BLUE^JOHN||19600101|M",
    ]
    if mrg is not None:
        segments.append(f"MRG|{mrg}^^^&{OID}&ISO")
    segments.append("PV1||O" + ("|" + "N" * padding if padding else ""))
    return ("\r".join(segments) + "\r").encode("ascii")


def pid(value: str) -> str:
    return f"{value}^^^&{OID}&ISO"


def msa(ack: bytes) -> tuple[str, str]:
    segment = parse_message(ack.decode()).first("MSA")
    assert segment is not None
    return segment.value(1), segment.value(2)


def run(scenario: Callable[..., Awaitable[None]], **server_options: object) -> MemorySink:
    """Run ``scenario(server, sink)`` against a fresh feed server on a free port."""
    sink = MemorySink()
    feed = PatientIdentityFeed(sink, affinity_domain_oid=OID)

    async def main() -> None:
        options = {"oversize_reply": feed.reject_oversize, **server_options}
        server = await serve_mllp(feed, host=HOST, port=0, **options)  # type: ignore[arg-type]
        try:
            await asyncio.wait_for(scenario(server, sink), 60)
        finally:
            await server.stop()

    asyncio.run(main())
    return sink


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    data = await asyncio.wait_for(reader.readuntil(b"\x1c\r"), SAFETY)
    assert data[:1] == b"\x0b"
    return data[1:-2]


async def read_eof(reader: asyncio.StreamReader) -> bytes:
    """Everything until the server closes the connection."""
    return await asyncio.wait_for(reader.read(), SAFETY)


# -- the sans-I/O deframer ----------------------------------------------------------------------


def test_frame_wraps_and_refuses_block_characters() -> None:
    assert frame(b"MSH|x") == b"\x0bMSH|x\x1c\r"
    with pytest.raises(ValueError):
        frame(b"a\x1cb")
    with pytest.raises(ValueError):
        frame(b"a\x0bb")


def test_decoder_reassembles_frames_split_anywhere() -> None:
    stream = frame(b"first") + frame(b"second")
    decoder = MllpDecoder()
    events = [event for byte in stream for event in decoder.feed(bytes([byte]))]
    assert events == [Frame(b"first"), Frame(b"second")]
    assert decoder.discarded == 0
    assert not decoder.in_frame


def test_decoder_discards_garbage_outside_frames() -> None:
    decoder = MllpDecoder()
    events = decoder.feed(b"noise" + frame(b"one") + b"\r\n??" + frame(b"two") + b"tail")
    assert events == [Frame(b"one"), Frame(b"two")]
    # frame() ends with the trailer CR, which is not garbage; the CR that follows it is.
    assert decoder.discarded == len(b"noise") + len(b"\r\n??") + len(b"tail")


def test_decoder_restarts_on_a_new_start_block() -> None:
    decoder = MllpDecoder()
    assert decoder.feed(b"\x0bhalf a mess") == []
    assert decoder.in_frame
    assert decoder.feed(b"age\x0bwhole\x1c\r") == [Frame(b"whole")]
    assert decoder.discarded == len(b"half a message")


def test_decoder_reports_an_oversized_frame_with_its_prefix() -> None:
    decoder = MllpDecoder(max_frame=10)
    events = decoder.feed(b"\x0b0123456789")
    assert events == []
    events = decoder.feed(b"ABC")
    assert events == [OversizeFrame(b"0123456789ABC", 10)]
    assert decoder.in_frame  # still skipping to the end block
    assert decoder.feed(b"more\x1c\r" + frame(b"ok")) == [Frame(b"ok")]


def test_decoder_accepts_a_frame_of_exactly_the_limit() -> None:
    decoder = MllpDecoder(max_frame=5)
    assert decoder.feed(frame(b"12345")) == [Frame(b"12345")]
    assert decoder.feed(frame(b"123456")) == [OversizeFrame(b"123456", 5)]


# -- over a real socket -------------------------------------------------------------------------


def test_one_message_over_a_socket() -> None:
    async def scenario(server: MllpServer, sink: MemorySink) -> None:
        ack = await asyncio.to_thread(send_mllp, HOST, server.port, adt("A01", "M-1"), timeout=SAFETY)
        assert msa(ack) == ("AA", "M-1")

    sink = run(scenario)
    assert list(sink.patients) == [pid("IHEBLUE-1234")]
    assert threading.main_thread().ident not in sink.threads  # the store ran off the event loop


def test_several_messages_on_one_connection() -> None:
    def exchange(port: int) -> list[bytes]:
        with MllpClient(HOST, port, timeout=SAFETY) as client:
            return [
                client.send(adt("A01", "S-1")),
                client.send(adt("A04", "S-2", "IHERED-77")),
                client.send(adt("A08", "S-3")),
                client.send(adt("A40", "S-4", mrg="IHERED-77")),
            ]

    async def scenario(server: MllpServer, sink: MemorySink) -> None:
        acks = await asyncio.to_thread(exchange, server.port)
        assert [msa(a) for a in acks] == [("AA", "S-1"), ("AA", "S-2"), ("AA", "S-3"), ("AA", "S-4")]

    sink = run(scenario)
    assert sink.merges == [(pid("IHEBLUE-1234"), pid("IHERED-77"))]
    assert list(sink.patients) == [pid("IHEBLUE-1234")]


def test_pipelined_frames_are_answered_in_order_and_garbage_is_ignored() -> None:
    async def scenario(server: MllpServer, sink: MemorySink) -> None:
        reader, writer = await asyncio.open_connection(HOST, server.port)
        writer.write(b"GET / HTTP/1.0\r\n" + frame(adt("A01", "P-1")) + b"junk" + frame(adt("A03", "P-2")) + frame(b"nonsense"))
        await writer.drain()
        answers = [msa(await read_frame(reader)) for _ in range(3)]
        assert answers == [("AA", "P-1"), ("AR", "P-2"), ("AR", "")]
        writer.close()
        await writer.wait_closed()

    sink = run(scenario)
    assert list(sink.patients) == [pid("IHEBLUE-1234")]


def test_an_oversized_frame_gets_a_nak_and_the_connection_is_dropped() -> None:
    async def scenario(server: MllpServer, sink: MemorySink) -> None:
        reader, writer = await asyncio.open_connection(HOST, server.port)
        writer.write(frame(adt("A01", "BIG-1", padding=300_000)))
        await writer.drain()
        nak = await read_frame(reader)
        assert msa(nak) == ("AR", "BIG-1")
        assert b"exceeds the maximum size of 2048 bytes" in nak
        assert await read_eof(reader) == b""  # the server hung up
        writer.close()

        # the server is still serving, and a message under the limit is accepted
        ack = await asyncio.to_thread(send_mllp, HOST, server.port, adt("A01", "SMALL-1"), timeout=SAFETY)
        assert msa(ack) == ("AA", "SMALL-1")

    sink = run(scenario, max_frame=2048)
    assert list(sink.patients) == [pid("IHEBLUE-1234")]


def test_the_client_receives_the_nak_for_an_oversized_message() -> None:
    async def scenario(server: MllpServer, sink: MemorySink) -> None:
        big = adt("A08", "BIG-2", padding=2_000_000)
        nak = await asyncio.to_thread(send_mllp, HOST, server.port, big, timeout=SAFETY)
        assert msa(nak) == ("AR", "BIG-2")

    sink = run(scenario)  # the default limit, 1 MiB
    assert sink.patients == {}


def test_an_oversized_frame_without_a_nak_builder_just_drops_the_connection() -> None:
    async def scenario(server: MllpServer, sink: MemorySink) -> None:
        reader, writer = await asyncio.open_connection(HOST, server.port)
        writer.write(b"\x0b" + b"x" * 4096)
        await writer.drain()
        assert await read_eof(reader) == b""
        writer.close()

    sink = run(scenario, max_frame=1024, oversize_reply=None)
    assert sink.patients == {}


def test_a_client_that_disconnects_mid_frame_does_not_hurt_the_server() -> None:
    async def scenario(server: MllpServer, sink: MemorySink) -> None:
        for _ in range(3):
            _, writer = await asyncio.open_connection(HOST, server.port)
            writer.write(b"\x0b" + adt("A01", "CUT-1", "IHEGREEN-5")[:60])
            await writer.drain()
            writer.close()
            await writer.wait_closed()
        ack = await asyncio.to_thread(send_mllp, HOST, server.port, adt("A04", "AFTER-1"), timeout=SAFETY)
        assert msa(ack) == ("AA", "AFTER-1")

    sink = run(scenario)
    assert list(sink.patients) == [pid("IHEBLUE-1234")]


def test_a_stalled_frame_is_closed_by_the_read_timeout() -> None:
    async def scenario(server: MllpServer, sink: MemorySink) -> None:
        reader, writer = await asyncio.open_connection(HOST, server.port)
        writer.write(b"\x0bMSH|^~\\&|half")
        await writer.drain()
        assert await read_eof(reader) == b""
        writer.close()
        ack = await asyncio.to_thread(send_mllp, HOST, server.port, adt("A01", "LATE-1"), timeout=SAFETY)
        assert msa(ack) == ("AA", "LATE-1")

    run(scenario, read_timeout=0.2)


def test_an_idle_connection_is_closed_by_the_idle_timeout() -> None:
    async def scenario(server: MllpServer, sink: MemorySink) -> None:
        reader, writer = await asyncio.open_connection(HOST, server.port)
        writer.write(frame(adt("A01", "IDLE-1")))
        await writer.drain()
        assert msa(await read_frame(reader)) == ("AA", "IDLE-1")
        assert await read_eof(reader) == b""
        writer.close()

    run(scenario, idle_timeout=0.2)


def test_a_failing_handler_closes_only_its_connection() -> None:
    calls: list[bytes] = []

    def handler(data: bytes) -> bytes:
        calls.append(data)
        if b"BOOM" in data:
            raise RuntimeError("handler defect")
        return b"MSH|^~\\&|ECHO\rMSA|AA|" + data[-4:] + b"\r"

    async def main() -> None:
        async with MllpServer(handler, host=HOST, port=0) as server:
            reader, writer = await asyncio.open_connection(HOST, server.port)
            writer.write(frame(b"BOOM"))
            await writer.drain()
            assert await read_eof(reader) == b""
            writer.close()
            ack = await asyncio.to_thread(send_mllp, HOST, server.port, b"okay", timeout=SAFETY)
            assert ack == b"MSH|^~\\&|ECHO\rMSA|AA|okay\r"

    asyncio.run(main())
    assert calls == [b"BOOM", b"okay"]


def test_stop_closes_open_connections_and_the_listener() -> None:
    async def main() -> None:
        server = await serve_mllp(lambda data: data, host=HOST, port=0)
        port = server.port
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(frame(b"ping"))
        await writer.drain()
        assert await read_frame(reader) == b"ping"
        await asyncio.wait_for(server.stop(), SAFETY)
        assert await read_eof(reader) == b""
        writer.close()
        with pytest.raises(OSError):
            await asyncio.open_connection(HOST, port)

    asyncio.run(main())


def test_client_reports_a_peer_that_hangs_up() -> None:
    async def scenario(server: MllpServer, sink: MemorySink) -> None:
        def talk() -> None:
            with MllpClient(HOST, server.port, timeout=SAFETY) as client:
                client.send(b"x" * 100)

        with pytest.raises(MllpError):
            await asyncio.to_thread(talk)

    run(scenario, max_frame=50, oversize_reply=None)
