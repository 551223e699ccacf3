"""Sample-data factory: valid XDS metadata (codes from the shared affinity domain), IPF style.

Each builder returns a complete, valid object; a test changes one thing and checks one finding.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid

from xds.metadata.model import (
    Association,
    Author,
    Code,
    DocumentEntry,
    Folder,
    Slot,
    Submission,
    SubmissionSet,
)
from xds.vocabulary import AssociationType, SubmissionSetStatus

AFFINITY_OID = "1.3.6.1.4.1.21367.13.20.1000"
REPOSITORY_ID = "1.3.6.1.4.1.21367.13.40.216"
SOURCE_ID = "1.3.6.1.4.1.21367.13.80.110"

CLASS_IMAGES = Code("IMAGES", "1.3.6.1.4.1.19376.1.2.6.1", "Images")
CLASS_REPORTS = Code("REPORTS", "1.3.6.1.4.1.19376.1.2.6.1", "Reports")
CONF_N = Code("N", "2.16.840.1.113883.5.25", "normal")
CONF_R = Code("R", "2.16.840.1.113883.5.25", "restricted")
FORMAT_KOS = Code("1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1", "Key Object Selection Document")
FORMAT_XDS_MS = Code("urn:ihe:pcc:xds-ms:2007", "1.3.6.1.4.1.19376.1.2.3", "PCC XDS-MS")
HCFT = Code("35971002", "2.16.840.1.113883.6.96", "Ambulatory care site")
PRACTICE = Code("Practice-A", "1.3.6.1.4.1.21367.2017.3", "Radiology-Old")
TYPE_CONSULT = Code("11488-4", "2.16.840.1.113883.6.1", "Consultation Note")
EVENT_CT = Code("CT", "1.2.840.10008.2.16.4", "Computed Tomography")
EVENT_MR = Code("MR", "1.2.840.10008.2.16.4", "Magnetic Resonance")
CONTENT_TYPE = Code("394747008", "2.16.840.1.113883.6.96", "Health Authority")
FOLDER_CODE = Code("Referrals", "1.3.6.1.4.1.21367.2017.3", "Referrals")

_counter = itertools.count(1)


def patient_id(local: str | None = None) -> str:
    """A fresh affinity-domain patient ID (CX with only CX.1 and CX.4)."""
    return f"{local or 'P' + uuid.uuid4().hex[:10].upper()}^^^&{AFFINITY_OID}&ISO"


def oid() -> str:
    """A fresh, syntactically valid OID (2.25 + a UUID as an integer)."""
    return f"2.25.{uuid.uuid4().int}"


def document_entry(pid: str, *, id: str | None = None, content: bytes | None = None, **changes: object) -> DocumentEntry:
    body = content if content is not None else f"document {next(_counter)}".encode()
    de = DocumentEntry(
        id=id or f"Document{next(_counter):04d}",
        mime_type="text/plain",
        unique_id=oid(),
        patient_id=pid,
        class_code=CLASS_REPORTS,
        confidentiality_codes=[CONF_N],
        format_code=FORMAT_XDS_MS,
        healthcare_facility_type_code=HCFT,
        practice_setting_code=PRACTICE,
        type_code=TYPE_CONSULT,
        authors=[Author(person="^Welby^Marcus^^^Dr^MD", institutions=["Some Hospital^^^^^^^^^1.2.3.4.5.6.7.8.9.1789.45"], roles=["Attending"])],
        creation_time="20240102030405",
        hash=hashlib.sha1(body).hexdigest(),
        size=str(len(body)),
        repository_unique_id=REPOSITORY_ID,
        language_code="en-US",
        service_start_time="200412230800",
        service_stop_time="200412230801",
        source_patient_id="LOCAL-1^^^&1.2.3.4&ISO",
        source_patient_info=["PID-3|LOCAL-1^^^&1.2.3.4&ISO", "PID-5|DOE^JOHN^^^", "PID-7|19560527", "PID-8|M"],
        title="A document",
    )
    for name, value in changes.items():
        setattr(de, name, value)
    return de


def submission_set(pid: str, *, id: str = "SubmissionSet01", **changes: object) -> SubmissionSet:
    ss = SubmissionSet(
        id=id,
        unique_id=oid(),
        source_id=SOURCE_ID,
        patient_id=pid,
        submission_time="20240102030405",
        content_type_code=CONTENT_TYPE,
        authors=[Author(person="^Welby^Marcus^^^Dr^MD")],
        title="A submission",
    )
    for name, value in changes.items():
        setattr(ss, name, value)
    return ss


def folder(pid: str, *, id: str | None = None, **changes: object) -> Folder:
    fd = Folder(id=id or f"Folder{next(_counter):04d}", unique_id=oid(), patient_id=pid, codes=[FOLDER_CODE], title="A folder")
    for name, value in changes.items():
        setattr(fd, name, value)
    return fd


def has_member(source: str, target: str, *, status: str | None = SubmissionSetStatus.ORIGINAL, id: str | None = None) -> Association:
    return Association(
        id=id or f"Assoc{next(_counter):04d}",
        association_type=AssociationType.HAS_MEMBER,
        source=source,
        target=target,
        submission_set_status=status,
    )


def relationship(kind: str, source: str, target: str) -> Association:
    return Association(id=f"Assoc{next(_counter):04d}", association_type=kind, source=source, target=target)


def submission(
    pid: str,
    *,
    entries: int = 1,
    with_folder: bool = False,
    extra_slot: Slot | None = None,
) -> Submission:
    """A complete submission: one SS, ``entries`` DEs, optionally a folder holding them."""
    ss = submission_set(pid)
    des = [document_entry(pid) for _ in range(entries)]
    if extra_slot is not None:
        des[0].extra_slots.append(extra_slot)
    assocs = [has_member(ss.id, d.id) for d in des]
    fds = []
    if with_folder:
        fd = folder(pid)
        fds.append(fd)
        assocs.append(has_member(ss.id, fd.id, status=None))
        for d in des:
            inner = has_member(fd.id, d.id, status=None)
            assocs.append(inner)
            assocs.append(has_member(ss.id, inner.id, status=None))
    return Submission(submission_sets=[ss], document_entries=des, folders=fds, associations=assocs)


def replacement(pid: str, target_uuid: str, *, kind: str = AssociationType.RPLC) -> Submission:
    """A submission whose one new DE replaces (or appends to, transforms...) ``target_uuid``."""
    sub = submission(pid)
    sub.associations.append(relationship(kind, sub.document_entries[0].id, target_uuid))
    return sub


def add_to_folder(pid: str, folder_uuid: str, entry_uuid: str) -> Submission:
    """A submission that only adds an existing DE to an existing Folder (NIST 12326)."""
    ss = submission_set(pid)
    inner = has_member(folder_uuid, entry_uuid, status=None)
    return Submission(
        submission_sets=[ss],
        associations=[inner, has_member(ss.id, inner.id, status=None)],
    )
