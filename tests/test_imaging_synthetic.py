"""The synthetic studies of the demo are valid CT and MR Image Storage instances (dciodvfy, an
independent IOD validator) with realistic values, and seeding twice gives the same UIDs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imaging_source.synthetic import SyntheticPatient, SyntheticStudy, brain_mr, chest_ct
from tests.support.dicom import dciodvfy, write_datasets

PATIENT = SyntheticPatient(patient_id="SYN1")


def _study(accession: str) -> SyntheticStudy:
    return SyntheticStudy(accession=accession, description="test", study_date="20260101", slices=6, size=96)


@pytest.mark.parametrize("draw", [chest_ct, brain_mr], ids=["CT", "MR"])
def test_instances_pass_dciodvfy(draw, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    datasets = draw(PATIENT, _study("SYN-" + draw.__name__))
    paths = write_datasets(datasets[:2], tmp_path)
    for path in paths:
        errors, _warnings = dciodvfy(path)
        assert errors == [], errors


def test_ct_values_are_hounsfield_units() -> None:
    [*_, middle, _last] = chest_ct(PATIENT, _study("SYN-CT"))
    hu = middle.pixel_array.astype(np.float32) * float(middle.RescaleSlope) + float(middle.RescaleIntercept)
    assert hu.min() <= -990  # air around the body
    assert (hu < -700).sum() > 0.1 * hu.size  # lungs and air
    assert hu.max() >= 600  # the spine
    assert middle.WindowCenterWidthExplanation == ["MEDIASTINUM", "LUNG"]


def test_mr_has_t1_and_t2_series_with_opposite_csf_contrast() -> None:
    datasets = brain_mr(PATIENT, _study("SYN-MR"))
    series = {}
    for ds in datasets:
        series.setdefault(ds.SeriesDescription, []).append(ds)
    assert sorted(series) == ["Ax T1 SE", "Ax T2 FSE"]
    t1, t2 = (series[name][3].pixel_array for name in ("Ax T1 SE", "Ax T2 FSE"))
    assert t2.max() > t1.max()  # CSF is bright on T2


def test_uids_are_stable_across_runs() -> None:
    first = [ds.SOPInstanceUID for ds in chest_ct(PATIENT, _study("SYN-SAME"))]
    second = [ds.SOPInstanceUID for ds in chest_ct(PATIENT, _study("SYN-SAME"))]
    other = [ds.SOPInstanceUID for ds in chest_ct(PATIENT, _study("SYN-OTHER"))]
    assert first == second and len(set(first)) == len(first) and not set(first) & set(other)
