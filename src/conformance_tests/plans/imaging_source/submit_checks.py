"""Judging a RAD-68 request: its packaging and envelope, and the DocumentEntry of its manifest,
read with the runner's own XPath and the XDS.b schemas (xds-notes §1.3, §1.4, §3.3, §7.3).

Public API::

    judge_envelope(provided, *, schemas) -> list[Check]
    judge_metadata(provided, study, *, affinity_domain) -> list[Check]
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Final

from lxml import etree

from conformance_tests.data.dicom import TestStudy
from conformance_tests.model import Check
from conformance_tests.plans.imaging_source.kos_checks import find_manifest
from conformance_tests.plans.imaging_source.provided import ProvidedRequest, cx_components, slot_values
from conformance_tests.schemas import SchemaSet
from xds.vocabulary import (
    DICOM_DCM_OID,
    DICOM_UID_REGISTRY_OID,
    KOS_SOP_CLASS_UID,
    MEDIA_SOAP12,
    MEDIA_XOP,
    MIME_DICOM,
    NS_RIM,
    NS_SOAP12,
    NS_WSA,
    NS_XDS,
    Action,
    IdScheme,
    ObjectType,
    ReferenceIdType,
    Scheme,
    SlotName,
)

__all__ = ["judge_envelope", "judge_metadata"]

_MTOM_RULE: Final = (
    "RAD TF-3 §4.68.4.1.2 (MTOM/XOP, as ITI TF-2b §3.41.4.1.2 and ITI TF-2x Appendix V.5); xds-notes §1.4, §9 item 1"
)
_WSA_RULE: Final = "ITI TF-2x Appendix V.3.2 (WS-Addressing headers); xds-notes §1.3"
_BODY: Final = f"{{{NS_XDS}}}ProvideAndRegisterDocumentSetRequest"
_DE_RULE: Final = "RAD TF-3 §4.68.4.1.2.3.2 (manifest DocumentEntry); xds-notes §7.3"
# ITI TF-3 §4.2.3.1.7 (OID): digits and dots, no leading zeros, at most 64 characters.
_OID: Final = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+\Z")
# ITI TF-3 Table 4.3.1-3: DocumentEntry attributes an XDS Document Source must send (R).
_REQUIRED_CODES: Final = {
    "classCode": Scheme.DE_CLASS_CODE,
    "confidentialityCode": Scheme.DE_CONFIDENTIALITY_CODE,
    "healthcareFacilityTypeCode": Scheme.DE_HEALTHCARE_FACILITY_TYPE_CODE,
    "practiceSettingCode": Scheme.DE_PRACTICE_SETTING_CODE,
    "typeCode": Scheme.DE_TYPE_CODE,
}
_REQUIRED_SLOTS: Final = (SlotName.CREATION_TIME, SlotName.LANGUAGE_CODE)


def _check(name: str, problems: Sequence[str], rule: str, ok: str) -> Check:
    return Check(name, not problems, "; ".join(problems[:6]) + (" ..." if len(problems) > 6 else "") or ok, rule)


def _media(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def _param(content_type: str, name: str) -> str:
    for piece in content_type.split(";")[1:]:
        key, _, value = piece.partition("=")
        if key.strip().lower() == name:
            return value.strip().strip('"')
    return ""


# -- packaging and envelope ----------------------------------------------------------------------
def _packaging(provided: ProvidedRequest) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"mtom": [], "root": [], "documents": []}
    if provided.media_type != "multipart/related":
        found["mtom"].append(f"Content-Type {provided.message.content_type or '(none)'}, expected multipart/related")
        return found
    if provided.params.get("type", "").lower() != MEDIA_XOP:
        found["mtom"].append(f"type={provided.params.get('type') or '(none)'}, expected {MEDIA_XOP}")
    if MEDIA_SOAP12 not in provided.params.get("start-info", "").lower():
        found["mtom"].append(f"start-info={provided.params.get('start-info') or '(none)'}, expected {MEDIA_SOAP12}")
    start = provided.params.get("start")
    if provided.root is None:
        found["root"].append(f"start={start} names no part" if start else "no MIME part")
    else:
        media = _media(provided.root.content_type)
        inner = _param(provided.root.content_type, "type").lower()
        if media != MEDIA_XOP or inner != MEDIA_SOAP12:
            found["root"].append(f"root part Content-Type {provided.root.content_type or '(none)'}, "
                                 f"expected {MEDIA_XOP}; type=\"{MEDIA_SOAP12}\"")  # fmt: skip
    found["documents"] += provided.document_problems
    return found


def _envelope(provided: ProvidedRequest) -> dict[str, list[str]]:
    message = provided.message
    found: dict[str, list[str]] = {"soap": [], "action": [], "message_id": [], "must": [], "body": []}
    if message.soap_version != "1.2":
        found["soap"].append(f"SOAP {message.soap_version}" if message.soap_version else (message.problem or "no envelope"))
        return found
    if len(message.actions) != 1:
        found["action"].append(f"{len(message.actions)} wsa:Action headers")
    elif message.actions[0] != Action.ITI41:
        found["action"].append(f"wsa:Action {message.actions[0]!r}, expected {Action.ITI41}")
    if any(ns != NS_WSA for ns in message.wsa_namespaces):
        found["action"].append(f"WS-Addressing headers in {sorted(message.wsa_namespaces)}")
    if not message.message_id:
        found["message_id"].append("no wsa:MessageID")
    if not message.must_understand:
        found["must"].append(f"no WS-Addressing header with {NS_SOAP12} mustUnderstand=\"true\"")
    if message.body is None or message.body.tag != _BODY:
        found["body"].append(f"Body holds {message.body.tag if message.body is not None else 'nothing'}")
    return found


def _pairing(provided: ProvidedRequest) -> list[str]:
    entries = [e.get("id", "") for e in provided.entries]
    documents = list(provided.documents)
    problems = [f"DocumentEntry {e} has no xds:Document (XDSMissingDocument)" for e in entries if e not in documents]
    problems += [f"xds:Document {d} has no DocumentEntry (XDSMissingDocumentMetadata)" for d in documents if d not in entries]
    if len(documents) != len(set(documents)):
        problems.append("two xds:Document elements share an id")
    return problems


def judge_envelope(provided: ProvidedRequest, *, schemas: SchemaSet | None) -> list[Check]:
    """MTOM/XOP packaging, SOAP 1.2, WS-Addressing, the Body element and its XSD validity."""
    packaging = _packaging(provided)
    envelope = _envelope(provided)
    checks = [
        _check("MTOM request", packaging["mtom"], _MTOM_RULE, f"multipart/related; type={MEDIA_XOP}"),
        _check("MTOM root part", packaging["root"], _MTOM_RULE + "; XOP §4.1; RFC 2387 (start)",
               f"{MEDIA_XOP}; type=\"{MEDIA_SOAP12}\""),
        _check("documents as XOP parts", packaging["documents"], _MTOM_RULE + "; XOP §3 (xop:Include)",
               f"{len(provided.documents)} document(s) resolved"),
        _check("SOAP 1.2 envelope", envelope["soap"], "ITI TF-2x Appendix V.3.1 (SOAP 1.2 only); xds-notes §1.3", "1.2"),
        _check("wsa:Action", envelope["action"], f"RAD TF-3 §4.68.4.1.2; {_WSA_RULE}", Action.ITI41),
        _check("wsa:MessageID", envelope["message_id"], _WSA_RULE, "present"),
        _check("mustUnderstand", envelope["must"], _WSA_RULE, "on a WS-Addressing header"),
        _check("Body", envelope["body"], "RAD TF-3 §4.68.4.1.2 (the ITI-41 request message)", _BODY),
        _check("Document per DocumentEntry", _pairing(provided), "ITI TF-2b §3.41.4.1.2 (one xds:Document per "
               "DocumentEntry, matched by id); xds-notes §5", f"{len(provided.entries)} pair(s)"),
    ]  # fmt: skip
    infoset = provided.infoset()
    if schemas is None:
        checks.append(Check("XSD", False, "no schema directory given (--schemas)", "setup"))
    elif infoset is not None and infoset.tag == _BODY:
        errors = schemas.validate(infoset)
        checks.append(_check("XSD", errors, "ITI TF-2b §3.41.4.1.2 (XDS.b schemas: XDS.b_DocumentRepository.xsd, "
                             "ebRS 3.0 lcm/rim)", "valid"))  # fmt: skip
    return checks


# -- the manifest's DocumentEntry ----------------------------------------------------------------
def _codes(entry: etree._Element, scheme: str) -> list[tuple[str, list[str]]]:
    """(code, codingScheme values) of every Classification of ``scheme`` (ITI TF-3 §4.2.3.1.2)."""
    return [
        (c.get("nodeRepresentation", ""), slot_values(c, SlotName.CODING_SCHEME))
        for c in entry.iterfind(f"{{{NS_RIM}}}Classification")
        if c.get("classificationScheme") == scheme
    ]


def _identifier(entry: etree._Element, scheme: str) -> list[str]:
    return [
        (x.get("value") or "").strip()
        for x in entry.iterfind(f"{{{NS_RIM}}}ExternalIdentifier")
        if x.get("identificationScheme") == scheme
    ]


def _authority(component: str) -> str | None:
    """The OID of an HD ``&OID&ISO`` (CX.4, ITI TF-3 §4.2.3.1.7), or None when not that form."""
    subs = component.split("&")
    if len(subs) == 3 and subs[2] == "ISO" and _OID.match(subs[1]) and len(subs[1]) <= 64:
        return subs[1]
    return None


def _format_code(entry: etree._Element) -> list[str]:
    codes = _codes(entry, Scheme.DE_FORMAT_CODE)
    if len(codes) != 1:
        return [f"{len(codes)} formatCode classifications"]
    code, schemes = codes[0]
    problems = [] if code == KOS_SOP_CLASS_UID else [f"formatCode {code!r}, expected {KOS_SOP_CLASS_UID}"]
    if schemes != [DICOM_UID_REGISTRY_OID]:
        problems.append(f"codingScheme {schemes}, expected {DICOM_UID_REGISTRY_OID}")
    return problems


def _study_reference(entry: etree._Element, study: TestStudy) -> list[str]:
    values = [v for v in slot_values(entry, SlotName.REFERENCE_ID_LIST)
              if cx_components(v)[4] == ReferenceIdType.STUDY_INSTANCE_UID]  # fmt: skip
    if len(values) != 1:
        return [f"{len(values)} referenceIdList values of type {ReferenceIdType.STUDY_INSTANCE_UID}"]
    parts = cx_components(values[0])
    # ITI TF-3 Table 4.2.3.1.7-2 (CXi): for a Study Instance UID only CXi.1 and CXi.5 are present.
    problems = [] if parts[0] == study.study_uid else [f"CXi.1 {parts[0]!r}, expected {study.study_uid}"]
    if any(parts[1:4]) or len(parts) > 5:
        problems.append(f"{values[0]!r}: only CXi.1 and CXi.5 may be present (UID^^^^type)")
    return problems


def _accession_reference(entry: etree._Element, accession: str) -> list[str]:
    values = [v for v in slot_values(entry, SlotName.REFERENCE_ID_LIST) if cx_components(v)[4] == ReferenceIdType.ACCESSION]
    if len(values) != 1:
        return [f"{len(values)} referenceIdList values of type {ReferenceIdType.ACCESSION}"]
    parts = cx_components(values[0])
    problems = [] if parts[0] == accession else [f"CXi.1 {parts[0]!r}, expected the Accession Number {accession!r}"]
    # ITI TF-3 Table 4.2.3.1.7-2: an accession number that is not globally unique carries its
    # assigning authority in CXi.4 (&OID&ISO).
    if _authority(parts[3]) is None:
        problems.append(f"{values[0]!r}: CXi.4 {parts[3]!r} is not an assigning authority &OID&ISO")
    return problems


def _event_codes(entry: etree._Element, study: TestStudy) -> list[str]:
    modalities = {i.modality for i in study.instances}
    codes = [(code, schemes) for code, schemes in _codes(entry, Scheme.DE_EVENT_CODE) if schemes == [DICOM_DCM_OID]]
    got = [code for code, _ in codes]
    problems = []
    if set(got) != modalities:
        problems.append(f"modality codes {sorted(got) or 'none'}, the study has {sorted(modalities)}")
    if len(got) != len(set(got)):
        problems.append("a modality code is listed twice")
    if "KO" in got:
        problems.append("KO is the manifest's modality, not an acquisition modality")
    return problems


def _hash_size(entry: etree._Element, data: bytes | None) -> list[str]:
    if data is None:
        return ["no document content to compare"]
    problems = []
    hashes, sizes = slot_values(entry, SlotName.HASH), slot_values(entry, SlotName.SIZE)
    digest = hashlib.sha1(data).hexdigest()
    if hashes and [h.lower() for h in hashes] != [digest]:
        problems.append(f"hash {hashes}, the part's SHA-1 is {digest}")
    if sizes and sizes != [str(len(data))]:
        problems.append(f"size {sizes}, the part has {len(data)} bytes")
    return problems


def _patient(entry: etree._Element, provided: ProvidedRequest, affinity_domain: str) -> list[str]:
    values = _identifier(entry, IdScheme.DE_PATIENT_ID)
    if len(values) != 1:
        return [f"{len(values)} patientId ExternalIdentifiers"]
    parts = cx_components(values[0])
    problems = []
    # ITI TF-3 §4.2.3.2.16: patientId is a CX with only CX.1 and CX.4 (&OID&ISO).
    if not parts[0] or any(parts[1:3]) or any(parts[4:]) or _authority(parts[3]) is None:
        problems.append(f"patientId {values[0]!r} is not id^^^&OID&ISO")
    elif _authority(parts[3]) != affinity_domain:
        problems.append(f"patientId {values[0]!r} is not in the affinity domain {affinity_domain}")
    for package in provided.submission_sets:
        ss = _identifier(package, IdScheme.SS_PATIENT_ID)
        if ss != values:
            problems.append(f"SubmissionSet patientId {ss}, DocumentEntry {values}")
    for other in provided.entries:
        if other is not entry and _identifier(other, IdScheme.DE_PATIENT_ID) != values:
            problems.append(f"DocumentEntry {other.get('id')} has another patientId")
    if len(provided.submission_sets) != 1:
        problems.append(f"{len(provided.submission_sets)} SubmissionSets")
    return problems


def _source_patient(entry: etree._Element, patient_id: str) -> list[str]:
    values = slot_values(entry, SlotName.SOURCE_PATIENT_ID)
    if len(values) != 1:
        return [f"{len(values)} sourcePatientId values"]
    parts = cx_components(values[0])
    # RAD TF-3 §4.68.4.1.2.3.2: the DICOM Patient ID with its issuer.
    return [] if parts[0] == patient_id else [f"sourcePatientId {values[0]!r}, the DICOM Patient ID is {patient_id!r}"]


def _required(entry: etree._Element) -> list[str]:
    missing = [name for name, scheme in _REQUIRED_CODES.items() if not _codes(entry, scheme)]
    missing += [name for name in _REQUIRED_SLOTS if not slot_values(entry, name)]
    return [f"missing {', '.join(missing)}"] if missing else []


def judge_metadata(provided: ProvidedRequest, study: TestStudy, *, affinity_domain: str) -> list[Check]:
    """The DocumentEntry of the manifest against RAD TF-3 §4.68.4.1.2.3.2 and the KOS it holds."""
    manifest = find_manifest(provided)
    entry = manifest.entry
    if entry is None:
        return [Check("manifest DocumentEntry", False, manifest.problem, _DE_RULE)]
    images = study.instances[0].dataset()
    kos_uid = str(manifest.dataset.get("SOPInstanceUID", "")) if manifest.dataset is not None else None
    unique_ids = _identifier(entry, IdScheme.DE_UNIQUE_ID)
    if kos_uid is None:
        unique = ["the manifest cannot be read, so its SOP Instance UID is unknown"]
    else:
        unique = [] if unique_ids == [kos_uid] else [f"uniqueId {unique_ids}, the KOS SOP Instance UID is {kos_uid}"]
    mime = entry.get("mimeType", "")
    object_type = entry.get("objectType", "")
    return [
        _check("mimeType", [] if mime == MIME_DICOM else [f"mimeType {mime!r}"], _DE_RULE, MIME_DICOM),
        _check("objectType", [] if object_type == ObjectType.STABLE_DOCUMENT_ENTRY else [f"objectType {object_type!r}"],
               "ITI TF-3 §4.2.3.2.14; xds-notes §7.3 (Stable)", "Stable"),
        _check("formatCode", _format_code(entry), f"{_DE_RULE}; ITI TF-3 §4.2.3.2.9",
               f"{KOS_SOP_CLASS_UID} ({DICOM_UID_REGISTRY_OID})"),
        _check("uniqueId", unique, f"{_DE_RULE} (uniqueId = KOS SOP Instance UID); xds-notes §9 item 13",
               kos_uid or ""),
        _check("referenceIdList studyInstanceUID", _study_reference(entry, study),
               f"{_DE_RULE}; ITI TF-3 §4.2.3.2.28 and Table 4.2.3.1.7-2 (CXi)", f"{study.study_uid}^^^^"
               f"{ReferenceIdType.STUDY_INSTANCE_UID}"),
        _check("referenceIdList accession", _accession_reference(entry, str(images.get("AccessionNumber", ""))),
               f"{_DE_RULE}; ITI TF-3 §4.2.3.2.28 and Table 4.2.3.1.7-2 (CXi); xds-notes §9 item 13",
               ", ".join(v for v in slot_values(entry, SlotName.REFERENCE_ID_LIST)
                         if cx_components(v)[4] == ReferenceIdType.ACCESSION)),
        _check("eventCodeList modalities", _event_codes(entry, study),
               f"{_DE_RULE} (one code per acquisition modality, DICOM CID 29, {DICOM_DCM_OID}); xds-notes §9 item 13",
               ", ".join(sorted({i.modality for i in study.instances}))),
        _check("hash and size", _hash_size(entry, manifest.data), "ITI TF-3 §4.2.3.2.12, §4.2.3.2.22 (SHA-1 and "
               "length of the document as sent); xds-notes §1.4",
               f"hash {slot_values(entry, SlotName.HASH) or 'absent'}, size {slot_values(entry, SlotName.SIZE) or 'absent'}"
               " match the MTOM part"),
        _check("patientId", _patient(entry, provided, affinity_domain), "ITI TF-3 §4.2.3.2.16, §4.1.4 (one patient "
               "per submission); RAD TF-3 §4.68.4.1.2.3.2 (affinity-domain patient ID); xds-notes §7.3",
               f"{', '.join(_identifier(entry, IdScheme.DE_PATIENT_ID))}, the same in every object"),
        _check("sourcePatientId", _source_patient(entry, str(images.get("PatientID", ""))),
               f"{_DE_RULE}; ITI TF-3 §4.2.3.2.24", str(images.get("PatientID", ""))),
        _check("required attributes", _required(entry), "ITI TF-3 §4.3.1 (Table 4.3.1-3, XDS Document Source: "
               "R attributes); xds-notes §3.3; NIST 11998a", "classCode, confidentialityCode, "
               "healthcareFacilityTypeCode, practiceSettingCode, typeCode, creationTime, languageCode"),
    ]  # fmt: skip
