"""ITI-43 Retrieve Document Set at the Document Repository (xds-notes §8.3, §5).

Each case first provides its own documents (ITI-41, through the registry simulator), then
retrieves them with the repositoryUniqueId the repository registered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from lxml import etree

from conformance_tests.model import Check, RequestPackaging, SoapStep, TestCase, failure, success
from conformance_tests.plans.repository import checks as c
from conformance_tests.plans.repository.common import (
    TLS_OPTION,
    doc,
    new_submission,
    ours,
    pnr,
    provide,
    retrieve,
    uid,
)
from conformance_tests.plans.repository.provide import partial_success
from conformance_tests.response import ResponseView
from conformance_tests.state import CaseState
from xds.errors import ErrorCode

TF43: Final = "ITI TF-2b §3.43.4.1.3 (Document Repository expected actions)"
HOME: Final = "urn:oid:1.3.6.1.4.1.21367.13.70.201"
# Binary content that would break careless MIME handling: every byte value, CRLFs, a line that
# looks like a MIME boundary, a NUL run and a PDF header.
TRICKY: Final = (
    b"%PDF-1.4\n" + bytes(range(256)) + b"\r\n--MIMEBoundary_conformance\r\nContent-Type: text/plain\r\n\r\n"
    + b"\x00" * 64 + b"\r\n--MIMEBoundary_conformance--\r\n%%EOF\r\n"
)


def _submit(*keys: str, **changes: object) -> SoapStep:
    """Provide the documents ``keys`` in one submission (each checked on its way to the registry)."""

    def build(state: CaseState) -> etree._Element:
        sub = new_submission(state, "s1")
        for key in keys:
            sub.add_document(doc(state, key, **changes))
        return pnr(sub)

    return provide("submit", f"ITI-41 with {', '.join(keys)}", build, forwarded=keys)


def _fetch(keys: Sequence[str], *, name: str = "retrieve", home: str | None = None,
           packaging: RequestPackaging = RequestPackaging.MTOM, purpose: str = "") -> SoapStep:
    return retrieve(
        name,
        purpose or f"retrieve {', '.join(keys)}" + (f" with HomeCommunityId {home}" if home else ""),
        ours(*keys, home=home),
        success(),
        verify=(c.returned(keys, home=home), c.document_count(len(keys))),
        packaging=packaging,
    )  # fmt: skip


def case_12029() -> TestCase:
    return TestCase(
        id="12029",
        title="Retrieve one document: the bytes submitted",
        tf=TF43 + "; ITI TF-2b §3.43.4.2.2",
        reference="NIST 12029",
        description="The registry query of the NIST test is replaced by what the registry simulator received: "
        "the repositoryUniqueId and uniqueId registered are the ones retrieved.",
        steps=(_submit("d1"), _fetch(["d1"])),
    )


def case_12021() -> TestCase:
    return TestCase(
        id="12021",
        title="Retrieve two documents in one request",
        tf=TF43,
        reference="NIST 12021",
        steps=(_submit("d1", "d2"), _fetch(["d1", "d2"])),
    )


def case_12360() -> TestCase:
    return TestCase(
        id="12360",
        title="mimeType round trip, binary content",
        tf=TF43 + "; ITI TF-2b §3.43.4.2.2 (mimeType)",
        reference="NIST 12360",
        description="A binary document of mimeType application/pdf whose bytes include CRLF, NULs and a line "
        "that looks like a MIME boundary comes back byte for byte with its mimeType.",
        steps=(_submit("pdf", mime_type="application/pdf", content=TRICKY), _fetch(["pdf"])),
    )


def _over_tls(state: CaseState, view: ResponseView) -> list[Check]:
    target = view.answer.exchange.target
    return [Check("TLS", target.startswith("POST https://"), target, "ITI TF-2x Appendix V; ATNA secure node (TLS)")]


def case_12028() -> TestCase:
    return TestCase(
        id="12028",
        title="Retrieve over TLS",
        tf=TF43 + "; ITI TF-1 §9 (ATNA: TLS)",
        reference="NIST 12028",
        description="Run with an https:// endpoint, which declares the option; --ca-cert names the CA of the "
        "peer's certificate (--client-cert/--client-key when it asks for ours). A handshake that fails "
        "(untrusted or wrong certificate, no TLS) fails the case, as does an http:// endpoint.",
        option=TLS_OPTION,
        steps=(
            _submit("d1"),
            retrieve("retrieve", "retrieve d1 over https", ours("d1"), success(), verify=(c.returned(["d1"]), _over_tls)),
        ),
    )


def _unknown_uid(state: CaseState) -> list[tuple[str, str, str | None]]:
    state.set("unknown-uid", state.get("unknown-uid") or state.ids.oid())
    return [(str(state["repository-id"]), str(state["unknown-uid"]), None)]


def _location_of_unknown(state: CaseState, view: ResponseView) -> list[Check]:
    return list(c.error_at(ErrorCode.DOCUMENT_UNIQUE_ID_ERROR.value, location=str(state["unknown-uid"]))(state, view))


def case_unknown_uid() -> TestCase:
    return TestCase(
        id="ret-unknown-uid",
        title="Unknown DocumentUniqueId",
        tf=TF43 + "; ITI TF-3 Table 4.2.4.1-2 (XDSDocumentUniqueIdError)",
        reference="NIST 15816/Retrieve",
        requires=("11966",),
        steps=(
            retrieve("retrieve", "a DocumentUniqueId the repository never stored", _unknown_uid,
                     failure(ErrorCode.DOCUMENT_UNIQUE_ID_ERROR.value),
                     verify=(c.document_count(0), _location_of_unknown)),
        ),
    )  # fmt: skip


def case_partial() -> TestCase:
    def items(state: CaseState) -> list[tuple[str, str, str | None]]:
        return [(str(state["repository-id"]), uid(state, "d1"), None), *_unknown_uid(state)]

    return TestCase(
        id="ret-partial",
        title="One known and one unknown document: PartialSuccess",
        tf=TF43 + "; ITI TF-2b §3.43.4.2.3 (PartialSuccess)",
        reference="NIST 15816/Retrieve",
        steps=(
            _submit("d1"),
            retrieve("retrieve", "d1 and an unknown DocumentUniqueId", items, partial_success(),
                     verify=(c.returned(["d1"]), c.document_count(1), _location_of_unknown)),
        ),
    )  # fmt: skip


def case_unknown_repository() -> TestCase:
    def items(state: CaseState) -> list[tuple[str, str, str | None]]:
        other = state.once("other-repository", state.ids.oid)
        return [(str(other), uid(state, "d1"), None)]

    return TestCase(
        id="ret-unknown-repository",
        title="A RepositoryUniqueId that is not this repository's",
        tf=TF43 + "; ITI TF-3 Table 4.2.4.1-2 (XDSUnknownRepositoryId)",
        reference="xds-notes §5, §2.1 (NIST simulators use a non-TF code here)",
        steps=(
            _submit("d1"),
            retrieve("retrieve", "d1 under another repositoryUniqueId", items,
                     failure(ErrorCode.UNKNOWN_REPOSITORY_ID.value), verify=(c.document_count(0),)),
        ),
    )  # fmt: skip


def case_home_community() -> TestCase:
    return TestCase(
        id="ret-home-community",
        title="HomeCommunityId is returned when it was sent, and only then",
        tf=TF43 + "; ITI TF-2b §3.43.4.2.2 (HomeCommunityId)",
        reference="xds-notes §5, §9 item 13 (ids_2018-4820)",
        independent_steps=True,
        steps=(
            _submit("d1"),
            _fetch(["d1"], name="with_home", home=HOME),
            _fetch(["d1"], name="without_home"),
        ),
    )


def case_simple_request() -> TestCase:
    return TestCase(
        id="ret-simple-request",
        title="The response is MTOM even for a simple SOAP request",
        tf=TF43 + "; ITI TF-2b §3.43.5 (MTOM/XOP)",
        reference="xds-notes §1.4 (the ITI-43 response is always MTOM)",
        option="simple-soap",
        steps=(
            _submit("d1"),
            _fetch(["d1"], packaging=RequestPackaging.SIMPLE, purpose="retrieve d1 with an application/soap+xml request"),
        ),
    )


def cases() -> tuple[TestCase, ...]:
    return (
        case_12029(),
        case_12021(),
        case_12360(),
        case_12028(),
        case_unknown_uid(),
        case_partial(),
        case_unknown_repository(),
        case_home_community(),
        case_simple_request(),
    )
