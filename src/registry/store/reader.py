"""SQL for the ITI-18 stored queries (ITI TF-2a §3.18.4.1.2.3.7).

Each filter is a predicate on an indexed column of the object's table or a correlated EXISTS on a
narrow side table (an uncorrelated ``IN (SELECT ...)`` makes SQLite materialise every matching
code row and grows with the registry: performance-anchors §2 item 4). Time filters follow the TF:
``From <= value < To``, compared on the stored DTM text; an object without the attribute does not
match a time filter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, Select, Table, and_, exists, or_, select

from registry.store import schema as t

CodePair = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Row:
    """One object of a query result: its entryUUID, patient and stored encoding."""

    entry_uuid: str
    patient_id: str | None
    xml: bytes


# -- predicates --------------------------------------------------------------------------------


def code_in(code_col: ColumnElement, scheme_col: ColumnElement, codes: Sequence[CodePair]) -> ColumnElement[bool]:
    """A single-valued coded attribute matches any of ``codes`` (code and scheme both equal)."""
    return or_(*(and_(code_col == c, scheme_col == s) for c, s in codes))


def entry_codes_exist(kind: str, codes: Sequence[CodePair]) -> ColumnElement[bool]:
    """A DocumentEntry has at least one ``kind`` code among ``codes`` (one OR group)."""
    c = t.document_entry_code
    return exists().where(
        c.c.entry_id == t.document_entry.c.id, c.c.kind == kind, code_in(c.c.code, c.c.scheme, codes)
    )


def folder_codes_exist(codes: Sequence[CodePair]) -> ColumnElement[bool]:
    c = t.folder_code
    return exists().where(c.c.folder_id == t.folder.c.id, code_in(c.c.code, c.c.scheme, codes))


def time_range(col: ColumnElement, lower: str | None, upper: str | None) -> list[ColumnElement[bool]]:
    """ITI TF-2a §3.18.4.1.2.3.6: From is inclusive, To exclusive."""
    preds: list[ColumnElement[bool]] = []
    if lower is not None:
        preds.append(col >= lower)
    if upper is not None:
        preds.append(col < upper)
    if preds:
        preds.append(col.is_not(None))
    return preds


def like_any(col: ColumnElement, patterns: Sequence[str]) -> ColumnElement[bool]:
    """SQL LIKE with the TF's wildcards (% and _), any of ``patterns``."""
    return or_(*(col.like(p) for p in patterns))


def authors_like(table: Table, key: str, owner: Table, patterns: Sequence[str]) -> ColumnElement[bool]:
    return exists().where(table.c[key] == owner.c.id, like_any(table.c.person, patterns))


def references_exist(values: Sequence[str]) -> ColumnElement[bool]:
    r = t.document_entry_reference
    return exists().where(r.c.entry_id == t.document_entry.c.id, r.c.value.in_(values))


# -- selects -----------------------------------------------------------------------------------


def documents(where: Iterable[ColumnElement[bool]]) -> Select:
    d = t.document_entry
    return select(d.c.entry_uuid, d.c.patient_id, d.c.xml).where(*where)


def submission_sets(where: Iterable[ColumnElement[bool]]) -> Select:
    s = t.submission_set
    return select(s.c.entry_uuid, s.c.patient_id, s.c.xml).where(*where)


def folders(where: Iterable[ColumnElement[bool]]) -> Select:
    f = t.folder
    return select(f.c.entry_uuid, f.c.patient_id, f.c.xml).where(*where)


def fetch(conn: Connection, stmt: Select, *, limit: int | None = None) -> list[Row]:
    """Run ``stmt``; with ``limit``, fetch at most limit + 1 rows so a caller can tell 'too many'."""
    if limit is not None:
        stmt = stmt.limit(limit + 1)
    return [Row(r[0], r[1], r[2]) for r in conn.execute(stmt)]


def by_uuid_or_unique_id(
    table: Table, *, uuids: Sequence[str] = (), unique_ids: Sequence[str] = ()
) -> ColumnElement[bool]:
    if uuids:
        return table.c.entry_uuid.in_([u.lower() for u in uuids])
    return table.c.unique_id.in_(list(unique_ids))


def associations(conn: Connection, where: ColumnElement[bool]) -> list[tuple[Row, str, str, str]]:
    """Associations matching ``where``: (row, type, source, target)."""
    a = t.association
    stmt = select(a.c.entry_uuid, a.c.xml, a.c.association_type, a.c.source_uuid, a.c.target_uuid).where(where)
    return [(Row(r[0], None, r[1]), r[2], r[3], r[4]) for r in conn.execute(stmt)]


def associations_touching(conn: Connection, uuids: Sequence[str]) -> list[tuple[Row, str, str, str]]:
    a = t.association
    if not uuids:
        return []
    return associations(conn, or_(a.c.source_uuid.in_(uuids), a.c.target_uuid.in_(uuids)))


def associations_from(conn: Connection, sources: Sequence[str], *, types: Sequence[str] | None = None) -> list[tuple[Row, str, str, str]]:
    a = t.association
    if not sources:
        return []
    where = a.c.source_uuid.in_(sources)
    if types:
        where = and_(where, a.c.association_type.in_(types))
    return associations(conn, where)


def associations_to(conn: Connection, targets: Sequence[str], *, types: Sequence[str] | None = None) -> list[tuple[Row, str, str, str]]:
    a = t.association
    if not targets:
        return []
    where = a.c.target_uuid.in_(targets)
    if types:
        where = and_(where, a.c.association_type.in_(types))
    return associations(conn, where)
