"""Query/retrieve from the hospital PACS: C-ECHO, C-FIND and C-MOVE as an SCU (PS3.4 Annex C,
Study Root Query/Retrieve Information Model), to the Edge Server's own Storage SCP.

What the RSNA Edge Server learned (rsna-image-share §2.4 and §4.3), kept here:

* an exam is found by Patient ID and Accession Number at STUDY level, across every configured
  PACS; a study held by several PACS is retrieved once, from the node reporting the most
  instances (Number of Study Related Instances, PS3.4 §C.3.4);
* after the C-MOVE ends, arrivals are awaited with an *inactivity* timeout that restarts at each
  received instance, because some PACS send asynchronously after answering;
* never two C-MOVEs of one exam at once: a second request waits for the first and then finds
  the study already complete;
* a PACS that does not answer is skipped; when none answers the caller gets
  :class:`PacsUnavailable` and retries later (``attempts`` / ``retry_delay``).

Public API::

    PacsNode(name, ae_title, host, port, enabled=True)
    PacsDirectory(engine).add(node) / .remove(name) / .get(name) / .list()
    StudyMatch(node, study_uid, patient_id, accession, study_date, description,
               modalities, instance_count)
    RetrieveResult(study_uid, node, expected, received, completed, failed, complete)
    PacsClient(*, ae_title, store, move_destination=None, timeout=30.0,
               inactivity_timeout=600.0)
        .echo(node) -> bool
        .find_studies(nodes, *, patient_id=None, accession=None, study_uid=None) -> list[StudyMatch]
        .move_study(match) -> RetrieveResult
        .retrieve_exam(nodes, *, patient_id, accession=None, study_uid=None, attempts=1,
                       retry_delay=60.0, sleep=time.sleep) -> list[RetrieveResult]
    PacsError, PacsUnavailable
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)
from sqlalchemy import Engine, delete, select, update

from imaging_source import schema as t
from imaging_source.dicomstore import DicomStore

__all__ = [
    "PacsClient",
    "PacsDirectory",
    "PacsError",
    "PacsNode",
    "PacsUnavailable",
    "RetrieveResult",
    "StudyMatch",
]

log = logging.getLogger(__name__)

# PS3.4 §C.4.1.1.4 / §C.4.2.1.5: Pending statuses of C-FIND and C-MOVE.
_PENDING: Final = frozenset({0xFF00, 0xFF01})
_SUCCESS: Final = 0x0000
_WARNING: Final = 0xB000


class PacsError(Exception):
    """A PACS answered, but not as hoped (refused association, failed C-MOVE)."""


class PacsUnavailable(PacsError):
    """No configured PACS could be reached."""


@dataclass(frozen=True, slots=True)
class PacsNode:
    """One PACS: a name for people, its AE title, host and port (PS3.8 §9.3.2)."""

    name: str
    ae_title: str
    host: str
    port: int
    enabled: bool = True

    def __post_init__(self) -> None:
        # PS3.5 §6.2: AE is 1..16 characters, no backslash or control characters.
        if not 0 < len(self.ae_title.strip()) <= 16 or "\\" in self.ae_title:
            raise ValueError(f"{self.ae_title!r} is not a valid AE title (1-16 characters)")
        if not 0 < self.port < 65536:
            raise ValueError(f"{self.port} is not a TCP port")


class PacsDirectory:
    """The configured PACS nodes, kept in the Edge Server's index database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, node: PacsNode) -> None:
        """Add ``node``, or replace the node of the same name."""
        values = {"ae_title": node.ae_title, "host": node.host, "port": node.port, "enabled": node.enabled}
        with self.engine.begin() as conn:
            changed = conn.execute(update(t.pacs_node).where(t.pacs_node.c.name == node.name).values(**values)).rowcount
            if not changed:
                conn.execute(t.pacs_node.insert().values(name=node.name, created=time.time(), **values))

    def remove(self, name: str) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(delete(t.pacs_node).where(t.pacs_node.c.name == name)).rowcount)

    def get(self, name: str) -> PacsNode | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.pacs_node).where(t.pacs_node.c.name == name)).first()
        return _node(row) if row is not None else None

    def list(self, *, enabled_only: bool = False) -> list[PacsNode]:
        query = select(t.pacs_node).order_by(t.pacs_node.c.name)
        if enabled_only:
            query = query.where(t.pacs_node.c.enabled.is_(True))
        with self.engine.connect() as conn:
            return [_node(row) for row in conn.execute(query)]


def _node(row: Any) -> PacsNode:
    return PacsNode(row.name, row.ae_title, row.host, row.port, bool(row.enabled))


@dataclass(frozen=True, slots=True)
class StudyMatch:
    """One C-FIND STUDY-level answer (PS3.4 §C.6.2.1.2), with the node that gave it."""

    node: PacsNode
    study_uid: str
    patient_id: str
    accession: str
    study_date: str
    description: str
    modalities: tuple[str, ...]
    instance_count: int | None


@dataclass(frozen=True, slots=True)
class RetrieveResult:
    """The outcome of retrieving one study into the store."""

    study_uid: str
    node: PacsNode
    expected: int | None  # what the PACS said it holds (C-FIND or C-MOVE counts)
    received: int  # instances of the study in the store afterwards
    completed: int  # C-MOVE sub-operations completed
    failed: int  # C-MOVE sub-operations failed
    complete: bool


def _text(ds: Dataset | None, keyword: str) -> str:
    if ds is None:
        return ""
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def _int(ds: Dataset | None, keyword: str) -> int | None:
    text = _text(ds, keyword)
    try:
        return int(text) if text else None
    except ValueError:
        return None


class PacsClient:
    """C-ECHO / C-FIND / C-MOVE SCU of the Edge Server.

    ``store`` is where the moved instances land (through our Storage SCP, whose AE title is
    ``move_destination``, by default ``ae_title``); its :class:`ArrivalBoard` is what the
    inactivity wait watches.
    """

    def __init__(
        self,
        *,
        ae_title: str,
        store: DicomStore,
        move_destination: str | None = None,
        timeout: float = 30.0,
        inactivity_timeout: float = 600.0,
    ) -> None:
        self.ae_title = ae_title
        self.store = store
        self.move_destination = move_destination or ae_title
        self.timeout = timeout
        self.inactivity_timeout = inactivity_timeout
        self._locks_guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    # -- associations -----------------------------------------------------------------------------
    def _ae(self, *contexts: str) -> AE:
        ae = AE(ae_title=self.ae_title)
        ae.acse_timeout = self.timeout
        ae.network_timeout = self.timeout
        # A C-MOVE's responses may be far apart (one per sub-operation, or one at the end):
        # the DIMSE timeout bounds the silence between two, not the whole move.
        ae.dimse_timeout = max(self.timeout, self.inactivity_timeout)
        for context in contexts:
            ae.add_requested_context(context)
        return ae

    @contextmanager
    def _association(self, node: PacsNode, *contexts: str) -> Iterator[Any]:
        ae = self._ae(*contexts)
        assoc = ae.associate(node.host, node.port, ae_title=node.ae_title)
        if not assoc.is_established:
            if assoc.is_rejected:
                raise PacsError(f"{node.name} ({node.ae_title}@{node.host}:{node.port}) rejected the association")
            raise PacsUnavailable(f"{node.name} ({node.ae_title}@{node.host}:{node.port}) cannot be reached")
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()
            ae.shutdown()

    def echo(self, node: PacsNode) -> bool:
        """C-ECHO (PS3.4 Annex A): whether the node answers with Success."""
        try:
            with self._association(node, Verification) as assoc:
                status = assoc.send_c_echo()
        except PacsError as exc:
            log.info("C-ECHO %s: %s", node.name, exc)
            return False
        return bool(status) and status.Status == _SUCCESS

    # -- C-FIND -----------------------------------------------------------------------------------
    def _find_on(self, node: PacsNode, query: Dataset) -> list[StudyMatch]:
        matches: list[StudyMatch] = []
        with self._association(node, StudyRootQueryRetrieveInformationModelFind) as assoc:
            for status, identifier in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
                if not status:
                    raise PacsError(f"{node.name}: C-FIND timed out or the association was aborted")
                code = int(status.Status)
                if code in _PENDING:
                    uid = _text(identifier, "StudyInstanceUID")
                    if uid:
                        modalities = identifier.get("ModalitiesInStudy") if identifier is not None else None
                        if isinstance(modalities, str):
                            modalities = [modalities] if modalities else []
                        matches.append(
                            StudyMatch(
                                node=node,
                                study_uid=uid,
                                patient_id=_text(identifier, "PatientID"),
                                accession=_text(identifier, "AccessionNumber"),
                                study_date=_text(identifier, "StudyDate"),
                                description=_text(identifier, "StudyDescription"),
                                modalities=tuple(str(m) for m in (modalities or ())),
                                instance_count=_int(identifier, "NumberOfStudyRelatedInstances"),
                            )
                        )
                elif code != _SUCCESS:
                    raise PacsError(f"{node.name}: C-FIND failed with status 0x{code:04X}")
        return matches

    def find_studies(
        self,
        nodes: Sequence[PacsNode],
        *,
        patient_id: str | None = None,
        accession: str | None = None,
        study_uid: str | None = None,
    ) -> list[StudyMatch]:
        """Studies of a patient / accession on every node, each study once (PS3.4 §C.6.2).

        A study found on several nodes is kept from the node reporting the most instances.
        Raises :class:`PacsUnavailable` when no node could be queried.
        """
        if not (patient_id or accession or study_uid):
            raise ValueError("give a patient ID, an accession number or a Study Instance UID")
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        # PS3.4 §C.6.2.1.2: unique key empty = return it; the others are matching or return keys.
        query.StudyInstanceUID = study_uid or ""
        query.PatientID = patient_id or ""
        query.AccessionNumber = accession or ""
        query.PatientName = ""
        query.StudyDate = ""
        query.StudyDescription = ""
        query.ModalitiesInStudy = ""
        query.NumberOfStudyRelatedInstances = ""
        best: dict[str, StudyMatch] = {}
        reached = 0
        problems: list[str] = []
        for node in nodes:
            if not node.enabled:
                continue
            try:
                found = self._find_on(node, query)
            except PacsError as exc:
                problems.append(str(exc))
                log.warning("C-FIND on %s failed: %s", node.name, exc)
                continue
            reached += 1
            for match in found:
                # PS3.4 §C.6.2: matching on the keys given is the SCP's job, but a PACS that
                # ignores a key must not make us take another patient's study.
                if patient_id and match.patient_id and match.patient_id != patient_id:
                    continue
                if accession and match.accession and match.accession != accession:
                    continue
                kept = best.get(match.study_uid)
                if kept is None or (match.instance_count or 0) > (kept.instance_count or 0):
                    best[match.study_uid] = match
        if reached == 0:
            raise PacsUnavailable("; ".join(problems) or "no PACS configured")
        return list(best.values())

    # -- C-MOVE -----------------------------------------------------------------------------------
    @contextmanager
    def _exam_lock(self, key: str) -> Iterator[None]:
        with self._locks_guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield

    def _count(self, study_uid: str, ours: Collection[str]) -> int:
        """Instances of the study held here, not counting ``ours`` (our own manifests: the PACS
        never had them, so they must not make a partial study look complete)."""
        if not ours:
            return self.store.count_instances(study_uid)
        return sum(1 for i in self.store.study_instances(study_uid) if i.sop_uid not in ours)

    def move_study(self, match: StudyMatch, *, ours: Collection[str] = ()) -> RetrieveResult:
        """C-MOVE one study to our Storage SCP and wait for its instances (PS3.4 §C.4.2).

        Skips the move when the store already holds at least the expected count (``ours``:
        SOP Instance UIDs of objects we made, left out of that count).
        """
        with self._exam_lock(match.study_uid):
            expected = match.instance_count
            have = self._count(match.study_uid, ours)
            if expected is not None and have >= expected > 0:
                log.info("study %s already complete here (%d instances)", match.study_uid, have)
                return RetrieveResult(match.study_uid, match.node, expected, have, 0, 0, True)
            started = self.store.arrivals.count(match.study_uid)
            completed, failed = self._send_move(match)
            if expected is None or completed > expected:
                expected = completed if completed else expected
            target = expected

            def arrived() -> bool:
                if target is None:
                    return self.store.arrivals.count(match.study_uid) - started >= completed
                return self._count(match.study_uid, ours) >= target

            # rsna-image-share §2.4: asynchronous senders go on after the C-MOVE response;
            # wait while instances keep coming.
            self.store.arrivals.wait(match.study_uid, until=arrived, inactivity_timeout=self.inactivity_timeout)
            received = self._count(match.study_uid, ours)
            complete = received > 0 and (target is None or received >= target) and failed == 0
            return RetrieveResult(match.study_uid, match.node, expected, received, completed, failed, complete)

    def _send_move(self, match: StudyMatch) -> tuple[int, int]:
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = match.study_uid
        completed = failed = 0
        with self._association(match.node, StudyRootQueryRetrieveInformationModelMove) as assoc:
            for status, _identifier in assoc.send_c_move(
                query, self.move_destination, StudyRootQueryRetrieveInformationModelMove
            ):
                if not status:
                    raise PacsError(f"{match.node.name}: C-MOVE timed out or the association was aborted")
                code = int(status.Status)
                completed = int(status.get("NumberOfCompletedSuboperations", completed) or 0)
                failed = int(status.get("NumberOfFailedSuboperations", failed) or 0)
                if code in _PENDING:
                    continue
                # PS3.4 Table C.4-2: Success, or Warning 0xB000 (some sub-operations failed).
                if code not in (_SUCCESS, _WARNING):
                    raise PacsError(f"{match.node.name}: C-MOVE of {match.study_uid} failed with status 0x{code:04X}")
        return completed, failed

    def retrieve_exam(
        self,
        nodes: Sequence[PacsNode],
        *,
        patient_id: str,
        accession: str | None = None,
        study_uid: str | None = None,
        attempts: int = 1,
        retry_delay: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        ours: Collection[str] = (),
    ) -> list[RetrieveResult]:
        """Find an exam on the PACS and move each of its studies here.

        Tries ``attempts`` times, ``retry_delay`` seconds apart, while no PACS is reachable
        (RSNA retried "No devices found" the same way); other failures are raised at once.
        """
        for attempt in range(1, attempts + 1):
            try:
                matches = self.find_studies(nodes, patient_id=patient_id, accession=accession, study_uid=study_uid)
                return [self.move_study(match, ours=ours) for match in matches]
            except PacsUnavailable:
                if attempt == attempts:
                    raise
                log.info("no PACS reachable (attempt %d of %d); retrying in %.0f s", attempt, attempts, retry_delay)
                sleep(retry_delay)
        raise AssertionError("unreachable")
