"""Every ebRIM UUID, namespace, status, association type and slot name, written once.

Sources: ITI TF-3 §4.2.5 (UUIDs), ITI TF-2 Appendix V (WS-Addressing), ebRS 3.0.
"""

from __future__ import annotations

from typing import Final

# -- XML namespaces (ITI TF-2x Appendix V; ebRS 3.0) -------------------------------------------
NS_SOAP12: Final = "http://www.w3.org/2003/05/soap-envelope"
NS_SOAP11: Final = "http://schemas.xmlsoap.org/soap/envelope/"
NS_WSA: Final = "http://www.w3.org/2005/08/addressing"
NS_XOP: Final = "http://www.w3.org/2004/08/xop/include"
NS_RIM: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
NS_RS: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
NS_LCM: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
NS_QUERY: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
NS_XDS: Final = "urn:ihe:iti:xds-b:2007"
NS_XDSI: Final = "urn:ihe:rad:xdsi-b:2009"
NS_RIM21: Final = "urn:oasis:names:tc:ebxml-regrep:rim:xsd:2.1"
NS_WSSE: Final = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
)

NSMAP: Final = {
    "soap": NS_SOAP12,
    "wsa": NS_WSA,
    "xop": NS_XOP,
    "rim": NS_RIM,
    "rs": NS_RS,
    "lcm": NS_LCM,
    "query": NS_QUERY,
    "xds": NS_XDS,
    "xdsi": NS_XDSI,
}

# -- WS-Addressing (ITI TF-2x V.3.2) ----------------------------------------------------------
WSA_ANONYMOUS: Final = "http://www.w3.org/2005/08/addressing/anonymous"
WSA_FAULT_ACTION: Final = "http://www.w3.org/2005/08/addressing/fault"


class Action:
    """wsa:Action values of the transactions (ITI TF-2b §3.18.5, §3.41.5, §3.42.5, §3.43.5; RAD TF-3 §4.69)."""

    ITI18: Final = "urn:ihe:iti:2007:RegistryStoredQuery"
    ITI18_RESPONSE: Final = "urn:ihe:iti:2007:RegistryStoredQueryResponse"
    ITI41: Final = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
    ITI41_RESPONSE: Final = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse"
    ITI42: Final = "urn:ihe:iti:2007:RegisterDocumentSet-b"
    ITI42_RESPONSE: Final = "urn:ihe:iti:2007:RegisterDocumentSet-bResponse"
    ITI43: Final = "urn:ihe:iti:2007:RetrieveDocumentSet"
    ITI43_RESPONSE: Final = "urn:ihe:iti:2007:RetrieveDocumentSetResponse"
    RAD69: Final = "urn:ihe:rad:2009:RetrieveImagingDocumentSet"
    RAD69_RESPONSE: Final = "urn:ihe:iti:2007:RetrieveDocumentSetResponse"


# -- Response status (ebRS 3.0; ITI TF-3 §4.2.4.1) -------------------------------------------
class ResponseStatus:
    SUCCESS: Final = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
    FAILURE: Final = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
    PARTIAL_SUCCESS: Final = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"


class Severity:
    ERROR: Final = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
    WARNING: Final = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning"


# -- availabilityStatus (ITI TF-3 §4.2.3.2.2) ------------------------------------------------
class Status:
    APPROVED: Final = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
    DEPRECATED: Final = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
    SUBMITTED: Final = "urn:oasis:names:tc:ebxml-regrep:StatusType:Submitted"

    ALL: Final = (APPROVED, DEPRECATED)


# -- objectType (ITI TF-3 §4.2.5.2) -----------------------------------------------------------
class ObjectType:
    STABLE_DOCUMENT_ENTRY: Final = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
    ON_DEMAND_DOCUMENT_ENTRY: Final = "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248"
    REGISTRY_PACKAGE: Final = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage"
    EXTRINSIC_OBJECT: Final = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExtrinsicObject"
    CLASSIFICATION: Final = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification"
    EXTERNAL_IDENTIFIER: Final = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier"
    ASSOCIATION: Final = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Association"

    DOCUMENT_ENTRY_TYPES: Final = (STABLE_DOCUMENT_ENTRY, ON_DEMAND_DOCUMENT_ENTRY)


# -- classification nodes (ITI TF-3 §4.2.5.1) ------------------------------------------------
class Node:
    SUBMISSION_SET: Final = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
    FOLDER: Final = "urn:uuid:d9d542f3-6cc4-48b6-8870-ea235fbc94c2"


# -- classification schemes (ITI TF-3 §4.2.5.1, Table 4.2.5.1-1) ------------------------------
class Scheme:
    DE_AUTHOR: Final = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
    DE_CLASS_CODE: Final = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
    DE_CONFIDENTIALITY_CODE: Final = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
    DE_EVENT_CODE: Final = "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4"
    DE_FORMAT_CODE: Final = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
    DE_HEALTHCARE_FACILITY_TYPE_CODE: Final = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
    DE_PRACTICE_SETTING_CODE: Final = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
    DE_TYPE_CODE: Final = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
    DE_LIMITED_METADATA: Final = "urn:uuid:ab9b591b-83ab-4d03-8f5d-f93b1fb92e85"
    SS_AUTHOR: Final = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
    SS_CONTENT_TYPE_CODE: Final = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
    SS_LIMITED_METADATA: Final = "urn:uuid:5003a9db-8d8d-49e6-bf0c-990e34ac7707"
    FD_CODE_LIST: Final = "urn:uuid:1ba97051-7806-41a8-a48b-8fce7af683c5"
    FD_LIMITED_METADATA: Final = "urn:uuid:2c144a76-29a9-4b7c-af54-b25409fe7d03"
    ASSOCIATION_DOCUMENTATION: Final = "urn:uuid:abd807a3-4432-4053-87b4-fd82c643d1f3"


# -- external identifier schemes (ITI TF-3 §4.2.5.1) ------------------------------------------
class IdScheme:
    DE_PATIENT_ID: Final = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
    DE_UNIQUE_ID: Final = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
    SS_PATIENT_ID: Final = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
    SS_SOURCE_ID: Final = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
    SS_UNIQUE_ID: Final = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
    FD_PATIENT_ID: Final = "urn:uuid:f64ffdf0-4b97-4e06-b79f-a52b38ec2f8a"
    FD_UNIQUE_ID: Final = "urn:uuid:75df8f67-9973-4fbe-a900-df66cefecc5a"


# Names the ExternalIdentifiers carry on the wire (ITI TF-3 Tables 4.2.3.2-1, 4.2.3.3-1, 4.2.3.4-1).
EXTERNAL_IDENTIFIER_NAMES: Final = {
    IdScheme.DE_PATIENT_ID: "XDSDocumentEntry.patientId",
    IdScheme.DE_UNIQUE_ID: "XDSDocumentEntry.uniqueId",
    IdScheme.SS_PATIENT_ID: "XDSSubmissionSet.patientId",
    IdScheme.SS_SOURCE_ID: "XDSSubmissionSet.sourceId",
    IdScheme.SS_UNIQUE_ID: "XDSSubmissionSet.uniqueId",
    IdScheme.FD_PATIENT_ID: "XDSFolder.patientId",
    IdScheme.FD_UNIQUE_ID: "XDSFolder.uniqueId",
}


# -- association types (ITI TF-3 §4.2.2) ------------------------------------------------------
class AssociationType:
    HAS_MEMBER: Final = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
    RPLC: Final = "urn:ihe:iti:2007:AssociationType:RPLC"
    APND: Final = "urn:ihe:iti:2007:AssociationType:APND"
    XFRM: Final = "urn:ihe:iti:2007:AssociationType:XFRM"
    XFRM_RPLC: Final = "urn:ihe:iti:2007:AssociationType:XFRM_RPLC"
    SIGNS: Final = "urn:ihe:iti:2007:AssociationType:signs"
    IS_SNAPSHOT_OF: Final = "urn:ihe:iti:2010:AssociationType:IsSnapshotOf"

    RELATIONSHIPS: Final = (RPLC, APND, XFRM, XFRM_RPLC, SIGNS)
    REPLACING: Final = (RPLC, XFRM_RPLC)
    ALL: Final = (HAS_MEMBER, RPLC, APND, XFRM, XFRM_RPLC, SIGNS, IS_SNAPSHOT_OF)


# -- slot names (ITI TF-3 §4.2.3) --------------------------------------------------------------
class SlotName:
    CREATION_TIME: Final = "creationTime"
    HASH: Final = "hash"
    SIZE: Final = "size"
    LANGUAGE_CODE: Final = "languageCode"
    LEGAL_AUTHENTICATOR: Final = "legalAuthenticator"
    REPOSITORY_UNIQUE_ID: Final = "repositoryUniqueId"
    SERVICE_START_TIME: Final = "serviceStartTime"
    SERVICE_STOP_TIME: Final = "serviceStopTime"
    SOURCE_PATIENT_ID: Final = "sourcePatientId"
    SOURCE_PATIENT_INFO: Final = "sourcePatientInfo"
    URI: Final = "URI"
    DOCUMENT_AVAILABILITY: Final = "documentAvailability"
    REFERENCE_ID_LIST: Final = "urn:ihe:iti:xds:2013:referenceIdList"
    SUBMISSION_TIME: Final = "submissionTime"
    INTENDED_RECIPIENT: Final = "intendedRecipient"
    LAST_UPDATE_TIME: Final = "lastUpdateTime"
    SUBMISSION_SET_STATUS: Final = "SubmissionSetStatus"
    CODING_SCHEME: Final = "codingScheme"
    AUTHOR_PERSON: Final = "authorPerson"
    AUTHOR_INSTITUTION: Final = "authorInstitution"
    AUTHOR_ROLE: Final = "authorRole"
    AUTHOR_SPECIALTY: Final = "authorSpecialty"
    AUTHOR_TELECOMMUNICATION: Final = "authorTelecommunication"
    PREVIOUS_VERSION: Final = "PreviousVersion"
    ORIGINAL_STATUS: Final = "OriginalStatus"
    NEW_STATUS: Final = "NewStatus"

    AUTHOR_SLOTS: Final = (
        AUTHOR_PERSON,
        AUTHOR_INSTITUTION,
        AUTHOR_ROLE,
        AUTHOR_SPECIALTY,
        AUTHOR_TELECOMMUNICATION,
    )


class SubmissionSetStatus:
    """Values of the SubmissionSetStatus slot on SS→DE HasMember (ITI TF-3 §4.2.2.1.1)."""

    ORIGINAL: Final = "Original"
    REFERENCE: Final = "Reference"


# -- referenceIdList types (ITI TF-3 Table 4.2.3.2-1; RAD TF-3 4.68.4.1.2.3.2) --------------
class ReferenceIdType:
    ACCESSION: Final = "urn:ihe:iti:xds:2013:accession"
    UNIQUE_ID: Final = "urn:ihe:iti:xds:2013:uniqueId"
    ORDER: Final = "urn:ihe:iti:xds:2013:order"
    REFERRAL: Final = "urn:ihe:iti:xds:2013:referral"
    WORKFLOW_INSTANCE: Final = "urn:ihe:iti:xdw:2013:workflowInstanceId"
    STUDY_INSTANCE_UID: Final = "urn:ihe:iti:xds:2016:studyInstanceUID"


class DocumentAvailability:
    ONLINE: Final = "urn:ihe:iti:2010:DocumentAvailability:Online"
    OFFLINE: Final = "urn:ihe:iti:2010:DocumentAvailability:Offline"


# -- coded attribute names mapped to their classification schemes -----------------------------
# The attribute names are those of codes.xml (`CodeType/@name`), so a code set loads as-is.
CODE_SCHEMES: Final = {
    "classCode": Scheme.DE_CLASS_CODE,
    "confidentialityCode": Scheme.DE_CONFIDENTIALITY_CODE,
    "eventCodeList": Scheme.DE_EVENT_CODE,
    "formatCode": Scheme.DE_FORMAT_CODE,
    "healthcareFacilityTypeCode": Scheme.DE_HEALTHCARE_FACILITY_TYPE_CODE,
    "practiceSettingCode": Scheme.DE_PRACTICE_SETTING_CODE,
    "typeCode": Scheme.DE_TYPE_CODE,
    "contentTypeCode": Scheme.SS_CONTENT_TYPE_CODE,
    "folderCodeList": Scheme.FD_CODE_LIST,
    "associationDocumentation": Scheme.ASSOCIATION_DOCUMENTATION,
}
SCHEME_CODE_NAMES: Final = {scheme: name for name, scheme in CODE_SCHEMES.items()}

# -- the DICOM KOS (RAD TF-3 4.68.4.1.2.3.2) ---------------------------------------------------
KOS_SOP_CLASS_UID: Final = "1.2.840.10008.5.1.4.1.1.88.59"
DICOM_UID_REGISTRY_OID: Final = "1.2.840.10008.2.6.1"
DICOM_DCM_OID: Final = "1.2.840.10008.2.16.4"
MIME_DICOM: Final = "application/dicom"


# -- SOAP 1.2 transport: media types, roles, WS-Addressing faults, WSDL namespaces ---------------
# SOAP 1.2 Part 2 §7.1.4 (application/soap+xml); XOP §4 / MTOM §4.3 (application/xop+xml).
MEDIA_SOAP12: Final = "application/soap+xml"
MEDIA_SOAP11: Final = "text/xml"
MEDIA_XOP: Final = "application/xop+xml"
MEDIA_MULTIPART_RELATED: Final = "multipart/related"
MEDIA_OCTET_STREAM: Final = "application/octet-stream"

# SOAP 1.2 Part 1 §5.2.2: the roles an ultimate receiver plays.
SOAP12_ROLE_NEXT: Final = "http://www.w3.org/2003/05/soap-envelope/role/next"
SOAP12_ROLE_NONE: Final = "http://www.w3.org/2003/05/soap-envelope/role/none"
SOAP12_ROLE_ULTIMATE_RECEIVER: Final = "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver"

WSA_NONE: Final = "http://www.w3.org/2005/08/addressing/none"
NS_XMIME: Final = "http://www.w3.org/2005/05/xmlmime"


class WsaFault:
    """WS-Addressing 1.0 SOAP Binding §6.4 fault subcodes, in Clark notation."""

    INVALID_ADDRESSING_HEADER: Final = "{http://www.w3.org/2005/08/addressing}InvalidAddressingHeader"
    INVALID_CARDINALITY: Final = "{http://www.w3.org/2005/08/addressing}InvalidCardinality"
    MESSAGE_ADDRESSING_HEADER_REQUIRED: Final = (
        "{http://www.w3.org/2005/08/addressing}MessageAddressingHeaderRequired"
    )
    ACTION_NOT_SUPPORTED: Final = "{http://www.w3.org/2005/08/addressing}ActionNotSupported"
    DESTINATION_UNREACHABLE: Final = "{http://www.w3.org/2005/08/addressing}DestinationUnreachable"
    ENDPOINT_UNAVAILABLE: Final = "{http://www.w3.org/2005/08/addressing}EndpointUnavailable"
    ONLY_ANONYMOUS_ADDRESS_SUPPORTED: Final = (
        "{http://www.w3.org/2005/08/addressing}OnlyAnonymousAddressSupported"
    )


# WSDL 1.1 and its SOAP 1.2 binding; WS-Addressing WSDL binding (wsaw) and metadata (wsam).
NS_WSDL: Final = "http://schemas.xmlsoap.org/wsdl/"
NS_WSDL_SOAP12: Final = "http://schemas.xmlsoap.org/wsdl/soap12/"
NS_WSAW: Final = "http://www.w3.org/2006/05/addressing/wsdl"
NS_WSAM: Final = "http://www.w3.org/2007/05/addressing/metadata"
NS_XSD: Final = "http://www.w3.org/2001/XMLSchema"
SOAP_HTTP_TRANSPORT: Final = "http://schemas.xmlsoap.org/soap/http"

# -- ITI-51 Multi-Patient Stored Query (ITI TF-2b §3.51.5) -------------------------------------
ITI51_ACTION: Final = "urn:ihe:iti:2009:MultiPatientStoredQuery"
ITI51_RESPONSE_ACTION: Final = "urn:ihe:iti:2009:MultiPatientStoredQueryResponse"

# -- Security: SAML 2.0 assertions in a WS-Security header (DESIGN §4; IHE XUA, ITI TF-2b §3.40) --
NS_SAML2: Final = "urn:oasis:names:tc:SAML:2.0:assertion"
NS_DS: Final = "http://www.w3.org/2000/09/xmldsig#"
NS_XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
# OASIS WSS 1.0 utility schema (wsu:Id, wsu:Timestamp) and the WSS 1.1 extensions.
NS_WSU: Final = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
)
NS_WSSE11: Final = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"
# WSS UsernameToken Profile 1.0 §3.1: the Password/@Type values.
WSSE_PASSWORD_TEXT: Final = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"
)
WSSE_PASSWORD_DIGEST: Final = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
)
# SAML 2.0 Core §8.3.1, §8.2.2, §3.4.1.4.
SAML2_VERSION: Final = "2.0"
SAML2_NAMEID_UNSPECIFIED: Final = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
SAML2_NAMEID_ENTITY: Final = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
SAML2_CM_BEARER: Final = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
SAML2_ATTRNAME_URI: Final = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"


class GrantAttribute:
    """Attribute names of the consent-token assertion (DESIGN §4).

    The patient ID uses the XACML resource-id that IHE XUA uses for the patient (ITI TF-2b
    §3.40.4.1.2); the scope attributes are this project's own URNs.
    """

    PATIENT_ID: Final = "urn:oasis:names:tc:xacml:2.0:resource:resource-id"
    MANIFEST_UNIQUE_ID: Final = "urn:imageshare:xds:grant:manifest-unique-id"
    REPORT_UNIQUE_ID: Final = "urn:imageshare:xds:grant:report-unique-id"
    STUDY_INSTANCE_UID: Final = "urn:imageshare:xds:grant:study-instance-uid"


class WssFault:
    """WS-Security fault subcodes (OASIS WSS SOAP Message Security 1.1 §12, Tables 4 and 5), in
    Clark notation. With SOAP 1.2 they go under ``env:Code/env:Value`` = ``env:Sender``."""

    UNSUPPORTED_SECURITY_TOKEN: Final = f"{{{NS_WSSE}}}UnsupportedSecurityToken"
    UNSUPPORTED_ALGORITHM: Final = f"{{{NS_WSSE}}}UnsupportedAlgorithm"
    INVALID_SECURITY: Final = f"{{{NS_WSSE}}}InvalidSecurity"
    INVALID_SECURITY_TOKEN: Final = f"{{{NS_WSSE}}}InvalidSecurityToken"
    FAILED_AUTHENTICATION: Final = f"{{{NS_WSSE}}}FailedAuthentication"
    FAILED_CHECK: Final = f"{{{NS_WSSE}}}FailedCheck"
    SECURITY_TOKEN_UNAVAILABLE: Final = f"{{{NS_WSSE}}}SecurityTokenUnavailable"
    MESSAGE_EXPIRED: Final = f"{{{NS_WSSE}}}MessageExpired"


#: DESIGN §4: the audience the registry's token endpoint writes into the consent assertion by
#: default (SAML Core §2.5.1.4), and the name repositories and Edge Servers answer to.
CONSENT_TOKEN_AUDIENCE: Final = "urn:imageshare:xds:affinity-domain"
