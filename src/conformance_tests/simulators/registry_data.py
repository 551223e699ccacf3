"""A Document Registry loaded with the consumer test data, answering ITI-18 (ITI TF-2a §3.18).

It answers the stored queries a Document Consumer and an Imaging Document Consumer use
(xds-notes §6.2, §7.6): FindDocuments, GetDocuments, GetAssociations, GetSubmissionSets and
GetSubmissionSetAndContents, with LeafClass or ObjectRef results, from the fixed objects of
:mod:`conformance_tests.data.consumer`. Every parameter value is read strictly (ITI TF-2a
§3.18.4.1.2.3.5 value syntax: strings in single quotes, lists in parentheses); a value that does
not follow it is answered with Failure XDSRegistryError, like an unknown query id with
XDSUnknownStoredQuery. Inside :meth:`DataRegistry.refusing` every query is answered with Failure
and the given error, inside :meth:`DataRegistry.faulting` with a SOAP Fault, and inside
:meth:`DataRegistry.homed` every returned object carries a ``home`` attribute (a homeCommunityId,
as an XCA Initiating Gateway returns them).

Public API::

    QueryValues: parse_values(text) -> list[str] | None
    ParsedQuery(return_type, query_id, slots, problems)    # .values(name) .single(name)
    parse_query(body) -> ParsedQuery
    DataRegistry(data)   # .handler (an xds.http.server Handler), .refusing(code, text), .faulting(),
                         # .homed(home_community_id)
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Final

from lxml import etree

from conformance_tests.data.consumer import ConsumerTestData
from xds.errors import ErrorCode
from xds.http.server import SoapRequest, SoapResponse
from xds.query.definitions import StoredQueryId
from xds.soap import FaultCode, SoapFault
from xds.vocabulary import NS_QUERY, NS_RIM, NS_RS, Action, AssociationType, IdScheme, ResponseStatus, Scheme, Severity

__all__ = ["DataRegistry", "ParsedQuery", "parse_query", "parse_values"]

RETURN_TYPES: Final = ("LeafClass", "ObjectRef")
# ITI TF-2a §3.18.4.1.2.3.5: 'text' with '' for an embedded quote; a list is ('a','b',...).
_QUOTED: Final = r"'(?:[^']|'')*'"
_LIST: Final = re.compile(rf"^\(\s*{_QUOTED}(?:\s*,\s*{_QUOTED})*\s*\)$")
_SINGLE: Final = re.compile(rf"^{_QUOTED}$")
_NUMBER: Final = re.compile(r"^-?\d+$")


def parse_values(text: str) -> list[str] | None:
    """The values of one rim:Value text: ``'a'`` -> [a], ``('a','b')`` -> [a, b], a number ->
    [number]; None when the text follows none of these forms (e.g. an unquoted string)."""
    stripped = text.strip()
    if _SINGLE.match(stripped) or _LIST.match(stripped):
        return [v[1:-1].replace("''", "'") for v in re.findall(_QUOTED, stripped)]
    if _NUMBER.match(stripped):
        return [stripped]
    return None


@dataclass(slots=True)
class ParsedQuery:
    """An AdhocQueryRequest as read by the simulator."""

    return_type: str | None
    query_id: str | None
    #: Slot name -> the raw rim:Value texts, in order (a repeated Slot adds to the list).
    slots: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def values(self, name: str) -> list[str]:
        """Every value of the parameter ``name`` (lists flattened; malformed texts skipped)."""
        found: list[str] = []
        for text in self.slots.get(name, []):
            found += parse_values(text) or []
        return found

    def single(self, name: str) -> str | None:
        values = self.values(name)
        return values[0] if len(values) == 1 else None


def parse_query(body: etree._Element) -> ParsedQuery:
    """Read an ``query:AdhocQueryRequest`` (ITI TF-2a §3.18.4.1.2)."""
    option = body.find(f"{{{NS_QUERY}}}ResponseOption")
    query = body.find(f"{{{NS_RIM}}}AdhocQuery")
    parsed = ParsedQuery(
        return_type=option.get("returnType") if option is not None else None,
        query_id=query.get("id") if query is not None else None,
    )
    if body.tag != f"{{{NS_QUERY}}}AdhocQueryRequest":
        parsed.problems.append(f"the Body holds {body.tag}, not query:AdhocQueryRequest")
    if parsed.return_type not in RETURN_TYPES:
        parsed.problems.append(f"ResponseOption/@returnType is {parsed.return_type!r}, not LeafClass or ObjectRef")
    for slot in query.iterfind(f"{{{NS_RIM}}}Slot") if query is not None else []:
        name = slot.get("name", "")
        texts = [v.text or "" for v in slot.iterfind(f"{{{NS_RIM}}}ValueList/{{{NS_RIM}}}Value")]
        parsed.slots.setdefault(name, []).extend(texts)
        for text in texts:
            if parse_values(text) is None:
                parsed.problems.append(f"{name} value {text!r} is neither a quoted string, a list of them nor a number")
    return parsed


def _external_value(element: etree._Element, scheme: str) -> str | None:
    for identifier in element.iterfind(f"{{{NS_RIM}}}ExternalIdentifier"):
        if identifier.get("identificationScheme") == scheme:
            return identifier.get("value")
    return None


def _codes(element: etree._Element, scheme: str) -> list[str]:
    """``code^^scheme`` of every Classification of ``scheme`` (the stored-query code form)."""
    found = []
    for item in element.iterfind(f"{{{NS_RIM}}}Classification"):
        if item.get("classificationScheme") == scheme:
            coding = item.findtext(f"{{{NS_RIM}}}Slot[@name='codingScheme']/{{{NS_RIM}}}ValueList/{{{NS_RIM}}}Value")
            found.append(f"{item.get('nodeRepresentation')}^^{coding or ''}")
    return found


class DataRegistry:
    """The ITI-18 responder over the consumer test data (see the module documentation)."""

    def __init__(self, data: ConsumerTestData) -> None:
        self.data = data
        self._lock = threading.Lock()
        self._refusal: tuple[str, str] | None = None
        self._fault = False
        self._home: str | None = None
        self._entries = [o for o in data.objects if etree.QName(o).localname == "ExtrinsicObject"]
        self._packages = [o for o in data.objects if etree.QName(o).localname == "RegistryPackage"]
        self._associations = [o for o in data.objects if etree.QName(o).localname == "Association"]

    @contextmanager
    def refusing(self, code: str, context: str) -> Iterator[None]:
        """Within the block, answer every query with Failure and this RegistryError."""
        with self._lock:
            self._refusal = (code, context)
        try:
            yield
        finally:
            with self._lock:
                self._refusal = None

    @contextmanager
    def faulting(self) -> Iterator[None]:
        """Within the block, answer every query with a SOAP 1.2 Receiver fault."""
        with self._lock:
            self._fault = True
        try:
            yield
        finally:
            with self._lock:
                self._fault = False

    @contextmanager
    def homed(self, home: str) -> Iterator[None]:
        """Within the block, every returned object (and ObjectRef) has ``home`` = ``home``: its
        homeCommunityId (ITI TF-3 §4.2.3.2, homeCommunityId; xds-notes §3.3), which a consumer must
        send back in its retrieve requests."""
        with self._lock:
            self._home = home
        try:
            yield
        finally:
            with self._lock:
                self._home = None

    # -- answering -------------------------------------------------------------------------------
    async def handler(self, request: SoapRequest) -> SoapResponse:
        """ITI-18 (ITI TF-2a §3.18.4.1.3): the objects the stored query selects."""
        with self._lock:
            refusal, fault, home = self._refusal, self._fault, self._home
        if fault:
            raise SoapFault(FaultCode.RECEIVER, "the registry simulator was told to fail this query")
        if refusal is not None:
            return self._answer(ResponseStatus.FAILURE, [], errors=[refusal])
        parsed = parse_query(request.body)
        if parsed.problems:
            return self._answer(
                ResponseStatus.FAILURE, [], errors=[(ErrorCode.REGISTRY_ERROR.value, p) for p in parsed.problems]
            )
        selected = self._select(parsed)
        if selected is None:
            return self._answer(
                ResponseStatus.FAILURE,
                [],
                errors=[(ErrorCode.UNKNOWN_STORED_QUERY.value, f"the simulator does not answer {parsed.query_id}")],
            )
        if isinstance(selected, str):
            return self._answer(ResponseStatus.FAILURE, [], errors=[(ErrorCode.REGISTRY_ERROR.value, selected)])
        return self._answer(
            ResponseStatus.SUCCESS, selected, object_refs=parsed.return_type == "ObjectRef", home=home
        )

    def _answer(
        self,
        status: str,
        objects: Sequence[etree._Element],
        *,
        errors: Sequence[tuple[str, str]] = (),
        object_refs: bool = False,
        home: str | None = None,
    ) -> SoapResponse:
        # ITI TF-2a §3.18.4.1.3; xds-notes §2: errors travel in an AdhocQueryResponse.
        response = etree.Element(
            f"{{{NS_QUERY}}}AdhocQueryResponse", nsmap={"query": NS_QUERY, "rim": NS_RIM, "rs": NS_RS}, status=status
        )
        if errors:
            listing = etree.SubElement(response, f"{{{NS_RS}}}RegistryErrorList", highestSeverity=Severity.ERROR)
            for code, context in errors:
                etree.SubElement(
                    listing, f"{{{NS_RS}}}RegistryError", errorCode=code, codeContext=context, location="",
                    severity=Severity.ERROR,
                )  # fmt: skip
        listing = etree.SubElement(response, f"{{{NS_RIM}}}RegistryObjectList")
        for item in objects:
            if object_refs:
                added = etree.SubElement(listing, f"{{{NS_RIM}}}ObjectRef", id=item.get("id", ""))
            else:
                added = copy.deepcopy(item)
                listing.append(added)
            if home is not None:
                # ebRIM 3.0 IdentifiableType/@home; ITI TF-2a §3.18.4.1.2.3.8 (use of homeCommunityId).
                added.set("home", home)
        return SoapResponse(action=Action.ITI18_RESPONSE, body=response)

    def _select(self, query: ParsedQuery) -> list[etree._Element] | str | None:
        """The selected objects; a string says why the parameters are wrong; None: unknown query."""
        handlers = {
            StoredQueryId.FIND_DOCUMENTS: self._find_documents,
            StoredQueryId.GET_DOCUMENTS: self._get_documents,
            StoredQueryId.GET_ASSOCIATIONS: self._get_associations,
            StoredQueryId.GET_SUBMISSION_SETS: self._get_submission_sets,
            StoredQueryId.GET_SUBMISSION_SET_AND_CONTENTS: self._get_submission_set_and_contents,
        }
        handler = handlers.get(query.query_id or "")
        return handler(query) if handler is not None else None

    def _find_documents(self, query: ParsedQuery) -> list[etree._Element] | str:
        # ITI TF-2a §3.18.4.1.2.3.7.1: patient id and status required; formatCode optional.
        patient = query.values("$XDSDocumentEntryPatientId")
        statuses = query.values("$XDSDocumentEntryStatus")
        if len(patient) != 1:
            return "$XDSDocumentEntryPatientId must be given once, as one quoted value"
        if not statuses:
            return "$XDSDocumentEntryStatus is required"
        formats = query.values("$XDSDocumentEntryFormatCode")
        found = []
        for entry in self._entries:
            if _external_value(entry, IdScheme.DE_PATIENT_ID) != patient[0]:
                continue
            if entry.get("status") not in statuses:
                continue
            if formats and not set(formats) & set(_codes(entry, Scheme.DE_FORMAT_CODE)):
                continue
            found.append(entry)
        return found

    def _get_documents(self, query: ParsedQuery) -> list[etree._Element] | str:
        # ITI TF-2a §3.18.4.1.2.3.7.5: entryUUIDs xor uniqueIds.
        uuids = query.values("$XDSDocumentEntryEntryUUID")
        uids = query.values("$XDSDocumentEntryUniqueId")
        if bool(uuids) == bool(uids):
            return "GetDocuments needs $XDSDocumentEntryEntryUUID or $XDSDocumentEntryUniqueId (one of them)"
        return [
            e for e in self._entries if e.get("id") in uuids or _external_value(e, IdScheme.DE_UNIQUE_ID) in uids
        ]

    def _get_associations(self, query: ParsedQuery) -> list[etree._Element] | str:
        # ITI TF-2a §3.18.4.1.2.3.7.7: associations with the given objects at either end.
        uuids = set(query.values("$uuid"))
        if not uuids:
            return "$uuid is required"
        return [a for a in self._associations if a.get("sourceObject") in uuids or a.get("targetObject") in uuids]

    def _get_submission_sets(self, query: ParsedQuery) -> list[etree._Element] | str:
        # ITI TF-2a §3.18.4.1.2.3.7.9: the SubmissionSets holding the objects, and those HasMembers.
        uuids = set(query.values("$uuid"))
        if not uuids:
            return "$uuid is required"
        links = [
            a for a in self._associations
            if a.get("associationType") == AssociationType.HAS_MEMBER and a.get("targetObject") in uuids
        ]  # fmt: skip
        sources = {a.get("sourceObject") for a in links}
        sets = [p for p in self._packages if p.get("id") in sources]
        return sets + [a for a in links if a.get("sourceObject") in {p.get("id") for p in sets}]

    def _get_submission_set_and_contents(self, query: ParsedQuery) -> list[etree._Element] | str:
        # ITI TF-2a §3.18.4.1.2.3.7.10: the SubmissionSet, its DocumentEntries and HasMembers.
        uuid, uid = query.values("$XDSSubmissionSetEntryUUID"), query.values("$XDSSubmissionSetUniqueId")
        if len(uuid) + len(uid) != 1:
            return "exactly one of $XDSSubmissionSetEntryUUID and $XDSSubmissionSetUniqueId, single-valued"
        sets = [
            p for p in self._packages
            if p.get("id") in uuid or _external_value(p, IdScheme.SS_UNIQUE_ID) in uid
        ]  # fmt: skip
        if not sets:
            return []
        owner = sets[0].get("id")
        formats = query.values("$XDSDocumentEntryFormatCode")
        links = [a for a in self._associations if a.get("sourceObject") == owner]
        members = {a.get("targetObject") for a in links}
        entries = [
            e for e in self._entries
            if e.get("id") in members and (not formats or set(formats) & set(_codes(e, Scheme.DE_FORMAT_CODE)))
        ]  # fmt: skip
        kept = {e.get("id") for e in entries}
        return [sets[0], *entries, *[a for a in links if a.get("targetObject") in kept]]
