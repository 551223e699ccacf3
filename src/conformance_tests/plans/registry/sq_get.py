"""The GetXxx stored queries, GetAll, the single-patient rule, multi-patient queries and query
errors (ITI TF-2a §3.18.4.1.2.3.7; xds-notes §8.4) over the data of :mod:`.sq_data`.

Association counts follow from the data: S1 has 1 association (S1-D1), S2 has 4 (S2-D2, S2-F1,
F1-D2, S2-(F1-D2)), S3 has 7 (S3-D3, S3-D4, S3-F2, F2-D3, F2-D4 and S3 to each of the last two),
S4 has 1 and S5 has 2 (S5-D6, D6 RPLC D5): 15 in all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Final

from conformance_tests.data import codes as c
from conformance_tests.model import Counts, Expectation, SoapStep, TestCase, Transaction, Verifier, failure, success
from conformance_tests.plans.registry.common import (
    APPROVED,
    DEPRECATED,
    OBJECT_REF,
    SQ,
    SQ2,
    Rewrite,
    exactly_documents,
    exactly_folders,
    exactly_refs,
    exactly_submission_sets,
    query,
    set_slot_value,
    split_slot_values,
    uid,
    uuid,
)
from conformance_tests.plans.registry.sq_data import LOAD_CASE, LOAD_CASE_2
from conformance_tests.state import CaseState
from xds.errors import ErrorCode
from xds.vocabulary import AssociationType

TF_GET: Final = "ITI TF-2a §3.18.4.1.2.3.7 (stored queries); §3.18.4.1.3 (response)"
Params = Callable[[CaseState], Mapping[str, object]]


def _q(
    name: str,
    purpose: str,
    stored_query: str,
    params: Params,
    counts: Counts | None = None,
    *,
    docs: Sequence[str] | None = None,
    folders: Sequence[str] | None = None,
    sets: Sequence[str] | None = None,
    refs: Sequence[str] | None = None,
    expect: Expectation | None = None,
    return_type: str = "LeafClass",
    rewrite: Rewrite | None = None,
    transaction: Transaction = Transaction.ITI18,
) -> SoapStep:
    verify: list[Verifier] = []
    if docs is not None:
        verify.append(exactly_documents(list(docs)))
    if folders is not None:
        verify.append(exactly_folders(list(folders)))
    if sets is not None:
        verify.append(exactly_submission_sets(list(sets)))
    if refs is not None:
        verify.append(exactly_refs(list(refs)))
    return query(
        name,
        purpose,
        stored_query,
        params,
        expect or success(counts),
        return_type=return_type,
        verify=verify,
        rewrite=rewrite,
        transaction=transaction,
    )


def _case(
    case_id: str,
    title: str,
    *steps: SoapStep,
    requires: tuple[str, ...] = (LOAD_CASE,),
    tf: str = TF_GET,
    option: str | None = None,
) -> TestCase:
    return TestCase(
        id=case_id,
        title=title,
        tf=tf,
        reference=f"NIST {case_id}",
        requires=requires,
        independent_steps=True,
        steps=steps,
        option=option,
    )


def case_11901() -> TestCase:
    return _case(
        "11901",
        "GetDocuments",
        _q(
            "uniqueid",
            "by uniqueId D1",
            "GetDocuments",
            lambda st: {"$XDSDocumentEntryUniqueId": [uid(st, "D1")]},
            Counts(documents=1),
            docs=("D1",),
        ),
        _q(
            "uniqueid2",
            "by uniqueIds D1, D2",
            "GetDocuments",
            lambda st: {"$XDSDocumentEntryUniqueId": [uid(st, "D1"), uid(st, "D2")]},
            Counts(documents=2),
            docs=("D1", "D2"),
        ),
        _q(
            "uuid",
            "by entryUUID D1",
            "GetDocuments",
            lambda st: {"$XDSDocumentEntryEntryUUID": [uuid(st, "D1")]},
            Counts(documents=1),
            docs=("D1",),
        ),
        _q(
            "uuid2",
            "by entryUUIDs D1, D2",
            "GetDocuments",
            lambda st: {"$XDSDocumentEntryEntryUUID": [uuid(st, "D1"), uuid(st, "D2")]},
            Counts(documents=2),
            docs=("D1", "D2"),
        ),
        _q(
            "uuid_multiple_slot_values",
            "entryUUIDs D1, D2 in two Value elements of one Slot (CP 295)",
            "GetDocuments",
            lambda st: {"$XDSDocumentEntryEntryUUID": [uuid(st, "D1"), uuid(st, "D2")]},
            Counts(documents=2),
            docs=("D1", "D2"),
            rewrite=split_slot_values("$XDSDocumentEntryEntryUUID"),
        ),
        _q(
            "homeCommunityId",
            "by uniqueId D1 with $homeCommunityId (ignored by a registry)",
            "GetDocuments",
            lambda st: {
                "$XDSDocumentEntryUniqueId": [uid(st, "D1")],
                "$homeCommunityId": "urn:oid:1.3.6.1.4.1.21367.13.70.1",
            },
            Counts(documents=1),
            docs=("D1",),
        ),
        _q(
            "deprecated",
            "by entryUUID of the Deprecated D5 (no status filter)",
            "GetDocuments",
            lambda st: {"$XDSDocumentEntryEntryUUID": [uuid(st, "D5")]},
            Counts(documents=1),
            docs=("D5",),
        ),
    )


def case_11902() -> TestCase:
    return _case(
        "11902",
        "GetFolders",
        _q(
            "uuid",
            "by entryUUIDs F1, F2",
            "GetFolders",
            lambda st: {"$XDSFolderEntryUUID": [uuid(st, "F1"), uuid(st, "F2")]},
            Counts(folders=2, documents=0, submission_sets=0, associations=0),
            folders=("F1", "F2"),
        ),
        _q(
            "uniqueid",
            "by uniqueIds F1, F2",
            "GetFolders",
            lambda st: {"$XDSFolderUniqueId": [uid(st, "F1"), uid(st, "F2")]},
            Counts(folders=2, documents=0, submission_sets=0, associations=0),
            folders=("F1", "F2"),
        ),
    )


def _assoc_query(name: str, purpose: str, keys: Sequence[str], count: int) -> SoapStep:
    return _q(
        name,
        purpose,
        "GetAssociations",
        lambda st: {"$uuid": [uuid(st, k) for k in keys]},
        Counts(associations=count, documents=0, submission_sets=0, folders=0),
    )


def case_11903() -> TestCase:
    return _case(
        "11903",
        "GetAssociations",
        _assoc_query("single", "D1: S1 HasMember D1", ["D1"], 1),
        _assoc_query("several", "D2: S2 HasMember D2, F1 HasMember D2", ["D2"], 2),
        _assoc_query("submission_set", "S2: HasMember D2, F1 and (F1 HasMember D2)", ["S2"], 3),
        _assoc_query("two_documents", "D2 and D6: 2 + 2 (D6 RPLC D5 included)", ["D2", "D6"], 4),
    )


def case_11904() -> TestCase:
    return _case(
        "11904",
        "GetDocumentsAndAssociations",
        _q(
            "one",
            "D1 by uniqueId",
            "GetDocumentsAndAssociations",
            lambda st: {"$XDSDocumentEntryUniqueId": [uid(st, "D1")]},
            Counts(documents=1, associations=1),
            docs=("D1",),
        ),
        _q(
            "two",
            "D1, D2 by entryUUID",
            "GetDocumentsAndAssociations",
            lambda st: {"$XDSDocumentEntryEntryUUID": [uuid(st, "D1"), uuid(st, "D2")]},
            Counts(documents=2, associations=3),
            docs=("D1", "D2"),
        ),
    )


def _sets_of(name: str, purpose: str, keys: Sequence[str], sets: Sequence[str], associations: int) -> SoapStep:
    return _q(
        name,
        purpose,
        "GetSubmissionSets",
        lambda st: {"$uuid": [uuid(st, k) for k in keys]},
        Counts(submission_sets=len(sets), associations=associations, documents=0, folders=0),
        sets=sets,
    )


def case_11905() -> TestCase:
    return _case(
        "11905",
        "GetSubmissionSets",
        _sets_of("doc", "D1", ["D1"], ["S1"], 1),
        _sets_of("two_docs_two_sets", "D1, D2", ["D1", "D2"], ["S1", "S2"], 2),
        _sets_of("two_docs_one_set", "D3, D4", ["D3", "D4"], ["S3"], 2),
        _sets_of("folder", "F1", ["F1"], ["S2"], 1),
        _sets_of("doc_and_folder", "D1, F1", ["D1", "F1"], ["S1", "S2"], 2),
    )


def case_11906() -> TestCase:
    s1_by_uid: Params = lambda st: {"$XDSSubmissionSetUniqueId": uid(st, "S1")}  # noqa: E731
    s3: Params = lambda st: {"$XDSSubmissionSetEntryUUID": uuid(st, "S3")}  # noqa: E731
    return _case(
        "11906",
        "GetSubmissionSetAndContents",
        _q(
            "uniqueid",
            "S1 by uniqueId",
            "GetSubmissionSetAndContents",
            s1_by_uid,
            Counts(submission_sets=1, documents=1, folders=0, associations=1),
            docs=("D1",),
            sets=("S1",),
        ),
        _q(
            "uuid",
            "S1 by entryUUID",
            "GetSubmissionSetAndContents",
            lambda st: {"$XDSSubmissionSetEntryUUID": uuid(st, "S1")},
            Counts(submission_sets=1, documents=1, folders=0, associations=1),
            docs=("D1",),
        ),
        _q(
            "two_doc_with_folder",
            "S3: 2 DEs, 1 FD and 7 HasMember associations",
            "GetSubmissionSetAndContents",
            s3,
            Counts(submission_sets=1, documents=2, folders=1, associations=7),
            docs=("D3", "D4"),
            folders=("F2",),
        ),
        _q(
            "formatcode",
            "S3 filtered by formatCode XPHR",
            "GetSubmissionSetAndContents",
            lambda st: {**s3(st), "$XDSDocumentEntryFormatCode": [c.FORMAT_XPHR.query_value()]},
            Counts(submission_sets=1, documents=1, folders=1),
            docs=("D4",),
        ),
        _q(
            "confcode",
            "S3 filtered by confidentialityCode R",
            "GetSubmissionSetAndContents",
            lambda st: {**s3(st), "$XDSDocumentEntryConfidentialityCode": [c.CONF_RESTRICTED.query_value()]},
            Counts(submission_sets=1, documents=1, folders=1),
            docs=("D3",),
        ),
        _q(
            "objectref",
            "S1 as ObjectRefs: the SS, D1 and their association",
            "GetSubmissionSetAndContents",
            s1_by_uid,
            Counts(object_refs=3, documents=0),
            return_type=OBJECT_REF,
        ),
    )


def case_11907() -> TestCase:
    f2: Params = lambda st: {"$XDSFolderUniqueId": uid(st, "F2")}  # noqa: E731
    return _case(
        "11907",
        "GetFolderAndContents",
        _q(
            "one_doc",
            "F1 by entryUUID",
            "GetFolderAndContents",
            lambda st: {"$XDSFolderEntryUUID": uuid(st, "F1")},
            Counts(folders=1, documents=1, associations=1, submission_sets=0),
            docs=("D2",),
            folders=("F1",),
        ),
        _q(
            "two_docs",
            "F2 by uniqueId",
            "GetFolderAndContents",
            f2,
            Counts(folders=1, documents=2, associations=2, submission_sets=0),
            docs=("D3", "D4"),
            folders=("F2",),
        ),
        _q(
            "confcode",
            "F2 filtered by confidentialityCode R",
            "GetFolderAndContents",
            lambda st: {**f2(st), "$XDSDocumentEntryConfidentialityCode": [c.CONF_RESTRICTED.query_value()]},
            Counts(folders=1, documents=1),
            docs=("D3",),
        ),
        _q(
            "formatcode",
            "F2 filtered by formatCode XPHR",
            "GetFolderAndContents",
            lambda st: {**f2(st), "$XDSDocumentEntryFormatCode": [c.FORMAT_XPHR.query_value()]},
            Counts(folders=1, documents=1),
            docs=("D4",),
        ),
    )


def case_11908() -> TestCase:
    return _case(
        "11908",
        "GetFoldersForDocument",
        _q(
            "uuid",
            "D2 by entryUUID: F1 only",
            "GetFoldersForDocument",
            lambda st: {"$XDSDocumentEntryEntryUUID": uuid(st, "D2")},
            Counts(folders=1, documents=0, submission_sets=0, associations=0),
            folders=("F1",),
        ),
        _q(
            "uniqueid",
            "D3 by uniqueId: F2 only",
            "GetFoldersForDocument",
            lambda st: {"$XDSDocumentEntryUniqueId": uid(st, "D3")},
            Counts(folders=1, documents=0, submission_sets=0, associations=0),
            folders=("F2",),
        ),
        _q(
            "none",
            "D1 is in no Folder",
            "GetFoldersForDocument",
            lambda st: {"$XDSDocumentEntryUniqueId": uid(st, "D1")},
            Counts(folders=0, documents=0),
        ),
    )


def _related(
    name: str, purpose: str, key: str, types: Sequence[str], docs: Sequence[str], associations: int
) -> SoapStep:
    return _q(
        name,
        purpose,
        "GetRelatedDocuments",
        lambda st: {"$XDSDocumentEntryEntryUUID": uuid(st, key), "$AssociationTypes": list(types)},
        Counts(documents=len(docs), associations=associations),
        docs=docs,
    )


def case_11909() -> TestCase:
    return _case(
        "11909",
        "GetRelatedDocuments",
        _related("none_rplc", "D1 has no RPLC relation: empty result", "D1", [AssociationType.RPLC], (), 0),
        _related(
            "none_apnd",
            "D1 has no APND or XFRM relation: empty result",
            "D1",
            [AssociationType.APND, AssociationType.XFRM],
            (),
            0,
        ),
        _related("replacement", "D6 (replaces D5): D6, D5 and the RPLC", "D6", [AssociationType.RPLC], ("D5", "D6"), 1),
        _related("original", "D5 (replaced by D6): D5, D6 and the RPLC", "D5", [AssociationType.RPLC], ("D5", "D6"), 1),
    )


def case_12368() -> TestCase:
    not_single = failure(ErrorCode.RESULT_NOT_SINGLE_PATIENT.value)
    return _case(
        "12368",
        "LeafClass results must concern one patient",
        _q(
            "documents",
            "GetDocuments D1 (sq) and D7 (sq2), LeafClass",
            "GetDocuments",
            lambda st: {"$XDSDocumentEntryEntryUUID": [uuid(st, "D1"), uuid(st, "D7")]},
            expect=not_single,
        ),
        _q(
            "submission_sets",
            "GetSubmissionSets of D1 (sq) and D7 (sq2), LeafClass",
            "GetSubmissionSets",
            lambda st: {"$uuid": [uuid(st, "D1"), uuid(st, "D7")]},
            expect=not_single,
        ),
        _q(
            "folders",
            "GetFolders F1 (sq) and F3 (sq2), LeafClass",
            "GetFolders",
            lambda st: {"$XDSFolderEntryUUID": [uuid(st, "F1"), uuid(st, "F3")]},
            expect=not_single,
        ),
        _q(
            "objectref",
            "GetDocuments D1 and D7 as ObjectRefs: allowed",
            "GetDocuments",
            lambda st: {"$XDSDocumentEntryEntryUUID": [uuid(st, "D1"), uuid(st, "D7")]},
            Counts(object_refs=2, documents=0),
            refs=("D1", "D7"),
            return_type=OBJECT_REF,
        ),
        requires=(LOAD_CASE, LOAD_CASE_2),
        tf="ITI TF-2a §3.18.4.1.3 (XDSResultNotSinglePatient); ITI TF-3 Table 4.2.4.1-2",
    )


def case_15803() -> TestCase:
    def all_of(st: CaseState) -> Mapping[str, object]:
        return {
            "$patientId": st.patient(SQ),
            "$XDSDocumentEntryStatus": [APPROVED, DEPRECATED],
            "$XDSSubmissionSetStatus": [APPROVED],
            "$XDSFolderStatus": [APPROVED],
        }

    return _case(
        "15803",
        "GetAll",
        _q(
            "leafclass",
            "everything of patient sq",
            "GetAll",
            all_of,
            Counts(documents=6, submission_sets=5, folders=2, associations=15),
            docs=("D1", "D2", "D3", "D4", "D5", "D6"),
            sets=("S1", "S2", "S3", "S4", "S5"),
            folders=("F1", "F2"),
        ),
    )


def case_12364() -> TestCase:
    def patients(st: CaseState) -> list[str]:
        return [st.patient(SQ), st.patient(SQ2)]

    return _case(
        "12364",
        "FindDocumentsForMultiplePatients (ITI-51)",
        _q(
            "nothing",
            "only a status: too broad",
            "FindDocumentsForMultiplePatients",
            lambda st: {"$XDSDocumentEntryStatus": [APPROVED]},
            expect=failure(ErrorCode.STORED_QUERY_MISSING_PARAM.value),
            transaction=Transaction.ITI51,
        ),
        _q(
            "classcode",
            "classCode REPORTS for patients sq and sq2",
            "FindDocumentsForMultiplePatients",
            lambda st: {
                "$XDSDocumentEntryPatientId": patients(st),
                "$XDSDocumentEntryStatus": [APPROVED],
                "$XDSDocumentEntryClassCode": [c.CLASS_REPORTS.query_value()],
            },
            Counts(documents=3),
            docs=("D1", "D3", "D7"),
            transaction=Transaction.ITI51,
        ),
        requires=(LOAD_CASE, LOAD_CASE_2),
        option="mpq",
        tf="ITI TF-2b §3.51 (Multi-Patient Stored Query)",
    )


def case_query_errors() -> TestCase:
    """Errors of ITI-18 travel in an AdhocQueryResponse (xds-notes §9 item 2)."""
    return TestCase(
        id="sq-errors",
        title="Stored Query errors in an AdhocQueryResponse",
        tf="ITI TF-2a §3.18.4.1.3 (errors: AdhocQueryResponse status Failure with RegistryErrorList)",
        reference="NIST issues #147, #173, #251",
        requires=(LOAD_CASE,),
        independent_steps=True,
        steps=(
            _q(
                "unknown_query",
                "an AdhocQuery id that is no stored query",
                "urn:uuid:00000000-0000-4000-8000-000000000000",
                lambda st: {"$XDSDocumentEntryPatientId": st.patient(SQ)},
                expect=failure(ErrorCode.UNKNOWN_STORED_QUERY.value),
            ),
            _q(
                "missing_patient",
                "FindDocuments without $XDSDocumentEntryPatientId",
                "FindDocuments",
                lambda st: {"$XDSDocumentEntryStatus": [APPROVED]},
                expect=failure(ErrorCode.STORED_QUERY_MISSING_PARAM.value),
            ),
            _q(
                "two_patients",
                "FindDocuments with two patient ids (single-valued parameter)",
                "FindDocuments",
                lambda st: {"$XDSDocumentEntryPatientId": st.patient(SQ), "$XDSDocumentEntryStatus": [APPROVED]},
                expect=failure(ErrorCode.STORED_QUERY_PARAM_NUMBER.value),
                rewrite=set_slot_value(
                    "$XDSDocumentEntryPatientId", lambda st: f"('{st.patient(SQ)}','{st.patient(SQ2)}')"
                ),
            ),
            _q(
                "uuid_and_uniqueid",
                "GetDocuments with both entryUUID and uniqueId",
                "GetDocuments",
                lambda st: {
                    "$XDSDocumentEntryEntryUUID": [uuid(st, "D1")],
                    "$XDSDocumentEntryUniqueId": [uid(st, "D1")],
                },
                expect=failure(ErrorCode.STORED_QUERY_PARAM_NUMBER.value),
            ),
        ),
    )


def cases() -> tuple[TestCase, ...]:
    return (
        case_11901(),
        case_11902(),
        case_11903(),
        case_11904(),
        case_11905(),
        case_11906(),
        case_11907(),
        case_11908(),
        case_11909(),
        case_12368(),
        case_15803(),
        case_12364(),
        case_query_errors(),
    )
