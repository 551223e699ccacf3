"""XPath views of what a peer answered: the SOAP envelope, the ebRS response and its objects.

Written independently of :mod:`xds.metadata`: the runner reads responses with its own XPath
expressions, so a mistake in the project's codec cannot hide the same mistake in a peer.
"""

from __future__ import annotations

import base64
import binascii
import copy
from dataclasses import dataclass
from functools import cached_property
from typing import Final

from lxml import etree

from conformance_tests.transport import SoapAnswer
from xds.soap import normalize_content_id
from xds.vocabulary import (
    NS_QUERY,
    NS_RIM,
    NS_RS,
    NS_SOAP11,
    NS_SOAP12,
    NS_WSA,
    NS_XDS,
    NS_XOP,
    IdScheme,
    Node,
    Severity,
)

__all__ = ["NS", "ObjectView", "RegistryErrorView", "ResponseView"]

NS: Final = {
    "rim": NS_RIM,
    "rs": NS_RS,
    "query": NS_QUERY,
    "xds": NS_XDS,
    "soap": NS_SOAP12,
    "s11": NS_SOAP11,
    "wsa": NS_WSA,
    "xop": NS_XOP,
}

_UNIQUE_ID_SCHEMES: Final = (IdScheme.DE_UNIQUE_ID, IdScheme.SS_UNIQUE_ID, IdScheme.FD_UNIQUE_ID)
_PATIENT_ID_SCHEMES: Final = (IdScheme.DE_PATIENT_ID, IdScheme.SS_PATIENT_ID, IdScheme.FD_PATIENT_ID)


def _xpath(node: etree._Element, expression: str, **variables: str) -> list[etree._Element]:
    return node.xpath(expression, namespaces=NS, **variables)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class RegistryErrorView:
    """One rs:RegistryError as answered."""

    code: str
    severity: str
    context: str
    location: str

    @property
    def is_error(self) -> bool:
        return self.severity == Severity.ERROR

    @property
    def is_warning(self) -> bool:
        return self.severity == Severity.WARNING

    def describe(self) -> str:
        level = self.severity.rsplit(":", 1)[-1] if self.severity else "(no severity)"
        return f"{self.code} [{level}] {self.context}".strip()


@dataclass(frozen=True, slots=True, eq=False)
class ObjectView:
    """A registry object of a LeafClass response (ExtrinsicObject, RegistryPackage, Association)."""

    element: etree._Element

    @property
    def tag(self) -> str:
        return etree.QName(self.element).localname

    @property
    def id(self) -> str:
        return self.element.get("id") or ""

    @property
    def lid(self) -> str | None:
        return self.element.get("lid")

    @property
    def status(self) -> str | None:
        return self.element.get("status")

    @property
    def version(self) -> str | None:
        found = _xpath(self.element, "rim:VersionInfo/@versionName")
        return str(found[0]) if found else None

    @property
    def has_version_info(self) -> bool:
        return bool(_xpath(self.element, "rim:VersionInfo"))

    def slot(self, name: str) -> list[str]:
        """The values of the Slot ``name`` (all Value elements, in order)."""
        return [str(v) for v in _xpath(self.element, "rim:Slot[@name=$n]/rim:ValueList/rim:Value/text()", n=name)]

    def external_id(self, scheme: str) -> str | None:
        found = _xpath(self.element, "rim:ExternalIdentifier[@identificationScheme=$s]/@value", s=scheme)
        return str(found[0]) if found else None

    def codes(self, scheme: str) -> list[tuple[str, str]]:
        """(code, codingScheme) of each coded Classification with ``scheme``."""
        result = []
        for cl in _xpath(self.element, "rim:Classification[@classificationScheme=$s]", s=scheme):
            coding = _xpath(cl, "rim:Slot[@name='codingScheme']/rim:ValueList/rim:Value/text()")
            result.append((cl.get("nodeRepresentation") or "", str(coding[0]) if coding else ""))
        return result

    @property
    def unique_id(self) -> str | None:
        for scheme in _UNIQUE_ID_SCHEMES:
            value = self.external_id(scheme)
            if value is not None:
                return value
        return None

    @property
    def patient_id(self) -> str | None:
        for scheme in _PATIENT_ID_SCHEMES:
            value = self.external_id(scheme)
            if value is not None:
                return value
        return None

    # Associations
    @property
    def association_type(self) -> str | None:
        return self.element.get("associationType")

    @property
    def source(self) -> str | None:
        return self.element.get("sourceObject")

    @property
    def target(self) -> str | None:
        return self.element.get("targetObject")


class ResponseView:
    """The reply to one SOAP request, read with XPath."""

    def __init__(self, answer: SoapAnswer) -> None:
        self.answer = answer
        self.envelope = answer.envelope

    # -- SOAP level ------------------------------------------------------------------------------
    @cached_property
    def soap_namespace(self) -> str | None:
        if self.envelope is None:
            return None
        return etree.QName(self.envelope).namespace

    @cached_property
    def body(self) -> etree._Element | None:
        """The first element child of the SOAP Body (either SOAP version), if any."""
        if self.envelope is None:
            return None
        found = _xpath(self.envelope, "/*[local-name()='Envelope']/*[local-name()='Body']/*[1]")
        return found[0] if found else None

    @property
    def body_tag(self) -> str | None:
        return None if self.body is None else self.body.tag

    def header_values(self, local: str) -> list[str]:
        """Text of every WS-Addressing header ``wsa:<local>``."""
        if self.envelope is None:
            return []
        return [
            "".join(e.itertext())
            for e in _xpath(
                self.envelope, "/*[local-name()='Envelope']/*[local-name()='Header']/wsa:*[local-name()=$n]", n=local
            )
        ]

    def header_elements(self) -> list[etree._Element]:
        if self.envelope is None:
            return []
        return _xpath(self.envelope, "/*[local-name()='Envelope']/*[local-name()='Header']/*")

    @property
    def is_fault(self) -> bool:
        return self.body is not None and etree.QName(self.body).localname == "Fault"

    @property
    def fault_code(self) -> str | None:
        """env:Code/env:Value of a SOAP 1.2 fault, as a local name (``Sender`` ...)."""
        if not self.is_fault or self.body is None:
            return None
        found = _xpath(self.body, "soap:Code/soap:Value/text()")
        return str(found[0]).strip().rsplit(":", 1)[-1] if found else None

    @property
    def fault_subcodes(self) -> list[str]:
        """Every env:Subcode/env:Value, resolved to Clark notation where its prefix is bound."""
        if not self.is_fault or self.body is None:
            return []
        result = []
        for value in _xpath(self.body, "soap:Code//soap:Subcode/soap:Value"):
            text = "".join(value.itertext()).strip()
            prefix, _, local = text.rpartition(":")
            namespace = value.nsmap.get(prefix or None)
            result.append(f"{{{namespace}}}{local}" if namespace else text)
        return result

    @property
    def fault_reason(self) -> str:
        if not self.is_fault or self.body is None:
            return ""
        return " ".join(str(t).strip() for t in _xpath(self.body, "soap:Reason/soap:Text/text()"))

    # -- XOP -------------------------------------------------------------------------------------
    def binary(self, element: etree._Element) -> bytes | None:
        """The content of a base64Binary element: its XOP part (XOP §3.1, the ``cid:`` URL of
        an ``xop:Include``) or its inline base64 text; None when the part or the base64 is bad."""
        includes = _xpath(element, "xop:Include")
        if includes:
            href = includes[0].get("href") or ""
            return self.answer.parts.get(normalize_content_id(href))
        try:
            return base64.b64decode("".join(element.itertext()).strip(), validate=False)
        except (binascii.Error, ValueError):
            return None

    def infoset(self) -> etree._Element | None:
        """The body as its XOP infoset: each ``xop:Include`` replaced by the base64 of its part
        (XOP §3.2), which is what the schemas describe."""
        if self.body is None:
            return None
        body = copy.deepcopy(self.body)
        for include in _xpath(body, ".//xop:Include"):
            parent = include.getparent()
            if parent is None:
                continue
            data = self.answer.parts.get(normalize_content_id(include.get("href") or ""))
            parent.remove(include)
            parent.text = base64.b64encode(data or b"").decode("ascii")
        return body

    # -- ebRS level ------------------------------------------------------------------------------
    @property
    def registry_response(self) -> etree._Element | None:
        """The element carrying status and errors: the body itself, or the rs:RegistryResponse
        inside an xds:RetrieveDocumentSetResponse (ITI TF-2b §3.43.4.2)."""
        if self.body is None:
            return None
        if self.body.tag == f"{{{NS_XDS}}}RetrieveDocumentSetResponse":
            found = _xpath(self.body, "rs:RegistryResponse")
            return found[0] if found else None
        return self.body

    @property
    def status(self) -> str | None:
        holder = self.registry_response
        return None if holder is None else holder.get("status")

    @cached_property
    def errors(self) -> list[RegistryErrorView]:
        if self.body is None:
            return []
        return [
            RegistryErrorView(
                code=e.get("errorCode") or "",
                severity=e.get("severity") or "",
                context=e.get("codeContext") or "",
                location=e.get("location") or "",
            )
            for e in _xpath(self.body, ".//rs:RegistryErrorList/rs:RegistryError")
        ]

    @property
    def error_list_elements(self) -> list[etree._Element]:
        return [] if self.body is None else _xpath(self.body, ".//rs:RegistryErrorList")

    @cached_property
    def object_list(self) -> etree._Element | None:
        if self.body is None:
            return None
        found = _xpath(self.body, "rim:RegistryObjectList")
        return found[0] if found else None

    def _objects(self, local: str) -> list[ObjectView]:
        if self.object_list is None:
            return []
        return [ObjectView(e) for e in _xpath(self.object_list, f"rim:{local}")]

    @cached_property
    def documents(self) -> list[ObjectView]:
        return self._objects("ExtrinsicObject")

    @cached_property
    def packages(self) -> list[ObjectView]:
        return self._objects("RegistryPackage")

    def _packages_of(self, node: str) -> list[ObjectView]:
        # ITI TF-3 §4.2.3.3/§4.2.3.4: a RegistryPackage is a SubmissionSet or Folder by a
        # Classification with that classificationNode, inside the package or beside it.
        result = []
        for package in self.packages:
            inside = _xpath(package.element, "rim:Classification[@classificationNode=$n]", n=node)
            beside = (
                _xpath(
                    self.object_list,
                    "rim:Classification[@classificationNode=$n][@classifiedObject=$id]",
                    n=node,
                    id=package.id,
                )
                if self.object_list is not None
                else []
            )
            if inside or beside:
                result.append(package)
        return result

    @cached_property
    def submission_sets(self) -> list[ObjectView]:
        return self._packages_of(Node.SUBMISSION_SET)

    @cached_property
    def folders(self) -> list[ObjectView]:
        return self._packages_of(Node.FOLDER)

    @cached_property
    def associations(self) -> list[ObjectView]:
        return self._objects("Association")

    @cached_property
    def object_refs(self) -> list[str]:
        return [o.id for o in self._objects("ObjectRef")]

    # -- lookups ---------------------------------------------------------------------------------
    def document(self, unique_id: str) -> ObjectView | None:
        """The single DocumentEntry with this uniqueId, if exactly one is present."""
        found = [d for d in self.documents if d.external_id(IdScheme.DE_UNIQUE_ID) == unique_id]
        return found[0] if len(found) == 1 else None

    def documents_with(self, unique_id: str) -> list[ObjectView]:
        return [d for d in self.documents if d.external_id(IdScheme.DE_UNIQUE_ID) == unique_id]

    def associations_of(self, kind: str, *, source: str | None = None, target: str | None = None) -> list[ObjectView]:
        return [
            a
            for a in self.associations
            if a.association_type == kind
            and (source is None or a.source == source)
            and (target is None or a.target == target)
        ]
