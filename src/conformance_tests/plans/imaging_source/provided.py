"""Reading a recorded RAD-68 request with the runner's own code: its MIME packaging, envelope,
documents and metadata, so the submit cases can judge exactly what the source sent.

Nothing here judges; a request that cannot be read is returned with ``problem`` set.

Public API::

    ProvidedRequest.read(exchange) -> ProvidedRequest
        .message (ReceivedMessage) .media_type .params .parts (PartInfo, in order) .root
        .documents (id -> bytes | None) .document_problems .entries .submission_sets
        .infoset() -> the Body element with every xop:Include replaced by its base64 content
        .concerns(study_uid) -> bool
    PartInfo(content_id, content_type, data)
    cx_components(value) -> list[str]
    slot_values(element, name) -> list[str]
"""

from __future__ import annotations

import base64
import binascii
import copy
import io
import warnings
from dataclasses import dataclass, field
from typing import Final

from lxml import etree
from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from conformance_tests.evidence import Exchange
from conformance_tests.simulators.recording import ReceivedMessage, read_message
from xds.soap import MimeError, MultipartDecoder, PartData, PartHeaders, normalize_content_id, parse_content_type
from xds.vocabulary import NS_LCM, NS_RIM, NS_XDS, NS_XOP, Node, ReferenceIdType, SlotName

__all__ = ["PartInfo", "ProvidedRequest", "cx_components", "slot_values"]

_XOP_INCLUDE: Final = f"{{{NS_XOP}}}Include"
_DOCUMENT: Final = f"{{{NS_XDS}}}Document"


@dataclass(frozen=True, slots=True)
class PartInfo:
    """One MIME part of a multipart/related request: its headers that matter, and its bytes."""

    content_id: str  # normalized (no <>, percent-decoded)
    content_type: str
    data: bytes


def slot_values(element: etree._Element, name: str) -> list[str]:
    """Every Value of every Slot ``name`` of a registry object (ITI TF-3 §4.2.3.1.5)."""
    return [
        (v.text or "").strip()
        for slot in element.iterfind(f"{{{NS_RIM}}}Slot")
        if slot.get("name") == name
        for v in slot.iterfind(f"{{{NS_RIM}}}ValueList/{{{NS_RIM}}}Value")
    ]


def cx_components(value: str) -> list[str]:
    """The components of an HL7 CX / CXi value (``^``-separated; ITI TF-3 §4.2.3.1.7), padded
    to five so CX.1 .. CX.5 can be read by position."""
    parts = value.split("^")
    return parts + [""] * (5 - len(parts)) if len(parts) < 5 else parts


def _parts(content_type: str, body: bytes) -> list[PartInfo]:
    decoder = MultipartDecoder(content_type)
    headers: list[PartHeaders] = []
    bodies: list[bytearray] = []
    for event in [*decoder.feed(body), *decoder.close()]:
        if isinstance(event, PartHeaders):
            headers.append(event)
            bodies.append(bytearray())
        elif isinstance(event, PartData):
            bodies[-1] += event.data
    return [
        PartInfo(normalize_content_id(h.content_id or ""), h.content_type, bytes(b)) for h, b in zip(headers, bodies)
    ]


def _dicom_study(data: bytes) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = dcmread(io.BytesIO(data), stop_before_pixels=True)
        return str(ds.get("StudyInstanceUID", "")) or None
    except (InvalidDicomError, ValueError, TypeError, AttributeError, EOFError, OSError):
        return None


@dataclass(slots=True, eq=False)
class ProvidedRequest:
    """A recorded Provide and Register request as the plan reads it."""

    exchange: Exchange
    message: ReceivedMessage
    media_type: str = ""
    params: dict[str, str] = field(default_factory=dict)
    parts: list[PartInfo] = field(default_factory=list)
    #: The root part (``start``, else the first part) of an MTOM request; None otherwise.
    root: PartInfo | None = None
    #: xds:Document/@id -> its bytes (XOP part or inline base64); None when unresolvable.
    documents: dict[str, bytes | None] = field(default_factory=dict)
    document_problems: list[str] = field(default_factory=list)
    problem: str = ""

    @classmethod
    def read(cls, exchange: Exchange) -> ProvidedRequest:
        message = read_message(exchange)
        provided = cls(exchange=exchange, message=message, problem=message.problem)
        try:
            parsed = parse_content_type(message.content_type)
            provided.media_type = parsed.media_type.lower()
            provided.params = {k.lower(): v for k, v in parsed.params.items()}
        except (MimeError, ValueError):
            provided.media_type = message.content_type.split(";")[0].strip().lower()
        if message.mtom:
            try:
                provided.parts = _parts(message.content_type, exchange.request_body)
            except (MimeError, ValueError) as exc:
                provided.problem = provided.problem or f"the MIME parts cannot be read: {exc}"
            start = provided.params.get("start")
            if start:
                wanted = normalize_content_id(start)
                provided.root = next((p for p in provided.parts if p.content_id == wanted), None)
            elif provided.parts:
                provided.root = provided.parts[0]
        provided._resolve_documents()
        return provided

    def _resolve_documents(self) -> None:
        body = self.message.body
        if body is None:
            return
        for document in body.iterfind(_DOCUMENT):
            doc_id = document.get("id", "")
            include = document.find(_XOP_INCLUDE)
            if include is not None:
                href = include.get("href", "")
                data = self.message.parts.get(normalize_content_id(href))
                if data is None:
                    self.document_problems.append(f"Document {doc_id}: xop:Include {href} names no MIME part")
                self.documents[doc_id] = data
                continue
            text = "".join((document.text or "").split())
            try:
                self.documents[doc_id] = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError) as exc:
                self.document_problems.append(f"Document {doc_id}: neither xop:Include nor base64 ({exc})")
                self.documents[doc_id] = None

    # -- metadata --------------------------------------------------------------------------------
    @property
    def entries(self) -> list[etree._Element]:
        """The rim:ExtrinsicObjects (DocumentEntries) of the submission."""
        body = self.message.body
        if body is None:
            return []
        return list(body.iterfind(f"{{{NS_LCM}}}SubmitObjectsRequest/{{{NS_RIM}}}RegistryObjectList/"
                                  f"{{{NS_RIM}}}ExtrinsicObject"))  # fmt: skip

    @property
    def submission_sets(self) -> list[etree._Element]:
        """The rim:RegistryPackages classified as SubmissionSet (inside or outside the package;
        xds-notes §3.1)."""
        body = self.message.body
        if body is None:
            return []
        objects = body.find(f"{{{NS_LCM}}}SubmitObjectsRequest/{{{NS_RIM}}}RegistryObjectList")
        if objects is None:
            return []
        classified = {
            c.get("classifiedObject")
            for c in objects.iter(f"{{{NS_RIM}}}Classification")
            if c.get("classificationNode") == Node.SUBMISSION_SET
        }
        return [p for p in objects.iterfind(f"{{{NS_RIM}}}RegistryPackage") if p.get("id") in classified]

    def infoset(self) -> etree._Element | None:
        """The Body's request element as its XOP infoset (XOP §3: each xop:Include stands for
        the base64 of its part), so that it can be validated against the XDS.b schema."""
        body = self.message.body
        if body is None:
            return None
        copied = copy.deepcopy(body)
        for document in copied.iterfind(_DOCUMENT):
            include = document.find(_XOP_INCLUDE)
            if include is None:
                continue
            document.remove(include)
            data = self.documents.get(document.get("id", "")) or b""
            document.text = base64.b64encode(data).decode("ascii")
        return copied

    def concerns(self, study_uid: str) -> bool:
        """Whether the request is about the study: a document of it is a DICOM object of the
        study, or a DocumentEntry names it in its referenceIdList."""
        for entry in self.entries:
            for value in slot_values(entry, SlotName.REFERENCE_ID_LIST):
                parts = cx_components(value)
                if parts[0] == study_uid and parts[4] == ReferenceIdType.STUDY_INSTANCE_UID:
                    return True
        return any(data is not None and _dicom_study(data) == study_uid for data in self.documents.values())
