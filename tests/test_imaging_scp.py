"""The Edge Server's Storage SCP against dcmtk as the modality (storescu, echoscu), with
TCP_NODELAY=1 in dcmtk's environment; and a pynetdicom SCU for the failure statuses."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

from imaging_source.db import make_engine, upgrade
from imaging_source.dicomstore import DicomStore
from imaging_source.intake import Intake
from imaging_source.scp import STATUS_CANNOT_UNDERSTAND, StorageSCP
from tests.support.dicom import (
    DICOM_TOOL_ENV,
    StudySpec,
    free_port,
    jpeg_baseline,
    make_instance,
    make_study,
    part10_bytes,
    storescu,
    tool,
    write_datasets,
)

AET = "XDSEDGE"


def _dataset_bytes(data: bytes) -> bytes:
    """The dataset after the File Meta Information (PS3.10 §7.1: group length at 140..144)."""
    assert data[128:132] == b"DICM"
    return data[144 + int.from_bytes(data[140:144], "little") :]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DicomStore]:
    engine = make_engine(f"sqlite:///{tmp_path / 'imaging.sqlite'}")
    upgrade(engine)
    yield DicomStore(tmp_path / "store", engine, fsync=True)
    engine.dispose()


class Settled(StorageSCP):
    """The SCP of a test: ``settle()`` waits until what it received is indexed."""

    def settle(self) -> None:
        if self.intake is not None:
            assert self.intake.flush(timeout=60)


@pytest.fixture(params=["intake", "inline"])
def scp(request: pytest.FixtureRequest, store: DicomStore) -> Iterator[Settled]:
    """The SCP with the batching intake (the Edge Server's way) and with inline indexing."""
    if request.param == "inline":
        with Settled(store, ae_title=AET, port=free_port()) as server:
            yield server
        return
    with Intake(store) as intake, Settled(store, ae_title=AET, port=free_port(), intake=intake) as server:
        yield server


def test_storescu_modality_sends_a_study(scp: Settled, store: DicomStore, tmp_path: Path) -> None:
    datasets = make_study(StudySpec(modalities=("CT", "MR"), instances_per_series=4))
    files = write_datasets(datasets, tmp_path / "modality")
    result = storescu(files, port=scp.port, called=AET)
    assert result.returncode == 0, result.stderr
    scp.settle()
    for ds, path in zip(datasets, files, strict=True):
        stored = store.instance(ds.SOPInstanceUID)
        assert stored is not None
        # The dataset bytes are those sent; only the File Meta is ours.
        assert _dataset_bytes(stored.path.read_bytes()) == _dataset_bytes(path.read_bytes())
    jacket = store.jacket("PAT001")
    assert jacket is not None and jacket.studies[0].instance_count == 8


def test_echoscu_is_answered(scp: Settled) -> None:
    result = subprocess.run(
        [tool("echoscu"), "-aec", AET, "127.0.0.1", str(scp.port)], env=DICOM_TOOL_ENV, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_compressed_instances_are_stored_without_decoding(scp: Settled, store: DicomStore, tmp_path: Path) -> None:
    spec = StudySpec(modalities=("OT",), rows=32, columns=32)
    native = make_instance(spec, modality="OT", series_uid=generate_uid(), series_number=1, instance_number=1)
    jpeg = tmp_path / "jpeg.dcm"
    jpeg.write_bytes(jpeg_baseline(native, tmp_path / "enc"))
    # Propose JPEG baseline only (-xy), so the SCP receives it compressed.
    result = subprocess.run(
        [tool("storescu"), "-xy", "-aec", AET, "127.0.0.1", str(scp.port), str(jpeg)],
        env=DICOM_TOOL_ENV, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    scp.settle()
    stored = store.instance(native.SOPInstanceUID)
    assert stored is not None and stored.transfer_syntax == "1.2.840.10008.1.2.4.50"
    assert _dataset_bytes(stored.path.read_bytes()) == _dataset_bytes(jpeg.read_bytes())


def test_two_modalities_at_once_store_one_study(scp: Settled, store: DicomStore, tmp_path: Path) -> None:
    tool("storescu")  # skips here when it is missing (a skip inside the threads would be lost)
    spec = StudySpec(modalities=("CT", "CT"), instances_per_series=5)
    datasets = make_study(spec)
    halves = [write_datasets(datasets[:5], tmp_path / "a"), write_datasets(datasets[5:], tmp_path / "b")]
    results: list[int] = []
    threads = [threading.Thread(target=lambda f=f: results.append(storescu(f, port=scp.port, called=AET).returncode)) for f in halves]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results == [0, 0]
    scp.settle()
    assert store.count_instances(spec.study_uid) == 10
    study = store.study(spec.study_uid)
    assert study is not None and study.series_count == 2


def test_a_dataset_without_study_uid_gets_cannot_understand(scp: Settled, store: DicomStore) -> None:
    (ds,) = make_study(StudySpec(instances_per_series=1))
    del ds.StudyInstanceUID
    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", scp.port, ae_title=AET)
    assert assoc.is_established
    try:
        status = assoc.send_c_store(ds)
    finally:
        assoc.release()
    assert status.Status == STATUS_CANNOT_UNDERSTAND
    scp.settle()
    assert store.instance(ds.SOPInstanceUID) is None
    assert list(store.tmp_dir.iterdir()) == [] and list(store.incoming_dir.iterdir()) == []


def test_the_scp_stops_and_frees_its_port(store: DicomStore) -> None:
    port = free_port()
    with StorageSCP(store, ae_title=AET, port=port):
        pass
    with StorageSCP(store, ae_title=AET, port=port) as again:
        assert again.port == port


def test_stored_files_carry_our_file_meta_and_the_sender(scp: Settled, store: DicomStore, tmp_path: Path) -> None:
    from pydicom import dcmread

    (ds,) = make_study(StudySpec(instances_per_series=1))
    result = storescu(write_datasets([ds], tmp_path / "one"), port=scp.port, called=AET, calling="MODALITY1")
    assert result.returncode == 0, result.stderr
    scp.settle()
    stored = store.instance(ds.SOPInstanceUID)
    assert stored is not None
    meta = dcmread(stored.path).file_meta
    assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert meta.MediaStorageSOPClassUID == ds.SOPClassUID
    assert meta.TransferSyntaxUID == stored.transfer_syntax
    assert meta.SourceApplicationEntityTitle == "MODALITY1"


def test_intake_recovers_instances_left_in_incoming(store: DicomStore) -> None:
    """A crash after C-STORE Success but before indexing loses nothing: the next start indexes."""
    datasets = make_study(StudySpec(instances_per_series=3))
    staged = [store.stage_bytes(part10_bytes(ds)) for ds in datasets]  # written, never indexed
    assert all(s.path.parent == store.incoming_dir for s in staged)
    (store.incoming_dir / "garbage.dcm").write_bytes(b"not dicom")
    assert store.count_instances(str(datasets[0].StudyInstanceUID)) == 0
    with Intake(store) as intake:
        assert intake.flush(timeout=10)
    assert store.count_instances(str(datasets[0].StudyInstanceUID)) == 3
    assert list(store.incoming_dir.iterdir()) == []
    assert [p.name for p in (store.root / "rejected").iterdir()] == ["garbage.dcm"]
    for ds in datasets:
        stored = store.instance(ds.SOPInstanceUID)
        assert stored is not None and stored.path.read_bytes() == part10_bytes(ds)


def test_intake_refuses_work_when_stopped(store: DicomStore) -> None:
    intake = Intake(store)
    (ds,) = make_study(StudySpec(instances_per_series=1))
    with pytest.raises(RuntimeError):
        intake.submit(part10_bytes(ds))
    with intake:
        intake.submit(part10_bytes(ds))
    assert store.instance(ds.SOPInstanceUID) is not None  # stop() indexes what was submitted


def test_an_association_for_another_called_ae_is_rejected(scp: Settled, tmp_path: Path) -> None:
    """PS3.8 §9.3.4: A-ASSOCIATE-RJ, permanent, service-user, reason 7 (called AE not recognised);
    dcmtk's echoscu sees the rejection, and the same call to our title still works."""
    from tests.support.dicom import tool

    wrong = subprocess.run(
        [tool("echoscu"), "-aec", "NOTTHEEDGE", "-aet", "MODALITY1", "127.0.0.1", str(scp.port)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert wrong.returncode != 0
    assert "Called AE Title Not Recognized" in wrong.stdout + wrong.stderr, wrong.stdout + wrong.stderr
    right = subprocess.run(
        [tool("echoscu"), "-aec", AET, "-aet", "MODALITY1", "127.0.0.1", str(scp.port)], capture_output=True, text=True, timeout=60
    )
    assert right.returncode == 0, right.stdout + right.stderr


def test_a_full_intake_queue_stalls_only_its_own_association(store: DicomStore, tmp_path: Path) -> None:
    """While the index is stuck (here: a commit that waits) and the intake's queue is full, the
    sending association waits for room, but the SCP keeps answering other associations; once
    the index moves again every instance is stored."""
    gate = threading.Event()
    real_commit = store.commit_staged

    def stuck_commit(batch):  # type: ignore[no-untyped-def]
        assert gate.wait(timeout=120)
        return real_commit(batch)

    store.commit_staged = stuck_commit  # type: ignore[method-assign]
    files = write_datasets(make_study(StudySpec(accession="FULL", instances_per_series=8, rows=16, columns=16)), tmp_path / "m")
    with Intake(store, max_batch=1, max_pending=1) as intake, Settled(store, ae_title=AET, port=free_port(), intake=intake) as server:
        sender = subprocess.Popen(
            [tool("storescu"), "-aec", AET, "-aet", "MODALITY1", "127.0.0.1", str(server.port), *map(str, files)],
            env=DICOM_TOOL_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while not intake.full:
                assert time.monotonic() < deadline and sender.poll() is None, "the queue never filled"
                time.sleep(0.05)
            time.sleep(0.5)  # the sender's next C-STORE now waits for room
            # The sender is now blocked on the full queue; another association is still served.
            echo = subprocess.run(
                [tool("echoscu"), "-aec", AET, "127.0.0.1", str(server.port)], env=DICOM_TOOL_ENV, capture_output=True, text=True, timeout=30
            )
            assert echo.returncode == 0, echo.stderr
            assert sender.poll() is None, "the sender should still be waiting for the index"
        finally:
            gate.set()
        output, _ = sender.communicate(timeout=120)
        assert sender.returncode == 0, output
        server.settle()
    study_uid = __import__("pydicom").dcmread(files[0], stop_before_pixels=True).StudyInstanceUID
    assert store.count_instances(study_uid) == len(files)
