"""Folders in ITI-42: creation, membership, patient consistency, lastUpdateTime and replacement
(xds-notes §3.4, §3.5, §8.1; ITI TF-3 §4.2.3.4, §4.2.2.1)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from conformance_tests.data.metadata import Submission
from conformance_tests.model import Check, Counts, PauseStep, SoapStep, TestCase, Verifier, failure, success
from conformance_tests.plans.registry.common import (
    APPROVED,
    DEPRECATED,
    REG,
    REG_OTHER,
    Builder,
    doc,
    exactly_documents,
    exactly_folders,
    find_object,
    folder,
    get_documents,
    get_folders,
    keep_document_ids,
    last_update_time,
    new_submission,
    query,
    register,
    uid,
    uuid,
)
from conformance_tests.response import ResponseView
from conformance_tests.state import CaseState
from xds.errors import ErrorCode
from xds.vocabulary import AssociationType

TF_FOLDER: Final = "ITI TF-3 §4.2.3.4 (Folder), §4.2.2.1 (HasMember); ITI TF-2b §3.42.4.1.3"
STALE_TIME: Final = "19990101000000"


def _folder_only(ss_key: str, fd_key: str, *, last_update: str | None = None) -> Builder:
    def build(state: CaseState) -> Submission:
        sub = new_submission(state, ss_key)
        sub.add_folder(folder(state, fd_key, last_update_time=last_update))
        return sub

    return build


def _into_folder(ss_key: str, fd_key: str, doc_key: str, *, role: str = REG) -> Builder:
    """A new DE ``doc_key`` added to the existing Folder ``fd_key``."""

    def build(state: CaseState) -> Submission:
        sub = new_submission(state, ss_key, role=role)
        new = sub.add_document(doc(state, doc_key, role=role))
        sub.add_to_folder(uuid(state, fd_key), new)
        return sub

    return build


def _folder_contents(
    name: str, fd_key: str, counts: Counts, *, docs: list[str] | None = None, purpose: str = ""
) -> SoapStep:
    verify = [exactly_folders([fd_key])]
    if docs is not None:
        verify.append(exactly_documents(docs))
    return query(
        name,
        purpose or f"GetFolderAndContents of {fd_key}",
        "GetFolderAndContents",
        lambda st: {"$XDSFolderUniqueId": uid(st, fd_key)},
        success(counts),
        verify=verify,
    )


def case_11999() -> TestCase:
    def has_update_time(state: CaseState, view: ResponseView) -> list[Check]:
        value = last_update_time(view, state, "f1")
        return [
            Check(
                "lastUpdateTime", value.isdigit() and len(value) >= 8, f"lastUpdateTime {value!r}", "ITI TF-3 §4.2.3.4"
            )
        ]

    return TestCase(
        id="11999",
        title="Empty Folder",
        tf=TF_FOLDER,
        reference="NIST 11999",
        steps=(
            register("submit", "register SS + a Folder with no DocumentEntries", _folder_only("s1", "f1")),
            get_folders("read_back", ["f1"], verify=(has_update_time,)),
        ),
    )


def case_12000() -> TestCase:
    def build(state: CaseState) -> Submission:
        sub = new_submission(state, "s1")
        new = sub.add_document(doc(state, "d1"))
        fd = sub.add_folder(folder(state, "f1"))
        sub.add_to_folder(fd, new)
        return sub

    return TestCase(
        id="12000",
        title="Folder with an initial DocumentEntry",
        tf=TF_FOLDER,
        reference="NIST 12000 / 12000.1a",
        description="SS HasMember DE, SS HasMember FD, FD HasMember DE and SS HasMember (FD HasMember DE).",
        steps=(
            register("submit", "register SS + DE + Folder holding the DE", build),
            query(
                "submission_contents",
                "GetSubmissionSetAndContents: SS, DE, FD and the 4 HasMember associations",
                "GetSubmissionSetAndContents",
                lambda st: {"$XDSSubmissionSetUniqueId": uid(st, "s1")},
                success(Counts(submission_sets=1, documents=1, folders=1, associations=4)),
                verify=(exactly_documents(["d1"]), exactly_folders(["f1"])),
            ),
            _folder_contents("folder_contents", "f1", Counts(folders=1, documents=1, associations=1), docs=["d1"]),
            get_documents("documents", ["d1"], statuses={"d1": APPROVED}),
        ),
    )


def case_12001() -> TestCase:
    return TestCase(
        id="12001",
        title="Add a new DocumentEntry to an existing Folder",
        tf=TF_FOLDER,
        reference="NIST 12001",
        steps=(
            register("folder", "register SS + empty Folder f1", _folder_only("s1", "f1")),
            get_folders("lookup", ["f1"]),
            register("add", "register SS + DE d1 + (f1 HasMember d1)", _into_folder("s2", "f1", "d1")),
            _folder_contents("contents", "f1", Counts(folders=1, documents=1, associations=1), docs=["d1"]),
        ),
    )


def case_12002() -> TestCase:
    return TestCase(
        id="12002",
        title="Add another patient's DocumentEntry to a Folder",
        tf=TF_FOLDER + "; ITI TF-3 Table 4.2.4.1-2",
        reference="NIST 12002",
        steps=(
            register("folder", "register SS + empty Folder f1 (patient reg)", _folder_only("s1", "f1")),
            get_folders("lookup", ["f1"]),
            register(
                "add_other_patient",
                "register SS + DE d1 of another patient + (f1 HasMember d1)",
                _into_folder("s2", "f1", "d1", role=REG_OTHER),
                failure(ErrorCode.PATIENT_ID_DOES_NOT_MATCH.value),
            ),
            _folder_contents("unchanged", "f1", Counts(folders=1, documents=0, associations=0)),
        ),
    )


def _later(key_before: str, fd_key: str, *, remember_as: str) -> Verifier:
    """lastUpdateTime of ``fd_key`` is later than the value remembered as ``key_before``."""

    def verify(state: CaseState, view: ResponseView) -> list[Check]:
        before = str(state[key_before])
        now = last_update_time(view, state, fd_key)
        state.set(remember_as, now)
        return [
            Check(
                "lastUpdateTime updated",
                now.ljust(14, "0") > before.ljust(14, "0"),
                f"before {before}, now {now}",
                "ITI TF-3 §4.2.3.4 (lastUpdateTime changes whenever the Folder changes)",
            )
        ]

    return verify


def case_12323() -> TestCase:
    def registry_set(state: CaseState, view: ResponseView) -> list[Check]:
        value = last_update_time(view, state, "f1")
        state.set("lut-1", value)
        floor = datetime.now(UTC).strftime("%Y")
        return [
            Check(
                "lastUpdateTime set by the registry",
                value != STALE_TIME and value.isdigit() and value[:4] >= str(int(floor) - 1),
                f"submitted {STALE_TIME}, registry holds {value}",
                "ITI TF-3 §4.2.3.4 (lastUpdateTime is set by the registry)",
            )
        ]

    def replace_member(state: CaseState) -> Submission:
        sub = new_submission(state, "s3")
        new = sub.add_document(doc(state, "d2"))
        sub.relate(AssociationType.RPLC, new, uuid(state, "d1"))
        return sub

    return TestCase(
        id="12323",
        title="Folder lastUpdateTime is maintained by the registry",
        tf="ITI TF-3 §4.2.3.4 (Folder.lastUpdateTime); ITI TF-2b §3.42.4.1.3",
        reference="NIST 12323",
        description="A submitted lastUpdateTime is ignored; adding a DE and replacing a member update it.",
        steps=(
            register(
                "submit",
                f"register a Folder with lastUpdateTime {STALE_TIME}",
                _folder_only("s1", "f1", last_update=STALE_TIME),
            ),
            get_folders("initial", ["f1"], verify=(registry_set,)),
            PauseStep(name="wait_1", purpose="let the registry clock pass a second"),
            register("add", "register DE d1 into f1", _into_folder("s2", "f1", "d1")),
            query(
                "after_add",
                "GetFolderAndContents: lastUpdateTime later than before",
                "GetFolderAndContents",
                lambda st: {"$XDSFolderUniqueId": uid(st, "f1")},
                success(Counts(folders=1, documents=1)),
                verify=(_later("lut-1", "f1", remember_as="lut-2"),),
                keep=keep_document_ids(["d1"]),
            ),
            PauseStep(name="wait_2", purpose="let the registry clock pass a second"),
            register("replace", "register d2 RPLC d1 (d1 is in f1)", replace_member),
            get_folders("after_replace", ["f1"], verify=(_later("lut-2", "f1", remember_as="lut-3"),)),
        ),
    )


def case_12326() -> TestCase:
    def link(state: CaseState) -> Submission:
        sub = new_submission(state, "s3")
        sub.add_to_folder(uuid(state, "f1"), uuid(state, "d1"))
        return sub

    return TestCase(
        id="12326",
        title="Add an existing DocumentEntry to an existing Folder",
        tf=TF_FOLDER,
        reference="NIST 12326",
        steps=(
            register("document", "register SS + DE d1", lambda st: _one(st, "s1", "d1")),
            register("folder", "register SS + empty Folder f1", _folder_only("s2", "f1")),
            get_documents("lookup_document", ["d1"]),
            get_folders("lookup_folder", ["f1"]),
            register("link", "register SS + (f1 HasMember d1) + (SS HasMember that association)", link),
            _folder_contents("contents", "f1", Counts(folders=1, documents=1, associations=1), docs=["d1"]),
        ),
    )


def _one(state: CaseState, ss_key: str, doc_key: str) -> Submission:
    sub = new_submission(state, ss_key)
    sub.add_document(doc(state, doc_key))
    return sub


def case_12327() -> TestCase:
    def build(state: CaseState) -> Submission:
        sub = new_submission(state, "s1")
        new = sub.add_document(doc(state, "d1"))
        fd = sub.add_folder(folder(state, "f1"))
        sub.add_to_folder(fd, new)
        return sub

    def replace_member(state: CaseState) -> Submission:
        sub = new_submission(state, "s2")
        new = sub.add_document(doc(state, "d2"))
        sub.relate(AssociationType.RPLC, new, uuid(state, "d1"))
        return sub

    def replacement_present(state: CaseState, view: ResponseView) -> list[Check]:
        found = find_object(view, uid(state, "d2"), "doc")
        return [
            Check(
                "replacement in the Folder",
                found is not None,
                "d2 " + ("present" if found else "absent"),
                "ITI TF-3 §4.2.2.2 (a replacement joins the original's Folders)",
            )
        ]

    return TestCase(
        id="12327",
        title="Replacing a DocumentEntry that is in a Folder",
        tf="ITI TF-3 §4.2.2.2 (RPLC: the replacement becomes a member of the original's Folders)",
        reference="NIST 12327",
        steps=(
            register("submit", "register SS + DE d1 + Folder f1 holding d1", build),
            get_documents("lookup", ["d1"]),
            register("replace", "register d2 RPLC d1", replace_member),
            query(
                "folders_of_replacement",
                "GetFoldersForDocument(d2): f1",
                "GetFoldersForDocument",
                lambda st: {"$XDSDocumentEntryUniqueId": uid(st, "d2")},
                success(Counts(folders=1, documents=0)),
                verify=(exactly_folders(["f1"]),),
            ),
            query(
                "folder_contents",
                "GetFolderAndContents(f1) includes d2",
                "GetFolderAndContents",
                lambda st: {"$XDSFolderUniqueId": uid(st, "f1")},
                success(Counts(folders=1), note="d2 among the members"),
                verify=(replacement_present,),
            ),
            get_documents("statuses", ["d1", "d2"], statuses={"d1": DEPRECATED, "d2": APPROVED}),
        ),
    )


def cases() -> tuple[TestCase, ...]:
    return (
        case_11999(),
        case_12000(),
        case_12001(),
        case_12002(),
        case_12323(),
        case_12326(),
        case_12327(),
    )
