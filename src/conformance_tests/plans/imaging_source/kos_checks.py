"""Judging the KOS manifest a source sent in RAD-68, parsed from its MTOM part with pydicom
(RAD TF-3 §4.68.4.1.2.1; DICOM PS3.3 §A.35.4 Key Object Selection Document IOD; xds-notes §7.2).

The manifest must be a Part 10 Key Object Selection Document titled (113030, DCM, "Manifest"),
in a series of its own, with the patient and study attributes of the images, and its Current
Requested Procedure Evidence Sequence must reference exactly the instances of the study the
runner loaded, each series with the source's repositoryUniqueId as Retrieve Location UID and a
Retrieve AE Title.

Public API::

    Manifest(entry, data, dataset, problem)      # find_manifest(provided) -> Manifest
    judge_kos(provided, study, *, source_id) -> list[Check]
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from lxml import etree
from pydicom import dcmread
from pydicom.dataset import Dataset

from conformance_tests.data.dicom import TestStudy
from conformance_tests.model import Check
from conformance_tests.plans.imaging_source.provided import ProvidedRequest
from xds.vocabulary import KOS_SOP_CLASS_UID, MIME_DICOM

__all__ = ["Manifest", "find_manifest", "judge_kos"]

_IOD: Final = "DICOM PS3.3 §A.35.4 (Key Object Selection Document IOD)"
_RAD68_KOS: Final = "RAD TF-3 §4.68.4.1.2.1 (the manifest)"
_EVIDENCE: Final = (
    f"{_RAD68_KOS}; DICOM PS3.3 §C.17.2.1 (Current Requested Procedure Evidence Sequence); xds-notes §7.2"
)
#: RAD TF-3 §4.68.4.1.2.1 / DICOM PS3.16 CID 7010: the title of an XDS-I manifest.
MANIFEST_TITLE: Final = ("113030", "DCM")
#: Attributes the manifest copies from the images (RAD TF-3 §4.68.4.1.2.1; xds-notes §7.2).
_COPIED: Final = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyInstanceUID")


@dataclass(frozen=True, slots=True, eq=False)
class Manifest:
    """The KOS of a request: its DocumentEntry, its bytes and the parsed dataset (each None
    when missing), and why it could not be found or read."""

    entry: etree._Element | None
    data: bytes | None
    dataset: Dataset | None
    problem: str = ""


def _read(data: bytes) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ds = dcmread(io.BytesIO(data))  # raises on anything that is not Part 10 (no force)
    list(ds)  # decode every element now, so a broken one is reported here
    return ds


def _is_kos(data: bytes | None) -> bool:
    if data is None:
        return False
    try:
        return str(_read(data).get("SOPClassUID", "")) == KOS_SOP_CLASS_UID
    except Exception:  # anything unreadable is simply not the manifest
        return False


def find_manifest(provided: ProvidedRequest) -> Manifest:
    """The manifest: the DocumentEntry whose document is a Key Object Selection Document, else
    the one with mimeType application/dicom (so a wrong mimeType or a broken file is still
    judged, not missed)."""
    entries = provided.entries
    by_content = [e for e in entries if _is_kos(provided.documents.get(e.get("id", "")))]
    chosen = by_content or [e for e in entries if e.get("mimeType") == MIME_DICOM]
    if len(chosen) != 1:
        return Manifest(None, None, None, f"{len(chosen)} DocumentEntries hold a KOS (or are application/dicom); "
                                           "expected exactly one manifest per study")  # fmt: skip
    entry = chosen[0]
    data = provided.documents.get(entry.get("id", ""))
    if data is None:
        return Manifest(entry, None, None, f"no document content for DocumentEntry {entry.get('id')}")
    try:
        return Manifest(entry, data, _read(data))
    except Exception as exc:  # the verdict is "not a readable Part 10 file", whatever the bytes are
        return Manifest(entry, data, None, f"{len(data)} bytes, not a readable DICOM Part 10 file: {type(exc).__name__}: {exc}")


def _check(name: str, problems: Sequence[str], rule: str, ok: str) -> Check:
    return Check(name, not problems, "; ".join(problems[:6]) + (" ..." if len(problems) > 6 else "") or ok, rule)


def _title(ds: Dataset) -> list[str]:
    items = ds.get("ConceptNameCodeSequence") or []
    if len(items) != 1:
        return [f"Concept Name Code Sequence (0040,A043) has {len(items)} items"]
    item = items[0]
    got = (str(item.get("CodeValue", "")), str(item.get("CodingSchemeDesignator", "")))
    meaning = str(item.get("CodeMeaning", ""))
    return [] if got == MANIFEST_TITLE else [f"title ({got[0]}, {got[1]}, {meaning!r}), expected (113030, DCM, 'Manifest')"]


def _copied(ds: Dataset, study: TestStudy) -> list[str]:
    images = study.instances[0].dataset()
    problems = []
    for keyword in _COPIED:
        ours, theirs = str(images.get(keyword, "")), str(ds.get(keyword, ""))
        if ours != theirs:
            problems.append(f"{keyword} {theirs!r}, the images have {ours!r}")
    return problems


def _evidence(ds: Dataset, study: TestStudy, *, source_id: str) -> dict[str, list[str]]:
    """Problems by check: the study, its series, its instances, self reference, retrieve
    location and AE title."""
    found: dict[str, list[str]] = {k: [] for k in ("study", "series", "instances", "self", "location", "ae")}
    studies = ds.get("CurrentRequestedProcedureEvidenceSequence") or []
    uids = [str(s.get("StudyInstanceUID", "")) for s in studies]
    if uids != [study.study_uid]:
        found["study"].append(f"studies referenced {uids or 'none'}, expected only {study.study_uid}")
    kos_uid, kos_series = str(ds.get("SOPInstanceUID", "")), str(ds.get("SeriesInstanceUID", ""))
    referenced_series: list[str] = []
    for study_item in studies:
        for series in study_item.get("ReferencedSeriesSequence") or []:
            series_uid = str(series.get("SeriesInstanceUID", ""))
            referenced_series.append(series_uid)
            location = str(series.get("RetrieveLocationUID", ""))
            if location != source_id:
                found["location"].append(f"series {series_uid}: Retrieve Location UID {location or '(none)'}")
            if not str(series.get("RetrieveAETitle", "")).strip():
                found["ae"].append(f"series {series_uid}: no Retrieve AE Title")
            if series_uid == kos_series:
                found["self"].append(f"the manifest's own series {series_uid} is referenced")
            expected = {i.sop_uid: i.sop_class_uid for i in study.series(series_uid)}
            got = [(str(r.get("ReferencedSOPInstanceUID", "")), str(r.get("ReferencedSOPClassUID", "")))
                   for r in series.get("ReferencedSOPSequence") or []]  # fmt: skip
            sops = [uid for uid, _ in got]
            if kos_uid in sops:
                found["self"].append(f"the manifest {kos_uid} references itself")
            missing = sorted(set(expected) - set(sops))
            extra = sorted(set(sops) - set(expected) - {kos_uid})
            if missing:
                found["instances"].append(f"series {series_uid}: {len(missing)} instance(s) missing ({', '.join(missing[:3])})")
            if extra:
                found["instances"].append(f"series {series_uid}: not in the study as loaded: {', '.join(extra[:3])}")
            if len(sops) != len(set(sops)):
                found["instances"].append(f"series {series_uid}: an instance is referenced twice")
            wrong_class = [uid for uid, cls in got if uid in expected and cls != expected[uid]]
            if wrong_class:
                found["instances"].append(f"Referenced SOP Class UID wrong for {', '.join(wrong_class[:3])}")
    if sorted(referenced_series) != sorted(study.series_uids):
        found["series"].append(f"series referenced {sorted(referenced_series)}, the study has {sorted(study.series_uids)}")
    return found


def judge_kos(provided: ProvidedRequest, study: TestStudy, *, source_id: str) -> list[Check]:
    """Every KOS check on the manifest of ``provided`` for ``study``."""
    manifest = find_manifest(provided)
    if manifest.dataset is None:
        return [Check("KOS Part 10", False, manifest.problem, f"{_RAD68_KOS}; DICOM PS3.10 §7.1; xds-notes §7.2")]
    ds = manifest.dataset
    meta = ds.file_meta
    checks = [Check("KOS Part 10", True, f"{len(manifest.data or b'')} bytes, {meta.get('TransferSyntaxUID', '')}",
                    f"{_RAD68_KOS}; DICOM PS3.10 §7.1")]  # fmt: skip
    sop_class = [f"SOP Class UID {ds.get('SOPClassUID', '(none)')}"] if ds.get("SOPClassUID") != KOS_SOP_CLASS_UID else []
    if str(meta.get("MediaStorageSOPClassUID", "")) != KOS_SOP_CLASS_UID:
        sop_class.append(f"Media Storage SOP Class UID {meta.get('MediaStorageSOPClassUID', '(none)')}")
    if str(meta.get("MediaStorageSOPInstanceUID", "")) != str(ds.get("SOPInstanceUID", "")):
        sop_class.append("Media Storage SOP Instance UID is not the SOP Instance UID")
    if ds.get("Modality") != "KO":
        sop_class.append(f"Modality {ds.get('Modality', '(none)')}, expected KO")
    images = {i.sop_uid for i in study.instances}
    new: list[str] = []
    if str(ds.get("SeriesInstanceUID", "")) in study.series_uids:
        new.append(f"the manifest is in image series {ds.get('SeriesInstanceUID')}")
    if str(ds.get("SOPInstanceUID", "")) in images or not ds.get("SOPInstanceUID"):
        new.append(f"SOP Instance UID {ds.get('SOPInstanceUID', '(none)')} is not a new one")
    evidence = _evidence(ds, study, source_id=source_id)
    checks += [
        _check("KOS SOP Class", sop_class, f"{_IOD}; RAD TF-3 §4.68.4.1.2.1; xds-notes §7.2", KOS_SOP_CLASS_UID + ", KO"),
        _check("KOS title", _title(ds), "RAD TF-3 §4.68.4.1.2.1; DICOM PS3.16 CID 7010; xds-notes §7.2",
               "(113030, DCM, Manifest)"),
        _check("KOS new series and instance", new, f"{_RAD68_KOS}; DICOM PS3.3 §C.17.6 (new series); xds-notes §7.2 "
               "(NIST: DIFFERENT from the images)", f"series {ds.get('SeriesInstanceUID')}"),
        _check("KOS patient and study", _copied(ds, study), f"{_RAD68_KOS}; xds-notes §7.2 (identical to the images)",
               ", ".join(_COPIED) + " as in the images"),
        _check("KOS evidence study", evidence["study"], _EVIDENCE, study.study_uid),
        _check("KOS evidence series", evidence["series"], _EVIDENCE, f"{len(study.series_uids)} series"),
        _check("KOS evidence instances", evidence["instances"], _EVIDENCE,
               f"exactly the {len(study.instances)} instances loaded"),
        _check("KOS no self reference", evidence["self"], f"{_EVIDENCE}; DICOM PS3.3 §C.17.2.1",
               "the manifest is not among its references"),
        _check("KOS Retrieve Location UID", evidence["location"],
               "RAD TF-3 §4.68.4.1.2.1 (Retrieve Location UID (0040,E011) = the source's repositoryUniqueId); "
               "xds-notes §7.2, §9 item 13", source_id),
        _check("KOS Retrieve AE Title", evidence["ae"], "RAD TF-3 §4.68.4.1.2.1 (Retrieve AE Title (0008,0054)); "
               "xds-notes §7.2", "present in every series"),
    ]  # fmt: skip
    return checks
