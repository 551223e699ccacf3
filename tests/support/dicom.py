"""DICOM test support: synthetic CT/MR studies with real pixel data, the independent DICOM peers
(Orthanc as a PACS, dcmtk as a modality and reference SCP, dicom3tools' dciodvfy), free ports.

Every dcmtk or Orthanc process gets ``TCP_NODELAY=1`` in its environment: Debian's dcmtk waits
40 ms per PDU otherwise (performance-anchors lesson 3). Orthanc instances run on free loopback
ports with their own configuration and storage under a temporary directory and are stopped by
PID; a test that needs a missing tool is skipped with the reason.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from lxml import etree
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    PYDICOM_IMPLEMENTATION_UID,
    SecondaryCaptureImageStorage,
    generate_uid,
)

#: The environment every dcmtk / Orthanc child process runs with.
DICOM_TOOL_ENV = {**os.environ, "TCP_NODELAY": "1"}
SOP_CLASSES = {"CT": CTImageStorage, "MR": MRImageStorage, "OT": SecondaryCaptureImageStorage}
ACCESSION_ISSUER = "1.3.6.1.4.1.21367.13.202.2000"


def tool(name: str) -> str:
    """The path of an executable (also looked for in /usr/sbin, where Debian puts Orthanc)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        pytest.skip(f"{name} is not installed (run scripts/install-dicom-tools.sh)")
    return found


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- synthetic studies ------------------------------------------------------------------------------
@dataclass(frozen=True)
class StudySpec:
    """What to generate: one study of a patient, series by modality."""

    patient_id: str = "PAT001"
    patient_name: str = "Doe^Jane"
    issuer: str = "HOSP"
    birth_date: str = "19700101"
    sex: str = "F"
    accession: str = "ACC001"
    modalities: Sequence[str] = ("CT",)
    instances_per_series: int = 2
    rows: int = 64
    columns: int = 64
    study_uid: str = field(default_factory=generate_uid)
    study_date: str = "20240102"
    study_time: str = "101500"
    body_part: str = "CHEST"
    procedure: tuple[str, str, str] = ("RPID1", "99LOCAL", "CT chest")


def _pixels(rows: int, columns: int, index: int, *, bits: int) -> np.ndarray:
    """A disc phantom plus noise (compresses poorly, like anchors' set)."""
    rng = np.random.default_rng(index)
    yy, xx = np.mgrid[0:rows, 0:columns]
    disc = ((yy - rows / 2) ** 2 + (xx - columns / 2) ** 2) < (min(rows, columns) / 3) ** 2
    top = (1 << bits) - 1
    image = rng.integers(0, top // 4, size=(rows, columns)) + disc * (top // 2)
    return image.astype(np.uint16 if bits > 8 else np.uint8)


def make_instance(
    spec: StudySpec,
    *,
    modality: str,
    series_uid: str,
    series_number: int,
    instance_number: int,
    bits: int = 12,
) -> Dataset:
    """One image of the study (CT, MR: 16-bit allocated, ``bits`` stored; OT: 8-bit)."""
    sop_class = SOP_CLASSES[modality]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"] if modality != "OT" else ["DERIVED", "SECONDARY"]
    ds.StudyDate = spec.study_date
    ds.SeriesDate = spec.study_date
    ds.ContentDate = spec.study_date
    ds.StudyTime = spec.study_time
    ds.ContentTime = spec.study_time
    ds.AccessionNumber = spec.accession
    issuer = Dataset()
    issuer.UniversalEntityID = ACCESSION_ISSUER
    issuer.UniversalEntityIDType = "ISO"
    ds.IssuerOfAccessionNumberSequence = DicomSequence([issuer])
    ds.Modality = modality
    ds.Manufacturer = "Synthetic"
    ds.ReferringPhysicianName = "Referrer^Rita"
    ds.StudyDescription = f"{'/'.join(spec.modalities)} study"
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = spec.procedure
    ds.ProcedureCodeSequence = DicomSequence([code])
    ds.SeriesDescription = f"{modality} series {series_number}"
    ds.PatientName = spec.patient_name
    ds.PatientID = spec.patient_id
    ds.IssuerOfPatientID = spec.issuer
    ds.PatientBirthDate = spec.birth_date
    ds.PatientSex = spec.sex
    ds.BodyPartExamined = spec.body_part
    ds.StudyInstanceUID = spec.study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    ds.PatientPosition = "HFS" if modality != "OT" else None
    if ds.PatientPosition is None:
        del ds.PatientPosition
        ds.ConversionType = "WSD"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = spec.rows
    ds.Columns = spec.columns
    eight = modality == "OT"
    ds.BitsAllocated = 8 if eight else 16
    ds.BitsStored = 8 if eight else bits
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if modality == "CT":
        ds.KVP = "120"
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        ds.SliceThickness = "1.0"
    if modality == "MR":
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.EchoTime = "20"
        ds.RepetitionTime = "500"
        ds.EchoTrainLength = "1"
        ds.MagneticFieldStrength = "1.5"
        ds.SliceThickness = "5.0"
    if modality != "OT":
        ds.ImagePositionPatient = [0, 0, float(instance_number)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.7, 0.7]
        ds.FrameOfReferenceUID = generate_uid(entropy_srcs=[spec.study_uid, "frame"])
        ds.PositionReferenceIndicator = ""
    pixels = _pixels(spec.rows, spec.columns, instance_number + 1000 * series_number, bits=8 if eight else bits)
    ds.PixelData = pixels.tobytes()
    return ds


def make_study(spec: StudySpec) -> list[Dataset]:
    """Every instance of ``spec``: one series per modality, ``instances_per_series`` each."""
    out: list[Dataset] = []
    for number, modality in enumerate(spec.modalities, start=1):
        series_uid = generate_uid()
        for index in range(1, spec.instances_per_series + 1):
            out.append(
                make_instance(spec, modality=modality, series_uid=series_uid, series_number=number, instance_number=index)
            )
    return out


def write_datasets(datasets: Sequence[Dataset], directory: Path) -> list[Path]:
    """Write Part 10 files (Explicit VR Little Endian unless the meta says otherwise)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in datasets:
        path = directory / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def part10_bytes(ds: Dataset) -> bytes:
    import io

    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


# -- dcmtk ------------------------------------------------------------------------------------------
def storescu(files: Sequence[Path], *, port: int, called: str, calling: str = "STORESCU", host: str = "127.0.0.1") -> subprocess.CompletedProcess[str]:
    """Send files with dcmtk storescu (one association), TCP_NODELAY=1."""
    cmd = [tool("storescu"), "-aet", calling, "-aec", called, host, str(port), *map(str, files)]
    return subprocess.run(cmd, env=DICOM_TOOL_ENV, capture_output=True, text=True, timeout=300)


def dciodvfy(path: Path) -> tuple[list[str], list[str]]:
    """Run dicom3tools' dciodvfy on a file: (error lines, warning lines)."""
    result = subprocess.run([tool("dciodvfy"), str(path)], capture_output=True, text=True, timeout=60)
    lines = (result.stdout + result.stderr).splitlines()
    errors = [line for line in lines if "Error" in line]
    warnings = [line for line in lines if line.startswith("Warning")]
    return errors, warnings


# -- Orthanc ----------------------------------------------------------------------------------------
class OrthancServer:
    """An Orthanc process with its own configuration and storage, on free loopback ports.

    ``modalities`` maps a name to (AE title, host, port): the C-MOVE destinations it knows.
    Started with ``TCP_NODELAY=1``, stopped by its PID. ``start`` may be called again after
    ``stop`` (same ports, same storage): a PACS that was down and is back.
    """

    def __init__(
        self,
        directory: Path,
        *,
        modalities: Mapping[str, tuple[str, str, int]] = (),  # type: ignore[assignment]
        aet: str = "ORTHANC",
    ) -> None:
        self.executable = tool("Orthanc")
        self.directory = directory
        self.aet = aet
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        directory.mkdir(parents=True, exist_ok=True)
        self.config_path = directory / "orthanc.json"
        config = {
            "Name": "xds-test-pacs",
            "StorageDirectory": str(directory / "storage"),
            "IndexDirectory": str(directory / "index"),
            "StorageCompression": False,
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomServerEnabled": True,
            "DicomAet": aet,
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomModalities": {name: list(entry) for name, entry in dict(modalities).items()},
            "StableAge": 3600,
            "Plugins": [],
            "ConcurrentJobs": 2,
        }
        self.config_path.write_text(json.dumps(config, indent=2))
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = directory / "orthanc.log"

    def start(self, *, timeout: float = 30.0) -> None:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [self.executable, str(self.config_path)],
            env=DICOM_TOOL_ENV,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited with {self.process.returncode}: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/system", timeout=1.0).status_code == 200 and self._dicom_ready():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Orthanc did not become ready in {timeout} s")

    def _dicom_ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.dicom_port), timeout=1.0):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def __enter__(self) -> OrthancServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- REST helpers --
    def upload(self, paths: Sequence[Path]) -> list[str]:
        """POST each file to /instances; the Orthanc instance ids."""
        ids = []
        with httpx.Client(base_url=self.url, timeout=30.0) as client:
            for path in paths:
                response = client.post("/instances", content=path.read_bytes())
                response.raise_for_status()
                ids.append(response.json()["ID"])
        return ids

    def study_id(self, study_uid: str) -> str:
        response = httpx.post(self.url + "/tools/lookup", content=study_uid, timeout=10.0)
        response.raise_for_status()
        return next(item["ID"] for item in response.json() if item["Type"] == "Study")

    def instance_ids(self, study_uid: str) -> list[str]:
        response = httpx.get(f"{self.url}/studies/{self.study_id(study_uid)}/instances", timeout=30.0)
        response.raise_for_status()
        return [item["ID"] for item in response.json()]


@pytest.fixture
def orthanc_factory(tmp_path: Path) -> Iterator[object]:
    """Make Orthanc servers for a test; all are stopped at its end."""
    servers: list[OrthancServer] = []

    def make(*, modalities: Mapping[str, tuple[str, str, int]] | None = None, name: str = "orthanc") -> OrthancServer:
        server = OrthancServer(tmp_path / name, modalities=modalities or {})
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def today() -> str:
    return dt.date.today().strftime("%Y%m%d")


# -- RAD-69 requests --------------------------------------------------------------------------------
def rad69_request(
    studies: Mapping[str, Mapping[str, Sequence[str]]],
    *,
    repository_id: str,
    transfer_syntaxes: Sequence[str] = ("1.2.840.10008.1.2.1",),
    home: str | None = None,
) -> etree._Element:
    """``xdsi:RetrieveImagingDocumentSetRequest`` for {study: {series: [sop, ...]}} (xds-notes §7.4)."""
    from xds.vocabulary import NS_XDS, NS_XDSI

    xdsi, xds = f"{{{NS_XDSI}}}", f"{{{NS_XDS}}}"
    root = etree.Element(xdsi + "RetrieveImagingDocumentSetRequest", nsmap={"xdsi": NS_XDSI, "xds": NS_XDS})
    for study_uid, series_map in studies.items():
        study = etree.SubElement(root, xdsi + "StudyRequest", studyInstanceUID=study_uid)
        for series_uid, sops in series_map.items():
            series = etree.SubElement(study, xdsi + "SeriesRequest", seriesInstanceUID=series_uid)
            for sop in sops:
                doc = etree.SubElement(series, xds + "DocumentRequest")
                if home is not None:
                    etree.SubElement(doc, xds + "HomeCommunityId").text = home
                etree.SubElement(doc, xds + "RepositoryUniqueId").text = repository_id
                etree.SubElement(doc, xds + "DocumentUniqueId").text = sop
    ts_list = etree.SubElement(root, xdsi + "TransferSyntaxUIDList")
    for ts in transfer_syntaxes:
        etree.SubElement(ts_list, xdsi + "TransferSyntaxUID").text = ts
    return root


def study_map(datasets: Sequence[Dataset]) -> dict[str, dict[str, list[str]]]:
    """{study: {series: [sop, ...]}} of datasets (the shape of a RAD-69 request)."""
    out: dict[str, dict[str, list[str]]] = {}
    for ds in datasets:
        out.setdefault(str(ds.StudyInstanceUID), {}).setdefault(str(ds.SeriesInstanceUID), []).append(str(ds.SOPInstanceUID))
    return out


# -- schemas ----------------------------------------------------------------------------------------
class ImagingSchemas:
    """XDSI.b_ImagingDocumentSource.xsd (RAD-69 request) and XDS.b_DocumentRepository.xsd
    (RetrieveDocumentSetResponse), from ../shared/schemas."""

    def __init__(self, root: Path) -> None:
        self.request = etree.XMLSchema(etree.parse(str(root / "schema" / "IHE" / "XDSI.b_ImagingDocumentSource.xsd")))
        self.response = etree.XMLSchema(etree.parse(str(root / "schema" / "IHE" / "XDS.b_DocumentRepository.xsd")))

    def check_request(self, element: etree._Element) -> None:
        assert self.request.validate(element), self.request.error_log

    def check_response(self, element: etree._Element, parts: Mapping[etree._Element, bytes]) -> None:
        """Validate the XOP infoset: each xop:Include replaced by the base64 of (the start of) its part."""
        import base64

        from xds.soap.mtom import XOP_INCLUDE

        copy = etree.fromstring(etree.tostring(element))
        documents = [e for e in element.iter("{urn:ihe:iti:xds-b:2007}Document")]
        for doc, source in zip(copy.iter("{urn:ihe:iti:xds-b:2007}Document"), documents, strict=True):
            include = doc.find(XOP_INCLUDE)
            if include is not None:
                doc.remove(include)
                doc.text = base64.b64encode(parts[source][:4096]).decode()
        assert self.response.validate(copy), self.response.error_log


def jpeg_baseline(ds: Dataset, directory: Path) -> bytes:
    """``ds`` (8-bit) compressed by dcmtk's dcmcjpeg into JPEG Baseline (1.2.840.10008.1.2.4.50), same UIDs."""
    directory.mkdir(parents=True, exist_ok=True)
    source, target = directory / "native.dcm", directory / "jpeg.dcm"
    source.write_bytes(part10_bytes(ds))
    subprocess.run([tool("dcmcjpeg"), "+eb", "+un", str(source), str(target)], check=True, capture_output=True, timeout=60)
    return target.read_bytes()
