"""The stored-query definitions, checked against the tables of ITI TF-2a §3.18.4.1.2.3.7 and
ITI TF-2b §3.51 as transcribed in xds-notes §6.2 (written out here independently of the code)."""

from __future__ import annotations

import pytest

from xds.errors import ErrorCode, XdsError
from xds.query.definitions import (
    DEFINITIONS,
    Param,
    QueryParam,
    StoredQueryId,
    ValueKind,
    definition_for,
    find_definition,
)
from xds.vocabulary import CODE_SCHEMES, Scheme

DE = "$XDSDocumentEntry"
SS = "$XDSSubmissionSet"
FD = "$XDSFolder"

# name -> (id, required, exactly-one-of groups, AND/OR parameters, single-valued parameters)
EXPECTED: dict[str, tuple[str, set[str], list[set[str]], set[str], set[str]]] = {
    "FindDocuments": (
        "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d",
        {DE + "PatientId", DE + "Status"},
        [],
        {DE + "EventCodeList", DE + "ConfidentialityCode"},
        {DE + "PatientId", DE + "CreationTimeFrom", DE + "CreationTimeTo", DE + "ServiceStartTimeFrom",
         DE + "ServiceStartTimeTo", DE + "ServiceStopTimeFrom", DE + "ServiceStopTimeTo"},
    ),
    "FindDocumentsByReferenceId": (
        "urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492",
        {DE + "PatientId", DE + "Status", DE + "ReferenceIdList"},
        [],
        {DE + "EventCodeList", DE + "ConfidentialityCode", DE + "ReferenceIdList"},
        {DE + "PatientId", DE + "CreationTimeFrom", DE + "CreationTimeTo", DE + "ServiceStartTimeFrom",
         DE + "ServiceStartTimeTo", DE + "ServiceStopTimeFrom", DE + "ServiceStopTimeTo"},
    ),
    "FindSubmissionSets": (
        "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9",
        {SS + "PatientId", SS + "Status"},
        [],
        set(),
        {SS + "PatientId", SS + "SubmissionTimeFrom", SS + "SubmissionTimeTo", SS + "AuthorPerson"},
    ),
    "FindFolders": (
        "urn:uuid:958f3006-baad-4929-a4de-ff1114824431",
        {FD + "PatientId", FD + "Status"},
        [],
        {FD + "CodeList"},
        {FD + "PatientId", FD + "LastUpdateTimeFrom", FD + "LastUpdateTimeTo"},
    ),
    "GetAll": (
        "urn:uuid:10b545ea-725c-446d-9b95-8aeb444eddf3",
        {"$patientId", DE + "Status", SS + "Status", FD + "Status"},
        [],
        {DE + "ConfidentialityCode"},
        {"$patientId"},
    ),
    "GetDocuments": (
        "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4",
        set(),
        [{DE + "EntryUUID", DE + "UniqueId", DE + "LogicalID"}],
        set(),
        {"$homeCommunityId", "$MetadataLevel"},
    ),
    "GetFolders": (
        "urn:uuid:5737b14c-8a1a-4539-b659-e03a34a5e1e4",
        set(),
        [{FD + "EntryUUID", FD + "UniqueId", FD + "LogicalID"}],
        set(),
        {"$homeCommunityId"},
    ),
    "GetAssociations": (
        "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155", {"$uuid"}, [], set(), {"$homeCommunityId"},
    ),
    "GetDocumentsAndAssociations": (
        "urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a",
        set(),
        [{DE + "EntryUUID", DE + "UniqueId"}],
        set(),
        {"$homeCommunityId"},
    ),
    "GetSubmissionSets": (
        "urn:uuid:51224314-5390-4169-9b91-b1980040715a", {"$uuid"}, [], set(), {"$homeCommunityId"},
    ),
    "GetSubmissionSetAndContents": (
        "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83",
        set(),
        [{SS + "EntryUUID", SS + "UniqueId"}],
        {DE + "ConfidentialityCode"},
        {SS + "EntryUUID", SS + "UniqueId", "$homeCommunityId"},
    ),
    "GetFolderAndContents": (
        "urn:uuid:b909a503-523d-4517-8acf-8e5834dfc4c7",
        set(),
        [{FD + "EntryUUID", FD + "UniqueId"}],
        {DE + "ConfidentialityCode"},
        {FD + "EntryUUID", FD + "UniqueId", "$homeCommunityId"},
    ),
    "GetFoldersForDocument": (
        "urn:uuid:10cae35a-c7f9-4cf5-b61e-fc3278ffb578",
        set(),
        [{DE + "EntryUUID", DE + "UniqueId"}],
        set(),
        {DE + "EntryUUID", DE + "UniqueId", "$homeCommunityId"},
    ),
    "GetRelatedDocuments": (
        "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6",
        {"$AssociationTypes"},
        [{DE + "EntryUUID", DE + "UniqueId"}],
        set(),
        {DE + "EntryUUID", DE + "UniqueId", "$homeCommunityId"},
    ),
    "FindDocumentsForMultiplePatients": (
        "urn:uuid:3d1bdb10-39a2-11de-89c2-2f44d94eaa9f",
        {DE + "Status"},
        [],
        {DE + "EventCodeList", DE + "ConfidentialityCode"},
        {DE + "CreationTimeFrom", DE + "CreationTimeTo", DE + "ServiceStartTimeFrom",
         DE + "ServiceStartTimeTo", DE + "ServiceStopTimeFrom", DE + "ServiceStopTimeTo"},
    ),
    "FindFoldersForMultiplePatients": (
        "urn:uuid:50d3f5ac-39a2-11de-a1ca-b366239e58df",
        {FD + "CodeList", FD + "Status"},
        [],
        {FD + "CodeList"},
        {FD + "LastUpdateTimeFrom", FD + "LastUpdateTimeTo"},
    ),
}


def test_every_query_is_defined_once() -> None:
    assert sorted(d.name for d in DEFINITIONS.values()) == sorted(EXPECTED)
    assert len(DEFINITIONS) == 16
    iti18 = [d for d in DEFINITIONS.values() if d.transaction == "ITI-18"]
    assert len(iti18) == 14
    assert {d.name for d in DEFINITIONS.values() if d.transaction == "ITI-51"} == {
        "FindDocumentsForMultiplePatients",
        "FindFoldersForMultiplePatients",
    }


def test_stored_query_id_constants_are_the_definition_ids() -> None:
    constants = {v for k, v in vars(StoredQueryId).items() if not k.startswith("_")}
    assert constants == set(DEFINITIONS)
    assert StoredQueryId.FIND_DOCUMENTS == EXPECTED["FindDocuments"][0]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_query_table(name: str) -> None:
    query_id, required, xor, and_or, single = EXPECTED[name]
    definition = find_definition(name)
    assert definition is not None
    assert definition.id == query_id
    assert set(definition.required) == required
    assert [set(group) for group in definition.exactly_one_of] == xor
    assert set(definition.and_or_params) == and_or
    assert {n for n, p in definition.params.items() if not p.multi} == single
    # A member of an "X xor Y" pair is never required on its own.
    for group in definition.exactly_one_of:
        assert not set(group) & set(definition.required)


def test_multi_patient_document_query_needs_one_of_three_codes() -> None:
    definition = definition_for(StoredQueryId.FIND_DOCUMENTS_FOR_MULTIPLE_PATIENTS)
    assert [set(g) for g in definition.at_least_one_of] == [
        {DE + "ClassCode", DE + "EventCodeList", DE + "HealthcareFacilityTypeCode"}
    ]
    patient = definition.params[DE + "PatientId"]
    assert patient.multi and not patient.required
    assert all(not d.at_least_one_of for d in DEFINITIONS.values() if d is not definition)


def test_find_documents_by_reference_id_extends_find_documents() -> None:
    base = definition_for(StoredQueryId.FIND_DOCUMENTS)
    by_ref = definition_for(StoredQueryId.FIND_DOCUMENTS_BY_REFERENCE_ID)
    assert set(by_ref.params) - set(base.params) == {DE + "ReferenceIdList"}


@pytest.mark.parametrize(
    ("query", "param", "kind"),
    [
        ("FindDocuments", DE + "PatientId", ValueKind.PATIENT_ID),
        ("FindDocuments", DE + "ClassCode", ValueKind.CODE),
        ("FindDocuments", DE + "CreationTimeFrom", ValueKind.TIME),
        ("FindDocuments", DE + "Status", ValueKind.STATUS),
        ("FindDocuments", DE + "Type", ValueKind.OBJECT_TYPE),
        ("FindDocuments", DE + "AuthorPerson", ValueKind.STRING),
        ("FindSubmissionSets", SS + "ContentType", ValueKind.CODE),
        ("FindSubmissionSets", SS + "SourceId", ValueKind.STRING),
        ("FindFolders", FD + "LastUpdateTimeTo", ValueKind.TIME),
        ("GetAll", "$patientId", ValueKind.PATIENT_ID),
        ("GetDocuments", "$MetadataLevel", ValueKind.NUMBER),
        ("GetRelatedDocuments", "$AssociationTypes", ValueKind.STRING),
        ("FindDocumentsByReferenceId", DE + "ReferenceIdList", ValueKind.STRING),
    ],
)
def test_value_kinds(query: str, param: str, kind: ValueKind) -> None:
    definition = find_definition(query)
    assert definition is not None
    assert definition.params[param].kind is kind


def test_author_parameters_take_like_patterns() -> None:
    likes = {(d.name, n) for d in DEFINITIONS.values() for n, p in d.params.items() if p.like}
    assert ("FindDocuments", DE + "AuthorPerson") in likes
    assert ("FindSubmissionSets", SS + "AuthorPerson") in likes
    assert all(name.endswith("AuthorPerson") for _, name in likes)


def test_code_parameters_carry_their_classification_scheme() -> None:
    expected = {
        DE + "ClassCode": Scheme.DE_CLASS_CODE,
        DE + "TypeCode": Scheme.DE_TYPE_CODE,
        DE + "PracticeSettingCode": Scheme.DE_PRACTICE_SETTING_CODE,
        DE + "HealthcareFacilityTypeCode": Scheme.DE_HEALTHCARE_FACILITY_TYPE_CODE,
        DE + "EventCodeList": Scheme.DE_EVENT_CODE,
        DE + "ConfidentialityCode": Scheme.DE_CONFIDENTIALITY_CODE,
        DE + "FormatCode": Scheme.DE_FORMAT_CODE,
        SS + "ContentType": Scheme.SS_CONTENT_TYPE_CODE,
        FD + "CodeList": Scheme.FD_CODE_LIST,
    }
    for definition in DEFINITIONS.values():
        for name, param in definition.params.items():
            if param.kind is ValueKind.CODE:
                assert param.scheme == expected[name], (definition.name, name)
                assert param.scheme in CODE_SCHEMES.values()


def test_query_param_constants_name_real_parameters() -> None:
    all_names = {n for d in DEFINITIONS.values() for n in d.params}
    constants = {v for k, v in vars(QueryParam).items() if not k.startswith("_")}
    assert constants == all_names


def test_lookup_by_id_is_case_insensitive_and_by_name() -> None:
    assert definition_for(StoredQueryId.GET_ALL.upper()).name == "GetAll"
    assert find_definition("GetAll") is definition_for(StoredQueryId.GET_ALL)
    assert find_definition("NoSuchQuery") is None


def test_unknown_query_id_raises_unknown_stored_query() -> None:
    with pytest.raises(XdsError) as caught:
        definition_for("urn:uuid:00000000-0000-0000-0000-000000000000")
    (error,) = caught.value.errors
    assert error.code is ErrorCode.UNKNOWN_STORED_QUERY
    assert "urn:uuid:00000000-0000-0000-0000-000000000000" in error.context


def test_and_or_parameter_must_be_multi_valued() -> None:
    with pytest.raises(ValueError):
        Param("$x", ValueKind.CODE, and_or=True, multi=False)


def test_definitions_are_read_only() -> None:
    definition = definition_for(StoredQueryId.FIND_DOCUMENTS)
    with pytest.raises(TypeError):
        definition.params["$new"] = Param("$new", ValueKind.STRING)  # type: ignore[index]
    with pytest.raises(TypeError):
        DEFINITIONS["x"] = definition  # type: ignore[index]
