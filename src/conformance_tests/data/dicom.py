"""Our own DICOM test studies for the Imaging Document Source plan: small CT and MR instances with
real pixel data and deterministic UIDs under a root the runner owns.

The data is the same on every run (the UIDs, the pixel values and every byte of the Part 10
files), so an operator can load it once (``xds conformance dicom-data DIR``) and run with
``--preloaded``. Three studies, mirroring NIST ids_2018-4803a/b/c (single series, multi-series,
multi-modality):

* ``ct``: one CT series of three instances;
* ``mr``: two MR series of two instances each, the patient name in ISO_IR 100 (Latin-1);
* ``mm``: one CT and one MR series of one instance each.

Every instance is Explicit VR Little Endian (PS3.5 §A.2), uncompressed, so that any source can
return it in both native little-endian syntaxes (xds-notes §7.5).

Public API::

    DATA_ROOT: str
    TestInstance(key, study_key, study_uid, series_uid, sop_uid, sop_class_uid, modality,
                 transfer_syntax, data)          # .dataset_bytes .dataset() .file_name
    TestStudy(key, study_uid, patient_id, instances)   # .series_uids
    ImagingTestData(root, studies, unknown_uids)       # .instance(key) .instances .study(key)
    imaging_test_data(root=DATA_ROOT) -> ImagingTestData
    instance_keys(study=None) -> tuple[str, ...]     # without building the files
    write_files(data, directory) -> list[Path]
    dataset_offset(part10) -> int
"""

from __future__ import annotations

import io
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

__all__ = [
    "CT_IMAGE_STORAGE",
    "DATA_ROOT",
    "MR_IMAGE_STORAGE",
    "ImagingTestData",
    "TestInstance",
    "TestStudy",
    "dataset_offset",
    "imaging_test_data",
    "instance_keys",
    "write_files",
]

#: ISO/IEC 9834-8 (an OID under 2.25 from a UUID): the root of every UID of the test data,
#: owned by this runner; ``.1`` is the version of the data set.
DATA_ROOT: Final = f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, 'imageshare.conformance.imaging-source').int}.1"
CT_IMAGE_STORAGE: Final = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE: Final = "1.2.840.10008.5.1.4.1.1.4"
IMPLEMENTATION_VERSION: Final = "XDSCONF_1"
# PS3.5 §9.1: a UID is at most 64 characters.
MAX_UID_LENGTH: Final = 64
SIZE: Final = 32  # rows and columns


@dataclass(frozen=True, slots=True)
class TestInstance:
    """One DICOM instance of the test data, as a Part 10 file."""

    __test__ = False  # not a pytest class

    key: str  # e.g. "ct-1"
    study_key: str
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    modality: str
    transfer_syntax: str
    data: bytes  # the Part 10 file: preamble, "DICM", File Meta Information, dataset

    @property
    def dataset_bytes(self) -> bytes:
        """The dataset as C-STORE sends it (PS3.7 §9.3.1.1: no File Meta Information)."""
        return self.data[dataset_offset(self.data) :]

    def dataset(self) -> Dataset:
        """A fresh parsed copy of the dataset (the caller may change it)."""
        return dcmread(io.BytesIO(self.data))

    @property
    def file_name(self) -> str:
        return f"{self.key}.dcm"


@dataclass(frozen=True, slots=True)
class TestStudy:
    """A study of the test data: its patient and instances, series in order."""

    __test__ = False

    key: str
    study_uid: str
    patient_id: str
    instances: tuple[TestInstance, ...]

    @property
    def series_uids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(i.series_uid for i in self.instances))

    def series(self, series_uid: str) -> tuple[TestInstance, ...]:
        return tuple(i for i in self.instances if i.series_uid == series_uid)


@dataclass(frozen=True, slots=True)
class ImagingTestData:
    """Every study of the test data, and UIDs under the same root that name no instance."""

    root: str
    studies: tuple[TestStudy, ...]
    unknown_uids: tuple[str, ...]

    @property
    def instances(self) -> tuple[TestInstance, ...]:
        return tuple(i for s in self.studies for i in s.instances)

    def study(self, key: str) -> TestStudy:
        for study in self.studies:
            if study.key == key:
                return study
        raise KeyError(f"no test study {key!r}")

    def instance(self, key: str) -> TestInstance:
        for item in self.instances:
            if item.key == key:
                return item
        raise KeyError(f"no test instance {key!r}")


def dataset_offset(part10: bytes) -> int:
    """Where the dataset starts in a Part 10 file: after the 128-byte preamble, ``DICM`` and the
    File Meta Information group, whose length (0002,0000) is read (PS3.10 §7.1)."""
    if len(part10) < 144 or part10[128:132] != b"DICM":
        raise ValueError("not a DICOM Part 10 file (no DICM prefix at byte 128)")
    # (0002,0000) UL, explicit VR little endian: tag(4) 'UL'(2) length(2) value(4).
    group, element, vr, length = struct.unpack("<HH2sH", part10[132:140])
    if (group, element, vr, length) != (2, 0, b"UL", 4):
        raise ValueError("the File Meta Information does not start with (0002,0000) UL")
    (meta_length,) = struct.unpack("<I", part10[140:144])
    return 144 + meta_length


def _uid(*parts: int, root: str) -> str:
    value = ".".join([root, *map(str, parts)])
    if len(value) > MAX_UID_LENGTH:
        raise ValueError(f"UID {value} is longer than {MAX_UID_LENGTH} characters")
    return value


def _pixels(study: int, series: int, number: int) -> bytes:
    """A deterministic 12-bit gradient with a bright square that moves from slice to slice."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    image = (x * 37 + y * 11 + study * 500 + series * 200 + number * 60) % 3000
    corner = 4 + 3 * number
    image[corner : corner + 6, corner : corner + 6] = 4095
    return image.astype("<u2").tobytes()


@dataclass(frozen=True, slots=True)
class _Patient:
    patient_id: str
    name: str
    birth_date: str
    sex: str
    charset: str = "ISO_IR 6"


@dataclass(frozen=True, slots=True)
class _Series:
    modality: str
    count: int
    description: str


@dataclass(frozen=True, slots=True)
class _Study:
    key: str
    patient: _Patient
    accession: str
    description: str
    series: tuple[_Series, ...]


_STUDIES: Final = (
    _Study("ct", _Patient("IDSCONF-CT", "CONFORMANCE^CT SINGLE", "19700101", "F"), "IDSACC01", "CT chest",
           (_Series("CT", 3, "axial 5 mm"),)),
    _Study("mr", _Patient("IDSCONF-MR", "MÜLLER^JÜRGEN", "19650515", "M", charset="ISO_IR 100"), "IDSACC02",
           "MR brain", (_Series("MR", 2, "T1 sagittal"), _Series("MR", 2, "T2 axial"))),
    _Study("mm", _Patient("IDSCONF-MM", "CONFORMANCE^MULTI MODALITY", "19800229", "O"), "IDSACC03",
           "CT and MR abdomen", (_Series("CT", 1, "CT abdomen"), _Series("MR", 1, "MR abdomen"))),
)  # fmt: skip


def _dataset(study: _Study, s: int, r: int, i: int, series: _Series, *, root: str) -> Dataset:
    sop_class = CT_IMAGE_STORAGE if series.modality == "CT" else MR_IMAGE_STORAGE
    ds = Dataset()
    ds.SpecificCharacterSet = study.patient.charset
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = _uid(3, s, r, i, root=root)
    ds.StudyDate = "20250102"
    ds.SeriesDate = "20250102"
    ds.ContentDate = "20250102"
    ds.StudyTime = "101500"
    ds.ContentTime = f"1016{i:02d}"
    ds.AccessionNumber = study.accession
    ds.Modality = series.modality
    ds.Manufacturer = "Conformance Test Data"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = study.description
    ds.SeriesDescription = series.description
    ds.PatientName = study.patient.name
    ds.PatientID = study.patient.patient_id
    ds.IssuerOfPatientID = "IDSCONF"
    ds.PatientBirthDate = study.patient.birth_date
    ds.PatientSex = study.patient.sex
    ds.SliceThickness = "5"
    if series.modality == "CT":
        ds.KVP = "120"
    else:
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.RepetitionTime = "500"
        ds.EchoTime = "15"
        ds.MagneticFieldStrength = "1.5"
    ds.StudyInstanceUID = _uid(1, s, root=root)
    ds.SeriesInstanceUID = _uid(2, s, r, root=root)
    ds.StudyID = f"{s}"
    ds.SeriesNumber = r
    ds.InstanceNumber = i
    ds.ImagePositionPatient = ["-80", "-80", f"{5 * (i - 1)}"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = _uid(4, s, root=root)
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = SIZE
    ds.Columns = SIZE
    ds.PixelSpacing = ["0.5", "0.5"]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    if series.modality == "CT":
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
    ds.PixelData = _pixels(s, r, i)
    return ds


def _part10(ds: Dataset, *, root: str) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    # PS3.10 §7.1: our own implementation identity, so the bytes do not depend on the library.
    meta.ImplementationClassUID = UID(_uid(0, root=root))
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    ds.file_meta = meta
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def instance_keys(study: str | None = None) -> tuple[str, ...]:
    """The keys of the instances of ``study`` (of every study when None), in data order; the
    same keys :func:`imaging_test_data` gives, without encoding any file."""
    keys = []
    for item in _STUDIES:
        if study is None or item.key == study:
            count = sum(series.count for series in item.series)
            keys += [f"{item.key}-{n}" for n in range(1, count + 1)]
    if study is not None and not keys:
        raise KeyError(f"no test study {study!r}")
    return tuple(keys)


def imaging_test_data(root: str = DATA_ROOT) -> ImagingTestData:
    """The test studies (the same bytes on every call for the same root)."""
    studies = []
    for s, study in enumerate(_STUDIES, start=1):
        instances = []
        n = 0
        for r, series in enumerate(study.series, start=1):
            for i in range(1, series.count + 1):
                n += 1
                ds = _dataset(study, s, r, i, series, root=root)
                instances.append(
                    TestInstance(
                        key=f"{study.key}-{n}",
                        study_key=study.key,
                        study_uid=str(ds.StudyInstanceUID),
                        series_uid=str(ds.SeriesInstanceUID),
                        sop_uid=str(ds.SOPInstanceUID),
                        sop_class_uid=str(ds.SOPClassUID),
                        modality=series.modality,
                        transfer_syntax=ExplicitVRLittleEndian,
                        data=_part10(ds, root=root),
                    )
                )
        studies.append(TestStudy(study.key, _uid(1, s, root=root), study.patient.patient_id, tuple(instances)))
    # Under the root but never used by an instance: "unknown" SOP Instance / study / series UIDs.
    unknown = (_uid(9, 1, root=root), _uid(9, 2, root=root), _uid(9, 3, root=root))
    return ImagingTestData(root=root, studies=tuple(studies), unknown_uids=unknown)


def write_files(data: ImagingTestData, directory: Path) -> list[Path]:
    """Write every instance as ``<key>.dcm`` into ``directory`` (created); return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for item in data.instances:
        path = directory / item.file_name
        path.write_bytes(item.data)
        paths.append(path)
    return paths
