"""Synthetic studies with real pixel data, for the demo and for trying a deployment.

The images are phantoms drawn from geometric shapes with realistic values, so window presets,
thumbnails and viewers behave as with real studies: a chest CT in Hounsfield units (air, fat,
soft tissue, lungs, contrast-filled aorta, spine) and a brain MR with T1 and T2 series (scalp,
skull, grey and white matter, ventricles). Every data set is a valid CT or MR Image Storage
instance (PS3.3 A.3 / A.4) in Explicit VR Little Endian, patient and study attributes as an
Edge Server receives them from a modality.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

__all__ = ["SyntheticPatient", "SyntheticStudy", "chest_ct", "brain_mr"]


@dataclass(frozen=True, kw_only=True)
class SyntheticPatient:
    patient_id: str = "DEMO0001"
    issuer: str = ""
    name: str = "Demo^Patient"
    birth_date: str = "19700101"
    sex: str = "F"


@dataclass(frozen=True, kw_only=True)
class SyntheticStudy:
    """What to draw: the study's identity and its size."""

    accession: str
    description: str
    study_date: str
    study_time: str = "093000"
    slices: int = 48
    size: int = 256
    study_uid: str = ""
    procedure: tuple[str, str, str] = ("", "", "")
    body_part: str = ""

    def uid(self) -> str:
        return self.study_uid or generate_uid(entropy_srcs=[self.accession, self.study_date, "study"])


def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return yy / size, xx / size


def _ct_slice(size: int, z: float, rng: np.random.Generator) -> np.ndarray:
    """One axial chest slice in HU at height ``z`` in [0, 1] (apex 0 .. base 1)."""
    yy, xx = _grid(size)
    hu = np.full((size, size), -1000.0, dtype=np.float32)
    body = _ellipse(yy, xx, 0.52, 0.5, 0.34, 0.45)
    hu[body] = -100.0  # subcutaneous fat
    hu[_ellipse(yy, xx, 0.52, 0.5, 0.31, 0.42)] = 40.0  # muscle and mediastinum
    lung = 0.20 + 0.08 * np.sin(np.pi * min(max(z, 0.0), 1.0))
    for cx in (0.31, 0.69):
        hu[_ellipse(yy, xx, 0.48, cx, lung * 1.15, lung * 0.62)] = -850.0
    heart = 0.05 + 0.09 * max(0.0, z - 0.35)
    if heart > 0.05:
        hu[_ellipse(yy, xx, 0.55, 0.55, heart, heart * 1.2)] = 45.0
    hu[_ellipse(yy, xx, 0.5, 0.5, 0.035, 0.035)] = 220.0  # contrast in the aorta
    hu[_ellipse(yy, xx, 0.75, 0.5, 0.055, 0.055)] = 700.0  # vertebral body
    hu[_ellipse(yy, xx, 0.75, 0.5, 0.035, 0.035)] = 250.0  # its marrow
    hu[body] += rng.normal(0.0, 12.0, size=int(body.sum())).astype(np.float32)
    return hu


def _mr_slice(size: int, z: float, rng: np.random.Generator, *, t2: bool) -> np.ndarray:
    """One axial brain slice; signal in arbitrary units, contrast of T1 or T2."""
    yy, xx = _grid(size)
    scale = float(np.sqrt(max(0.05, 1.0 - (2.0 * z - 1.0) ** 2)))
    signal = np.zeros((size, size), dtype=np.float32)
    ry, rx = 0.42 * scale + 0.02, 0.36 * scale + 0.02
    values = {"scalp": (900, 500), "skull": (60, 40), "grey": (550, 900), "white": (750, 650), "csf": (150, 1600)}
    pick = 1 if t2 else 0
    signal[_ellipse(yy, xx, 0.5, 0.5, ry, rx)] = values["scalp"][pick]
    signal[_ellipse(yy, xx, 0.5, 0.5, ry - 0.025, rx - 0.025)] = values["skull"][pick]
    signal[_ellipse(yy, xx, 0.5, 0.5, ry - 0.045, rx - 0.045)] = values["grey"][pick]
    signal[_ellipse(yy, xx, 0.5, 0.5, (ry - 0.045) * 0.8, (rx - 0.045) * 0.8)] = values["white"][pick]
    if 0.3 < z < 0.75:
        for cx in (0.46, 0.54):
            signal[_ellipse(yy, xx, 0.48, cx, 0.09 * scale, 0.025)] = values["csf"][pick]
    head = signal > 0
    signal[head] += rng.normal(0.0, 15.0, size=int(head.sum())).astype(np.float32)
    return np.clip(signal, 0, 4095)


def _base(patient: SyntheticPatient, study: SyntheticStudy, *, sop_class: str, modality: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = study.study_date
    ds.StudyTime = ds.ContentTime = study.study_time
    ds.AccessionNumber = study.accession
    ds.Modality = modality
    ds.Manufacturer = "imageshare synthetic"
    ds.ReferringPhysicianName = "Referrer^Rita"
    ds.StudyDescription = study.description
    if study.procedure[0]:
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = study.procedure
        ds.ProcedureCodeSequence = DicomSequence([code])
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    if patient.issuer:
        ds.IssuerOfPatientID = patient.issuer
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    if study.body_part:
        ds.BodyPartExamined = study.body_part
    ds.StudyInstanceUID = study.uid()
    ds.StudyID = "1"
    ds.PatientPosition = "HFS"
    ds.Laterality = ""  # PS3.3 C.7.3.1 Type 2C: an unpaired body part, sent empty
    ds.FrameOfReferenceUID = generate_uid(entropy_srcs=[study.uid(), "frame"])
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = study.size
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [round(350.0 / study.size, 4), round(350.0 / study.size, 4)]
    return ds


def _instance(template: Dataset, *, series_uid: str, series_number: int, number: int, position: float, pixels: np.ndarray) -> Dataset:
    ds = Dataset()
    ds.update(template)
    ds.file_meta = FileMetaDataset(template.file_meta)
    # Deterministic UIDs: seeding twice stores the same instances, not a second copy.
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[series_uid, str(number)])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.InstanceNumber = number
    ds.ImagePositionPatient = [-175.0, -175.0, position]
    ds.SliceLocation = position
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    return ds


def chest_ct(patient: SyntheticPatient, study: SyntheticStudy, *, seed: int = 1) -> list[Dataset]:
    """A chest CT: one axial series of ``study.slices`` images, 1.25 mm apart, in HU + 1024."""
    rng = np.random.default_rng(seed)
    template = _base(patient, study, sop_class=CTImageStorage, modality="CT")
    template.KVP = "120"
    template.AcquisitionNumber = 1
    template.SliceThickness = "1.25"
    template.RescaleIntercept = "-1024"
    template.RescaleSlope = "1"
    template.RescaleType = "HU"
    template.WindowCenter = ["40", "-600"]
    template.WindowWidth = ["400", "1500"]
    template.WindowCenterWidthExplanation = ["MEDIASTINUM", "LUNG"]
    template.SeriesDescription = "Chest 1.25 mm axial"
    series_uid = generate_uid(entropy_srcs=[study.uid(), "ct"])
    out: list[Dataset] = []
    for index in range(study.slices):
        z = index / max(1, study.slices - 1)
        hu = _ct_slice(study.size, z, rng)
        stored = np.clip(hu + 1024.0, 0, 4095)
        out.append(
            _instance(template, series_uid=series_uid, series_number=2, number=index + 1, position=-1.25 * index, pixels=stored)
        )
    return out


def brain_mr(patient: SyntheticPatient, study: SyntheticStudy, *, seed: int = 2) -> list[Dataset]:
    """A brain MR: axial T1 and T2 series of ``study.slices`` images each, 5 mm apart."""
    rng = np.random.default_rng(seed)
    out: list[Dataset] = []
    for series_number, (label, t2, echo, repetition) in enumerate(
        (("Ax T1 SE", False, "12", "500"), ("Ax T2 FSE", True, "100", "4000")), start=3
    ):
        template = _base(patient, study, sop_class=MRImageStorage, modality="MR")
        template.ScanningSequence = "SE"
        template.SequenceVariant = "NONE"
        template.ScanOptions = ""
        template.MRAcquisitionType = "2D"
        template.EchoTime = echo
        template.RepetitionTime = repetition
        template.EchoTrainLength = "1" if not t2 else "16"
        template.MagneticFieldStrength = "1.5"
        template.SliceThickness = "5.0"
        template.WindowCenter = "700" if not t2 else "900"
        template.WindowWidth = "1200" if not t2 else "1800"
        template.SeriesDescription = label
        series_uid = generate_uid(entropy_srcs=[study.uid(), label])
        for index in range(study.slices):
            z = index / max(1, study.slices - 1)
            pixels = _mr_slice(study.size, z, rng, t2=t2)
            out.append(
                _instance(template, series_uid=series_uid, series_number=series_number, number=index + 1, position=5.0 * index, pixels=pixels)
            )
    return out


def recent_date(days_ago: int, *, today: dt.date | None = None) -> str:
    """A DICOM DA ``days_ago`` days before today."""
    return ((today or dt.date.today()) - dt.timedelta(days=days_ago)).strftime("%Y%m%d")
