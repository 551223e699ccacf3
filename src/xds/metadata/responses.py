"""Registry response envelopes: ``rs:RegistryResponse`` and ``query:AdhocQueryResponse``, built
and parsed (ebRS 3.0 rs.xsd / query.xsd; ITI TF-3 §4.2.4; xds-notes §2).

* Status: no errors -> Success; only warnings -> Success with a RegistryErrorList (there is no
  "Warning" status, NIST issue #265); any error -> Failure, unless the caller names the status
  (PartialSuccess for ITI-43 / RAD-69 / XCA).
* ``highestSeverity`` is set whenever there is a RegistryErrorList.
* ITI-18 answers errors inside ``query:AdhocQueryResponse``, never a bare RegistryResponse
  (NIST issues #147, #173, #251); its ``rim:RegistryObjectList`` is always present (query.xsd).

Public API::

    build_registry_response(errors, *, status=None) -> el
    build_adhoc_query_response(*, objects, errors, status=None) -> el
    build_registry_error_list(parent, errors) -> el | None
    parse_registry_response(el) -> RegistryResponseResult(status, errors)
    parse_adhoc_query_response(el) -> AdhocQueryResponseResult(status, errors, object_list)
    parse_registry_errors(el) -> tuple[RegistryError, ...]
    derive_status(errors) -> str
    ResponseFormatError(ValueError)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from lxml import etree

from xds.errors import ErrorCode, RegistryError
from xds.metadata import ebrim_names as n
from xds.vocabulary import NS_QUERY, NS_RIM, NS_RS, ResponseStatus, Severity

__all__ = [
    "AdhocQueryResponseResult",
    "RegistryResponseResult",
    "ResponseFormatError",
    "build_adhoc_query_response",
    "build_registry_error_list",
    "build_registry_response",
    "derive_status",
    "parse_adhoc_query_response",
    "parse_registry_errors",
    "parse_registry_response",
]

_RS_NSMAP: Final = {"rs": NS_RS}
_QUERY_NSMAP: Final = {"query": NS_QUERY, "rs": NS_RS, "rim": NS_RIM}
_KNOWN_CODES: Final = {c.value: c for c in ErrorCode}


class ResponseFormatError(ValueError):
    """A response element is not the expected envelope (wrong element, no status)."""


@dataclass(frozen=True, slots=True)
class RegistryResponseResult:
    """A parsed ``rs:RegistryResponse``: its status URN and errors (warnings included)."""

    status: str
    errors: tuple[RegistryError, ...]

    @property
    def succeeded(self) -> bool:
        return self.status == ResponseStatus.SUCCESS

    @property
    def error_codes(self) -> list[str]:
        """The codes of Error-severity entries (warnings left out)."""
        return [e.code_text for e in self.errors if e.is_error]


@dataclass(frozen=True, slots=True)
class AdhocQueryResponseResult:
    """A parsed ``query:AdhocQueryResponse``: status, errors and the ``rim:RegistryObjectList``."""

    status: str
    errors: tuple[RegistryError, ...]
    object_list: etree._Element | None

    @property
    def succeeded(self) -> bool:
        return self.status == ResponseStatus.SUCCESS


def derive_status(errors: Sequence[RegistryError]) -> str:
    """ITI TF-3 §4.2.4.1: Failure when any entry is an Error; warnings alone keep Success."""
    return ResponseStatus.FAILURE if any(e.is_error for e in errors) else ResponseStatus.SUCCESS


def build_registry_error_list(parent: etree._Element, errors: Sequence[RegistryError]) -> etree._Element | None:
    """Append an ``rs:RegistryErrorList`` (with highestSeverity) to ``parent``; None when no errors."""
    if not errors:
        return None
    highest = Severity.ERROR if any(e.is_error for e in errors) else Severity.WARNING
    error_list = etree.SubElement(parent, n.Q_REGISTRY_ERROR_LIST, {"highestSeverity": highest})
    for e in errors:
        attrib = {"errorCode": e.code_text, "codeContext": e.context, "severity": e.severity}
        if e.location:
            attrib["location"] = e.location
        etree.SubElement(error_list, n.Q_REGISTRY_ERROR, attrib)
    return error_list


def build_registry_response(errors: Sequence[RegistryError], *, status: str | None = None) -> etree._Element:
    """An ``rs:RegistryResponse`` (ITI-41, ITI-42 responses; inside ITI-43/RAD-69 responses)."""
    root = etree.Element(n.Q_REGISTRY_RESPONSE, {"status": status or derive_status(errors)}, nsmap=_RS_NSMAP)
    build_registry_error_list(root, errors)
    return root


def build_adhoc_query_response(
    *,
    objects: etree._Element | None,
    errors: Sequence[RegistryError],
    status: str | None = None,
) -> etree._Element:
    """A ``query:AdhocQueryResponse`` (ITI TF-2a §3.18.4.1.3) around a ``rim:RegistryObjectList``.

    ``objects`` is moved into the response (None gives the empty list query.xsd requires).
    """
    root = etree.Element(n.Q_ADHOC_QUERY_RESPONSE, {"status": status or derive_status(errors)}, nsmap=_QUERY_NSMAP)
    build_registry_error_list(root, errors)
    if objects is None:
        etree.SubElement(root, n.Q_REGISTRY_OBJECT_LIST)
    else:
        if objects.tag != n.Q_REGISTRY_OBJECT_LIST:
            raise ValueError(f"objects must be a rim:RegistryObjectList, not {objects.tag}")
        root.append(objects)
    return root


def parse_registry_errors(el: etree._Element) -> tuple[RegistryError, ...]:
    """The RegistryErrors of a response's ``rs:RegistryErrorList`` (empty when there is none).

    A known code becomes an :class:`ErrorCode`, any other stays a string; a missing severity is
    Error (the rs.xsd default).
    """
    out: list[RegistryError] = []
    for error_list in el:
        if error_list.tag != n.Q_REGISTRY_ERROR_LIST:
            continue
        for e in error_list:
            if e.tag != n.Q_REGISTRY_ERROR:
                continue
            text = e.get("errorCode", "")
            code: ErrorCode | str = _KNOWN_CODES.get(text, text)
            context = e.get("codeContext") or (e.text or "").strip()
            out.append(RegistryError(code, context, e.get("location", ""), e.get("severity", Severity.ERROR)))
    return tuple(out)


def _status(el: etree._Element) -> str:
    status = el.get("status")
    if not status:
        raise ResponseFormatError(f"{el.tag} has no status")
    return status


def parse_registry_response(el: etree._Element) -> RegistryResponseResult:
    """Read an ``rs:RegistryResponse``."""
    if el.tag != n.Q_REGISTRY_RESPONSE:
        raise ResponseFormatError(f"expected rs:RegistryResponse, found {el.tag}")
    return RegistryResponseResult(_status(el), parse_registry_errors(el))


def parse_adhoc_query_response(el: etree._Element) -> AdhocQueryResponseResult:
    """Read a ``query:AdhocQueryResponse``; a bare RegistryResponse is refused (NIST #147)."""
    if el.tag != n.Q_ADHOC_QUERY_RESPONSE:
        raise ResponseFormatError(f"expected query:AdhocQueryResponse, found {el.tag}")
    object_list = next((c for c in el if c.tag == n.Q_REGISTRY_OBJECT_LIST), None)
    return AdhocQueryResponseResult(_status(el), parse_registry_errors(el), object_list)
