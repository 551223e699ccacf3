"""How the runner reaches a peer: SOAP over HTTP, HL7 v2 over MLLP, and pre-load commands.

Each call returns what was exchanged as an :class:`~conformance_tests.evidence.Exchange`, byte
for byte, plus what the judge needs. Nothing here judges: a SOAP 1.1 reply, a wrong Content-Type
or a missing header is reported as seen and left to :mod:`conformance_tests.assertions`.
"""

from __future__ import annotations

import base64
import shlex
import socket
import ssl
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import httpx
from lxml import etree

from conformance_tests.evidence import Exchange
from conformance_tests.model import EnvelopeVariant, RequestPackaging
from xds.soap import (
    MimeError,
    MultipartDecoder,
    OutgoingPart,
    PartData,
    PartHeaders,
    encode_mtom,
    new_content_id,
    new_message_id,
    normalize_content_id,
    parse_content_type,
    request_envelope,
    soap_content_type,
    xop_include,
)
from xds.vocabulary import (
    MEDIA_MULTIPART_RELATED,
    MEDIA_OCTET_STREAM,
    MEDIA_SOAP11,
    NS_SOAP11,
    NS_SOAP12,
    NS_WSA,
    NS_XDS,
    WSA_ANONYMOUS,
)
from xds.xml import XmlError, parse_xml, to_bytes

__all__ = [
    "CommandOutcome",
    "HttpAnswer",
    "MllpError",
    "SoapAnswer",
    "SoapTransport",
    "UNKNOWN_HEADER",
    "run_command",
    "send_mllp",
    "tls_context",
    "tls_probe",
]

MAX_REPLY_BYTES: Final = 64 << 20
# A header block no SOAP node understands, for the mustUnderstand test (SOAP 1.2 Part 1 §5.2.3).
UNKNOWN_HEADER: Final = "{urn:imageshare:conformance:unknown}Unknown"
_USER_AGENT: Final = "xds-conformance/1"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(slots=True, kw_only=True)
class SoapAnswer:
    """A SOAP round trip as seen on the wire, with the reply's envelope parsed if it could be."""

    exchange: Exchange
    message_id: str
    http_status: int | None = None
    content_type: str = ""
    multipart: bool = False
    root_content_type: str = ""  # Content-Type of the root part when multipart
    envelope: etree._Element | None = None
    problem: str = ""  # why there is no envelope (transport error, unparseable reply)
    tls_problem: str = ""  # the TLS handshake with the peer failed (certificate, protocol)
    part_count: int = 0
    start_info: str | None = None
    #: The non-root MIME parts of a multipart reply, by Content-ID (without angle brackets).
    parts: dict[str, bytes] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class HttpAnswer:
    """A plain HTTP GET as seen on the wire (e.g. RAD-55 WADO-URI)."""

    exchange: Exchange
    status: int | None = None
    content_type: str = ""
    body: bytes = b""


@dataclass(slots=True)
class _Parts:
    headers: list[PartHeaders] = field(default_factory=list)
    bodies: list[bytearray] = field(default_factory=list)


def _split_multipart(content_type: str, body: bytes) -> _Parts:
    decoder = MultipartDecoder(content_type)
    parts = _Parts()
    for event in [*decoder.feed(body), *decoder.close()]:
        if isinstance(event, PartHeaders):
            parts.headers.append(event)
            parts.bodies.append(bytearray())
        elif isinstance(event, PartData):
            parts.bodies[-1] += event.data
    return parts


def _soap11_envelope(body: etree._Element, *, action: str, to: str, message_id: str) -> bytes:
    """A SOAP 1.1 envelope with the same WS-Addressing headers (for the version test)."""
    env = etree.Element(f"{{{NS_SOAP11}}}Envelope", nsmap={"s11": NS_SOAP11, "wsa": NS_WSA})
    header = etree.SubElement(env, f"{{{NS_SOAP11}}}Header")
    etree.SubElement(header, f"{{{NS_WSA}}}Action").text = action
    etree.SubElement(header, f"{{{NS_WSA}}}MessageID").text = message_id
    reply_to = etree.SubElement(header, f"{{{NS_WSA}}}ReplyTo")
    etree.SubElement(reply_to, f"{{{NS_WSA}}}Address").text = WSA_ANONYMOUS
    etree.SubElement(header, f"{{{NS_WSA}}}To").text = to
    etree.SubElement(env, f"{{{NS_SOAP11}}}Body").append(body)
    return to_bytes(env, xml_declaration=True)


def _optimize(envelope: etree._Element) -> list[OutgoingPart]:
    """XOP §3.2: move the base64 content of each ``xds:Document`` into a MIME part, leaving an
    ``xop:Include`` in its place (the envelope is the runner's own tree)."""
    parts: list[OutgoingPart] = []
    for document in envelope.iter(f"{{{NS_XDS}}}Document"):
        text = "".join(document.itertext()).strip()
        data = base64.b64decode(text) if text else b""
        content_id = new_content_id("conformance.local")
        for child in list(document):
            document.remove(child)
        document.text = None
        document.append(xop_include(content_id))
        parts.append(OutgoingPart(content_id, MEDIA_OCTET_STREAM, data))
    return parts


def _unknown_header() -> etree._Element:
    element = etree.Element(UNKNOWN_HEADER, nsmap={"soap": NS_SOAP12})
    element.set(f"{{{NS_SOAP12}}}mustUnderstand", "true")
    element.text = "a header block the receiver cannot understand"
    return element


def tls_context(
    *, verify: bool | str = True, client_cert: str | None = None, client_key: str | None = None
) -> ssl.SSLContext:
    """The TLS settings for https:// peers: the CAs to trust (the system's, or those of the PEM
    file ``verify``; none with ``verify=False``) and, for mutual TLS, our client certificate
    (ITI TF-2a §3.19: both nodes authenticate with X.509 certificates)."""
    if isinstance(verify, str):
        context = ssl.create_default_context(cafile=verify)
    else:
        context = ssl.create_default_context()
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    if client_cert:
        context.load_cert_chain(client_cert, client_key)
    return context


def _tls_failure(exc: BaseException) -> str:
    """The TLS error behind a failed request, if there is one ("" otherwise)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return f"{type(current).__name__}: {current}"
        current = current.__cause__ or current.__context__
    return ""


def tls_probe(url: str, context: ssl.SSLContext, *, client_cert: bool, timeout: float = 5.0) -> str:
    """Why a TLS session with ``url``'s host fails, found by a bare handshake and one read ("" when
    it does not, or the host cannot be reached at all). A server that requires a client
    certificate may only say so after the TLS 1.3 handshake, by an alert that an HTTP client sees
    as a dropped connection; the read brings the alert to light."""
    parsed = httpx.URL(url)
    if parsed.scheme != "https" or not parsed.host:
        return ""
    try:
        with socket.create_connection((parsed.host, parsed.port or 443), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=parsed.host) as tls:
                shown = "ours" if client_cert else "none"
                try:
                    data = tls.recv(1)
                except (TimeoutError, socket.timeout):
                    return ""
                if not data:
                    # An HTTP server waits for the request; one that hangs up at once refused us.
                    return (
                        "the server ended the TLS session right after the handshake, before any request: it "
                        f"refused our client certificate ({shown} shown; --client-cert/--client-key)"
                    )
    except ssl.SSLError as exc:
        return f"{type(exc).__name__}: {exc}"
    except OSError:
        return ""
    return ""


class SoapTransport:
    """Posts SOAP requests to one endpoint and records every exchange."""

    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float = 60.0,
        verify: bool | str = True,
        client_cert: str | None = None,
        client_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._timeout = timeout
        context = tls_context(verify=verify, client_cert=client_cert, client_key=client_key)
        self._tls = context
        self._client_cert = client_cert is not None
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout), verify=context, transport=transport, headers={"user-agent": _USER_AGENT}
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SoapTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(
        self,
        action: str,
        body: etree._Element,
        *,
        label: str,
        variant: EnvelopeVariant | None = None,
        packaging: RequestPackaging = RequestPackaging.SIMPLE,
    ) -> SoapAnswer:
        """POST one request (simple SOAP 1.2 unless ``variant`` or ``packaging`` say otherwise)
        and read the reply."""
        variant = variant or EnvelopeVariant()
        sent_action = variant.action or action
        message_id = new_message_id()
        if variant.soap11:
            payload = _soap11_envelope(body, action=sent_action, to=self.endpoint, message_id=message_id)
            headers = {"content-type": f"{MEDIA_SOAP11}; charset=UTF-8", "soapaction": f'"{sent_action}"'}
        else:
            extra = [_unknown_header()] if variant.unknown_must_understand else []
            # ITI TF-2x V.3.2: Action (mustUnderstand), MessageID, ReplyTo anonymous, To.
            envelope = request_envelope(
                body, action=sent_action, to=self.endpoint, message_id=message_id, extra_headers=extra
            )
            if packaging is RequestPackaging.SIMPLE:
                payload = to_bytes(envelope, xml_declaration=True)
                headers = {"content-type": soap_content_type(sent_action)}
            else:
                # ITI TF-2x Appendix V; xds-notes §1.4: MTOM/XOP, the envelope as the root part.
                parts = _optimize(envelope) if packaging is RequestPackaging.MTOM else []
                mtom = encode_mtom(to_bytes(envelope, xml_declaration=True), parts, action=sent_action)
                payload = b"".join(mtom.chunks)
                headers = {"content-type": mtom.content_type}
        exchange = Exchange(
            label=label,
            protocol="HTTP",
            target=f"POST {self.endpoint}",
            started=_now(),
            request_headers=sorted(headers.items()),
            request_body=payload,
        )
        answer = SoapAnswer(exchange=exchange, message_id=message_id)
        began = time.monotonic()
        try:
            response = self._http.post(self.endpoint, content=payload, headers=headers)
            data = response.content
        except httpx.HTTPError as exc:
            exchange.error = f"{type(exc).__name__}: {exc}"
            answer.problem = f"no reply from {self.endpoint}: {exchange.error}"
            answer.tls_problem = _tls_failure(exc)
            if not answer.tls_problem and not isinstance(exc, httpx.TimeoutException):
                answer.tls_problem = tls_probe(
                    self.endpoint, self._tls, client_cert=self._client_cert, timeout=min(self._timeout, 5.0)
                )
            if answer.tls_problem:
                exchange.error += f" (TLS: {answer.tls_problem})"
            return answer
        finally:
            exchange.seconds = time.monotonic() - began
        exchange.response_status = f"HTTP {response.status_code}"
        exchange.response_headers = list(response.headers.items())
        exchange.response_body = data[:MAX_REPLY_BYTES]
        answer.http_status = response.status_code
        answer.content_type = response.headers.get("content-type", "")
        _read_envelope(answer, data)
        return answer


    def get(self, url: str, *, label: str) -> HttpAnswer:
        """GET ``url`` (an absolute URL, not necessarily the SOAP endpoint) and record it."""
        exchange = Exchange(label=label, protocol="HTTP", target=f"GET {url}", started=_now())
        answer = HttpAnswer(exchange=exchange)
        began = time.monotonic()
        try:
            response = self._http.get(url)
            data = response.content
        except httpx.HTTPError as exc:
            exchange.error = f"{type(exc).__name__}: {exc}"
            return answer
        finally:
            exchange.seconds = time.monotonic() - began
        exchange.response_status = f"HTTP {response.status_code}"
        exchange.response_headers = list(response.headers.items())
        exchange.response_body = data[:MAX_REPLY_BYTES]
        answer.status = response.status_code
        answer.content_type = response.headers.get("content-type", "")
        answer.body = data
        return answer


def _read_envelope(answer: SoapAnswer, data: bytes) -> None:
    """Find the SOAP envelope in the reply (the root part of a multipart reply) and parse it."""
    if len(data) > MAX_REPLY_BYTES:
        answer.problem = f"reply larger than {MAX_REPLY_BYTES} bytes"
        return
    if not data.strip():
        answer.problem = "the reply has no body"
        return
    xml = data
    try:
        content_type = parse_content_type(answer.content_type) if answer.content_type else None
    except MimeError:
        content_type = None
    if content_type is not None and content_type.media_type == MEDIA_MULTIPART_RELATED:
        answer.multipart = True
        answer.start_info = content_type.param("start-info")
        try:
            parts = _split_multipart(answer.content_type, data)
        except MimeError as exc:
            answer.problem = f"unreadable multipart reply: {exc}"
            return
        answer.part_count = len(parts.headers)
        if not parts.headers:
            answer.problem = "the multipart reply has no parts"
            return
        index = 0
        start = content_type.param("start")
        if start:
            wanted = normalize_content_id(start)
            ids = [normalize_content_id(h.get("content-id") or "") for h in parts.headers]
            if wanted not in ids:
                answer.problem = f"no part has the start Content-ID {start}"
                return
            index = ids.index(wanted)
        answer.root_content_type = parts.headers[index].get("content-type") or ""
        xml = bytes(parts.bodies[index])
        for number, (headers, body) in enumerate(zip(parts.headers, parts.bodies, strict=True)):
            if number != index:
                answer.parts[normalize_content_id(headers.get("content-id") or "")] = bytes(body)
    try:
        answer.envelope = parse_xml(xml)
    except XmlError as exc:
        answer.problem = f"the reply is not XML: {exc}"


# -- MLLP ----------------------------------------------------------------------------------------
# HL7 v2 MLLP (ITI TF-2x Appendix C): <VT> message <FS><CR>.
_VT: Final = b"\x0b"
_FS_CR: Final = b"\x1c\r"


class MllpError(Exception):
    """The MLLP peer could not be reached or did not answer a complete frame."""


def send_mllp(host: str, port: int, message: bytes, *, timeout: float = 30.0) -> bytes:
    """Send one framed HL7 message and return the unframed reply."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(_VT + message + _FS_CR)
            buffer = bytearray()
            while _FS_CR not in buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    raise MllpError(f"{host}:{port} closed the connection before a complete reply")
                buffer += chunk
                if len(buffer) > 1 << 20:
                    raise MllpError(f"{host}:{port} sent more than 1 MiB without an end of frame")
    except OSError as exc:
        raise MllpError(f"{host}:{port}: {exc}") from exc
    frame = bytes(buffer[: buffer.index(_FS_CR)])
    start = frame.find(_VT)
    return frame[start + 1 :] if start >= 0 else frame


def mllp_exchange(
    host: str, port: int, message: bytes, *, label: str, timeout: float = 30.0
) -> tuple[Exchange, bytes | None]:
    """:func:`send_mllp`, recorded; the reply is None when the exchange failed."""
    exchange = Exchange(label=label, protocol="MLLP", target=f"{host}:{port}", started=_now(), request_body=message)
    began = time.monotonic()
    try:
        reply = send_mllp(host, port, message, timeout=timeout)
    except MllpError as exc:
        exchange.error = str(exc)
        return exchange, None
    finally:
        exchange.seconds = time.monotonic() - began
    exchange.response_body = reply
    return exchange, reply


# -- commands ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CommandOutcome:
    exchange: Exchange
    returncode: int | None


def run_command(template: str, *, values: dict[str, str], label: str, timeout: float = 120.0) -> CommandOutcome:
    """Run an operator-given command (no shell) with ``{pid}``-style fields filled in."""
    args: Sequence[str] = [part.format(**values) for part in shlex.split(template)]
    exchange = Exchange(label=label, protocol="command", target=shlex.join(args), started=_now())
    began = time.monotonic()
    try:
        done = subprocess.run(args, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        exchange.error = f"{type(exc).__name__}: {exc}"
        return CommandOutcome(exchange, None)
    finally:
        exchange.seconds = time.monotonic() - began
    exchange.response_status = f"exit {done.returncode}"
    exchange.response_body = done.stdout + (b"\n[stderr]\n" + done.stderr if done.stderr else b"")
    return CommandOutcome(exchange, done.returncode)
