"""MLLP transport for HL7 v2: a sans-I/O deframer, an asyncio server adapter and a small client.

MLLP (HL7 v2.5 Appendix C §C.4.3; ITI TF-2x §C.2.1): each message travels as
``0x0B <message> 0x1C 0x0D``. The server reads any number of messages per connection and answers
each in order; bytes outside a frame are discarded; a frame over the size limit is answered with
a NAK when the handler can build one, and the connection is dropped. A connection that stalls is
closed after a read timeout. Nothing a peer sends can stop the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

START_BLOCK = 0x0B
END_BLOCK = 0x1C
CARRIAGE_RETURN = 0x0D
DEFAULT_MAX_FRAME = 1 << 20  # 1 MiB
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_IDLE_TIMEOUT = 600.0
_PREFIX_KEPT = 4096  # bytes of an oversized frame kept, so the NAK can echo MSH-10
_READ_CHUNK = 65536

Handler = Callable[[bytes], bytes]
"""The sans-I/O message handler: one HL7 message in, its acknowledgement out (synchronous)."""
OversizeReply = Callable[[bytes, int], bytes]
"""Builds the NAK for an oversized frame from its first bytes and the limit."""


class MllpError(Exception):
    """The peer broke MLLP (closed mid-frame, sent an oversized frame, or timed out)."""


def frame(message: bytes) -> bytes:
    """Wrap one message in an MLLP block."""
    if bytes((START_BLOCK,)) in message or bytes((END_BLOCK,)) in message:
        raise ValueError("an HL7 message must not contain the MLLP block characters 0x0B or 0x1C")
    return bytes((START_BLOCK,)) + message + bytes((END_BLOCK, CARRIAGE_RETURN))


@dataclass(frozen=True, slots=True)
class Frame:
    """A complete message received."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class OversizeFrame:
    """A frame exceeded the limit; ``prefix`` holds its first bytes (for a NAK)."""

    prefix: bytes
    limit: int


MllpEvent = Frame | OversizeFrame


class MllpDecoder:
    """Sans-I/O deframer: feed it bytes as they arrive, get back the complete frames.

    A start block inside an unfinished frame discards the partial frame and starts anew (the
    peer resynchronised). The carriage return after the end block, and any other bytes between
    frames, are dropped; ``discarded`` counts the bytes dropped that were not a trailer CR.
    """

    _OUTSIDE, _INSIDE, _SKIPPING = range(3)

    def __init__(self, *, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if max_frame < 1:
            raise ValueError("max_frame must be positive")
        self.max_frame = max_frame
        self.discarded = 0
        self._state = self._OUTSIDE
        self._buffer = bytearray()
        self._after_end = False

    @property
    def in_frame(self) -> bool:
        """True while a frame has started and not yet ended."""
        return self._state != self._OUTSIDE

    def feed(self, data: bytes) -> list[MllpEvent]:
        """Consume ``data``; return the frames it completed, in order."""
        events: list[MllpEvent] = []
        pos, size = 0, len(data)
        while pos < size:
            if self._state == self._OUTSIDE:
                if self._after_end and data[pos] == CARRIAGE_RETURN:
                    pos += 1
                self._after_end = False
                start = data.find(START_BLOCK, pos)
                if start < 0:
                    self.discarded += size - pos
                    break
                self.discarded += start - pos
                self._state = self._INSIDE
                pos = start + 1
            elif self._state == self._INSIDE:
                end = data.find(END_BLOCK, pos)
                stop = size if end < 0 else end
                restart = data.find(START_BLOCK, pos, stop)
                if restart >= 0:
                    self.discarded += len(self._buffer) + (restart - pos)
                    self._buffer.clear()
                    pos = restart + 1
                    continue
                if len(self._buffer) + (stop - pos) > self.max_frame:
                    kept = bytes(self._buffer[:_PREFIX_KEPT])
                    if len(kept) < _PREFIX_KEPT:
                        kept += data[pos : min(stop, pos + _PREFIX_KEPT - len(kept))]
                    events.append(OversizeFrame(kept, self.max_frame))
                    self._buffer.clear()
                    if end < 0:
                        self._state = self._SKIPPING
                        break
                    self._state = self._OUTSIDE
                    self._after_end = True
                    pos = end + 1
                    continue
                self._buffer += data[pos:stop]
                if end < 0:
                    break
                events.append(Frame(bytes(self._buffer)))
                self._buffer.clear()
                self._state = self._OUTSIDE
                self._after_end = True
                pos = end + 1
            else:  # skipping the rest of an oversized frame
                end = data.find(END_BLOCK, pos)
                if end < 0:
                    break
                self._state = self._OUTSIDE
                self._after_end = True
                pos = end + 1
        return events


# -- server -------------------------------------------------------------------------------------


class MllpServer:
    """An asyncio MLLP listener that hands each message to a synchronous handler in a thread."""

    def __init__(
        self,
        handler: Handler,
        *,
        host: str = "127.0.0.1",
        port: int = 2575,
        max_frame: int = DEFAULT_MAX_FRAME,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        oversize_reply: OversizeReply | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self._max_frame = max_frame
        self._read_timeout = read_timeout
        self._idle_timeout = idle_timeout
        self._oversize_reply = oversize_reply
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> tuple[str, int]:
        """The bound host and port (the real port when 0 was asked for)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the server is not started")
        name = self._server.sockets[0].getsockname()
        return str(name[0]), int(name[1])

    @property
    def port(self) -> int:
        return self.address[1]

    async def start(self) -> None:
        """Bind and start accepting connections."""
        if self._server is not None:
            raise RuntimeError("the server is already started")
        self._server = await asyncio.start_server(self._on_connection, self._host, self._port, ssl=self._ssl)
        logger.info("MLLP listening on %s:%d", *self.address)

    async def serve_forever(self) -> None:
        """Run until cancelled."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def stop(self) -> None:
        """Stop listening, close every open connection and wait for them to end."""
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> MllpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peer = writer.get_extra_info("peername")
        try:
            await self._converse(reader, writer, peer)
        except asyncio.CancelledError:
            pass
        except OSError as exc:  # includes resets and write timeouts
            logger.info("MLLP connection from %s ended: %s", peer, type(exc).__name__)
        except Exception:  # never let one connection take the listener down
            logger.exception("MLLP connection from %s failed", peer)
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), self._read_timeout)

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: object) -> None:
        decoder = MllpDecoder(max_frame=self._max_frame)
        while True:
            timeout = self._read_timeout if decoder.in_frame else self._idle_timeout
            try:
                data = await asyncio.wait_for(reader.read(_READ_CHUNK), timeout)
            except TimeoutError:
                state = "mid-frame" if decoder.in_frame else "idle"
                logger.info("MLLP connection from %s timed out (%s); closing", peer, state)
                return
            if not data:
                if decoder.in_frame:
                    logger.info("MLLP peer %s disconnected mid-frame; partial message dropped", peer)
                return
            for event in decoder.feed(data):
                if isinstance(event, OversizeFrame):
                    logger.warning("MLLP frame from %s exceeds %d bytes; dropping the connection", peer, event.limit)
                    if self._oversize_reply is not None:
                        reply = await asyncio.to_thread(self._oversize_reply, event.prefix, event.limit)
                        await self._send(writer, reply)
                        await self._linger(reader, writer)
                    return
                # The handler reaches the (synchronous) store: keep it off the event loop.
                reply = await asyncio.to_thread(self._handler, event.payload)
                await self._send(writer, reply)
            if decoder.discarded:
                logger.info("MLLP discarded %d bytes outside frames from %s", decoder.discarded, peer)
                decoder.discarded = 0

    async def _linger(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Half-close, then drain what the peer is still sending (for at most the read timeout).

        Closing a socket with unread input makes TCP send a reset, which can destroy the NAK
        before the peer reads it; a lingering close lets the NAK arrive.
        """
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()
            async with asyncio.timeout(self._read_timeout):
                while await reader.read(_READ_CHUNK):
                    pass

    async def _send(self, writer: asyncio.StreamWriter, reply: bytes) -> None:
        writer.write(frame(reply))
        await asyncio.wait_for(writer.drain(), self._read_timeout)


async def serve_mllp(
    handler: Handler,
    *,
    host: str = "127.0.0.1",
    port: int = 2575,
    max_frame: int = DEFAULT_MAX_FRAME,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    oversize_reply: OversizeReply | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> MllpServer:
    """Start an :class:`MllpServer` and return it (call ``await server.stop()`` to end it)."""
    server = MllpServer(
        handler,
        host=host,
        port=port,
        max_frame=max_frame,
        read_timeout=read_timeout,
        idle_timeout=idle_timeout,
        oversize_reply=oversize_reply,
        ssl_context=ssl_context,
    )
    await server.start()
    return server


# -- client -------------------------------------------------------------------------------------


class MllpClient:
    """A blocking MLLP client: one connection, any number of request/acknowledgement exchanges."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float,
        max_frame: int = DEFAULT_MAX_FRAME,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        raw = socket.create_connection((host, port), timeout=timeout)
        self._socket: socket.socket = (
            ssl_context.wrap_socket(raw, server_hostname=host) if ssl_context is not None else raw
        )
        self._socket.settimeout(timeout)
        self._decoder = MllpDecoder(max_frame=max_frame)
        self._pending: list[MllpEvent] = []

    def send(self, message: bytes) -> bytes:
        """Send one message and wait for the next framed reply."""
        try:
            self._socket.sendall(frame(message))
        except ConnectionError as exc:
            # The peer may have refused the message (e.g. too large) with a NAK before closing.
            try:
                return self.receive()
            except MllpError:
                raise MllpError("the peer closed the connection while the message was sent") from exc
        return self.receive()

    def receive(self) -> bytes:
        """Wait for the next framed message from the peer."""
        while not self._pending:
            try:
                data = self._socket.recv(_READ_CHUNK)
            except TimeoutError as exc:
                raise MllpError("timed out waiting for the MLLP reply") from exc
            except ConnectionError as exc:
                raise MllpError("the peer reset the connection before replying") from exc
            if not data:
                raise MllpError("the peer closed the connection before replying")
            self._pending.extend(self._decoder.feed(data))
        event = self._pending.pop(0)
        if isinstance(event, OversizeFrame):
            raise MllpError(f"the reply exceeds {event.limit} bytes")
        return event.payload

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> MllpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def send_mllp(
    host: str,
    port: int,
    message: bytes,
    *,
    timeout: float = 10.0,
    ssl_context: ssl.SSLContext | None = None,
) -> bytes:
    """Send one message over a fresh connection and return the reply."""
    with MllpClient(host, port, timeout=timeout, ssl_context=ssl_context) as client:
        return client.send(message)

