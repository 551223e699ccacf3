"""The names of the metadata-changing transactions a Document Registry may support as options:
ITI-57 Update Document Set (XDS Metadata Update, MU), ITI-92 Restricted Update Document Set
(RMU) and ITI-61 Register On-Demand Document Entry (On-Demand Documents), with the association
types, slots and error codes they add (xds-notes §1.1, §2.1, §3.5, §8.1 "Options").

They live here rather than in :mod:`xds.vocabulary` because no actor of the project implements
these options; only the conformance runner speaks them. The ITI-62 names are in
:mod:`conformance_tests.rmd`.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ASSOCIATION_PROPAGATION",
    "ITI57_ACTION",
    "ITI57_RESPONSE_ACTION",
    "ITI61_ACTION",
    "ITI61_RESPONSE_ACTION",
    "ITI92_ACTION",
    "ITI92_RESPONSE_ACTION",
    "METADATA_LEVEL",
    "LOGICAL_ID_PARAM",
    "MuError",
    "UPDATE_AVAILABILITY_STATUS",
    "SUBMIT_ASSOCIATION",
]

# ITI TF-2b §3.57.5 (MU); xds-notes §1.1.
ITI57_ACTION: Final = "urn:ihe:iti:2010:UpdateDocumentSet"
ITI57_RESPONSE_ACTION: Final = "urn:ihe:iti:2010:UpdateDocumentSetResponse"
# ITI TF-2b §3.92.4.1.2 (RMU: simple SOAP); the action pair as the NIST toolkit and IPF send it.
ITI92_ACTION: Final = "urn:ihe:iti:2018:RestrictedUpdateDocumentSet"
ITI92_RESPONSE_ACTION: Final = "urn:ihe:iti:2018:RestrictedUpdateDocumentSetResponse"
# ITI TF-2b §3.61 (On-Demand Documents); the response action as the NIST toolkit sends it.
ITI61_ACTION: Final = "urn:ihe:iti:2010:RegisterOnDemandDocumentEntry"
ITI61_RESPONSE_ACTION: Final = "urn:ihe:iti:2010:RegisterOnDemandDocumentResponse"

# ITI TF-3 §4.2.2 (MU association types); xds-notes §3.5.
UPDATE_AVAILABILITY_STATUS: Final = "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"
SUBMIT_ASSOCIATION: Final = "urn:ihe:iti:2010:AssociationType:SubmitAssociation"
# ITI TF-2b §3.57.4.1.3.1 (Metadata Annotations on the SubmissionSet HasMember).
ASSOCIATION_PROPAGATION: Final = "AssociationPropagation"

# ITI TF-2a §3.18.4.1.2.3.5.1 and §3.18.4.1.2.3.7.5 (Stored Query parameters added by MU).
METADATA_LEVEL: Final = "$MetadataLevel"
LOGICAL_ID_PARAM: Final = "$XDSDocumentEntryLogicalID"


class MuError:
    """Error codes of ITI TF-3 Table 4.2.4.1-2 added by Metadata Update and RMU (xds-notes §2.1)."""

    UPDATE: Final = "XDSMetadataUpdateError"
    OPERATION: Final = "XDSMetadataUpdateOperationError"
    VERSION: Final = "XDSMetadataVersionError"
    PATIENT_ID_RECONCILIATION: Final = "XDSPatientIDReconciliationError"
    IDENTIFIER: Final = "XDSMetadataIdentifierError"
    UNMODIFIABLE: Final = "UnmodifiableMetadataError"
