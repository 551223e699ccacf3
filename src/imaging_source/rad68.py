"""RAD-68 Provide and Register Imaging Document Set: the XDS metadata of a shared exam (sans-I/O).

One SubmissionSet holds the exam's KOS manifest and, when the exam has a final report, the report
as a second DocumentEntry (text/plain or PDF), as the RSNA Edge Server sent both per study
(rsna-image-share §2.7). The manifest's DocumentEntry follows RAD TF-3 §4.68.4.1.2.3.2
(xds-notes §7.3):

* mimeType ``application/dicom``; formatCode the KOS SOP Class (1.2.840.10008.5.1.4.1.1.88.59,
  DICOM UID Registry); uniqueId **the KOS SOP Instance UID**;
* eventCodeList: one DCM code per acquisition modality present (CID 29; never ``KO``) and the
  anatomic regions (CID 4, SNOMED CT) of the Body Part Examined of its series;
* referenceIdList: the Accession Number with its issuer (``...^urn:ihe:iti:xds:2013:accession``)
  and the Study Instance UID (``...^urn:ihe:iti:xds:2016:studyInstanceUID``);
* typeCode from the Procedure Code Sequence when the affinity domain knows the code, else the
  configured default; serviceStartTime from Study Date and Time; creationTime the KOS Content
  Date and Time;
* sourcePatientId / sourcePatientInfo from the DICOM patient; patientId the affinity-domain
  patient ID given by the configured :class:`PatientMapping`.

Every code comes from the affinity domain (``codes.xml``) when one is loaded: configured defaults
are checked at start (:func:`resolve_codes` raises), derived event codes not in the domain are
left out.

Public API::

    PatientMapping(affinity_oid, rule="{patient_id}", local_oid="")
        .affinity_patient_id(patient_id, issuer) -> str
        .source_patient_id(patient_id, issuer) -> str
    CodeChoices (frozen dataclass of Codes), resolve_codes(settings_values, codes) -> CodeChoices
    parse_code(text) -> Code                       # "CODE^^SCHEME"
    DocumentFacts(unique_id, mime_type, sha1, size, creation_time)
    ExamFacts(study, modalities, body_parts, report_final_time=None)
    event_codes(modalities, body_parts, codes) -> list[Code]
    type_code(study, codes, default) -> Code
    build_submission(exam, *, manifest, report, submission_uid, source_id, submission_time,
                     mapping, choices, codes=None, ...) -> Submission
    MANIFEST_ID, REPORT_ID, SUBMISSION_SET_ID
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from imaging_source.model import StudyRecord
from xds.metadata import hl7types as hl7
from xds.metadata.model import Association, Author, Code, DocumentEntry, Submission, SubmissionSet
from xds.metadata.validation_rules import CodeValidator
from xds.vocabulary import (
    DICOM_DCM_OID,
    DICOM_UID_REGISTRY_OID,
    KOS_SOP_CLASS_UID,
    MIME_DICOM,
    AssociationType,
    ReferenceIdType,
    SubmissionSetStatus,
)

__all__ = [
    "MANIFEST_ID",
    "REPORT_ID",
    "SUBMISSION_SET_ID",
    "CodeChoices",
    "DocumentFacts",
    "ExamFacts",
    "PatientMapping",
    "build_submission",
    "dtm",
    "event_codes",
    "parse_code",
    "resolve_codes",
    "type_code",
]

MANIFEST_ID: Final = "Manifest"
REPORT_ID: Final = "Report"
SUBMISSION_SET_ID: Final = "SubmissionSet"

SNOMED_CT_OID: Final = "2.16.840.1.113883.6.96"
LOINC_OID: Final = "2.16.840.1.113883.6.1"
#: RAD TF-3 §4.68.4.1.2.3.2: formatCode of the manifest (xds-notes §7.3).
FORMAT_KOS: Final = Code(KOS_SOP_CLASS_UID, DICOM_UID_REGISTRY_OID, "Key Object Selection Document")
MIME_PDF: Final = "application/pdf"
MIME_TEXT: Final = "text/plain"

#: PS3.16 §8.1 Coding Scheme Designators and the OIDs XDS codes carry (PS3.16 Table 8-1).
_SCHEME_OIDS: Final = {
    "DCM": DICOM_DCM_OID,
    "LN": LOINC_OID,
    "SCT": SNOMED_CT_OID,
    "SRT": SNOMED_CT_OID,
    "SNM3": SNOMED_CT_OID,
    "I10P": "2.16.840.1.113883.6.4",
    "CPT4": "2.16.840.1.113883.6.12",
    "RADLEX": "2.16.840.1.113883.6.256",
    "RADLEX_PLAYBOOK": "2.16.840.1.113883.6.256",
}

#: Body Part Examined (0018,0015) -> anatomic region, PS3.16 Annex L (CID 4031 / CID 4), SNOMED CT.
_BODY_PARTS: Final[Mapping[str, tuple[str, str]]] = {
    "ABDOMEN": ("818981001", "Abdomen"),
    "ABDOMENPELVIS": ("818982008", "Abdomen and Pelvis"),
    "BRAIN": ("12738006", "Brain"),
    "BREAST": ("76752008", "Breast"),
    "CHEST": ("43799004", "Chest"),
    "THORAX": ("43799004", "Thorax"),
    "FOOT": ("56459004", "Foot"),
    "HAND": ("85562004", "Hand"),
    "HEAD": ("69536005", "Head"),
    "HEART": ("80891009", "Heart"),
    "HIP": ("24136001", "Hip joint"),
    "KNEE": ("72696002", "Knee"),
    "LSPINE": ("122496007", "Lumbar spine"),
    "NECK": ("45048000", "Neck"),
    "PELVIS": ("816092008", "Pelvis"),
    "SHOULDER": ("16982005", "Shoulder"),
    "SKULL": ("89546000", "Skull"),
    "SPINE": ("421060004", "Spine"),
    "TLSPINE": ("297172009", "Thoraco-lumbar spine"),
}

_CODE_TEXT: Final = re.compile(r"(?P<code>[^\^]+)\^\^(?P<scheme>[^\^]+)")


def parse_code(text: str) -> Code:
    """``CODE^^SCHEME`` (the stored-query form, ITI TF-2a §3.18.4.1.2.3.4) as a Code."""
    match = _CODE_TEXT.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a code written CODE^^SCHEME")
    return Code(match["code"], match["scheme"])


def dtm(moment: float | dt.datetime) -> str:
    """An XDS DTM in UTC to the second (ITI TF-3 Table 4.2.3.1.7-2)."""
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime.fromtimestamp(moment, dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")


@dataclass(frozen=True, slots=True)
class PatientMapping:
    """Department patient ID -> affinity-domain patient ID, and the department CX.

    ``rule`` is a format string over ``{patient_id}`` and ``{issuer}`` giving CX.1 of the
    affinity-domain ID (assigning authority ``affinity_oid``); the identity rule by default, as in
    an affinity domain whose registry is fed the hospital's MRNs. ``local_oid`` is the OID of the
    hospital's MRN assigning authority for sourcePatientId; empty = the DICOM Issuer of Patient
    ID when it is an OID.
    """

    affinity_oid: str
    rule: str = "{patient_id}"
    local_oid: str = ""

    def __post_init__(self) -> None:
        if hl7.check_oid(self.affinity_oid):
            raise ValueError(f"affinity-domain assigning authority {self.affinity_oid!r} is not an OID")
        if self.local_oid and hl7.check_oid(self.local_oid):
            raise ValueError(f"local assigning authority {self.local_oid!r} is not an OID")
        try:
            self.rule.format(patient_id="x", issuer="y")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"patient ID rule {self.rule!r} is not usable: {exc}") from None

    def affinity_patient_id(self, patient_id: str, issuer: str = "") -> str:
        """ITI TF-3 §4.2.3.2 patientId: ``ID^^^&OID&ISO``."""
        value = self.rule.format(patient_id=patient_id, issuer=issuer)
        if not value or any(c in value for c in "^&~\\|"):
            raise ValueError(f"patient ID rule gives {value!r}, not a usable CX.1")
        return f"{value}^^^&{self.affinity_oid}&ISO"

    def source_patient_id(self, patient_id: str, issuer: str = "") -> str:
        """ITI TF-3 §4.2.3.2 sourcePatientId: the department ID as a CX with ``&OID&ISO``."""
        authority = self.local_oid or (issuer if issuer and hl7.is_oid(issuer) else "")
        if not authority:
            raise ValueError(
                f"no OID for the assigning authority of patient {patient_id!r} "
                f"(Issuer of Patient ID {issuer!r}); configure the local patient ID authority"
            )
        return f"{_escape(patient_id)}^^^&{authority}&ISO"


def _escape(text: str) -> str:
    """HL7 v2 escapes (v2.5 §2.7) for a component value."""
    out = text.replace("\\", "\\E\\")
    for char, code in (("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\")):
        out = out.replace(char, code)
    return out


@dataclass(frozen=True, slots=True)
class CodeChoices:
    """The configured codes of an exam's documents (affinity domain, xds-notes §7.3)."""

    class_images: Code
    class_reports: Code
    type_default: Code
    type_report: Code
    confidentiality: Code
    healthcare_facility_type: Code
    practice_setting: Code
    content_type: Code
    format_text: Code
    format_pdf: Code


#: CodeChoices field -> codes.xml CodeType name.
_CHOICE_ATTRIBUTES: Final = {
    "class_images": "classCode",
    "class_reports": "classCode",
    "type_default": "typeCode",
    "type_report": "typeCode",
    "confidentiality": "confidentialityCode",
    "healthcare_facility_type": "healthcareFacilityTypeCode",
    "practice_setting": "practiceSettingCode",
    "content_type": "contentTypeCode",
    "format_text": "formatCode",
    "format_pdf": "formatCode",
}


def resolve_codes(values: Mapping[str, str], codes: CodeValidator | None) -> CodeChoices:
    """The configured ``CODE^^SCHEME`` texts as Codes, each checked against the affinity domain
    (ITI TF-3 §4.2.3.1.2: coded values come from the affinity domain's vocabularies) and given
    its display name from it. Raises ValueError naming every code the domain does not know."""
    chosen: dict[str, Code] = {}
    problems: list[str] = []
    for name, attribute in _CHOICE_ATTRIBUTES.items():
        code = parse_code(values[name])
        if codes is not None:
            if codes.knows(attribute) and not codes.contains(attribute, code):
                problems.append(f"{name} {code.query_form} is not a {attribute} of the affinity domain")
            display = _display(codes, attribute, code)
            code = Code(code.code, code.scheme, display or code.display or code.code)
        else:
            code = Code(code.code, code.scheme, code.display or code.code)
        chosen[name] = code
    if problems:
        raise ValueError("; ".join(problems))
    return CodeChoices(**chosen)


def _display(codes: CodeValidator | None, attribute: str, code: Code) -> str | None:
    lookup = getattr(codes, "display", None)
    return lookup(attribute, code) if callable(lookup) else None


def _domain_codes(codes: CodeValidator | None, attribute: str) -> Sequence[Code]:
    lookup = getattr(codes, "codes", None)
    return lookup(attribute) if callable(lookup) else ()


def event_codes(modalities: Iterable[str], body_parts: Iterable[str], codes: CodeValidator | None) -> list[Code]:
    """RAD TF-3 §4.68.4.1.2.3.2 eventCodeList: one DCM code per acquisition modality (CID 29),
    never ``KO``, then the anatomic regions (CID 4); with an affinity domain, only its codes."""
    out: list[Code] = []
    seen: set[tuple[str, str]] = set()

    def add(code: Code) -> None:
        if (code.code, code.scheme) in seen:
            return
        if codes is not None and codes.knows("eventCodeList"):
            if not codes.contains("eventCodeList", code):
                return
            code = Code(code.code, code.scheme, _display(codes, "eventCodeList", code) or code.display)
        seen.add((code.code, code.scheme))
        out.append(code)

    for modality in modalities:
        value = modality.strip().upper()
        if value and value != "KO":
            add(Code(value, DICOM_DCM_OID, value))
    by_display = {c.display.lower(): c for c in _domain_codes(codes, "eventCodeList") if c.scheme == SNOMED_CT_OID and c.code.isdigit()}
    for part in body_parts:
        key = re.sub(r"[^A-Z]", "", part.upper())
        if not key:
            continue
        known = _BODY_PARTS.get(key)
        if known is not None:
            add(Code(known[0], SNOMED_CT_OID, known[1]))
        elif key.lower() in by_display:
            add(by_display[key.lower()])
    return out


def type_code(study: StudyRecord, codes: CodeValidator | None, default: Code) -> Code:
    """RAD TF-3 §4.68.4.1.2.3.2: typeCode from the Procedure Code Sequence (0008,1032) when the
    affinity domain knows that code; otherwise the configured default."""
    if study.procedure_code and study.procedure_scheme:
        scheme = _SCHEME_OIDS.get(study.procedure_scheme.upper(), study.procedure_scheme)
        candidate = Code(study.procedure_code, scheme, study.procedure_meaning or study.procedure_code)
        if codes is not None and codes.knows("typeCode") and codes.contains("typeCode", candidate):
            return Code(candidate.code, candidate.scheme, _display(codes, "typeCode", candidate) or candidate.display)
        if codes is None and hl7.is_oid(scheme):
            return candidate
    return default


@dataclass(frozen=True, slots=True)
class DocumentFacts:
    """What the metadata says of one document's bytes (ITI TF-3 §4.2.3.2: hash, size)."""

    unique_id: str
    mime_type: str
    sha1: str
    size: int
    creation_time: str  # DTM


@dataclass(frozen=True, slots=True)
class ExamFacts:
    """The exam as the Edge Server stores it: study data and the series' modalities and body parts."""

    study: StudyRecord
    modalities: tuple[str, ...]
    body_parts: tuple[str, ...] = ()


def _service_start(study: StudyRecord) -> str | None:
    """RAD TF-3 §4.68.4.1.2.3.2: Study Date and Time as DTM (time cut to whole seconds)."""
    date = study.study_date.strip()
    if not (len(date) == 8 and date.isdigit()):
        return None
    digits = "".join(ch for ch in study.study_time.split(".")[0] if ch.isdigit())[:6]
    if len(digits) % 2:
        digits = digits[:-1]
    value = date + digits
    return value if hl7.is_dtm(value) else date


def _reference_ids(study: StudyRecord, *, accession_oid: str) -> list[str]:
    """ITI TF-3 §4.2.3.2.21 referenceIdList (CXi): accession with its issuer, and the Study
    Instance UID (RAD TF-3 §4.68.4.1.2.3.2).

    ITI TF-3 Table 4.2.3.1.7-2: an accession (CXi.5 ``urn:ihe:iti:xds:2013:accession``) must
    carry its assigning authority as ``&OID&ISO``; with no OID known (neither in the images'
    Issuer of Accession Number nor as ``accession_oid``) the accession is left out rather than
    sent in a form every Connectathon validator rejects (xds-notes §9)."""
    ids: list[str] = []
    if study.accession:
        issuer = study.accession_issuer if study.accession_issuer and hl7.is_oid(study.accession_issuer) else accession_oid
        if issuer and hl7.is_oid(issuer):
            ids.append(f"{_escape(study.accession)}^^^&{issuer}&ISO^{ReferenceIdType.ACCESSION}")
    ids.append(f"{study.study_uid}^^^^{ReferenceIdType.STUDY_INSTANCE_UID}")
    return ids


def _source_patient_info(study: StudyRecord, source_pid: str) -> list[str]:
    """ITI TF-3 §4.2.3.2.23 sourcePatientInfo: PID-3, -5, -7, -8 from the DICOM patient."""
    patient = study.patient
    info = [f"PID-3|{source_pid}"]
    if patient.name:
        # PS3.5 §6.2 PN and HL7 XPN share the family^given^middle^prefix^suffix order.
        info.append(f"PID-5|{patient.name.split('=')[0]}")
    if len(patient.birth_date) == 8 and patient.birth_date.isdigit():
        info.append(f"PID-7|{patient.birth_date}")
    if patient.sex.upper() in ("M", "F", "O", "U"):
        info.append(f"PID-8|{patient.sex.upper()}")
    return info


def build_submission(
    exam: ExamFacts,
    *,
    manifest: DocumentFacts,
    report: DocumentFacts | None,
    submission_uid: str,
    source_id: str,
    submission_time: str,
    mapping: PatientMapping,
    choices: CodeChoices,
    codes: CodeValidator | None = None,
    accession_oid: str = "",
    language: str = "en-US",
    author_institution: str = "",
) -> Submission:
    """The RAD-68 SubmissionSet of one exam: the KOS manifest entry and, if given, the report's."""
    study = exam.study
    patient = study.patient
    pid = mapping.affinity_patient_id(patient.patient_id, patient.issuer)
    source_pid = mapping.source_patient_id(patient.patient_id, patient.issuer)
    authors = [Author(institutions=[author_institution])] if author_institution else []
    service_start = _service_start(study)
    info = _source_patient_info(study, source_pid)
    references = _reference_ids(study, accession_oid=accession_oid)
    description = study.description or study.procedure_meaning

    ss = SubmissionSet(
        id=SUBMISSION_SET_ID,
        unique_id=submission_uid,
        source_id=source_id,
        patient_id=pid,
        submission_time=submission_time,
        content_type_code=choices.content_type,
        authors=[Author(institutions=list(a.institutions)) for a in authors],
        title=f"Imaging exam {study.accession or study.study_uid}",
    )
    entries = [
        DocumentEntry(
            id=MANIFEST_ID,
            mime_type=MIME_DICOM,  # RAD TF-3 §4.68.4.1.2.3.2
            unique_id=manifest.unique_id,  # = the KOS SOP Instance UID (xds-notes §7.3)
            patient_id=pid,
            class_code=choices.class_images,
            confidentiality_codes=[choices.confidentiality],
            event_codes=event_codes(exam.modalities, exam.body_parts, codes),
            format_code=FORMAT_KOS,
            healthcare_facility_type_code=choices.healthcare_facility_type,
            practice_setting_code=choices.practice_setting,
            type_code=type_code(study, codes, choices.type_default),
            authors=[Author(institutions=list(a.institutions)) for a in authors],
            creation_time=manifest.creation_time,
            hash=manifest.sha1,
            size=str(manifest.size),
            language_code=language,
            service_start_time=service_start,
            source_patient_id=source_pid,
            source_patient_info=list(info),
            reference_ids=list(references),
            title=f"Imaging manifest: {description}" if description else "Imaging manifest",
        )
    ]
    if report is not None:
        entries.append(
            DocumentEntry(
                id=REPORT_ID,
                mime_type=report.mime_type,
                unique_id=report.unique_id,
                patient_id=pid,
                class_code=choices.class_reports,
                confidentiality_codes=[choices.confidentiality],
                format_code=choices.format_pdf if report.mime_type == MIME_PDF else choices.format_text,
                healthcare_facility_type_code=choices.healthcare_facility_type,
                practice_setting_code=choices.practice_setting,
                type_code=choices.type_report,
                authors=[Author(institutions=list(a.institutions)) for a in authors],
                creation_time=report.creation_time,
                hash=report.sha1,
                size=str(report.size),
                language_code=language,
                service_start_time=service_start,
                source_patient_id=source_pid,
                source_patient_info=list(info),
                reference_ids=list(references),
                title=f"Radiology report: {description}" if description else "Radiology report",
            )
        )
    associations = [
        # ITI TF-3 §4.2.2.1.1: SS -> DE HasMember with SubmissionSetStatus Original.
        Association(
            id=f"HasMember-{entry.id}",
            association_type=AssociationType.HAS_MEMBER,
            source=ss.id,
            target=entry.id,
            submission_set_status=SubmissionSetStatus.ORIGINAL,
        )
        for entry in entries
    ]
    return Submission(submission_sets=[ss], document_entries=entries, associations=associations)
