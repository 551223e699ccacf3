"""SOAP 1.2 faults: the exception that carries one, its envelope, and the client-side parser.

A :class:`SoapFault` is raised wherever the transport finds a message it cannot accept
(unparseable XML, wrong SOAP version, a missing or unknown ``wsa:Action``, a broken MIME package)
and carries everything needed to answer: the fault code and subcodes, the reason, the HTTP status
(h11's ``error_status_hint``), and the SOAP headers the fault must carry (``env:NotUnderstood``,
``env:Upgrade``). Business errors are *not* faults: they travel in the Body as a RegistryResponse
with status Failure (ITI TF-2x Appendix V; xds-notes §1.3).

Public API::

    FaultCode                                   # VersionMismatch, MustUnderstand, Sender, ...
    SoapFault(code, reason, *, subcode=None, detail=(), http_status=None,
              not_understood=(), relates_to=None, node=None, role=None)
        .subcode / .subcodes / .status / .to_envelope(*, relates_to=None, message_id=None)
    parse_fault(fault_element, *, http_status=None) -> SoapFault
    new_message_id() -> str                     # "urn:uuid:..."
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Sequence
from copy import deepcopy

from lxml import etree

from xds.vocabulary import NS_SOAP11, NS_SOAP12, NS_WSA, WSA_FAULT_ACTION
from xds.xml import qname, to_bytes

__all__ = ["FaultCode", "SoapFault", "new_message_id", "parse_fault"]

_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_S = NS_SOAP12

# Prefixes used when a QName value (fault subcode, NotUnderstood/@qname) is written.
_KNOWN_PREFIXES = {NS_SOAP12: "soap", NS_WSA: "wsa"}


class FaultCode(str, enum.Enum):
    """The five SOAP 1.2 fault codes (SOAP 1.2 Part 1 §5.4.6)."""

    VERSION_MISMATCH = "VersionMismatch"
    MUST_UNDERSTAND = "MustUnderstand"
    DATA_ENCODING_UNKNOWN = "DataEncodingUnknown"
    SENDER = "Sender"
    RECEIVER = "Receiver"

    @property
    def qname(self) -> str:
        return qname(NS_SOAP12, self.value)


def new_message_id() -> str:
    """A fresh WS-Addressing message id (``urn:uuid:`` form, ITI TF-2x V.3.2)."""
    return f"urn:uuid:{uuid.uuid4()}"


def _default_status(code: FaultCode) -> int:
    # SOAP 1.2 Part 2 §7.5.1.2 maps env:Sender to 400 and every other fault to 500. XDS peers
    # expect 400 for the client-side faults too (the NIST toolkit reads any 4xx as "rejected"),
    # so VersionMismatch and MustUnderstand answer 400 here; Receiver and DataEncodingUnknown 500.
    if code in (FaultCode.SENDER, FaultCode.VERSION_MISMATCH, FaultCode.MUST_UNDERSTAND):
        return 400
    return 500


class SoapFault(Exception):
    """A SOAP 1.2 fault, raised by the transport and turned into a fault envelope.

    Parameters
    ----------
    code:
        The fault code (SOAP 1.2 Part 1 §5.4.6).
    reason:
        Human-readable text for ``env:Reason/env:Text``.
    subcode:
        A subcode QName in Clark notation (``{ns}local``), e.g.
        :attr:`xds.vocabulary.WsaFault.ACTION_NOT_SUPPORTED`, or a sequence of them for nested
        subcodes (WS-Addressing's ``InvalidAddressingHeader`` / ``InvalidCardinality``).
    detail:
        Elements for ``env:Detail`` (copied when the envelope is built).
    http_status:
        The HTTP status to answer with; by default 400 for Sender, VersionMismatch and
        MustUnderstand, 500 otherwise.
    not_understood:
        Clark names of the header blocks that caused a MustUnderstand fault; each becomes an
        ``env:NotUnderstood`` header block (SOAP 1.2 Part 1 §5.4.8).
    relates_to:
        The wsa:MessageID of the faulty message, when it could be read.
    """

    def __init__(
        self,
        code: FaultCode,
        reason: str,
        *,
        subcode: str | Sequence[str] | None = None,
        detail: Iterable[etree._Element] = (),
        http_status: int | None = None,
        not_understood: Iterable[str] = (),
        relates_to: str | None = None,
        node: str | None = None,
        role: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.code = FaultCode(code)
        self.reason = reason
        if subcode is None:
            self.subcodes: tuple[str, ...] = ()
        elif isinstance(subcode, str):
            self.subcodes = (subcode,)
        else:
            self.subcodes = tuple(subcode)
        self.detail: tuple[etree._Element, ...] = tuple(detail)
        self.http_status = http_status if http_status is not None else _default_status(self.code)
        self.not_understood: tuple[str, ...] = tuple(not_understood)
        self.relates_to = relates_to
        self.node = node
        self.role = role

    @property
    def subcode(self) -> str | None:
        """The first (outermost) subcode in Clark notation, or None."""
        return self.subcodes[0] if self.subcodes else None

    @property
    def status(self) -> int:
        """The HTTP status to answer with."""
        return self.http_status

    def __str__(self) -> str:
        sub = f" [{', '.join(self.subcodes)}]" if self.subcodes else ""
        return f"{self.code.value}{sub}: {self.reason}"

    def __repr__(self) -> str:
        return f"SoapFault({self.code.value!r}, {self.reason!r}, subcodes={self.subcodes!r})"

    # -- serialization -------------------------------------------------------------------------
    def to_element(self, *, relates_to: str | None = None, message_id: str | None = None) -> etree._Element:
        """The fault envelope as an element tree (see :meth:`to_envelope`)."""
        env = etree.Element(qname(_S, "Envelope"), nsmap={"soap": _S, "wsa": NS_WSA})
        header = etree.SubElement(env, qname(_S, "Header"))
        # WS-Addressing 1.0 SOAP Binding §6: faults carry the fault action and relate to the
        # message that caused them.
        action = etree.SubElement(header, qname(NS_WSA, "Action"))
        action.set(qname(_S, "mustUnderstand"), "true")
        action.text = WSA_FAULT_ACTION
        etree.SubElement(header, qname(NS_WSA, "MessageID")).text = message_id or new_message_id()
        relates = relates_to if relates_to is not None else self.relates_to
        if relates:
            etree.SubElement(header, qname(NS_WSA, "RelatesTo")).text = relates
        # SOAP 1.2 Part 1 §5.4.8: one env:NotUnderstood per header block not understood.
        for name in self.not_understood:
            ns, local = _split_clark(name)
            block = etree.SubElement(header, qname(_S, "NotUnderstood"), nsmap={"nu": ns} if ns else None)
            block.set("qname", f"nu:{local}" if ns else local)
        # SOAP 1.2 Part 1 §5.4.7: a VersionMismatch fault names the envelope versions we support.
        if self.code is FaultCode.VERSION_MISMATCH:
            upgrade = etree.SubElement(header, qname(_S, "Upgrade"))
            supported = etree.SubElement(upgrade, qname(_S, "SupportedEnvelope"))
            supported.set("qname", "soap:Envelope")
        body = etree.SubElement(env, qname(_S, "Body"))
        fault = etree.SubElement(body, qname(_S, "Fault"))
        code_el = etree.SubElement(fault, qname(_S, "Code"))
        etree.SubElement(code_el, qname(_S, "Value")).text = f"soap:{self.code.value}"
        parent = code_el
        for sub in self.subcodes:
            parent = etree.SubElement(parent, qname(_S, "Subcode"))
            _qname_value(parent, qname(_S, "Value"), sub)
        reason = etree.SubElement(fault, qname(_S, "Reason"))
        text = etree.SubElement(reason, qname(_S, "Text"))
        text.set(_XML_LANG, "en")
        text.text = self.reason
        if self.node:
            etree.SubElement(fault, qname(_S, "Node")).text = self.node
        if self.role:
            etree.SubElement(fault, qname(_S, "Role")).text = self.role
        if self.detail:
            detail = etree.SubElement(fault, qname(_S, "Detail"))
            for item in self.detail:
                detail.append(deepcopy(item))
        return env

    def to_envelope(self, *, relates_to: str | None = None, message_id: str | None = None) -> bytes:
        """The complete fault envelope (UTF-8 bytes) with wsa:Action ``.../addressing/fault``.

        ``relates_to`` defaults to :attr:`relates_to` (the faulty message's MessageID, if known).
        """
        return to_bytes(self.to_element(relates_to=relates_to, message_id=message_id), xml_declaration=True)


def _split_clark(name: str) -> tuple[str, str]:
    if name.startswith("{"):
        ns, _, local = name[1:].partition("}")
        return ns, local
    return "", name


def _qname_value(parent: etree._Element, tag: str, name: str) -> etree._Element:
    """Append ``tag`` whose text is the Clark name ``name`` written as a prefixed QName.

    The namespace is declared on the new element itself unless a known prefix already binds it.
    """
    ns, local = _split_clark(name)
    if not ns:
        element = etree.SubElement(parent, tag)
        element.text = local
        return element
    in_scope = parent.nsmap
    prefix = next((p for p, u in in_scope.items() if u == ns and p), None)
    if prefix is None:
        prefix = _KNOWN_PREFIXES.get(ns, "sc")
        if prefix in in_scope:
            prefix = "sc"
        element = etree.SubElement(parent, tag, nsmap={prefix: ns})
    else:
        element = etree.SubElement(parent, tag)
    element.text = f"{prefix}:{local}"
    return element


# -- parsing a fault reply (client side) -----------------------------------------------------
def _resolve_qname_text(element: etree._Element) -> str:
    text = (element.text or "").strip()
    prefix, sep, local = text.rpartition(":")
    if not sep:
        ns = element.nsmap.get(None)
        return qname(ns, text) if ns else text
    ns = element.nsmap.get(prefix)
    return qname(ns, local) if ns else text


def _fault_code(value: str) -> FaultCode:
    local = value.rpartition("}")[2]
    for code in FaultCode:
        if code.value == local:
            return code
    # SOAP 1.1 codes: Client ~ Sender, Server ~ Receiver.
    if local == "Client":
        return FaultCode.SENDER
    return FaultCode.RECEIVER


def parse_fault(fault: etree._Element, *, http_status: int | None = None) -> SoapFault:
    """Read a ``soap12:Fault`` element (or a SOAP 1.1 one) into a :class:`SoapFault`.

    QName values are resolved against the in-scope namespaces, so ``wsa:ActionNotSupported``
    becomes ``{http://www.w3.org/2005/08/addressing}ActionNotSupported`` whatever the prefix.
    """
    if fault.tag == qname(NS_SOAP11, "Fault"):
        code_el = fault.find("faultcode")
        code = _fault_code(_resolve_qname_text(code_el)) if code_el is not None else FaultCode.RECEIVER
        reason = (fault.findtext("faultstring") or "").strip()
        detail_el = fault.find("detail")
        return SoapFault(
            code,
            reason,
            detail=list(detail_el) if detail_el is not None else (),
            http_status=http_status,
        )
    if fault.tag != qname(_S, "Fault"):
        raise ValueError(f"not a SOAP fault element: {fault.tag}")
    value = fault.find(f"{{{_S}}}Code/{{{_S}}}Value")
    code = _fault_code(_resolve_qname_text(value)) if value is not None else FaultCode.RECEIVER
    subcodes: list[str] = []
    parent = fault.find(f"{{{_S}}}Code")
    while parent is not None:
        parent = parent.find(f"{{{_S}}}Subcode")
        if parent is None:
            break
        sub_value = parent.find(f"{{{_S}}}Value")
        if sub_value is not None:
            subcodes.append(_resolve_qname_text(sub_value))
    texts = fault.findall(f"{{{_S}}}Reason/{{{_S}}}Text")
    chosen = next((t for t in texts if (t.get(_XML_LANG) or "").lower().startswith("en")), None)
    if chosen is None and texts:
        chosen = texts[0]
    reason = (chosen.text or "").strip() if chosen is not None else ""
    detail_el = fault.find(f"{{{_S}}}Detail")
    return SoapFault(
        code,
        reason,
        subcode=subcodes or None,
        detail=list(detail_el) if detail_el is not None else (),
        http_status=http_status,
        node=fault.findtext(f"{{{_S}}}Node"),
        role=fault.findtext(f"{{{_S}}}Role"),
    )
