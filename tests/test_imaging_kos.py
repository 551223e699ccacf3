"""The KOS manifest (xds-notes §7.2; RAD TF-3 §4.68.4.1.2.1): every generated KOS passes
dicom3tools' dciodvfy with no error, and our own title, series and evidence checks."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from imaging_source.db import make_engine, upgrade
from imaging_source.dicomstore import DicomStore
from imaging_source.header import read_dataset_header
from imaging_source.kos import MANIFEST_TITLE, build_kos, encode_part10, kos_for_study
from tests.support.dicom import StudySpec, dciodvfy, make_study, part10_bytes
from xds.vocabulary import KOS_SOP_CLASS_UID

SOURCE_ID = "1.3.6.1.4.1.21367.13.80.110"
AE = "XDSEDGE"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DicomStore]:
    engine = make_engine(f"sqlite:///{tmp_path / 'imaging.sqlite'}")
    upgrade(engine)
    yield DicomStore(tmp_path / "store", engine, fsync=False)
    engine.dispose()


def _stored_study(store: DicomStore, spec: StudySpec) -> list[Dataset]:
    datasets = make_study(spec)
    for ds in datasets:
        store.store_bytes(part10_bytes(ds))
    return datasets


def _validate(kos: Dataset, tmp_path: Path) -> Dataset:
    """Write the KOS, run dciodvfy (errors fail; warnings are listed), read it back."""
    path = tmp_path / f"{kos.SOPInstanceUID}.dcm"
    path.write_bytes(encode_part10(kos))
    errors, warnings = dciodvfy(path)
    for line in warnings:
        print("dciodvfy:", line)
    assert errors == [], "\n".join(errors)
    return dcmread(path)


SPECS = {
    "single-image": StudySpec(modalities=("CT",), instances_per_series=1),
    "multi-series": StudySpec(modalities=("CT", "CT", "CT"), instances_per_series=3),
    "multi-modality": StudySpec(modalities=("CT", "MR", "OT"), instances_per_series=2),
    "latin-1 name": StudySpec(patient_name="Müller^Jürgen", instances_per_series=2),
}


@pytest.mark.parametrize("name", list(SPECS))
def test_kos_passes_dciodvfy_and_references_every_instance(store: DicomStore, tmp_path: Path, name: str) -> None:
    spec = SPECS[name]
    images = _stored_study(store, spec)
    kos = _validate(kos_for_study(store, spec.study_uid, source_id=SOURCE_ID, retrieve_ae_title=AE), tmp_path)

    # Identity: SOP class, KO modality, a new series and instance (NIST: DIFFERENT from images).
    assert kos.SOPClassUID == KOS_SOP_CLASS_UID
    assert kos.file_meta.MediaStorageSOPClassUID == KOS_SOP_CLASS_UID
    assert kos.Modality == "KO"
    assert kos.SeriesInstanceUID not in {ds.SeriesInstanceUID for ds in images}
    assert kos.SOPInstanceUID not in {ds.SOPInstanceUID for ds in images}

    # Title (113030, DCM, "Manifest") and TID 2010.
    title = kos.ConceptNameCodeSequence[0]
    assert (title.CodeValue, title.CodingSchemeDesignator, title.CodeMeaning) == MANIFEST_TITLE
    assert kos.ValueType == "CONTAINER"
    assert kos.ContentTemplateSequence[0].TemplateIdentifier == "2010"

    # Patient and study attributes identical to the images'.
    first = images[0]
    for keyword in ("PatientID", "IssuerOfPatientID", "PatientName", "PatientBirthDate", "PatientSex",
                    "AccessionNumber", "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID"):
        assert kos[keyword].value == first[keyword].value, keyword
    assert kos.SpecificCharacterSet == first.SpecificCharacterSet
    assert kos.IssuerOfAccessionNumberSequence[0].UniversalEntityID == first.IssuerOfAccessionNumberSequence[0].UniversalEntityID

    # Current Requested Procedure Evidence: study -> series (Retrieve AE, Location UID) -> SOPs.
    (study_item,) = kos.CurrentRequestedProcedureEvidenceSequence
    assert study_item.StudyInstanceUID == spec.study_uid
    expected: dict[str, set[tuple[str, str]]] = {}
    for ds in images:
        expected.setdefault(ds.SeriesInstanceUID, set()).add((ds.SOPClassUID, ds.SOPInstanceUID))
    seen: dict[str, set[tuple[str, str]]] = {}
    for series in study_item.ReferencedSeriesSequence:
        assert series.RetrieveAETitle == AE
        assert series.RetrieveLocationUID == SOURCE_ID
        seen[series.SeriesInstanceUID] = {
            (ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID) for ref in series.ReferencedSOPSequence
        }
    assert seen == expected

    # The content tree lists the same instances, each CONTAINS-related to the root.
    items = kos.ContentSequence
    assert {it.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for it in items} == {ds.SOPInstanceUID for ds in images}
    assert {it.RelationshipType for it in items} == {"CONTAINS"}
    assert {it.ValueType for it in items} == {"IMAGE"}


def test_patient_name_bytes_are_those_of_the_images(store: DicomStore) -> None:
    spec = SPECS["latin-1 name"]
    images = _stored_study(store, spec)
    kos = dcmread(io.BytesIO(encode_part10(kos_for_study(store, spec.study_uid, source_id=SOURCE_ID, retrieve_ae_title=AE))))
    image = dcmread(io.BytesIO(part10_bytes(images[0])))
    assert kos.PatientName.original_string == image.PatientName.original_string
    assert "ü".encode("latin-1") in kos.PatientName.original_string


def test_two_manifests_of_one_study_have_their_own_uids(store: DicomStore) -> None:
    spec = StudySpec(instances_per_series=1)
    _stored_study(store, spec)
    a = kos_for_study(store, spec.study_uid, source_id=SOURCE_ID, retrieve_ae_title=AE)
    b = kos_for_study(store, spec.study_uid, source_id=SOURCE_ID, retrieve_ae_title=AE)
    assert a.SOPInstanceUID != b.SOPInstanceUID and a.SeriesInstanceUID != b.SeriesInstanceUID


def test_content_date_and_time_are_the_given_moment_in_utc(store: DicomStore) -> None:
    spec = StudySpec(instances_per_series=1)
    _stored_study(store, spec)
    moment = dt.datetime(2024, 3, 4, 5, 6, 7, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    kos = kos_for_study(store, spec.study_uid, source_id=SOURCE_ID, retrieve_ae_title=AE, now=moment)
    assert (kos.ContentDate, kos.ContentTime, kos.TimezoneOffsetFromUTC) == ("20240304", "030607", "+0000")


def test_unknown_study_and_foreign_header_are_refused(store: DicomStore) -> None:
    spec, other = StudySpec(instances_per_series=1), StudySpec(instances_per_series=1)
    _stored_study(store, spec)
    other_images = _stored_study(store, other)
    with pytest.raises(LookupError):
        kos_for_study(store, "1.2.3.4", source_id=SOURCE_ID, retrieve_ae_title=AE)
    contents = store.contents(spec.study_uid)
    assert contents is not None
    with pytest.raises(ValueError):
        build_kos(contents, other_images[0], source_id=SOURCE_ID, retrieve_ae_title=AE)
    with pytest.raises(ValueError):
        build_kos(contents, read_dataset_header(contents.sample_path), source_id=SOURCE_ID, retrieve_ae_title="")
