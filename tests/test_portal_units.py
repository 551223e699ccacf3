"""The portal's parts on their own: image previews, the PDF sheet, the streamed zip, the study
index, the message catalogues, date formatting and the self-service API client (over an httpx
mock transport that plays the registry's contract)."""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader

from consumer.self_service import (
    NotPermitted,
    PinAlreadySet,
    PinPending,
    SelfServiceClient,
    SessionEnded,
    consent_base_for,
    token_expiry,
    token_studies,
)
from consumer.token import ConsentToken, TokenLocked, TokenMistyped, TokenRefused
from consumer.web.formatting import format_date, format_moment, parse_day_end
from consumer.web.messages import EN, ES
from consumer.web.pdf import Line, text_pdf
from consumer.web.preview import MAX_PIXELS, PRESETS, PreviewError, Window, apply_window, frame_png, render_frame
from consumer.web.studies import load_index
from consumer.web.zipstream import stream_zip
from tests.support.dicom import StudySpec, make_study
from tests.support.portal import grey_dataset, new_code
from xds.security.saml import GrantScope, build_assertion
from xds.xml import to_bytes

TEMPLATES = Path(__file__).resolve().parents[1] / "src" / "consumer" / "web" / "templates"


# -- previews --------------------------------------------------------------------------------------
def _save(ds, path: Path) -> Path:  # type: ignore[no-untyped-def]
    ds.save_as(path, enforce_file_format=True)
    return path


def test_window_is_the_linear_function_of_the_standard() -> None:
    values = np.array([[-1000.0, -160.0, 40.0, 240.0, 3000.0]])
    grey = apply_window(values, PRESETS["soft"])  # centre 40, width 400
    assert grey[0, 0] == 0 and grey[0, -1] == 255
    assert grey[0, 1] == 0 and grey[0, 3] == 255
    assert 126 <= grey[0, 2] <= 128


def test_rescale_then_window_and_monochrome1_inverts(tmp_path: Path) -> None:
    stored = np.array([[0, 1024, 1064, 2048]] * 4, dtype=np.uint16)  # HU -1024, 0, 40, 1024
    plain = _save(grey_dataset(stored, intercept=-1024), tmp_path / "m2.dcm")
    image = np.asarray(render_frame(plain, window="soft"))
    assert image[0, 0] == 0 and image[0, 3] == 255 and 126 <= image[0, 2] <= 128
    assert 0 < image[0, 1] < image[0, 2]
    inverted = _save(grey_dataset(stored, intercept=-1024, photometric="MONOCHROME1"), tmp_path / "m1.dcm")
    flipped = np.asarray(render_frame(inverted, window="soft"))
    assert (flipped.astype(int) == 255 - image.astype(int)).all()


def test_default_window_comes_from_the_file_else_the_range(tmp_path: Path) -> None:
    stored = np.array([[100, 200, 300, 400]] * 4, dtype=np.uint16)
    with_window = _save(grey_dataset(stored, window=(250, 41)), tmp_path / "w.dcm")
    image = np.asarray(render_frame(with_window))
    assert image[0, 0] == image[0, 1] == 0 and image[0, 2] == image[0, 3] == 255  # 200 below, 300 above 250 +- 20
    full = np.asarray(render_frame(with_window, window="full"))
    assert full[0, 0] == 0 and full[0, 3] == 255 and 0 < full[0, 1] < full[0, 2] < 255
    without = _save(grey_dataset(stored), tmp_path / "n.dcm")
    assert (np.asarray(render_frame(without)) == full).all()


def test_rgb_is_shown_as_is_and_sizes_are_bounded(tmp_path: Path) -> None:
    from pydicom.uid import ExplicitVRLittleEndian

    ds = grey_dataset(np.zeros((300, 200), dtype=np.uint16))
    rgb = np.zeros((300, 200, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    rgb[..., 2] = 50
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PixelData = rgb.tobytes()
    path = _save(ds, tmp_path / "rgb.dcm")
    png = Image.open(io.BytesIO(frame_png(path, box=100)))
    assert png.mode == "RGB" and png.size == (67, 100)
    assert png.getpixel((30, 50)) == (200, 0, 50)
    big = grey_dataset(np.zeros((4, 4), dtype=np.uint16))
    big.Rows = big.Columns = int(MAX_PIXELS**0.5) + 1
    with pytest.raises(PreviewError, match="too large"):
        render_frame(_save(big, tmp_path / "big.dcm"))
    with pytest.raises(PreviewError, match="out of range"):
        render_frame(path, frame=1)
    (tmp_path / "junk.dcm").write_bytes(b"not dicom at all")
    with pytest.raises(PreviewError):
        render_frame(tmp_path / "junk.dcm")
    assert Window(1, 1) == Window(1, 1)


def test_study_index_orders_series_and_slices(tmp_path: Path) -> None:
    spec = StudySpec(modalities=("CT", "MR"), instances_per_series=4, rows=16, columns=16, body_part="ABDOMEN")
    datasets = make_study(spec)
    study = tmp_path / spec.study_uid
    for ds in reversed(datasets):  # written in reverse: the index must sort them
        target = study / ds.SeriesInstanceUID / f"{ds.SOPInstanceUID}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(target, enforce_file_format=True)
    (study / "manifest-1.dcm").write_bytes(b"ignored: not in a series directory")
    index = load_index(study)
    assert [s.modality for s in index.series] == ["CT", "MR"]
    by_uid = {ds.SOPInstanceUID: ds.InstanceNumber for ds in datasets}
    for series in index.series:
        numbers = [by_uid[Path(f.path).stem] for f in series.frames]
        assert numbers == [1, 2, 3, 4]
    assert index.body_parts == ("ABDOMEN",) and index.files == 8
    assert load_index(study) == index  # read back from its JSON


# -- the sheet, the zip ----------------------------------------------------------------------------
def test_pdf_sheet_reads_back_with_an_independent_parser() -> None:
    pdf = text_pdf([Line("Acceso compartido", size=18, bold=True), Line("Código: 1234-5678"), Line("PIN (x) \\ 246810")], title="Hoja")
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    assert "Código: 1234-5678" in text and "PIN (x) \\ 246810" in text and "Acceso compartido" in text
    assert reader.metadata is not None and reader.metadata.title == "Hoja"


def test_zip_is_streamed_in_chunks_and_reads_back(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    files = []
    for i in range(3):
        path = tmp_path / f"f{i}.dcm"
        path.write_bytes(rng.integers(0, 256, size=3 << 20, dtype=np.uint8).tobytes())
        files.append((f"series-{i}/f{i}.dcm", path))
    chunks = list(stream_zip(files))
    total = sum(len(c) for c in chunks)
    assert len(chunks) > 6 and max(len(c) for c in chunks) < total // 3
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as archive:
        assert archive.testzip() is None
        for name, path in files:
            assert archive.read(name) == path.read_bytes()


# -- catalogues and formatting ---------------------------------------------------------------------
def test_catalogues_have_the_same_keys_and_placeholders() -> None:
    assert set(EN) == set(ES)
    for key in EN:
        assert set(re.findall(r"{(\w+)}", EN[key])) == set(re.findall(r"{(\w+)}", ES[key])), key
        assert ES[key].strip(), key


def test_every_template_key_is_in_the_catalogue() -> None:
    used: set[str] = set()
    for template in TEMPLATES.glob("*.html"):
        used.update(re.findall(r"_\('([a-z_]+)'", template.read_text()))
    dynamic = {k for k in used if k.endswith("_")}
    assert dynamic == {"language_", "window_"}
    assert (used - dynamic) - set(EN) == set()
    assert {"window_soft", "window_lung", "window_bone", "window_brain", "window_default", "window_full"} <= set(EN)


def test_dates_for_people() -> None:
    assert format_date("20261115093000") == "2026-11-15"
    assert format_date("2026-11-15T09:30:00Z") == "2026-11-15"
    assert format_date("sometime") == "sometime"
    assert format_moment(datetime(2026, 12, 24, 10, 0, tzinfo=UTC)) == "2026-12-24 10:00 UTC"
    assert format_moment(None) == ""
    assert parse_day_end("2026-12-24") == datetime(2026, 12, 24, 23, 59, 59, tzinfo=UTC)
    assert parse_day_end("24/12/2026") is None


# -- the self-service client -----------------------------------------------------------------------
def _token(studies: set[str], *, lifetime: timedelta = timedelta(minutes=5)) -> ConsentToken:
    element = build_assertion(
        issuer="urn:t", subject="g-1", audience="urn:a", scope=GrantScope(patient_id="P", study_instance_uids=frozenset(studies)),
        now=datetime(2026, 3, 1, tzinfo=UTC), lifetime=lifetime,
    )  # fmt: skip
    return ConsentToken(assertion=element, raw=to_bytes(element))


class Registry:
    """The self-service contract, as an httpx handler; records each request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.pin_pending = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        auth = request.headers.get("authorization", "")
        if path == "/consent/token":
            if self.pin_pending:
                return httpx.Response(401, json={"error": "no PIN yet", "pin_pending": True})
            if b"pin=2468" not in request.content:
                return httpx.Response(401, json={"error": "not accepted"})
            return httpx.Response(200, content=_token({"1.2.3"}).raw, headers={"content-type": "application/samlassertion+xml"})
        if path == "/consent/self/activate":
            body = json.loads(request.content)
            status = {"2468": 204, "1111": 409, "2222": 423}.get(body["pin"], 401)
            headers = {"retry-after": "90"} if status == 423 else {}
            return httpx.Response(status, json={"error": "x"} if status != 204 else None, headers=headers)
        if not auth.startswith("SAML "):
            return httpx.Response(401, json={"error": "no token"})
        presented = base64.b64decode(auth[5:])
        if b"revoked" in presented:
            return httpx.Response(401, json={"error": "revoked"})
        if path == "/consent/self":
            return httpx.Response(200, json={
                "grant_id": "g-1", "patient_id": "P1^^^&1.2&ISO", "is_share": False, "label": "", "created": "2026-03-01T00:00:00Z",
                "expires": "2026-06-01T00:00:00+00:00",
                "exams": [{"study_uid": "1.2.3", "manifest_unique_id": "1.2.3.9", "report_unique_ids": ["1.2.3.8"],
                           "release_time": "2026-03-02T00:00:00Z", "released": True, "title": "CT chest", "date": "20260301",
                           "modalities": ["CT"]}],
            })  # fmt: skip
        if path == "/consent/self/token":
            return httpx.Response(200, content=_token({"1.2.3", "1.2.4"}).raw)
        share = {"grant_id": "s-1", "label": "Dr. Lee", "study_uids": ["1.2.3"], "created": "2026-03-01T00:00:00Z",
                 "expires": "2026-04-01T00:00:00Z", "revoked": False, "last_used": None}  # fmt: skip
        if path == "/consent/self/shares" and request.method == "GET":
            return httpx.Response(200, json={"shares": [share]})
        if path == "/consent/self/shares":
            body = json.loads(request.content)
            assert body["expires"].endswith("+00:00") and body["study_uids"] == ["1.2.3"]
            return httpx.Response(201, json={"share": share, "access_code": "12345674", "access_code_display": "1234-5674", "pin": "909090"})
        if path == "/consent/self/shares/s-1/extend":
            return httpx.Response(200, json={"share": {**share, "expires": json.loads(request.content)["expires"]}})
        if path == "/consent/self/shares/s-1/revoke":
            return httpx.Response(200, json={"revoked": 1})
        if path == "/consent/self/shares/s-2/revoke":
            return httpx.Response(403, json={"error": "a share's token"})
        return httpx.Response(404, json={"error": "no such endpoint"})


def _client(registry: Registry) -> SelfServiceClient:
    return SelfServiceClient("http://reg.test:8010/registry", transport=httpx.MockTransport(registry))


def test_urls_and_what_the_assertion_says() -> None:
    assert consent_base_for("http://reg.test:8010/registry") == "http://reg.test:8010/consent"
    assert consent_base_for("https://h/xds/registry/") == "https://h/xds/consent"
    token = _token({"1.2.3", "1.2.4"})
    assert token_studies(token) == {"1.2.3", "1.2.4"}
    assert token_expiry(token) == datetime(2026, 3, 1, 0, 5, tzinfo=UTC)


def test_sign_in_and_pin_pending() -> None:
    registry = Registry()
    client = _client(registry)
    code = new_code(1234567)
    token = client.sign_in(code, "2468")
    assert token_studies(token) == {"1.2.3"}
    with pytest.raises(TokenRefused) as refused:
        client.sign_in(code, "1357")
    assert not isinstance(refused.value, PinPending)
    registry.pin_pending = True
    with pytest.raises(PinPending):
        client.sign_in(code, "0000")
    sent = len(registry.requests)
    with pytest.raises(TokenMistyped):
        client.sign_in(code[:-1] + str((int(code[-1]) + 1) % 10), "2468")
    assert len(registry.requests) == sent  # a typo never reaches the registry


def test_activate_maps_the_contracts_statuses() -> None:
    registry = Registry()
    client = _client(registry)
    code = new_code(7654321)
    client.activate(code, "2468")
    assert json.loads(registry.requests[-1].content) == {"code": code, "pin": "2468"}
    with pytest.raises(PinAlreadySet):
        client.activate(code, "1111")
    with pytest.raises(TokenLocked) as locked:
        client.activate(code, "2222")
    assert locked.value.retry_after == 90
    with pytest.raises(TokenRefused):
        client.activate(code, "3333")
    with pytest.raises(TokenMistyped):
        client.activate("1234", "2468")


def test_grant_refresh_and_shares() -> None:
    registry = Registry()
    client = _client(registry)
    token = _token({"1.2.3"})
    grant = client.grant(token)
    auth = registry.requests[-1].headers["authorization"]
    assert auth == "SAML " + base64.b64encode(token.raw).decode()
    assert grant.patient_id == "P1^^^&1.2&ISO" and grant.expires == datetime(2026, 6, 1, tzinfo=UTC)
    exam = grant.exams[0]
    assert exam.released and exam.report_unique_ids == ("1.2.3.8",) and exam.modalities == ("CT",)
    assert exam.release_time == datetime(2026, 3, 2, tzinfo=UTC)
    assert token_studies(client.refresh(token)) == {"1.2.3", "1.2.4"}
    shares = client.shares(token)
    assert [s.label for s in shares] == ["Dr. Lee"] and shares[0].last_used is None
    made = client.create_share(token, label="Dr. Lee", study_uids=["1.2.3"], expires=datetime(2026, 4, 1, tzinfo=UTC))
    assert made.access_code == "12345674" and made.pin == "909090" and "909090" not in repr(made)
    extended = client.extend_share(token, "s-1", expires=datetime(2026, 5, 1, tzinfo=UTC))
    assert extended.expires == datetime(2026, 5, 1, tzinfo=UTC)
    assert client.revoke_share(token, "s-1") == 1
    with pytest.raises(NotPermitted):
        client.revoke_share(token, "s-2")
    with pytest.raises(ValueError):
        client.create_share(token, label="x", study_uids=["1.2.3"], expires=datetime(2026, 4, 1))


def test_a_token_the_registry_refuses_ends_the_session() -> None:
    registry = Registry()
    element = build_assertion(
        issuer="urn:t", subject="revoked", audience="urn:a", scope=GrantScope(patient_id="P"),
        now=datetime(2026, 3, 1, tzinfo=UTC), lifetime=timedelta(minutes=5),
    )  # fmt: skip
    gone = ConsentToken(assertion=element, raw=to_bytes(element))
    with pytest.raises(SessionEnded):
        _client(registry).grant(gone)
    with pytest.raises(SessionEnded):
        _client(registry).refresh(gone)
