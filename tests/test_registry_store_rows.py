"""The rows an ITI-42 submission leaves in the registry's tables, on SQLite and PostgreSQL.

PostgreSQL writes an object and its side tables in one statement, SQLite table by table
(``registry.store.objects``); both must leave the same rows, and the one-statement look-ups of a
submission must give the same answers as the separate ones.
"""

from __future__ import annotations

import hashlib
import random
import uuid

import pytest
from sqlalchemy import Engine, Table, select, text

from registry.store import objects
from registry.store import schema as t
from registry.store.patients import PatientStore
from tests.support import factory as f
from tests.support.registry import RegistryUnderTest
from xds.metadata.model import Author, Slot, Submission
from xds.vocabulary import AssociationType, Status

ACCESSION = "A-1^^^&1.2.3.4&ISO^urn:ihe:iti:xds:2013:accession"
ORDER = "O-9^^^&1.2.3.5&ISO^urn:ihe:iti:xds:2013:order"


def _rows(engine: Engine, table: Table, *columns: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        cols = [table.c[c] for c in columns]
        return sorted(tuple(r) for r in conn.execute(select(*cols)))


def test_side_tables_of_a_submission(registry_engine: Engine, codes_xml) -> None:  # type: ignore[no-untyped-def]
    from profiles.codes import load_code_set

    reg = RegistryUnderTest(registry_engine, codes=load_code_set(codes_xml))
    pid = reg.feed(f.patient_id())
    sub = f.submission(pid, entries=2)
    first, second = sub.document_entries
    first.confidentiality_codes = [f.CONF_N, f.CONF_R]
    first.event_codes = [f.EVENT_CT, f.EVENT_MR]
    first.authors = [Author(person="^Welby^Marcus"), Author(person="^Kildare^James")]
    first.reference_ids = [ACCESSION, ORDER]
    second.event_codes, second.reference_ids, second.authors = [], [], []
    sub.submission_sets[0].authors = [Author(person="^Source^Sam"), Author(person="^Other^Olga")]
    reg.ok(sub)

    with registry_engine.connect() as conn:
        ids = dict(conn.execute(select(t.document_entry.c.unique_id, t.document_entry.c.id)).all())
        (set_id,) = conn.execute(select(t.submission_set.c.id)).scalars().all()
    a, b = ids[first.unique_id], ids[second.unique_id]
    assert _rows(registry_engine, t.document_entry_code, "entry_id", "kind", "code", "scheme") == sorted(
        [
            (a, "conf", f.CONF_N.code, f.CONF_N.scheme),
            (a, "conf", f.CONF_R.code, f.CONF_R.scheme),
            (a, "event", f.EVENT_CT.code, f.EVENT_CT.scheme),
            (a, "event", f.EVENT_MR.code, f.EVENT_MR.scheme),
            *[(b, "conf", c.code, c.scheme) for c in second.confidentiality_codes],
        ]
    )
    assert _rows(registry_engine, t.document_entry_author, "entry_id", "person") == sorted(
        [(a, "^Welby^Marcus"), (a, "^Kildare^James")]
    )
    assert _rows(registry_engine, t.document_entry_reference, "entry_id", "value") == sorted([(a, ACCESSION), (a, ORDER)])
    assert _rows(registry_engine, t.submission_set_author, "set_id", "person") == sorted(
        [(set_id, "^Source^Sam"), (set_id, "^Other^Olga")]
    )
    with registry_engine.connect() as conn:
        (hash_,) = conn.execute(
            select(t.document_entry.c.hash).where(t.document_entry.c.unique_id == first.unique_id)
        ).scalars().all()
    assert hash_ == (first.hash or "").lower()


def test_combined_lookups_agree_with_the_separate_ones(registry_engine: Engine, codes_xml) -> None:  # type: ignore[no-untyped-def]
    from profiles.codes import load_code_set

    reg = RegistryUnderTest(registry_engine, codes=load_code_set(codes_xml))
    pid = reg.feed(f.patient_id())
    merged = reg.feed(f.patient_id())
    reg.registry.patients.merge(surviving_id=pid, merged_id=merged)
    sub = f.submission(pid, entries=2)
    reg.ok(sub)
    packages = [sub.submission_sets[0].unique_id or "", "1.2.3.999.1"]
    documents = [d.unique_id or "" for d in sub.document_entries] + ["1.2.3.999.2"]
    with registry_engine.connect() as conn:
        for patient in (pid, merged, "never-fed^^^&1.2&ISO"):
            combined = objects.submission_lookups(
                conn, patient_id=patient, package_unique_ids=packages, document_unique_ids=documents
            )
            assert combined.patient_known == PatientStore.is_known_with(conn, patient)
            assert combined.package_unique_ids == objects.existing_package_unique_ids(conn, packages)
            assert combined.documents == objects.documents_by_unique_id(conn, documents)
        assert objects.submission_lookups(conn, patient_id=pid, package_unique_ids=packages, document_unique_ids=documents).patient_known
        nothing = objects.submission_lookups(conn, patient_id=pid, package_unique_ids=[], document_unique_ids=[])
    assert nothing.package_unique_ids == set() and nothing.documents == {}
    assert len(combined.documents) == 2 and combined.package_unique_ids == {packages[0]}


def test_resolve_uuids_finds_each_kind(registry_engine: Engine, codes_xml) -> None:  # type: ignore[no-untyped-def]
    from profiles.codes import load_code_set

    reg = RegistryUnderTest(registry_engine, codes=load_code_set(codes_xml))
    pid = reg.feed(f.patient_id())
    reg.ok(f.submission(pid))
    with registry_engine.connect() as conn:
        stored = {
            objects.KIND_DOCUMENT: conn.execute(select(t.document_entry.c.entry_uuid)).scalar_one(),
            objects.KIND_SUBMISSION_SET: conn.execute(select(t.submission_set.c.entry_uuid)).scalar_one(),
            objects.KIND_ASSOCIATION: conn.execute(select(t.association.c.entry_uuid)).scalar_one(),
        }
        unknown = "urn:uuid:00000000-0000-4000-8000-000000000000"
        found = objects.resolve_uuids(conn, [*stored.values(), unknown])
    assert set(found) == set(stored.values())
    for kind, entry_uuid in stored.items():
        ref = found[entry_uuid]
        assert ref.kind == kind and ref.status.endswith(":Approved")
        assert ref.patient_id == (None if kind == objects.KIND_ASSOCIATION else pid)


# -- SQLite's driver-SQL inserts leave what PostgreSQL's statements leave -------------------------


def _deterministic_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """uuid.uuid4 as a seeded sequence: entryUUIDs, classification ids and OIDs repeat per run."""
    rng = random.Random(42)
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=rng.getrandbits(128), version=4))


def _pin_content(sub: Submission) -> None:
    """hash and size from the (seeded) uniqueId: the factory's own content counts documents."""
    for entry in sub.document_entries:
        entry.hash = hashlib.sha1((entry.unique_id or "").encode()).hexdigest()
        entry.size = str(len(entry.unique_id or ""))


def _registry_history(engine: Engine, codes: object, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """One registry's life: entries with every side table, a folder, a replacement that is
    deprecated-and-copied into the folder, an addendum, an existing entry into the folder,
    client-supplied UUIDs, and rejected submissions. Returns the error codes of each step."""
    _deterministic_ids(monkeypatch)
    reg = RegistryUnderTest(engine, codes=codes)
    pid = reg.feed(f.patient_id())
    first = f.submission(pid, entries=2, with_folder=True, extra_slot=Slot("urn:example:extra", ("x", "y")))
    de = first.document_entries[0]
    de.confidentiality_codes = [f.CONF_N, f.CONF_R]
    de.event_codes = [f.EVENT_CT, f.EVENT_MR]
    de.authors = [Author(person="^Welby^Marcus"), Author(institutions=["Some Hospital"])]
    de.reference_ids = [ACCESSION, ORDER]
    first.submission_sets[0].authors = [Author(person="^Source^Sam"), Author(person="^Other^Olga")]
    _pin_content(first)
    de.hash = (de.hash or "").upper()  # stored lower-case
    steps = [first]
    # Client-supplied entryUUIDs (upper case: stored lower case).
    supplied = f.submission(pid)
    upper = "urn:uuid:" + str(uuid.uuid4()).upper()
    supplied.associations[0].target = upper
    supplied.document_entries[0].id = upper
    _pin_content(supplied)
    steps.append(supplied)
    outcomes: list[list[str]] = []
    for sub in steps:
        outcomes.append([e.code_text for e in reg.submit(sub)])
    with engine.connect() as conn:
        uuids = dict(conn.execute(select(t.document_entry.c.unique_id, t.document_entry.c.entry_uuid)).all())
        folder_uuid = conn.execute(select(t.folder.c.entry_uuid)).scalar_one()
    in_folder = uuids[de.unique_id or ""]
    outside = uuids[first.document_entries[1].unique_id or ""]
    reg.clock.advance(minutes=5)
    later = [
        f.replacement(pid, in_folder),  # RPLC: deprecates, copies the folder membership, touches the folder
        f.add_to_folder(pid, folder_uuid, uuids[supplied.document_entries[0].unique_id or ""]),
        f.replacement(pid, outside, kind=AssociationType.APND),
        f.submission(pid),
    ]
    for sub in later:
        _pin_content(sub)
    later[-1].document_entries[0].unique_id = de.unique_id  # same uniqueId, other hash: rejected
    later.append(first)  # everything already registered: rejected
    for sub in later:
        reg.clock.advance(minutes=1)
        outcomes.append([e.code_text for e in reg.submit(sub)])
    return outcomes


def _contents(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every table without its surrogate keys: side-table rows name their object by entryUUID."""
    out: dict[str, list[tuple[object, ...]]] = {}
    with engine.connect() as conn:
        for table in (t.document_entry, t.submission_set, t.folder, t.association):
            cols = [c for c in table.c if c.name != "id"]
            out[table.name] = sorted(tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in conn.execute(select(*cols)))
        sides = (
            (t.document_entry_code, t.document_entry, "entry_id"),
            (t.document_entry_author, t.document_entry, "entry_id"),
            (t.document_entry_reference, t.document_entry, "entry_id"),
            (t.submission_set_author, t.submission_set, "set_id"),
            (t.folder_code, t.folder, "folder_id"),
        )
        for side, parent, fk in sides:
            cols = [c for c in side.c if c.name != fk]
            query = select(parent.c.entry_uuid, *cols).join(parent, parent.c.id == side.c[fk])
            out[side.name] = sorted(tuple(r) for r in conn.execute(query))
    return out


def test_sqlite_and_postgresql_store_the_same_rows_and_encodings(  # type: ignore[no-untyped-def]
    tmp_path, pg_registry_url: str, codes_xml, monkeypatch: pytest.MonkeyPatch
) -> None:
    from profiles.codes import load_code_set
    from registry.store.db import make_engine, upgrade

    codes = load_code_set(codes_xml)
    sqlite_engine = make_engine(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    upgrade(sqlite_engine)
    pg_engine = make_engine(pg_registry_url)
    names = ", ".join(f'"{table.name}"' for table in t.metadata.sorted_tables)
    with pg_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    try:
        on_sqlite = _registry_history(sqlite_engine, codes, monkeypatch)
        on_pg = _registry_history(pg_engine, codes, monkeypatch)
        stored_sqlite, stored_pg = _contents(sqlite_engine), _contents(pg_engine)
    finally:
        sqlite_engine.dispose()
        pg_engine.dispose()
    assert on_sqlite == on_pg
    assert on_sqlite[:5] == [[], [], [], [], []]
    assert "XDSNonIdenticalHash" in on_sqlite[5] and on_sqlite[6]
    for table, rows in stored_pg.items():
        assert stored_sqlite[table] == rows, table
    # The history reached every table and every lifecycle path.
    assert all(stored_pg.values())
    entries = stored_pg["document_entry"]
    assert len(entries) == 5 and len(stored_pg["folder_code"]) == 1
    assert sorted(row[3] for row in entries).count(Status.DEPRECATED) == 1
    assert all(row[0] == str(row[0]).lower() and row[6] == str(row[6]).lower() for row in entries)
    assert len(stored_pg["association"]) > len(entries)
