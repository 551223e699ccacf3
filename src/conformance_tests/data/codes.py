"""The coded values our test data uses, all from the NIST affinity-domain code set (codes.xml).

A Connectathon registry validates codes against that set (xds-notes §4 item 3), so test data that
should be accepted uses only these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["Coded"]


@dataclass(frozen=True, slots=True)
class Coded:
    """A coded value: code, coding scheme, display name (ITI TF-3 §4.2.3.1.2)."""

    code: str
    scheme: str
    display: str

    def query_value(self) -> str:
        """The ``CODE^^SCHEME`` form stored queries take (ITI TF-2a §3.18.4.1.2.3.4)."""
        return f"{self.code}^^{self.scheme}"


_XDS_CLASS: Final = "1.3.6.1.4.1.19376.1.2.6.1"
_LOINC: Final = "2.16.840.1.113883.6.1"
_SNOMED: Final = "2.16.840.1.113883.6.96"
_CONFIDENTIALITY: Final = "2.16.840.1.113883.5.25"
_FORMAT: Final = "1.3.6.1.4.1.19376.1.2.3"
_DICOM_UID: Final = "1.2.840.10008.2.6.1"
_DCM: Final = "1.2.840.10008.2.16.4"
_CONNECTATHON: Final = "1.3.6.1.4.1.21367.2017.3"

# classCode
CLASS_REPORTS: Final = Coded("REPORTS", _XDS_CLASS, "Reports")
CLASS_IMAGES: Final = Coded("IMAGES", _XDS_CLASS, "Images")
CLASS_SUMMARIES: Final = Coded("SUMMARIES", _XDS_CLASS, "Summaries")
CLASS_PRIVACY_ACK: Final = Coded("57016-8", _LOINC, "Privacy Policy Acknowledgement Document")

# confidentialityCode
CONF_NORMAL: Final = Coded("N", _CONFIDENTIALITY, "normal")
CONF_RESTRICTED: Final = Coded("R", _CONFIDENTIALITY, "restricted")
CONF_VERY_RESTRICTED: Final = Coded("V", _CONFIDENTIALITY, "very restricted")

# formatCode
FORMAT_XDS_MS: Final = Coded("urn:ihe:pcc:xds-ms:2007", _FORMAT, "PCC XDS-MS")
FORMAT_XPHR: Final = Coded("urn:ihe:pcc:xphr:2007", _FORMAT, "PCC XPHR")
FORMAT_KOS: Final = Coded("1.2.840.10008.5.1.4.1.1.88.59", _DICOM_UID, "Key Object Selection Document")

# healthcareFacilityTypeCode
HCFT_HOSPITAL: Final = Coded("22232009", _SNOMED, "Hospital")
HCFT_EMERGENCY: Final = Coded("225728007", _SNOMED, "Accident and Emergency department")

# practiceSettingCode
PRACTICE_CARDIOLOGY: Final = Coded("309915006", _SNOMED, "Cardiology department (environment)")
PRACTICE_GENERAL: Final = Coded("309927009", _SNOMED, "General medical department (environment)")

# typeCode
TYPE_CONSULTATION: Final = Coded("11488-4", _LOINC, "Consultation Note")
TYPE_IMAGING: Final = Coded("18748-4", _LOINC, "Diagnostic imaging study")
TYPE_SUMMARY: Final = Coded("34133-9", _LOINC, "Summary of episode note")

# eventCodeList (acquisition modalities, DICOM CID 29)
EVENT_CT: Final = Coded("CT", _DCM, "Computed Tomography")
EVENT_MR: Final = Coded("MR", _DCM, "Magnetic Resonance")
EVENT_US: Final = Coded("US", _DCM, "Ultrasound")

# SubmissionSet contentTypeCode
CONTENT_HOSPITAL: Final = Coded("22232009", _SNOMED, "Hospital")

# Folder codeList
FOLDER_REFERRALS: Final = Coded("Referrals", _CONNECTATHON, "Referrals")
FOLDER_ALLERGY: Final = Coded("Allergy_Treatments", _CONNECTATHON, "Allergy Treatments")

# associationDocumentation (relationship associations only)
DOC_ADDITIONAL_INFO: Final = Coded("Additional_Information", _CONNECTATHON, "Additional Information")
