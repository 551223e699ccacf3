"""The Stored Query test data (our own, shaped like NIST 12346 and 12374) and the cases that load it.

Patient ``sq`` gets five submissions:

=====  =====================  =======================================================
SS     contents               notes
=====  =====================  =======================================================
S1     D1                     single document
S2     D2, F1 (F1 ∋ D2)       document in a folder
S3     D3, D4, F2 (F2 ∋ both) two documents in a folder
S4     D5                     document that S5 replaces
S5     D6 RPLC D5             D5 becomes Deprecated
=====  =====================  =======================================================

giving 6 DocumentEntries (5 Approved, 1 Deprecated), 5 SubmissionSets, 2 Folders and 15
Associations (1 + 4 + 7 + 1 + 2). Patient ``sq2`` gets S7: D7 and F3 (F3 ∋ D7).

The DocumentEntries' attributes (expected query counts in :mod:`.sq_find` follow from this table):

==  =========  ========  =========  ======  =====  ======  ======  ==============  =========
DE  class      practice  facility   events  conf   format  type    creationTime    author
==  =========  ========  =========  ======  =====  ======  ======  ==============  =========
D1  REPORTS    CARD      HOSPITAL   CT      N      XDS-MS  CONSUL  20040101100000  Smitty
D2  IMAGES     GENERAL   HOSPITAL   CT, MR  N, R   KOS     IMAGE   20050101100000  Dopplemeyer
D3  REPORTS    GENERAL   EMERGENCY  MR      R      XDS-MS  CONSUL  20050601100000  Smitty
D4  SUMMARIES  CARD      EMERGENCY  US      V      XPHR    SUMMRY  20060101100000  Jones
D5  IMAGES     CARD      HOSPITAL   CT      N      KOS     IMAGE   20070101100000  Dopplemeyer
D6  IMAGES     CARD      HOSPITAL   CT      N      KOS     IMAGE   20080101100000  Dopplemeyer
D7  REPORTS    CARD      HOSPITAL   CT      N      XDS-MS  CONSUL  20040101100000  Smitty
==  =========  ========  =========  ======  =====  ======  ======  ==============  =========

serviceStartTime is creationTime less one month at 10:00, serviceStopTime the same day at 11:00
(e.g. D2: 20041201100000 / 20041201110000). referenceIdList: D1 accession A; D2 and D3 accession
B; D5 and D6 accession C; D4 none. SubmissionSet submissionTime: S1 20040101120000,
S2 20050101120000, S3 20050601120000, S4 20070101120000, S5 20080101120000, S7 20040101120000.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from conformance_tests.data import codes as c
from conformance_tests.data.codes import Coded
from conformance_tests.data.metadata import Author, DocumentSpec, Submission
from conformance_tests.model import Counts, SoapStep, TestCase, success
from conformance_tests.plans.registry.common import (
    SQ,
    SQ2,
    Builder,
    doc,
    folder,
    keep_document_ids,
    keep_folder_ids,
    keep_submission_set_ids,
    new_submission,
    query,
    register,
    uid,
    uuid,
)
from conformance_tests.state import CaseState
from xds.vocabulary import AssociationType

LOAD_CASE: Final = "12346"
LOAD_CASE_2: Final = "12374"

SMITTY: Final = Author(person="^Smitty^Gerald^^^")
DOPPLEMEYER: Final = Author(person="^Dopplemeyer^Sherry^^^")
JONES: Final = Author(person="^Jones^Ann^^^")


@dataclass(frozen=True, slots=True)
class Row:
    """One DocumentEntry of the table above."""

    class_code: Coded
    practice: Coded
    facility: Coded
    events: tuple[Coded, ...]
    conf: tuple[Coded, ...]
    format: Coded
    type: Coded
    created: str  # YYYYMMDD; the time is 10:00:00
    service_day: str  # YYYYMMDD of serviceStart/Stop
    author: Author
    accession: str | None


ROWS: Final[Mapping[str, Row]] = {
    "D1": Row(
        c.CLASS_REPORTS,
        c.PRACTICE_CARDIOLOGY,
        c.HCFT_HOSPITAL,
        (c.EVENT_CT,),
        (c.CONF_NORMAL,),
        c.FORMAT_XDS_MS,
        c.TYPE_CONSULTATION,
        "20040101",
        "20031201",
        SMITTY,
        "A",
    ),
    "D2": Row(
        c.CLASS_IMAGES,
        c.PRACTICE_GENERAL,
        c.HCFT_HOSPITAL,
        (c.EVENT_CT, c.EVENT_MR),
        (c.CONF_NORMAL, c.CONF_RESTRICTED),
        c.FORMAT_KOS,
        c.TYPE_IMAGING,
        "20050101",
        "20041201",
        DOPPLEMEYER,
        "B",
    ),
    "D3": Row(
        c.CLASS_REPORTS,
        c.PRACTICE_GENERAL,
        c.HCFT_EMERGENCY,
        (c.EVENT_MR,),
        (c.CONF_RESTRICTED,),
        c.FORMAT_XDS_MS,
        c.TYPE_CONSULTATION,
        "20050601",
        "20050501",
        SMITTY,
        "B",
    ),
    "D4": Row(
        c.CLASS_SUMMARIES,
        c.PRACTICE_CARDIOLOGY,
        c.HCFT_EMERGENCY,
        (c.EVENT_US,),
        (c.CONF_VERY_RESTRICTED,),
        c.FORMAT_XPHR,
        c.TYPE_SUMMARY,
        "20060101",
        "20051201",
        JONES,
        None,
    ),
    "D5": Row(
        c.CLASS_IMAGES,
        c.PRACTICE_CARDIOLOGY,
        c.HCFT_HOSPITAL,
        (c.EVENT_CT,),
        (c.CONF_NORMAL,),
        c.FORMAT_KOS,
        c.TYPE_IMAGING,
        "20070101",
        "20061201",
        DOPPLEMEYER,
        "C",
    ),
    "D6": Row(
        c.CLASS_IMAGES,
        c.PRACTICE_CARDIOLOGY,
        c.HCFT_HOSPITAL,
        (c.EVENT_CT,),
        (c.CONF_NORMAL,),
        c.FORMAT_KOS,
        c.TYPE_IMAGING,
        "20080101",
        "20071201",
        DOPPLEMEYER,
        "C",
    ),
    "D7": Row(
        c.CLASS_REPORTS,
        c.PRACTICE_CARDIOLOGY,
        c.HCFT_HOSPITAL,
        (c.EVENT_CT,),
        (c.CONF_NORMAL,),
        c.FORMAT_XDS_MS,
        c.TYPE_CONSULTATION,
        "20040101",
        "20031201",
        SMITTY,
        "A",
    ),
}

SUBMISSION_TIMES: Final = {
    "S1": "20040101120000",
    "S2": "20050101120000",
    "S3": "20050601120000",
    "S4": "20070101120000",
    "S5": "20080101120000",
    "S7": "20040101120000",
}

ALL_DOCS: Final = ("D1", "D2", "D3", "D4", "D5", "D6")
APPROVED_DOCS: Final = ("D1", "D2", "D3", "D4", "D6")
ALL_SETS: Final = ("S1", "S2", "S3", "S4", "S5")


def accession(state: CaseState, label: str) -> str:
    return str(state.shared_once(f"accession:{label}", lambda: state.ids.accession(label)))


def sq_doc(state: CaseState, key: str) -> DocumentSpec:
    """DocumentEntry ``key`` of the table, made once per run."""
    row = ROWS[key]
    role = SQ2 if key == "D7" else SQ
    return doc(
        state,
        key,
        role=role,
        shared=True,
        class_code=row.class_code,
        practice_setting=row.practice,
        facility_type=row.facility,
        event_codes=row.events,
        confidentiality=row.conf,
        format_code=row.format,
        type_code=row.type,
        creation_time=f"{row.created}100000",
        service_start=f"{row.service_day}100000",
        service_stop=f"{row.service_day}110000",
        authors=(row.author,),
        reference_ids=(accession(state, row.accession),) if row.accession else (),
        mime_type="application/dicom" if row.format == c.FORMAT_KOS else "text/xml",
    )


def sq_submission(state: CaseState, key: str) -> Submission:
    role = SQ2 if key == "S7" else SQ
    return new_submission(state, key, role=role, shared=True, submission_time=SUBMISSION_TIMES[key])


def _single(ss_key: str, doc_key: str) -> Builder:
    def build(state: CaseState) -> Submission:
        sub = sq_submission(state, ss_key)
        sub.add_document(sq_doc(state, doc_key))
        return sub

    return build


def _with_folder(ss_key: str, fd_key: str, doc_keys: tuple[str, ...], codes: tuple[Coded, ...]) -> Builder:
    def build(state: CaseState) -> Submission:
        sub = sq_submission(state, ss_key)
        role = SQ2 if ss_key == "S7" else SQ
        fd = sub.add_folder(folder(state, fd_key, role=role, shared=True, codes=codes))
        for key in doc_keys:
            sub.add_to_folder(fd, sub.add_document(sq_doc(state, key)))
        return sub

    return build


def _replacement(state: CaseState) -> Submission:
    sub = sq_submission(state, "S5")
    new = sub.add_document(sq_doc(state, "D6"))
    sub.relate(AssociationType.RPLC, new, uuid(state, "D5"))
    return sub


def _find_submission_sets(name: str, role: str, keys: tuple[str, ...]) -> SoapStep:
    return query(
        name,
        "FindSubmissionSets: remember the SubmissionSets' entryUUIDs",
        "FindSubmissionSets",
        lambda st: {
            "$XDSSubmissionSetPatientId": st.patient(role),
            "$XDSSubmissionSetStatus": ["urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"],
        },
        success(Counts(submission_sets=len(keys))),
        keep=keep_submission_set_ids(keys, share=True),
    )


def load_case() -> TestCase:
    """NIST 12346: load patient sq's data and remember every entryUUID for the query tests."""
    return TestCase(
        id=LOAD_CASE,
        title="Load the Stored Query test data (patient sq)",
        tf="ITI TF-2b §3.42 (the data the ITI-18 tests query)",
        reference="NIST 12346",
        description="Five submissions into a fresh patient; the entryUUIDs the registry assigns are read "
        "back for the GetXxx queries.",
        steps=(
            register("single_doc", "S1: D1", _single("S1", "D1")),
            register(
                "doc_w_fol", "S2: D2 + F1 (F1 HasMember D2)", _with_folder("S2", "F1", ("D2",), (c.FOLDER_REFERRALS,))
            ),
            register(
                "two_doc_w_fol",
                "S3: D3, D4 + F2 (F2 HasMember D3, D4)",
                _with_folder("S3", "F2", ("D3", "D4"), (c.FOLDER_REFERRALS, c.FOLDER_ALLERGY)),
            ),
            register("doc_for_rplc", "S4: D5", _single("S4", "D5")),
            query(
                "lookup_documents",
                "GetDocuments D1-D5: remember the entryUUIDs",
                "GetDocuments",
                lambda st: {"$XDSDocumentEntryUniqueId": [uid(st, k) for k in ALL_DOCS[:5]]},
                success(Counts(documents=5)),
                keep=keep_document_ids(ALL_DOCS[:5], share=True),
            ),
            register("rplc", "S5: D6 RPLC D5", _replacement),
            query(
                "lookup_replacement",
                "GetDocuments D6: remember its entryUUID",
                "GetDocuments",
                lambda st: {"$XDSDocumentEntryUniqueId": [uid(st, "D6")]},
                success(Counts(documents=1)),
                keep=keep_document_ids(("D6",), share=True),
            ),
            query(
                "lookup_folders",
                "GetFolders F1, F2: remember the entryUUIDs",
                "GetFolders",
                lambda st: {"$XDSFolderUniqueId": [uid(st, "F1"), uid(st, "F2")]},
                success(Counts(folders=2)),
                keep=keep_folder_ids(("F1", "F2"), share=True),
            ),
            _find_submission_sets("lookup_submission_sets", SQ, ALL_SETS),
        ),
    )


def load_case_2() -> TestCase:
    """NIST 12374: a second patient's data, for the multi-patient result test."""
    return TestCase(
        id=LOAD_CASE_2,
        title="Load the second patient's data (patient sq2)",
        tf="ITI TF-2b §3.42",
        reference="NIST 12374",
        steps=(
            register(
                "doc_w_fol", "S7: D7 + F3 (F3 HasMember D7)", _with_folder("S7", "F3", ("D7",), (c.FOLDER_REFERRALS,))
            ),
            query(
                "lookup_document",
                "GetDocuments D7: remember its entryUUID",
                "GetDocuments",
                lambda st: {"$XDSDocumentEntryUniqueId": [uid(st, "D7")]},
                success(Counts(documents=1)),
                keep=keep_document_ids(("D7",), share=True),
            ),
            query(
                "lookup_folder",
                "GetFolders F3: remember its entryUUID",
                "GetFolders",
                lambda st: {"$XDSFolderUniqueId": [uid(st, "F3")]},
                success(Counts(folders=1)),
                keep=keep_folder_ids(("F3",), share=True),
            ),
            _find_submission_sets("lookup_submission_set", SQ2, ("S7",)),
        ),
    )
