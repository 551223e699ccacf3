"""ebRIM 3.0 element names and the XDS mapping tables shared by the codec and validation.

The tables say, per object kind, which slot, classification scheme and external-identifier
scheme maps to which model attribute (ITI TF-3 Tables 4.2.3.2-1, 4.2.3.3-1, 4.2.3.4-1 and
§4.2.2). Names not in a kind's slot tables are extra slots (kept verbatim in ``extra_slots``).
"""

from __future__ import annotations

from typing import Final

from xds.vocabulary import (
    NS_LCM,
    NS_QUERY,
    NS_RIM,
    NS_RS,
    IdScheme,
    Scheme,
    SlotName,
)

# -- element and attribute names in Clark notation, computed once ---------------------------------
_R = f"{{{NS_RIM}}}"
Q_REGISTRY_OBJECT_LIST: Final = _R + "RegistryObjectList"
Q_EXTRINSIC_OBJECT: Final = _R + "ExtrinsicObject"
Q_REGISTRY_PACKAGE: Final = _R + "RegistryPackage"
Q_ASSOCIATION: Final = _R + "Association"
Q_CLASSIFICATION: Final = _R + "Classification"
Q_EXTERNAL_IDENTIFIER: Final = _R + "ExternalIdentifier"
Q_OBJECT_REF: Final = _R + "ObjectRef"
Q_IDENTIFIABLE: Final = _R + "Identifiable"
Q_SLOT: Final = _R + "Slot"
Q_VALUE_LIST: Final = _R + "ValueList"
Q_VALUE: Final = _R + "Value"
Q_NAME: Final = _R + "Name"
Q_DESCRIPTION: Final = _R + "Description"
Q_LOCALIZED_STRING: Final = _R + "LocalizedString"
Q_VERSION_INFO: Final = _R + "VersionInfo"
Q_SUBMIT_OBJECTS_REQUEST: Final = f"{{{NS_LCM}}}SubmitObjectsRequest"
Q_REGISTRY_RESPONSE: Final = f"{{{NS_RS}}}RegistryResponse"
Q_REGISTRY_ERROR_LIST: Final = f"{{{NS_RS}}}RegistryErrorList"
Q_REGISTRY_ERROR: Final = f"{{{NS_RS}}}RegistryError"
Q_ADHOC_QUERY_RESPONSE: Final = f"{{{NS_QUERY}}}AdhocQueryResponse"

RIM_NSMAP: Final = {"rim": NS_RIM}
LCM_NSMAP: Final = {"lcm": NS_LCM, "rim": NS_RIM}

# ebRIM 2.1 (XDS.a) namespaces are recognised only to be refused (ITI TF-3 §4.1: XDS.b is ebRIM 3.0).
EBRIM21_NAMESPACES: Final = frozenset(
    {
        "urn:oasis:names:tc:ebxml-regrep:rim:xsd:2.1",
        "urn:oasis:names:tc:ebxml-regrep:registry:xsd:2.1",
        "urn:oasis:names:tc:ebxml-regrep:query:xsd:2.1",
    }
)

# ebRIM 3.0 rim.xsd: LongName (Slot Value, ExternalIdentifier value) and FreeFormText limits.
LONG_NAME_MAX: Final = 256
FREE_FORM_TEXT_MAX: Final = 1024

# -- slots ----------------------------------------------------------------------------------------
# ITI TF-3 Table 4.2.3.2-1: single-valued and multi-valued DocumentEntry slots -> attribute.
DE_SINGLE_SLOTS: Final = {
    SlotName.CREATION_TIME: "creation_time",
    SlotName.HASH: "hash",
    SlotName.SIZE: "size",
    SlotName.LANGUAGE_CODE: "language_code",
    SlotName.LEGAL_AUTHENTICATOR: "legal_authenticator",
    SlotName.REPOSITORY_UNIQUE_ID: "repository_unique_id",
    SlotName.SERVICE_START_TIME: "service_start_time",
    SlotName.SERVICE_STOP_TIME: "service_stop_time",
    SlotName.SOURCE_PATIENT_ID: "source_patient_id",
    SlotName.URI: "uri",
    SlotName.DOCUMENT_AVAILABILITY: "document_availability",
}
DE_MULTI_SLOTS: Final = {
    SlotName.SOURCE_PATIENT_INFO: "source_patient_info",
    SlotName.REFERENCE_ID_LIST: "reference_ids",
}
# ITI TF-3 Table 4.2.3.3-1.
SS_SINGLE_SLOTS: Final = {SlotName.SUBMISSION_TIME: "submission_time"}
SS_MULTI_SLOTS: Final = {SlotName.INTENDED_RECIPIENT: "intended_recipients"}
# ITI TF-3 Table 4.2.3.4-1.
FD_SINGLE_SLOTS: Final = {SlotName.LAST_UPDATE_TIME: "last_update_time"}
FD_MULTI_SLOTS: Final[dict[str, str]] = {}
# ITI TF-3 §4.2.2.1.1.
ASSOCIATION_SINGLE_SLOTS: Final = {SlotName.SUBMISSION_SET_STATUS: "submission_set_status"}
ASSOCIATION_MULTI_SLOTS: Final[dict[str, str]] = {}

# ITI TF-3 §4.2.3.1.4: author sub-attributes; authorPerson is single-valued.
AUTHOR_MULTI_SLOTS: Final = {
    SlotName.AUTHOR_INSTITUTION: "institutions",
    SlotName.AUTHOR_ROLE: "roles",
    SlotName.AUTHOR_SPECIALTY: "specialties",
    SlotName.AUTHOR_TELECOMMUNICATION: "telecommunications",
}

# -- classifications ------------------------------------------------------------------------------
# scheme -> (attribute, multi-valued). ITI TF-3 Tables 4.2.3.2-1, 4.2.3.3-1, 4.2.3.4-1, §4.2.2.
DE_CODE_SCHEMES: Final = {
    Scheme.DE_CLASS_CODE: ("class_code", False),
    Scheme.DE_CONFIDENTIALITY_CODE: ("confidentiality_codes", True),
    Scheme.DE_EVENT_CODE: ("event_codes", True),
    Scheme.DE_FORMAT_CODE: ("format_code", False),
    Scheme.DE_HEALTHCARE_FACILITY_TYPE_CODE: ("healthcare_facility_type_code", False),
    Scheme.DE_PRACTICE_SETTING_CODE: ("practice_setting_code", False),
    Scheme.DE_TYPE_CODE: ("type_code", False),
}
SS_CODE_SCHEMES: Final = {Scheme.SS_CONTENT_TYPE_CODE: ("content_type_code", False)}
FD_CODE_SCHEMES: Final = {Scheme.FD_CODE_LIST: ("codes", True)}
ASSOCIATION_CODE_SCHEMES: Final = {Scheme.ASSOCIATION_DOCUMENTATION: ("documentation", True)}

# attribute -> the codes.xml CodeType name (vocabulary.CODE_SCHEMES keys), for code-set checks.
CODE_ATTRIBUTE_NAMES: Final = {
    "class_code": "classCode",
    "confidentiality_codes": "confidentialityCode",
    "event_codes": "eventCodeList",
    "format_code": "formatCode",
    "healthcare_facility_type_code": "healthcareFacilityTypeCode",
    "practice_setting_code": "practiceSettingCode",
    "type_code": "typeCode",
    "content_type_code": "contentTypeCode",
    "codes": "folderCodeList",
    "documentation": "associationDocumentation",
}

# -- external identifiers -------------------------------------------------------------------------
DE_ID_SCHEMES: Final = {IdScheme.DE_PATIENT_ID: "patient_id", IdScheme.DE_UNIQUE_ID: "unique_id"}
SS_ID_SCHEMES: Final = {
    IdScheme.SS_PATIENT_ID: "patient_id",
    IdScheme.SS_SOURCE_ID: "source_id",
    IdScheme.SS_UNIQUE_ID: "unique_id",
}
FD_ID_SCHEMES: Final = {IdScheme.FD_PATIENT_ID: "patient_id", IdScheme.FD_UNIQUE_ID: "unique_id"}

# urn:ihe: slot names the TF defines (any other urn:ihe: name is an error, ITI TF-3 §4.2.3.1.5? no:
# extra metadata must not use the urn:ihe: prefix, ITI TF-3 §4.1.14).
KNOWN_IHE_SLOT_NAMES: Final = frozenset({SlotName.REFERENCE_ID_LIST})
