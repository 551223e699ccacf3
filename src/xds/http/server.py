"""The SOAP 1.2 HTTP server: a Starlette ASGI app that dispatches on wsa:Action.

An actor describes each endpoint as a :class:`SoapService` (a path, ``wsa:Action`` -> async
handler, optionally a WSDL) and gets an ASGI app from :func:`soap_app`::

    async def stored_query(request: SoapRequest) -> SoapResponse:
        ...
        return SoapResponse(action=Action.ITI18_RESPONSE, body=response_element)

    app = soap_app(
        services=[SoapService(path="/registry", handlers={Action.ITI18: stored_query},
                              wsdl=WsdlProvider(DOCUMENT_REGISTRY, schema_dir=...))],
        spool_dir=Path("/var/lib/xds/spool"),
        max_body_bytes=8 << 30,
    )
    run_server(app, host="0.0.0.0", port=8080)

What the app does for a POST (SOAP 1.2 Part 2 §7; ITI TF-2x Appendix V; xds-notes §1.3-1.4):

* Content-Type ``application/soap+xml`` is simple SOAP, ``multipart/related`` with
  ``type="application/xop+xml"`` is MTOM; ``text/xml`` (SOAP 1.1) is a VersionMismatch fault;
  anything else 415 with a Sender fault. SOAPAction is ignored: dispatch is on wsa:Action.
* The body is streamed: bytes are counted and the request fails with 413 (Sender fault) past
  ``max_body_bytes``; a simple SOAP body or an MTOM root part is held in memory only up to
  ``max_envelope_bytes``; MTOM attachments go straight to spool files under ``spool_dir``
  (hashed on the fly, in a worker thread for large bodies).
* The envelope is parsed with the hardened parser and checked (:mod:`xds.soap.envelope`); an
  action the service does not serve is a Sender fault with subcode ``wsa:ActionNotSupported``.
* The handler gets a :class:`SoapRequest`; its :class:`SoapResponse` is sent as simple SOAP or
  as MTOM (1 MiB streamed chunks, Content-Length when known), by default in the packaging of the
  request (an MTOM answer whose parts are all in memory, up to 8 MiB, goes out as one body).
  A :class:`~xds.soap.fault.SoapFault` raised by a handler is sent as is; any other
  exception becomes a Receiver fault (HTTP 500), is logged, and the service keeps serving.
* Spool files of the request are deleted once the response has been sent, except those a
  handler claimed with :meth:`Attachment.move_to` or :meth:`Attachment.detach`.

GET ``<path>?wsdl`` serves the WSDL (``soap12:address`` = the URL the client used),
``<path>?xsd=<name>`` a schema from the configured schema directory (404 otherwise), and
``<path>`` alone a short text/plain description.

Deployment: :func:`run_server` runs uvicorn (uvloop + httptools) in-process, with TLS and client
certificates when configured; :class:`ServerThread` runs one in a background thread (tests,
simulators). For several processes use gunicorn with uvicorn workers and an app factory::

    gunicorn -w 4 -k uvicorn.workers.UvicornWorker 'imageshare.asgi:create_app()'

(``uvicorn.workers`` is deprecated in favour of the ``uvicorn-worker`` package, whose
``uvicorn_worker.UvicornWorker`` is a drop-in replacement.) The TLS client-certificate
extension needs :class:`TlsHttpToolsProtocol` as uvicorn's ``http`` protocol class, which
:func:`run_server` and :class:`ServerThread` select when TLS is on.

Public API::

    Handler = Callable[[SoapRequest], Awaitable[SoapResponse]]
    SoapService(path, handlers, *, wsdl=None, name="", understood_headers=UNDERSTOOD_HEADERS)
    SoapRequest   # envelope, action, message_id, headers, body, attachments, is_mtom, client,
                  # tls_client_cert, http_headers, endpoint_url, spool,
                  # binary(element) -> Attachment, resolve_xop() -> dict
    SoapResponse(action, body, *, attachments=(), mtom=None, extra_headers=())
    soap_app(*, services, spool_dir, max_body_bytes=..., max_envelope_bytes=..., ...) -> Starlette
    soap_routes(...) -> list[Route]          # the same routes, to mount into another app
    run_server(app, *, host, port, workers=1, ssl_certfile=None, ...) -> None
    ServerThread(app, *, host="127.0.0.1", port=0, ...)   # context manager; .url, .port
"""

from __future__ import annotations

import logging
import socket
import ssl as ssl_module
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.to_thread
import uvicorn
from lxml import etree
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from xds.soap.attachments import DEFAULT_MEMORY_THRESHOLD, Attachment, Spool
from xds.soap.envelope import (
    UNDERSTOOD_HEADERS,
    Packaging,
    SoapEnvelope,
    build_response,
    parse_envelope_bytes,
    request_packaging,
    soap_content_type,
)
from xds.soap.fault import FaultCode, SoapFault
from xds.soap.mtom import MtomReceiver, binary_content, feed_async, resolve_xop
from xds.soap.mtom_decode import MessageTooLarge, MimeError
from xds.soap.mtom_encode import OutgoingPart, encode_mtom
from xds.vocabulary import WSA_FAULT_ACTION, WsaFault
from xds.wsdl import WsdlProvider

__all__ = [
    "Handler",
    "ServerThread",
    "SoapRequest",
    "SoapResponse",
    "SoapService",
    "TlsHttpToolsProtocol",
    "run_server",
    "soap_app",
    "soap_routes",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES: Final = 8 << 30
DEFAULT_MAX_ENVELOPE_BYTES: Final = 64 << 20
#: Below this (declared) size an MTOM body is decoded on the event loop; above, in a thread.
_OFFLOAD_ABOVE: Final = 1 << 20
#: An MTOM response whose parts are all in memory and whose length is at most this is sent as one
#: body (a streamed response costs a worker-thread hop per chunk).
_JOIN_BELOW: Final = 8 << 20


@dataclass(frozen=True, slots=True, eq=False)
class SoapRequest:
    """What a handler receives: the checked envelope, its attachments and the connection."""

    envelope: SoapEnvelope
    attachments: Mapping[str, Attachment]
    is_mtom: bool
    client: tuple[str, int] | None
    tls_client_cert: str | None
    http_headers: Mapping[str, str]
    endpoint_url: str
    spool: Spool

    @property
    def action(self) -> str:
        assert self.envelope.action is not None
        return self.envelope.action

    @property
    def message_id(self) -> str | None:
        return self.envelope.message_id

    @property
    def headers(self) -> tuple[etree._Element, ...]:
        """The SOAP header blocks (for WS-Security processing)."""
        return self.envelope.headers

    @property
    def body(self) -> etree._Element:
        """The first child of soap:Body (the transaction's request element)."""
        assert self.envelope.body is not None
        return self.envelope.body

    def binary(self, element: etree._Element) -> Attachment:
        """The bytes of a base64Binary element: its XOP part or its decoded inline content."""
        return binary_content(element, self.attachments, spool=self.spool)

    def resolve_xop(self) -> dict[etree._Element, Attachment]:
        """Every element of the envelope that holds an xop:Include, mapped to its attachment."""
        return resolve_xop(self.envelope.root, self.attachments)


@dataclass(frozen=True, slots=True, eq=False)
class SoapResponse:
    """What a handler returns.

    ``attachments`` are sent as MTOM parts: :class:`Attachment` objects (under their own
    Content-ID) or :class:`OutgoingPart` values (bytes, a file path or an iterator of bytes).
    ``mtom`` None answers in the packaging of the request (MTOM whenever there are
    attachments); True forces MTOM (ITI-43 and RAD-69 always answer MTOM).
    """

    action: str
    body: etree._Element
    attachments: Sequence[Attachment | OutgoingPart] = ()
    mtom: bool | None = None
    extra_headers: Sequence[etree._Element] = ()

    def __post_init__(self) -> None:
        if self.mtom is False and self.attachments:
            raise ValueError("a response with attachments must be sent as MTOM")


Handler = Callable[[SoapRequest], Awaitable[SoapResponse]]


@dataclass(frozen=True, slots=True)
class SoapService:
    """One SOAP endpoint: its path, the actions it serves and (optionally) its WSDL."""

    path: str
    handlers: Mapping[str, Handler]
    wsdl: WsdlProvider | None = None
    name: str = ""
    understood_headers: frozenset[str] = field(default=UNDERSTOOD_HEADERS)

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ValueError("a service path starts with '/'")


@dataclass(frozen=True, slots=True)
class _Limits:
    spool_dir: Path
    max_body_bytes: int
    max_envelope_bytes: int
    memory_threshold: int
    max_xml_depth: int | None
    write_behind: bool = False


#: The most of a refused request's body read (and dropped) before answering it.
_DRAIN_LIMIT: Final = 1 << 20
#: The same for a body refused as too large: what is left of it, past the limit, when that is
#: at most this much (a client that sends it all before reading gets the 413 instead of a reset).
_OVERSIZE_DRAIN_LIMIT: Final = 16 << 20
#: Longest wait for the rest of a refused body.
_DRAIN_SECONDS: Final = 2.0


class _BodyStream:
    """Counts a request body as it streams and remembers whether it was read to the end."""

    def __init__(self, request: Request) -> None:
        self._request = request
        self.complete = False
        self.received = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        # ASGI http.request messages read here (not through Request.stream) so that ``complete``
        # is known even when the reader stops early: :meth:`drain` must not wait for more.
        while not self.complete:
            message = await self._request.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            chunk = message.get("body", b"")
            if not message.get("more_body", False):
                self.complete = True
            if chunk:
                self.received += len(chunk)
                yield chunk

    async def drain(self, limit: int) -> bool:
        """Read and drop what is left of the body, up to ``limit`` bytes; True when it was all
        read. A request refused before its body was read (a wrong Content-Type, say) is drained
        before the answer: closing a connection whose request bytes are still arriving makes the
        kernel reset it, and the client may lose the answer (RFC 9112 §9.6). A larger rest, or
        one that does not arrive within :data:`_DRAIN_SECONDS` (a client waiting for the answer
        before it sends), is not worth waiting for: the connection is closed instead."""
        total = 0
        with anyio.move_on_after(_DRAIN_SECONDS):
            try:
                async for chunk in self.chunks():
                    total += len(chunk)
                    if total > limit:
                        return False
            except ClientDisconnect:
                return False
            return True
        return False

    async def read(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        async for chunk in self.chunks():
            total += len(chunk)
            if total > limit:
                raise MessageTooLarge(f"SOAP message larger than {limit} bytes", limit=limit)
            parts.append(chunk)
        return b"".join(parts)


def _fault_response(fault: SoapFault, *, close: bool = False) -> Response:
    headers = {"connection": "close"} if close else None
    return Response(
        fault.to_envelope(),
        status_code=fault.status,
        media_type=soap_content_type(WSA_FAULT_ACTION),
        headers=headers,
    )


def _endpoint_url(request: Request) -> str:
    return str(request.url.replace(query="", fragment=""))


def _client_cert(scope: Scope) -> str | None:
    tls = scope.get("extensions", {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or ()
    return chain[0] if chain else None


class _SoapEndpoint:
    """The ASGI app of one service (mounted by a Starlette Route)."""

    def __init__(self, service: SoapService, limits: _Limits) -> None:
        self.service = service
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if request.method in ("GET", "HEAD"):
            await self._get(request)(scope, receive, send)
            return
        spool = Spool(
            self.limits.spool_dir, memory_threshold=self.limits.memory_threshold, write_behind=self.limits.write_behind
        )
        try:
            response = await self._post(request, spool)
            if not isinstance(response, StreamingResponse):
                # The answer is complete in memory: the request's files can go before it is sent,
                # so a client that has the answer never sees them (a streamed answer cleans up
                # after its last file read, see _render).
                await _cleanup(spool)
            await response(scope, receive, send)
        finally:
            await _cleanup(spool)

    # -- GET: WSDL, schemas, description ---------------------------------------------------------
    def _get(self, request: Request) -> Response:
        query = {key.lower(): value for key, value in request.query_params.items()}
        url = _endpoint_url(request)
        wsdl = self.service.wsdl
        if "wsdl" in query:
            if wsdl is None:
                return PlainTextResponse("no WSDL for this endpoint\n", status_code=404)
            return Response(wsdl.wsdl(url), media_type="text/xml; charset=utf-8")
        if "xsd" in query:
            data = wsdl.schema(query["xsd"], endpoint_url=url) if wsdl is not None else None
            if data is None:
                return PlainTextResponse("schema not found\n", status_code=404)
            return Response(data, media_type="text/xml; charset=utf-8")
        lines = [
            f"{self.service.name or 'SOAP 1.2 endpoint'} at {url}",
            "POST SOAP 1.2 (application/soap+xml or MTOM/XOP) with one of these wsa:Action values:",
            *(f"  {action}" for action in sorted(self.service.handlers)),
        ]
        if wsdl is not None:
            lines.append(f"WSDL: {url}?wsdl")
        return PlainTextResponse("\n".join(lines) + "\n")

    # -- POST: one SOAP exchange -----------------------------------------------------------------
    async def _post(self, request: Request, spool: Spool) -> Response:
        body = _BodyStream(request)
        relates_to: str | None = None
        declared: int | None = None
        try:
            packaging, ctype = request_packaging(request.headers.get("content-type"))
            declared = _content_length(request)
            limits = self.limits
            if declared is not None and declared > limits.max_body_bytes:
                raise MessageTooLarge(
                    f"body larger than {limits.max_body_bytes} bytes", limit=limits.max_body_bytes
                )
            if packaging is Packaging.SIMPLE:
                envelope_bytes = await body.read(min(limits.max_body_bytes, limits.max_envelope_bytes))
                attachments: Mapping[str, Attachment] = {}
            else:
                receiver = MtomReceiver(
                    ctype, sink_factory=spool.sink, max_root_bytes=limits.max_envelope_bytes
                )
                await feed_async(
                    receiver,
                    body.chunks(),
                    max_bytes=limits.max_body_bytes,
                    offload=declared is None or declared > _OFFLOAD_ABOVE,
                )
                message = receiver.close()
                envelope_bytes = message.root
                attachments = message.attachments
            envelope = parse_envelope_bytes(
                envelope_bytes, max_depth=limits.max_xml_depth, understood=self.service.understood_headers
            )
            relates_to = envelope.message_id
            if envelope.body is None:
                raise SoapFault(FaultCode.SENDER, "the SOAP Body is empty", relates_to=relates_to)
            assert envelope.action is not None
            handler = self.service.handlers.get(envelope.action)
            if handler is None:
                # WS-Addressing SOAP Binding §6.4.4; ITI TF-2x V.3.2.
                raise SoapFault(
                    FaultCode.SENDER,
                    f"the action {envelope.action!r} is not supported by this endpoint",
                    subcode=WsaFault.ACTION_NOT_SUPPORTED,
                    relates_to=relates_to,
                )
            soap_request = SoapRequest(
                envelope=envelope,
                attachments=attachments,
                is_mtom=packaging is Packaging.MTOM,
                client=(request.client.host, request.client.port) if request.client else None,
                tls_client_cert=_client_cert(request.scope),
                http_headers=request.headers,
                endpoint_url=_endpoint_url(request),
                spool=spool,
            )
            reply = await self._call(handler, soap_request)
            return self._render(reply, request_mtom=soap_request.is_mtom, relates_to=relates_to, spool=spool)
        except MessageTooLarge as exc:
            log.info("request rejected (413): %s", exc)
            too_large = SoapFault(FaultCode.SENDER, str(exc), http_status=413, relates_to=relates_to)
            rest = None if declared is None else declared - body.received
            drained = body.complete or (
                (rest is None or rest <= _OVERSIZE_DRAIN_LIMIT) and await body.drain(_OVERSIZE_DRAIN_LIMIT)
            )
            return _fault_response(too_large, close=not drained)
        except MimeError as exc:
            log.info("request rejected: malformed MIME: %s", exc)
            malformed = SoapFault(
                FaultCode.SENDER, f"malformed MTOM/MIME package: {exc}", relates_to=relates_to
            )
            return _fault_response(malformed, close=not await body.drain(_DRAIN_LIMIT))
        except SoapFault as rejected:
            log.info("request rejected: %s", rejected)
            if rejected.relates_to is None:
                rejected.relates_to = relates_to
            return _fault_response(rejected, close=not await body.drain(_DRAIN_LIMIT))
        except ClientDisconnect:
            log.info("client disconnected during the request")
            return Response(status_code=400, headers={"connection": "close"})
        except Exception as exc:  # a failure of ours (disk full, a bad response): Receiver fault
            log.exception("request failed")
            failure = SoapFault(
                FaultCode.RECEIVER,
                f"the service failed to process the request ({type(exc).__name__})",
                relates_to=relates_to,
            )
            return _fault_response(failure, close=not body.complete)

    async def _call(self, handler: Handler, request: SoapRequest) -> SoapResponse:
        try:
            reply = await handler(request)
        except SoapFault:
            raise
        except Exception as exc:
            log.exception("handler for %s failed", request.action)
            raise SoapFault(
                FaultCode.RECEIVER,
                f"the service failed to process the request ({type(exc).__name__})",
                relates_to=request.message_id,
            ) from exc
        if not isinstance(reply, SoapResponse):
            log.error("handler for %s returned %r, not a SoapResponse", request.action, type(reply))
            raise SoapFault(
                FaultCode.RECEIVER, "the service produced no response", relates_to=request.message_id
            )
        return reply

    def _render(
        self, reply: SoapResponse, *, request_mtom: bool, relates_to: str | None, spool: Spool
    ) -> Response:
        envelope = build_response(
            reply.body, action=reply.action, relates_to=relates_to, extra_headers=reply.extra_headers
        )
        mtom = reply.mtom if reply.mtom is not None else (request_mtom or bool(reply.attachments))
        if not mtom:
            return Response(envelope, media_type=soap_content_type(reply.action))
        payload = encode_mtom(envelope, list(reply.attachments), action=reply.action)
        headers = {"content-type": payload.content_type}
        if payload.in_memory and payload.length is not None and payload.length <= _JOIN_BELOW:
            # Every part is in memory already: one body sent in one write, no worker-thread hop
            # per chunk (the spool is cleaned before sending, as for any complete answer).
            return Response(b"".join(payload.chunks), headers=headers)
        if payload.length is not None:
            headers["content-length"] = str(payload.length)
        # A sync iterator: Starlette pulls each 1 MiB chunk in a worker thread (file reads).
        return StreamingResponse(_clean_before_last(payload.chunks, spool), headers=headers)


async def _cleanup(spool: Spool) -> None:
    if spool.has_files:
        await anyio.to_thread.run_sync(spool.cleanup)
    else:
        spool.cleanup()


def _clean_before_last(chunks: Iterator[bytes], spool: Spool) -> Iterator[bytes]:
    """Yield ``chunks``, cleaning the spool once every chunk (every file read) has been produced
    and before the last one goes out, so the client's complete answer implies a clean spool."""
    previous: bytes | None = None
    for chunk in chunks:
        if previous is not None:
            yield previous
        previous = chunk
    spool.cleanup()
    if previous is not None:
        yield previous


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        raise SoapFault(FaultCode.SENDER, f"invalid Content-Length {value!r}") from None
    return length if length >= 0 else None


def soap_routes(
    *,
    services: Sequence[SoapService],
    spool_dir: Path | str,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_envelope_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES,
    memory_threshold: int = DEFAULT_MEMORY_THRESHOLD,
    max_xml_depth: int | None = None,
    write_behind: bool = False,
) -> list[Route]:
    """The Starlette routes of :func:`soap_app`, to combine with other routes in one app.

    ``write_behind``: the attachments' spool files are handed to the disk as they are written,
    for services that fsync what they keep (:class:`xds.durable.WriteBehind`)."""
    directory = Path(spool_dir)
    directory.mkdir(parents=True, exist_ok=True)
    limits = _Limits(
        spool_dir=directory,
        max_body_bytes=max_body_bytes,
        max_envelope_bytes=max_envelope_bytes,
        memory_threshold=memory_threshold,
        max_xml_depth=max_xml_depth,
        write_behind=write_behind,
    )
    paths = [service.path for service in services]
    if len(set(paths)) != len(paths):
        raise ValueError("two services share a path")
    return [
        Route(
            service.path,
            endpoint=_SoapEndpoint(service, limits),
            methods=["GET", "POST"],
            name=service.name or None,
        )
        for service in services
    ]


def soap_app(
    *,
    services: Sequence[SoapService],
    spool_dir: Path | str,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_envelope_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES,
    memory_threshold: int = DEFAULT_MEMORY_THRESHOLD,
    max_xml_depth: int | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    debug: bool = False,
) -> Starlette:
    """An ASGI app serving ``services`` (see the module documentation).

    Parameters
    ----------
    services:
        The SOAP endpoints, each at its own path.
    spool_dir:
        Where MTOM attachments are spooled (created if missing). Put it on the filesystem of the
        document store so :meth:`Attachment.move_to` is a rename.
    max_body_bytes:
        Largest request body (HTTP 413 beyond).
    max_envelope_bytes:
        Largest SOAP envelope held in memory: a simple SOAP body or an MTOM root part.
    memory_threshold:
        Attachments up to this size stay in memory.
    max_xml_depth:
        Deepest element nesting accepted (libxml2's 256 when None).
    extra_routes:
        Other routes of the same app (web pages, WADO, admin API).
    """
    routes: list[BaseRoute] = list(
        soap_routes(
            services=services,
            spool_dir=spool_dir,
            max_body_bytes=max_body_bytes,
            max_envelope_bytes=max_envelope_bytes,
            memory_threshold=memory_threshold,
            max_xml_depth=max_xml_depth,
        )
    )
    routes.extend(extra_routes)
    return Starlette(routes=routes, debug=debug)


# -- running ---------------------------------------------------------------------------------------
class TlsHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol plus the ASGI TLS extension (the client certificate).

    Sets ``scope["extensions"]["tls"]["client_cert_chain"]`` to the peer's certificate in PEM
    (the leaf only: Python's ssl module does not expose the chain), which
    :attr:`SoapRequest.tls_client_cert` reads.
    """

    def on_message_begin(self) -> None:
        super().on_message_begin()
        ssl_object = self.transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return
        der = ssl_object.getpeercert(binary_form=True)
        tls: dict[str, Any] = {
            "client_cert_chain": [ssl_module.DER_cert_to_PEM_cert(der)] if der else [],
            "tls_version": None,
            "cipher_suite": None,
        }
        scope: Any = self.scope
        scope.setdefault("extensions", {})["tls"] = tls


def _uvicorn_config(
    app: ASGIApp | str,
    *,
    host: str,
    port: int,
    workers: int,
    ssl_certfile: str | Path | None,
    ssl_keyfile: str | Path | None,
    ssl_ca_certs: str | Path | None,
    require_client_cert: bool,
    log_level: str,
    factory: bool,
    loop: str,
) -> dict[str, Any]:
    tls = ssl_certfile is not None
    if ssl_ca_certs is None:
        cert_reqs = ssl_module.CERT_NONE
    else:
        cert_reqs = ssl_module.CERT_REQUIRED if require_client_cert else ssl_module.CERT_OPTIONAL
    return {
        "app": app,
        "host": host,
        "port": port,
        "workers": workers,
        "loop": loop,
        "http": TlsHttpToolsProtocol if tls else "httptools",
        "ssl_certfile": str(ssl_certfile) if ssl_certfile else None,
        "ssl_keyfile": str(ssl_keyfile) if ssl_keyfile else None,
        "ssl_ca_certs": str(ssl_ca_certs) if ssl_ca_certs else None,
        "ssl_cert_reqs": cert_reqs,
        "log_level": log_level,
        "factory": factory,
        "lifespan": "auto",
        "server_header": False,
    }


def run_server(
    app: ASGIApp | str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    ssl_certfile: str | Path | None = None,
    ssl_keyfile: str | Path | None = None,
    ssl_ca_certs: str | Path | None = None,
    require_client_cert: bool = False,
    log_level: str = "info",
    factory: bool = False,
) -> None:
    """Serve ``app`` with uvicorn (uvloop + httptools) until interrupted.

    ``app`` may be an ASGI app or, for ``workers > 1``, an import string ("module:attr"; with
    ``factory`` a callable returning the app). TLS is on when ``ssl_certfile`` is given; client
    certificates are requested when ``ssl_ca_certs`` is given and required with
    ``require_client_cert``.
    """
    if workers > 1 and not isinstance(app, str):
        raise ValueError("several workers need the app as an import string ('module:attr')")
    uvicorn.run(
        **_uvicorn_config(
            app,
            host=host,
            port=port,
            workers=workers,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
            ssl_ca_certs=ssl_ca_certs,
            require_client_cert=require_client_cert,
            log_level=log_level,
            factory=factory,
            loop="uvloop",
        )
    )


class ServerThread:
    """Runs an ASGI app under uvicorn in a background thread (for tests and simulators).

    The socket is bound before the thread starts (port 0 picks a free port), so :attr:`url`
    is valid on entry::

        with ServerThread(app) as server:
            httpx.post(server.url + "/registry", ...)
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_certfile: str | Path | None = None,
        ssl_keyfile: str | Path | None = None,
        ssl_ca_certs: str | Path | None = None,
        require_client_cert: bool = False,
        log_level: str = "warning",
        startup_timeout: float = 10.0,
    ) -> None:
        self._socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        scheme = "https" if ssl_certfile else "http"
        shown = f"[{host}]" if ":" in host else host
        #: Base URL of the server, without a trailing slash.
        self.url = f"{scheme}://{shown}:{self.port}"
        config = _uvicorn_config(
            app,
            host=host,
            port=self.port,
            workers=1,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
            ssl_ca_certs=ssl_ca_certs,
            require_client_cert=require_client_cert,
            log_level=log_level,
            factory=False,
            loop="asyncio",
        )
        config.pop("workers")
        self._server = uvicorn.Server(uvicorn.Config(**config))
        self._thread = threading.Thread(target=self._run, name=f"uvicorn-{self.port}", daemon=True)
        self._startup_timeout = startup_timeout

    def _run(self) -> None:
        self._server.run(sockets=[self._socket])

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the server thread stopped during startup")
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start in time")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()

    def __enter__(self) -> ServerThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
