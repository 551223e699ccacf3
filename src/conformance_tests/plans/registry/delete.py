"""ITI-62 Delete Document Set at the Document Registry (the Remove Metadata and Documents option,
RMD; xds-notes §8.1 "Options", NIST 30000-30008).

A Document Administrator deletes registry objects by entryUUID (``lcm:RemoveObjectsRequest``
with a ``rim:ObjectRefList``). Each case registers its own submission, reads back the
entryUUIDs of the SubmissionSet, the DocumentEntries and their HasMember associations
(GetSubmissionSetAndContents), deletes some of them and queries again. The cases run only for a
peer that declares the option (``--option rmd``); otherwise they are not applicable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from conformance_tests.data.metadata import Submission
from conformance_tests.model import Counts, Expectation, SoapStep, TestCase, Transaction, failure, success
from conformance_tests.plans.registry.common import (
    APPROVED,
    doc,
    exactly_documents,
    get_documents,
    new_submission,
    query,
    register,
    uid,
    uuid,
)
from conformance_tests.plans.registry.options_common import delete_request, keep_submission, update_step
from conformance_tests.state import CaseState
from xds.errors import ErrorCode

__all__ = ["OPTION", "cases"]

#: The option a registry declares when it implements ITI-62.
OPTION: Final = "rmd"
TF62: Final = "ITI TF-2b §3.62.4.1.3 (Delete Document Set: Document Registry expected actions)"
REFERENCE: Final = "NIST 30000-30008 (xds-notes §8.1 Options); the case split is the runner's"
UNRESOLVED: Final = ErrorCode.UNRESOLVED_REFERENCE.value
REFERENCES_EXIST: Final = ErrorCode.REFERENCES_EXIST.value

Refs = Callable[[CaseState], Sequence[str]]


def _register(*keys: str) -> SoapStep:
    def build(state: CaseState) -> Submission:
        sub = new_submission(state, "s1")
        for key in keys:
            sub.add_document(doc(state, key))
        return sub

    return register("register", f"ITI-42 with {', '.join(keys)}", build)


def _contents(name: str, keys: Sequence[str], *, documents: int | None = None, keep: bool = False) -> SoapStep:
    """GetSubmissionSetAndContents of s1: the SubmissionSet, exactly ``keys`` and one HasMember each."""
    count = len(keys) if documents is None else documents
    return query(
        name,
        f"GetSubmissionSetAndContents of s1: {', '.join(keys) or 'no DocumentEntry'}",
        "GetSubmissionSetAndContents",
        lambda state: {"$XDSSubmissionSetUniqueId": uid(state, "s1")},
        success(Counts(submission_sets=1, documents=count, associations=count, folders=0)),
        verify=(exactly_documents(keys),),
        keep=keep_submission("s1", keys) if keep else None,
    )


def _delete(name: str, purpose: str, refs: Refs, expect: Expectation) -> SoapStep:
    return update_step(name, purpose, lambda state: delete_request(refs(state)), expect, transaction=Transaction.ITI62)


def _ids(*keys: str) -> Refs:
    return lambda state: [uuid(state, k) for k in keys]


def _unknown(state: CaseState) -> str:
    return str(state.once("unknown-uuid", state.ids.entry_uuid))


def _no_associations(name: str, key: str) -> SoapStep:
    """GetAssociations of ``key``'s (former) entryUUID: none left."""
    return query(
        name,
        f"GetAssociations of {key}'s entryUUID: no association refers to it",
        "GetAssociations",
        lambda state: {"$uuid": [uuid(state, key)]},
        success(Counts(associations=0)),
    )


def case_one_of_two() -> TestCase:
    return TestCase(
        id="rmd-delete-document",
        title="Delete one DocumentEntry and its HasMember; it is gone, the rest stays",
        tf=TF62 + "; ITI TF-2b §3.62.4.1.2 (ObjectRefList)",
        reference=REFERENCE,
        description="A submission of d1 and d2; ITI-62 deletes d1 and the SubmissionSet's HasMember to it. "
        "d1 is no longer found (GetDocuments, GetAssociations), d2 and the SubmissionSet are.",
        option=OPTION,
        steps=(
            _register("d1", "d2"),
            _contents("before", ["d1", "d2"], keep=True),
            _delete("delete", "ITI-62 for d1 and its HasMember association", _ids("d1", "d1-member"), success()),
            get_documents("d1_gone", ["d1"], expect=success(Counts(documents=0))),
            _no_associations("d1_links_gone", "d1"),
            _contents("after", ["d2"]),
        ),
    )  # fmt: skip


def case_whole_submission() -> TestCase:
    return TestCase(
        id="rmd-delete-submission",
        title="Delete a whole submission: SubmissionSet, DocumentEntry and their association",
        tf=TF62,
        reference=REFERENCE,
        option=OPTION,
        steps=(
            _register("d1"),
            _contents("before", ["d1"], keep=True),
            _delete("delete", "ITI-62 for s1, d1 and the HasMember between them", _ids("s1", "d1", "d1-member"),
                    success()),
            get_documents("d1_gone", ["d1"], expect=success(Counts(documents=0))),
            _no_associations("links_gone", "d1"),
            query("s1_gone", "GetSubmissionSets of d1's former entryUUID: none", "GetSubmissionSets",
                  lambda state: {"$uuid": [uuid(state, "d1")]}, success(Counts(submission_sets=0))),
        ),
    )  # fmt: skip


def case_dangling() -> TestCase:
    return TestCase(
        id="rmd-references-exist",
        title="Deleting a DocumentEntry an association still refers to is refused",
        tf=TF62 + "; ITI TF-3 Table 4.2.4.1-2 (ReferencesExistException)",
        reference=REFERENCE,
        description="ITI-62 names d1 but not the HasMember that refers to it, which would be left dangling: "
        "ReferencesExistException, and d1 stays Approved.",
        option=OPTION,
        steps=(
            _register("d1"),
            _contents("before", ["d1"], keep=True),
            _delete("delete", "ITI-62 for d1 alone", _ids("d1"), failure(REFERENCES_EXIST)),
            get_documents("kept", ["d1"], statuses={"d1": APPROVED}),
        ),
    )  # fmt: skip


def case_unknown() -> TestCase:
    return TestCase(
        id="rmd-unresolved",
        title="Deleting an object the registry does not hold is refused",
        tf=TF62 + "; ITI TF-3 Table 4.2.4.1-2 (UnresolvedReferenceException)",
        reference=REFERENCE,
        option=OPTION,
        steps=(
            _delete("delete", "ITI-62 for a fresh entryUUID", lambda state: [_unknown(state)], failure(UNRESOLVED)),
        ),
    )


def case_atomic() -> TestCase:
    return TestCase(
        id="rmd-atomic",
        title="One unknown reference among valid ones: nothing is deleted",
        tf=TF62 + "; ITI TF-3 Table 4.2.4.1-2 (UnresolvedReferenceException)",
        reference=REFERENCE,
        description="The request names the whole submission and one unknown entryUUID. That a Failure "
        "deletes nothing at all is the runner's reading of §3.62.4.1.3 (the request succeeds or fails "
        "as a whole).",
        option=OPTION,
        steps=(
            _register("d1"),
            _contents("before", ["d1"], keep=True),
            _delete("delete", "ITI-62 for s1, d1, its HasMember and an unknown entryUUID",
                    lambda state: [*_ids("s1", "d1", "d1-member")(state), _unknown(state)], failure(UNRESOLVED)),
            _contents("after", ["d1"]),
        ),
    )  # fmt: skip


def cases() -> tuple[TestCase, ...]:
    return (case_one_of_two(), case_whole_submission(), case_dangling(), case_unknown(), case_atomic())
