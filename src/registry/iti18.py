"""ITI-18 Registry Stored Query at the Document Registry (ITI TF-2a §3.18.4.1.3).

The core parses and checks the AdhocQueryRequest into a typed :class:`StoredQuery`; this module
runs it against the registry's tables and builds the AdhocQueryResponse. Errors always come back
inside an AdhocQueryResponse (never a bare RegistryResponse; NIST issues #147, #173, #251).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from lxml import etree
from sqlalchemy import ColumnElement, Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from registry.store import reader as sql
from registry.store import schema as t
from xds.errors import ErrorCode, RegistryError, XdsError
from xds.metadata.responses import build_adhoc_query_response
from xds.query import StoredQuery, parse_query
from xds.vocabulary import NS_RIM, AssociationType

log = logging.getLogger(__name__)

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_OBJECT_REF = f"{{{NS_RIM}}}ObjectRef"
_OBJECT_LIST = f"{{{NS_RIM}}}RegistryObjectList"

@dataclass(slots=True)
class QueryResult:
    """Rows of a stored query, by kind, in the order they are returned."""

    submission_sets: list[sql.Row] = field(default_factory=list)
    documents: list[sql.Row] = field(default_factory=list)
    folders: list[sql.Row] = field(default_factory=list)
    associations: list[sql.Row] = field(default_factory=list)

    def objects(self) -> list[sql.Row]:
        return [*self.submission_sets, *self.documents, *self.folders, *self.associations]

    def __len__(self) -> int:
        return len(self.submission_sets) + len(self.documents) + len(self.folders) + len(self.associations)


class TooManyResults(Exception):
    """More objects than the registry's configured limit."""


class RegistryStoredQuery:
    """Runs ITI-18 stored queries on the registry database."""

    def __init__(self, engine: Engine, *, max_results: int = 5000) -> None:
        self.engine = engine
        self.max_results = max_results

    def respond(self, request: etree._Element) -> etree._Element:
        """AdhocQueryRequest element in, AdhocQueryResponse element out (never raises for bad input)."""
        try:
            query = parse_query(request)
        except XdsError as exc:
            return build_adhoc_query_response(objects=None, errors=list(exc.errors))
        return self.respond_to(query)

    def respond_to(self, query: StoredQuery) -> etree._Element:
        try:
            try:
                with self.engine.connect() as conn:
                    result = self.run(conn, query)
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                # A pooled connection was dead (the database restarted); the pool has been
                # renewed, and a read-only query is safe to run again.
                log.warning("ITI-18: database connection lost; retrying once: %s", exc.orig)
                with self.engine.connect() as conn:
                    result = self.run(conn, query)
        except TooManyResults:
            return build_adhoc_query_response(
                objects=None,
                errors=[
                    RegistryError(
                        ErrorCode.TOO_MANY_RESULTS,
                        f"{query.definition.name} matches more than {self.max_results} objects; narrow the query",
                    )
                ],
            )
        except SQLAlchemyError:
            log.exception("ITI-18 database failure")
            return build_adhoc_query_response(
                objects=None, errors=[RegistryError(ErrorCode.SQL_ERROR, "registry database error")]
            )
        rows = result.objects()
        if query.return_type == "LeafClass":
            # ITI TF-2a §3.18.4.1.3: a LeafClass result must not span patients (NIST 12368).
            patients = {r.patient_id for r in rows if r.patient_id is not None}
            if len(patients) > 1:
                return build_adhoc_query_response(
                    objects=None,
                    errors=[
                        RegistryError(
                            ErrorCode.RESULT_NOT_SINGLE_PATIENT,
                            f"{query.definition.name} LeafClass result spans {len(patients)} patients",
                        )
                    ],
                )
            return build_adhoc_query_response(objects=_leaf_class(rows), errors=[])
        return build_adhoc_query_response(objects=_object_refs(rows), errors=[])

    def run(self, conn: Connection, query: StoredQuery) -> QueryResult:
        handler = _HANDLERS[query.definition.name]
        result = handler(self, conn, query)
        if len(result) > self.max_results:
            raise TooManyResults
        return result

    # -- the stored queries ------------------------------------------------------------------

    def _limit(self) -> int:
        return self.max_results

    def find_documents(self, conn: Connection, q: StoredQuery) -> QueryResult:
        d = t.document_entry
        where = [d.c.patient_id == q.params["$XDSDocumentEntryPatientId"], *_document_filters(q)]
        return QueryResult(documents=sql.fetch(conn, sql.documents(where), limit=self._limit()))

    def find_documents_by_reference_id(self, conn: Connection, q: StoredQuery) -> QueryResult:
        return self.find_documents(conn, q)

    def find_documents_multi(self, conn: Connection, q: StoredQuery) -> QueryResult:
        d = t.document_entry
        where = _document_filters(q)
        pids = q.params.get("$XDSDocumentEntryPatientId")
        if pids:
            where.append(d.c.patient_id.in_(list(pids)))
        return QueryResult(documents=sql.fetch(conn, sql.documents(where), limit=self._limit()))

    def find_submission_sets(self, conn: Connection, q: StoredQuery) -> QueryResult:
        s = t.submission_set
        p = q.params
        where: list[ColumnElement[bool]] = [
            s.c.patient_id == p["$XDSSubmissionSetPatientId"],
            s.c.status.in_(list(p["$XDSSubmissionSetStatus"])),
        ]
        if p.get("$XDSSubmissionSetSourceId"):
            where.append(s.c.source_id.in_(list(p["$XDSSubmissionSetSourceId"])))
        where += sql.time_range(
            s.c.submission_time, p.get("$XDSSubmissionSetSubmissionTimeFrom"), p.get("$XDSSubmissionSetSubmissionTimeTo")
        )
        author = p.get("$XDSSubmissionSetAuthorPerson")
        if author:
            patterns = [author] if isinstance(author, str) else list(author)
            where.append(sql.authors_like(t.submission_set_author, "set_id", s, patterns))
        if p.get("$XDSSubmissionSetContentType"):
            where.append(sql.code_in(s.c.content_type_code, s.c.content_type_scheme, _pairs(p["$XDSSubmissionSetContentType"])))
        return QueryResult(submission_sets=sql.fetch(conn, sql.submission_sets(where), limit=self._limit()))

    def find_folders(self, conn: Connection, q: StoredQuery, *, multi: bool = False) -> QueryResult:
        f = t.folder
        p = q.params
        where: list[ColumnElement[bool]] = [f.c.status.in_(list(p["$XDSFolderStatus"]))]
        pid = p.get("$XDSFolderPatientId")
        if multi:
            if pid:
                where.append(f.c.patient_id.in_(list(pid)))
        else:
            where.append(f.c.patient_id == pid)
        where += sql.time_range(f.c.last_update_time, p.get("$XDSFolderLastUpdateTimeFrom"), p.get("$XDSFolderLastUpdateTimeTo"))
        for group in p.get("$XDSFolderCodeList") or ():
            where.append(sql.folder_codes_exist(_pairs(group)))
        return QueryResult(folders=sql.fetch(conn, sql.folders(where), limit=self._limit()))

    def find_folders_multi(self, conn: Connection, q: StoredQuery) -> QueryResult:
        return self.find_folders(conn, q, multi=True)

    def get_all(self, conn: Connection, q: StoredQuery) -> QueryResult:
        p = q.params
        pid = p["$patientId"]
        d, s, f = t.document_entry, t.submission_set, t.folder
        docs = sql.fetch(conn, sql.documents([d.c.patient_id == pid, *_document_filters(q, status_param="$XDSDocumentEntryStatus")]), limit=self._limit())
        sets = sql.fetch(conn, sql.submission_sets([s.c.patient_id == pid, s.c.status.in_(list(p["$XDSSubmissionSetStatus"]))]), limit=self._limit())
        fols = sql.fetch(conn, sql.folders([f.c.patient_id == pid, f.c.status.in_(list(p["$XDSFolderStatus"]))]), limit=self._limit())
        result = QueryResult(submission_sets=sets, documents=docs, folders=fols)
        result.associations = _associations_among(conn, [r.entry_uuid for r in result.objects()])
        return result

    def get_documents(self, conn: Connection, q: StoredQuery) -> QueryResult:
        d = t.document_entry
        where = [_by_ids(d, q, "$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId")]
        return QueryResult(documents=sql.fetch(conn, sql.documents(where), limit=self._limit()))

    def get_folders(self, conn: Connection, q: StoredQuery) -> QueryResult:
        f = t.folder
        where = [_by_ids(f, q, "$XDSFolderEntryUUID", "$XDSFolderUniqueId")]
        return QueryResult(folders=sql.fetch(conn, sql.folders(where), limit=self._limit()))

    def get_associations(self, conn: Connection, q: StoredQuery) -> QueryResult:
        uuids = [u.lower() for u in q.params["$uuid"]]
        return QueryResult(associations=[r for r, *_ in sql.associations_touching(conn, uuids)])

    def get_documents_and_associations(self, conn: Connection, q: StoredQuery) -> QueryResult:
        result = self.get_documents(conn, q)
        uuids = [r.entry_uuid for r in result.documents]
        result.associations = [r for r, *_ in sql.associations_touching(conn, uuids)]
        return result

    def get_submission_sets(self, conn: Connection, q: StoredQuery) -> QueryResult:
        uuids = [u.lower() for u in q.params["$uuid"]]
        links = sql.associations_to(conn, uuids, types=[AssociationType.HAS_MEMBER])
        s = t.submission_set
        sets = sql.fetch(conn, sql.submission_sets([s.c.entry_uuid.in_(sorted({src for _, _, src, _ in links}))]))
        set_ids = {r.entry_uuid for r in sets}
        return QueryResult(submission_sets=sets, associations=[r for r, _, src, _ in links if src in set_ids])

    def get_submission_set_and_contents(self, conn: Connection, q: StoredQuery) -> QueryResult:
        s = t.submission_set
        sets = sql.fetch(conn, sql.submission_sets([_by_ids(s, q, "$XDSSubmissionSetEntryUUID", "$XDSSubmissionSetUniqueId")]))
        if not sets:
            return QueryResult()
        ss = sets[0].entry_uuid
        members = sql.associations_from(conn, [ss], types=[AssociationType.HAS_MEMBER])
        targets = [tgt for _, _, _, tgt in members]
        d, f = t.document_entry, t.folder
        docs = sql.fetch(conn, sql.documents([d.c.entry_uuid.in_(targets), *_document_filters(q, with_status=False)]))
        fols = sql.fetch(conn, sql.folders([f.c.entry_uuid.in_(targets)]))
        kept = {r.entry_uuid for r in (*docs, *fols)}
        # SS -> DE/FD, then SS -> (FD -> DE) where both ends of the inner association are kept.
        inner = {r.entry_uuid: (src, tgt) for r, _, src, tgt in sql.associations(conn, t.association.c.entry_uuid.in_(targets))}
        inner_kept = {u for u, (src, tgt) in inner.items() if src in kept and tgt in kept}
        assocs = [r for r, _, _, tgt in members if tgt in kept or tgt in inner_kept]
        assocs += [r for r, *_ in sql.associations(conn, t.association.c.entry_uuid.in_(sorted(inner_kept)))] if inner_kept else []
        return QueryResult(submission_sets=sets, documents=docs, folders=fols, associations=assocs)

    def get_folder_and_contents(self, conn: Connection, q: StoredQuery) -> QueryResult:
        f = t.folder
        fols = sql.fetch(conn, sql.folders([_by_ids(f, q, "$XDSFolderEntryUUID", "$XDSFolderUniqueId")]))
        if not fols:
            return QueryResult()
        members = sql.associations_from(conn, [fols[0].entry_uuid], types=[AssociationType.HAS_MEMBER])
        d = t.document_entry
        docs = sql.fetch(conn, sql.documents([d.c.entry_uuid.in_([tgt for *_, tgt in members]), *_document_filters(q, with_status=False)]))
        kept = {r.entry_uuid for r in docs}
        return QueryResult(folders=fols, documents=docs, associations=[r for r, *_, tgt in members if tgt in kept])

    def get_folders_for_document(self, conn: Connection, q: StoredQuery) -> QueryResult:
        d, f = t.document_entry, t.folder
        docs = sql.fetch(conn, sql.documents([_by_ids(d, q, "$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId")]))
        if not docs:
            return QueryResult()
        links = sql.associations_to(conn, [r.entry_uuid for r in docs], types=[AssociationType.HAS_MEMBER])
        return QueryResult(folders=sql.fetch(conn, sql.folders([f.c.entry_uuid.in_([src for _, _, src, _ in links])])))

    def get_related_documents(self, conn: Connection, q: StoredQuery) -> QueryResult:
        d = t.document_entry
        docs = sql.fetch(conn, sql.documents([_by_ids(d, q, "$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId")]))
        if not docs:
            return QueryResult()
        origin = docs[0].entry_uuid
        types = list(q.params["$AssociationTypes"])
        links = [x for x in sql.associations_touching(conn, [origin]) if x[1] in types]
        others = {src if tgt == origin else tgt for _, _, src, tgt in links}
        related = sql.fetch(conn, sql.documents([d.c.entry_uuid.in_(sorted(others)), *_type_filter(q)])) if others else []
        if not related:
            return QueryResult()  # NIST 11909: no related documents -> empty result
        kept = {r.entry_uuid for r in related}
        assocs = [r for r, _, src, tgt in links if (src in kept or tgt in kept)]
        return QueryResult(documents=[docs[0], *related], associations=assocs)


# -- helpers -----------------------------------------------------------------------------------


def _pairs(codes: Iterable[object]) -> list[tuple[str, str]]:
    return [(c.code, c.scheme) for c in codes]  # type: ignore[attr-defined]


def _by_ids(table: t.Table, q: StoredQuery, uuid_param: str, uid_param: str) -> ColumnElement[bool]:
    uuids = q.params.get(uuid_param)
    if uuids:
        return sql.by_uuid_or_unique_id(table, uuids=_as_list(uuids))
    return sql.by_uuid_or_unique_id(table, unique_ids=_as_list(q.params.get(uid_param)))


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)  # type: ignore[call-overload]


def _type_filter(q: StoredQuery) -> list[ColumnElement[bool]]:
    return [t.document_entry.c.object_type.in_(list(q.object_types()))]


def _document_filters(
    q: StoredQuery, *, status_param: str = "$XDSDocumentEntryStatus", with_status: bool = True
) -> list[ColumnElement[bool]]:
    """The DocumentEntry filters shared by FindDocuments, GetAll and the *AndContents queries."""
    d = t.document_entry
    p = q.params
    where: list[ColumnElement[bool]] = []
    if with_status and p.get(status_param):
        where.append(d.c.status.in_(list(p[status_param])))
    where += _type_filter(q)
    for param, col, scheme in (
        ("$XDSDocumentEntryClassCode", d.c.class_code, d.c.class_scheme),
        ("$XDSDocumentEntryTypeCode", d.c.type_code, d.c.type_scheme),
        ("$XDSDocumentEntryPracticeSettingCode", d.c.practice_code, d.c.practice_scheme),
        ("$XDSDocumentEntryHealthcareFacilityTypeCode", d.c.hcft_code, d.c.hcft_scheme),
        ("$XDSDocumentEntryFormatCode", d.c.format_code, d.c.format_scheme),
    ):
        if p.get(param):
            where.append(sql.code_in(col, scheme, _pairs(p[param])))
    for base, col in (
        ("$XDSDocumentEntryCreationTime", d.c.creation_time),
        ("$XDSDocumentEntryServiceStartTime", d.c.service_start_time),
        ("$XDSDocumentEntryServiceStopTime", d.c.service_stop_time),
    ):
        where += sql.time_range(col, p.get(base + "From"), p.get(base + "To"))
    # AND of OR groups (ITI TF-2a §3.18.4.1.2.3.5).
    for group in p.get("$XDSDocumentEntryEventCodeList") or ():
        where.append(sql.entry_codes_exist("event", _pairs(group)))
    for group in p.get("$XDSDocumentEntryConfidentialityCode") or ():
        where.append(sql.entry_codes_exist("conf", _pairs(group)))
    for group in p.get("$XDSDocumentEntryReferenceIdList") or ():
        where.append(sql.references_exist(list(group)))
    if p.get("$XDSDocumentEntryAuthorPerson"):
        where.append(sql.authors_like(t.document_entry_author, "entry_id", d, _as_list(p["$XDSDocumentEntryAuthorPerson"])))
    return where


def _associations_among(conn: Connection, uuids: Sequence[str]) -> list[sql.Row]:
    """Associations whose both ends are in ``uuids``, plus SS HasMembers of those (GetAll)."""
    members = set(uuids)
    links = sql.associations_from(conn, list(uuids))
    direct = [(r, tgt) for r, _, _, tgt in links if tgt in members]
    direct_ids = {r.entry_uuid for r, _ in direct}
    nested = [r for r, _, _, tgt in links if tgt in direct_ids]
    return [r for r, _ in direct] + nested


def _leaf_class(rows: Sequence[sql.Row]) -> etree._Element:
    out = etree.Element(_OBJECT_LIST, nsmap={"rim": NS_RIM})
    for r in rows:
        out.append(etree.fromstring(r.xml, _PARSER))
    return out


def _object_refs(rows: Sequence[sql.Row]) -> etree._Element:
    out = etree.Element(_OBJECT_LIST, nsmap={"rim": NS_RIM})
    for r in rows:
        etree.SubElement(out, _OBJECT_REF, id=r.entry_uuid)
    return out


_HANDLERS: dict[str, Callable[[RegistryStoredQuery, Connection, StoredQuery], QueryResult]] = {
    "FindDocuments": RegistryStoredQuery.find_documents,
    "FindDocumentsByReferenceId": RegistryStoredQuery.find_documents_by_reference_id,
    "FindSubmissionSets": RegistryStoredQuery.find_submission_sets,
    "FindFolders": RegistryStoredQuery.find_folders,
    "GetAll": RegistryStoredQuery.get_all,
    "GetDocuments": RegistryStoredQuery.get_documents,
    "GetFolders": RegistryStoredQuery.get_folders,
    "GetAssociations": RegistryStoredQuery.get_associations,
    "GetDocumentsAndAssociations": RegistryStoredQuery.get_documents_and_associations,
    "GetSubmissionSets": RegistryStoredQuery.get_submission_sets,
    "GetSubmissionSetAndContents": RegistryStoredQuery.get_submission_set_and_contents,
    "GetFolderAndContents": RegistryStoredQuery.get_folder_and_contents,
    "GetFoldersForDocument": RegistryStoredQuery.get_folders_for_document,
    "GetRelatedDocuments": RegistryStoredQuery.get_related_documents,
    "FindDocumentsForMultiplePatients": RegistryStoredQuery.find_documents_multi,
    "FindFoldersForMultiplePatients": RegistryStoredQuery.find_folders_multi,
}
