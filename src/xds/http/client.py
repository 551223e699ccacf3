"""SOAP 1.2 clients on httpx: send simple SOAP or MTOM, receive simple SOAP or MTOM.

::

    with SoapClient("https://registry.example/registry", timeout=30.0) as client:
        reply = client.call(Action.ITI18, adhoc_query_request)
        reply.body            # query:AdhocQueryResponse

    async with AsyncSoapClient(url, timeout=30.0, spool_dir=spool) as client:
        reply = await client.call(Action.ITI43, request, mtom=True)
        with reply:            # deletes the reply's spool files on exit
            for element, attachment in reply.resolve_xop().items():
                attachment.move_to(destination)

A call builds the request envelope (ITI TF-2x V.3.2: ``wsa:Action`` with mustUnderstand,
``wsa:MessageID``, ``wsa:ReplyTo`` anonymous, ``wsa:To`` = the endpoint), sends it as
``application/soap+xml; action=...`` or, with ``mtom=True`` or attachments, as a streamed
MTOM package (files are read 1 MiB at a time, Content-Length set when sizes are known), then
parses the reply:

* an MTOM reply is decoded with the same streaming decoder as the server, reading the raw
  response 1 MiB at a time; attachments land in spool files (:class:`Attachment`);
* a SOAP fault reply raises :class:`~xds.soap.fault.SoapFault` (with the HTTP status; a
  SOAP 1.1 peer's fault too, so its reason is not lost);
* ``wsa:RelatesTo`` must equal the MessageID sent (:class:`SoapProtocolError` otherwise);
* a connection failure or timeout raises :class:`SoapConnectionError` (the repository maps it
  to XDSRegistryNotAvailable); any other unusable reply raises :class:`SoapProtocolError`.

Public API::

    SoapClient(endpoint, *, timeout=60.0, verify=True, cert=None, transport=None,
               spool_dir=None, max_envelope_bytes=64 MiB, headers=None, check_relates_to=True)
        .call(action, body, *, attachments=(), mtom=False, extra_headers=(),
              message_id=None) -> SoapReply
    AsyncSoapClient(...)     # same, async; transport is an httpx.AsyncBaseTransport
    LeanAsyncSoapClient(endpoint, *, timeout=60.0, verify=True, cert=None, spool_dir=None,
                        max_envelope_bytes=64 MiB, headers=None, check_relates_to=True)
        .call(action, body, *, extra_headers=(), message_id=None) -> SoapReply
                             # simple SOAP requests over xds.http.http11 (no httpx); its
                             # SoapConnectionError's __cause__ is RequestNotSent when the
                             # request never left
    SoapReply                # envelope, body, action, attachments, is_mtom, http_status,
                             # binary(element), resolve_xop(), close() / context manager
    SoapConnectionError(Exception), SoapProtocolError(ValueError)
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Protocol, Self

import anyio.to_thread
import httpx
from lxml import etree

from xds.http.http11 import HttpExchangeError, LeanHttpClient, RequestNotSent
from xds.soap.attachments import CHUNK_SIZE, Attachment, Spool
from xds.soap.envelope import SoapEnvelope, parse_envelope, request_envelope, soap_content_type
from xds.soap.fault import SoapFault, new_message_id, parse_fault
from xds.soap.mtom import MtomReceiver, binary_content, feed_async, resolve_xop
from xds.soap.mtom_decode import MimeError, parse_content_type
from xds.soap.mtom_encode import MtomPayload, OutgoingPart, encode_mtom
from xds.vocabulary import MEDIA_MULTIPART_RELATED, MEDIA_SOAP11, MEDIA_SOAP12, NS_SOAP11
from xds.xml import XmlError, parse_xml, qname, to_bytes

__all__ = [
    "AsyncSoapClient",
    "LeanAsyncSoapClient",
    "SoapClient",
    "SoapConnectionError",
    "SoapProtocolError",
    "SoapReply",
]

DEFAULT_MAX_ENVELOPE_BYTES: Final = 64 << 20
_USER_AGENT: Final = "xds-soap/1"
_SOAP11_ENVELOPE: Final = qname(NS_SOAP11, "Envelope")
_SOAP11_FAULT: Final = f"{{{NS_SOAP11}}}Body/{{{NS_SOAP11}}}Fault"

VerifyTypes = bool | str | ssl.SSLContext
CertTypes = str | tuple[str, str] | None


class SoapConnectionError(Exception):
    """The endpoint could not be reached, or the exchange broke off (connect, timeout, reset)."""


class SoapProtocolError(ValueError):
    """The endpoint answered, but not with a usable SOAP 1.2 reply."""

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


@dataclass(frozen=True, slots=True, eq=False)
class SoapReply:
    """A parsed reply. Attachment files live until :meth:`close` (or the ``with`` block ends)."""

    envelope: SoapEnvelope
    attachments: Mapping[str, Attachment]
    is_mtom: bool
    http_status: int
    spool: Spool

    @property
    def body(self) -> etree._Element:
        assert self.envelope.body is not None
        return self.envelope.body

    @property
    def action(self) -> str | None:
        return self.envelope.action

    def binary(self, element: etree._Element) -> Attachment:
        """The bytes of a base64Binary element: its XOP part or its decoded inline content."""
        return binary_content(element, self.attachments, spool=self.spool)

    def resolve_xop(self) -> dict[etree._Element, Attachment]:
        return resolve_xop(self.envelope.root, self.attachments)

    def close(self) -> None:
        """Delete the reply's spool files that were not moved or detached."""
        self.spool.cleanup()

    def __enter__(self) -> SoapReply:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class _Prepared:
    message_id: str
    content_type: str
    content: bytes | MtomPayload
    length: int | None


def _prepare(
    endpoint: str,
    action: str,
    body: etree._Element,
    *,
    attachments: Sequence[Attachment | OutgoingPart],
    mtom: bool,
    extra_headers: Iterable[etree._Element],
    message_id: str | None,
) -> _Prepared:
    msg_id = message_id or new_message_id()
    envelope = to_bytes(
        request_envelope(body, action=action, to=endpoint, message_id=msg_id, extra_headers=extra_headers),
        xml_declaration=True,
    )
    if not mtom and not attachments:
        return _Prepared(msg_id, soap_content_type(action), envelope, len(envelope))
    payload = encode_mtom(envelope, list(attachments), action=action)
    return _Prepared(msg_id, payload.content_type, payload, payload.length)


def _request_headers(prepared: _Prepared) -> dict[str, str]:
    headers = {"content-type": prepared.content_type, "accept": f"{MEDIA_SOAP12}, {MEDIA_MULTIPART_RELATED}"}
    if prepared.length is not None:
        headers["content-length"] = str(prepared.length)
    return headers


class _ResponseHead(Protocol):
    """What :class:`_ReplyReader` reads of a response: an httpx.Response, or a lean one."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


@dataclass(frozen=True, slots=True)
class _LeanHead:
    status_code: int
    headers: Mapping[str, str]


class _ReplyReader:
    """Decides how to read a response and turns it into a :class:`SoapReply` (shared logic)."""

    def __init__(
        self, *, spool: Spool, max_envelope_bytes: int, message_id: str, check_relates_to: bool
    ) -> None:
        self.spool = spool
        self.max_envelope_bytes = max_envelope_bytes
        self.message_id = message_id
        self.check_relates_to = check_relates_to
        self.receiver: MtomReceiver | None = None

    def start(self, response: _ResponseHead) -> None:
        value = response.headers.get("content-type")
        if not value:
            raise SoapProtocolError(
                f"HTTP {response.status_code} reply without a Content-Type", http_status=response.status_code
            )
        try:
            ctype = parse_content_type(value)
        except MimeError as exc:
            raise SoapProtocolError(str(exc), http_status=response.status_code) from None
        if ctype.media_type == MEDIA_MULTIPART_RELATED:
            try:
                self.receiver = MtomReceiver(
                    ctype, sink_factory=self.spool.sink, max_root_bytes=self.max_envelope_bytes
                )
            except MimeError as exc:
                raise SoapProtocolError(
                    f"unreadable MTOM reply: {exc}", http_status=response.status_code
                ) from None
        elif ctype.media_type not in (MEDIA_SOAP12, MEDIA_SOAP11):
            raise SoapProtocolError(
                f"HTTP {response.status_code} reply of type {ctype.media_type}, not SOAP",
                http_status=response.status_code,
            )

    def finish(self, response: _ResponseHead, simple_body: bytes | None) -> SoapReply:
        status = response.status_code
        attachments: Mapping[str, Attachment] = {}
        try:
            if self.receiver is not None:
                message = self.receiver.close()
                root = message.root
                attachments = message.attachments
            else:
                assert simple_body is not None
                root = simple_body
        except MimeError as exc:
            raise SoapProtocolError(f"unreadable MTOM reply: {exc}", http_status=status) from None
        try:
            document = parse_xml(root)
        except XmlError as exc:
            raise SoapProtocolError(f"HTTP {status} reply is not XML: {exc}", http_status=status) from None
        if document.tag == _SOAP11_ENVELOPE:
            # A SOAP 1.1 peer's fault still says why it refused; anything else from it is unusable.
            old_fault = document.find(_SOAP11_FAULT)
            if old_fault is not None:
                raise parse_fault(old_fault, http_status=status)
        try:
            envelope = parse_envelope(document, require_action=False, check_must_understand=False)
        except SoapFault as exc:
            raise SoapProtocolError(
                f"HTTP {status} reply is not a SOAP 1.2 envelope: {exc.reason}", http_status=status
            ) from None
        fault = envelope.fault(http_status=status)
        if fault is not None:
            raise fault
        if not 200 <= status < 300:
            raise SoapProtocolError(
                f"HTTP {status} with a SOAP reply that is not a fault", http_status=status
            )
        if envelope.body is None:
            raise SoapProtocolError("the reply's SOAP Body is empty", http_status=status)
        # ITI TF-2x V.3.2: the response's wsa:RelatesTo is the request's wsa:MessageID.
        if self.check_relates_to and envelope.relates_to != self.message_id:
            raise SoapProtocolError(
                f"reply wsa:RelatesTo {envelope.relates_to!r} does not match "
                f"the MessageID {self.message_id!r}",
                http_status=status,
            )
        return SoapReply(
            envelope=envelope,
            attachments=attachments,
            is_mtom=self.receiver is not None,
            http_status=status,
            spool=self.spool,
        )


class _ReplySettings(Protocol):
    """What every client here says about reading replies."""

    spool_dir: Path | None
    max_envelope_bytes: int
    check_relates_to: bool


def _reply_reader(client: _ReplySettings, prepared: _Prepared) -> _ReplyReader:
    """The reader of the reply to ``prepared``, with a fresh spool for its attachments (in
    ``client.spool_dir``, or the system's temporary directory)."""
    return _ReplyReader(
        spool=Spool(client.spool_dir),
        max_envelope_bytes=client.max_envelope_bytes,
        message_id=prepared.message_id,
        check_relates_to=client.check_relates_to,
    )


def _identity(response: _ResponseHead) -> bool:
    return response.headers.get("content-encoding", "identity").strip().lower() in ("", "identity")


def _raw_iter(response: httpx.Response) -> Iterator[bytes]:
    """The body in 1 MiB chunks: raw (no content decoding) unless the server compressed it."""
    if response.is_stream_consumed:  # already read (e.g. a mock transport's response)
        yield response.content
    elif _identity(response):
        yield from response.iter_raw(CHUNK_SIZE)
    else:
        yield from response.iter_bytes(CHUNK_SIZE)


async def _araw_iter(response: httpx.Response) -> AsyncIterator[bytes]:
    if response.is_stream_consumed:
        yield response.content
    elif _identity(response):
        async for chunk in response.aiter_raw(CHUNK_SIZE):
            yield chunk
    else:
        async for chunk in response.aiter_bytes(CHUNK_SIZE):
            yield chunk


def _read_limited(chunks: Iterable[bytes], limit: int, status: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise SoapProtocolError(f"reply larger than {limit} bytes", http_status=status)
        parts.append(chunk)
    return b"".join(parts)


def _timeout(timeout: float) -> httpx.Timeout:
    return httpx.Timeout(timeout)


class SoapClient:
    """A synchronous SOAP 1.2 client for one endpoint (see the module documentation).

    Parameters
    ----------
    endpoint:
        The service URL (also sent as ``wsa:To``).
    timeout:
        Seconds for connect, each read and each write.
    verify, cert:
        TLS server verification and client certificate, as httpx takes them.
    transport:
        An httpx transport (e.g. ``httpx.MockTransport`` or ``httpx.ASGITransport`` in tests).
    spool_dir:
        Where reply attachments are spooled (the system temp directory by default).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float = 60.0,
        verify: VerifyTypes = True,
        cert: CertTypes = None,
        transport: httpx.BaseTransport | None = None,
        spool_dir: Path | str | None = None,
        max_envelope_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES,
        headers: Mapping[str, str] | None = None,
        check_relates_to: bool = True,
    ) -> None:
        self.endpoint = endpoint
        self.spool_dir = Path(spool_dir) if spool_dir is not None else None
        self.max_envelope_bytes = max_envelope_bytes
        self.check_relates_to = check_relates_to
        self._http = httpx.Client(
            timeout=_timeout(timeout),
            verify=verify,
            cert=cert,
            transport=transport,
            headers={"user-agent": _USER_AGENT, **(headers or {})},
        )

    def call(
        self,
        action: str,
        body: etree._Element,
        *,
        attachments: Sequence[Attachment | OutgoingPart] = (),
        mtom: bool = False,
        extra_headers: Iterable[etree._Element] = (),
        message_id: str | None = None,
    ) -> SoapReply:
        """Send one request and return the parsed reply (raises SoapFault for a fault reply)."""
        prepared = _prepare(
            self.endpoint,
            action,
            body,
            attachments=attachments,
            mtom=mtom,
            extra_headers=extra_headers,
            message_id=message_id,
        )
        content = prepared.content if isinstance(prepared.content, bytes) else iter(prepared.content)
        reader = _reply_reader(self, prepared)
        spool = reader.spool
        try:
            with self._http.stream(
                "POST", self.endpoint, content=content, headers=_request_headers(prepared)
            ) as response:
                reader.start(response)
                chunks = _raw_iter(response)
                if reader.receiver is not None:
                    for chunk in chunks:
                        reader.receiver.feed(chunk)
                    simple = None
                else:
                    simple = _read_limited(chunks, self.max_envelope_bytes, response.status_code)
            return reader.finish(response, simple)
        except httpx.TransportError as exc:
            spool.cleanup()
            raise SoapConnectionError(f"{self.endpoint}: {type(exc).__name__}: {exc}") from exc
        except MimeError as exc:
            spool.cleanup()
            raise SoapProtocolError(f"unreadable MTOM reply: {exc}") from None
        except BaseException:
            spool.cleanup()
            raise

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SoapClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _AsyncClosing:
    """``async with`` for the asynchronous clients: ``aclose`` closes their HTTP client."""

    _http: Any

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class AsyncSoapClient(_AsyncClosing):
    """The asynchronous twin of :class:`SoapClient` (same parameters and behaviour)."""

    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float = 60.0,
        verify: VerifyTypes = True,
        cert: CertTypes = None,
        transport: httpx.AsyncBaseTransport | None = None,
        spool_dir: Path | str | None = None,
        max_envelope_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES,
        headers: Mapping[str, str] | None = None,
        check_relates_to: bool = True,
    ) -> None:
        self.endpoint = endpoint
        self.spool_dir = Path(spool_dir) if spool_dir is not None else None
        self.max_envelope_bytes = max_envelope_bytes
        self.check_relates_to = check_relates_to
        self._http = httpx.AsyncClient(
            timeout=_timeout(timeout),
            verify=verify,
            cert=cert,
            transport=transport,
            headers={"user-agent": _USER_AGENT, **(headers or {})},
        )

    async def call(
        self,
        action: str,
        body: etree._Element,
        *,
        attachments: Sequence[Attachment | OutgoingPart] = (),
        mtom: bool = False,
        extra_headers: Iterable[etree._Element] = (),
        message_id: str | None = None,
    ) -> SoapReply:
        """Send one request and return the parsed reply (raises SoapFault for a fault reply)."""
        prepared = _prepare(
            self.endpoint,
            action,
            body,
            attachments=attachments,
            mtom=mtom,
            extra_headers=extra_headers,
            message_id=message_id,
        )
        # File reads of an MTOM body run in worker threads (MtomPayload.__aiter__).
        content = prepared.content if isinstance(prepared.content, bytes) else prepared.content.__aiter__()
        reader = _reply_reader(self, prepared)
        spool = reader.spool
        try:
            async with self._http.stream(
                "POST", self.endpoint, content=content, headers=_request_headers(prepared)
            ) as response:
                reader.start(response)
                chunks = _araw_iter(response)
                simple: bytes | None = None
                if reader.receiver is not None:
                    length = response.headers.get("content-length")
                    offload = length is None or not length.isdigit() or int(length) > CHUNK_SIZE
                    await feed_async(reader.receiver, chunks, offload=offload)
                else:
                    parts: list[bytes] = []
                    total = 0
                    async for chunk in chunks:
                        total += len(chunk)
                        if total > self.max_envelope_bytes:
                            raise SoapProtocolError(
                                f"reply larger than {self.max_envelope_bytes} bytes",
                                http_status=response.status_code,
                            )
                        parts.append(chunk)
                    simple = b"".join(parts)
            return reader.finish(response, simple)
        except httpx.TransportError as exc:
            await anyio.to_thread.run_sync(spool.cleanup)
            raise SoapConnectionError(f"{self.endpoint}: {type(exc).__name__}: {exc}") from exc
        except MimeError as exc:
            await anyio.to_thread.run_sync(spool.cleanup)
            raise SoapProtocolError(f"unreadable MTOM reply: {exc}") from None
        except BaseException:
            spool.cleanup()
            raise



def _ssl_context(verify: VerifyTypes, cert: CertTypes) -> ssl.SSLContext:
    """An SSL context from httpx-style ``verify`` and ``cert`` arguments."""
    if isinstance(verify, ssl.SSLContext):
        context = verify
    elif verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif isinstance(verify, str):
        context = ssl.create_default_context(cafile=verify)
    else:
        context = ssl.create_default_context()
    if cert is not None:
        certfile, keyfile = (cert, None) if isinstance(cert, str) else cert
        context.load_cert_chain(certfile, keyfile)
    return context


class LeanAsyncSoapClient(_AsyncClosing):
    """An :class:`AsyncSoapClient` for simple SOAP 1.2 requests (no attachments) on the lean
    HTTP/1.1 client of :mod:`xds.http.http11`: one write per request, keep-alive connections,
    a fraction of httpx's CPU per call. Replies are read whole (at most ``max_envelope_bytes``;
    an MTOM reply is decoded like :class:`AsyncSoapClient` does). Runs on asyncio event loops.

    A :class:`SoapConnectionError` whose ``__cause__`` is
    :class:`~xds.http.http11.RequestNotSent` means the endpoint received nothing.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float = 60.0,
        verify: VerifyTypes = True,
        cert: CertTypes = None,
        spool_dir: Path | str | None = None,
        max_envelope_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES,
        headers: Mapping[str, str] | None = None,
        check_relates_to: bool = True,
    ) -> None:
        self.endpoint = endpoint
        self.spool_dir = Path(spool_dir) if spool_dir is not None else None
        self.max_envelope_bytes = max_envelope_bytes
        self.check_relates_to = check_relates_to
        secure = endpoint.lower().startswith("https:")
        self._http = LeanHttpClient(
            endpoint,
            timeout=timeout,
            ssl_context=_ssl_context(verify, cert) if secure else None,
            max_response_bytes=max_envelope_bytes,
            headers={"user-agent": _USER_AGENT, "accept-encoding": "identity", **(headers or {})},
        )

    async def call(
        self,
        action: str,
        body: etree._Element,
        *,
        extra_headers: Iterable[etree._Element] = (),
        message_id: str | None = None,
    ) -> SoapReply:
        """Send one request and return the parsed reply (raises SoapFault for a fault reply)."""
        prepared = _prepare(
            self.endpoint,
            action,
            body,
            attachments=(),
            mtom=False,
            extra_headers=extra_headers,
            message_id=message_id,
        )
        assert isinstance(prepared.content, bytes)
        try:
            response = await self._http.post(prepared.content, headers=_request_headers(prepared))
        except (RequestNotSent, HttpExchangeError) as exc:
            raise SoapConnectionError(f"{self.endpoint}: {exc}") from exc
        head = _LeanHead(response.status, response.headers)
        if not _identity(head):
            raise SoapProtocolError(
                f"HTTP {response.status} reply with Content-Encoding {response.headers.get('content-encoding')!r}",
                http_status=response.status,
            )
        reader = _reply_reader(self, prepared)
        spool = reader.spool
        try:
            reader.start(head)
            if reader.receiver is not None:
                reader.receiver.feed(response.body)
                return reader.finish(head, None)
            return reader.finish(head, response.body)
        except MimeError as exc:
            spool.cleanup()
            raise SoapProtocolError(f"unreadable MTOM reply: {exc}", http_status=response.status) from None
        except BaseException:
            spool.cleanup()
            raise

