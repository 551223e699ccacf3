"""RAD-55 WADO-URI at the Edge Server (PS3.18 §6.2; NIST ids_2018-4802 / 4810), over HTTP."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian

from imaging_source.app import WADO_PATH, build_source_app, open_store
from imaging_source.config import SourceSettings
from tests.support.dicom import StudySpec, make_study, part10_bytes
from xds.http.server import ServerThread


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, list[Dataset]]]:
    settings = SourceSettings(data_dir=tmp_path / "edge", fsync=False)
    store = open_store(settings)
    datasets = make_study(StudySpec(modalities=("CT", "MR"), instances_per_series=2))
    for ds in datasets:
        store.store_bytes(part10_bytes(ds))
    with ServerThread(build_source_app(settings, store=store)) as server:
        yield server.url + WADO_PATH, datasets
    store.engine.dispose()


def _params(ds: Dataset, **changes: str | None) -> dict[str, str]:
    params = {
        "requestType": "WADO",
        "studyUID": ds.StudyInstanceUID,
        "seriesUID": ds.SeriesInstanceUID,
        "objectUID": ds.SOPInstanceUID,
        "contentType": "application/dicom",
    }
    params.update(changes)  # type: ignore[arg-type]
    return {k: v for k, v in params.items() if v is not None}


def test_wado_returns_the_stored_bytes(served: tuple[str, list[Dataset]]) -> None:
    url, datasets = served
    for ds in datasets:
        response = httpx.get(url, params=_params(ds))
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/dicom"
        assert response.content == part10_bytes(ds)


def test_wado_transcodes_to_the_requested_transfer_syntax(served: tuple[str, list[Dataset]]) -> None:
    url, datasets = served
    response = httpx.get(url, params=_params(datasets[0], transferSyntax=ImplicitVRLittleEndian))
    assert response.status_code == 200
    returned = dcmread(io.BytesIO(response.content))
    assert returned.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert returned.PixelData == datasets[0].PixelData


def test_wado_star_transfer_syntax_means_as_stored(served: tuple[str, list[Dataset]]) -> None:
    url, datasets = served
    assert httpx.get(url, params=_params(datasets[0], transferSyntax="*")).content == part10_bytes(datasets[0])


@pytest.mark.parametrize(
    "change",
    [
        {"objectUID": "1.2.3.999"},  # unknown object
        {"seriesUID": "1.2.3.998"},  # object not in that series
        {"studyUID": "1.2.3.997"},  # object not in that study
        {"objectUID": ""},
        {"seriesUID": ""},
        {"studyUID": ""},
    ],
    ids=["unknown", "other-series", "other-study", "empty-object", "empty-series", "empty-study"],
)
def test_wado_404(served: tuple[str, list[Dataset]], change: dict[str, str]) -> None:
    url, datasets = served
    assert httpx.get(url, params=_params(datasets[0], **change)).status_code == 404


def test_wado_object_of_another_series_of_the_same_study_is_404(served: tuple[str, list[Dataset]]) -> None:
    url, datasets = served
    ct, mr = datasets[0], datasets[-1]
    assert httpx.get(url, params=_params(ct, seriesUID=mr.SeriesInstanceUID)).status_code == 404


@pytest.mark.parametrize(
    "change",
    [{"requestType": None}, {"requestType": "WADO-RS"}, {"objectUID": None}, {"studyUID": None}],
    ids=["no-request-type", "other-request-type", "no-object", "no-study"],
)
def test_wado_malformed_is_400(served: tuple[str, list[Dataset]], change: dict[str, str | None]) -> None:
    url, datasets = served
    assert httpx.get(url, params=_params(datasets[0], **change)).status_code == 400


def test_wado_repeated_uid_parameter_is_400(served: tuple[str, list[Dataset]]) -> None:
    url, datasets = served
    ds = datasets[0]
    query = list(_params(ds).items()) + [("objectUID", ds.SOPInstanceUID)]
    assert httpx.get(url, params=query).status_code == 400


@pytest.mark.parametrize("content_type", [None, "image/jpeg"])
def test_wado_only_serves_application_dicom(served: tuple[str, list[Dataset]], content_type: str | None) -> None:
    url, datasets = served
    assert httpx.get(url, params=_params(datasets[0], contentType=content_type)).status_code == 406


def test_wado_unsupported_transfer_syntax_is_406(served: tuple[str, list[Dataset]]) -> None:
    url, datasets = served
    assert httpx.get(url, params=_params(datasets[0], transferSyntax="1.2.840.10008.1.2.4.50")).status_code == 406
