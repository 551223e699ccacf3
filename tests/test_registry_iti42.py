"""ITI-42 at the Document Registry: the §4 checklist, one positive and one negative test per rule,
and the lifecycle scenarios of the NIST Register tests (xds-notes §8.1). Runs on SQLite and
PostgreSQL."""

from __future__ import annotations

import pytest

from tests.support import factory as f
from tests.support.registry import RegistryUnderTest
from xds.metadata.model import Slot
from xds.vocabulary import AssociationType, Severity, Status

FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
GET_FOLDER_AND_CONTENTS = "urn:uuid:b909a503-523d-4517-8acf-8e5834dfc4c7"
GET_FOLDERS = "urn:uuid:5737b14c-8a1a-4539-b659-e03a34a5e1e4"
GET_ALL = "urn:uuid:10b545ea-725c-446d-9b95-8aeb444eddf3"
BOTH = [Status.APPROVED, Status.DEPRECATED]


@pytest.fixture
def reg(registry_engine, codes_xml) -> RegistryUnderTest:  # type: ignore[no-untyped-def]
    from profiles.codes import load_code_set

    return RegistryUnderTest(registry_engine, codes=load_code_set(codes_xml))


@pytest.fixture
def pid(reg: RegistryUnderTest) -> str:
    return reg.feed(f.patient_id())


def docs(reg: RegistryUnderTest, pid: str, statuses: list[str] | None = None):  # type: ignore[no-untyped-def]
    answer = reg.query(FIND_DOCUMENTS, {"$XDSDocumentEntryPatientId": pid, "$XDSDocumentEntryStatus": statuses or BOTH})
    assert answer.status.endswith(":Success"), answer.errors
    return answer.submission().document_entries


def by_unique_id(reg: RegistryUnderTest, uid: str):  # type: ignore[no-untyped-def]
    answer = reg.query(GET_DOCUMENTS, {"$XDSDocumentEntryUniqueId": [uid]})
    return answer.submission().document_entries


def codes(errors) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.code_text for e in errors if e.severity == Severity.ERROR]


# -- 11990 / 11991: register and read back ------------------------------------------------------


def test_one_document_registered_approved_with_uuid_lid_and_version(reg: RegistryUnderTest, pid: str) -> None:
    sub = f.submission(pid)
    uid = sub.document_entries[0].unique_id
    reg.ok(sub)
    (de,) = docs(reg, pid)
    assert de.unique_id == uid
    assert de.status == Status.APPROVED
    assert de.id.startswith("urn:uuid:") and de.id == de.id.lower()
    assert de.lid == de.id and de.version == "1"
    assert de.hash == sub.document_entries[0].hash and de.size == sub.document_entries[0].size


def test_two_documents(reg: RegistryUnderTest, pid: str) -> None:
    reg.ok(f.submission(pid, entries=2))
    assert len(docs(reg, pid)) == 2


# -- checklist 3: per-object rules reach the response (validation is unit-tested in the core) ---


@pytest.mark.parametrize(
    "attribute",
    ["class_code", "creation_time", "format_code", "healthcare_facility_type_code", "language_code",
     "practice_setting_code", "source_patient_id", "type_code"],
)
def test_nist_11998a_missing_required_attribute_fails_and_stores_nothing(reg: RegistryUnderTest, pid: str, attribute: str) -> None:
    sub = f.submission(pid)
    setattr(sub.document_entries[0], attribute, None)
    assert "XDSRegistryMetadataError" in codes(reg.submit(sub))
    assert docs(reg, pid) == []


def test_nist_11998a_missing_confidentiality_code(reg: RegistryUnderTest, pid: str) -> None:
    sub = f.submission(pid)
    sub.document_entries[0].confidentiality_codes = []
    assert "XDSRegistryMetadataError" in codes(reg.submit(sub))


def test_code_outside_affinity_domain_rejected(reg: RegistryUnderTest, pid: str) -> None:
    sub = f.submission(pid)
    sub.document_entries[0].class_code = f.Code("NOT-A-CLASS", "1.2.3.4")
    errors = reg.submit(sub)
    assert codes(errors) == ["XDSRegistryMetadataError"]
    assert "NOT-A-CLASS" in errors[0].context


def test_nist_12084_missing_repository_unique_id_stores_nothing_of_either_entry(reg: RegistryUnderTest, pid: str) -> None:
    sub = f.submission(pid, entries=2)
    sub.document_entries[1].repository_unique_id = None
    assert "XDSRegistryMetadataError" in codes(reg.submit(sub))
    assert docs(reg, pid) == []


def test_every_finding_is_listed(reg: RegistryUnderTest, pid: str) -> None:
    sub = f.submission(pid)
    sub.document_entries[0].creation_time = None
    sub.document_entries[0].language_code = None
    sub.document_entries[0].type_code = None
    assert len(codes(reg.submit(sub))) >= 3


# -- checklist 4: patient ------------------------------------------------------------------------


def test_nist_11996_unknown_patient(reg: RegistryUnderTest) -> None:
    stranger = f.patient_id()
    errors = reg.submit(f.submission(stranger))
    assert codes(errors) == ["XDSUnknownPatientId"]
    assert stranger in errors[0].context


def test_nist_11997_entry_patient_differs_from_submission_set(reg: RegistryUnderTest, pid: str) -> None:
    other = reg.feed(f.patient_id())
    sub = f.submission(pid)
    sub.document_entries[0].patient_id = other
    assert codes(reg.submit(sub)) == ["XDSPatientIdDoesNotMatch"]


def test_nist_11998_replacement_under_another_patient(reg: RegistryUnderTest, pid: str) -> None:
    reg.ok(f.submission(pid))
    (original,) = docs(reg, pid)
    other = reg.feed(f.patient_id())
    assert "XDSPatientIdDoesNotMatch" in codes(reg.submit(f.replacement(other, original.id)))
    assert docs(reg, pid)[0].status == Status.APPROVED


def test_nist_12002_other_patients_document_into_folder(reg: RegistryUnderTest, pid: str) -> None:
    reg.ok(f.submission(pid, with_folder=True))
    folder_uuid = reg.query(GET_ALL, {"$patientId": pid, "$XDSDocumentEntryStatus": BOTH, "$XDSSubmissionSetStatus": BOTH, "$XDSFolderStatus": BOTH}).submission().folders[0].id
    other = reg.feed(f.patient_id())
    reg.ok(f.submission(other))
    (foreign,) = docs(reg, other)
    assert "XDSPatientIdDoesNotMatch" in codes(reg.submit(f.add_to_folder(pid, folder_uuid, foreign.id)))


def test_a_merged_patient_is_no_longer_known(reg: RegistryUnderTest, pid: str) -> None:
    survivor = reg.feed(f.patient_id())
    reg.ok(f.submission(pid))
    reg.registry.patients.merge(surviving_id=survivor, merged_id=pid)
    assert codes(reg.submit(f.submission(pid))) == ["XDSUnknownPatientId"]
    (moved,) = docs(reg, survivor)
    assert moved.patient_id == survivor
    assert docs(reg, pid) == []


# -- checklist 5: uniqueIds -----------------------------------------------------------------------


def test_duplicate_unique_id_in_message(reg: RegistryUnderTest, pid: str) -> None:
    sub = f.submission(pid, entries=2)
    sub.document_entries[1].unique_id = sub.document_entries[0].unique_id
    assert "XDSRegistryDuplicateUniqueIdInMessage" in codes(reg.submit(sub))


def test_submission_set_unique_id_already_registered(reg: RegistryUnderTest, pid: str) -> None:
    first = f.submission(pid)
    reg.ok(first)
    again = f.submission(pid)
    again.submission_sets[0].unique_id = first.submission_sets[0].unique_id
    assert codes(reg.submit(again)) == ["XDSDuplicateUniqueIdInRegistry"]


def test_folder_unique_id_already_registered(reg: RegistryUnderTest, pid: str) -> None:
    first = f.submission(pid, with_folder=True)
    reg.ok(first)
    again = f.submission(pid, with_folder=True)
    again.folders[0].unique_id = first.folders[0].unique_id
    assert codes(reg.submit(again)) == ["XDSDuplicateUniqueIdInRegistry"]


def test_nist_12004_identical_resubmission_accepted_as_second_copy(reg: RegistryUnderTest, pid: str) -> None:
    first = f.submission(pid)
    reg.ok(first)
    again = f.submission(pid)
    de = again.document_entries[0]
    de.unique_id, de.hash, de.size = first.document_entries[0].unique_id, first.document_entries[0].hash, first.document_entries[0].size
    reg.ok(again)
    copies = by_unique_id(reg, de.unique_id)
    assert len(copies) == 2 and copies[0].id != copies[1].id


def test_nist_12004_same_unique_id_other_hash(reg: RegistryUnderTest, pid: str) -> None:
    first = f.submission(pid)
    reg.ok(first)
    again = f.submission(pid)
    again.document_entries[0].unique_id = first.document_entries[0].unique_id
    again.document_entries[0].size = first.document_entries[0].size
    assert codes(reg.submit(again)) == ["XDSNonIdenticalHash"]


def test_same_unique_id_same_hash_other_size(reg: RegistryUnderTest, pid: str) -> None:
    first = f.submission(pid)
    reg.ok(first)
    again = f.submission(pid)
    de = again.document_entries[0]
    de.unique_id, de.hash, de.size = first.document_entries[0].unique_id, first.document_entries[0].hash.upper(), "999999"
    assert codes(reg.submit(again)) == ["XDSNonIdenticalSize"]


# -- checklist 6: entryUUIDs ----------------------------------------------------------------------


def test_nist_15806_resubmitted_entry_uuid_fails_and_original_survives(reg: RegistryUnderTest, pid: str) -> None:
    reg.ok(f.submission(pid))
    (original,) = docs(reg, pid)
    again = f.submission(pid)
    old_symbolic = again.document_entries[0].id
    again.document_entries[0].id = original.id
    for a in again.associations:
        a.target = original.id if a.target == old_symbolic else a.target
    assert "XDSRegistryMetadataError" in codes(reg.submit(again))
    (still,) = docs(reg, pid)
    assert still.unique_id == original.unique_id


def test_client_supplied_uuid_is_kept(reg: RegistryUnderTest, pid: str) -> None:
    sub = f.submission(pid)
    chosen = "urn:uuid:0a4c5e3e-7a3b-4d41-9a7c-2bb4c6b1c001"
    old = sub.document_entries[0].id
    sub.document_entries[0].id = chosen
    for a in sub.associations:
        a.target = chosen if a.target == old else a.target
    reg.ok(sub)
    assert docs(reg, pid)[0].id == chosen


# -- checklist 7: references ----------------------------------------------------------------------


def test_unresolvable_association_target(reg: RegistryUnderTest, pid: str) -> None:
    sub = f.replacement(pid, "urn:uuid:11111111-2222-3333-4444-555555555555")
    assert "UnresolvedReferenceException" in codes(reg.submit(sub))


# -- lifecycle ----------------------------------------------------------------------------------


def _one(reg: RegistryUnderTest, pid: str):  # type: ignore[no-untyped-def]
    reg.ok(f.submission(pid))
    return docs(reg, pid)[0]


def test_nist_11992_rplc_deprecates_original(reg: RegistryUnderTest, pid: str) -> None:
    original = _one(reg, pid)
    reg.ok(f.replacement(pid, original.id))
    statuses = {d.id: d.status for d in docs(reg, pid)}
    assert statuses.pop(original.id) == Status.DEPRECATED
    assert list(statuses.values()) == [Status.APPROVED]
    assert [d.id for d in docs(reg, pid, [Status.APPROVED])] != [original.id]


@pytest.mark.parametrize("kind", [AssociationType.APND, AssociationType.XFRM, AssociationType.SIGNS])
def test_non_replacing_relationships_deprecate_nothing(reg: RegistryUnderTest, pid: str, kind: str) -> None:
    original = _one(reg, pid)
    reg.ok(f.replacement(pid, original.id, kind=kind))
    assert {d.status for d in docs(reg, pid)} == {Status.APPROVED}


@pytest.mark.parametrize("kind", [AssociationType.APND, AssociationType.XFRM, AssociationType.RPLC, AssociationType.XFRM_RPLC])
def test_nist_11993_11994_relationship_to_deprecated_fails(reg: RegistryUnderTest, pid: str, kind: str) -> None:
    original = _one(reg, pid)
    reg.ok(f.replacement(pid, original.id))
    errors = reg.submit(f.replacement(pid, original.id, kind=kind))
    assert codes(errors) == ["XDSRegistryDeprecatedDocumentError"]


def test_nist_11995_xfrm_rplc_deprecates_original(reg: RegistryUnderTest, pid: str) -> None:
    original = _one(reg, pid)
    reg.ok(f.replacement(pid, original.id, kind=AssociationType.XFRM_RPLC))
    assert {d.id: d.status for d in docs(reg, pid)}[original.id] == Status.DEPRECATED


def test_nist_12022_deprecation_cascades_to_addenda_and_transforms(reg: RegistryUnderTest, pid: str) -> None:
    original = _one(reg, pid)
    reg.ok(f.replacement(pid, original.id, kind=AssociationType.APND))
    addendum = next(d for d in docs(reg, pid) if d.id != original.id)
    reg.ok(f.replacement(pid, addendum.id, kind=AssociationType.XFRM))
    transform = next(d for d in docs(reg, pid) if d.id not in (original.id, addendum.id))
    reg.ok(f.replacement(pid, original.id))
    status = {d.id: d.status for d in docs(reg, pid)}
    assert status[original.id] == status[addendum.id] == status[transform.id] == Status.DEPRECATED
    assert sum(s == Status.APPROVED for s in status.values()) == 1


def _folder_of(reg: RegistryUnderTest, pid: str):  # type: ignore[no-untyped-def]
    answer = reg.query(GET_ALL, {"$patientId": pid, "$XDSDocumentEntryStatus": BOTH, "$XDSSubmissionSetStatus": BOTH, "$XDSFolderStatus": BOTH})
    return answer.submission().folders[0]


def _folder_members(reg: RegistryUnderTest, folder_uuid: str) -> set[str]:
    answer = reg.query(GET_FOLDER_AND_CONTENTS, {"$XDSFolderEntryUUID": folder_uuid})
    return {d.id for d in answer.submission().document_entries}


def test_nist_11999_empty_folder(reg: RegistryUnderTest, pid: str) -> None:
    sub = f.submission(pid, entries=0)
    fd = f.folder(pid)
    sub.folders.append(fd)
    sub.associations.append(f.has_member(sub.submission_sets[0].id, fd.id, status=None))
    reg.ok(sub)
    assert _folder_of(reg, pid).unique_id == fd.unique_id


def test_nist_12323_folder_last_update_time_kept_by_registry(reg: RegistryUnderTest, pid: str) -> None:
    sub = f.submission(pid, with_folder=True)
    sub.folders[0].last_update_time = "19990101000000"
    reg.ok(sub)
    created = _folder_of(reg, pid).last_update_time
    assert created == "20250301120000"
    reg.clock.advance(hours=1)
    reg.ok(_new_member(reg, pid))
    assert _folder_of(reg, pid).last_update_time == "20250301130000"


def _new_member(reg: RegistryUnderTest, pid: str):  # type: ignore[no-untyped-def]
    """A submission adding a NEW document to the patient's existing folder (NIST 12001)."""
    folder_uuid = _folder_of(reg, pid).id
    sub = f.submission(pid)
    inner = f.has_member(folder_uuid, sub.document_entries[0].id, status=None)
    sub.associations += [inner, f.has_member(sub.submission_sets[0].id, inner.id, status=None)]
    return sub


def test_nist_12001_new_document_into_existing_folder(reg: RegistryUnderTest, pid: str) -> None:
    reg.ok(f.submission(pid, with_folder=True))
    sub = _new_member(reg, pid)
    reg.ok(sub)
    assert len(_folder_members(reg, _folder_of(reg, pid).id)) == 2


def test_nist_12326_existing_document_into_existing_folder(reg: RegistryUnderTest, pid: str) -> None:
    reg.ok(f.submission(pid, with_folder=True))
    loose = f.submission(pid)
    reg.ok(loose)
    loose_uuid = next(d.id for d in docs(reg, pid) if d.unique_id == loose.document_entries[0].unique_id)
    folder_uuid = _folder_of(reg, pid).id
    reg.ok(f.add_to_folder(pid, folder_uuid, loose_uuid))
    assert loose_uuid in _folder_members(reg, folder_uuid)


def test_nist_12327_replacement_joins_the_originals_folders(reg: RegistryUnderTest, pid: str) -> None:
    reg.ok(f.submission(pid, with_folder=True))
    original = docs(reg, pid)[0]
    folder_uuid = _folder_of(reg, pid).id
    reg.clock.advance(minutes=5)
    reg.ok(f.replacement(pid, original.id))
    members = _folder_members(reg, folder_uuid)
    replacement = next(d for d in docs(reg, pid) if d.id != original.id)
    assert replacement.id in members
    assert _folder_of(reg, pid).last_update_time == "20250301120500"


def test_nist_12370_documentation_on_has_member_rejected_on_rplc_accepted(reg: RegistryUnderTest, pid: str) -> None:
    note = f.Code("Additional_Information", "1.3.6.1.4.1.21367.2017.3", "Additional Information")
    bad = f.submission(pid)
    bad.associations[0].documentation = [note]
    assert "XDSRegistryMetadataError" in codes(reg.submit(bad))
    original = _one(reg, pid)
    good = f.replacement(pid, original.id)
    good.associations[-1].documentation = [note]
    reg.ok(good)


def test_nist_12379_extra_metadata_stored_and_returned(reg: RegistryUnderTest, pid: str) -> None:
    extra = Slot("urn:example:extra:metadata", ("one", "two"))
    reg.ok(f.submission(pid, extra_slot=extra))
    (de,) = docs(reg, pid)
    assert extra in de.extra_slots


def test_extra_metadata_not_saved_gives_success_with_warning(registry_engine, codes_xml) -> None:  # type: ignore[no-untyped-def]
    from profiles.codes import load_code_set

    reg = RegistryUnderTest(registry_engine, codes=load_code_set(codes_xml), store_extra_metadata=False)
    pid = reg.feed(f.patient_id())
    errors = reg.submit(f.submission(pid, extra_slot=Slot("urn:example:extra", ("x",))))
    assert [(e.code_text, e.severity) for e in errors] == [("XDSExtraMetadataNotSaved", Severity.WARNING)]
    assert docs(reg, pid)[0].extra_slots == []
