"""The Imaging Document Source plan's own checks on RAD-69 responses and RAD-55 replies, read
with XPath (xds-notes §7.5, §8.5)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from lxml import etree

from conformance_tests.model import Check, HttpVerifier, Verifier
from conformance_tests.plans.imaging_source.common import instances, source_id
from conformance_tests.plans import retrieval
from conformance_tests.plans.imaging_source.part10 import judge_instance
from conformance_tests.plans.retrieval import child_text, document_responses
from conformance_tests.response import ResponseView
from conformance_tests.state import CaseState
from conformance_tests.transport import HttpAnswer
from xds.vocabulary import MIME_DICOM, NS_XDS

__all__ = ["document_count", "error_at", "mtom_response", "returned", "wado_instance"]

_RAD69: Final = "RAD TF-3 §4.69.4.2 (Retrieve Imaging Document Set response)"


def mtom_response() -> Verifier:
    """The RAD-69 response is MTOM and every image travels as an XOP part."""
    return retrieval.mtom_response(
        parts="images",
        packaging_reference="RAD TF-3 §4.69.4.2 (MTOM/XOP, as ITI TF-2b §3.43.5); xds-notes §1.4, §9 (NIST requires MTOM)",
        parts_reference="RAD TF-3 §4.69.4.2; xds-notes §1.4 (the response document must be an XOP part)",
    )


def document_count(expected: int) -> Verifier:
    return retrieval.document_count(expected, reference=_RAD69)


def returned(keys: Sequence[str], *, syntaxes: Sequence[str], home: str | None = None) -> Verifier:
    """Each test instance ``key`` came back once, with the source's RepositoryUniqueId,
    ``application/dicom``, HomeCommunityId only when sent (``home``), and as the very instance
    stored, in one of ``syntaxes``."""

    def verify(state: CaseState, view: ResponseView) -> list[Check]:
        checks = []
        by_uid: dict[str, list[etree._Element]] = {}
        for response in document_responses(view):
            by_uid.setdefault(child_text(response, "DocumentUniqueId") or "", []).append(response)
        repository = source_id(state)
        for item in instances(state, keys):
            found = by_uid.get(item.sop_uid, [])
            if len(found) != 1:
                checks.append(Check(f"{item.key} returned", False, f"{len(found)} DocumentResponse for {item.sop_uid}", _RAD69))
                continue
            response = found[0]
            got_repository = child_text(response, "RepositoryUniqueId")
            checks.append(
                Check(
                    f"{item.key} RepositoryUniqueId",
                    got_repository == repository,
                    f"expected {repository}, got {got_repository}",
                    "RAD TF-3 §4.69.4.2.2 (RepositoryUniqueId of the Imaging Document Source); NIST sameRetImgs",
                )
            )
            mime = child_text(response, "mimeType")
            checks.append(
                Check(
                    f"{item.key} mimeType",
                    mime == MIME_DICOM,
                    f"expected {MIME_DICOM}, got {mime}",
                    "RAD TF-3 §4.69.4.2.2 (mimeType application/dicom); xds-notes §7.5",
                )
            )
            echoed = child_text(response, "HomeCommunityId")
            checks.append(
                Check(
                    f"{item.key} HomeCommunityId",
                    echoed == home,
                    f"request {'had ' + home if home else 'had none'}, response has {echoed or 'none'}",
                    "RAD TF-3 §4.69.4.2.2 (HomeCommunityId only when it was in the request); NIST ids_2018-4820",
                )
            )
            document = response.find(f"{{{NS_XDS}}}Document")
            data = None if document is None else view.binary(document)
            checks += judge_instance(item, data, accepted=syntaxes)
        return checks

    return verify


UidOf = Callable[[CaseState], str]


def error_at(code: str, where: UidOf) -> Verifier:
    """A RegistryError ``code`` whose location is the DocumentUniqueId ``where`` names."""

    def verify(state: CaseState, view: ResponseView) -> list[Check]:
        uid = where(state)
        got = [(e.code, e.location) for e in view.errors]
        return [
            Check(
                f"{code} location",
                any(c == code and loc.strip() == uid for c, loc in got),
                f"expected {code} at {uid}, got {got}",
                "RAD TF-3 §4.69.4.2.3 (errors as ITI TF-2b §3.43.4.2.3); ITI TF-3 §4.2.4.1 (location); RAD69-019",
            )
        ]

    return verify


def wado_instance(key: str, *, syntaxes: Sequence[str]) -> HttpVerifier:
    """A RAD-55 reply holding the test instance ``key`` as ``application/dicom``."""

    def verify(state: CaseState, answer: HttpAnswer) -> list[Check]:
        media = answer.content_type.split(";", 1)[0].strip().lower()
        checks = [
            Check(
                "Content-Type",
                media == MIME_DICOM,
                answer.content_type or "(none)",
                "RAD TF-3 §4.55.4.1.2; DICOM PS3.18 §9.1.1 (contentType=application/dicom)",
            )
        ]
        if answer.status == 200:
            checks += judge_instance(instances(state, [key])[0], answer.body, accepted=syntaxes)
        return checks

    return verify
