"""The TF error codes, exactly as they go on the wire, and the RegistryError value.

ITI TF-3 Table 4.2.4.1-2 lists the codes; each member's comment says when it is used.
Validation and processing code collects :class:`RegistryError` values instead of raising at
the first problem, so a response can list every finding (as the NIST toolkit expects).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from xds.vocabulary import Severity


class ErrorCode(str, enum.Enum):
    """Error codes of ITI TF-3 Table 4.2.4.1-2 (and RMU/MU), written once."""

    # Metadata errors detected by the registry; the catch-all for validation.
    REGISTRY_METADATA_ERROR = "XDSRegistryMetadataError"
    # Metadata errors detected by the repository (incl. hash/size mismatch with the content).
    REPOSITORY_METADATA_ERROR = "XDSRepositoryMetadataError"
    UNKNOWN_PATIENT_ID = "XDSUnknownPatientId"
    PATIENT_ID_DOES_NOT_MATCH = "XDSPatientIdDoesNotMatch"
    DUPLICATE_UNIQUE_ID_IN_REGISTRY = "XDSDuplicateUniqueIdInRegistry"
    NON_IDENTICAL_HASH = "XDSNonIdenticalHash"
    NON_IDENTICAL_SIZE = "XDSNonIdenticalSize"
    REGISTRY_DUPLICATE_UNIQUE_ID_IN_MESSAGE = "XDSRegistryDuplicateUniqueIdInMessage"
    REPOSITORY_DUPLICATE_UNIQUE_ID_IN_MESSAGE = "XDSRepositoryDuplicateUniqueIdInMessage"
    MISSING_DOCUMENT = "XDSMissingDocument"
    MISSING_DOCUMENT_METADATA = "XDSMissingDocumentMetadata"
    REGISTRY_ERROR = "XDSRegistryError"
    REPOSITORY_ERROR = "XDSRepositoryError"
    REGISTRY_NOT_AVAILABLE = "XDSRegistryNotAvailable"
    REGISTRY_BUSY = "XDSRegistryBusy"
    REPOSITORY_BUSY = "XDSRepositoryBusy"
    REGISTRY_OUT_OF_RESOURCES = "XDSRegistryOutOfResources"
    REPOSITORY_OUT_OF_RESOURCES = "XDSRepositoryOutOfResources"
    EXTRA_METADATA_NOT_SAVED = "XDSExtraMetadataNotSaved"
    STORED_QUERY_MISSING_PARAM = "XDSStoredQueryMissingParam"
    STORED_QUERY_PARAM_NUMBER = "XDSStoredQueryParamNumber"
    UNKNOWN_STORED_QUERY = "XDSUnknownStoredQuery"
    TOO_MANY_RESULTS = "XDSTooManyResults"
    RESULT_NOT_SINGLE_PATIENT = "XDSResultNotSinglePatient"
    SQL_ERROR = "XDSSqlError"
    DOCUMENT_UNIQUE_ID_ERROR = "XDSDocumentUniqueIdError"
    UNKNOWN_REPOSITORY_ID = "XDSUnknownRepositoryId"
    MISSING_HOME_COMMUNITY_ID = "XDSMissingHomeCommunityId"
    UNKNOWN_COMMUNITY = "XDSUnknownCommunity"
    UNAVAILABLE_COMMUNITY = "XDSUnavailableCommunity"
    UNRESOLVED_REFERENCE = "UnresolvedReferenceException"
    REGISTRY_DEPRECATED_DOCUMENT_ERROR = "XDSRegistryDeprecatedDocumentError"
    REFERENCES_EXIST = "ReferencesExistException"
    UNREFERENCED_OBJECT = "XDSUnreferencedObjectException"
    METADATA_MODEL = "XDSMetadataModelException"


@dataclass(frozen=True, slots=True)
class RegistryError:
    """One rs:RegistryError: a finding with its TF code, context, location and severity."""

    code: ErrorCode | str
    context: str
    location: str = ""
    severity: str = Severity.ERROR

    @property
    def code_text(self) -> str:
        return self.code.value if isinstance(self.code, ErrorCode) else self.code

    @property
    def is_error(self) -> bool:
        return self.severity == Severity.ERROR


class XdsError(Exception):
    """A failure that carries the RegistryErrors to answer with (h11 style)."""

    def __init__(self, *errors: RegistryError) -> None:
        super().__init__("; ".join(f"{e.code_text}: {e.context}" for e in errors))
        self.errors: tuple[RegistryError, ...] = errors

    @classmethod
    def of(cls, code: ErrorCode, context: str, location: str = "") -> XdsError:
        return cls(RegistryError(code, context, location))
