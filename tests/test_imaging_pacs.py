"""Query/retrieve from PACS: Orthanc as the PACS (C-FIND / C-MOVE into our Storage SCP, started
with TCP_NODELAY=1 on free loopback ports), a PACS that is down and then back, de-duplication
across PACS, an asynchronous C-MOVE sender (a pynetdicom fake), one move per exam at a time, and
the ``source pacs`` commands."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
)

from imaging_source.cli import source as source_cli
from imaging_source.db import make_engine, upgrade
from imaging_source.dicomstore import DicomStore
from imaging_source.intake import Intake
from imaging_source.pacs import PacsClient, PacsDirectory, PacsNode, PacsUnavailable
from imaging_source.scp import StorageSCP
from tests.support.dicom import (
    OrthancServer,
    StudySpec,
    free_port,
    make_study,
    orthanc_factory,
    part10_bytes,
    storescu,
    write_datasets,
)

__all__ = ["orthanc_factory"]  # the fixture, imported for pytest

AET = "XDSEDGE"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DicomStore]:
    engine = make_engine(f"sqlite:///{tmp_path / 'imaging.sqlite'}")
    upgrade(engine)
    yield DicomStore(tmp_path / "store", engine, fsync=False)
    engine.dispose()


@pytest.fixture
def scp(store: DicomStore) -> Iterator[StorageSCP]:
    """Our Storage SCP as the Edge Server runs it: indexing in batches through the intake."""
    with Intake(store) as intake, StorageSCP(store, ae_title=AET, port=free_port(), intake=intake) as server:
        yield server


def _orthanc(factory: Callable[..., OrthancServer], scp: StorageSCP, name: str = "orthanc") -> OrthancServer:
    server = factory(modalities={"edge": (AET, "127.0.0.1", scp.port)}, name=name)
    server.start()
    return server


def _load(server: OrthancServer, datasets: list[Dataset], tmp_path: Path) -> None:
    files = write_datasets(datasets, tmp_path / f"load-{server.dicom_port}")
    result = storescu(files, port=server.dicom_port, called=server.aet)
    assert result.returncode == 0, result.stderr


def _node(server: OrthancServer, name: str = "pacs1") -> PacsNode:
    return PacsNode(name, server.aet, "127.0.0.1", server.dicom_port)


# -- Orthanc ------------------------------------------------------------------------------------------
def test_find_and_move_an_exam_from_orthanc(orthanc_factory: Any, scp: StorageSCP, store: DicomStore, tmp_path: Path) -> None:
    pacs = _orthanc(orthanc_factory, scp)
    exam = StudySpec(accession="ACC7", modalities=("CT", "MR"), instances_per_series=3)
    other = StudySpec(accession="ACC8", instances_per_series=2)
    _load(pacs, make_study(exam) + make_study(other), tmp_path)
    client = PacsClient(ae_title=AET, store=store, inactivity_timeout=30)
    node = _node(pacs)
    assert client.echo(node)

    found = client.find_studies([node], patient_id="PAT001", accession="ACC7")
    assert [(m.study_uid, m.accession, m.instance_count) for m in found] == [(exam.study_uid, "ACC7", 6)]
    assert set(found[0].modalities) == {"CT", "MR"}

    (result,) = client.retrieve_exam([node], patient_id="PAT001", accession="ACC7")
    assert result.complete and result.received == 6 and result.completed == 6
    assert store.study(other.study_uid) is None  # only the exam asked for
    jacket = store.jacket("PAT001")
    assert jacket is not None and [s.accession for s in jacket.studies] == ["ACC7"]

    again = client.retrieve_exam([node], patient_id="PAT001", accession="ACC7")
    assert again[0].complete and again[0].completed == 0  # already here: no second C-MOVE


def test_our_own_manifest_does_not_make_a_partial_study_look_complete(
    orthanc_factory: Any, scp: StorageSCP, store: DicomStore, tmp_path: Path
) -> None:
    """A re-shared study: one image is missing here but our KOS is stored in the same study, so
    the raw count equals the PACS's; the move must still happen when the KOS is named as ours."""
    from imaging_source.kos import encode_part10, kos_for_study

    pacs = _orthanc(orthanc_factory, scp)
    spec = StudySpec(accession="ACC9", instances_per_series=3)
    datasets = make_study(spec)
    _load(pacs, datasets, tmp_path)
    for ds in datasets[:2]:
        store.store_bytes(part10_bytes(ds))
    kos = kos_for_study(store, spec.study_uid, source_id="1.2.3.4", retrieve_ae_title=AET)
    store.store_bytes(encode_part10(kos))
    assert store.count_instances(spec.study_uid) == 3  # 2 images + our manifest
    client = PacsClient(ae_title=AET, store=store, inactivity_timeout=30)
    node = _node(pacs)

    (result,) = client.retrieve_exam([node], patient_id="PAT001", accession="ACC9", ours={str(kos.SOPInstanceUID)})
    assert result.completed == 3 and result.complete and result.received == 3
    assert store.count_instances(spec.study_uid) == 4


def test_a_study_on_two_pacs_is_taken_once_from_the_fuller_one(orthanc_factory: Any, scp: StorageSCP, store: DicomStore, tmp_path: Path) -> None:
    full = _orthanc(orthanc_factory, scp, "full")
    partial = _orthanc(orthanc_factory, scp, "partial")
    spec = StudySpec(instances_per_series=4)
    datasets = make_study(spec)
    _load(full, datasets, tmp_path)
    _load(partial, datasets[:2], tmp_path)
    nodes = [_node(partial, "partial"), _node(full, "full")]
    client = PacsClient(ae_title=AET, store=store, inactivity_timeout=30)
    (match,) = client.find_studies(nodes, patient_id="PAT001")
    assert (match.node.name, match.instance_count) == ("full", 4)
    (result,) = client.retrieve_exam(nodes, patient_id="PAT001")
    assert result.complete and store.count_instances(spec.study_uid) == 4


def test_a_pacs_that_is_down_then_back(orthanc_factory: Any, scp: StorageSCP, store: DicomStore, tmp_path: Path) -> None:
    pacs = _orthanc(orthanc_factory, scp)
    spec = StudySpec(instances_per_series=2)
    _load(pacs, make_study(spec), tmp_path)
    pacs.stop()
    client = PacsClient(ae_title=AET, store=store, timeout=5, inactivity_timeout=30)
    node = _node(pacs)
    assert not client.echo(node)
    with pytest.raises(PacsUnavailable):
        client.retrieve_exam([node], patient_id="PAT001", accession="ACC001")

    waits: list[float] = []

    def pacs_comes_back(seconds: float) -> None:  # the retry delay: the PACS restarts meanwhile
        waits.append(seconds)
        pacs.start()

    (result,) = client.retrieve_exam([node], patient_id="PAT001", accession="ACC001", attempts=3, retry_delay=42.0, sleep=pacs_comes_back)
    assert waits == [42.0]
    assert result.complete and store.count_instances(spec.study_uid) == 2


def test_a_down_pacs_is_skipped_when_another_answers(orthanc_factory: Any, scp: StorageSCP, store: DicomStore, tmp_path: Path) -> None:
    pacs = _orthanc(orthanc_factory, scp)
    _load(pacs, make_study(StudySpec(instances_per_series=1)), tmp_path)
    dead = PacsNode("dead", "NOBODY", "127.0.0.1", free_port())
    client = PacsClient(ae_title=AET, store=store, timeout=5, inactivity_timeout=30)
    (result,) = client.retrieve_exam([dead, _node(pacs)], patient_id="PAT001")
    assert result.complete and result.node.name == "pacs1"


def test_cli_pacs_add_list_echo(orthanc_factory: Any, scp: StorageSCP, tmp_path: Path) -> None:
    pacs = _orthanc(orthanc_factory, scp)
    data = ["--data-dir", str(tmp_path / "cli")]
    runner = CliRunner()
    added = runner.invoke(source_cli, ["pacs", "add", "main", "--ae-title", pacs.aet, "--host", "127.0.0.1", "--port", str(pacs.dicom_port), *data])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(source_cli, ["pacs", "list", *data])
    assert "main" in listed.output and str(pacs.dicom_port) in listed.output
    echoed = runner.invoke(source_cli, ["pacs", "echo", *data])
    assert echoed.exit_code == 0 and "main" in echoed.output and "ok" in echoed.output
    pacs.stop()
    failed = runner.invoke(source_cli, ["pacs", "echo", "main", "--pacs-timeout", "3", *data])
    assert failed.exit_code == 1 and "FAILED" in failed.output
    assert runner.invoke(source_cli, ["pacs", "echo", "nosuch", *data]).exit_code != 0
    assert runner.invoke(source_cli, ["pacs", "remove", "main", *data]).exit_code == 0
    assert "main" not in runner.invoke(source_cli, ["pacs", "list", *data]).output


def test_pacs_directory_replaces_by_name(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'i.sqlite'}")
    upgrade(engine)
    directory = PacsDirectory(engine)
    directory.add(PacsNode("a", "AE1", "h1", 104))
    directory.add(PacsNode("a", "AE2", "h2", 105, enabled=False))
    directory.add(PacsNode("b", "AE3", "h3", 106))
    assert directory.get("a") == PacsNode("a", "AE2", "h2", 105, enabled=False)
    assert [n.name for n in directory.list(enabled_only=True)] == ["b"]
    assert directory.remove("a") and not directory.remove("a")
    engine.dispose()
    with pytest.raises(ValueError):
        PacsNode("x", "A" * 17, "h", 104)


# -- an asynchronous PACS (pynetdicom fake) ---------------------------------------------------------
@dataclass
class FakePacs:
    """Answers C-FIND with one study of ``claimed`` instances and C-MOVE at once with Success,
    then pushes ``datasets`` to the destination from another thread (an asynchronous sender)."""

    destination_port: int
    datasets: list[Dataset]
    claimed: int
    port: int = field(default_factory=free_port)
    moves: int = 0
    active: int = 0
    max_active: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    pushers: list[threading.Thread] = field(default_factory=list)

    def on_find(self, event: Any) -> Iterator[tuple[int, Dataset | None]]:
        first = self.datasets[0]
        answer = Dataset()
        answer.QueryRetrieveLevel = "STUDY"
        answer.StudyInstanceUID = first.StudyInstanceUID
        answer.PatientID = first.PatientID
        answer.AccessionNumber = first.AccessionNumber
        answer.NumberOfStudyRelatedInstances = self.claimed
        answer.ModalitiesInStudy = "CT"
        yield 0xFF00, answer

    def on_move(self, event: Any) -> Iterator[Any]:
        with self.lock:
            self.moves += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        time.sleep(0.3)  # a slow PACS: a second move of the exam would overlap this one
        with self.lock:
            self.active -= 1
        pusher = threading.Thread(target=self.push)
        self.pushers.append(pusher)
        pusher.start()
        yield "127.0.0.1", self.destination_port
        yield 0  # answer Success now; the pusher sends afterwards

    def push(self) -> None:
        time.sleep(0.2)
        ae = AE(ae_title="FAKEPACS")
        ae.add_requested_context(CTImageStorage)
        assoc = ae.associate("127.0.0.1", self.destination_port, ae_title=AET)
        assert assoc.is_established
        for ds in self.datasets:
            assoc.send_c_store(ds)
            time.sleep(0.05)
        assoc.release()

    def serve(self) -> Any:
        ae = AE(ae_title="FAKEPACS")
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelMove)
        return ae.start_server(
            ("127.0.0.1", self.port), block=False, evt_handlers=[(evt.EVT_C_FIND, self.on_find), (evt.EVT_C_MOVE, self.on_move)]
        )

    @property
    def node(self) -> PacsNode:
        return PacsNode("fake", "FAKEPACS", "127.0.0.1", self.port)


@pytest.fixture
def fake_pacs_factory(scp: StorageSCP) -> Iterator[Callable[..., FakePacs]]:
    servers: list[Any] = []
    fakes: list[FakePacs] = []

    def make(datasets: list[Dataset], *, claimed: int) -> FakePacs:
        fake = FakePacs(scp.port, datasets, claimed)
        servers.append(fake.serve())
        fakes.append(fake)
        return fake

    yield make
    for fake in fakes:
        for pusher in fake.pushers:
            pusher.join(timeout=30)
    for server in servers:
        server.shutdown()


def test_asynchronous_sender_is_awaited_until_the_study_is_complete(fake_pacs_factory: Any, store: DicomStore) -> None:
    datasets = make_study(StudySpec(instances_per_series=4))
    fake = fake_pacs_factory(datasets, claimed=4)
    client = PacsClient(ae_title=AET, store=store, inactivity_timeout=30)
    (result,) = client.retrieve_exam([fake.node], patient_id="PAT001")
    assert result.complete and result.received == 4 and result.completed == 0


def test_waiting_stops_after_inactivity_and_reports_an_incomplete_study(fake_pacs_factory: Any, store: DicomStore) -> None:
    datasets = make_study(StudySpec(instances_per_series=2))
    fake = fake_pacs_factory(datasets, claimed=3)  # says 3, sends 2
    client = PacsClient(ae_title=AET, store=store, inactivity_timeout=1.5)
    (result,) = client.retrieve_exam([fake.node], patient_id="PAT001")
    assert not result.complete and (result.expected, result.received) == (3, 2)


def test_never_two_moves_of_one_exam_at_once(fake_pacs_factory: Any, store: DicomStore) -> None:
    datasets = make_study(StudySpec(instances_per_series=3))
    fake = fake_pacs_factory(datasets, claimed=3)
    client = PacsClient(ae_title=AET, store=store, inactivity_timeout=30)
    (match,) = client.find_studies([fake.node], patient_id="PAT001")
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(client.move_study(match))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert fake.max_active == 1 and fake.moves == 1
    assert len(results) == 3 and all(r.complete for r in results)
