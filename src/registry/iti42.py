"""ITI-42 Register Document Set-b at the Document Registry (ITI TF-2b §3.42.4.1.3).

The checklist runs in the order of xds-notes §4: structure and per-object rules (in the core's
validation), then the rules that need the registry's state (patient known, uniqueIds, entryUUIDs,
references, lifecycle targets), then one atomic commit that assigns UUIDs, sets status, lid and
version, maintains Folder lastUpdateTime, applies RPLC/XFRM_RPLC deprecation with its cascade and
copies folder membership to replacements. Any error rejects the whole submission and stores
nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from registry.store import objects as store
from registry.store.patients import PatientStore
from xds.errors import ErrorCode, RegistryError
from xds.metadata.ebrim import decode_submit_objects_request, encode_object_bytes
from xds.metadata.model import Association, RegistryObject, Submission
from xds.schemas import schema_errors
from xds.metadata.validation import CodeValidator, ValidationProfile, validate_submission
from xds.vocabulary import AssociationType, Severity, Status

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def dtm(moment: datetime) -> str:
    """A UTC DTM to the second (ITI TF-3 §4.2.3.1.3)."""
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S")


@dataclass(slots=True)
class _Plan:
    """What the state checks learned, for the commit to use."""

    submission: Submission
    replaced: list[str] = field(default_factory=list)
    replacement_of: dict[str, str] = field(default_factory=dict)
    folders_touched: set[str] = field(default_factory=set)
    warnings: list[RegistryError] = field(default_factory=list)


class DocumentRegistry:
    """The Document Registry's ITI-42 behaviour on a SQLAlchemy engine."""

    def __init__(
        self,
        engine: Engine,
        *,
        codes: CodeValidator | None = None,
        clock: Clock = utc_now,
        store_extra_metadata: bool = True,
        schema: etree.XMLSchema | None = None,
    ) -> None:
        self.engine = engine
        self.schema = schema
        self.codes = codes
        self.clock = clock
        self.store_extra_metadata = store_extra_metadata
        self.patients = PatientStore(engine)

    def register(self, request: etree._Element) -> list[RegistryError]:
        """Process one lcm:SubmitObjectsRequest; return the RegistryErrors (empty = Success)."""
        # xds-notes §4 item 1: the body validates against lcm.xsd (when the schemas are configured).
        if self.schema is not None:
            invalid = schema_errors(self.schema, request, code=ErrorCode.REGISTRY_METADATA_ERROR)
            if invalid:
                return invalid
        decoded = decode_submit_objects_request(request)
        findings = validate_submission(
            decoded.submission,
            findings_from_decode=decoded.findings,
            profile=ValidationProfile.ITI42_REGISTRY,
            codes=self.codes,
        )
        if any(f.is_error for f in findings):
            return findings
        stored = self._store(decoded.submission, findings, retry=True)
        if stored is None:
            # The pooled connection was dead before anything was sent for commit (the database
            # restarted): the pool has been renewed and nothing was stored, so the submission is
            # decoded afresh (the failed attempt may have assigned ids) and run once more.
            stored = self._store(decode_submit_objects_request(request).submission, findings, retry=False)
        assert stored is not None
        return stored

    def _store(self, submission: Submission, findings: list[RegistryError], *, retry: bool) -> list[RegistryError] | None:
        """Check the registry state and commit atomically; None asks the caller to retry once."""
        committing = False
        try:
            with self.engine.begin() as conn:
                plan = _Plan(submission=submission)
                errors = self._check_state(conn, plan)
                if errors:
                    conn.rollback()
                    return errors
                self._commit(conn, plan)
                committing = True  # leaving the block sends COMMIT: its failure is not retried
        except IntegrityError as exc:
            # A concurrent submission took a uniqueId or entryUUID between check and insert.
            log.info("ITI-42 rejected on a uniqueness conflict: %s", exc.orig)
            return [RegistryError(ErrorCode.REGISTRY_ERROR, "submission conflicts with a concurrent one; nothing was stored")]
        except DBAPIError as exc:
            if retry and exc.connection_invalidated and not committing:
                log.warning("ITI-42: database connection lost before commit; retrying once: %s", exc.orig)
                return None
            log.exception("ITI-42 database failure")
            return [RegistryError(ErrorCode.REGISTRY_ERROR, "registry database error; nothing was stored")]
        except SQLAlchemyError:
            log.exception("ITI-42 database failure")
            return [RegistryError(ErrorCode.REGISTRY_ERROR, "registry database error; nothing was stored")]
        return findings + plan.warnings

    # -- state checks (xds-notes §4 items 4-7) ---------------------------------------------

    def _check_state(self, conn: Connection, plan: _Plan) -> list[RegistryError]:
        sub = plan.submission
        errors: list[RegistryError] = []
        ss = sub.submission_sets[0]
        # One statement answers the patient, package uniqueId and DocumentEntry uniqueId checks.
        package_ids = [p.unique_id for p in (*sub.submission_sets, *sub.folders) if p.unique_id]
        looked_up = store.submission_lookups(
            conn,
            patient_id=ss.patient_id or "",
            package_unique_ids=package_ids,
            document_unique_ids=[d.unique_id for d in sub.document_entries if d.unique_id],
        )
        # ITI TF-2b §3.42.4.1.3.3: the patient must be known from the Patient Identity Feed.
        if not looked_up.patient_known:
            errors.append(
                RegistryError(
                    ErrorCode.UNKNOWN_PATIENT_ID,
                    f"patient ID {ss.patient_id} is not known to the registry",
                    ss.id,
                )
            )

        # uniqueId rules (ITI TF-2b §3.42.4.1.3.5).
        for uid in sorted(looked_up.package_unique_ids):
            errors.append(
                RegistryError(ErrorCode.DUPLICATE_UNIQUE_ID_IN_REGISTRY, f"uniqueId {uid} is already registered", uid)
            )
        existing = looked_up.documents
        for de in sub.document_entries:
            for old_hash, old_size in existing.get(de.unique_id or "", []):
                if (de.hash or "").lower() != (old_hash or "").lower():
                    errors.append(
                        RegistryError(
                            ErrorCode.NON_IDENTICAL_HASH,
                            f"DocumentEntry uniqueId {de.unique_id} is registered with hash {old_hash}, submitted {de.hash}",
                            de.unique_id or de.id,
                        )
                    )
                    break
                if de.size_bytes != old_size:
                    errors.append(
                        RegistryError(
                            ErrorCode.NON_IDENTICAL_SIZE,
                            f"DocumentEntry uniqueId {de.unique_id} is registered with size {old_size}, submitted {de.size}",
                            de.unique_id or de.id,
                        )
                    )
                    break

        # entryUUIDs supplied by the client must be new (NIST 15806).
        in_message = {o.id for o in sub.all_objects()}
        supplied = [i for i in in_message if i.startswith("urn:uuid:")]
        for ref in store.resolve_uuids(conn, supplied).values():
            errors.append(
                RegistryError(
                    ErrorCode.REGISTRY_METADATA_ERROR,
                    f"entryUUID {ref.entry_uuid} already identifies a registered {ref.kind}",
                    ref.entry_uuid,
                )
            )

        errors += self._check_references(conn, plan, in_message)
        return errors

    def _check_references(self, conn: Connection, plan: _Plan, in_message: set[str]) -> list[RegistryError]:
        sub = plan.submission
        errors: list[RegistryError] = []
        pid = sub.submission_sets[0].patient_id
        outside = {x for a in sub.associations for x in (a.source, a.target) if x not in in_message}
        registered = store.resolve_uuids(conn, outside)
        folders = {f.id: f for f in sub.folders}
        for a in sub.associations:
            for end in (a.source, a.target):
                if end not in in_message and end not in registered:
                    errors.append(
                        RegistryError(
                            ErrorCode.UNRESOLVED_REFERENCE,
                            f"Association {a.id} refers to {end}, which is neither in the submission nor in the registry",
                            a.id,
                        )
                    )
            target = registered.get(a.target)
            if a.association_type in AssociationType.RELATIONSHIPS and a.target not in in_message:
                if target is None:
                    continue
                # ITI TF-3 §4.2.2.2: relationship targets are registered DocumentEntries ...
                if target.kind != store.KIND_DOCUMENT:
                    errors.append(
                        RegistryError(ErrorCode.REGISTRY_METADATA_ERROR, f"{a.association_type} target {a.target} is a {target.kind}, not a DocumentEntry", a.id)
                    )
                    continue
                # ... that are Approved (NIST 11993 apnd_rplc, 11994 xfrm_rplc).
                if target.status != Status.APPROVED:
                    errors.append(
                        RegistryError(ErrorCode.REGISTRY_DEPRECATED_DOCUMENT_ERROR, f"{a.association_type} target {a.target} is not Approved", a.id)
                    )
                # ... of the same patient (NIST 11998).
                if target.patient_id != pid:
                    errors.append(
                        RegistryError(ErrorCode.PATIENT_ID_DOES_NOT_MATCH, f"{a.association_type} target {a.target} belongs to another patient", a.id)
                    )
                if a.association_type in AssociationType.REPLACING:
                    plan.replaced.append(a.target)
                    plan.replacement_of[a.source] = a.target
            elif a.association_type == AssociationType.HAS_MEMBER:
                # A Folder of the registry gaining a member, or an SS referencing an existing DE.
                source = registered.get(a.source)
                if source is not None and source.kind == store.KIND_FOLDER:
                    if source.status != Status.APPROVED:
                        errors.append(RegistryError(ErrorCode.REGISTRY_METADATA_ERROR, f"Folder {a.source} is not Approved", a.id))
                    if source.patient_id != pid:
                        errors.append(
                            RegistryError(ErrorCode.PATIENT_ID_DOES_NOT_MATCH, f"Folder {a.source} belongs to another patient", a.id)
                        )
                    plan.folders_touched.add(a.source)
                if target is not None and target.kind == store.KIND_DOCUMENT:
                    # NIST 12002: another patient's DocumentEntry cannot join this patient's Folder.
                    if target.patient_id != pid:
                        errors.append(
                            RegistryError(ErrorCode.PATIENT_ID_DOES_NOT_MATCH, f"DocumentEntry {a.target} belongs to another patient", a.id)
                        )
                    if a.source in folders and target.status != Status.APPROVED:
                        errors.append(RegistryError(ErrorCode.REGISTRY_DEPRECATED_DOCUMENT_ERROR, f"DocumentEntry {a.target} is not Approved", a.id))
        return errors

    # -- commit (xds-notes §4 item 8) ----------------------------------------------------------

    def _commit(self, conn: Connection, plan: _Plan) -> None:
        sub = plan.submission
        now = dtm(self.clock())
        ids = _assign_uuids(sub)
        plan.replaced = [ids.get(x, x) for x in plan.replaced]
        plan.replacement_of = {ids.get(k, k): ids.get(v, v) for k, v in plan.replacement_of.items()}
        plan.folders_touched = {ids.get(x, x) for x in plan.folders_touched}

        if not self.store_extra_metadata:
            dropped = _drop_extra_metadata(sub)
            if dropped:
                plan.warnings.append(
                    RegistryError(
                        ErrorCode.EXTRA_METADATA_NOT_SAVED,
                        f"extra metadata not saved: {', '.join(sorted(dropped))}",
                        severity=Severity.WARNING,
                    )
                )

        for obj in sub.all_objects():
            obj.status = Status.APPROVED
            obj.lid = obj.id
            obj.version = "1"
        for fd in sub.folders:
            fd.last_update_time = now  # NIST 12323: a submitted value is replaced

        ss = sub.submission_sets[0]
        store.insert_submission_set(conn, ss, _xml(ss))
        store.insert_document_entries(conn, [(d, _xml(d)) for d in sub.document_entries])
        store.insert_folders(conn, [(f, _xml(f)) for f in sub.folders])
        store.insert_associations(conn, [(a, _xml(a)) for a in sub.associations])

        # RPLC / XFRM_RPLC: deprecate the target and, recursively, its APND/XFRM children (CP117, NIST 12022).
        if plan.replaced:
            to_deprecate = _cascade(conn, plan.replaced)
            store.set_document_status(conn, to_deprecate, Status.DEPRECATED)
            # The replacement joins every Folder of the original (NIST 12327).
            extra: list[tuple[Association, bytes]] = []
            for new, old in plan.replacement_of.items():
                for folder_uuid in store.folders_holding(conn, old, AssociationType.HAS_MEMBER):
                    a = Association(
                        id=_new_uuid(),
                        association_type=AssociationType.HAS_MEMBER,
                        source=folder_uuid,
                        target=new,
                        status=Status.APPROVED,
                    )
                    a.lid, a.version = a.id, "1"
                    extra.append((a, _xml(a)))
                    plan.folders_touched.add(folder_uuid)
            store.insert_associations(conn, extra)
        if plan.folders_touched:
            store.set_folder_last_update(conn, plan.folders_touched, now)
        log.info(
            "ITI-42 registered submission set %s: %d entries, %d folders, %d associations",
            ss.unique_id,
            len(sub.document_entries),
            len(sub.folders),
            len(sub.associations),
        )


def _cascade(conn: Connection, roots: Iterable[str]) -> list[str]:
    seen: list[str] = []
    frontier = list(roots)
    while frontier:
        seen += [x for x in frontier if x not in seen]
        children = store.children_by_association(
            conn, frontier, (AssociationType.APND, AssociationType.XFRM)
        )
        frontier = [c for c in children if c not in seen]
    return seen


def _new_uuid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _assign_uuids(sub: Submission) -> dict[str, str]:
    """Replace symbolic ids by new lowercase urn:uuid ids and rewrite references."""
    ids: dict[str, str] = {}
    for obj in sub.all_objects():
        if obj.id.startswith("urn:uuid:"):
            obj.id = obj.id.lower()
        else:
            ids[obj.id] = _new_uuid()
            obj.id = ids[obj.id]
    for a in sub.associations:
        a.source = ids.get(a.source, a.source.lower() if a.source.startswith("urn:uuid:") else a.source)
        a.target = ids.get(a.target, a.target.lower() if a.target.startswith("urn:uuid:") else a.target)
    return ids


def _drop_extra_metadata(sub: Submission) -> set[str]:
    dropped: set[str] = set()
    for obj in sub.all_objects():
        keep = []
        for s in obj.extra_slots:
            if s.name.startswith("urn:") and not s.name.startswith("urn:ihe:"):
                dropped.add(s.name)
            else:
                keep.append(s)
        obj.extra_slots = keep
    return dropped


def _xml(obj: RegistryObject) -> bytes:
    return encode_object_bytes(obj)

