"""SOAP 1.2 envelopes with WS-Addressing 1.0: parse with the XDS rules, build requests/responses.

Parsing applies, in this order (SOAP 1.2 Part 1 §2.6, §5; WS-Addressing 1.0 SOAP Binding §6;
ITI TF-2x Appendix V, as checked by the NIST toolkit, xds-notes §1.3):

1. the root is ``{soap12}Envelope``; an ``Envelope`` in any other namespace (SOAP 1.1 included)
   is a ``VersionMismatch`` fault, any other root a ``Sender`` fault;
2. the Envelope holds an optional Header then a Body, and nothing else (``Sender``);
3. every header block targeted at us (no role, ``next`` or ``ultimateReceiver``) with
   ``mustUnderstand`` "true"/"1" must be one we understand: the 2005/08 ``wsa:*`` headers and
   ``wsse:Security`` by default (``MustUnderstand`` fault with ``env:NotUnderstood`` blocks);
4. exactly one ``wsa:Action`` (``Sender`` / ``wsa:MessageAddressingHeaderRequired`` when
   missing, ``wsa:InvalidAddressingHeader`` / ``wsa:InvalidCardinality`` when repeated); its
   value is stripped of surrounding white space. WS-Addressing elements in another namespace
   (e.g. the 2004/08 submission) are unknown headers, not addressing.

Building: :func:`build_request` and :func:`build_response` wrap a body element in an envelope
with the IHE header set (``wsa:Action`` with ``mustUnderstand="true"``, ``wsa:MessageID``,
``wsa:ReplyTo`` anonymous and ``wsa:To`` for requests; ``wsa:RelatesTo`` for responses).
The body element is moved into the envelope when it is a root, copied when it has a parent.

Public API::

    UNDERSTOOD_HEADERS: frozenset[str]
    Addressing(action, message_id, to, reply_to, from_address, fault_to, relates_to)
    SoapEnvelope(root, header, headers, body, addressing)   # .action .message_id .relates_to
                                                            # .header_blocks(name) .is_fault .fault()
    parse_envelope(root, *, understood=UNDERSTOOD_HEADERS, require_action=True,
                   check_must_understand=True) -> SoapEnvelope
    parse_envelope_bytes(data, *, max_depth=None, ...) -> SoapEnvelope
    request_envelope(body, *, action, to=None, message_id=None, reply_to=WSA_ANONYMOUS,
                     extra_headers=()) -> etree._Element      ; build_request(...) -> bytes
    response_envelope(body, *, action, relates_to, message_id=None,
                      extra_headers=()) -> etree._Element      ; build_response(...) -> bytes
    Packaging (SIMPLE, MTOM); request_packaging(content_type) -> tuple[Packaging, ContentType]
    soap_content_type(action) -> str
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable
from copy import deepcopy
from dataclasses import dataclass
from typing import Final

from lxml import etree

from xds.soap.fault import FaultCode, SoapFault, new_message_id, parse_fault
from xds.soap.mtom_decode import ContentType, MimeError, parse_content_type
from xds.vocabulary import (
    MEDIA_MULTIPART_RELATED,
    MEDIA_SOAP11,
    MEDIA_SOAP12,
    MEDIA_XOP,
    NS_SOAP12,
    NS_WSA,
    NS_WSSE,
    SOAP12_ROLE_NEXT,
    SOAP12_ROLE_ULTIMATE_RECEIVER,
    WSA_ANONYMOUS,
    WsaFault,
)
from xds.xml import XmlError, parse_xml, qname, to_bytes

__all__ = [
    "UNDERSTOOD_HEADERS",
    "Addressing",
    "Packaging",
    "SoapEnvelope",
    "build_request",
    "build_response",
    "parse_envelope",
    "parse_envelope_bytes",
    "request_envelope",
    "request_packaging",
    "response_envelope",
    "soap_content_type",
]

_S = NS_SOAP12
_ENVELOPE = qname(_S, "Envelope")
_HEADER = qname(_S, "Header")
_BODY = qname(_S, "Body")
_FAULT = qname(_S, "Fault")
_MUST_UNDERSTAND = qname(_S, "mustUnderstand")
_ROLE = qname(_S, "role")

WSA_ACTION: Final = qname(NS_WSA, "Action")
WSA_MESSAGE_ID: Final = qname(NS_WSA, "MessageID")
WSA_RELATES_TO: Final = qname(NS_WSA, "RelatesTo")
WSA_TO: Final = qname(NS_WSA, "To")
WSA_REPLY_TO: Final = qname(NS_WSA, "ReplyTo")
WSA_FROM: Final = qname(NS_WSA, "From")
WSA_FAULT_TO: Final = qname(NS_WSA, "FaultTo")
_WSA_ADDRESS = qname(NS_WSA, "Address")
_WSA_REPLY_RELATIONSHIP = "http://www.w3.org/2005/08/addressing/reply"

#: Header blocks this transport processes, so mustUnderstand on them is satisfied.
UNDERSTOOD_HEADERS: Final = frozenset(
    {
        WSA_ACTION,
        WSA_MESSAGE_ID,
        WSA_RELATES_TO,
        WSA_TO,
        WSA_REPLY_TO,
        WSA_FROM,
        WSA_FAULT_TO,
        qname(NS_WSSE, "Security"),
    }
)

_SINGLE_WSA = (WSA_ACTION, WSA_MESSAGE_ID, WSA_TO, WSA_REPLY_TO, WSA_FROM, WSA_FAULT_TO)
_OUR_ROLES = frozenset({"", SOAP12_ROLE_NEXT, SOAP12_ROLE_ULTIMATE_RECEIVER})


@dataclass(frozen=True, slots=True)
class Addressing:
    """The WS-Addressing 1.0 message addressing properties of a message (values stripped)."""

    action: str | None
    message_id: str | None = None
    to: str | None = None
    reply_to: str | None = None
    from_address: str | None = None
    fault_to: str | None = None
    relates_to: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class SoapEnvelope:
    """A parsed SOAP 1.2 envelope.

    ``headers`` are all header block elements (kept for WS-Security and other processing);
    ``body`` is the first element child of ``soap:Body`` (None for an empty Body).
    """

    root: etree._Element
    header: etree._Element | None
    headers: tuple[etree._Element, ...]
    body: etree._Element | None
    addressing: Addressing

    @property
    def action(self) -> str | None:
        return self.addressing.action

    @property
    def message_id(self) -> str | None:
        return self.addressing.message_id

    @property
    def relates_to(self) -> str | None:
        return self.addressing.relates_to

    @property
    def is_fault(self) -> bool:
        return self.body is not None and self.body.tag == _FAULT

    def header_blocks(self, name: str) -> tuple[etree._Element, ...]:
        """Header blocks with this Clark name, e.g. ``{wsse-ns}Security``."""
        return tuple(h for h in self.headers if h.tag == name)

    def fault(self, *, http_status: int | None = None) -> SoapFault | None:
        """The body's soap:Fault as a :class:`SoapFault`, or None."""
        if self.body is None or not self.is_fault:
            return None
        fault = parse_fault(self.body, http_status=http_status)
        fault.relates_to = self.relates_to
        return fault


def _text(element: etree._Element) -> str:
    return (element.text or "").strip()


def _address(element: etree._Element) -> str | None:
    address = element.find(_WSA_ADDRESS)
    return _text(address) if address is not None else None


def _element_children(element: etree._Element) -> list[etree._Element]:
    # Comments and processing instructions are not information items SOAP cares about.
    return [child for child in element if isinstance(child.tag, str)]


def _peek_message_id(headers: Iterable[etree._Element]) -> str | None:
    for block in headers:
        if block.tag == WSA_MESSAGE_ID:
            return _text(block) or None
    return None


def _is_true(value: str, *, block: etree._Element, message_id: str | None) -> bool:
    # SOAP 1.2 Part 1 §5.2.3: mustUnderstand is an xs:boolean.
    text = value.strip()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise SoapFault(
        FaultCode.SENDER,
        f"invalid soap:mustUnderstand value {value!r} on {block.tag}",
        relates_to=message_id,
    )


def parse_envelope(
    root: etree._Element,
    *,
    understood: Collection[str] = UNDERSTOOD_HEADERS,
    require_action: bool = True,
    check_must_understand: bool = True,
) -> SoapEnvelope:
    """Check a parsed document against the SOAP 1.2 / WS-Addressing rules (see module doc).

    Raises :class:`SoapFault` with the code, subcode and HTTP status to answer with.
    """
    # SOAP 1.2 Part 1 §5.4.7 / §2.6: the Envelope must be the SOAP 1.2 one.
    if not isinstance(root.tag, str):
        raise SoapFault(FaultCode.SENDER, "the document has no SOAP Envelope")
    if root.tag != _ENVELOPE:
        if etree.QName(root).localname == "Envelope":
            raise SoapFault(
                FaultCode.VERSION_MISMATCH,
                f"only SOAP 1.2 ({NS_SOAP12}) is supported; got an Envelope in "
                f"{etree.QName(root).namespace or 'no namespace'}",
            )
        raise SoapFault(FaultCode.SENDER, f"the document element is {root.tag}, not a SOAP 1.2 Envelope")
    children = _element_children(root)
    header: etree._Element | None = None
    body: etree._Element | None = None
    # SOAP 1.2 Part 1 §5.1: Envelope = Header? Body, nothing after the Body.
    if children and children[0].tag == _HEADER:
        header = children.pop(0)
    if len(children) != 1 or children[0].tag != _BODY:
        raise SoapFault(FaultCode.SENDER, "the SOAP Envelope must contain an optional Header and one Body")
    body_el = children[0]
    headers = tuple(_element_children(header)) if header is not None else ()
    message_id = _peek_message_id(headers)
    body_children = _element_children(body_el)
    body = body_children[0] if body_children else None

    if check_must_understand:
        not_understood: list[str] = []
        for block in headers:
            flag = block.get(_MUST_UNDERSTAND)
            if flag is None or not _is_true(flag, block=block, message_id=message_id):
                continue
            # SOAP 1.2 Part 1 §5.2.2-5.2.3: only blocks targeted at this node must be understood.
            role = (block.get(_ROLE) or "").strip()
            if role not in _OUR_ROLES:
                continue
            if block.tag not in understood:
                not_understood.append(block.tag)
        if not_understood:
            # SOAP 1.2 Part 1 §5.4.8: MustUnderstand fault with env:NotUnderstood blocks.
            raise SoapFault(
                FaultCode.MUST_UNDERSTAND,
                "header block(s) not understood: " + ", ".join(not_understood),
                not_understood=not_understood,
                relates_to=message_id,
            )

    by_name: dict[str, list[etree._Element]] = {}
    for block in headers:
        if isinstance(block.tag, str) and block.tag.startswith("{" + NS_WSA + "}"):
            by_name.setdefault(block.tag, []).append(block)
    # WS-Addressing 1.0 Core §3.1 / SOAP Binding §6.4.1: each of these appears at most once.
    for name in _SINGLE_WSA:
        if len(by_name.get(name, ())) > 1:
            raise SoapFault(
                FaultCode.SENDER,
                f"more than one {etree.QName(name).localname} header",
                subcode=(WsaFault.INVALID_ADDRESSING_HEADER, WsaFault.INVALID_CARDINALITY),
                detail=[_problem_header(name)],
                relates_to=message_id,
            )

    def single(name: str) -> etree._Element | None:
        found = by_name.get(name)
        return found[0] if found else None

    action_el = single(WSA_ACTION)
    # ITI TF-2x V.3.2 (NIST SoapMessageValidator): leading/trailing white space is tolerated
    # but the value is compared stripped.
    action = _text(action_el) if action_el is not None else None
    if require_action and action_el is None:
        # WS-Addressing SOAP Binding §6.4.1: a required header is missing.
        raise SoapFault(
            FaultCode.SENDER,
            "the wsa:Action header (http://www.w3.org/2005/08/addressing) is required",
            subcode=WsaFault.MESSAGE_ADDRESSING_HEADER_REQUIRED,
            detail=[_problem_header(WSA_ACTION)],
            relates_to=message_id,
        )
    if require_action and not action:
        raise SoapFault(
            FaultCode.SENDER,
            "the wsa:Action header is empty",
            subcode=WsaFault.INVALID_ADDRESSING_HEADER,
            detail=[_problem_header(WSA_ACTION)],
            relates_to=message_id,
        )

    relates_to = None
    for block in by_name.get(WSA_RELATES_TO, ()):
        relationship = (block.get("RelationshipType") or _WSA_REPLY_RELATIONSHIP).strip()
        if relationship == _WSA_REPLY_RELATIONSHIP:
            relates_to = _text(block) or None
            break
    to_el, reply_el = single(WSA_TO), single(WSA_REPLY_TO)
    from_el, fault_el = single(WSA_FROM), single(WSA_FAULT_TO)
    addressing = Addressing(
        action=action or None,
        message_id=message_id,
        to=_text(to_el) if to_el is not None else None,
        reply_to=_address(reply_el) if reply_el is not None else None,
        from_address=_address(from_el) if from_el is not None else None,
        fault_to=_address(fault_el) if fault_el is not None else None,
        relates_to=relates_to,
    )
    return SoapEnvelope(root=root, header=header, headers=headers, body=body, addressing=addressing)


def _problem_header(name: str) -> etree._Element:
    # WS-Addressing SOAP Binding §6.4.1: the fault detail names the header at fault.
    element = etree.Element(qname(NS_WSA, "ProblemHeaderQName"), nsmap={"wsa": NS_WSA})
    element.text = f"wsa:{etree.QName(name).localname}"
    return element


def parse_envelope_bytes(
    data: bytes,
    *,
    max_depth: int | None = None,
    understood: Collection[str] = UNDERSTOOD_HEADERS,
    require_action: bool = True,
    check_must_understand: bool = True,
) -> SoapEnvelope:
    """Parse bytes with the hardened parser, then :func:`parse_envelope`.

    Unparseable or unsafe XML (DTD, entities, too deep) is a ``Sender`` fault.
    """
    try:
        root = parse_xml(data, max_depth=max_depth)
    except XmlError as exc:
        raise SoapFault(FaultCode.SENDER, str(exc)) from None
    return parse_envelope(
        root,
        understood=understood,
        require_action=require_action,
        check_must_understand=check_must_understand,
    )


# -- building --------------------------------------------------------------------------------------
def _adopt(element: etree._Element) -> etree._Element:
    return element if element.getparent() is None else deepcopy(element)


def _envelope(
    body: etree._Element, headers: list[etree._Element], extra_headers: Iterable[etree._Element]
) -> etree._Element:
    env = etree.Element(_ENVELOPE, nsmap={"soap": _S, "wsa": NS_WSA})
    header = etree.SubElement(env, _HEADER)
    for block in headers:
        header.append(block)
    for block in extra_headers:
        header.append(_adopt(block))
    etree.SubElement(env, _BODY).append(_adopt(body))
    return env


def _wsa(name: str, text: str, *, must_understand: bool = False) -> etree._Element:
    element = etree.Element(name)
    if must_understand:
        element.set(_MUST_UNDERSTAND, "true")
    element.text = text
    return element


def request_envelope(
    body: etree._Element,
    *,
    action: str,
    to: str | None = None,
    message_id: str | None = None,
    reply_to: str | None = WSA_ANONYMOUS,
    extra_headers: Iterable[etree._Element] = (),
) -> etree._Element:
    """A request envelope (ITI TF-2x V.3.2): Action (mustUnderstand), MessageID, ReplyTo, To."""
    headers = [
        _wsa(WSA_ACTION, action, must_understand=True),
        _wsa(WSA_MESSAGE_ID, message_id or new_message_id()),
    ]
    if reply_to:
        reply = etree.Element(WSA_REPLY_TO)
        etree.SubElement(reply, _WSA_ADDRESS).text = reply_to
        headers.append(reply)
    if to:
        headers.append(_wsa(WSA_TO, to))
    return _envelope(body, headers, extra_headers)


def response_envelope(
    body: etree._Element,
    *,
    action: str,
    relates_to: str | None,
    message_id: str | None = None,
    extra_headers: Iterable[etree._Element] = (),
) -> etree._Element:
    """A response envelope (ITI TF-2x V.3.2): Action (mustUnderstand), RelatesTo, MessageID."""
    headers = [_wsa(WSA_ACTION, action, must_understand=True)]
    if relates_to:
        headers.append(_wsa(WSA_RELATES_TO, relates_to))
    headers.append(_wsa(WSA_MESSAGE_ID, message_id or new_message_id()))
    return _envelope(body, headers, extra_headers)


def build_request(
    body: etree._Element,
    *,
    action: str,
    to: str | None = None,
    message_id: str | None = None,
    reply_to: str | None = WSA_ANONYMOUS,
    extra_headers: Iterable[etree._Element] = (),
) -> bytes:
    """:func:`request_envelope` serialized as UTF-8 bytes with an XML declaration."""
    env = request_envelope(
        body, action=action, to=to, message_id=message_id, reply_to=reply_to, extra_headers=extra_headers
    )
    return to_bytes(env, xml_declaration=True)


def build_response(
    body: etree._Element,
    *,
    action: str,
    relates_to: str | None,
    message_id: str | None = None,
    extra_headers: Iterable[etree._Element] = (),
) -> bytes:
    """:func:`response_envelope` serialized as UTF-8 bytes with an XML declaration."""
    env = response_envelope(
        body, action=action, relates_to=relates_to, message_id=message_id, extra_headers=extra_headers
    )
    return to_bytes(env, xml_declaration=True)


# -- HTTP binding ---------------------------------------------------------------------------------
class Packaging(enum.Enum):
    """How a SOAP message travels over HTTP."""

    SIMPLE = "simple"  # application/soap+xml
    MTOM = "mtom"  # multipart/related; type="application/xop+xml"


def soap_content_type(action: str | None = None) -> str:
    """The simple-SOAP Content-Type (SOAP 1.2 Part 2 §7.1.4; RFC 3902 action parameter)."""
    value = f"{MEDIA_SOAP12}; charset=UTF-8"
    if action:
        return f'{value}; action="{action}"'
    return value


def request_packaging(content_type: str | None) -> tuple[Packaging, ContentType]:
    """Classify a request Content-Type (SOAP 1.2 Part 2 §7.1.4; MTOM §4.3).

    ``application/soap+xml`` is simple SOAP; ``multipart/related`` with ``type`` of
    ``application/xop+xml`` (or no type) is MTOM. ``text/xml``, the SOAP 1.1 binding, is a
    VersionMismatch fault; anything else a Sender fault with HTTP 415.
    """
    if not content_type or not content_type.strip():
        raise SoapFault(FaultCode.SENDER, "the request has no Content-Type", http_status=415)
    try:
        ctype = parse_content_type(content_type)
    except MimeError as exc:
        raise SoapFault(FaultCode.SENDER, str(exc), http_status=415) from None
    if ctype.media_type == MEDIA_SOAP12:
        return Packaging.SIMPLE, ctype
    if ctype.media_type == MEDIA_SOAP11:
        raise SoapFault(
            FaultCode.VERSION_MISMATCH, "text/xml is the SOAP 1.1 binding; XDS.b requires SOAP 1.2"
        )
    if ctype.media_type == MEDIA_MULTIPART_RELATED:
        kind = (ctype.param("type") or "").strip().lower()
        start_info = (ctype.param("start-info") or "").strip().lower()
        if kind == MEDIA_SOAP11 or (kind == MEDIA_XOP and start_info == MEDIA_SOAP11):
            raise SoapFault(FaultCode.VERSION_MISMATCH, "a SOAP 1.1 MIME package; XDS.b requires SOAP 1.2")
        if kind in ("", MEDIA_XOP, MEDIA_SOAP12):
            return Packaging.MTOM, ctype
        raise SoapFault(
            FaultCode.SENDER, f"multipart/related of type {kind!r} is not MTOM/XOP", http_status=415
        )
    raise SoapFault(
        FaultCode.SENDER,
        f"unsupported Content-Type {ctype.media_type!r}; expected {MEDIA_SOAP12} or MTOM",
        http_status=415,
    )
