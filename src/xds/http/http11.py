"""A lean HTTP/1.1 client for small request/response exchanges with one server (SOAP calls).

Why it exists: a Document Repository makes one ITI-42 call per submission, a small POST with a
small answer. Through httpx such a call costs ~1.7-1.9 ms of CPU in the client, against
~0.4-0.6 ms for ``http.client`` (docs/benchmarks.md, repository section); at 1 MB documents that
difference is a visible share of an ITI-41. This client does only what those calls need:

* ``POST`` of a complete body, framed by Content-Length, sent in **one write** (head + body);
* responses framed by Content-Length, the chunked transfer coding (RFC 9112 §7.1) or the end of
  the connection, **bounded** in size (head and body), interim 1xx responses skipped;
* **keep-alive** connections reused (HTTP/1.1 unless ``Connection: close``), dropped when idle for
  longer than ``idle_expiry`` (below the usual server keep-alive timeouts, 5 s for uvicorn);
* timeouts on connect and on every wait for response bytes; HTTPS through :mod:`ssl`.

Whether the server may have received a request is part of the contract, because the repository's
crash safety depends on it (an ITI-42 that was never sent cannot have been registered):
:class:`RequestNotSent` is raised **only** when no byte of the request was handed to a connection
(the connection could not be made, a free connection slot was not found in time, or the
connection failed before the request was written). A pooled connection that the server closed
while it was idle is noticed before the request is written (the peer's end of stream, or any byte
arriving on an idle connection, makes it unusable) and replaced by a new one; that is the only
retry, and it happens before anything was sent. Every other failure (write error, timeout or end
of stream while waiting for the answer, a malformed answer) raises :class:`HttpExchangeError`:
the server may have processed the request.

The response parser is sans-I/O (:class:`ResponseParser`); the connections are asyncio protocols
(the services run on asyncio event loops, uvloop included).

Public API::

    HttpResponse(status, headers, body)       # headers: lower-case names -> value
    HttpProtocolError(ValueError), RequestNotSent(Exception), HttpExchangeError(Exception)
    ResponseParser(*, max_head_bytes=64 KiB, max_body_bytes)
        .feed(data) / .feed_eof(); .complete, .response, .keep_alive
    LeanHttpClient(url, *, timeout=60.0, ssl_context=None, max_response_bytes=64 MiB,
                   max_connections=100, max_idle=8, idle_expiry=2.0)
        async .post(body, *, headers) -> HttpResponse;  async .aclose()
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

__all__ = [
    "HttpExchangeError",
    "HttpProtocolError",
    "HttpResponse",
    "LeanHttpClient",
    "RequestNotSent",
    "ResponseParser",
]

DEFAULT_MAX_HEAD_BYTES: Final = 64 << 10
DEFAULT_MAX_RESPONSE_BYTES: Final = 64 << 20
_CRLF: Final = b"\r\n"


class HttpProtocolError(ValueError):
    """The server's answer is not well-formed HTTP/1.1, or is larger than allowed."""


class RequestNotSent(Exception):
    """The request never reached a connection: the server saw nothing of it."""


class HttpExchangeError(Exception):
    """The exchange failed after (part of) the request was written: it may have been processed."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A complete response. ``headers`` maps lower-case field names to their (joined) values."""

    status: int
    headers: Mapping[str, str]
    body: bytes


# -- the response parser (sans-I/O) ---------------------------------------------------------------
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _UNTIL_EOF, _DONE = range(8)


class ResponseParser:
    """Parses one HTTP/1.1 response to a POST from bytes fed in order (RFC 9112 §6)."""

    def __init__(self, *, max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES, max_body_bytes: int) -> None:
        self._max_head = max_head_bytes
        self._max_body = max_body_bytes
        self._buffer = bytearray()
        self._state = _HEAD
        self._body: list[bytes] = []
        self._size = 0
        self._remaining = 0
        self._status = 0
        self._headers: dict[str, str] = {}
        self.keep_alive = False

    @property
    def complete(self) -> bool:
        return self._state == _DONE

    @property
    def response(self) -> HttpResponse:
        if self._state != _DONE:
            raise HttpProtocolError("the response is not complete")
        return HttpResponse(self._status, self._headers, b"".join(self._body))

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the connection; raises :class:`HttpProtocolError`."""
        if self._state == _DONE:
            if data:
                # Bytes after the end of the response: the connection cannot be reused.
                self.keep_alive = False
            return
        if self._state == _LENGTH and not self._buffer:  # the common case: no copy
            self._take_body(data[: self._remaining])
            rest = data[self._remaining :] if len(data) > self._remaining else b""
            self._remaining -= len(data) - len(rest)
            if self._remaining == 0:
                self._state = _DONE
                self.feed(rest)
            return
        self._buffer += data
        self._advance()

    def feed_eof(self) -> None:
        """The server closed its end: completes a body framed by the end of the connection."""
        if self._state == _UNTIL_EOF:
            self._state = _DONE
        elif self._state != _DONE:
            raise HttpProtocolError("the connection closed before the response was complete")
        self.keep_alive = False

    def _take_body(self, data: bytes | bytearray) -> None:
        if not data:
            return
        self._size += len(data)
        if self._size > self._max_body:
            raise HttpProtocolError(f"response body larger than {self._max_body} bytes")
        self._body.append(bytes(data))

    def _advance(self) -> None:
        buf = self._buffer
        while True:
            state = self._state
            if state == _HEAD:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > self._max_head:
                        raise HttpProtocolError(f"response head larger than {self._max_head} bytes")
                    return
                if end > self._max_head:
                    raise HttpProtocolError(f"response head larger than {self._max_head} bytes")
                head = bytes(buf[:end])
                del buf[: end + 4]
                self._parse_head(head)
            elif state == _LENGTH:
                take = buf[: self._remaining]
                del buf[: len(take)]
                self._take_body(take)
                self._remaining -= len(take)
                if self._remaining:
                    return
                self._state = _DONE
            elif state == _CHUNK_SIZE:
                end = buf.find(_CRLF)
                if end < 0:
                    if len(buf) > 1024:
                        raise HttpProtocolError("chunk size line too long")
                    return
                line = bytes(buf[:end]).split(b";", 1)[0].strip()
                del buf[: end + 2]
                # RFC 9112 §7.1: chunk-size = 1*HEXDIG.
                if not line or any(c not in b"0123456789abcdefABCDEF" for c in line):
                    raise HttpProtocolError(f"bad chunk size {line[:40]!r}")
                size = int(line, 16)
                if size == 0:
                    self._state = _TRAILERS
                else:
                    if self._size + size > self._max_body:
                        raise HttpProtocolError(f"response body larger than {self._max_body} bytes")
                    self._remaining = size
                    self._state = _CHUNK_DATA
            elif state == _CHUNK_DATA:
                take = buf[: self._remaining]
                del buf[: len(take)]
                self._take_body(take)
                self._remaining -= len(take)
                if self._remaining:
                    return
                self._state = _CHUNK_END
            elif state == _CHUNK_END:
                if len(buf) < 2:
                    return
                if buf[:2] != _CRLF:
                    raise HttpProtocolError("chunk data not followed by CRLF")
                del buf[:2]
                self._state = _CHUNK_SIZE
            elif state == _TRAILERS:
                end = buf.find(_CRLF)
                if end < 0:
                    if len(buf) > self._max_head:
                        raise HttpProtocolError("trailer section too large")
                    return
                del buf[: end + 2]  # trailer fields are ignored
                if end == 0:
                    self._state = _DONE
            elif state == _UNTIL_EOF:
                self._take_body(buf)
                buf.clear()
                return
            else:  # _DONE
                if buf:
                    self.keep_alive = False
                    buf.clear()
                return

    def _parse_head(self, head: bytes) -> None:
        lines = head.split(_CRLF)
        try:
            version, code, *_ = lines[0].decode("latin-1").split(" ", 2)
            status = int(code)
        except ValueError:
            raise HttpProtocolError(f"bad status line {lines[0][:80]!r}") from None
        if not version.startswith("HTTP/1.") or not 100 <= status <= 999 or len(code) != 3:
            raise HttpProtocolError(f"bad status line {lines[0][:80]!r}")
        headers: dict[str, str] = {}
        for raw in lines[1:]:
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep or not name or name != name.strip():
                raise HttpProtocolError(f"bad header line {raw[:80]!r}")
            key = name.lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        # RFC 9110 §15.2: interim responses (100 Continue, 103 ...) precede the final one.
        if 100 <= status < 200:
            if status == 101:
                raise HttpProtocolError("unexpected 101 Switching Protocols")
            return
        self._status = status
        self._headers = headers
        connection = {token.strip().lower() for token in headers.get("connection", "").split(",")}
        self.keep_alive = version == "HTTP/1.1" and "close" not in connection
        # RFC 9112 §6.3: how the body is framed.
        if status in (204, 304):
            self._state = _DONE
        elif "transfer-encoding" in headers:
            codings = [c.strip().lower() for c in headers["transfer-encoding"].split(",")]
            if codings[-1] == "chunked":
                self._state = _CHUNK_SIZE
            else:
                self._state = _UNTIL_EOF
                self.keep_alive = False
        elif "content-length" in headers:
            values = {v.strip() for v in headers["content-length"].split(",")}
            if len(values) != 1 or not (length := values.pop()).isdigit():
                raise HttpProtocolError(f"bad Content-Length {headers['content-length']!r}")
            self._remaining = int(length)
            if self._remaining > self._max_body:
                raise HttpProtocolError(f"response body larger than {self._max_body} bytes")
            self._state = _LENGTH if self._remaining else _DONE
        else:
            self._state = _UNTIL_EOF
            self.keep_alive = False


# -- connections ----------------------------------------------------------------------------------
class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; it reads only while a response is awaited."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser: ResponseParser | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.broken = False
        self.idle_since = time.monotonic()
        self._progress = False
        self._timer: asyncio.TimerHandle | None = None
        self._timeout = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        if parser is None:
            self.broken = True  # bytes on an idle connection: it is out of step, not reusable
            return
        self._progress = True
        try:
            parser.feed(data)
        except HttpProtocolError as exc:
            self._finish(exc)
            return
        if parser.complete:
            self._finish(None)

    def eof_received(self) -> bool | None:
        self.broken = True
        parser = self.parser
        if parser is not None and not parser.complete:
            try:
                parser.feed_eof()
            except HttpProtocolError as exc:
                self._finish(exc)
                return None
            self._finish(None)
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.broken = True
        parser = self.parser
        if parser is not None and not parser.complete:
            self._finish(exc or HttpProtocolError("the connection closed before the response was complete"))

    # waiting for a response
    def _finish(self, error: BaseException | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    def _on_timer(self) -> None:
        if self._progress:  # bytes arrived within the period: wait another one
            self._progress = False
            self._timer = self._loop.call_later(self._timeout, self._on_timer)
        else:
            self._timer = None
            self._finish(TimeoutError(f"no response bytes for {self._timeout} s"))

    def usable(self, *, now: float, idle_expiry: float) -> bool:
        """May a new request be written on this idle connection?"""
        transport = self.transport
        return (
            not self.broken
            and transport is not None
            and not transport.is_closing()
            and now - self.idle_since < idle_expiry
        )

    async def exchange(self, data: bytes, parser: ResponseParser, *, timeout: float) -> HttpResponse:
        """Write the request in one write and wait for the complete response."""
        assert self.transport is not None
        self.parser = parser
        self.waiter = self._loop.create_future()
        self._timeout = timeout
        self._progress = False
        self._timer = self._loop.call_later(timeout, self._on_timer)
        try:
            self.transport.write(data)
            await self.waiter
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self.waiter = None
        self.parser = None
        if not parser.keep_alive:
            self.broken = True
        self.idle_since = time.monotonic()
        return parser.response

    def abort(self) -> None:
        self.broken = True
        if self.transport is not None:
            self.transport.abort()


def _check_header(name: str, value: str) -> None:
    if any(c in name for c in "\r\n:") or any(c in value for c in "\r\n"):
        raise ValueError(f"invalid HTTP header {name!r}")


class LeanHttpClient:
    """POSTs to one URL over keep-alive HTTP/1.1 connections (see the module documentation).

    Parameters
    ----------
    url:
        ``http://`` or ``https://`` URL every request is sent to.
    timeout:
        Seconds for the connection (TCP and TLS), for a free connection slot, and for each wait
        for response bytes.
    ssl_context:
        For ``https``; the default verifies the server against the system's CAs.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 60.0,
        ssl_context: ssl.SSLContext | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_connections: int = 100,
        max_idle: int = 8,
        idle_expiry: float = 2.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = url
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = (ssl_context or ssl.create_default_context()) if parts.scheme == "https" else None
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        authority = parts.netloc.rpartition("@")[2]
        fixed = {"host": authority, **{k.lower(): v for k, v in (headers or {}).items()}}
        for name, value in fixed.items():
            _check_header(name, value)
        self._request_line = f"POST {target} HTTP/1.1\r\n"
        self._fixed = "".join(f"{name}: {value}\r\n" for name, value in fixed.items())
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self.max_idle = max_idle
        self.idle_expiry = idle_expiry
        self._max_connections = max_connections
        self._slots: asyncio.Semaphore | None = None
        self._idle: list[_Connection] = []
        self._closed = False

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        connection = _Connection(loop)
        await asyncio.wait_for(
            loop.create_connection(
                lambda: connection,
                self._host,
                self._port,
                ssl=self._ssl,
                server_hostname=self._host if self._ssl is not None else None,
            ),
            self.timeout,
        )
        return connection

    def _pooled(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if connection.usable(now=now, idle_expiry=self.idle_expiry):
                return connection
            connection.abort()
        return None

    async def post(self, body: bytes, *, headers: Mapping[str, str]) -> HttpResponse:
        """POST ``body`` with these extra header fields; the complete response, whatever its status.

        Raises :class:`RequestNotSent` or :class:`HttpExchangeError` (see the module documentation).
        """
        if self._closed:
            raise RequestNotSent("the client is closed")
        head = [self._request_line, self._fixed]
        for name, value in headers.items():
            if name.lower() == "content-length":
                continue  # framed here, from the body itself
            _check_header(name, value)
            head.append(f"{name}: {value}\r\n")
        head.append(f"content-length: {len(body)}\r\n\r\n")
        data = "".join(head).encode("latin-1") + body
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max_connections)
        try:
            await asyncio.wait_for(self._slots.acquire(), self.timeout)
        except TimeoutError as exc:
            raise RequestNotSent(f"no free connection to {self.url} within {self.timeout} s") from exc
        try:
            connection = self._pooled()
            if connection is None:
                try:
                    connection = await self._connect()
                except (OSError, ssl.SSLError, TimeoutError) as exc:
                    raise RequestNotSent(f"cannot connect to {self.url}: {type(exc).__name__}: {exc}") from exc
            parser = ResponseParser(max_body_bytes=self.max_response_bytes)
            done = False
            try:
                response = await connection.exchange(data, parser, timeout=self.timeout)
                done = True
            except (OSError, HttpProtocolError, TimeoutError, ssl.SSLError) as exc:
                raise HttpExchangeError(f"{self.url}: {type(exc).__name__}: {exc}") from exc
            finally:
                if not done:
                    connection.abort()  # cancelled or failed half-way: never reused
            if connection.broken or self._closed or len(self._idle) >= self.max_idle:
                connection.abort()
            else:
                self._idle.append(connection)
            return response
        finally:
            self._slots.release()

    async def aclose(self) -> None:
        """Close the idle connections; later calls raise :class:`RequestNotSent`."""
        self._closed = True
        while self._idle:
            connection = self._idle.pop()
            if connection.transport is not None:
                connection.transport.close()
