"""Repository acceptance tests (NIST ReposAcceptanceTest-1111/1112/1113; xds-notes §8.2).

The repository relays to the registry whatever the submission holds besides documents:
relationship associations to DocumentEntries it already registered (RPLC, APND, XFRM_RPLC),
Folders, and HasMember associations to Folders and DocumentEntries that exist only in the
registry. Objects referenced across submissions carry pre-assigned entryUUIDs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, cast

from lxml import etree

from conformance_tests.data.metadata import FolderSpec, Submission, folder_spec
from conformance_tests.model import SoapStep, TestCase, success
from conformance_tests.plans.repository import checks as c
from conformance_tests.plans.repository.common import REP, doc, new_submission, ours, pnr, provide, retrieve
from conformance_tests.state import CaseState
from xds.vocabulary import AssociationType

TF: Final = "ITI TF-2b §3.41.4.1.3; ITI TF-3 §4.2.2 (associations), §4.2.3.4 (Folders)"


def _entry_uuid(state: CaseState, key: str) -> str:
    return str(state.once(f"uuid:{key}", state.ids.entry_uuid))


def _doc_id(state: CaseState, key: str) -> str:
    """The DocumentEntry ``key`` with a pre-assigned entryUUID (so later submissions can refer to it)."""
    return doc(state, key, entry_uuid=_entry_uuid(state, key)).id


def _folder(state: CaseState, key: str) -> FolderSpec:
    def make() -> FolderSpec:
        return folder_spec(state.ids, state.patient(REP), symbol=f"Folder_{key}", entry_uuid=_entry_uuid(state, key))

    return cast(FolderSpec, state.once(f"folder:{key}", make))


Compose = Callable[[CaseState, Submission], None]


def _step(name: str, purpose: str, compose: Compose, documents: Sequence[str]) -> SoapStep:
    def build(state: CaseState) -> etree._Element:
        sub = new_submission(state, name)
        compose(state, sub)
        return pnr(sub)

    return provide(name, purpose, build, forwarded=tuple(documents))


def _add(*keys: str) -> Compose:
    def compose(state: CaseState, sub: Submission) -> None:
        for key in keys:
            _doc_id(state, key)
            sub.add_document(doc(state, key))

    return compose


def _related(kind: str, key: str, target: str) -> Compose:
    def compose(state: CaseState, sub: Submission) -> None:
        _add(key)(state, sub)
        sub.relate(kind, _doc_id(state, key), _doc_id(state, target))

    return compose


def _retrieve_all(keys: Sequence[str]) -> SoapStep:
    return retrieve(
        "retrieve",
        f"retrieve {', '.join(keys)}: every version stays retrievable",
        ours(*keys),
        success(),
        verify=(c.returned(keys), c.document_count(len(keys))),
    )


def case_1111() -> TestCase:
    return TestCase(
        id="RAT-1111",
        title="Single document, then its replacement (RPLC)",
        tf=TF + "; §4.2.2.2 (RPLC)",
        reference="NIST ReposAcceptanceTest-1111",
        steps=(
            _step("original", "ITI-41 with d1", _add("d1"), ["d1"]),
            _step("replace", "ITI-41 with d2 and an RPLC association to d1 (in the registry only)",
                  _related(AssociationType.RPLC, "d2", "d1"), ["d2"]),
            _retrieve_all(["d1", "d2"]),
        ),
    )  # fmt: skip


def case_1112() -> TestCase:
    return TestCase(
        id="RAT-1112",
        title="Addendum (APND) and transform-replace (XFRM_RPLC)",
        tf=TF + "; §4.2.2.2 (APND, XFRM_RPLC)",
        reference="NIST ReposAcceptanceTest-1112",
        steps=(
            _step("original", "ITI-41 with d1", _add("d1"), ["d1"]),
            _step("addendum", "ITI-41 with d2 appending to d1", _related(AssociationType.APND, "d2", "d1"), ["d2"]),
            _step("transform", "ITI-41 with d3 transforming and replacing d1",
                  _related(AssociationType.XFRM_RPLC, "d3", "d1"), ["d3"]),
            _retrieve_all(["d1", "d2", "d3"]),
        ),
    )  # fmt: skip


def _folder_only(key: str) -> Compose:
    def compose(state: CaseState, sub: Submission) -> None:
        sub.add_folder(_folder(state, key))

    return compose


def _folder_with(key: str, document: str) -> Compose:
    def compose(state: CaseState, sub: Submission) -> None:
        folder = sub.add_folder(_folder(state, key))
        _add(document)(state, sub)
        sub.add_to_folder(folder, _doc_id(state, document))

    return compose


def _into_existing_folder(key: str, document: str, *, new: bool) -> Compose:
    def compose(state: CaseState, sub: Submission) -> None:
        if new:
            _add(document)(state, sub)
        sub.add_to_folder(_folder(state, key).id, _doc_id(state, document))

    return compose


def case_1113() -> TestCase:
    return TestCase(
        id="RAT-1113",
        title="Two documents, a Folder, a Folder with a document, documents into an existing Folder",
        tf=TF + "; §4.2.2.1 (HasMember to Folders)",
        reference="NIST ReposAcceptanceTest-1113",
        description="The last submission carries no document at all: only the associations that put an "
        "existing DocumentEntry into an existing Folder.",
        steps=(
            _step("two_documents", "ITI-41 with d1 and d2", _add("d1", "d2"), ["d1", "d2"]),
            _step("folder", "ITI-41 with Folder f1 and no document", _folder_only("f1"), []),
            _step("folder_and_document", "ITI-41 with Folder f2 holding d3", _folder_with("f2", "d3"), ["d3"]),
            _step("new_into_folder", "ITI-41 with d4, put into the existing Folder f1",
                  _into_existing_folder("f1", "d4", new=True), ["d4"]),
            _step("existing_into_folder", "ITI-41 without documents putting the existing d1 into f1",
                  _into_existing_folder("f1", "d1", new=False), []),
            _retrieve_all(["d1", "d2", "d3", "d4"]),
        ),
    )  # fmt: skip


def cases() -> tuple[TestCase, ...]:
    return (case_1111(), case_1112(), case_1113())
