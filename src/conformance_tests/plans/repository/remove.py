"""ITI-86 Remove Documents at the Document Repository (the RMD option; xds-notes §8.2 rows
50000-50003, collection ``rep_rd``).

A Document Administrator removes documents from a repository by DocumentUniqueId (the metadata
goes by ITI-62 to the registry, separately). Every case provides its own documents first
(ITI-41), removes some, and then retrieves (ITI-43) to see that exactly those are gone. The
cases run only for a peer that declares the option (``--option remove-documents``); otherwise
they are reported as not applicable. The split into cases is the runner's own: xds-notes lists
the NIST collection, not its sections.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from lxml import etree

from conformance_tests.model import Expectation, SoapStep, TestCase, Transaction, Verifier, failure, success
from conformance_tests.plans.repository import checks as c
from conformance_tests.plans.repository.common import doc, new_submission, ours, pnr, provide, retrieve, uid
from conformance_tests.plans.repository.provide import partial_success
from conformance_tests.rmd import NS_RMD
from conformance_tests.state import CaseState
from xds.errors import ErrorCode
from xds.vocabulary import NS_XDS, ResponseStatus

__all__ = ["OPTION", "cases", "remove_request"]

#: The option a repository declares when it implements ITI-86.
OPTION: Final = "remove-documents"
TF86: Final = "ITI TF-2b §3.86.4.1.3 (RMD: Document Repository expected actions)"
REFERENCE: Final = "NIST rep_rd 50000-50003 (xds-notes §8.2, option); the case split is the runner's"
GONE: Final = ErrorCode.DOCUMENT_UNIQUE_ID_ERROR.value

Items = Callable[[CaseState], Sequence[tuple[str, str, str | None]]]


def remove_request(items: Sequence[tuple[str, str, str | None]]) -> etree._Element:
    """An ``rmd:RemoveDocumentsRequest`` (ITI TF-2b §3.86.4.1.2): one ``xds:DocumentRequest``
    (HomeCommunityId?, RepositoryUniqueId, DocumentUniqueId) per document, as in ITI-43."""
    root = etree.Element(f"{{{NS_RMD}}}RemoveDocumentsRequest", nsmap={"rmd": NS_RMD, "xds": NS_XDS})
    for repository, document, home in items:
        request = etree.SubElement(root, f"{{{NS_XDS}}}DocumentRequest")
        if home is not None:
            etree.SubElement(request, f"{{{NS_XDS}}}HomeCommunityId").text = home
        etree.SubElement(request, f"{{{NS_XDS}}}RepositoryUniqueId").text = repository
        etree.SubElement(request, f"{{{NS_XDS}}}DocumentUniqueId").text = document
    return root


def _remove(name: str, purpose: str, items: Items, expect: Expectation, *, verify: Sequence[Verifier] = ()) -> SoapStep:
    """An ITI-86 step: simple SOAP, answered with an rs:RegistryResponse (ITI TF-2b §3.86.4.2)."""
    return SoapStep(
        name=name,
        purpose=purpose,
        transaction=Transaction.ITI86,
        request=lambda state: remove_request(items(state)),
        expect=expect,
        verify=tuple(verify),
    )


def _submit(*keys: str) -> SoapStep:
    def build(state: CaseState) -> etree._Element:
        sub = new_submission(state, "s1")
        for key in keys:
            sub.add_document(doc(state, key))
        return pnr(sub)

    return provide("submit", f"ITI-41 with {', '.join(keys)}", build, forwarded=keys)


def _there(key: str, *, name: str | None = None) -> SoapStep:
    """Retrieve ``key``: it is still there, byte for byte."""
    return retrieve(name or f"{key}_kept", f"retrieve {key}: still stored", ours(key), success(),
                    verify=(c.returned([key]), c.document_count(1)))  # fmt: skip


def _gone(key: str, *, name: str | None = None) -> SoapStep:
    """Retrieve ``key``: it was removed (ITI-43 answers XDSDocumentUniqueIdError)."""
    return retrieve(name or f"{key}_gone", f"retrieve {key}: removed, so XDSDocumentUniqueIdError",
                    ours(key), failure(GONE), verify=(c.document_count(0), c.error_at(GONE, key)))  # fmt: skip


def _unknown(state: CaseState) -> str:
    return str(state.once("unknown-uid", state.ids.oid))


def case_one() -> TestCase:
    return TestCase(
        id="rd-one",
        title="Remove one document; it is gone, and removing it again fails",
        tf=TF86 + "; ITI TF-2b §3.86.4.2.2 (response)",
        reference=REFERENCE,
        option=OPTION,
        steps=(
            _submit("d1"),
            _there("d1", name="before"),
            _remove("remove", "ITI-86 for d1", ours("d1"), success()),
            _gone("d1", name="after"),
            _remove("again", "ITI-86 for d1 once more: nothing to remove", ours("d1"), failure(GONE),
                    verify=(c.error_at(GONE, "d1"),)),
        ),
    )  # fmt: skip


def case_two() -> TestCase:
    return TestCase(
        id="rd-two",
        title="Remove two of three documents in one request; the third is kept",
        tf=TF86,
        reference=REFERENCE,
        option=OPTION,
        steps=(
            _submit("d1", "d2", "d3"),
            _remove("remove", "ITI-86 for d1 and d2", ours("d1", "d2"), success()),
            _gone("d1"),
            _gone("d2"),
            _there("d3"),
        ),
    )


def case_unknown() -> TestCase:
    return TestCase(
        id="rd-unknown",
        title="Remove a document the repository never stored",
        tf=TF86 + "; ITI TF-3 Table 4.2.4.1-2 (XDSDocumentUniqueIdError)",
        reference=REFERENCE,
        option=OPTION,
        steps=(
            _submit("d1"),
            _remove("remove", "ITI-86 for an unknown DocumentUniqueId",
                    lambda state: [(ours("d1")(state)[0][0], _unknown(state), None)], failure(GONE),
                    verify=(lambda state, view: c.error_at(GONE, location=_unknown(state))(state, view),)),
            _there("d1"),
        ),
    )  # fmt: skip


def case_partial() -> TestCase:
    def items(state: CaseState) -> list[tuple[str, str, str | None]]:
        repository = ours("d1")(state)[0][0]
        return [(repository, uid(state, "d1"), None), (repository, _unknown(state), None)]

    return TestCase(
        id="rd-partial",
        title="One stored and one unknown document: PartialSuccess",
        tf=TF86 + "; ITI TF-2b §3.86.4.2.2 (PartialSuccess)",
        reference=REFERENCE,
        option=OPTION,
        steps=(
            _submit("d1"),
            _remove("remove", "ITI-86 for d1 and an unknown DocumentUniqueId", items, partial_success(),
                    verify=(lambda state, view: c.error_at(GONE, location=_unknown(state))(state, view),)),
            _gone("d1"),
        ),
    )  # fmt: skip


def case_other_repository() -> TestCase:
    def items(state: CaseState) -> list[tuple[str, str, str | None]]:
        return [(str(state.once("other-repository", state.ids.oid)), uid(state, "d1"), None)]

    return TestCase(
        id="rd-other-repository",
        title="A RepositoryUniqueId that is not this repository's removes nothing",
        tf=TF86 + "; ITI TF-3 Table 4.2.4.1-2",
        reference=REFERENCE + "; xds-notes §5 (ITI-43 semantics for the DocumentRequest)",
        description="Any error code is accepted (XDSUnknownRepositoryId is the ITI-43 one); the document "
        "must still be there afterwards.",
        option=OPTION,
        steps=(
            _submit("d1"),
            _remove("remove", "ITI-86 for d1 under another repositoryUniqueId", items,
                    Expectation(status=ResponseStatus.FAILURE, note="any RegistryError")),
            _there("d1"),
        ),
    )  # fmt: skip


def cases() -> tuple[TestCase, ...]:
    return (case_one(), case_two(), case_unknown(), case_partial(), case_other_repository())
