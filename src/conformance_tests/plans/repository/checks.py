"""The repository plan's own checks: what the repository sent the registry (ITI-42, seen by the
simulator) and what it returned on retrieve (ITI-43), read with XPath."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from lxml import etree

from conformance_tests.model import Check, RequestPackaging, Verifier
from conformance_tests.plans import retrieval
from conformance_tests.plans.retrieval import child_text, document_responses
from conformance_tests.response import ResponseView
from conformance_tests.state import CaseState
from xds.vocabulary import NS_LCM, NS_RIM, NS_XDS, Action, IdScheme, SlotName

if TYPE_CHECKING:
    from conformance_tests.evidence import Exchange
    from conformance_tests.data.metadata import DocumentSpec
    from conformance_tests.simulators.registry import Observation, Registration

__all__ = [
    "augmented",
    "document_count",
    "error_at",
    "mtom_response",
    "nothing_registered",
    "one_registration",
    "packaging_as_request",
    "relayed",
    "returned",
    "slot_values",
    "unchanged",
]

# ITI TF-3 §4.2.3.1.7 (OID): digits and dots, no leading zeros, at most 64 characters.
_OID: Final = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+\Z")
_ADDED: Final = (SlotName.HASH, SlotName.SIZE, SlotName.REPOSITORY_UNIQUE_ID)
_ITI41: Final = "ITI TF-2b §3.41.4.1.3 (Document Repository expected actions)"
_ITI43: Final = "ITI TF-2b §3.43.4.2 (Retrieve Document Set response)"


def _spec(state: CaseState, key: str) -> DocumentSpec:
    return state[f"doc:{key}"]  # type: ignore[no-any-return]


def _observation(state: CaseState) -> Observation:
    return state["observed"]  # type: ignore[no-any-return]


def slot_values(entry: etree._Element, name: str) -> list[str]:
    """Every Value of every Slot ``name`` of a registry object."""
    return [
        (v.text or "")
        for slot in entry.iterfind(f"{{{NS_RIM}}}Slot")
        if slot.get("name") == name
        for v in slot.iterfind(f"{{{NS_RIM}}}ValueList/{{{NS_RIM}}}Value")
    ]


def _entry(registration: Registration, unique_id: str) -> etree._Element | None:
    found = [
        e
        for e in registration.document_entries()
        if any(
            x.get("identificationScheme") == IdScheme.DE_UNIQUE_ID and (x.get("value") or "").strip() == unique_id
            for x in e.iterfind(f"{{{NS_RIM}}}ExternalIdentifier")
        )
    ]
    return found[0] if len(found) == 1 else None


# -- ITI-41 response -----------------------------------------------------------------------------
def packaging_as_request(packaging: RequestPackaging) -> Verifier:
    """ITI-41 answers in the packaging of the request: MTOM for MTOM (NIST simulators answer
    ITI-41 in MTOM), simple SOAP for simple SOAP."""

    def verify(state: CaseState, view: ResponseView) -> list[Check]:
        wanted = packaging is not RequestPackaging.SIMPLE
        got = view.answer.multipart
        return [
            Check(
                "response packaging",
                got == wanted,
                f"request {'MTOM' if wanted else 'simple SOAP'}, response {'MTOM' if got else 'simple SOAP'} "
                f"({view.answer.content_type or 'no Content-Type'})",
                "ITI TF-2b §3.41.5 (MTOM/XOP); IHE XDS.b implementation notes: the response uses the "
                "request's format; xds-notes §1.4",
            )
        ]

    return verify


# -- what reached the registry -------------------------------------------------------------------
def _registering(observation: Observation) -> list[Exchange]:
    """The requests that reached the simulator, leaving out Stored Queries (a repository may ask
    the registry what it holds; only registering matters here)."""
    return [e for e in observation.exchanges if Action.ITI18.encode() not in e.request_body]


def nothing_registered() -> Verifier:
    """The repository refused by itself: nothing may reach the registry."""

    def verify(state: CaseState, view: ResponseView) -> list[Check]:
        seen = _observation(state)
        sent = _registering(seen)
        return [
            Check(
                "no ITI-42 sent",
                not sent,
                f"{len(sent)} request(s) reached the registry simulator"
                + (f" ({len(seen.registrations)} ITI-42)" if seen.registrations else ""),
                f"{_ITI41}: a submission the repository rejects is not registered",
            )
        ]

    return verify


def one_registration() -> Verifier:
    """Exactly one ITI-42, SOAP 1.2 with the RegisterDocumentSet-b action, an
    lcm:SubmitObjectsRequest that validates against the schemas."""

    def verify(state: CaseState, view: ResponseView) -> list[Check]:
        seen = _observation(state)
        sent = _registering(seen)
        statuses = ", ".join(e.response_status or e.error or "?" for e in sent)
        checks = [
            Check(
                "one ITI-42 sent",
                len(seen.registrations) == 1 and len(sent) == 1,
                f"{len(seen.registrations)} ITI-42 parsed out of {len(sent)} request(s) "
                f"to the registry simulator (answered: {statuses or 'none'})",
                f"{_ITI41}; ITI TF-2b §3.42 (Register Document Set-b, SOAP 1.2, ITI TF-2x V.3)",
            )
        ]
        if len(seen.registrations) != 1:
            return checks
        registration = seen.registrations[0]
        tag = registration.request.tag
        checks.append(
            Check(
                "ITI-42 body",
                tag == f"{{{NS_LCM}}}SubmitObjectsRequest",
                f"{tag}",
                "ITI TF-2b §3.42.4.1.2 (lcm:SubmitObjectsRequest)",
            )
        )
        checks.append(
            Check(
                "ITI-42 XSD",
                not registration.schema_errors,
                "; ".join(registration.schema_errors) or "valid",
                "ebRS 3.0 lcm.xsd, rim.xsd (ITI TF-3 §4.2)",
            )
        )
        return checks

    return verify


def augmented(keys: Sequence[str]) -> Verifier:
    """Each DocumentEntry ``key`` reached the registry with the SHA-1 and size of its bytes and
    a repositoryUniqueId (one value each)."""

    def verify(state: CaseState, view: ResponseView) -> list[Check]:
        seen = _observation(state)
        if len(seen.registrations) != 1:
            return []
        checks = []
        for key in keys:
            spec = _spec(state, key)
            entry = _entry(seen.registrations[0], spec.unique_id)
            if entry is None:
                checks.append(Check(f"{key} registered", False, f"uniqueId {spec.unique_id} not exactly once in the ITI-42", _ITI41))
                continue
            hashes = slot_values(entry, SlotName.HASH)
            want_hash = hashlib.sha1(spec.content).hexdigest()
            checks.append(
                Check(
                    f"{key} hash",
                    [h.strip().lower() for h in hashes] == [want_hash],
                    f"expected [{want_hash}], got {hashes}",
                    f"{_ITI41}; ITI TF-3 §4.2.3.2.11 (hash: SHA-1 of the document, hex)",
                )
            )
            sizes = slot_values(entry, SlotName.SIZE)
            checks.append(
                Check(
                    f"{key} size",
                    [s.strip() for s in sizes] == [str(len(spec.content))],
                    f"expected [{len(spec.content)}], got {sizes}",
                    f"{_ITI41}; ITI TF-3 §4.2.3.2.23 (size in bytes)",
                )
            )
            ids = [i.strip() for i in slot_values(entry, SlotName.REPOSITORY_UNIQUE_ID)]
            known = state.get("repository-id")
            fine = len(ids) == 1 and bool(_OID.match(ids[0])) and len(ids[0]) <= 64 and (not known or ids[0] == known)
            checks.append(
                Check(
                    f"{key} repositoryUniqueId",
                    fine,
                    f"got {ids}" + (f", earlier ITI-42 carried {known}" if known else ""),
                    f"{_ITI41}; ITI TF-3 §4.2.3.2.18 (repositoryUniqueId, an OID)",
                )
            )
        return checks

    return verify


def _canonical(element: etree._Element, *, drop: frozenset[str]) -> tuple[object, ...]:
    """An order-insensitive form of an element (tag, attributes, text, children), without the
    Slots named in ``drop``."""
    children = sorted(
        (
            _canonical(child, drop=frozenset())
            for child in element
            if isinstance(child.tag, str) and not (child.tag == f"{{{NS_RIM}}}Slot" and child.get("name") in drop)
        ),
        key=repr,
    )
    return (element.tag, tuple(sorted(element.attrib.items())), (element.text or "").strip(), tuple(children))


def _objects(submit: etree._Element) -> dict[str, etree._Element]:
    object_list = submit.find(f"{{{NS_RIM}}}RegistryObjectList")
    if object_list is None:
        return {}
    return {child.get("id") or f"#{n}": child for n, child in enumerate(object_list) if isinstance(child.tag, str)}


def unchanged() -> Verifier:
    """Everything but hash, size and repositoryUniqueId reached the registry as it was sent."""

    def verify(state: CaseState, view: ResponseView) -> list[Check]:
        seen = _observation(state)
        sent = state.get("sent")
        if len(seen.registrations) != 1 or sent is None:
            return []
        received = _objects(seen.registrations[0].request)
        problems = []
        for object_id, original in _objects(sent).items():
            relayed = received.pop(object_id, None)
            if relayed is None:
                problems.append(f"{etree.QName(original).localname} {object_id} missing")
                continue
            drop = frozenset(_ADDED) if original.tag == f"{{{NS_RIM}}}ExtrinsicObject" else frozenset()
            if _canonical(original, drop=drop) != _canonical(relayed, drop=drop):
                problems.append(f"{etree.QName(original).localname} {object_id} changed")
        problems += [f"{etree.QName(e).localname} {i} added" for i, e in received.items()]
        return [
            Check(
                "metadata relayed unchanged",
                not problems,
                "; ".join(problems) or "every object as sent (hash, size, repositoryUniqueId aside)",
                f"{_ITI41}: the repository forwards the metadata, adding only hash, size and repositoryUniqueId",
            )
        ]

    return verify


def relayed(errors: Sequence[tuple[str, str]]) -> Verifier:
    """The registry's errors come back to the source unchanged (code and codeContext)."""

    def verify(state: CaseState, view: ResponseView) -> list[Check]:
        got = [(e.code, e.context) for e in view.errors]
        return [
            Check(
                f"relayed {code}",
                (code, context) in got,
                f"expected ({code}, {context!r}) among {got}",
                f"{_ITI41}: the Document Registry's response is returned to the Document Source (NIST 11986)",
            )
            for code, context in errors
        ]

    return verify


# -- ITI-43 --------------------------------------------------------------------------------------
def mtom_response() -> Verifier:
    """The ITI-43 response is MTOM and each document travels as an XOP part."""
    return retrieval.mtom_response(
        parts="documents",
        packaging_reference="ITI TF-2b §3.43.5 (MTOM/XOP); xds-notes §1.4 (the ITI-43 response is always MTOM)",
        parts_reference="ITI TF-2b §3.43.5; xds-notes §1.4 (the response document must be an XOP part)",
    )


def document_count(expected: int) -> Verifier:
    return retrieval.document_count(expected, reference=_ITI43)


def returned(keys: Sequence[str], *, home: str | None = None) -> Verifier:
    """Each document ``key`` came back once: its ids, its registered mimeType, the exact bytes
    submitted, and HomeCommunityId only if the request carried one (``home``)."""

    def verify(state: CaseState, view: ResponseView) -> list[Check]:
        checks = []
        by_uid: dict[str, list[etree._Element]] = {}
        for response in document_responses(view):
            by_uid.setdefault(child_text(response, "DocumentUniqueId") or "", []).append(response)
        for key in keys:
            spec = _spec(state, key)
            found = by_uid.get(spec.unique_id, [])
            if len(found) != 1:
                checks.append(Check(f"{key} returned", False, f"{len(found)} DocumentResponse for {spec.unique_id}", _ITI43))
                continue
            response = found[0]
            repository = child_text(response, "RepositoryUniqueId")
            wanted_repository = state.get("repository-id")
            checks.append(
                Check(
                    f"{key} RepositoryUniqueId",
                    repository == wanted_repository,
                    f"expected {wanted_repository}, got {repository}",
                    "ITI TF-2b §3.43.4.2.2 (RepositoryUniqueId of the document)",
                )
            )
            mime = child_text(response, "mimeType")
            checks.append(
                Check(
                    f"{key} mimeType",
                    mime == spec.mime_type,
                    f"expected {spec.mime_type}, got {mime}",
                    "ITI TF-2b §3.43.4.2.2 (mimeType as registered); NIST 12360",
                )
            )
            document = response.find(f"{{{NS_XDS}}}Document")
            data = None if document is None else view.binary(document)
            same = data == spec.content
            detail = (
                f"{len(spec.content)} bytes, identical"
                if same
                else "no Document content"
                if data is None
                else f"sent {len(spec.content)} bytes (SHA-1 {hashlib.sha1(spec.content).hexdigest()}), "
                f"got {len(data)} bytes (SHA-1 {hashlib.sha1(data).hexdigest()})"
            )
            checks.append(
                Check(f"{key} bytes", same, detail, "ITI TF-2b §3.43.4.2.2 (the document as stored); NIST 12029")
            )
            echoed = child_text(response, "HomeCommunityId")
            checks.append(
                Check(
                    f"{key} HomeCommunityId",
                    echoed == home,
                    f"request {'had ' + home if home else 'had none'}, response has {echoed or 'none'}",
                    "ITI TF-2b §3.43.4.2.2 (HomeCommunityId returned only when it was in the request); "
                    "xds-notes §9 item 13",
                )
            )
        return checks

    return verify


def error_at(code: str, key: str | None = None, *, location: str | None = None) -> Verifier:
    """A RegistryError ``code`` whose location is the DocumentUniqueId of ``key`` (or ``location``)."""

    def verify(state: CaseState, view: ResponseView) -> list[Check]:
        where = location if location is not None else (_spec(state, key).unique_id if key else "")
        got = [(e.code, e.location) for e in view.errors]
        return [
            Check(
                f"{code} location",
                any(c == code and loc.strip() == where for c, loc in got),
                f"expected {code} at {where}, got {got}",
                "ITI TF-2b §3.43.4.2.3; ITI TF-3 §4.2.4.1 (location names the document); xds-notes §2",
            )
        ]

    return verify
