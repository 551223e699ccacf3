"""Checks that ITI-43 and RAD-69 responses share (RAD TF-3 §4.69.4.2 answers as ITI TF-2b
§3.43.5 does): the DocumentResponse elements, MTOM packaging with every document as an XOP part,
and their count. Each plan names its own transaction in the references."""

from __future__ import annotations

from lxml import etree

from conformance_tests.model import Check, Verifier
from conformance_tests.response import NS, ResponseView
from conformance_tests.state import CaseState
from xds.vocabulary import NS_XDS, NS_XOP

__all__ = ["child_text", "document_count", "document_responses", "mtom_response"]


def document_responses(view: ResponseView) -> list[etree._Element]:
    """The xds:DocumentResponse children of the response body ([] without a body)."""
    if view.body is None:
        return []
    return view.body.xpath("xds:DocumentResponse", namespaces=NS)  # type: ignore[no-any-return]


def child_text(element: etree._Element, local: str) -> str | None:
    """The stripped text of the xds child ``local`` of ``element`` (None when absent)."""
    found = element.find(f"{{{NS_XDS}}}{local}")
    return None if found is None else (found.text or "").strip()


def mtom_response(*, parts: str, packaging_reference: str, parts_reference: str) -> Verifier:
    """The response is MTOM, and each document (``parts``: "documents", "images") is an XOP part."""

    def verify(state: CaseState, view: ResponseView) -> list[Check]:
        checks = [
            Check("MTOM response", view.answer.multipart, view.answer.content_type or "no Content-Type", packaging_reference)
        ]
        responses = document_responses(view)
        inline = [
            child_text(r, "DocumentUniqueId") or "?"
            for r in responses
            if r.find(f"{{{NS_XDS}}}Document/{{{NS_XOP}}}Include") is None
        ]
        if responses:
            checks.append(
                Check(
                    f"{parts} as XOP parts",
                    not inline,
                    f"inline base64 for {inline}" if inline else "every Document is an xop:Include",
                    parts_reference,
                )
            )
        return checks

    return verify


def document_count(expected: int, *, reference: str) -> Verifier:
    """Exactly ``expected`` DocumentResponse elements."""

    def verify(state: CaseState, view: ResponseView) -> list[Check]:
        got = len(document_responses(view))
        return [Check("DocumentResponse count", got == expected, f"expected {expected}, got {got}", reference)]

    return verify
