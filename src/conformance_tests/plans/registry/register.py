"""Register (ITI-42) tests of the Document Registry: submissions, patients, required attributes,
uniqueness, atomicity and extra metadata (xds-notes §8.1; NIST collections R.b / reg)."""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from conformance_tests.data.metadata import Submission
from conformance_tests.model import Check, Counts, SoapStep, TestCase, failure, success
from conformance_tests.plans.registry.common import (
    APPROVED,
    REG,
    REG_OTHER,
    UNKNOWN,
    doc,
    document_statuses,
    exactly_documents,
    find_object,
    get_documents,
    new_submission,
    query,
    register,
    remember,
    uid,
    uuid,
)
from conformance_tests.response import ResponseView
from conformance_tests.state import CaseState
from xds.errors import ErrorCode
from xds.vocabulary import AssociationType, IdScheme, Scheme, SlotName, SubmissionSetStatus

TF_42: Final = "ITI TF-2b §3.42.4.1.3 (Register Document Set-b: expected actions)"
EXTRA_SLOT: Final = "urn:imageshare:conformance:extra"


def _one_document(state: CaseState) -> Submission:
    sub = new_submission(state, "s1")
    sub.add_document(doc(state, "d1"))
    return sub


def _round_trip(state: CaseState, view: ResponseView) -> list[Check]:
    """The registered DocumentEntry comes back with the metadata submitted (ITI TF-3 §4.2.3.2)."""
    spec = doc(state, "d1")
    found = find_object(view, spec.unique_id, "doc")
    if found is None:
        return [Check("metadata round trip", False, "d1 not in the response", TF_42)]
    expected = {
        "mimeType": (spec.mime_type, found.element.get("mimeType")),
        "objectType": (spec.object_type, found.element.get("objectType")),
        "patientId": (spec.patient_id, found.external_id(IdScheme.DE_PATIENT_ID)),
        "hash": (spec.sha1, (found.slot(SlotName.HASH) or [""])[0].lower()),
        "size": (str(spec.length), (found.slot(SlotName.SIZE) or [""])[0]),
        "repositoryUniqueId": (spec.repository_unique_id, (found.slot(SlotName.REPOSITORY_UNIQUE_ID) or [""])[0]),
        "creationTime": (spec.creation_time, (found.slot(SlotName.CREATION_TIME) or [""])[0]),
        "classCode": ([(spec.class_code.code, spec.class_code.scheme)], found.codes(Scheme.DE_CLASS_CODE)),
        "typeCode": ([(spec.type_code.code, spec.type_code.scheme)], found.codes(Scheme.DE_TYPE_CODE)),
    }
    wrong = [f"{name}: sent {sent!r}, got {got!r}" for name, (sent, got) in expected.items() if sent != got]
    return [Check("metadata round trip", not wrong, "; ".join(wrong) or "as submitted", "ITI TF-3 §4.2.3.2")]


def _member_association(state: CaseState, view: ResponseView) -> list[Check]:
    """SS HasMember DE with SubmissionSetStatus Original (ITI TF-3 §4.2.2.1.1)."""
    members = view.associations_of(AssociationType.HAS_MEMBER)
    ss = view.submission_sets
    de = view.documents
    ok = (
        len(members) == 1
        and len(ss) == 1
        and len(de) == 1
        and members[0].source == ss[0].id
        and members[0].target == de[0].id
        and members[0].slot(SlotName.SUBMISSION_SET_STATUS) == [SubmissionSetStatus.ORIGINAL]
    )
    detail = (
        ", ".join(f"{m.source} -> {m.target} {m.slot(SlotName.SUBMISSION_SET_STATUS)}" for m in members)
        or "no HasMember"
    )
    return [Check("SS-DE HasMember", ok, detail, "ITI TF-3 §4.2.2.1.1")]


def case_11990() -> TestCase:
    return TestCase(
        id="11990",
        title="Register one DocumentEntry",
        tf=TF_42,
        reference="NIST 11990",
        description="A SubmissionSet with one DocumentEntry is registered; GetSubmissionSetAndContents "
        "returns it Approved, with registry-assigned entryUUIDs and the metadata as submitted.",
        steps=(
            register("submit", "register SS + 1 DE", _one_document),
            query(
                "get_contents",
                "GetSubmissionSetAndContents by SubmissionSet uniqueId",
                "GetSubmissionSetAndContents",
                lambda st: {"$XDSSubmissionSetUniqueId": uid(st, "s1")},
                success(
                    Counts(submission_sets=1, documents=1, folders=0, associations=1), note="DE Approved, as submitted"
                ),
                verify=(document_statuses({"d1": APPROVED}), _round_trip, _member_association),
            ),
        ),
    )


def case_11991() -> TestCase:
    def build(state: CaseState) -> Submission:
        sub = new_submission(state, "s1")
        sub.add_document(doc(state, "d1"))
        sub.add_document(doc(state, "d2"))
        return sub

    return TestCase(
        id="11991",
        title="Register two DocumentEntries",
        tf=TF_42,
        reference="NIST 11991",
        steps=(
            register("submit", "register SS + 2 DEs", build),
            query(
                "get_contents",
                "GetSubmissionSetAndContents by SubmissionSet uniqueId",
                "GetSubmissionSetAndContents",
                lambda st: {"$XDSSubmissionSetUniqueId": uid(st, "s1")},
                success(Counts(submission_sets=1, documents=2, folders=0, associations=2)),
                verify=(exactly_documents(["d1", "d2"]), document_statuses({"d1": APPROVED, "d2": APPROVED})),
            ),
        ),
    )


def case_11996() -> TestCase:
    def build(state: CaseState) -> Submission:
        sub = new_submission(state, "s1", role=UNKNOWN)
        sub.add_document(doc(state, "d1", role=UNKNOWN))
        return sub

    return TestCase(
        id="11996",
        title="Unknown patient id",
        tf="ITI TF-2b §3.42.4.1.3 (the patient id must be known from the Patient Identity Feed); ITI TF-3 Table 4.2.4.1-2",
        reference="NIST 11996",
        description="The patient id was never received through the Patient Identity Feed.",
        steps=(
            register(
                "submit",
                "register SS + DE for a patient the registry does not know",
                build,
                failure(ErrorCode.UNKNOWN_PATIENT_ID.value),
            ),
            get_documents("nothing_stored", ["d1"], expect=success(Counts(documents=0)), purpose="nothing was stored"),
        ),
    )


def case_11997() -> TestCase:
    def build(state: CaseState) -> Submission:
        sub = new_submission(state, "s1", role=REG)
        sub.add_document(doc(state, "d1", role=REG_OTHER))
        return sub

    return TestCase(
        id="11997",
        title="DocumentEntry patient id differs from the SubmissionSet's",
        tf="ITI TF-2b §3.42.4.1.3; ITI TF-3 Table 4.2.4.1-2 (XDSPatientIdDoesNotMatch)",
        reference="NIST 11997",
        steps=(
            register(
                "submit",
                "SS for one known patient, DE for another known patient",
                build,
                failure(ErrorCode.PATIENT_ID_DOES_NOT_MATCH.value),
            ),
            get_documents("nothing_stored", ["d1"], expect=success(Counts(documents=0)), purpose="nothing was stored"),
        ),
    )


# ITI TF-3 §4.3.1 Table 4.3.1-3: attributes required of a DocumentEntry in ITI-42 (NIST 11998a).
REQUIRED_ATTRIBUTES: Final = (
    "classCode",
    "confidentialityCode",
    "creationTime",
    "formatCode",
    "healthcareFacilityTypeCode",
    "languageCode",
    "practiceSettingCode",
    "sourcePatientId",
    "typeCode",
)


def case_11998a() -> TestCase:
    def missing(attribute: str) -> SoapStep:
        def build(state: CaseState) -> Submission:
            sub = new_submission(state, f"s-{attribute}")
            sub.add_document(doc(state, f"no-{attribute}", omit=frozenset({attribute})))
            return sub

        return register(
            f"no_{attribute}",
            f"register a DE without {attribute}",
            build,
            failure(ErrorCode.REGISTRY_METADATA_ERROR.value),
        )

    return TestCase(
        id="11998a",
        title="Required DocumentEntry attributes",
        tf="ITI TF-3 §4.3.1 Table 4.3.1-3 (ITI-42 metadata optionality); ITI TF-2b §3.42.4.1.3",
        reference="NIST 11998a",
        description="Nine submissions, each lacking one required attribute, are each rejected.",
        independent_steps=True,
        steps=(
            *(missing(attribute) for attribute in REQUIRED_ATTRIBUTES),
            get_documents(
                "nothing_stored",
                [f"no-{a}" for a in REQUIRED_ATTRIBUTES],
                expect=success(Counts(documents=0)),
                purpose="none of the nine was stored",
            ),
        ),
    )


def case_12004() -> TestCase:
    def first(state: CaseState) -> Submission:
        sub = new_submission(state, "s1")
        sub.add_document(doc(state, "d1"))
        return sub

    def same_again(state: CaseState) -> Submission:
        sub = new_submission(state, "s2")
        original = doc(state, "d1")
        sub.add_document(state.once("doc:d1-copy", lambda: replace(original, symbol="Document_copy")))
        return sub

    def other_hash(state: CaseState) -> Submission:
        sub = new_submission(state, "s3")
        original = doc(state, "d1")
        # Same length, other bytes: only the hash differs.
        content = bytes(reversed(original.content))
        sub.add_document(state.once("doc:d1-hash", lambda: replace(original, symbol="Document_hash", content=content)))
        return sub

    def other_size(state: CaseState) -> Submission:
        sub = new_submission(state, "s4")
        original = doc(state, "d1")
        sub.add_document(
            state.once("doc:d1-size", lambda: replace(original, symbol="Document_size", size=original.length + 1))
        )
        return sub

    return TestCase(
        id="12004",
        title="Resubmission of a DocumentEntry uniqueId",
        tf="ITI TF-2b §3.42.4.1.3 (uniqueId already in the registry); ITI TF-3 Table 4.2.4.1-2",
        reference="NIST 12004",
        description="The same uniqueId with the same hash and size is accepted as another DocumentEntry; "
        "with another hash it is XDSNonIdenticalHash, with another size XDSNonIdenticalSize.",
        steps=(
            register("submit", "register DE d1", first),
            register("resubmit_same", "register d1's uniqueId again, same hash and size", same_again),
            register(
                "resubmit_other_hash",
                "register d1's uniqueId with another hash",
                other_hash,
                failure(ErrorCode.NON_IDENTICAL_HASH.value),
            ),
            register(
                "resubmit_other_size",
                "register d1's uniqueId with the same hash, another size",
                other_size,
                failure(ErrorCode.NON_IDENTICAL_SIZE.value),
            ),
            query(
                "both_copies",
                "GetDocuments by d1's uniqueId: both accepted copies",
                "GetDocuments",
                lambda st: {"$XDSDocumentEntryUniqueId": [uid(st, "d1")]},
                success(Counts(documents=2)),
            ),
        ),
    )


def case_12084() -> TestCase:
    def build(state: CaseState) -> Submission:
        sub = new_submission(state, "s1")
        sub.add_document(doc(state, "d1"))
        sub.add_document(doc(state, "d2", omit=frozenset({"repositoryUniqueId"})))
        return sub

    return TestCase(
        id="12084",
        title="A submission is all or nothing",
        tf="ITI TF-2b §3.42.4.1.3 (the registry rejects the whole submission on any error)",
        reference="NIST 12084",
        steps=(
            register(
                "submit",
                "register 2 DEs, the second without repositoryUniqueId",
                build,
                failure(ErrorCode.REGISTRY_METADATA_ERROR.value),
            ),
            get_documents(
                "nothing_stored", ["d1", "d2"], expect=success(Counts(documents=0)), purpose="neither DE was stored"
            ),
        ),
    )


def case_12379() -> TestCase:
    def build(state: CaseState) -> Submission:
        sub = new_submission(state, "s1")
        sub.add_document(doc(state, "d1", extra_slots=((EXTRA_SLOT, ("conformance-value",)),)))
        return sub

    def note_warning(state: CaseState, view: ResponseView) -> None:
        state.set(
            "warned", any(e.code == ErrorCode.EXTRA_METADATA_NOT_SAVED.value and e.is_warning for e in view.errors)
        )

    def one_way(state: CaseState, view: ResponseView) -> list[Check]:
        found = find_object(view, uid(state, "d1"), "doc")
        stored = found is not None and found.slot(EXTRA_SLOT) == ["conformance-value"]
        warned = bool(state.get("warned"))
        return [
            Check(
                "extra metadata",
                stored != warned,
                f"returned in queries: {stored}; XDSExtraMetadataNotSaved warning: {warned} "
                "(exactly one of the two is required)",
                "ITI TF-3 §4.1 (extra metadata attributes); ITI TF-2b §3.42.4.1.3",
            )
        ]

    return TestCase(
        id="12379",
        title="Extra metadata: stored and returned, or a warning",
        tf="ITI TF-3 §4.1 (extra metadata attributes); ITI TF-2b §3.42.4.1.3",
        reference="NIST 12379 (support / no_support)",
        steps=(
            register(
                "submit",
                f"register a DE with the extra slot {EXTRA_SLOT}",
                build,
                success(note="Success, optionally with warning XDSExtraMetadataNotSaved"),
                keep=note_warning,
            ),
            query(
                "read_back",
                "GetDocuments: the extra slot is returned unless the registry warned",
                "GetDocuments",
                lambda st: {"$XDSDocumentEntryUniqueId": [uid(st, "d1")]},
                success(Counts(documents=1)),
                verify=(one_way,),
            ),
        ),
    )


def case_15806() -> TestCase:
    def first(state: CaseState) -> Submission:
        entry = state.once("entry-uuid", state.ids.entry_uuid)
        sub = new_submission(state, "s1")
        sub.add_document(doc(state, "d1", entry_uuid=entry))
        return sub

    def again(state: CaseState) -> Submission:
        sub = new_submission(state, "s2")
        sub.add_document(doc(state, "d2", entry_uuid=state["entry-uuid"]))
        return sub

    def keep_entry(state: CaseState, view: ResponseView) -> None:
        remember(state, "d1", state["entry-uuid"])

    return TestCase(
        id="15806",
        title="Resubmission of an existing entryUUID",
        tf="ITI TF-3 §4.2.3.2 (entryUUID is unique); ITI TF-2b §3.42.4.1.3",
        reference="NIST 15806",
        steps=(
            register("submit", "register DE d1 with a pre-assigned entryUUID", first, keep=keep_entry),
            register("resubmit", "register another DE with the same entryUUID", again, failure()),
            get_documents(
                "original_kept",
                ["d1"],
                by_uuid=True,
                statuses={"d1": APPROVED},
                purpose="GetDocuments by the entryUUID: the original, unchanged",
            ),
            query(
                "uuid_assigned",
                "GetDocuments by entryUUID returns d1 under the pre-assigned id",
                "GetDocuments",
                lambda st: {"$XDSDocumentEntryEntryUUID": [uuid(st, "d1")]},
                success(Counts(documents=1)),
                verify=(exactly_documents(["d1"]),),
            ),
        ),
    )


def case_12051() -> TestCase:
    def build(state: CaseState) -> Submission:
        sub = new_submission(state, "s1")
        # An Integrated Source/Repository registers its own documents: it is the repository.
        sub.add_document(doc(state, "d1", repository_unique_id=sub.ss.source_id))
        return sub

    def repository(state: CaseState, view: ResponseView) -> list[Check]:
        found = find_object(view, uid(state, "d1"), "doc")
        got = [] if found is None else found.slot(SlotName.REPOSITORY_UNIQUE_ID)
        want = doc(state, "d1").repository_unique_id
        return [Check("repositoryUniqueId", got == [want], f"expected [{want}], got {got}", "ITI TF-3 §4.2.3.2 (repositoryUniqueId)")]

    return TestCase(
        id="12051",
        title="Register from an Integrated Source/Repository",
        tf="ITI TF-2b §3.42 (ISR as Register Document Set-b sender)",
        reference="NIST 12051 (reg_isr)",
        steps=(
            register("submit", "register a DE whose repositoryUniqueId is the source's own", build),
            get_documents("read_back", ["d1"], statuses={"d1": APPROVED}, verify=(repository,)),
        ),
    )


def cases() -> tuple[TestCase, ...]:
    return (
        case_11990(),
        case_11991(),
        case_11996(),
        case_11997(),
        case_11998a(),
        case_12004(),
        case_12084(),
        case_12379(),
        case_15806(),
        case_12051(),
    )
