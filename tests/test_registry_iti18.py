"""ITI-18 at the Document Registry: every stored query and parameter with exact result counts, on
a data set shaped like NIST 12346 (xds-notes §8.4): six entries (five Approved, one Deprecated by
a replacement), five submission sets, two folders, fifteen associations. Runs on both databases."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.support import factory as f
from tests.support.registry import QueryAnswer, RegistryUnderTest
from xds.metadata.model import Submission
from xds.vocabulary import AssociationType, ObjectType, Status

Q = {
    "FindDocuments": "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d",
    "FindDocumentsByReferenceId": "urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492",
    "FindSubmissionSets": "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9",
    "FindFolders": "urn:uuid:958f3006-baad-4929-a4de-ff1114824431",
    "GetAll": "urn:uuid:10b545ea-725c-446d-9b95-8aeb444eddf3",
    "GetDocuments": "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4",
    "GetFolders": "urn:uuid:5737b14c-8a1a-4539-b659-e03a34a5e1e4",
    "GetAssociations": "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155",
    "GetDocumentsAndAssociations": "urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a",
    "GetSubmissionSets": "urn:uuid:51224314-5390-4169-9b91-b1980040715a",
    "GetSubmissionSetAndContents": "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83",
    "GetFolderAndContents": "urn:uuid:b909a503-523d-4517-8acf-8e5834dfc4c7",
    "GetFoldersForDocument": "urn:uuid:10cae35a-c7f9-4cf5-b61e-fc3278ffb578",
    "GetRelatedDocuments": "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6",
    "FindDocumentsForMultiplePatients": "urn:uuid:3d1bdb10-39a2-11de-89c2-2f44d94eaa9f",
    "FindFoldersForMultiplePatients": "urn:uuid:50d3f5ac-39a2-11de-a1ca-b366239e58df",
}
APPROVED = [Status.APPROVED]
BOTH = [Status.APPROVED, Status.DEPRECATED]
HOSPITAL = f.Code("22232009", "2.16.840.1.113883.6.96", "Hospital")
ACCESSION = "ACC-1^^^&1.3.6.1.4.1.21367.13.202.2000&ISO^urn:ihe:iti:xds:2013:accession"


@dataclass
class DataSet:
    """The loaded data and the entryUUIDs the registry assigned."""

    pid: str
    de: dict[str, str]
    de_uid: dict[str, str]
    ss: dict[str, str]
    ss_uid: dict[str, str]
    fd: dict[str, str]
    fd_uid: dict[str, str]


def _load(reg: RegistryUnderTest, pid: str) -> DataSet:
    # single_doc
    s1 = f.submission(pid)
    d1 = s1.document_entries[0]
    d1.class_code, d1.event_codes, d1.creation_time = f.CLASS_REPORTS, [f.EVENT_CT], "20040101120000"
    d1.authors[0].person = "^Smith^John^^^Dr"
    d1.reference_ids = [ACCESSION]
    s1.submission_sets[0].submission_time = "20040101"
    # doc_w_fol
    s2 = f.submission(pid, with_folder=True)
    d2 = s2.document_entries[0]
    d2.class_code, d2.confidentiality_codes, d2.format_code = f.CLASS_IMAGES, [f.CONF_R], f.FORMAT_KOS
    d2.event_codes, d2.creation_time, d2.service_start_time = [f.EVENT_CT, f.EVENT_MR], "20050101120000", "200501010800"
    d2.healthcare_facility_type_code, d2.service_stop_time = HOSPITAL, "200501010900"
    d2.authors[0].person = "^Jones^Mary"
    s2.submission_sets[0].submission_time = "20050101"
    # two_doc_w_fol
    s3 = f.submission(pid, entries=2, with_folder=True)
    d3, d4 = s3.document_entries
    d3.class_code, d3.confidentiality_codes, d3.format_code = f.CLASS_IMAGES, [f.CONF_N, f.CONF_R], f.FORMAT_KOS
    d3.event_codes, d3.creation_time = [f.EVENT_MR], "20060101120000"
    d3.authors[0].person = "^Smith^Anna"
    d4.creation_time = "20070101120000"
    s3.submission_sets[0].submission_time = "20060101"
    # doc_for_rplc
    s4 = f.submission(pid)
    s4.document_entries[0].creation_time = "20080101120000"
    s4.submission_sets[0].submission_time = "20070101"
    for sub in (s1, s2, s3, s4):
        reg.ok(sub)
    uid_to_uuid = _uuids(reg, pid)
    # rplc
    s5 = f.replacement(pid, uid_to_uuid[s4.document_entries[0].unique_id])
    s5.document_entries[0].creation_time = "20090101120000"
    s5.submission_sets[0].submission_time = "20080101"
    reg.ok(s5)
    uid_to_uuid = _uuids(reg, pid)
    names = {"d1": d1, "d2": d2, "d3": d3, "d4": d4, "d5": s4.document_entries[0], "d6": s5.document_entries[0]}
    all_ = reg.query(Q["GetAll"], {"$patientId": pid, "$XDSDocumentEntryStatus": BOTH, "$XDSSubmissionSetStatus": BOTH, "$XDSFolderStatus": BOTH}).submission()
    ss_by_uid = {s.unique_id: s.id for s in all_.submission_sets}
    fd_by_uid = {x.unique_id: x.id for x in all_.folders}
    subs = {"s1": s1, "s2": s2, "s3": s3, "s4": s4, "s5": s5}
    return DataSet(
        pid=pid,
        de={k: uid_to_uuid[v.unique_id] for k, v in names.items()},
        de_uid={k: v.unique_id for k, v in names.items()},
        ss={k: ss_by_uid[v.submission_sets[0].unique_id] for k, v in subs.items()},
        ss_uid={k: v.submission_sets[0].unique_id for k, v in subs.items()},
        fd={"f1": fd_by_uid[s2.folders[0].unique_id], "f2": fd_by_uid[s3.folders[0].unique_id]},
        fd_uid={"f1": s2.folders[0].unique_id, "f2": s3.folders[0].unique_id},
    )


def _uuids(reg: RegistryUnderTest, pid: str) -> dict[str, str]:
    answer = reg.query(Q["FindDocuments"], {"$XDSDocumentEntryPatientId": pid, "$XDSDocumentEntryStatus": BOTH})
    return {d.unique_id: d.id for d in answer.submission().document_entries}


@pytest.fixture
def reg(registry_engine, codes_xml) -> RegistryUnderTest:  # type: ignore[no-untyped-def]
    from profiles.codes import load_code_set

    return RegistryUnderTest(registry_engine, codes=load_code_set(codes_xml))


@pytest.fixture
def data(reg: RegistryUnderTest) -> DataSet:
    return _load(reg, reg.feed(f.patient_id("SQ-" + f.oid()[-8:])))


def ok(answer: QueryAnswer) -> QueryAnswer:
    assert answer.status.endswith(":Success"), answer.errors
    return answer


def find(reg: RegistryUnderTest, data: DataSet, **params: object) -> set[str]:
    base: dict[str, object] = {"$XDSDocumentEntryPatientId": data.pid, "$XDSDocumentEntryStatus": APPROVED}
    base.update({f"$XDSDocumentEntry{k}": v for k, v in params.items()})
    answer = ok(reg.query(Q["FindDocuments"], base))
    by_uuid = {v: k for k, v in data.de.items()}
    return {by_uuid[i] for i in answer.ids("ExtrinsicObject")}


# -- FindDocuments (NIST 11897) -----------------------------------------------------------------


def test_find_documents_by_status(reg: RegistryUnderTest, data: DataSet) -> None:
    assert find(reg, data) == {"d1", "d2", "d3", "d4", "d6"}
    assert find(reg, data, Status=BOTH) == {"d1", "d2", "d3", "d4", "d5", "d6"}
    assert find(reg, data, Status=[Status.DEPRECATED]) == {"d5"}


def test_find_documents_object_ref(reg: RegistryUnderTest, data: DataSet) -> None:
    answer = ok(reg.query(Q["FindDocuments"], {"$XDSDocumentEntryPatientId": data.pid, "$XDSDocumentEntryStatus": BOTH}, return_type="ObjectRef"))
    assert set(answer.ids("ObjectRef")) == set(data.de.values())
    assert answer.count("ExtrinsicObject") == 0


def test_find_documents_class_code(reg: RegistryUnderTest, data: DataSet) -> None:
    assert find(reg, data, ClassCode=[f.CLASS_IMAGES]) == {"d2", "d3"}
    assert find(reg, data, ClassCode=[f.CLASS_REPORTS]) == {"d1", "d4", "d6"}
    assert find(reg, data, ClassCode=[f.CLASS_IMAGES, f.CLASS_REPORTS]) == {"d1", "d2", "d3", "d4", "d6"}
    assert find(reg, data, ClassCode=[f.Code("IMAGES", "9.9.9")]) == set()


def test_find_documents_single_code_filters(reg: RegistryUnderTest, data: DataSet) -> None:
    assert find(reg, data, HealthcareFacilityTypeCode=[HOSPITAL]) == {"d2"}
    assert find(reg, data, PracticeSettingCode=[f.PRACTICE]) == {"d1", "d2", "d3", "d4", "d6"}
    assert find(reg, data, FormatCode=[f.FORMAT_KOS]) == {"d2", "d3"}
    assert find(reg, data, TypeCode=[f.TYPE_CONSULT]) == {"d1", "d2", "d3", "d4", "d6"}


def test_find_documents_event_codes_or_and(reg: RegistryUnderTest, data: DataSet) -> None:
    assert find(reg, data, EventCodeList=[[f.EVENT_CT]]) == {"d1", "d2"}
    assert find(reg, data, EventCodeList=[[f.EVENT_MR]]) == {"d2", "d3"}
    assert find(reg, data, EventCodeList=[[f.EVENT_CT, f.EVENT_MR]]) == {"d1", "d2", "d3"}
    assert find(reg, data, EventCodeList=[[f.EVENT_CT], [f.EVENT_MR]]) == {"d2"}


def test_find_documents_confidentiality_or_and(reg: RegistryUnderTest, data: DataSet) -> None:
    assert find(reg, data, ConfidentialityCode=[[f.CONF_N]]) == {"d1", "d3", "d4", "d6"}
    assert find(reg, data, ConfidentialityCode=[[f.CONF_R]]) == {"d2", "d3"}
    assert find(reg, data, ConfidentialityCode=[[f.CONF_N], [f.CONF_R]]) == {"d3"}


def test_find_documents_creation_time_edges(reg: RegistryUnderTest, data: DataSet) -> None:
    # From inclusive, To exclusive (11897 creationtime_left_edge / right_edge).
    assert find(reg, data, CreationTimeFrom="20050101120000", CreationTimeTo="20070101120000") == {"d2", "d3"}
    assert find(reg, data, CreationTimeFrom="20050101120001") == {"d3", "d4", "d6"}
    assert find(reg, data, CreationTimeTo="20050101120000") == {"d1"}


def test_find_documents_service_times(reg: RegistryUnderTest, data: DataSet) -> None:
    assert find(reg, data, ServiceStartTimeFrom="200501010000") == {"d2"}
    assert find(reg, data, ServiceStopTimeTo="200412240000") == {"d1", "d3", "d4", "d6"}


def test_find_documents_author_like(reg: RegistryUnderTest, data: DataSet) -> None:
    assert find(reg, data, AuthorPerson=["%Smith%"]) == {"d1", "d3"}
    assert find(reg, data, AuthorPerson=["^Jones%"]) == {"d2"}
    assert find(reg, data, AuthorPerson=["%Smith^J%", "%Jones%"]) == {"d1", "d2"}
    assert find(reg, data, AuthorPerson=["%Nobody%"]) == set()


def test_find_documents_object_type(reg: RegistryUnderTest, data: DataSet) -> None:
    assert find(reg, data, Type=[ObjectType.ON_DEMAND_DOCUMENT_ENTRY]) == set()
    assert len(find(reg, data, Type=[ObjectType.STABLE_DOCUMENT_ENTRY, ObjectType.ON_DEMAND_DOCUMENT_ENTRY])) == 5


def test_find_documents_by_reference_id(reg: RegistryUnderTest, data: DataSet) -> None:
    base = {"$XDSDocumentEntryPatientId": data.pid, "$XDSDocumentEntryStatus": APPROVED}
    answer = ok(reg.query(Q["FindDocumentsByReferenceId"], {**base, "$XDSDocumentEntryReferenceIdList": [[ACCESSION]]}))
    assert answer.ids("ExtrinsicObject") == [data.de["d1"]]
    answer = ok(reg.query(Q["FindDocumentsByReferenceId"], {**base, "$XDSDocumentEntryReferenceIdList": [["OTHER^^^&1.2&ISO^urn:ihe:iti:xds:2013:accession"]]}))
    assert answer.ids("ExtrinsicObject") == []


def test_find_documents_code_without_scheme_fails(reg: RegistryUnderTest, data: DataSet) -> None:
    from lxml import etree

    from xds.query import build_adhoc_query
    from xds.vocabulary import NS_RIM

    request = build_adhoc_query(Q["FindDocuments"], {"$XDSDocumentEntryPatientId": data.pid, "$XDSDocumentEntryStatus": APPROVED})
    query = request.find(f"{{{NS_RIM}}}AdhocQuery")
    slot = etree.SubElement(query, f"{{{NS_RIM}}}Slot", name="$XDSDocumentEntryClassCode")
    etree.SubElement(etree.SubElement(slot, f"{{{NS_RIM}}}ValueList"), f"{{{NS_RIM}}}Value").text = "('IMAGES^^')"
    from xds.metadata.responses import parse_adhoc_query_response

    parsed = parse_adhoc_query_response(reg.queries.respond(request))
    assert parsed.status.endswith(":Failure") and parsed.errors


def test_unknown_stored_query(reg: RegistryUnderTest, data: DataSet) -> None:
    from xds.metadata.responses import parse_adhoc_query_response
    from xds.query import build_adhoc_query
    from xds.vocabulary import NS_RIM

    request = build_adhoc_query(Q["FindDocuments"], {"$XDSDocumentEntryPatientId": data.pid, "$XDSDocumentEntryStatus": APPROVED})
    request.find(f"{{{NS_RIM}}}AdhocQuery").set("id", "urn:uuid:00000000-0000-0000-0000-000000000000")
    parsed = parse_adhoc_query_response(reg.queries.respond(request))
    assert [e.code_text for e in parsed.errors] == ["XDSUnknownStoredQuery"]


# -- FindSubmissionSets (11898) / FindFolders (11899) -------------------------------------------


def sets(reg: RegistryUnderTest, data: DataSet, **params: object) -> int:
    base: dict[str, object] = {"$XDSSubmissionSetPatientId": data.pid, "$XDSSubmissionSetStatus": APPROVED}
    base.update({f"$XDSSubmissionSet{k}": v for k, v in params.items()})
    return ok(reg.query(Q["FindSubmissionSets"], base)).count("RegistryPackage")


def test_find_submission_sets(reg: RegistryUnderTest, data: DataSet) -> None:
    assert sets(reg, data) == 5
    assert sets(reg, data, SourceId=[f.SOURCE_ID]) == 5
    assert sets(reg, data, SourceId=["1.2.3.4.5.6.7"]) == 0
    assert sets(reg, data, SubmissionTimeFrom="20060101") == 3
    assert sets(reg, data, SubmissionTimeTo="20060101") == 2
    assert sets(reg, data, SubmissionTimeFrom="20050101", SubmissionTimeTo="20070101") == 2
    assert sets(reg, data, AuthorPerson="%Welby%") == 5
    assert sets(reg, data, AuthorPerson="%Nobody%") == 0
    assert sets(reg, data, ContentType=[f.CONTENT_TYPE]) == 5
    assert sets(reg, data, ContentType=[HOSPITAL]) == 0


def folders(reg: RegistryUnderTest, data: DataSet, **params: object) -> int:
    base: dict[str, object] = {"$XDSFolderPatientId": data.pid, "$XDSFolderStatus": APPROVED}
    base.update({f"$XDSFolder{k}": v for k, v in params.items()})
    return ok(reg.query(Q["FindFolders"], base)).count("RegistryPackage")


def test_find_folders(reg: RegistryUnderTest, data: DataSet) -> None:
    assert folders(reg, data) == 2
    assert folders(reg, data, LastUpdateTimeFrom="20250301", LastUpdateTimeTo="20250302") == 2
    assert folders(reg, data, LastUpdateTimeFrom="20260101") == 0
    assert folders(reg, data, CodeList=[[f.FOLDER_CODE]]) == 2
    assert folders(reg, data, CodeList=[[f.FOLDER_CODE], [HOSPITAL]]) == 0


# -- GetAll (15803), GetDocuments (11901), GetFolders (11902) ---------------------------------


def test_get_all(reg: RegistryUnderTest, data: DataSet) -> None:
    answer = ok(reg.query(Q["GetAll"], {"$patientId": data.pid, "$XDSDocumentEntryStatus": BOTH, "$XDSSubmissionSetStatus": BOTH, "$XDSFolderStatus": BOTH}))
    sub = answer.submission()
    assert (len(sub.document_entries), len(sub.submission_sets), len(sub.folders), len(sub.associations)) == (6, 5, 2, 15)


def test_get_documents(reg: RegistryUnderTest, data: DataSet) -> None:
    assert ok(reg.query(Q["GetDocuments"], {"$XDSDocumentEntryUniqueId": [data.de_uid["d1"]]})).ids("ExtrinsicObject") == [data.de["d1"]]
    two = ok(reg.query(Q["GetDocuments"], {"$XDSDocumentEntryEntryUUID": [data.de["d1"], data.de["d2"]]}))
    assert set(two.ids("ExtrinsicObject")) == {data.de["d1"], data.de["d2"]}
    with_home = ok(reg.query(Q["GetDocuments"], {"$XDSDocumentEntryEntryUUID": [data.de["d5"]], "$homeCommunityId": "urn:oid:1.2.3"}))
    assert with_home.submission().document_entries[0].status == Status.DEPRECATED


def test_get_folders(reg: RegistryUnderTest, data: DataSet) -> None:
    assert ok(reg.query(Q["GetFolders"], {"$XDSFolderEntryUUID": [data.fd["f1"]]})).ids("RegistryPackage") == [data.fd["f1"]]
    both = ok(reg.query(Q["GetFolders"], {"$XDSFolderUniqueId": list(data.fd_uid.values())}))
    assert set(both.ids("RegistryPackage")) == set(data.fd.values()) and both.count("ExtrinsicObject") == 0


# -- associations (11903, 11904, 11905) ---------------------------------------------------------


def test_get_associations(reg: RegistryUnderTest, data: DataSet) -> None:
    def n(*uuids: str) -> int:
        return ok(reg.query(Q["GetAssociations"], {"$uuid": list(uuids)})).count("Association")

    assert n(data.de["d1"]) == 1
    assert n(data.de["d2"]) == 2
    assert n(data.ss["s2"]) == 3
    assert n(data.de["d1"], data.de["d2"]) == 3
    assert n(data.de["d5"]) == 2


def test_get_documents_and_associations(reg: RegistryUnderTest, data: DataSet) -> None:
    one = ok(reg.query(Q["GetDocumentsAndAssociations"], {"$XDSDocumentEntryEntryUUID": [data.de["d1"]]}))
    assert (one.count("ExtrinsicObject"), one.count("Association")) == (1, 1)
    two = ok(reg.query(Q["GetDocumentsAndAssociations"], {"$XDSDocumentEntryUniqueId": [data.de_uid["d1"], data.de_uid["d2"]]}))
    assert (two.count("ExtrinsicObject"), two.count("Association")) == (2, 3)


@pytest.mark.parametrize(
    ("members", "expected"),
    [(["d1"], (1, 1)), (["d1", "d2"], (2, 2)), (["d3", "d4"], (1, 2)), (["f1"], (1, 1)), (["d1", "f1"], (2, 2))],
)
def test_get_submission_sets(reg: RegistryUnderTest, data: DataSet, members: list[str], expected: tuple[int, int]) -> None:
    uuids = [data.de.get(m) or data.fd[m] for m in members]
    answer = ok(reg.query(Q["GetSubmissionSets"], {"$uuid": uuids}))
    assert (answer.count("RegistryPackage"), answer.count("Association")) == expected


# -- *AndContents (11906, 11907), GetFoldersForDocument (11908), GetRelatedDocuments (11909) ---


def test_get_submission_set_and_contents(reg: RegistryUnderTest, data: DataSet) -> None:
    one = ok(reg.query(Q["GetSubmissionSetAndContents"], {"$XDSSubmissionSetUniqueId": data.ss_uid["s1"]}))
    assert (one.count("RegistryPackage"), one.count("ExtrinsicObject"), one.count("Association")) == (1, 1, 1)
    full = ok(reg.query(Q["GetSubmissionSetAndContents"], {"$XDSSubmissionSetEntryUUID": data.ss["s3"]}))
    sub = full.submission()
    assert (len(sub.submission_sets), len(sub.document_entries), len(sub.folders), len(sub.associations)) == (1, 2, 1, 7)
    kos = ok(reg.query(Q["GetSubmissionSetAndContents"], {"$XDSSubmissionSetEntryUUID": data.ss["s3"], "$XDSDocumentEntryFormatCode": [f.FORMAT_KOS]}))
    sub = kos.submission()
    assert (len(sub.document_entries), len(sub.folders), len(sub.associations)) == (1, 1, 4)
    conf = ok(reg.query(Q["GetSubmissionSetAndContents"], {"$XDSSubmissionSetEntryUUID": data.ss["s2"], "$XDSDocumentEntryConfidentialityCode": [[f.CONF_N]]}))
    assert conf.count("ExtrinsicObject") == 0
    refs = ok(reg.query(Q["GetSubmissionSetAndContents"], {"$XDSSubmissionSetUniqueId": data.ss_uid["s1"]}, return_type="ObjectRef"))
    assert refs.count("ObjectRef") == 3


def test_get_folder_and_contents(reg: RegistryUnderTest, data: DataSet) -> None:
    full = ok(reg.query(Q["GetFolderAndContents"], {"$XDSFolderEntryUUID": data.fd["f2"]}))
    assert (full.count("RegistryPackage"), full.count("ExtrinsicObject"), full.count("Association")) == (1, 2, 2)
    conf = ok(reg.query(Q["GetFolderAndContents"], {"$XDSFolderUniqueId": data.fd_uid["f2"], "$XDSDocumentEntryConfidentialityCode": [[f.CONF_R]], "$XDSDocumentEntryFormatCode": [f.FORMAT_KOS]}))
    assert (conf.count("ExtrinsicObject"), conf.count("Association")) == (1, 1)


def test_get_folders_for_document(reg: RegistryUnderTest, data: DataSet) -> None:
    answer = ok(reg.query(Q["GetFoldersForDocument"], {"$XDSDocumentEntryEntryUUID": data.de["d2"]}))
    assert answer.ids("RegistryPackage") == [data.fd["f1"]] and answer.count("Association") == 0
    assert ok(reg.query(Q["GetFoldersForDocument"], {"$XDSDocumentEntryUniqueId": data.de_uid["d1"]})).count("RegistryPackage") == 0


def test_get_related_documents(reg: RegistryUnderTest, data: DataSet) -> None:
    none = ok(reg.query(Q["GetRelatedDocuments"], {"$XDSDocumentEntryEntryUUID": data.de["d1"], "$AssociationTypes": [AssociationType.RPLC]}))
    assert (none.count("ExtrinsicObject"), none.count("Association")) == (0, 0)
    pair = ok(reg.query(Q["GetRelatedDocuments"], {"$XDSDocumentEntryUniqueId": data.de_uid["d5"], "$AssociationTypes": [AssociationType.RPLC]}))
    assert (pair.count("ExtrinsicObject"), pair.count("Association")) == (2, 1)
    other = ok(reg.query(Q["GetRelatedDocuments"], {"$XDSDocumentEntryUniqueId": data.de_uid["d5"], "$AssociationTypes": [AssociationType.APND]}))
    assert other.count("ExtrinsicObject") == 0


# -- multi-patient rules (12368, 12364) and limits ----------------------------------------------


def _second_patient(reg: RegistryUnderTest) -> Submission:
    other = reg.feed(f.patient_id())
    sub = f.submission(other, with_folder=True)
    reg.ok(sub)
    return sub


def test_leaf_class_across_patients_fails_object_ref_succeeds(reg: RegistryUnderTest, data: DataSet) -> None:
    _second_patient(reg)
    uids = [data.de_uid["d1"], _second_patient(reg).document_entries[0].unique_id]
    leaf = reg.query(Q["GetDocuments"], {"$XDSDocumentEntryUniqueId": uids})
    assert leaf.codes == ["XDSResultNotSinglePatient"] and leaf.status.endswith(":Failure")
    refs = ok(reg.query(Q["GetDocuments"], {"$XDSDocumentEntryUniqueId": uids}, return_type="ObjectRef"))
    assert refs.count("ObjectRef") == 2


def test_leaf_class_folders_and_sets_across_patients(reg: RegistryUnderTest, data: DataSet) -> None:
    other = _second_patient(reg)
    folders_ = reg.query(Q["GetFolders"], {"$XDSFolderUniqueId": [data.fd_uid["f1"], other.folders[0].unique_id]})
    assert folders_.codes == ["XDSResultNotSinglePatient"]


def test_find_documents_for_multiple_patients(reg: RegistryUnderTest, data: DataSet) -> None:
    other = _second_patient(reg)
    both = ok(reg.query(Q["FindDocumentsForMultiplePatients"], {"$XDSDocumentEntryPatientId": [data.pid, other.submission_sets[0].patient_id], "$XDSDocumentEntryStatus": APPROVED, "$XDSDocumentEntryClassCode": [f.CLASS_REPORTS]}, return_type="ObjectRef"))
    assert both.count("ObjectRef") == 4
    nothing = reg.query(Q["FindDocumentsForMultiplePatients"], {"$XDSDocumentEntryStatus": APPROVED})
    assert nothing.status.endswith(":Failure") and nothing.codes == ["XDSStoredQueryMissingParam"]


def test_find_folders_for_multiple_patients(reg: RegistryUnderTest, data: DataSet) -> None:
    _second_patient(reg)
    answer = ok(reg.query(Q["FindFoldersForMultiplePatients"], {"$XDSFolderStatus": APPROVED, "$XDSFolderCodeList": [[f.FOLDER_CODE]]}, return_type="ObjectRef"))
    assert answer.count("ObjectRef") == 3


def test_too_many_results(reg: RegistryUnderTest, data: DataSet, registry_engine) -> None:  # type: ignore[no-untyped-def]
    from registry.iti18 import RegistryStoredQuery

    reg.queries = RegistryStoredQuery(registry_engine, max_results=3)
    answer = reg.query(Q["FindDocuments"], {"$XDSDocumentEntryPatientId": data.pid, "$XDSDocumentEntryStatus": APPROVED})
    assert answer.codes == ["XDSTooManyResults"] and answer.count("ExtrinsicObject") == 0
    assert ok(reg.query(Q["GetDocuments"], {"$XDSDocumentEntryUniqueId": [data.de_uid["d1"]]})).count("ExtrinsicObject") == 1


def test_every_returned_object_has_lid_and_version(reg: RegistryUnderTest, data: DataSet) -> None:
    from xds.vocabulary import NS_RIM

    answer = ok(reg.query(Q["GetAll"], {"$patientId": data.pid, "$XDSDocumentEntryStatus": BOTH, "$XDSSubmissionSetStatus": BOTH, "$XDSFolderStatus": BOTH}))
    assert answer.element is not None
    for obj in answer.element:
        assert obj.get("lid"), obj.tag
        assert obj.get("status"), obj.tag
        assert obj.find(f"{{{NS_RIM}}}VersionInfo").get("versionName") == "1"


def test_query_responses_validate_against_query_xsd(reg: RegistryUnderTest, data: DataSet, schemas_dir) -> None:  # type: ignore[no-untyped-def]
    from lxml import etree

    from xds.query import build_adhoc_query

    schema = etree.XMLSchema(etree.parse(str(schemas_dir / "schema" / "ebRS" / "query.xsd")))
    for qid, params in [
        (Q["GetAll"], {"$patientId": data.pid, "$XDSDocumentEntryStatus": BOTH, "$XDSSubmissionSetStatus": BOTH, "$XDSFolderStatus": BOTH}),
        (Q["FindDocuments"], {"$XDSDocumentEntryPatientId": data.pid}),
    ]:
        response = reg.queries.respond(build_adhoc_query(qid, params, validate=False))
        assert schema.validate(response), schema.error_log
