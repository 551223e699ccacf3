"""``xds consumer fetch | list`` end to end over loopback HTTP with the real actors: a registry and
a repository (the manifest and report arrive there by RAD-68 from the Edge Server's sender) and the
Edge Server's RAD-69 endpoint over a DicomStore of synthetic studies. Images byte-identical,
batches smaller than the study, interruption (the source breaking off mid-response, the consumer
stopped mid-way) then a resumed run that asks only for the rest, PartialSuccess, an unknown
Retrieve Location UID, the report saved next to the images, the exam list."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner, Result
from lxml import etree
from pydicom import dcmread
from pydicom.dataset import Dataset

from consumer import fetch as imaging
from consumer.cli import consumer
from consumer.kos import KosError, read_manifest
from consumer.rad69 import build_request
from imaging_source.app import PATH, build_source_app, open_store
from imaging_source.config import SourceSettings
from imaging_source.dicomstore import DicomStore
from imaging_source.kos import encode_part10, kos_for_study
from imaging_source.rad68 import DocumentFacts, ExamFacts, PatientMapping, build_submission, resolve_codes
from imaging_source.submit import DocumentFile, Rad68Sender, SubmitOutcome
from profiles.codes import load_code_set
from tests.support.dicom import StudySpec, make_study, part10_bytes
from tests.support.paths import CODES_XML, REPO, SCHEMAS
from tests.support.repository import Live, live_pair
from xds.http.server import ServerThread
from xds.vocabulary import NS_WSSE

AFFINITY = "1.3.6.1.4.1.21367.13.20.1000"
LOCAL = "1.3.6.1.4.1.21367.13.20.9999"
SOURCE_ID = "1.3.6.1.4.1.21367.13.80.120"
AET = "XDSEDGE"
CODES = load_code_set(CODES_XML)
CHOICES = resolve_codes(
    {
        "class_images": "IMAGES^^1.3.6.1.4.1.19376.1.2.6.1",
        "class_reports": "REPORTS^^1.3.6.1.4.1.19376.1.2.6.1",
        "type_default": "18748-4^^2.16.840.1.113883.6.1",
        "type_report": "11528-7^^2.16.840.1.113883.6.1",
        "confidentiality": "N^^2.16.840.1.113883.5.25",
        "healthcare_facility_type": "22232009^^2.16.840.1.113883.6.96",
        "practice_setting": "309964003^^2.16.840.1.113883.6.96",
        "content_type": "UNSPECIFIED-CONTENT-TYPE^^1.3.6.1.4.1.21367.2017.3",
        "format_text": "urn:ihe:rad:TEXT^^1.3.6.1.4.1.19376.1.2.3",
        "format_pdf": "urn:ihe:rad:PDF^^1.3.6.1.4.1.19376.1.2.3",
    },
    CODES,
)
MAPPING = PatientMapping(AFFINITY, local_oid=LOCAL)
PATIENT = "PAT001"
PID = f"{PATIENT}^^^&{AFFINITY}&ISO"
_UID = re.compile(rb"DocumentUniqueId>\s*([0-9.]+)\s*<")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


class Tap:
    """ASGI middleware in front of the Edge Server: records the SOP Instance UIDs each RAD-69
    request asks for and, when told, breaks the connection off part-way through a response."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app
        self.requests: list[list[str]] = []
        #: Requests answered in full before one is cut; None = never cut.
        self.cut_after_requests: int | None = None
        #: How many response body bytes the cut request still gets.
        self.cut_at_bytes = 30_000
        #: With ``stall``, the cut request hangs there instead (until ``release`` is set).
        self.stall = False
        self.stalled = threading.Event()
        self.release = threading.Event()

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        self.requests.append([m.decode() for m in _UID.findall(body)])
        cut = self.cut_after_requests is not None and len(self.requests) > self.cut_after_requests
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        sent = 0

        async def guarded(message: Message) -> None:
            nonlocal sent
            if cut and message["type"] == "http.response.body":
                data = message.get("body", b"")
                if sent + len(data) >= self.cut_at_bytes:
                    await send({"type": "http.response.body", "body": data[: self.cut_at_bytes - sent], "more_body": True})
                    if self.stall:
                        self.stalled.set()
                        while not self.release.is_set():
                            await anyio.sleep(0.05)
                    raise ConnectionAbortedError("the source breaks off")
                sent += len(data)
            await send(message)

        await self.app(scope, replay, guarded)

    @property
    def asked(self) -> list[str]:
        return [uid for request in self.requests for uid in request]


@dataclass
class World:
    """The running actors and what was shared."""

    live: Live
    store: DicomStore
    tap: Tap
    source_url: str
    tmp: Path
    studies: dict[str, list[Dataset]] = field(default_factory=dict)
    manifests: dict[str, str] = field(default_factory=dict)  # study UID -> KOS uniqueId
    reports: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # study UID -> (uniqueId, bytes)

    def share(
        self, spec: StudySpec, *, report: bytes | None = None, edit: Callable[[Dataset], None] | None = None
    ) -> list[Dataset]:
        """Store the study at the Edge Server and submit its KOS (changed by ``edit``) and report by RAD-68."""
        datasets = make_study(spec)
        for ds in datasets:
            self.store.store_bytes(part10_bytes(ds))
        kos = kos_for_study(self.store, spec.study_uid, source_id=SOURCE_ID, retrieve_ae_title=AET)
        if edit is not None:
            edit(kos)
        kos_bytes = encode_part10(kos)
        work = self.tmp / "submit" / spec.study_uid
        work.mkdir(parents=True)
        kos_path = work / "kos.dcm"
        kos_path.write_bytes(kos_bytes)
        kos = dcmread(kos_path)
        contents = self.store.contents(spec.study_uid)
        assert contents is not None
        exam = ExamFacts(contents.study, tuple(s.modality for s in contents.series), tuple(s.body_part for s in contents.series))
        manifest = DocumentFacts(str(kos.SOPInstanceUID), "application/dicom", hashlib.sha1(kos_bytes).hexdigest(), len(kos_bytes), f"{kos.ContentDate}{kos.ContentTime}"[:14])
        documents = [DocumentFile("Manifest", kos_path, "application/dicom")]
        report_facts = None
        if report is not None:
            report_uid = f"2.25.{int.from_bytes(os.urandom(12), 'big')}"
            (work / "report.txt").write_bytes(report)
            report_facts = DocumentFacts(report_uid, "text/plain", hashlib.sha1(report).hexdigest(), len(report), "20250101120000")
            documents.append(DocumentFile("Report", work / "report.txt", "text/plain"))
            self.reports[spec.study_uid] = (report_uid, report)
        submission = build_submission(
            exam, manifest=manifest, report=report_facts, submission_uid=f"2.25.{int.from_bytes(os.urandom(12), 'big')}",
            source_id=SOURCE_ID, submission_time=dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S"), mapping=MAPPING,
            choices=CHOICES, codes=CODES,
        )  # fmt: skip
        result = Rad68Sender(self.live.url).send(submission, documents)
        assert result.outcome is SubmitOutcome.ACCEPTED, result.detail
        self.studies[spec.study_uid] = datasets
        self.manifests[spec.study_uid] = manifest.unique_id
        return datasets

    def fetch(self, out: Path, *args: str, sources: tuple[str, ...] | None = None, progress: bool = False) -> Result:
        mapping = (f"{SOURCE_ID}={self.source_url}",) if sources is None else sources
        flags = ["--no-fsync"] if progress else ["--no-progress", "--no-fsync"]
        argv = ["fetch", "--patient", PID, "--out", str(out), *flags, *[a for s in mapping for a in ("--source", s)], *args]
        return run(self.live, *argv)


def run(live: Live, *args: str) -> Result:
    env = {"XDS_CONSUMER_REGISTRY": live.registry_url, "XDS_CONSUMER_REPOSITORY": live.url, "COLUMNS": "400"}
    return CliRunner().invoke(consumer, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    settings = SourceSettings(data_dir=tmp_path / "edge", source_id=SOURCE_ID, fsync=False, schemas=SCHEMAS if SCHEMAS.is_dir() else None)
    store = open_store(settings)
    tap = Tap(build_source_app(settings, store=store))
    (tmp_path / "xds").mkdir()
    try:
        with live_pair(tmp_path / "xds", f"sqlite:///{tmp_path / 'repository.sqlite'}") as live, ServerThread(tap) as edge:
            live.feed(PID)
            yield World(live, store, tap, edge.url + PATH, tmp_path)
    finally:
        store.engine.dispose()


def after_meta(data: bytes) -> bytes:
    """The data set of a Part 10 file: what follows the File Meta group (PS3.10 §7.1)."""
    assert data[128:132] == b"DICM"
    assert data[132:138] == b"\x02\x00\x00\x00UL"  # (0002,0000) File Meta Information Group Length
    return data[144 + int.from_bytes(data[140:144], "little") :]


def image_path(out: Path, ds: Dataset) -> Path:
    return out / PATIENT / ds.StudyInstanceUID / ds.SeriesInstanceUID / f"{ds.SOPInstanceUID}.dcm"


def assert_identical(out: Path, datasets: list[Dataset]) -> None:
    for ds in datasets:
        written = image_path(out, ds).read_bytes()
        assert after_meta(written) == after_meta(part10_bytes(ds)), ds.SOPInstanceUID


def files_under(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file())


# -- the whole flow ----------------------------------------------------------------------------------
def test_fetch_writes_every_image_byte_identical_with_the_manifest_and_report(world: World, tmp_path: Path) -> None:
    spec = StudySpec(accession="ACC500", modalities=("CT", "MR"), instances_per_series=3)
    datasets = world.share(spec, report=b"CT and MR: no abnormality.\n")
    out = tmp_path / "images"
    result = world.fetch(out, progress=True)  # with the progress bar
    assert result.exit_code == 0, result.output
    assert_identical(out, datasets)
    study_dir = out / PATIENT / spec.study_uid
    report_uid, report = world.reports[spec.study_uid]
    assert (study_dir / f"report-{report_uid}.txt").read_bytes() == report
    manifest = read_manifest((study_dir / f"manifest-{world.manifests[spec.study_uid]}.dcm").read_bytes())
    assert {i.sop_instance_uid for i in manifest.images()} == {ds.SOPInstanceUID for ds in datasets}
    expected = {image_path(out, ds) for ds in datasets} | {study_dir / f"report-{report_uid}.txt", study_dir / f"manifest-{world.manifests[spec.study_uid]}.dcm"}
    assert set(files_under(out)) == expected  # nothing else: no spool or temporary file left
    assert "studies: 1  instances: 6 (fetched 6, already present 0)" in result.output
    assert "failures: 0" in result.output
    assert sorted(world.tap.asked) == sorted(ds.SOPInstanceUID for ds in datasets)


def test_batches_smaller_than_the_study(world: World, tmp_path: Path) -> None:
    spec = StudySpec(accession="ACC501", modalities=("CT",), instances_per_series=7)
    datasets = world.share(spec)
    out = tmp_path / "images"
    result = world.fetch(out, "--batch", "3")
    assert result.exit_code == 0, result.output
    assert [len(r) for r in world.tap.requests] == [3, 3, 1]
    assert sorted(world.tap.asked) == sorted(ds.SOPInstanceUID for ds in datasets)
    assert_identical(out, datasets)


def test_a_rerun_asks_for_nothing_already_there(world: World, tmp_path: Path) -> None:
    datasets = world.share(StudySpec(accession="ACC502", instances_per_series=4))
    out = tmp_path / "images"
    assert world.fetch(out).exit_code == 0
    before = {p: p.stat().st_ino for p in files_under(out) if p.suffix == ".dcm" and not p.name.startswith("manifest-")}
    assert len(before) == 4
    world.tap.requests.clear()
    again = world.fetch(out)
    assert again.exit_code == 0, again.output
    assert world.tap.requests == []  # no RAD-69 at all
    assert "fetched 0, already present 4" in again.output
    assert {p: p.stat().st_ino for p in before} == before  # the images were not rewritten
    assert_identical(out, datasets)


def test_a_damaged_file_is_fetched_again(world: World, tmp_path: Path) -> None:
    datasets = world.share(StudySpec(accession="ACC503", instances_per_series=3))
    out = tmp_path / "images"
    assert world.fetch(out).exit_code == 0
    victim = image_path(out, datasets[1])
    victim.write_bytes(b"garbage")
    world.tap.requests.clear()
    again = world.fetch(out)
    assert again.exit_code == 0, again.output
    assert world.tap.asked == [datasets[1].SOPInstanceUID]
    assert_identical(out, datasets)


# -- interruption and resume ------------------------------------------------------------------------
def test_a_source_breaking_off_mid_response_then_a_resumed_run(world: World, tmp_path: Path) -> None:
    spec = StudySpec(accession="ACC504", instances_per_series=7)
    datasets = world.share(spec)
    uids = [ds.SOPInstanceUID for ds in datasets]
    world.tap.cut_after_requests = 1  # the second batch is cut part-way through its response
    out = tmp_path / "images"
    first = world.fetch(out, "--batch", "3")
    assert first.exit_code == 1, first.output
    assert [len(r) for r in world.tap.requests] == [3, 3]  # the source is not asked again after breaking off
    written = sorted(p.name for p in files_under(out) if p.parent.name == spec.study_uid or p.parent.parent.name == spec.study_uid)
    assert sorted(f"{uid}.dcm" for uid in uids[:3]) == [n for n in written if not n.startswith("manifest-")]
    assert_identical(out, datasets[:3])  # complete files only, under their final names
    assert not [p for p in files_under(out) if p.name.endswith(".tmp") or p.name.startswith("xds-part-")]
    assert "missing 4 instance(s)" in first.output
    for uid in uids[3:]:
        assert uid in first.output

    world.tap.cut_after_requests = None
    world.tap.requests.clear()
    second = world.fetch(out, "--batch", "3")
    assert second.exit_code == 0, second.output
    assert sorted(world.tap.asked) == sorted(uids[3:])  # only the rest
    assert "fetched 4, already present 3" in second.output
    assert_identical(out, datasets)


class StopAfter:
    """A progress display whose user presses Ctrl-C after ``n`` stored instances."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.stored_sizes: list[int] = []
        self.received_bytes = 0
        self.plan: tuple[int, int] | None = None

    def planned(self, total: int, present: int) -> None:
        self.plan = (total, present)

    def received(self, n: int) -> None:
        self.received_bytes += n

    def stored(self, size: int) -> None:
        self.stored_sizes.append(size)
        if len(self.stored_sizes) == self.n:
            raise KeyboardInterrupt


def test_the_consumer_stopped_mid_batch_leaves_only_complete_files(world: World, tmp_path: Path) -> None:
    spec = StudySpec(accession="ACC505", instances_per_series=7)
    datasets = world.share(spec)
    out = tmp_path / "images"
    options = imaging.FetchOptions(
        registry=world.live.registry_url, repository=world.live.url, patient_id=PID, out=out,
        sources={SOURCE_ID: world.source_url}, batch_size=5, fsync=False,
    )  # fmt: skip
    stopper = StopAfter(2)
    with pytest.raises(KeyboardInterrupt):
        imaging.fetch(options, progress=stopper)
    assert stopper.plan == (7, 0)
    assert stopper.received_bytes > sum(stopper.stored_sizes) > 0
    images = [p for p in files_under(out) if not p.name.startswith("manifest-")]
    assert len(images) == 2 and images == sorted(image_path(out, ds) for ds in datasets if image_path(out, ds).exists())
    assert not list(out.glob(".xds-fetch-*"))  # the spool of the run is gone
    assert_identical(out, [ds for ds in datasets if image_path(out, ds).exists()])

    world.tap.requests.clear()
    resumed = imaging.fetch(options)
    assert resumed.ok and (resumed.fetched, resumed.present, resumed.instances) == (5, 2, 7)
    assert len(world.tap.asked) == 5
    assert_identical(out, datasets)


def test_a_consumer_killed_mid_batch_then_a_resumed_run(world: World, tmp_path: Path) -> None:
    spec = StudySpec(accession="ACC515", instances_per_series=7)
    datasets = world.share(spec)
    uids = [ds.SOPInstanceUID for ds in datasets]
    world.tap.cut_after_requests, world.tap.stall = 1, True  # the second batch hangs mid-response
    out = tmp_path / "images"
    argv = [
        sys.executable, "-c", "from consumer.cli import consumer; consumer()", "fetch", "--patient", PID,
        "--out", str(out), "--batch", "3", "--no-progress", "--source", f"{SOURCE_ID}={world.source_url}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "XDS_CONSUMER_REGISTRY": world.live.registry_url, "XDS_CONSUMER_REPOSITORY": world.live.url}
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert world.tap.stalled.wait(60), process.communicate(timeout=5)[0].decode(errors="replace")
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        world.tap.release.set()
        if process.poll() is None:
            process.kill()
            process.wait()
    images = [p for p in files_under(out) if p.suffix == ".dcm" and not p.name.startswith(("manifest-", "."))]
    assert sorted(p.name for p in images) == sorted(f"{uid}.dcm" for uid in uids[:3])
    assert_identical(out, datasets[:3])  # the first batch, complete; nothing of the second under a final name
    assert list(out.glob(".xds-fetch-*"))  # the killed run's spool is still there...

    world.tap.cut_after_requests, world.tap.stall = None, False
    world.tap.requests.clear()
    resumed = world.fetch(out, "--batch", "3")
    assert resumed.exit_code == 0, resumed.output
    assert sorted(world.tap.asked) == sorted(uids[3:])
    assert "fetched 4, already present 3" in resumed.output
    assert not list(out.glob(".xds-fetch-*"))  # ...until the next run sweeps it (its process is gone)
    assert_identical(out, datasets)


def test_a_stale_spool_of_a_killed_run_is_swept(world: World, tmp_path: Path) -> None:
    datasets = world.share(StudySpec(accession="ACC506", instances_per_series=1))
    out = tmp_path / "images"
    stale = out / ".xds-fetch-killed"
    stale.mkdir(parents=True)
    (stale / "xds-part-1.tmp").write_bytes(b"half an instance")
    old = time.time() - 2 * imaging.STALE_WORK_SECONDS
    os.utime(stale, (old, old))
    series_dir = image_path(out, datasets[0]).parent
    series_dir.mkdir(parents=True)
    leftover = series_dir / f".{datasets[0].SOPInstanceUID}.dcm.99999.tmp"
    leftover.write_bytes(b"half")
    assert world.fetch(out).exit_code == 0
    assert not stale.exists() and not leftover.exists()
    assert_identical(out, datasets)


# -- what is missing --------------------------------------------------------------------------------
def test_an_instance_missing_at_the_source_is_partial_success_and_exit_1(world: World, tmp_path: Path) -> None:
    datasets = world.share(StudySpec(accession="ACC507", instances_per_series=4))
    gone = datasets[2]
    stored = world.store.instance(gone.SOPInstanceUID)
    assert stored is not None
    stored.path.unlink()
    out = tmp_path / "images"
    result = world.fetch(out)
    assert result.exit_code == 1, result.output
    assert "missing 1 instance(s)" in result.output
    assert gone.SOPInstanceUID in result.output and "XDSDocumentUniqueIdError" in result.output
    present = [ds for ds in datasets if ds is not gone]
    assert_identical(out, present)  # what came is kept
    assert not image_path(out, gone).exists()

    world.store.store_bytes(part10_bytes(gone))  # back at the source
    world.tap.requests.clear()
    retried = world.fetch(out)
    assert retried.exit_code == 0, retried.output
    assert world.tap.asked == [gone.SOPInstanceUID]
    assert_identical(out, datasets)


def test_an_instance_that_does_not_match_its_reference_is_refused(world: World, tmp_path: Path) -> None:
    edited: list[str] = []

    def claim_mr(kos: Dataset) -> None:
        series = kos.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
        series.ReferencedSOPSequence[0].ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"  # MR Image Storage
        edited.append(series.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)

    datasets = world.share(StudySpec(accession="ACC514", modalities=("CT",), instances_per_series=3), edit=claim_mr)
    out = tmp_path / "images"
    result = world.fetch(out)
    assert result.exit_code == 1, result.output
    assert "missing 1 instance(s)" in result.output
    assert "SOP Class UID 1.2.840.10008.5.1.4.1.1.2 instead of 1.2.840.10008.5.1.4.1.1.4" in result.output
    assert edited[0] in result.output
    kept = sorted(ds.SOPInstanceUID for ds in datasets if image_path(out, ds).exists())
    assert kept == sorted(ds.SOPInstanceUID for ds in datasets if ds.SOPInstanceUID != edited[0])
    assert not [p for p in files_under(out) if p.name.startswith(("xds-part-", "."))]


def test_an_unknown_retrieve_location_uid_is_named(world: World, tmp_path: Path) -> None:
    datasets = world.share(StudySpec(accession="ACC508", instances_per_series=2))
    result = world.fetch(tmp_path / "images", sources=("1.2.3.4.5=http://127.0.0.1:9/imaging-source",))
    assert result.exit_code == 1, result.output
    assert f"no endpoint is configured for Retrieve Location UID {SOURCE_ID}" in result.output
    assert f"--source {SOURCE_ID}=URL" in result.output
    assert all(ds.SOPInstanceUID in result.output for ds in datasets)
    assert world.tap.requests == []


def test_the_source_mapping_can_come_from_a_config_file(world: World, tmp_path: Path) -> None:
    datasets = world.share(StudySpec(accession="ACC509", instances_per_series=2))
    config = tmp_path / "consumer.toml"
    config.write_text(f'[consumer]\nsources = ["{SOURCE_ID}={world.source_url}"]\n')
    result = world.fetch(tmp_path / "images", "--config", str(config), sources=())
    assert result.exit_code == 0, result.output
    assert_identical(tmp_path / "images", datasets)
    bad = world.fetch(tmp_path / "images", sources=("no-equals-sign",))
    assert bad.exit_code == 2 and "OID=URL" in bad.output


# -- several exams, the list ----------------------------------------------------------------------
def test_list_shows_the_exams_and_study_selects_one(world: World, tmp_path: Path) -> None:
    first = StudySpec(accession="ACC510", modalities=("CT",), instances_per_series=2, study_date="20240301")
    second = StudySpec(accession="ACC511", modalities=("MR",), instances_per_series=3, study_date="20240405")
    world.share(first, report=b"Report one.\n")
    wanted = world.share(second)
    listed = run(world.live, "list", "--patient", PID)
    assert listed.exit_code == 0, listed.output
    rows = {line.split("│")[1].strip(): line for line in listed.output.splitlines() if line.count("│") > 6 and "1." in line}
    assert set(rows) == {first.study_uid, second.study_uid}
    one, two = rows[first.study_uid], rows[second.study_uid]
    assert "ACC510" in one and "2024-03-01 10:15" in one and " CT " in one and world.manifests[first.study_uid] in one and "text/plain" in one
    assert "ACC511" in two and "2024-04-05 10:15" in two and " MR " in two and world.manifests[second.study_uid] in two and "│ no" in two
    assert listed.output.index(second.study_uid) < listed.output.index(first.study_uid)  # newest first

    out = tmp_path / "images"
    result = world.fetch(out, "--study", second.study_uid)
    assert result.exit_code == 0, result.output
    assert sorted(world.tap.asked) == sorted(ds.SOPInstanceUID for ds in wanted)
    assert not (out / PATIENT / first.study_uid).exists()
    assert_identical(out, wanted)
    absent = world.fetch(out, "--study", "1.2.3.404")
    assert absent.exit_code == 1 and "study 1.2.3.404" in absent.output


# -- the security seam and the pieces ----------------------------------------------------------------
def test_every_soap_call_carries_the_security_header(world: World, tmp_path: Path) -> None:
    datasets = world.share(StudySpec(accession="ACC512", instances_per_series=2), report=b"ok\n")
    made: list[etree._Element] = []

    def token() -> etree._Element:
        header = etree.Element(f"{{{NS_WSSE}}}Security")
        etree.SubElement(header, f"{{{NS_WSSE}}}BinarySecurityToken").text = f"token-{len(made)}"
        made.append(header)
        return header

    options = imaging.FetchOptions(
        registry=world.live.registry_url, repository=world.live.url, patient_id=PID, out=tmp_path / "images",
        sources={SOURCE_ID: world.source_url}, fsync=False, security=token,
    )  # fmt: skip
    summary = imaging.fetch(options)
    assert summary.ok and summary.fetched == 2 and len(summary.reports) == 1
    # FindDocuments, GetSubmissionSets, GetSubmissionSetAndContents, ITI-43, one RAD-69.
    assert len(made) == 5
    assert all(h.getparent() is not None and h.getparent().tag.endswith("}Header") for h in made)
    assert_identical(tmp_path / "images", datasets)


def test_rad69_request_groups_study_series_documents_and_is_schema_valid() -> None:
    from consumer.kos import ImageReference

    images = [
        ImageReference("1.1", "1.1.1", "1.2.840.10008.5.1.4.1.1.2", "1.1.1.1", SOURCE_ID),
        ImageReference("1.1", "1.1.2", "1.2.840.10008.5.1.4.1.1.2", "1.1.2.1", SOURCE_ID),
        ImageReference("1.1", "1.1.1", "1.2.840.10008.5.1.4.1.1.2", "1.1.1.2", SOURCE_ID),
    ]
    request = build_request(images, repository_id=SOURCE_ID, transfer_syntaxes=["1.2.840.10008.1.2.1"])
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "schema" / "IHE" / "XDSI.b_ImagingDocumentSource.xsd")))
    assert schema.validate(request), schema.error_log
    xdsi, xds = "{urn:ihe:rad:xdsi-b:2009}", "{urn:ihe:iti:xds-b:2007}"
    series = {s.get("seriesInstanceUID"): [d.findtext(f"{xds}DocumentUniqueId") for d in s] for s in request.iter(f"{xdsi}SeriesRequest")}
    assert series == {"1.1.1": ["1.1.1.1", "1.1.1.2"], "1.1.2": ["1.1.2.1"]}
    assert {r.text for r in request.iter(f"{xds}RepositoryUniqueId")} == {SOURCE_ID}
    with pytest.raises(ValueError):
        build_request(images, repository_id=SOURCE_ID, transfer_syntaxes=[])


def test_the_kos_reader_refuses_what_is_not_a_manifest(world: World) -> None:
    datasets = world.share(StudySpec(accession="ACC513", instances_per_series=1))
    with pytest.raises(KosError, match="not a Key Object Selection"):
        read_manifest(part10_bytes(datasets[0]))
    with pytest.raises(KosError, match="not readable"):
        read_manifest(b"not dicom at all")
    kos = kos_for_study(world.store, datasets[0].StudyInstanceUID, source_id=SOURCE_ID, retrieve_ae_title=AET)
    manifest = read_manifest(encode_part10(kos))
    (image,) = manifest.images()
    assert (image.sop_instance_uid, image.sop_class_uid, image.retrieve_location_uid, image.retrieve_ae_title) == (
        datasets[0].SOPInstanceUID, datasets[0].SOPClassUID, SOURCE_ID, AET,
    )  # fmt: skip
    assert manifest.accession == "ACC513" and manifest.study_uid == datasets[0].StudyInstanceUID


def test_instance_check_catches_a_wrong_instance_and_a_wrong_class(tmp_path: Path) -> None:
    from consumer.kos import ImageReference

    ds = make_study(StudySpec(instances_per_series=1))[0]
    path = tmp_path / "x.dcm"
    path.write_bytes(part10_bytes(ds))
    ref = ImageReference(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPClassUID, ds.SOPInstanceUID, SOURCE_ID)
    with open(path, "rb") as stream:
        assert imaging.check_instance(stream, ref, transfer_syntaxes=["1.2.840.10008.1.2.1"]) is None
    for wrong, expected in (
        (ImageReference(ref.study_uid, ref.series_uid, ref.sop_class_uid, "1.2.3", SOURCE_ID), "SOP Instance UID"),
        (ImageReference(ref.study_uid, ref.series_uid, "1.2.840.10008.5.1.4.1.1.4", ref.sop_instance_uid, SOURCE_ID), "SOP Class UID"),
    ):
        with open(path, "rb") as stream:
            assert expected in (imaging.check_instance(stream, wrong) or "")
    with open(path, "rb") as stream:
        assert "was not requested" in (imaging.check_instance(stream, ref, transfer_syntaxes=["1.2.840.10008.1.2"]) or "")
    assert imaging.instance_path(tmp_path, "P", ImageReference("..", "a/b", "1", "..", "x")).resolve().is_relative_to(tmp_path)
