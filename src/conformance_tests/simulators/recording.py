"""Recording what a simulated peer receives, byte for byte, and reading it back independently.

:class:`Recorder` is ASGI middleware that files every POST (request and response bytes) as an
:class:`~conformance_tests.evidence.Exchange` before the SOAP layer sees it, so a request the
layer refuses (SOAP 1.1, no wsa:Action) is on record too; a GET to one of ``get_paths`` (e.g. a
WADO-URI endpoint) is recorded with its query string in the exchange's target. :func:`read_message` reads a recorded
request with the runner's own code: the packaging, the SOAP version, the WS-Addressing headers
and the Body's first element, so that a test step can judge exactly what the actor under test
sent (ITI TF-2x Appendix V; xds-notes §1.3-1.4).

Public API::

    Recorder(app, file_exchange, *, labels, get_paths=())  # labels: path -> label
    ReceivedMessage(exchange, path, content_type, mtom, soap_version, actions, message_id, to,
                    must_understand, body, parts, problem)
    read_message(exchange) -> ReceivedMessage
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from lxml import etree
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conformance_tests.evidence import Exchange
from xds.soap import MimeError, MultipartDecoder, PartData, PartHeaders, normalize_content_id, parse_content_type
from xds.vocabulary import NS_SOAP11, NS_SOAP12, NS_WSA, NS_XOP
from xds.xml import XmlError, parse_xml

__all__ = ["MAX_RECORDED_BYTES", "ReceivedMessage", "Recorder", "read_message"]

#: Request bodies are recorded up to this size.
MAX_RECORDED_BYTES: Final = 64 << 20
_SOAP_VERSIONS: Final = {NS_SOAP12: "1.2", NS_SOAP11: "1.1"}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Recorder:
    """ASGI middleware: every POST becomes an Exchange, filed as soon as it arrives and
    completed (response status, headers, body) as the answer is sent."""

    def __init__(
        self,
        app: ASGIApp,
        file_exchange: Callable[[Exchange], None],
        *,
        labels: Mapping[str, str],
        default_label: str | None = None,
        label_body: Callable[[bytes], str | None] | None = None,
        get_paths: Collection[str] = (),
    ) -> None:
        """``labels`` name exchanges by path (``default_label``, else ``POST <path>``, for the
        rest); ``label_body`` may rename one once its body is read; GETs are recorded only to
        ``get_paths``."""
        self.app = app
        self.file_exchange = file_exchange
        self.labels = dict(labels)
        self.default_label = default_label
        self.label_body = label_body
        self.get_paths = frozenset(get_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method")
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not (method == "POST" or (method == "GET" and path in self.get_paths)):
            await self.app(scope, receive, send)
            return
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        resource = path + (f"?{query}" if query and method == "GET" else "")
        client = scope.get("client")
        exchange = Exchange(
            label=self.labels.get(path, self.default_label or f"{method} {path}"),
            protocol="HTTP",
            target=f"{method} {resource}" + (f" from {client[0]}:{client[1]}" if client else ""),
            started=_now(),
            request_headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", [])],
        )
        self.file_exchange(exchange)
        messages: list[Message] = []
        body = bytearray()
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            if len(body) < MAX_RECORDED_BYTES:
                body.extend(message.get("body", b"")[: MAX_RECORDED_BYTES - len(body)])
            if not message.get("more_body", False):
                break
        exchange.request_body = bytes(body)
        if self.label_body is not None:
            exchange.label = self.label_body(exchange.request_body) or exchange.label

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.response_status = f"HTTP {message['status']}"
                exchange.response_headers = [
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])
                ]
            elif message["type"] == "http.response.body":
                exchange.response_body += message.get("body", b"")
            await send(message)

        await self.app(scope, replay, recording_send)


@dataclass(slots=True, eq=False)
class ReceivedMessage:
    """A recorded request as the runner reads it (None / empty where it could not be read)."""

    exchange: Exchange
    path: str
    content_type: str
    mtom: bool
    soap_version: str | None = None  # "1.2", "1.1" or None (not a SOAP envelope)
    actions: list[str] = field(default_factory=list)  # every wsa:Action text, as sent
    message_id: str | None = None
    to: str | None = None
    must_understand: bool = False  # some WS-Addressing header carries mustUnderstand true
    wsa_namespaces: set[str] = field(default_factory=set)
    body: etree._Element | None = None
    #: MIME parts other than the root, by Content-ID (MTOM requests).
    parts: dict[str, bytes] = field(default_factory=dict)
    problem: str = ""

    @property
    def action(self) -> str | None:
        return self.actions[0].strip() if len(self.actions) == 1 else None

    def binary(self, element: etree._Element) -> bytes | None:
        """The bytes of a base64Binary element: its XOP part, or None when not an XOP include."""
        include = element.find(f"{{{NS_XOP}}}Include")
        if include is None:
            return None
        href = include.get("href", "")
        return self.parts.get(normalize_content_id(href))


def _header(exchange: Exchange, name: str) -> str:
    for key, value in exchange.request_headers:
        if key.lower() == name:
            return value
    return ""


def _root_part(content_type: str, body: bytes) -> tuple[bytes, dict[str, bytes]]:
    """The root part of a multipart/related body (``start``, else the first part) and the others."""
    decoder = MultipartDecoder(content_type)
    headers: list[PartHeaders] = []
    bodies: list[bytearray] = []
    for event in [*decoder.feed(body), *decoder.close()]:
        if isinstance(event, PartHeaders):
            headers.append(event)
            bodies.append(bytearray())
        elif isinstance(event, PartData):
            bodies[-1] += event.data
    if not headers:
        raise MimeError("no MIME part")
    start = parse_content_type(content_type).params.get("start")
    index = 0
    if start:
        wanted = normalize_content_id(start)
        found = [n for n, h in enumerate(headers) if normalize_content_id(h.content_id or "") == wanted]
        if not found:
            raise MimeError(f"no part has the start Content-ID {start}")
        index = found[0]
    others = {
        normalize_content_id(h.content_id or ""): bytes(b) for n, (h, b) in enumerate(zip(headers, bodies)) if n != index
    }
    return bytes(bodies[index]), others


def read_message(exchange: Exchange) -> ReceivedMessage:
    """Read a recorded request: packaging, SOAP version, WS-Addressing headers and body."""
    content_type = _header(exchange, "content-type")
    message = ReceivedMessage(
        exchange=exchange,
        path=exchange.target.split(" ")[1] if " " in exchange.target else exchange.target,
        content_type=content_type,
        mtom=content_type.lower().startswith("multipart/related"),
    )
    data = exchange.request_body
    try:
        if message.mtom:
            data, message.parts = _root_part(content_type, data)
        root = parse_xml(data)
    except (MimeError, XmlError, ValueError) as exc:
        message.problem = f"the request cannot be read: {exc}"
        return message
    namespace = etree.QName(root).namespace or ""
    if etree.QName(root).localname != "Envelope" or namespace not in _SOAP_VERSIONS:
        message.problem = f"the request is not a SOAP envelope (root {root.tag})"
        return message
    message.soap_version = _SOAP_VERSIONS[namespace]
    header = root.find(f"{{{namespace}}}Header")
    for block in list(header) if header is not None else []:
        if not isinstance(block.tag, str):
            continue
        qname = etree.QName(block)
        if qname.localname in ("Action", "MessageID", "To", "ReplyTo", "RelatesTo", "From", "FaultTo"):
            message.wsa_namespaces.add(qname.namespace or "")
        if qname.namespace != NS_WSA:
            continue
        if block.get(f"{{{namespace}}}mustUnderstand", "").strip() in ("true", "1"):
            message.must_understand = True
        text = block.text or ""
        if qname.localname == "Action":
            message.actions.append(text)
        elif qname.localname == "MessageID":
            message.message_id = text.strip()
        elif qname.localname == "To":
            message.to = text.strip()
    body = root.find(f"{{{namespace}}}Body")
    children = [e for e in body if isinstance(e.tag, str)] if body is not None else []
    message.body = children[0] if children else None
    return message
