"""RAD-69 Retrieve Imaging Document Set at the Edge Server, over a real HTTP socket: the NIST
ids_2018-4811 error cases, transfer-syntax selection and transcoding, PartialSuccess,
HomeCommunityId echo (ids_2018-4820), responses valid against the IHE schemas."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from lxml import etree
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

from imaging_source.app import PATH, build_source_app, open_store
from imaging_source.config import SourceSettings
from imaging_source.dicomstore import DicomStore
from imaging_source.rad69 import parse_request, plan
from imaging_source.transcode import Transcoder, decoder_available
from tests.support.dicom import (
    ImagingSchemas,
    StudySpec,
    jpeg_baseline,
    make_instance,
    make_study,
    part10_bytes,
    rad69_request,
    study_map,
)
from tests.support.paths import SCHEMAS
from xds.http.client import SoapClient
from xds.http.server import ServerThread
from xds.vocabulary import MIME_DICOM, NS_RS, NS_XDS, Action, ResponseStatus

SOURCE_ID = "1.3.6.1.4.1.21367.13.80.110"
HOME = "urn:oid:1.3.6.1.4.1.21367.13.70.101"
XDS = f"{{{NS_XDS}}}"


@dataclass
class Answer:
    status: str
    errors: list[tuple[str, str]]  # (errorCode, location)
    documents: list[dict[str, str | None]]
    parts: dict[str, bytes]  # DocumentUniqueId -> returned bytes
    body: etree._Element
    by_element: dict[etree._Element, bytes]


@dataclass
class Source:
    url: str
    store: DicomStore
    spool: Path

    def retrieve(self, request: etree._Element) -> Answer:
        with SoapClient(self.url + PATH, spool_dir=self.spool) as client, client.call(Action.RAD69, request) as reply:
            assert reply.action == Action.RAD69_RESPONSE
            assert reply.is_mtom  # RAD TF-3 §4.69.4.2: the response is MTOM/XOP
            body = reply.body
            registry_response = body.find(f"{{{NS_RS}}}RegistryResponse")
            assert registry_response is not None
            errors = [(e.get("errorCode", ""), e.get("location", "")) for e in registry_response.iter(f"{{{NS_RS}}}RegistryError")]
            resolved = {el: att.read_bytes() for el, att in reply.resolve_xop().items()}
            documents, parts = [], {}
            for doc in body.findall(XDS + "DocumentResponse"):
                fields = {tag: doc.findtext(XDS + tag) for tag in ("HomeCommunityId", "RepositoryUniqueId", "DocumentUniqueId", "mimeType")}
                documents.append(fields)
                parts[str(fields["DocumentUniqueId"])] = resolved[doc.find(XDS + "Document")]
            return Answer(registry_response.get("status", ""), errors, documents, parts, body, resolved)


@pytest.fixture
def schemas(schemas_dir: Path) -> ImagingSchemas:
    return ImagingSchemas(schemas_dir)


def _source(tmp_path: Path, transcoder: Transcoder | None = None) -> Iterator[Source]:
    settings = SourceSettings(data_dir=tmp_path / "edge", source_id=SOURCE_ID, fsync=False, schemas=SCHEMAS if SCHEMAS.is_dir() else None)
    store = open_store(settings)
    app = build_source_app(settings, store=store, transcoder=transcoder)
    with ServerThread(app) as server:
        yield Source(server.url, store, tmp_path / "client-spool")
    store.engine.dispose()


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Source]:
    yield from _source(tmp_path)


@pytest.fixture
def study(source: Source) -> list[Dataset]:
    datasets = make_study(StudySpec(modalities=("CT", "MR"), instances_per_series=2))
    for ds in datasets:
        source.store.store_bytes(part10_bytes(ds))
    return datasets


def _request(datasets: list[Dataset], **options: object) -> etree._Element:
    return rad69_request(study_map(datasets), repository_id=options.pop("repository_id", SOURCE_ID), **options)  # type: ignore[arg-type]


# -- success, schemas, HomeCommunityId ---------------------------------------------------------------
def test_whole_study_is_returned_as_stored_and_valid(source: Source, study: list[Dataset], schemas: ImagingSchemas) -> None:
    request = _request(study)
    schemas.check_request(request)
    answer = source.retrieve(request)
    assert answer.status == ResponseStatus.SUCCESS and answer.errors == []
    assert [d["DocumentUniqueId"] for d in answer.documents] == [ds.SOPInstanceUID for ds in study]
    assert {d["mimeType"] for d in answer.documents} == {MIME_DICOM}
    assert {d["RepositoryUniqueId"] for d in answer.documents} == {SOURCE_ID}
    for ds in study:
        assert answer.parts[ds.SOPInstanceUID] == part10_bytes(ds)  # byte for byte
    schemas.check_response(answer.body, answer.by_element)


@pytest.mark.parametrize("home", [HOME, None])
def test_home_community_id_is_echoed_only_when_sent(source: Source, study: list[Dataset], home: str | None, schemas: ImagingSchemas) -> None:
    answer = source.retrieve(_request(study[:1], home=home))
    assert answer.status == ResponseStatus.SUCCESS
    assert [d["HomeCommunityId"] for d in answer.documents] == [home]
    schemas.check_response(answer.body, answer.by_element)


def test_wsdl_is_served(source: Source) -> None:
    response = httpx.get(source.url + PATH + "?wsdl")
    assert response.status_code == 200
    assert b"ImagingDocumentSource" in response.content and (source.url + PATH).encode() in response.content


# -- transfer syntaxes --------------------------------------------------------------------------------
def test_implicit_only_returns_implicit_vr_little_endian(source: Source, study: list[Dataset]) -> None:
    answer = source.retrieve(_request(study, transfer_syntaxes=[ImplicitVRLittleEndian]))
    assert answer.status == ResponseStatus.SUCCESS
    for ds in study:
        returned = dcmread(io.BytesIO(answer.parts[ds.SOPInstanceUID]))
        assert returned.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
        assert returned.SOPInstanceUID == ds.SOPInstanceUID
        assert returned.PixelData == ds.PixelData
        assert returned.PatientName == ds.PatientName


def test_the_stored_syntax_is_preferred_when_listed(source: Source, study: list[Dataset]) -> None:
    answer = source.retrieve(_request(study[:1], transfer_syntaxes=[ImplicitVRLittleEndian, ExplicitVRLittleEndian]))
    assert answer.parts[study[0].SOPInstanceUID] == part10_bytes(study[0])


def _jpeg_instance(source: Source, tmp_path: Path) -> tuple[Dataset, bytes]:
    spec = StudySpec(modalities=("OT",), rows=32, columns=32)
    native = make_instance(spec, modality="OT", series_uid=generate_uid(), series_number=1, instance_number=1)
    data = jpeg_baseline(native, tmp_path / "jpeg")
    source.store.store_bytes(data)
    return native, data


def test_jpeg_stored_instance_is_returned_as_stored_when_jpeg_is_accepted(source: Source, tmp_path: Path) -> None:
    native, data = _jpeg_instance(source, tmp_path)
    answer = source.retrieve(rad69_request(study_map([native]), repository_id=SOURCE_ID, transfer_syntaxes=[JPEGBaseline8Bit, ExplicitVRLittleEndian]))
    assert answer.parts[native.SOPInstanceUID] == data


def test_jpeg_stored_instance_requested_as_explicit_is_decompressed_when_a_decoder_exists(source: Source, tmp_path: Path) -> None:
    native, _ = _jpeg_instance(source, tmp_path)
    answer = source.retrieve(rad69_request(study_map([native]), repository_id=SOURCE_ID))
    if not decoder_available(JPEGBaseline8Bit):
        assert answer.status == ResponseStatus.FAILURE
        assert answer.errors == [("XDSRepositoryError", native.SOPInstanceUID)]
        return
    assert answer.status == ResponseStatus.SUCCESS
    returned = dcmread(io.BytesIO(answer.parts[native.SOPInstanceUID]))
    assert returned.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert returned.SOPInstanceUID == native.SOPInstanceUID
    original = np.frombuffer(native.PixelData, dtype=np.uint8).reshape(32, 32).astype(int)
    # Lossy JPEG: close to, not equal to, the original pixels.
    assert np.abs(returned.pixel_array.astype(int) - original).mean() < 8


def test_without_a_decoder_a_compressed_instance_cannot_be_encoded(tmp_path: Path) -> None:
    for source in _source(tmp_path, Transcoder(decompress=False)):
        native, _ = _jpeg_instance(source, tmp_path)
        answer = source.retrieve(rad69_request(study_map([native]), repository_id=SOURCE_ID))
        assert answer.status == ResponseStatus.FAILURE
        assert answer.errors == [("XDSRepositoryError", native.SOPInstanceUID)]
        assert answer.documents == []


# -- NIST ids_2018-4811 cases 01-09 -------------------------------------------------------------------
def test_case01_wrong_repository(source: Source, study: list[Dataset], schemas: ImagingSchemas) -> None:
    answer = source.retrieve(_request(study[:1], repository_id="1.2.3.4.5"))
    assert answer.status == ResponseStatus.FAILURE
    assert answer.errors == [("XDSUnknownRepositoryId", study[0].SOPInstanceUID)]
    schemas.check_response(answer.body, answer.by_element)


def test_case02_unknown_sop_instance(source: Source, study: list[Dataset]) -> None:
    request = rad69_request({study[0].StudyInstanceUID: {study[0].SeriesInstanceUID: ["1.2.3.999"]}}, repository_id=SOURCE_ID)
    answer = source.retrieve(request)
    assert answer.status == ResponseStatus.FAILURE
    assert answer.errors == [("XDSDocumentUniqueIdError", "1.2.3.999")]


def test_case03_sop_instance_not_in_the_series(source: Source, study: list[Dataset]) -> None:
    ct, mr = study[0], study[-1]
    request = rad69_request({ct.StudyInstanceUID: {mr.SeriesInstanceUID: [ct.SOPInstanceUID]}}, repository_id=SOURCE_ID)
    answer = source.retrieve(request)
    assert answer.status == ResponseStatus.FAILURE
    assert answer.errors == [("XDSDocumentUniqueIdError", ct.SOPInstanceUID)]


def test_case04_sop_instance_not_in_the_study(source: Source, study: list[Dataset]) -> None:
    ct = study[0]
    request = rad69_request({"1.2.3.4.5.6": {ct.SeriesInstanceUID: [ct.SOPInstanceUID]}}, repository_id=SOURCE_ID)
    answer = source.retrieve(request)
    assert answer.status == ResponseStatus.FAILURE
    assert answer.errors == [("XDSDocumentUniqueIdError", ct.SOPInstanceUID)]


@pytest.mark.parametrize("empty", ["study", "series", "both"])
def test_cases05_to_07_empty_study_or_series_uid(source: Source, study: list[Dataset], empty: str, schemas: ImagingSchemas) -> None:
    ct = study[0]
    study_uid = "" if empty in ("study", "both") else ct.StudyInstanceUID
    series_uid = "" if empty in ("series", "both") else ct.SeriesInstanceUID
    request = rad69_request({study_uid: {series_uid: [ct.SOPInstanceUID]}}, repository_id=SOURCE_ID)
    schemas.check_request(request)  # the schema allows empty UIDs: the source must check them
    answer = source.retrieve(request)
    assert answer.status == ResponseStatus.FAILURE
    assert answer.errors == [("XDSRepositoryError", ct.SOPInstanceUID)]
    assert answer.documents == []


def test_case08_empty_transfer_syntax(source: Source, study: list[Dataset]) -> None:
    answer = source.retrieve(_request(study[:1], transfer_syntaxes=[""]))
    assert answer.status == ResponseStatus.FAILURE
    assert [code for code, _ in answer.errors] == ["XDSRepositoryError"]


def test_case09_invalid_transfer_syntax(source: Source, study: list[Dataset]) -> None:
    answer = source.retrieve(_request(study[:1], transfer_syntaxes=["1.2.840.10008.1.2.1.999"]))
    assert answer.status == ResponseStatus.FAILURE
    assert answer.errors == [("XDSRepositoryError", study[0].SOPInstanceUID)]


# -- PartialSuccess, malformed ---------------------------------------------------------------------
def test_some_returned_some_not_is_partial_success(source: Source, study: list[Dataset], schemas: ImagingSchemas) -> None:
    mapping = study_map(study)
    first_series = next(iter(mapping[study[0].StudyInstanceUID]))
    mapping[study[0].StudyInstanceUID][first_series].append("1.2.3.888")
    answer = source.retrieve(rad69_request(mapping, repository_id=SOURCE_ID))
    assert answer.status == ResponseStatus.PARTIAL_SUCCESS
    assert answer.errors == [("XDSDocumentUniqueIdError", "1.2.3.888")]
    assert sorted(answer.parts) == sorted(ds.SOPInstanceUID for ds in study)
    schemas.check_response(answer.body, answer.by_element)


def test_a_body_that_is_not_a_rad69_request_fails(source: Source) -> None:
    body = etree.Element(f"{XDS}RetrieveDocumentSetRequest")
    answer = source.retrieve(body)
    assert answer.status == ResponseStatus.FAILURE
    assert [code for code, _ in answer.errors] == ["XDSRepositoryError"]


def test_a_missing_instance_file_is_reported_not_streamed(source: Source, study: list[Dataset]) -> None:
    stored = source.store.instance(study[0].SOPInstanceUID)
    assert stored is not None
    stored.path.unlink()
    answer = source.retrieve(_request(study))
    assert answer.status == ResponseStatus.PARTIAL_SUCCESS
    assert answer.errors == [("XDSDocumentUniqueIdError", study[0].SOPInstanceUID)]
    assert len(answer.parts) == len(study) - 1


# -- the sans-I/O planner ---------------------------------------------------------------------------
def test_planner_reports_every_problem_of_a_request_at_once() -> None:
    request = rad69_request({"": {"1.2": ["1.2.3"]}, "1.9": {"1.9.1": ["1.9.1.1", ""]}}, repository_id=SOURCE_ID)
    parsed, errors = parse_request(request)
    assert errors == []
    planned, problems = plan(parsed, source_id=SOURCE_ID, instances={}, choose=lambda s, r: s, new_content_id=lambda: "x")
    assert planned == []
    assert [e.code_text for e in problems] == ["XDSRepositoryError", "XDSDocumentUniqueIdError", "XDSDocumentUniqueIdError"]
