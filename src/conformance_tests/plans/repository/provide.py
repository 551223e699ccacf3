"""ITI-41 Provide and Register Document Set-b at the Document Repository (xds-notes §8.2, §5).

Every submission goes through the registry simulator, so each case also judges the ITI-42 the
repository sent: hash, size and repositoryUniqueId added, the rest unchanged, nothing sent when
the repository had to refuse, the registry's refusal relayed unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from typing import Final

from lxml import etree

from conformance_tests.model import Expectation, RequestPackaging, SoapStep, TestCase, failure, success
from conformance_tests.plans.repository import checks as c
from conformance_tests.plans.repository.common import doc, new_submission, ours, pnr, provide, retrieve, uid
from conformance_tests.state import CaseState
from xds.errors import ErrorCode
from xds.vocabulary import ResponseStatus

TF41: Final = "ITI TF-2b §3.41.4.1.3 (Document Repository expected actions)"
NOT_KEPT: Final = "the document was not kept"


Build = Callable[[CaseState], etree._Element]


def _single(key: str = "d1", **changes: object) -> Build:
    """A request builder: one SubmissionSet with the DocumentEntry ``key`` and its document."""

    def build(state: CaseState) -> etree._Element:
        sub = new_submission(state, f"s-{key}")
        sub.add_document(doc(state, key, **changes))
        return pnr(sub)

    return build


def partial_success() -> Expectation:
    """ITI TF-2b §3.43.4.2.3: some documents returned, an XDSDocumentUniqueIdError for the rest."""
    return Expectation(status=ResponseStatus.PARTIAL_SUCCESS, errors=(ErrorCode.DOCUMENT_UNIQUE_ID_ERROR.value,))


def _gone(key: str, name: str = "not_kept") -> SoapStep:
    """Retrieve ``key``: it must not be there (XDSDocumentUniqueIdError)."""
    return retrieve(
        name,
        f"retrieve {key}: {NOT_KEPT}",
        ours(key),
        failure(ErrorCode.DOCUMENT_UNIQUE_ID_ERROR.value),
        verify=(c.document_count(0),),
    )


def case_11966() -> TestCase:
    return TestCase(
        id="11966",
        title="One document; metadata forwarded to the registry",
        tf=TF41 + "; ITI TF-2b §3.42 (the ITI-42 it sends)",
        reference="NIST 11966",
        description="The ITI-42 carries the DocumentEntry with hash, size and repositoryUniqueId added and "
        "everything else as submitted; the response is schema-valid and MTOM like the request.",
        steps=(provide("submit", "ITI-41 (MTOM) with one DocumentEntry without hash, size or repositoryUniqueId",
                       _single(), forwarded=("d1",)),),  # fmt: skip
    )


def case_11979() -> TestCase:
    def build(state: CaseState) -> etree._Element:
        sub = new_submission(state, "s1")
        sub.add_document(doc(state, "d1"))
        sub.add_document(doc(state, "d2", mime_type="text/xml", content=b"<note>second document</note>\n"))
        return pnr(sub)

    return TestCase(
        id="11979",
        title="Two documents",
        tf=TF41,
        reference="NIST 11979",
        steps=(provide("submit", "ITI-41 with two DocumentEntries and two documents", build, forwarded=("d1", "d2")),),
    )


def case_11981() -> TestCase:
    keep_hash = frozenset({"repositoryUniqueId"})

    def with_values(key: str, *, upper: bool = False, hash_delta: bool = False, size_delta: int = 0) -> Build:
        def build(state: CaseState) -> etree._Element:
            content = f"document {key} of test 11981 {state.ids.oid()}\n".encode()
            digest = hashlib.sha1(content).hexdigest()
            if upper:
                digest = digest.upper()
            if hash_delta:
                digest = hashlib.sha1(content + b"x").hexdigest()
            spec = doc(state, key, content=content, hash=digest, size=len(content) + size_delta, omit=keep_hash)
            sub = new_submission(state, f"s-{key}")
            sub.add_document(spec)
            return pnr(sub)

        return build

    return TestCase(
        id="11981",
        title="Submitted size and hash are checked against the document",
        tf=TF41 + "; ITI TF-3 §4.2.3.2.11 (hash), §4.2.3.2.23 (size)",
        reference="NIST 11981",
        description="Correct values and an upper-case hash are accepted (hex is compared without regard to case); "
        "a wrong hash or a wrong size is XDSRepositoryMetadataError and nothing reaches the registry.",
        independent_steps=True,
        steps=(
            provide("correct", "hash and size of the document", with_values("ok"), forwarded=("ok",)),
            provide("uppercase_hash", "the hash in upper-case hex", with_values("upper", upper=True),
                    forwarded=("upper",)),
            provide("wrong_hash", "a hash of other bytes", with_values("badhash", hash_delta=True),
                    failure(ErrorCode.REPOSITORY_METADATA_ERROR.value)),
            provide("wrong_size", "a size one byte too large", with_values("badsize", size_delta=1),
                    failure(ErrorCode.REPOSITORY_METADATA_ERROR.value)),
        ),
    )  # fmt: skip


def case_11983() -> TestCase:
    def no_document(state: CaseState) -> etree._Element:
        sub = new_submission(state, "s1")
        sub.add_document(doc(state, "d1"))
        return pnr(sub, documents=[])

    def no_metadata(state: CaseState) -> etree._Element:
        sub = new_submission(state, "s2")
        spec = doc(state, "d2")
        sub.add_document(spec)
        return pnr(sub, documents=[(spec.id, spec.content), ("Document_orphan", b"a document nobody described\n")])

    return TestCase(
        id="11983",
        title="DocumentEntry without document; document without DocumentEntry",
        tf=TF41 + "; ITI TF-3 Table 4.2.4.1-2 (XDSMissingDocument, XDSMissingDocumentMetadata)",
        reference="NIST 11983",
        independent_steps=True,
        steps=(
            provide("missing_document", "a DocumentEntry and no xds:Document", no_document,
                    failure(ErrorCode.MISSING_DOCUMENT.value)),
            provide("missing_metadata", "an extra xds:Document no DocumentEntry describes", no_metadata,
                    failure(ErrorCode.MISSING_DOCUMENT_METADATA.value)),
        ),
    )  # fmt: skip


REFUSAL: Final = (
    ErrorCode.PATIENT_ID_DOES_NOT_MATCH.value,
    "conformance: the registry simulator refuses this submission (patient id mismatch)",
)


def case_11986() -> TestCase:
    return TestCase(
        id="11986",
        title="A registry error is relayed, and the document is not kept",
        tf=TF41 + "; ITI TF-2b §3.42.4.2 (the registry's response)",
        reference="NIST 11986",
        description="The registry simulator answers the ITI-42 with Failure XDSPatientIdDoesNotMatch; the "
        "repository returns that error unchanged and keeps nothing (a retrieve finds nothing).",
        steps=(
            provide("submit", "ITI-41; the registry refuses the ITI-42", _single(), failure(REFUSAL[0]), refuse=(REFUSAL,)),
            _gone("d1"),
        ),
    )


def case_12369() -> TestCase:
    def build(state: CaseState) -> etree._Element:
        sub = new_submission(state, "s1")
        good = doc(state, "good")
        bad = doc(state, "bad", omit=frozenset({"repositoryUniqueId"}))
        sub.add_document(good)
        sub.add_document(replace(bad, size=len(bad.content) + 7, hash=hashlib.sha1(b"other").hexdigest()))
        return pnr(sub)

    return TestCase(
        id="12369",
        title="Wrong size and hash in one of two documents: all or nothing",
        tf=TF41 + "; ITI TF-3 Table 4.2.4.1-2 (XDSRepositoryMetadataError)",
        reference="NIST 12369",
        requires=("11966",),
        steps=(
            provide("submit", "two documents, the second with wrong size and hash", build,
                    failure(ErrorCode.REPOSITORY_METADATA_ERROR.value)),
            _gone("good", "good_not_kept"),
        ),
    )  # fmt: skip


def case_duplicate() -> TestCase:
    def build(state: CaseState) -> etree._Element:
        sub = new_submission(state, "s1")
        first = doc(state, "d1")
        second = doc(state, "d2", unique_id=first.unique_id, content=b"another document, same uniqueId\n")
        sub.add_document(first)
        sub.add_document(second)
        return pnr(sub)

    return TestCase(
        id="pnr-duplicate-uid",
        title="The same DocumentEntry uniqueId twice in one submission",
        tf=TF41 + "; ITI TF-3 Table 4.2.4.1-2 (XDSRepositoryDuplicateUniqueIdInMessage)",
        reference="xds-notes §5",
        steps=(provide("submit", "two DocumentEntries sharing one uniqueId", build,
                       failure(ErrorCode.REPOSITORY_DUPLICATE_UNIQUE_ID_IN_MESSAGE.value)),),
    )  # fmt: skip


def case_registry_down() -> TestCase:
    return TestCase(
        id="pnr-registry-down",
        title="The registry is down",
        tf=TF41 + "; ITI TF-3 Table 4.2.4.1-2 (XDSRegistryNotAvailable)",
        reference="xds-notes §5",
        description="Nothing listens at the registry's address while the ITI-41 is processed.",
        requires=("11966",),
        steps=(
            provide("submit", "ITI-41 while the registry simulator is stopped", _single(),
                    failure(ErrorCode.REGISTRY_NOT_AVAILABLE.value), registry_down=True),
            _gone("d1"),
        ),
    )  # fmt: skip


def case_inline() -> TestCase:
    return TestCase(
        id="pnr-xop-inline",
        title="MTOM with the document inline as base64",
        tf="ITI TF-2b §3.41.5; XOP 1.0 §3 (base64 content may stay inline); xds-notes §1.4",
        reference="xds-notes §1.4",
        steps=(
            provide("submit", "ITI-41 as MTOM whose xds:Document holds base64 text, not an xop:Include",
                    _single(), forwarded=("d1",), packaging=RequestPackaging.MTOM_INLINE),
            retrieve("retrieve", "the bytes decoded from the base64", ours("d1"), success(),
                     verify=(c.returned(["d1"]),)),
        ),
    )  # fmt: skip


def case_simple_soap() -> TestCase:
    return TestCase(
        id="pnr-simple-soap",
        title="ITI-41 as simple SOAP is answered as simple SOAP",
        tf="ITI TF-2b §3.41.5; xds-notes §1.4 (accept both packagings, answer in kind)",
        reference="xds-notes §1.4",
        option="simple-soap",
        steps=(
            provide("submit", "ITI-41 as application/soap+xml with the document inline", _single(),
                    forwarded=("d1",), packaging=RequestPackaging.SIMPLE),
            retrieve("retrieve", "the bytes decoded from the base64", ours("d1"), success(),
                     verify=(c.returned(["d1"]),)),
        ),
    )  # fmt: skip


def case_15816() -> TestCase:
    return TestCase(
        id="15816",
        title="Provide and Register a stable DocumentEntry, then retrieve: normal, unknown, partial",
        tf=TF41 + "; ITI TF-2b §3.43.4.2.3 (Success, Failure, PartialSuccess)",
        reference="NIST 15816",
        steps=(
            provide("submit", "ITI-41 with one stable DocumentEntry", _single(), forwarded=("d1",)),
            retrieve("retrieve", "the document", ours("d1"), success(), verify=(c.returned(["d1"]),)),
            retrieve("retrieve_bad_uid", "a DocumentUniqueId the repository never stored",
                     lambda st: [(st["repository-id"], st.ids.oid(), None)],
                     failure(ErrorCode.DOCUMENT_UNIQUE_ID_ERROR.value), verify=(c.document_count(0),)),
            retrieve("retrieve_partial", "the document and an unknown one",
                     lambda st: [(st["repository-id"], uid(st, "d1"), None), (st["repository-id"], st.ids.oid(), None)],
                     partial_success(), verify=(c.returned(["d1"]), c.document_count(1))),
        ),
    )  # fmt: skip


def cases() -> tuple[TestCase, ...]:
    return (
        case_11966(),
        case_11979(),
        case_11981(),
        case_11983(),
        case_11986(),
        case_12369(),
        case_duplicate(),
        case_registry_down(),
        case_inline(),
        case_simple_soap(),
        case_15816(),
    )
