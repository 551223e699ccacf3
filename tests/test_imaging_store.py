"""The Edge Server's DICOM store: files as received, the patient/study/series/instance index on
SQLite and PostgreSQL, jackets, replacement, removal, the arrival board."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from imaging_source.db import VERSION_TABLE, make_engine, upgrade
from imaging_source.dicomstore import ArrivalBoard, DicomStore, InvalidInstance
from imaging_source.schema import metadata
from tests.support.dicom import StudySpec, make_study, part10_bytes


@pytest.fixture(params=["sqlite", "postgresql"])
def imaging_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated Edge Server index on each database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'imaging.sqlite'}"
        return
    url = request.getfixturevalue("pg_database")
    engine = make_engine(url)
    upgrade(engine)
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    yield url


@pytest.fixture
def store(imaging_db_url: str, tmp_path: Path) -> Iterator[DicomStore]:
    engine = make_engine(imaging_db_url)
    upgrade(engine)
    yield DicomStore(tmp_path / "store", engine, fsync=False)
    engine.dispose()


def test_migrations_build_exactly_the_declared_schema(imaging_db_url: str) -> None:
    engine = make_engine(imaging_db_url)
    upgrade(engine)
    upgrade(engine)  # idempotent
    # Other actors may share the database (one PostgreSQL for a whole site): compare our tables only.
    def ours(name: str | None, type_: str, parent: object) -> bool:
        return type_ != "table" or name in metadata.tables

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE, "include_name": ours})
        assert compare_metadata(context, metadata) == []
    engine.dispose()


def test_instance_is_stored_byte_for_byte_and_indexed(store: DicomStore) -> None:
    spec = StudySpec(modalities=("CT", "MR"), instances_per_series=3)
    datasets = make_study(spec)
    sent = {str(ds.SOPInstanceUID): part10_bytes(ds) for ds in datasets}
    for data in sent.values():
        store.store_bytes(data)
    for uid, data in sent.items():
        stored = store.instance(uid)
        assert stored is not None
        assert stored.path.read_bytes() == data
        assert stored.size == len(data)
        assert stored.study_uid == spec.study_uid
        assert stored.transfer_syntax == "1.2.840.10008.1.2.1"
    assert store.count_instances(spec.study_uid) == 6
    assert set(store.instances([*sent, "1.2.3.999"])) == set(sent)
    assert [s.sop_uid for s in store.study_instances(spec.study_uid)] == [str(ds.SOPInstanceUID) for ds in datasets]


def test_jacket_lists_every_exam_of_the_patient_with_its_study_data(store: DicomStore) -> None:
    older = StudySpec(accession="ACC1", study_date="20230101", modalities=("CT",), instances_per_series=2)
    newer = StudySpec(accession="ACC2", study_date="20240505", modalities=("MR", "CT"), instances_per_series=1)
    other = StudySpec(patient_id="OTHER", accession="ACC3")
    for spec in (older, newer, other):
        for ds in make_study(spec):
            store.store_bytes(part10_bytes(ds))
    jacket = store.jacket("PAT001")
    assert jacket is not None
    assert jacket.patient.name == "Doe^Jane" and jacket.patient.issuer == "HOSP"
    assert [s.study_uid for s in jacket.studies] == [newer.study_uid, older.study_uid]
    first = jacket.studies[0]
    assert (first.accession, first.study_date, first.modalities) == ("ACC2", "20240505", ("CT", "MR"))
    assert (first.series_count, first.instance_count) == (2, 2)
    assert (first.procedure_code, first.procedure_scheme) == ("RPID1", "99LOCAL")
    assert first.accession_issuer == "1.3.6.1.4.1.21367.13.202.2000"
    assert jacket.studies[1].instance_count == 2
    assert store.jacket("PAT001", issuer="ELSEWHERE") is None
    assert store.jacket("NOBODY") is None
    assert [s.study_uid for s in store.studies_by_accession("ACC3")] == [other.study_uid]


def test_contents_group_instances_by_series_for_the_manifest(store: DicomStore) -> None:
    spec = StudySpec(modalities=("CT", "MR"), instances_per_series=2)
    datasets = make_study(spec)
    for ds in reversed(datasets):
        store.store_bytes(part10_bytes(ds))
    contents = store.contents(spec.study_uid)
    assert contents is not None
    assert [s.modality for s in contents.series] == ["CT", "MR"]
    assert [[i.instance_number for i in s.instances] for s in contents.series] == [[1, 2], [1, 2]]
    assert contents.instance_count == 4
    assert contents.sample_path.is_file()
    assert store.contents("1.2.3") is None


def test_a_resent_instance_replaces_the_earlier_copy(store: DicomStore) -> None:
    spec = StudySpec(instances_per_series=1)
    (ds,) = make_study(spec)
    store.store_bytes(part10_bytes(ds))
    ds.SeriesDescription = "corrected"
    second = part10_bytes(ds)
    stored = store.store_bytes(second)
    assert stored.path.read_bytes() == second
    assert store.count_instances(spec.study_uid) == 1


def test_an_instance_moved_to_another_study_leaves_no_stale_copy(store: DicomStore) -> None:
    first, second = StudySpec(), StudySpec(accession="ACC9")
    (ds,) = make_study(StudySpec(study_uid=first.study_uid, instances_per_series=1))
    old = store.store_bytes(part10_bytes(ds))
    ds.StudyInstanceUID = second.study_uid
    new = store.store_bytes(part10_bytes(ds))
    assert not old.path.exists() and new.path.is_file()
    assert store.count_instances(first.study_uid) == 0
    assert store.count_instances(second.study_uid) == 1


@pytest.mark.parametrize("keyword", ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"])
def test_an_instance_without_its_identifiers_is_refused_and_nothing_is_kept(store: DicomStore, keyword: str) -> None:
    (ds,) = make_study(StudySpec(instances_per_series=1))
    delattr(ds, keyword)
    if keyword == "SOPInstanceUID":
        ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3"
    with pytest.raises(InvalidInstance):
        store.store_bytes(part10_bytes(ds))
    assert list(store.tmp_dir.iterdir()) == []


def test_a_uid_that_could_escape_the_store_is_refused(store: DicomStore) -> None:
    (ds,) = make_study(StudySpec(instances_per_series=1))
    ds.StudyInstanceUID = "../../etc"
    with pytest.raises(InvalidInstance):
        store.store_bytes(part10_bytes(ds))


def test_bytes_that_are_not_dicom_are_refused(store: DicomStore) -> None:
    with pytest.raises(InvalidInstance):
        store.store_bytes(b"not a dicom file at all" * 10)


def test_store_file_moves_a_part10_file_in(store: DicomStore, tmp_path: Path) -> None:
    (ds,) = make_study(StudySpec(instances_per_series=1))
    source = store.temp_path()
    source.write_bytes(part10_bytes(ds))
    stored = store.store_file(source)
    assert not source.exists() and stored.path.read_bytes() == part10_bytes(ds)


def test_delete_study_removes_files_and_rows(store: DicomStore) -> None:
    spec = StudySpec(instances_per_series=3)
    paths = [store.store_bytes(part10_bytes(ds)).path for ds in make_study(spec)]
    assert store.delete_study(spec.study_uid) == 3
    assert not any(p.exists() for p in paths)
    assert store.study(spec.study_uid) is None
    assert store.delete_study(spec.study_uid) == 0


def test_arrival_board_wakes_a_waiter_when_the_expected_count_arrives() -> None:
    board = ArrivalBoard()
    study = "1.2.3"
    results: list[bool] = []
    waiter = threading.Thread(
        target=lambda: results.append(board.wait(study, until=lambda: board.count(study) >= 3, inactivity_timeout=60.0))
    )
    waiter.start()
    for _ in range(3):
        board.record(study)
    waiter.join(timeout=30)
    assert results == [True]


def test_arrival_board_gives_up_after_inactivity() -> None:
    now = [0.0]
    board = ArrivalBoard(clock=lambda: now[0])
    calls = []

    def until() -> bool:
        calls.append(now[0])
        now[0] += 10.0  # each check happens 10 "seconds" later; nothing arrives
        return False

    assert board.wait("1.2.3", until=until, inactivity_timeout=25.0) is False
    assert len(calls) >= 3
