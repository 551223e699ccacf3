"""The rows an ITI-42 submission leaves in the registry's tables, on SQLite and PostgreSQL.

PostgreSQL writes an object and its side tables in one statement, SQLite table by table
(``registry.store.objects``); both must leave the same rows, and the one-statement look-ups of a
submission must give the same answers as the separate ones.
"""

from __future__ import annotations

from sqlalchemy import Engine, Table, select

from registry.store import objects
from registry.store import schema as t
from registry.store.patients import PatientStore
from tests.support import factory as f
from tests.support.registry import RegistryUnderTest
from xds.metadata.model import Author

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
