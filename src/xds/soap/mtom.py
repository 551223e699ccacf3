"""MTOM/XOP messages: receive a multipart/related body into a root part plus attachments, and
resolve the root's ``xop:Include`` references (XOP §3, MTOM §3; xds-notes §1.4).

Receiving (the thin adapter between the sans-I/O :class:`~xds.soap.mtom_decode.MultipartDecoder`
and attachment sinks)::

    receiver = MtomReceiver(content_type, sink_factory=spool.sink, max_root_bytes=64 << 20)
    for chunk in body:                 # or: await feed_async(receiver, stream, max_bytes=...)
        receiver.feed(chunk)
    message = receiver.close()         # MtomMessage(root=b"<soap:Envelope...", attachments={...})

The root part is the one named by the ``start`` parameter, else the first part; it is collected
in memory up to ``max_root_bytes``. Every other part streams into a sink (a spool file with its
SHA-1/SHA-256 computed on the fly), whatever order the parts come in.

Resolving binary content once the envelope is parsed::

    resolve_xop(root_element, message.attachments) -> dict[element, Attachment]
    binary_content(document_element, message.attachments, spool=spool) -> Attachment

:func:`binary_content` also accepts inline base64 text, which is legal XOP: the bytes are decoded
and hashed into an Attachment, so callers see one shape. An ``xop:Include`` naming an unknown
Content-ID is a SOAP ``env:Sender`` fault.

Public API (this module also re-exports the decoder and encoder names)::

    MtomReceiver(content_type, *, sink_factory, max_root_bytes=..., max_header_bytes=...,
                 max_parts=...)  .feed(data) / .close() -> MtomMessage / .abort()
    MtomMessage(root, root_content_type, root_content_id, attachments, content_type)
    async feed_async(receiver, chunks, *, max_bytes=None, offload=True) -> int
    xop_include(content_id) -> etree._Element
    resolve_xop(root, attachments) -> dict[etree._Element, Attachment]
    binary_content(element, attachments, *, spool=None) -> Attachment
"""

from __future__ import annotations

import binascii
from collections.abc import AsyncIterable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

import anyio
import anyio.to_thread
from lxml import etree

from xds.soap.attachments import CHUNK_SIZE, Attachment, AttachmentSink, SinkFactory, Spool
from xds.soap.fault import FaultCode, SoapFault
from xds.soap.mtom_decode import (
    ContentType,
    Event,
    MessageEnd,
    MessageTooLarge,
    MimeError,
    MultipartDecoder,
    PartData,
    PartEnd,
    PartHeaders,
    normalize_content_id,
    parse_content_type,
)
from xds.soap.mtom_encode import MtomPayload, OutgoingPart, Source, cid_href, encode_mtom, new_content_id
from xds.vocabulary import MEDIA_OCTET_STREAM, NS_XMIME, NS_XOP
from xds.xml import qname

__all__ = [
    "ContentType",
    "Event",
    "MessageEnd",
    "MessageTooLarge",
    "MimeError",
    "MtomMessage",
    "MtomPayload",
    "MtomReceiver",
    "MultipartDecoder",
    "OutgoingPart",
    "PartData",
    "PartEnd",
    "PartHeaders",
    "Source",
    "XOP_INCLUDE",
    "binary_content",
    "cid_href",
    "encode_mtom",
    "feed_async",
    "new_content_id",
    "normalize_content_id",
    "parse_content_type",
    "resolve_xop",
    "xop_include",
]

XOP_INCLUDE: Final = qname(NS_XOP, "Include")
_XMIME_CONTENT_TYPE: Final = qname(NS_XMIME, "contentType")
#: Default ceiling for the root part (the SOAP envelope) held in memory.
DEFAULT_MAX_ROOT_BYTES: Final = 64 << 20
_B64_WHITESPACE: Final = b" \t\r\n"


@dataclass(frozen=True, slots=True, eq=False)
class MtomMessage:
    """A received MTOM package: the root part's bytes and the attachments by Content-ID."""

    root: bytes
    root_content_type: str
    root_content_id: str | None
    attachments: Mapping[str, Attachment]
    content_type: ContentType = field(default_factory=lambda: ContentType("multipart/related"))

    @property
    def action(self) -> str | None:
        """The ``action`` parameter of the package's Content-Type, if any (RFC 3902)."""
        return self.content_type.param("action")


class _Discard:
    """Sink for parts nobody can reference (no Content-ID)."""

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> Attachment:  # pragma: no cover - never closed into the message
        raise NotImplementedError

    def abort(self) -> None:
        pass


class MtomReceiver:
    """Consumes a multipart/related body and files its parts (root in memory, rest in sinks).

    Parameters
    ----------
    content_type:
        The HTTP Content-Type value (``multipart/related; boundary=...; start=...``).
    sink_factory:
        Called as ``sink_factory(content_id, content_type)`` for each non-root part, e.g.
        :meth:`xds.soap.attachments.Spool.sink`.
    max_root_bytes:
        Largest root part accepted (:class:`MessageTooLarge` beyond).
    """

    def __init__(
        self,
        content_type: str | ContentType,
        *,
        sink_factory: SinkFactory,
        max_root_bytes: int = DEFAULT_MAX_ROOT_BYTES,
        max_header_bytes: int = 16 << 10,
        max_parts: int = 10_000,
    ) -> None:
        self._decoder = MultipartDecoder(content_type, max_header_bytes=max_header_bytes, max_parts=max_parts)
        self._sink_factory = sink_factory
        self._max_root = max_root_bytes
        self._root_chunks: list[bytes] | None = None
        self._root_size = 0
        self._root_headers: PartHeaders | None = None
        self._root_done = False
        self._current: PartHeaders | None = None
        self._current_is_root = False
        self._sink: AttachmentSink | None = None
        self._attachments: dict[str, Attachment] = {}
        self._failed = False

    @property
    def content_type(self) -> ContentType:
        return self._decoder.content_type

    def feed(self, data: bytes) -> None:
        """Consume the next bytes of the body."""
        if self._failed:
            raise MimeError("receiver already failed")
        try:
            for event in self._decoder.feed(data):
                self._handle(event)
        except BaseException:
            self.abort()
            raise

    def feed_many(self, chunks: Iterable[bytes]) -> None:
        """Consume several chunks (one call per batch when running in a worker thread)."""
        for chunk in chunks:
            self.feed(chunk)

    def _handle(self, event: Event) -> None:
        if isinstance(event, PartData):
            if self._current_is_root:
                assert self._root_chunks is not None
                self._root_size += len(event.data)
                if self._root_size > self._max_root:
                    raise MessageTooLarge(
                        f"SOAP envelope part larger than {self._max_root} bytes", limit=self._max_root
                    )
                self._root_chunks.append(event.data)
            elif self._sink is not None:
                self._sink.write(event.data)
        elif isinstance(event, PartHeaders):
            self._start_part(event)
        elif isinstance(event, PartEnd):
            if self._current_is_root:
                self._root_done = True
            elif (
                self._sink is not None and self._current is not None and self._current.content_id is not None
            ):
                self._attachments[self._current.content_id] = self._sink.close()
            self._sink = None
            self._current = None
            self._current_is_root = False
        elif isinstance(event, MessageEnd):
            pass

    def _start_part(self, headers: PartHeaders) -> None:
        self._current = headers
        start = self._decoder.start
        # XOP §4 / RFC 2387 §3.2: the root is the part named by `start`, else the first part.
        is_root = headers.content_id == start if start is not None else headers.index == 0
        if is_root:
            if self._root_headers is not None:
                raise MimeError("two parts claim to be the root part")
            self._root_headers = headers
            self._root_chunks = []
            self._current_is_root = True
            return
        self._current_is_root = False
        cid = headers.content_id
        if cid is None:
            self._sink = _Discard()
            return
        if cid in self._attachments or (
            self._root_headers is not None and cid == self._root_headers.content_id
        ):
            raise MimeError(f"duplicate Content-ID <{cid}>")
        self._sink = self._sink_factory(cid, headers.content_type)

    def close(self) -> MtomMessage:
        """Finish: the closing boundary must have been read and the root part found."""
        try:
            self._decoder.close()
            if self._root_headers is None or self._root_chunks is None or not self._root_done:
                if self._decoder.start is not None:
                    raise MimeError(f"no part has the start Content-ID <{self._decoder.start}>")
                raise MimeError("multipart message has no root part")
        except BaseException:
            self.abort()
            raise
        root = b"".join(self._root_chunks)
        return MtomMessage(
            root=root,
            root_content_type=self._root_headers.content_type,
            root_content_id=self._root_headers.content_id,
            attachments=dict(self._attachments),
            content_type=self._decoder.content_type,
        )

    def abort(self) -> None:
        """Discard everything received: the open sink and the finished attachments."""
        self._failed = True
        if self._sink is not None:
            self._sink.abort()
            self._sink = None
        for attachment in self._attachments.values():
            attachment.delete()
        self._attachments.clear()
        self._root_chunks = None


async def feed_async(
    receiver: MtomReceiver,
    chunks: AsyncIterable[bytes],
    *,
    max_bytes: int | None = None,
    offload: bool = True,
    batch_bytes: int = CHUNK_SIZE,
    queue_batches: int = 4,
) -> int:
    """Feed an async byte stream into ``receiver``; returns the number of bytes read.

    With ``offload`` the hashing and file writes run in a worker thread, batch by batch
    (``batch_bytes``), while the event loop keeps receiving the next batch: the two overlap
    instead of taking turns on one core. At most ``queue_batches`` batches wait in between, so
    memory stays bounded. Raises :class:`MessageTooLarge` beyond ``max_bytes``.
    """
    total = 0
    if not offload:
        async for chunk in chunks:
            total += len(chunk)
            if max_bytes is not None and total > max_bytes:
                receiver.abort()
                raise MessageTooLarge(f"body larger than {max_bytes} bytes", limit=max_bytes)
            receiver.feed(chunk)
        return total

    send, receive = anyio.create_memory_object_stream[list[bytes]](max_buffer_size=queue_batches)
    failure: list[Exception] = []

    async def consume() -> None:
        async with receive:
            async for batch in receive:
                try:
                    await anyio.to_thread.run_sync(receiver.feed_many, batch)
                except Exception as exc:  # handed to the producer side, re-raised below
                    failure.append(exc)
                    return

    async with anyio.create_task_group() as group:
        group.start_soon(consume)
        async with send:
            batch: list[bytes] = []
            size = 0
            try:
                async for chunk in chunks:
                    if failure:
                        break
                    total += len(chunk)
                    if max_bytes is not None and total > max_bytes:
                        raise MessageTooLarge(f"body larger than {max_bytes} bytes", limit=max_bytes)
                    batch.append(chunk)
                    size += len(chunk)
                    if size >= batch_bytes:
                        await send.send(batch)
                        batch, size = [], 0
                if batch and not failure:
                    await send.send(batch)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass  # the consumer stopped: its failure is in `failure`
            except Exception as exc:  # too large, or the client went away
                failure.append(exc)
                group.cancel_scope.cancel()
    if failure:
        receiver.abort()
        raise failure[0]
    return total


# -- XOP -----------------------------------------------------------------------------------------
def xop_include(content_id: str) -> etree._Element:
    """``<xop:Include href="cid:..."/>`` for a part (XOP §3.1); append it to the binary element."""
    element = etree.Element(XOP_INCLUDE, nsmap={"xop": NS_XOP})
    element.set("href", cid_href(content_id))
    return element


def _include_target(include: etree._Element, attachments: Mapping[str, Attachment]) -> Attachment:
    href = include.get("href")
    if not href or not href.strip():
        raise SoapFault(FaultCode.SENDER, "xop:Include without an href attribute")
    # XOP §3.1: the href is a cid: URL (RFC 2392), percent-encoded.
    if not href.strip().lower().startswith("cid:"):
        raise SoapFault(FaultCode.SENDER, f"xop:Include href is not a cid: URL: {href!r}")
    cid = normalize_content_id(href)
    attachment = attachments.get(cid)
    if attachment is None:
        raise SoapFault(FaultCode.SENDER, f"xop:Include refers to an unknown MIME part: {href!r}")
    return attachment


def resolve_xop(
    root: etree._Element, attachments: Mapping[str, Attachment]
) -> dict[etree._Element, Attachment]:
    """Map every element that contains an ``xop:Include`` to the attachment it references.

    The keys are the parents of the ``xop:Include`` elements (e.g. ``xds:Document``); the dict
    holds them, so lxml keeps their identity stable. Raises :class:`SoapFault` (Sender) for an
    Include without a ``cid:`` href or one naming no part.
    """
    resolved: dict[etree._Element, Attachment] = {}
    for include in root.iter(XOP_INCLUDE):
        parent = include.getparent()
        if parent is None:
            raise SoapFault(FaultCode.SENDER, "xop:Include cannot be the root element")
        resolved[parent] = _include_target(include, attachments)
    return resolved


def binary_content(
    element: etree._Element,
    attachments: Mapping[str, Attachment],
    *,
    spool: Spool | None = None,
) -> Attachment:
    """The binary content of a base64Binary element: its XOP part, or its inline base64 text.

    Inline content (legal XOP, and what a simple-SOAP sender puts there) is decoded and hashed
    into an Attachment whose ``content_id`` is "" and ``content_type`` the element's
    ``xmime:contentType`` (else application/octet-stream); with a ``spool`` large content goes
    to a spool file. Raises :class:`SoapFault` (Sender) for an unknown part or invalid base64.
    """
    include = element.find(XOP_INCLUDE)
    if include is not None:
        # XOP §3: an element optimized with xop:Include has no other content.
        if (element.text or "").strip() or len(element) != 1:
            raise SoapFault(FaultCode.SENDER, "an element with xop:Include must have no other content")
        return _include_target(include, attachments)
    if len(element):
        raise SoapFault(FaultCode.SENDER, f"{element.tag} holds elements, not base64 content")
    text = (element.text or "").encode("ascii", errors="replace").translate(None, _B64_WHITESPACE)
    try:
        data = binascii.a2b_base64(text, strict_mode=True) if text else b""
    except binascii.Error as exc:
        raise SoapFault(FaultCode.SENDER, f"invalid base64 content in {element.tag}: {exc}") from None
    content_type = element.get(_XMIME_CONTENT_TYPE) or MEDIA_OCTET_STREAM
    if spool is not None:
        return spool.store_bytes(data, content_id="", content_type=content_type)
    return Attachment.from_bytes(data, content_id="", content_type=content_type)
