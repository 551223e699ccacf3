"""The stored queries of ITI-18 (and the two of ITI-51) as data: ids, parameters and their rules.

Each :class:`QueryDefinition` lists its parameters (:class:`Param`): required or optional, single
or multi-valued, whether repeated Slots (AND of OR-lists) are allowed, and the value kind. Rules
that span parameters are data too: ``exactly_one_of`` ("X xor Y") and ``at_least_one_of``.
:mod:`xds.query.request` applies them; a registry's query executor reads them.

Sources: ITI TF-2a §3.18.4.1.2.3.7.1-14 (one table per query), §3.18.4.1.2.3.8 (query ids),
ITI TF-2b §3.51.4.1.2 (multi-patient queries); summarised in xds-notes §6.2.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from xds.errors import ErrorCode, XdsError
from xds.vocabulary import IdScheme, Scheme

__all__ = [
    "DEFINITIONS",
    "HOME_COMMUNITY_ID",
    "Param",
    "QueryDefinition",
    "QueryParam",
    "StoredQueryId",
    "ValueKind",
    "definition_for",
    "find_definition",
]


class StoredQueryId:
    """The ``rim:AdhocQuery/@id`` of each stored query (ITI TF-2a §3.18.4.1.2.3.8; ITI TF-2b §3.51)."""

    FIND_DOCUMENTS: Final = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
    FIND_DOCUMENTS_BY_REFERENCE_ID: Final = "urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492"
    FIND_SUBMISSION_SETS: Final = "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9"
    FIND_FOLDERS: Final = "urn:uuid:958f3006-baad-4929-a4de-ff1114824431"
    GET_ALL: Final = "urn:uuid:10b545ea-725c-446d-9b95-8aeb444eddf3"
    GET_DOCUMENTS: Final = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
    GET_FOLDERS: Final = "urn:uuid:5737b14c-8a1a-4539-b659-e03a34a5e1e4"
    GET_ASSOCIATIONS: Final = "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155"
    GET_DOCUMENTS_AND_ASSOCIATIONS: Final = "urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a"
    GET_SUBMISSION_SETS: Final = "urn:uuid:51224314-5390-4169-9b91-b1980040715a"
    GET_SUBMISSION_SET_AND_CONTENTS: Final = "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83"
    GET_FOLDER_AND_CONTENTS: Final = "urn:uuid:b909a503-523d-4517-8acf-8e5834dfc4c7"
    GET_FOLDERS_FOR_DOCUMENT: Final = "urn:uuid:10cae35a-c7f9-4cf5-b61e-fc3278ffb578"
    GET_RELATED_DOCUMENTS: Final = "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6"
    FIND_DOCUMENTS_FOR_MULTIPLE_PATIENTS: Final = "urn:uuid:3d1bdb10-39a2-11de-89c2-2f44d94eaa9f"
    FIND_FOLDERS_FOR_MULTIPLE_PATIENTS: Final = "urn:uuid:50d3f5ac-39a2-11de-a1ca-b366239e58df"


class QueryParam:
    """Parameter (Slot) names, for callers who prefer constants to string literals."""

    DE_PATIENT_ID: Final = "$XDSDocumentEntryPatientId"
    DE_CLASS_CODE: Final = "$XDSDocumentEntryClassCode"
    DE_TYPE_CODE: Final = "$XDSDocumentEntryTypeCode"
    DE_PRACTICE_SETTING_CODE: Final = "$XDSDocumentEntryPracticeSettingCode"
    DE_CREATION_TIME_FROM: Final = "$XDSDocumentEntryCreationTimeFrom"
    DE_CREATION_TIME_TO: Final = "$XDSDocumentEntryCreationTimeTo"
    DE_SERVICE_START_TIME_FROM: Final = "$XDSDocumentEntryServiceStartTimeFrom"
    DE_SERVICE_START_TIME_TO: Final = "$XDSDocumentEntryServiceStartTimeTo"
    DE_SERVICE_STOP_TIME_FROM: Final = "$XDSDocumentEntryServiceStopTimeFrom"
    DE_SERVICE_STOP_TIME_TO: Final = "$XDSDocumentEntryServiceStopTimeTo"
    DE_HEALTHCARE_FACILITY_TYPE_CODE: Final = "$XDSDocumentEntryHealthcareFacilityTypeCode"
    DE_EVENT_CODE_LIST: Final = "$XDSDocumentEntryEventCodeList"
    DE_CONFIDENTIALITY_CODE: Final = "$XDSDocumentEntryConfidentialityCode"
    DE_AUTHOR_PERSON: Final = "$XDSDocumentEntryAuthorPerson"
    DE_FORMAT_CODE: Final = "$XDSDocumentEntryFormatCode"
    DE_STATUS: Final = "$XDSDocumentEntryStatus"
    DE_TYPE: Final = "$XDSDocumentEntryType"
    DE_REFERENCE_ID_LIST: Final = "$XDSDocumentEntryReferenceIdList"
    DE_ENTRY_UUID: Final = "$XDSDocumentEntryEntryUUID"
    DE_UNIQUE_ID: Final = "$XDSDocumentEntryUniqueId"
    DE_LOGICAL_ID: Final = "$XDSDocumentEntryLogicalID"
    SS_PATIENT_ID: Final = "$XDSSubmissionSetPatientId"
    SS_SOURCE_ID: Final = "$XDSSubmissionSetSourceId"
    SS_SUBMISSION_TIME_FROM: Final = "$XDSSubmissionSetSubmissionTimeFrom"
    SS_SUBMISSION_TIME_TO: Final = "$XDSSubmissionSetSubmissionTimeTo"
    SS_AUTHOR_PERSON: Final = "$XDSSubmissionSetAuthorPerson"
    SS_CONTENT_TYPE: Final = "$XDSSubmissionSetContentType"
    SS_STATUS: Final = "$XDSSubmissionSetStatus"
    SS_ENTRY_UUID: Final = "$XDSSubmissionSetEntryUUID"
    SS_UNIQUE_ID: Final = "$XDSSubmissionSetUniqueId"
    FD_PATIENT_ID: Final = "$XDSFolderPatientId"
    FD_LAST_UPDATE_TIME_FROM: Final = "$XDSFolderLastUpdateTimeFrom"
    FD_LAST_UPDATE_TIME_TO: Final = "$XDSFolderLastUpdateTimeTo"
    FD_CODE_LIST: Final = "$XDSFolderCodeList"
    FD_STATUS: Final = "$XDSFolderStatus"
    FD_ENTRY_UUID: Final = "$XDSFolderEntryUUID"
    FD_UNIQUE_ID: Final = "$XDSFolderUniqueId"
    FD_LOGICAL_ID: Final = "$XDSFolderLogicalID"
    PATIENT_ID: Final = "$patientId"
    UUID: Final = "$uuid"
    ASSOCIATION_TYPES: Final = "$AssociationTypes"
    METADATA_LEVEL: Final = "$MetadataLevel"
    HOME_COMMUNITY_ID: Final = "$homeCommunityId"


#: Accepted by every query without error (xds-notes §6.2, NIST 11901/homeCommunityId).
HOME_COMMUNITY_ID: Final = QueryParam.HOME_COMMUNITY_ID


class ValueKind(enum.Enum):
    """What one value of a parameter is (ITI TF-2a §3.18.4.1.2.3.5)."""

    STRING = "string"  # a quoted string (ids, OIDs, authors with LIKE wildcards)
    PATIENT_ID = "patient id"  # a quoted CX: ID^^^&OID&ISO
    CODE = "code"  # a quoted CODE^^SCHEME, read into a CodeValue
    TIME = "time"  # an unquoted DTM number
    STATUS = "status"  # a quoted availabilityStatus URN
    OBJECT_TYPE = "objectType"  # a quoted DocumentEntry objectType UUID
    NUMBER = "number"  # an unquoted integer ($MetadataLevel)


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of one stored query.

    ``multi``: several values (a list) are allowed; otherwise exactly one value.
    ``and_or``: the Slot may be repeated, each repetition an OR-list, the repetitions AND'ed
    (ITI TF-2a §3.18.4.1.2.3.5); implies ``multi``.
    ``like``: the values are SQL LIKE patterns (``%`` and ``_``), e.g. author names.
    ``attribute``: the TF metadata attribute the parameter filters on (documentation).
    ``scheme``: the classification scheme (codes) or identification scheme (ids) it matches.
    """

    name: str
    kind: ValueKind
    required: bool = False
    multi: bool = False
    and_or: bool = False
    like: bool = False
    attribute: str = ""
    scheme: str | None = None

    def __post_init__(self) -> None:
        if self.and_or and not self.multi:
            raise ValueError(f"{self.name}: an AND/OR parameter must be multi-valued")


@dataclass(frozen=True, slots=True)
class QueryDefinition:
    """A stored query: name, id, its parameters and the rules between them."""

    name: str
    id: str
    params: Mapping[str, Param] = field(repr=False)
    exactly_one_of: tuple[tuple[str, ...], ...] = field(default=(), repr=False)
    at_least_one_of: tuple[tuple[str, ...], ...] = field(default=(), repr=False)
    returns: str = field(default="", repr=False)
    transaction: str = "ITI-18"
    section: str = field(default="", repr=False)

    @property
    def required(self) -> tuple[str, ...]:
        """Names of the parameters that must always be present."""
        return tuple(name for name, p in self.params.items() if p.required)

    @property
    def and_or_params(self) -> tuple[str, ...]:
        """Names of the parameters whose Slot may be repeated (AND of OR-lists)."""
        return tuple(name for name, p in self.params.items() if p.and_or)


# -- parameter families ------------------------------------------------------------------------


def _p(
    name: str,
    kind: ValueKind,
    *,
    required: bool = False,
    multi: bool = False,
    and_or: bool = False,
    like: bool = False,
    attribute: str = "",
    scheme: str | None = None,
) -> Param:
    return Param(
        name,
        kind,
        required=required,
        multi=multi or and_or,
        and_or=and_or,
        like=like,
        attribute=attribute,
        scheme=scheme,
    )


def _code(name: str, attribute: str, scheme: str, *, and_or: bool = False, required: bool = False) -> Param:
    return _p(name, ValueKind.CODE, multi=True, and_or=and_or, required=required, attribute=attribute, scheme=scheme)


def _time_pair(base: str, attribute: str) -> tuple[Param, Param]:
    return (
        _p(base + "From", ValueKind.TIME, attribute=attribute),
        _p(base + "To", ValueKind.TIME, attribute=attribute),
    )


def _string(name: str, attribute: str, *, multi: bool = False, scheme: str | None = None) -> Param:
    return _p(name, ValueKind.STRING, multi=multi, attribute=attribute, scheme=scheme)


_Q = QueryParam  # short alias for the tables below
_HOME = _p(_Q.HOME_COMMUNITY_ID, ValueKind.STRING, attribute="homeCommunityId")
_DE_STATUS = _p(_Q.DE_STATUS, ValueKind.STATUS, required=True, multi=True, attribute="XDSDocumentEntry.availabilityStatus")
_SS_STATUS = _p(_Q.SS_STATUS, ValueKind.STATUS, required=True, multi=True, attribute="XDSSubmissionSet.availabilityStatus")
_FD_STATUS = _p(_Q.FD_STATUS, ValueKind.STATUS, required=True, multi=True, attribute="XDSFolder.availabilityStatus")
_DE_TYPE = _p(_Q.DE_TYPE, ValueKind.OBJECT_TYPE, multi=True, attribute="XDSDocumentEntry.objectType")
_DE_FORMAT = _code(_Q.DE_FORMAT_CODE, "XDSDocumentEntry.formatCode", Scheme.DE_FORMAT_CODE)
_DE_CONFIDENTIALITY = _code(
    _Q.DE_CONFIDENTIALITY_CODE, "XDSDocumentEntry.confidentialityCode", Scheme.DE_CONFIDENTIALITY_CODE, and_or=True
)
_DE_EVENT = _code(_Q.DE_EVENT_CODE_LIST, "XDSDocumentEntry.eventCodeList", Scheme.DE_EVENT_CODE, and_or=True)
_DE_CLASS = _code(_Q.DE_CLASS_CODE, "XDSDocumentEntry.classCode", Scheme.DE_CLASS_CODE)
_DE_HCFT = _code(
    _Q.DE_HEALTHCARE_FACILITY_TYPE_CODE,
    "XDSDocumentEntry.healthcareFacilityTypeCode",
    Scheme.DE_HEALTHCARE_FACILITY_TYPE_CODE,
)
_FD_CODES = _code(_Q.FD_CODE_LIST, "XDSFolder.codeList", Scheme.FD_CODE_LIST, and_or=True)


def _de_patient_id(*, multi: bool) -> Param:
    return _p(
        _Q.DE_PATIENT_ID,
        ValueKind.PATIENT_ID,
        required=not multi,
        multi=multi,
        attribute="XDSDocumentEntry.patientId",
        scheme=IdScheme.DE_PATIENT_ID,
    )


def _document_filters() -> tuple[Param, ...]:
    """The DocumentEntry filters shared by FindDocuments and its variants (§3.18.4.1.2.3.7.1)."""
    return (
        _DE_CLASS,
        _code(_Q.DE_TYPE_CODE, "XDSDocumentEntry.typeCode", Scheme.DE_TYPE_CODE),
        _code(_Q.DE_PRACTICE_SETTING_CODE, "XDSDocumentEntry.practiceSettingCode", Scheme.DE_PRACTICE_SETTING_CODE),
        *_time_pair("$XDSDocumentEntryCreationTime", "XDSDocumentEntry.creationTime"),
        *_time_pair("$XDSDocumentEntryServiceStartTime", "XDSDocumentEntry.serviceStartTime"),
        *_time_pair("$XDSDocumentEntryServiceStopTime", "XDSDocumentEntry.serviceStopTime"),
        _DE_HCFT,
        _DE_EVENT,
        _DE_CONFIDENTIALITY,
        _p(_Q.DE_AUTHOR_PERSON, ValueKind.STRING, multi=True, like=True, attribute="XDSDocumentEntry.author"),
        _DE_FORMAT,
        _DE_STATUS,
        _DE_TYPE,
    )


def _contents_filters() -> tuple[Param, ...]:
    """Filters on the DocumentEntries of a SubmissionSet or Folder (§3.18.4.1.2.3.7.10-11)."""
    return (_DE_FORMAT, _DE_CONFIDENTIALITY, _DE_TYPE, _HOME)


def _ids(prefix: str, *, multi: bool, logical: bool = False) -> tuple[Param, ...]:
    """The EntryUUID / UniqueId (and Metadata Update LogicalID) parameters of an object type."""
    obj = prefix[1:]
    params = [
        _string(f"{prefix}EntryUUID", f"{obj}.entryUUID", multi=multi),
        _string(f"{prefix}UniqueId", f"{obj}.uniqueId", multi=multi),
    ]
    if logical:
        params.append(_string(f"{prefix}LogicalID", f"{obj}.logicalID", multi=multi))
    return tuple(params)


def _query(
    name: str,
    query_id: str,
    section: str,
    params: tuple[Param, ...],
    *,
    exactly_one_of: tuple[tuple[str, ...], ...] = (),
    at_least_one_of: tuple[tuple[str, ...], ...] = (),
    returns: str,
    transaction: str = "ITI-18",
) -> QueryDefinition:
    table: dict[str, Param] = {}
    for param in params:
        if param.name in table:
            raise ValueError(f"{name}: parameter {param.name} declared twice")
        table[param.name] = param
    for group in exactly_one_of + at_least_one_of:
        for member in group:
            if member not in table:
                raise ValueError(f"{name}: rule names unknown parameter {member}")
    return QueryDefinition(
        name=name,
        id=query_id,
        params=MappingProxyType(table),
        exactly_one_of=exactly_one_of,
        at_least_one_of=at_least_one_of,
        returns=returns,
        transaction=transaction,
        section=section,
    )


_DE_IDS = (_Q.DE_ENTRY_UUID, _Q.DE_UNIQUE_ID)
_FD_IDS = (_Q.FD_ENTRY_UUID, _Q.FD_UNIQUE_ID)
_SS_IDS = (_Q.SS_ENTRY_UUID, _Q.SS_UNIQUE_ID)


def _all_definitions() -> tuple[QueryDefinition, ...]:
    S = ValueKind
    return (
        # ITI TF-2a §3.18.4.1.2.3.7.1
        _query(
            "FindDocuments", StoredQueryId.FIND_DOCUMENTS, "ITI TF-2a §3.18.4.1.2.3.7.1",
            (_de_patient_id(multi=False), *_document_filters()),
            returns="DocumentEntries",
        ),
        # ITI TF-2a §3.18.4.1.2.3.7.14
        _query(
            "FindDocumentsByReferenceId", StoredQueryId.FIND_DOCUMENTS_BY_REFERENCE_ID,
            "ITI TF-2a §3.18.4.1.2.3.7.14",
            (
                _de_patient_id(multi=False),
                *_document_filters(),
                _p(_Q.DE_REFERENCE_ID_LIST, S.STRING, required=True, and_or=True,
                   attribute="XDSDocumentEntry.referenceIdList"),
            ),
            returns="DocumentEntries",
        ),
        # ITI TF-2a §3.18.4.1.2.3.7.2
        _query(
            "FindSubmissionSets", StoredQueryId.FIND_SUBMISSION_SETS, "ITI TF-2a §3.18.4.1.2.3.7.2",
            (
                _p(_Q.SS_PATIENT_ID, S.PATIENT_ID, required=True, attribute="XDSSubmissionSet.patientId",
                   scheme=IdScheme.SS_PATIENT_ID),
                _string(_Q.SS_SOURCE_ID, "XDSSubmissionSet.sourceId", multi=True, scheme=IdScheme.SS_SOURCE_ID),
                *_time_pair("$XDSSubmissionSetSubmissionTime", "XDSSubmissionSet.submissionTime"),
                _p(_Q.SS_AUTHOR_PERSON, S.STRING, like=True, attribute="XDSSubmissionSet.author"),
                _code(_Q.SS_CONTENT_TYPE, "XDSSubmissionSet.contentTypeCode", Scheme.SS_CONTENT_TYPE_CODE),
                _SS_STATUS,
            ),
            returns="SubmissionSets",
        ),
        # ITI TF-2a §3.18.4.1.2.3.7.3
        _query(
            "FindFolders", StoredQueryId.FIND_FOLDERS, "ITI TF-2a §3.18.4.1.2.3.7.3",
            (
                _p(_Q.FD_PATIENT_ID, S.PATIENT_ID, required=True, attribute="XDSFolder.patientId",
                   scheme=IdScheme.FD_PATIENT_ID),
                *_time_pair("$XDSFolderLastUpdateTime", "XDSFolder.lastUpdateTime"),
                _FD_CODES,
                _FD_STATUS,
            ),
            returns="Folders",
        ),
        # ITI TF-2a §3.18.4.1.2.3.7.4
        _query(
            "GetAll", StoredQueryId.GET_ALL, "ITI TF-2a §3.18.4.1.2.3.7.4",
            (
                _p(_Q.PATIENT_ID, S.PATIENT_ID, required=True, attribute="patientId"),
                _DE_STATUS, _SS_STATUS, _FD_STATUS,
                _DE_FORMAT, _DE_CONFIDENTIALITY, _DE_TYPE,
            ),
            returns="SubmissionSets, DocumentEntries, Folders and their Associations",
        ),
        # ITI TF-2a §3.18.4.1.2.3.7.5 (LogicalID and $MetadataLevel: Metadata Update option)
        _query(
            "GetDocuments", StoredQueryId.GET_DOCUMENTS, "ITI TF-2a §3.18.4.1.2.3.7.5",
            (*_ids("$XDSDocumentEntry", multi=True, logical=True),
             _p(_Q.METADATA_LEVEL, S.NUMBER, attribute="metadataLevel"), _HOME),
            exactly_one_of=((*_DE_IDS, _Q.DE_LOGICAL_ID),),
            returns="DocumentEntries",
        ),
        # ITI TF-2a §3.18.4.1.2.3.7.6
        _query(
            "GetFolders", StoredQueryId.GET_FOLDERS, "ITI TF-2a §3.18.4.1.2.3.7.6",
            (*_ids("$XDSFolder", multi=True, logical=True), _HOME),
            exactly_one_of=((*_FD_IDS, _Q.FD_LOGICAL_ID),),
            returns="Folders",
        ),
        # ITI TF-2a §3.18.4.1.2.3.7.7
        _query(
            "GetAssociations", StoredQueryId.GET_ASSOCIATIONS, "ITI TF-2a §3.18.4.1.2.3.7.7",
            (_p(_Q.UUID, S.STRING, required=True, multi=True, attribute="entryUUID"), _HOME),
            returns="Associations whose source or target is one of $uuid",
        ),
        # ITI TF-2a §3.18.4.1.2.3.7.8
        _query(
            "GetDocumentsAndAssociations", StoredQueryId.GET_DOCUMENTS_AND_ASSOCIATIONS,
            "ITI TF-2a §3.18.4.1.2.3.7.8",
            (*_ids("$XDSDocumentEntry", multi=True), _HOME),
            exactly_one_of=(_DE_IDS,),
            returns="DocumentEntries and their Associations",
        ),
        # ITI TF-2a §3.18.4.1.2.3.7.9
        _query(
            "GetSubmissionSets", StoredQueryId.GET_SUBMISSION_SETS, "ITI TF-2a §3.18.4.1.2.3.7.9",
            (_p(_Q.UUID, S.STRING, required=True, multi=True, attribute="entryUUID"), _HOME),
            returns="SubmissionSets containing the $uuid objects, with their HasMember Associations",
        ),
        # ITI TF-2a §3.18.4.1.2.3.7.10
        _query(
            "GetSubmissionSetAndContents", StoredQueryId.GET_SUBMISSION_SET_AND_CONTENTS,
            "ITI TF-2a §3.18.4.1.2.3.7.10",
            (*_ids("$XDSSubmissionSet", multi=False), *_contents_filters()),
            exactly_one_of=(_SS_IDS,),
            returns="the SubmissionSet, its DocumentEntries (filtered), Folders and Associations",
        ),
        # ITI TF-2a §3.18.4.1.2.3.7.11
        _query(
            "GetFolderAndContents", StoredQueryId.GET_FOLDER_AND_CONTENTS, "ITI TF-2a §3.18.4.1.2.3.7.11",
            (*_ids("$XDSFolder", multi=False), *_contents_filters()),
            exactly_one_of=(_FD_IDS,),
            returns="the Folder, its DocumentEntries (filtered) and the Folder-to-document Associations",
        ),
        # ITI TF-2a §3.18.4.1.2.3.7.12
        _query(
            "GetFoldersForDocument", StoredQueryId.GET_FOLDERS_FOR_DOCUMENT, "ITI TF-2a §3.18.4.1.2.3.7.12",
            (*_ids("$XDSDocumentEntry", multi=False), _HOME),
            exactly_one_of=(_DE_IDS,),
            returns="Folders",
        ),
        # ITI TF-2a §3.18.4.1.2.3.7.13
        _query(
            "GetRelatedDocuments", StoredQueryId.GET_RELATED_DOCUMENTS, "ITI TF-2a §3.18.4.1.2.3.7.13",
            (
                *_ids("$XDSDocumentEntry", multi=False),
                _p(_Q.ASSOCIATION_TYPES, S.STRING, required=True, multi=True, attribute="associationType"),
                _DE_TYPE,
                _HOME,
            ),
            exactly_one_of=(_DE_IDS,),
            returns="the DocumentEntry, its related DocumentEntries and the Associations (empty if none)",
        ),
        # ITI TF-2b §3.51.4.1.2: at least one of class, event or facility type code.
        _query(
            "FindDocumentsForMultiplePatients", StoredQueryId.FIND_DOCUMENTS_FOR_MULTIPLE_PATIENTS,
            "ITI TF-2b §3.51.4.1.2",
            (_de_patient_id(multi=True), *_document_filters()),
            at_least_one_of=((_Q.DE_CLASS_CODE, _Q.DE_EVENT_CODE_LIST, _Q.DE_HEALTHCARE_FACILITY_TYPE_CODE),),
            returns="DocumentEntries",
            transaction="ITI-51",
        ),
        # ITI TF-2b §3.51.4.1.2
        _query(
            "FindFoldersForMultiplePatients", StoredQueryId.FIND_FOLDERS_FOR_MULTIPLE_PATIENTS,
            "ITI TF-2b §3.51.4.1.2",
            (
                _p(_Q.FD_PATIENT_ID, S.PATIENT_ID, multi=True, attribute="XDSFolder.patientId",
                   scheme=IdScheme.FD_PATIENT_ID),
                *_time_pair("$XDSFolderLastUpdateTime", "XDSFolder.lastUpdateTime"),
                _code(_Q.FD_CODE_LIST, "XDSFolder.codeList", Scheme.FD_CODE_LIST, and_or=True, required=True),
                _FD_STATUS,
            ),
            returns="Folders",
            transaction="ITI-51",
        ),
    )


#: Every stored query, keyed by its id (lower case).
DEFINITIONS: Final[Mapping[str, QueryDefinition]] = MappingProxyType(
    {definition.id: definition for definition in _all_definitions()}
)
_BY_NAME: Final[Mapping[str, QueryDefinition]] = MappingProxyType(
    {definition.name: definition for definition in DEFINITIONS.values()}
)


def find_definition(id_or_name: str) -> QueryDefinition | None:
    """The definition for a query id (``urn:uuid:…``, any letter case) or name, else None."""
    found = DEFINITIONS.get(id_or_name.strip().lower())
    return found if found is not None else _BY_NAME.get(id_or_name.strip())


def definition_for(query_id: str) -> QueryDefinition:
    """The definition for ``rim:AdhocQuery/@id``.

    Raises
    ------
    XdsError
        ``XDSUnknownStoredQuery`` when the id names no stored query (ITI TF-2a §3.18.4.1.3).
    """
    found = DEFINITIONS.get(query_id.strip().lower())
    if found is None:
        raise XdsError.of(
            ErrorCode.UNKNOWN_STORED_QUERY,
            f"AdhocQuery id {query_id!r} is not a known stored query",
            query_id,
        )
    return found
