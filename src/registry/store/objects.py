"""Row-level access to registry objects: look-ups the ITI-42 checklist needs, inserts of a
submission, and the in-place updates of the lifecycle (status, folder time, patient merge).

All functions take an open SQLAlchemy ``Connection`` so that the caller owns the transaction:
an ITI-42 submission is checked and committed in one transaction (all or nothing).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lxml import etree
from sqlalchemy import (
    BigInteger,
    Connection,
    Select,
    String,
    Table,
    bindparam,
    cast,
    insert,
    literal_column,
    null,
    select,
    text,
    union_all,
    update,
)

from registry.store import schema as t
from xds.db import sqlite_driver_sql
from xds.metadata.model import Association, DocumentEntry, Folder, SubmissionSet
from xds.vocabulary import NS_RIM, IdScheme, SlotName

KIND_DOCUMENT = "DocumentEntry"
KIND_SUBMISSION_SET = "SubmissionSet"
KIND_FOLDER = "Folder"
KIND_ASSOCIATION = "Association"


@dataclass(frozen=True, slots=True)
class StoredRef:
    """What the registry knows of an existing object, for reference checks."""

    kind: str
    entry_uuid: str
    row_id: int
    patient_id: str | None
    status: str
    unique_id: str | None = None


_LOOKUPS = (
    (KIND_DOCUMENT, t.document_entry, True),
    (KIND_SUBMISSION_SET, t.submission_set, True),
    (KIND_FOLDER, t.folder, True),
    (KIND_ASSOCIATION, t.association, False),
)


def _resolve_branch(order: int, table: Table, *, has_patient: bool) -> Select[Any]:
    patient = table.c.patient_id if has_patient else _NO_TEXT
    unique = table.c.unique_id if has_patient else _NO_TEXT
    return select(
        literal_column(str(order)).label("kind"), table.c.entry_uuid, table.c.id, table.c.status,
        patient.label("patient_id"), unique.label("unique_id"),
    ).where(table.c.entry_uuid.in_(bindparam("uuids", expanding=True)))


_NO_TEXT = cast(null(), String)
_NO_INT = cast(null(), BigInteger)
# The four tables in one statement (one round trip); ``kind`` is the index in _LOOKUPS.
_RESOLVE_UUIDS = union_all(*(_resolve_branch(i, table, has_patient=has) for i, (_k, table, has) in enumerate(_LOOKUPS)))


def resolve_uuids(conn: Connection, uuids: Iterable[str]) -> dict[str, StoredRef]:
    """Find which of ``uuids`` exist in the registry, and as what."""
    wanted = sorted(set(uuids))
    found: dict[str, StoredRef] = {}
    for chunk in _chunks(wanted, 500):
        # Applied in _LOOKUPS order, as when the tables were asked one after the other.
        rows = sorted(conn.execute(_RESOLVE_UUIDS, {"uuids": list(chunk)}), key=lambda r: int(r.kind))
        for row in rows:
            kind, _table, has_patient = _LOOKUPS[int(row.kind)]
            found[row.entry_uuid] = StoredRef(
                kind=kind,
                entry_uuid=row.entry_uuid,
                row_id=row.id,
                patient_id=row.patient_id if has_patient else None,
                status=row.status,
                unique_id=row.unique_id if has_patient else None,
            )
    return found


# The per-submission look-ups are built once: constructing a Select per call costs more CPU
# than running it (SQLAlchemy builds and hashes the expression each time).
_DOCUMENTS_BY_UNIQUE_ID = select(t.document_entry.c.unique_id, t.document_entry.c.hash, t.document_entry.c.size).where(
    t.document_entry.c.unique_id.in_(bindparam("ids", expanding=True))
)
_PACKAGE_UNIQUE_IDS = union_all(
    select(t.submission_set.c.unique_id).where(t.submission_set.c.unique_id.in_(bindparam("ids", expanding=True))),
    select(t.folder.c.unique_id).where(t.folder.c.unique_id.in_(bindparam("ids", expanding=True))),
)


# The three look-ups every submission makes (patient known, package uniqueIds, DocumentEntry
# uniqueIds) as one statement: one round trip instead of three. Rows are tagged by ``kind``.
_SUBMISSION_LOOKUPS = union_all(
    select(literal_column("'p'").label("kind"), t.patient.c.merged_into.label("value"), _NO_TEXT.label("hash"),
           _NO_INT.label("size")).where(t.patient.c.patient_id == bindparam("pid")),
    select(literal_column("'s'"), t.submission_set.c.unique_id, _NO_TEXT, _NO_INT).where(
        t.submission_set.c.unique_id.in_(bindparam("packages", expanding=True))
    ),
    select(literal_column("'f'"), t.folder.c.unique_id, _NO_TEXT, _NO_INT).where(
        t.folder.c.unique_id.in_(bindparam("packages", expanding=True))
    ),
    select(literal_column("'d'"), t.document_entry.c.unique_id, t.document_entry.c.hash, t.document_entry.c.size).where(
        t.document_entry.c.unique_id.in_(bindparam("documents", expanding=True))
    ),
)
_LOOKUP_CHUNK = 500


def _sqlite_lookups(packages: int, documents: int) -> str:
    """:data:`_SUBMISSION_LOOKUPS` as SQLite driver SQL for ``packages`` package and
    ``documents`` DocumentEntry uniqueIds (qmark parameters: the patient ID, the package ids
    twice, the DocumentEntry ids). A branch with no ids is left out: it could match nothing."""
    parts = ["SELECT 'p', merged_into, NULL, NULL FROM patient WHERE patient_id = ?"]
    if packages:
        marks = ", ".join("?" * packages)
        parts.append(f"SELECT 's', unique_id, NULL, NULL FROM submission_set WHERE unique_id IN ({marks})")
        parts.append(f"SELECT 'f', unique_id, NULL, NULL FROM folder WHERE unique_id IN ({marks})")
    if documents:
        marks = ", ".join("?" * documents)
        parts.append(f"SELECT 'd', unique_id, hash, size FROM document_entry WHERE unique_id IN ({marks})")
    return " UNION ALL ".join(parts)


@dataclass(frozen=True, slots=True)
class SubmissionLookups:
    """What the registry already holds that an ITI-42 submission's checks depend on."""

    patient_known: bool
    package_unique_ids: set[str]
    documents: dict[str, list[tuple[str | None, int | None]]]


def submission_lookups(
    conn: Connection, *, patient_id: str, package_unique_ids: Iterable[str], document_unique_ids: Iterable[str]
) -> SubmissionLookups:
    """Patient known (not merged away), SubmissionSet/Folder uniqueIds in use, and (hash, size) of
    the registered DocumentEntries with the submitted uniqueIds, in one statement.

    Same answers as ``PatientStore.is_known_with``, :func:`existing_package_unique_ids` and
    :func:`documents_by_unique_id`, which long lists (over 500 ids) still go through.
    """
    packages = sorted(set(package_unique_ids))
    documents = sorted(set(document_unique_ids))
    if len(packages) > _LOOKUP_CHUNK or len(documents) > _LOOKUP_CHUNK:
        from registry.store.patients import PatientStore

        return SubmissionLookups(
            patient_known=PatientStore.is_known_with(conn, patient_id),
            package_unique_ids=existing_package_unique_ids(conn, packages),
            documents=documents_by_unique_id(conn, documents),
        )
    known = False
    found: set[str] = set()
    docs: dict[str, list[tuple[str | None, int | None]]] = {}
    if _is_sqlite(conn):
        rows = conn.exec_driver_sql(
            _sqlite_lookups(len(packages), len(documents)), (patient_id, *packages, *packages, *documents)
        )
    else:
        rows = conn.execute(_SUBMISSION_LOOKUPS, {"pid": patient_id, "packages": packages, "documents": documents})
    for kind, value, hash_, size in rows:
        if kind == "p":
            known = value is None  # a merged (subsumed) patient ID is no longer known
        elif kind == "d":
            docs.setdefault(value, []).append((hash_, size))
        else:
            found.add(value)
    return SubmissionLookups(patient_known=known, package_unique_ids=found, documents=docs)


def documents_by_unique_id(
    conn: Connection, unique_ids: Iterable[str]
) -> dict[str, list[tuple[str | None, int | None]]]:
    """(hash, size) of every registered DocumentEntry with each uniqueId."""
    wanted = sorted(set(unique_ids))
    out: dict[str, list[tuple[str | None, int | None]]] = {}
    for chunk in _chunks(wanted, 500):
        for row in conn.execute(_DOCUMENTS_BY_UNIQUE_ID, {"ids": list(chunk)}):
            out.setdefault(row.unique_id, []).append((row.hash, row.size))
    return out


def existing_package_unique_ids(conn: Connection, unique_ids: Iterable[str]) -> set[str]:
    """Which uniqueIds are already used by a SubmissionSet or a Folder (one statement)."""
    wanted = sorted(set(unique_ids))
    found: set[str] = set()
    for chunk in _chunks(wanted, 500):
        found.update(conn.execute(_PACKAGE_UNIQUE_IDS, {"ids": list(chunk)}).scalars())
    return found


# -- inserts -------------------------------------------------------------------------------


# PostgreSQL: an object and the rows of its side tables go in one statement (data-modifying
# CTEs, the multi-valued parts as arrays), so a submission costs one round trip per object
# instead of one per table. The text is fixed, so psycopg prepares it once per connection.
def _columns(table: Table) -> list[str]:
    return [c.name for c in table.c if not c.primary_key]


def _pg_insert_with_sides(table: str, columns: list[str], sides: list[tuple[str, str, list[str]]]) -> str:
    """``INSERT`` into ``table`` plus, per side table, ``INSERT ... SELECT`` of the new id with
    ``unnest`` of array parameters; returns the new id."""
    ctes = [
        f"main AS (INSERT INTO {table} ({', '.join(columns)}) "
        f"VALUES ({', '.join(':' + c for c in columns)}) RETURNING id)"
    ]
    for i, (side, fk, cols) in enumerate(sides):
        arrays = ", ".join(f"CAST(:{side}_{c} AS text[])" for c in cols)
        ctes.append(
            f"s{i} AS (INSERT INTO {side} ({fk}, {', '.join(cols)}) "
            f"SELECT main.id, {', '.join('u.' + c for c in cols)} FROM main, unnest({arrays}) AS u({', '.join(cols)}))"
        )
    return "WITH " + ",\n".join(ctes) + "\nSELECT id FROM main"


_PG_INSERT_DOCUMENT = text(
    _pg_insert_with_sides(
        "document_entry",
        _columns(t.document_entry),
        [
            ("document_entry_code", "entry_id", ["kind", "code", "scheme"]),
            ("document_entry_author", "entry_id", ["person"]),
            ("document_entry_reference", "entry_id", ["value"]),
        ],
    )
)
_PG_INSERT_SUBMISSION_SET = text(
    _pg_insert_with_sides(
        "submission_set", _columns(t.submission_set), [("submission_set_author", "set_id", ["person"])]
    )
)


def _is_postgresql(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def _is_sqlite(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite"


# SQLite: the inserts of a submission as driver SQL (sqlite3's named parameters), compiled once
# from the tables. Run with ``exec_driver_sql`` they skip SQLAlchemy's per-execution work
# (statement cache key, compiled-cache look-up, parameter processing: ~30 us of CPU each, about
# a third of an ITI-42's database CPU), while errors still arrive as SQLAlchemy exceptions
# (IntegrityError, DBAPIError with connection_invalidated) for DocumentRegistry._store. The
# parameters are the ones the Core statements received; the one bind processor Core would
# apply, LargeBinary wrapping ``xml`` in sqlite3.Binary, stores the same BLOB.


def _sqlite_insert(table: Table) -> str:
    columns = _columns(table)
    return sqlite_driver_sql(insert(table).values({c: bindparam(c) for c in columns}))


_SQLITE_INSERT_DOCUMENT = _sqlite_insert(t.document_entry)
_SQLITE_INSERT_DOCUMENT_CODE = _sqlite_insert(t.document_entry_code)
_SQLITE_INSERT_DOCUMENT_AUTHOR = _sqlite_insert(t.document_entry_author)
_SQLITE_INSERT_DOCUMENT_REFERENCE = _sqlite_insert(t.document_entry_reference)
_SQLITE_INSERT_SUBMISSION_SET = _sqlite_insert(t.submission_set)
_SQLITE_INSERT_SUBMISSION_SET_AUTHOR = _sqlite_insert(t.submission_set_author)
_SQLITE_INSERT_FOLDER = _sqlite_insert(t.folder)
_SQLITE_INSERT_FOLDER_CODE = _sqlite_insert(t.folder_code)
_SQLITE_INSERT_ASSOCIATION = _sqlite_insert(t.association)


def insert_document_entries(
    conn: Connection, entries: Sequence[tuple[DocumentEntry, bytes]]
) -> dict[str, int]:
    """Insert entries with their encoded XML; return entry_uuid -> row id."""
    ids: dict[str, int] = {}
    if _is_postgresql(conn):
        for de, xml in entries:
            codes = [("conf", c) for c in de.confidentiality_codes] + [("event", c) for c in de.event_codes]
            params = _document_row(de, xml)
            params.update(
                {
                    "document_entry_code_kind": [k for k, _ in codes],
                    "document_entry_code_code": [c.code for _, c in codes],
                    "document_entry_code_scheme": [c.scheme for _, c in codes],
                    "document_entry_author_person": [a.person for a in de.authors if a.person],
                    "document_entry_reference_value": list(de.reference_ids),
                }
            )
            ids[de.id] = conn.execute(_PG_INSERT_DOCUMENT, params).scalar_one()
        return ids
    codes: list[dict[str, object]] = []
    authors: list[dict[str, object]] = []
    refs: list[dict[str, object]] = []
    for de, xml in entries:
        row_id = conn.exec_driver_sql(_SQLITE_INSERT_DOCUMENT, _document_row(de, xml)).lastrowid
        ids[de.id] = row_id
        codes += [{"entry_id": row_id, "kind": "conf", "code": c.code, "scheme": c.scheme} for c in de.confidentiality_codes]
        codes += [{"entry_id": row_id, "kind": "event", "code": c.code, "scheme": c.scheme} for c in de.event_codes]
        authors += [{"entry_id": row_id, "person": a.person} for a in de.authors if a.person]
        refs += [{"entry_id": row_id, "value": v} for v in de.reference_ids]
    _sqlite_rows(conn, _SQLITE_INSERT_DOCUMENT_CODE, codes)
    _sqlite_rows(conn, _SQLITE_INSERT_DOCUMENT_AUTHOR, authors)
    _sqlite_rows(conn, _SQLITE_INSERT_DOCUMENT_REFERENCE, refs)
    return ids


def _sqlite_rows(conn: Connection, sql: str, rows: list[dict[str, object]]) -> None:
    """Insert ``rows`` (none, one, or several in one executemany)."""
    if rows:
        conn.exec_driver_sql(sql, rows[0] if len(rows) == 1 else rows)


def _document_row(de: DocumentEntry, xml: bytes) -> dict[str, object]:
    def code(c: object, attr: str) -> str | None:
        return getattr(c, attr) if c is not None else None

    return {
        "entry_uuid": de.id,
        "unique_id": de.unique_id,
        "patient_id": de.patient_id,
        "status": de.status,
        "object_type": de.object_type,
        "mime_type": de.mime_type,
        "hash": de.hash.lower() if de.hash else None,
        "size": de.size_bytes,
        "repository_unique_id": de.repository_unique_id,
        "creation_time": de.creation_time,
        "service_start_time": de.service_start_time,
        "service_stop_time": de.service_stop_time,
        "class_code": code(de.class_code, "code"),
        "class_scheme": code(de.class_code, "scheme"),
        "type_code": code(de.type_code, "code"),
        "type_scheme": code(de.type_code, "scheme"),
        "format_code": code(de.format_code, "code"),
        "format_scheme": code(de.format_code, "scheme"),
        "hcft_code": code(de.healthcare_facility_type_code, "code"),
        "hcft_scheme": code(de.healthcare_facility_type_code, "scheme"),
        "practice_code": code(de.practice_setting_code, "code"),
        "practice_scheme": code(de.practice_setting_code, "scheme"),
        "xml": xml,
    }


def insert_submission_set(conn: Connection, ss: SubmissionSet, xml: bytes) -> int:
    row: dict[str, object] = {
        "entry_uuid": ss.id,
        "unique_id": ss.unique_id,
        "source_id": ss.source_id,
        "patient_id": ss.patient_id,
        "status": ss.status,
        "submission_time": ss.submission_time,
        "content_type_code": ss.content_type_code.code if ss.content_type_code else None,
        "content_type_scheme": ss.content_type_code.scheme if ss.content_type_code else None,
        "xml": xml,
    }
    if _is_postgresql(conn):
        params = {**row, "submission_set_author_person": [a.person for a in ss.authors if a.person]}
        return int(conn.execute(_PG_INSERT_SUBMISSION_SET, params).scalar_one())
    row_id = conn.exec_driver_sql(_SQLITE_INSERT_SUBMISSION_SET, row).lastrowid
    authors = [{"set_id": row_id, "person": a.person} for a in ss.authors if a.person]
    _sqlite_rows(conn, _SQLITE_INSERT_SUBMISSION_SET_AUTHOR, authors)
    return row_id


def insert_folders(conn: Connection, folders: Sequence[tuple[Folder, bytes]]) -> None:
    sqlite = _is_sqlite(conn)
    for fd, xml in folders:
        row = {
            "entry_uuid": fd.id,
            "unique_id": fd.unique_id,
            "patient_id": fd.patient_id,
            "status": fd.status,
            "last_update_time": fd.last_update_time,
            "xml": xml,
        }
        if sqlite:
            row_id = conn.exec_driver_sql(_SQLITE_INSERT_FOLDER, row).lastrowid
        else:
            row_id = conn.execute(insert(t.folder), row).inserted_primary_key[0]
        codes = [{"folder_id": row_id, "code": c.code, "scheme": c.scheme} for c in fd.codes]
        if sqlite:
            _sqlite_rows(conn, _SQLITE_INSERT_FOLDER_CODE, codes)
        elif codes:
            conn.execute(insert(t.folder_code), codes)


def insert_associations(conn: Connection, assocs: Sequence[tuple[Association, bytes]]) -> None:
    if not assocs:
        return
    rows = [
        {
            "entry_uuid": a.id,
            "association_type": a.association_type,
            "source_uuid": a.source,
            "target_uuid": a.target,
            "status": a.status,
            "xml": xml,
        }
        for a, xml in assocs
    ]
    if _is_sqlite(conn):
        _sqlite_rows(conn, _SQLITE_INSERT_ASSOCIATION, rows)
        return
    # One row goes as a plain execute: the driver's executemany (a pipeline on psycopg) costs
    # more than the insert itself when there is a single row.
    conn.execute(insert(t.association), rows[0] if len(rows) == 1 else rows)


# -- lifecycle updates ----------------------------------------------------------------------


def set_document_status(conn: Connection, entry_uuids: Iterable[str], status: str) -> None:
    """Change availabilityStatus of entries, in the column and in the stored encoding."""
    d = t.document_entry
    for chunk in _chunks(sorted(set(entry_uuids)), 500):
        for row in conn.execute(select(d.c.id, d.c.xml).where(d.c.entry_uuid.in_(chunk))):
            xml = _patch(row.xml, status=status)
            conn.execute(update(d).where(d.c.id == row.id).values(status=status, xml=xml))


def set_folder_last_update(conn: Connection, folder_uuids: Iterable[str], when: str) -> None:
    """ITI TF-3 §4.2.3.4.1: the registry maintains Folder.lastUpdateTime."""
    f = t.folder
    for chunk in _chunks(sorted(set(folder_uuids)), 500):
        for row in conn.execute(select(f.c.id, f.c.xml).where(f.c.entry_uuid.in_(chunk))):
            xml = _patch(row.xml, slot=(SlotName.LAST_UPDATE_TIME, when))
            conn.execute(update(f).where(f.c.id == row.id).values(last_update_time=when, xml=xml))


def children_by_association(
    conn: Connection, target_uuids: Iterable[str], association_types: Sequence[str]
) -> list[str]:
    """Source entryUUIDs of associations of the given types that point at ``target_uuids``."""
    a = t.association
    out: list[str] = []
    for chunk in _chunks(sorted(set(target_uuids)), 500):
        out += conn.execute(
            select(a.c.source_uuid).where(
                a.c.target_uuid.in_(chunk), a.c.association_type.in_(association_types)
            )
        ).scalars()
    return out


def folders_holding(conn: Connection, entry_uuid: str, has_member: str) -> list[str]:
    """Folders (entryUUIDs) that have ``entry_uuid`` as a HasMember target."""
    a, f = t.association, t.folder
    rows = conn.execute(
        select(a.c.source_uuid)
        .join(f, f.c.entry_uuid == a.c.source_uuid)
        .where(a.c.target_uuid == entry_uuid, a.c.association_type == has_member)
    ).scalars()
    return list(dict.fromkeys(rows))


def rewrite_patient_id(conn: Connection, *, old: str, new: str) -> int:
    """ITI-8 merge: objects of ``old`` answer under ``new`` (column and stored encoding)."""
    changed = 0
    schemes = {
        t.document_entry: IdScheme.DE_PATIENT_ID,
        t.submission_set: IdScheme.SS_PATIENT_ID,
        t.folder: IdScheme.FD_PATIENT_ID,
    }
    for table, scheme in schemes.items():
        rows = conn.execute(select(table.c.id, table.c.xml).where(table.c.patient_id == old)).all()
        for row in rows:
            xml = _patch(row.xml, external_id=(scheme, new))
            conn.execute(update(table).where(table.c.id == row.id).values(patient_id=new, xml=xml))
            changed += 1
    return changed


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_SLOT = f"{{{NS_RIM}}}Slot"
_EXTERNAL_ID = f"{{{NS_RIM}}}ExternalIdentifier"


def _patch(
    xml: bytes,
    *,
    status: str | None = None,
    slot: tuple[str, str] | None = None,
    external_id: tuple[str, str] | None = None,
) -> bytes:
    """Apply a lifecycle change to an object's stored encoding (our own bytes, trusted)."""
    el = etree.fromstring(xml, _PARSER)
    if status is not None:
        el.set("status", status)
    if slot is not None:
        name, value = slot
        for s in el.iter(_SLOT):
            if s.get("name") == name:
                for v in s.iter(f"{{{NS_RIM}}}Value"):
                    v.text = value
                break
    if external_id is not None:
        scheme, value = external_id
        for e in el.iter(_EXTERNAL_ID):
            if e.get("identificationScheme") == scheme:
                e.set("value", value)
    return etree.tostring(el)


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
