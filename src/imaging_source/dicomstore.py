"""The Edge Server's DICOM store: instance files on disk, indexed by patient, study, series and
instance in SQL (:mod:`imaging_source.schema`).

Files are written under a temporary name, fsynced (unless told otherwise), and renamed to
``studies/<StudyInstanceUID>/<SOPInstanceUID>.dcm``. A Part 10 file is kept byte for byte; a
dataset received by C-STORE is kept byte for byte behind our File Meta Information (PS3.10
§7.1), in the transfer syntax it arrived in, so WADO and RAD-69 stream it back unchanged. A SOP
Instance received again replaces the earlier copy (PS3.4 §B.4.1 leaves duplicates to the SCP;
the latest wins). Only headers are parsed (:mod:`imaging_source.header`).

Two ways in: ``store_*`` index each instance before returning; ``stage_*`` write it to
``incoming/`` and :meth:`~DicomStore.commit_staged` indexes a batch and moves the files into
place (the C-STORE path, see :mod:`imaging_source.intake`); :meth:`~DicomStore.recover_incoming`
finishes what a crash interrupted.

:class:`ArrivalBoard` counts arrivals per study, so a retrieval waiting for an asynchronous
C-MOVE can stop after a period of inactivity (rsna-image-share §2.4).

Public API::

    DicomStore(root, engine, *, fsync=True)
        .store_bytes(data) -> StoredInstance        # Part 10 bytes, header parsed, indexed
        .store_file(path) -> StoredInstance         # moves a Part 10 file in
        .stage_bytes(data) -> Staged                # written to incoming/, not indexed
        .stage_dataset(dataset, *, transfer_syntax, source_ae="") -> Staged
        .open_staging(*, sop_class_uid, sop_instance_uid, transfer_syntax, source_ae="", prepared=None) -> StagingFile
        .prepare_staging_file() -> (Path, fd)       # an empty temporary file, made ahead
            StagingFile.write(data) / .finish() -> Staged / .discard()   # streamed C-STORE data set
        .commit_staged(batch) -> list[StoredInstance]
        .recover_incoming() -> int
        .instance(sop_uid) -> StoredInstance | None
        .instances(sop_uids) -> dict[str, StoredInstance]
        .study_instances(study_uid) -> list[StoredInstance]
        .count_instances(study_uid) -> int
        .study(study_uid) -> StudyRecord | None
        .contents(study_uid) -> StudyContents | None
        .jacket(patient_id, *, issuer=None) -> Jacket | None
        .studies_by_accession(accession) -> list[StudyRecord]
        .delete_study(study_uid) -> int
        .arrivals: ArrivalBoard
"""

from __future__ import annotations

import io
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pydicom.filereader import read_dataset
from pydicom.tag import BaseTag
from pydicom.uid import UID
from sqlalchemy import Connection, Engine, bindparam, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from imaging_source import schema as t
from imaging_source.header import InvalidInstance, header_from_dataset, read_header, read_stream_header, safe_uid
from imaging_source.part10 import file_meta
from imaging_source.arrivals import ArrivalBoard
from imaging_source.model import (
    InstanceHeader,
    InstanceRef,
    Jacket,
    PatientRecord,
    SeriesRecord,
    StoredInstance,
    StudyContents,
    StudyRecord,
)
from xds.durable import fsync_dir

__all__ = ["ArrivalBoard", "DatasetMismatch", "DicomStore", "InvalidInstance", "Staged", "StagingFile"]

_STUDIES: Final = "studies"
_TMP: Final = "tmp"
_INCOMING: Final = "incoming"
_REJECTED: Final = "rejected"
#: Instances being received (StagingFile), and empty files made ahead for them.
_STAGING: Final = "staging"
#: SQLite allows 32766 bound parameters; stay well below.
_IN_CHUNK: Final = 900
#: How many series rows the store remembers (see DicomStore._index).
_SERIES_MEMORY: Final = 4096
#: Bytes a StagingFile gathers before each write (bounds its memory per association).
_STAGING_BUFFER: Final = 256 * 1024


@dataclass(frozen=True, slots=True)
class Staged:
    """An instance written to ``incoming/`` and not yet indexed."""

    path: Path
    header: InstanceHeader
    size: int


class DatasetMismatch(InvalidInstance):
    """The data set's SOP Class is not the one its C-STORE request announced (PS3.4 §B.2.3:
    Error 0xA900, Data Set does not match SOP Class)."""


_PIXEL_TAGS: Final = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})


def _prefix_header(data: bytes | bytearray, transfer_syntax: str, *, complete: bool) -> InstanceHeader | None:
    """The header of a data set from its first bytes, when they hold it whole: the pixel data
    element was reached, or ``data`` is the complete data set. None: read it from the file."""
    uid = UID(transfer_syntax)
    if not uid.is_transfer_syntax or uid.is_deflated:
        return None  # PS3.5 §A.5: deflated data sets are read from the file (header.py inflates)
    reached: list[bool] = []

    def at_pixels(tag: BaseTag, _vr: str | None, _length: int) -> bool:
        # PS3.3 §C.7.6.3: Pixel Data (or float pixel data) ends the header.
        if int(tag) in _PIXEL_TAGS:
            reached.append(True)
        return bool(reached)

    try:
        ds = read_dataset(io.BytesIO(data), uid.is_implicit_VR, uid.is_little_endian, stop_when=at_pixels)
    except (EOFError, ValueError, KeyError, TypeError, NotImplementedError, OSError) as exc:
        if complete:
            raise InvalidInstance(f"unreadable dataset: {exc}") from exc
        return None
    if not reached and not complete:
        return None
    try:
        return header_from_dataset(ds, transfer_syntax=transfer_syntax)
    except (ValueError, TypeError, KeyError) as exc:
        raise exc if isinstance(exc, InvalidInstance) else InvalidInstance(f"unreadable header: {exc}") from exc


class StagingFile:
    """One instance arriving in pieces (a streamed C-STORE data set): our File Meta, then the
    data set bytes as they come, in ``staging/`` (never all in memory); the header is read from
    the first bytes while in memory when they hold it. :meth:`close` writes the rest and fsyncs
    when the store does (blocking: a worker thread may run it); :meth:`finish` checks the header
    and moves the file into ``incoming/``. A crash before that leaves a file in ``staging/``
    for :meth:`DicomStore.sweep_tmp`.
    """

    def __init__(self, store: DicomStore, *, sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str,
                 source_ae: str = "", prepared: tuple[Path, int] | None = None) -> None:
        # The names become file names and File Meta values: UIDs only (PS3.5 §9.1).
        for uid in (sop_class_uid, sop_instance_uid, transfer_syntax):
            if not safe_uid(uid):
                raise InvalidInstance(f"{uid!r} is not a UID")
        self._store = store
        self.sop_class_uid = sop_class_uid
        self.sop_instance_uid = sop_instance_uid
        self.transfer_syntax = transfer_syntax
        self.path, fd = prepared if prepared is not None else store.prepare_staging_file()
        self._fd: int | None = fd
        # PS3.10 §7.1: the File Meta Information goes in front of the data set.
        self._buffer = bytearray(file_meta(sop_class_uid=sop_class_uid, sop_instance_uid=sop_instance_uid,
                                           transfer_syntax=transfer_syntax, source_ae=source_ae))
        self._meta_length = len(self._buffer)
        self._flushed = False
        self._header: InstanceHeader | None = None
        self._refusal: InvalidInstance | None = None
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append data set bytes (buffered up to 256 KiB)."""
        self._buffer += data
        if len(self._buffer) >= _STAGING_BUFFER:
            self._flush()

    def _read_prefix(self, *, complete: bool) -> None:
        """Read the header from the first buffer, before it is written out."""
        try:
            self._header = _prefix_header(memoryview(self._buffer)[self._meta_length :].tobytes(),
                                          self.transfer_syntax, complete=complete)
        except InvalidInstance as exc:
            self._refusal = exc

    def _flush(self) -> None:
        if self._fd is None:
            raise OSError("the staging file is closed")
        if not self._flushed:
            self._read_prefix(complete=False)
        self._flushed = True
        written, total = 0, len(self._buffer)
        with memoryview(self._buffer) as whole:
            while written < total:
                with whole[written:] as rest:
                    written += os.write(self._fd, rest)
        self.size += len(self._buffer)
        self._buffer.clear()

    def close(self) -> None:
        """Write what is buffered, fsync when the store does, close the file (idempotent)."""
        if self._fd is None:
            return
        if not self._flushed:
            self._read_prefix(complete=True)
        self._flushed = True
        self._flush()
        if self._store.fsync:
            os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None

    def finish(self) -> Staged:
        """Complete the file and move it to ``incoming/`` (not yet indexed). Raises
        :class:`InvalidInstance` / :class:`DatasetMismatch` (the file is removed) or OSError."""
        try:
            self.close()
            if self._refusal is not None:
                raise self._refusal
            header = self._header if self._header is not None else read_header(self.path)
            if header.sop_uid != self.sop_instance_uid:
                raise InvalidInstance(f"the data set is SOP Instance {header.sop_uid}, "
                                      f"the request announced {self.sop_instance_uid}")
            if header.sop_class_uid != self.sop_class_uid:
                raise DatasetMismatch(f"the data set is of SOP Class {header.sop_class_uid}, "
                                      f"the request announced {self.sop_class_uid}")
            target = self._store.incoming_dir / f"{uuid.uuid4().hex}.dcm"
            os.replace(self.path, target)
        except BaseException:
            self.discard()
            raise
        return Staged(target, header, self.size)

    def discard(self) -> None:
        """Drop the partial file (an aborted association, a refused instance)."""
        self._buffer.clear()
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        self.path.unlink(missing_ok=True)


def _dialect_insert(engine: Engine) -> Callable[..., Any]:
    name = engine.dialect.name
    if name == "sqlite":
        return sqlite.insert
    if name == "postgresql":
        return postgresql.insert
    raise ValueError(f"the DICOM index supports SQLite and PostgreSQL, not {name}")


class DicomStore:
    """Instance files under ``root`` and their index in ``engine`` (already migrated)."""

    def __init__(self, root: Path | str, engine: Engine, *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.engine = engine
        self.fsync = fsync
        self.arrivals = ArrivalBoard()
        self._insert = _dialect_insert(engine)
        self._prepare_upserts()
        # series UID -> (the attributes its rows were written with, its row id)
        self._series_refs: dict[str, tuple[tuple[str, ...], int]] = {}
        self._series_lock = threading.Lock()
        (self.root / _STUDIES).mkdir(parents=True, exist_ok=True)
        self.tmp_dir = self.root / _TMP
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.incoming_dir = self.root / _INCOMING
        self.incoming_dir.mkdir(parents=True, exist_ok=True)
        self.staging_dir = self.root / _STAGING
        self.staging_dir.mkdir(parents=True, exist_ok=True)

    # -- paths -----------------------------------------------------------------------------------
    def relative_path(self, header: InstanceHeader) -> str:
        # header.py already refused anything but UIDs: the names cannot leave the store.
        assert safe_uid(header.study_uid) and safe_uid(header.sop_uid)
        return f"{_STUDIES}/{header.study_uid}/{header.sop_uid}.dcm"

    def _absolute(self, relative: str) -> Path:
        return self.root / relative

    def temp_path(self) -> Path:
        """A fresh name in the store's temporary directory (same filesystem: rename is atomic)."""
        return self.tmp_dir / f"{uuid.uuid4().hex}.part"

    # -- ingest ----------------------------------------------------------------------------------
    def store_bytes(self, data: bytes | bytearray | memoryview) -> StoredInstance:
        """Store and index one Part 10 instance given as bytes, now; raises :class:`InvalidInstance`."""
        header = read_header(data)
        tmp = self.temp_path()
        self._write_new(tmp, data)
        return self._commit(tmp, header, len(data))

    def store_file(self, path: Path) -> StoredInstance:
        """Move a Part 10 file into the store: a rename on the store's filesystem, a copy (then
        the source is removed) elsewhere. Raises :class:`InvalidInstance` and leaves it alone."""
        source = Path(path)
        header = read_header(source)
        size = source.stat().st_size
        if os.stat(source).st_dev != os.stat(self.tmp_dir).st_dev:
            staged = self.temp_path()
            shutil.copyfile(source, staged)
            source.unlink()
            source = staged
        if self.fsync:
            fd = os.open(source, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return self._commit(source, header, size)

    # -- staged ingest (the SCP's path: index and rename in batches, off the association) ------
    def _write_new(self, path: Path, *pieces: bytes | bytearray | memoryview) -> int:
        """Write ``pieces`` to a new file (one writev when it can), fsync when configured."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        total = 0
        try:
            views = [memoryview(p).cast("B") for p in pieces]
            while views:
                written = os.writev(fd, views)
                total += written
                while views and written >= len(views[0]):
                    written -= len(views[0])
                    views.pop(0)
                if views and written:
                    views[0] = views[0][written:]
            if self.fsync:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        os.close(fd)
        return total

    def stage_bytes(self, data: bytes | bytearray | memoryview) -> Staged:
        """Check and write one instance to ``incoming/`` (fsynced when configured), not yet
        indexed: :meth:`commit_staged` does that, and :meth:`recover_incoming` after a crash.
        Raises :class:`InvalidInstance` (nothing is written)."""
        header = read_header(data)
        path = self.incoming_dir / f"{uuid.uuid4().hex}.dcm"
        self._write_new(path, data)
        return Staged(path, header, len(data))

    def stage_dataset(self, dataset: io.BytesIO, *, transfer_syntax: str, source_ae: str = "") -> Staged:
        """Like :meth:`stage_bytes` for a bare dataset as a C-STORE carries it: its header is
        read in place and the file is our File Meta followed by the dataset, uncopied."""
        header = read_stream_header(dataset, transfer_syntax=transfer_syntax)
        meta = file_meta(
            sop_class_uid=header.sop_class_uid,
            sop_instance_uid=header.sop_uid,
            transfer_syntax=transfer_syntax,
            source_ae=source_ae,
        )
        path = self.incoming_dir / f"{uuid.uuid4().hex}.dcm"
        with dataset.getbuffer() as view:
            size = self._write_new(path, meta, view)
        return Staged(path, header, size)

    def prepare_staging_file(self) -> tuple[Path, int]:
        """A new empty temporary file, open for writing: (path, descriptor). Creating a file
        costs ~1 ms on some filesystems, so the SCP prepares a few ahead of the instances."""
        path = self.staging_dir / f"{uuid.uuid4().hex}.part"
        return path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)

    def open_staging(self, *, sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str,
                     source_ae: str = "", prepared: tuple[Path, int] | None = None) -> StagingFile:
        """A :class:`StagingFile` for a data set that arrives in pieces (the streamed C-STORE
        path), in ``prepared`` (from :meth:`prepare_staging_file`) or a new file; raises
        :class:`InvalidInstance` for identifiers that are not UIDs (``prepared`` is then unused)."""
        return StagingFile(self, sop_class_uid=sop_class_uid, sop_instance_uid=sop_instance_uid,
                           transfer_syntax=transfer_syntax, source_ae=source_ae, prepared=prepared)

    def commit_staged(self, batch: Sequence[Staged]) -> list[StoredInstance]:
        """Index staged instances in one transaction, then move each to its place.

        The index is committed first: a crash before the moves leaves the files in
        ``incoming/``, and :meth:`recover_incoming` indexes (idempotently) and moves them.
        """
        if not batch:
            return []
        relatives = [self.relative_path(s.header) for s in batch]
        previous = self._index_batch([(s.header, rel, s.size) for s, rel in zip(batch, relatives, strict=True)])
        directories: set[Path] = set()
        stored = []
        for staged, relative, before in zip(batch, relatives, previous, strict=True):
            target = self._absolute(relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged.path, target)
            directories.add(target.parent)
            if before is not None and before != relative:
                self._absolute(before).unlink(missing_ok=True)
            stored.append(self._stored_from(staged.header, target, staged.size))
        if self.fsync:
            for directory in (*directories, self.incoming_dir):
                fsync_dir(directory)
        for item in stored:
            self.arrivals.record(item.study_uid)
        return stored

    def recover_incoming(self) -> int:
        """Index and place instances left in ``incoming/`` by a stop or crash; unreadable files
        go to ``rejected/``. The number of instances recovered."""
        batch: list[Staged] = []
        for path in sorted(self.incoming_dir.glob("*.dcm")):
            try:
                batch.append(Staged(path, read_header(path), path.stat().st_size))
            except InvalidInstance:
                rejected = self.root / _REJECTED
                rejected.mkdir(exist_ok=True)
                os.replace(path, rejected / path.name)
        for start in range(0, len(batch), 256):
            self.commit_staged(batch[start : start + 256])
        return len(batch)

    def _stored_from(self, header: InstanceHeader, target: Path, size: int) -> StoredInstance:
        return StoredInstance(
            sop_uid=header.sop_uid,
            sop_class_uid=header.sop_class_uid,
            transfer_syntax=header.transfer_syntax,
            study_uid=header.study_uid,
            series_uid=header.series_uid,
            path=target,
            size=size,
        )

    def _commit(self, tmp: Path, header: InstanceHeader, size: int) -> StoredInstance:
        relative = self.relative_path(header)
        target = self._absolute(relative)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
            if self.fsync:
                fsync_dir(target.parent)
            previous = self._index(header, relative, size)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if previous is not None and previous != relative:
            # The SOP Instance moved to another study: drop the stale copy.
            self._absolute(previous).unlink(missing_ok=True)
        self.arrivals.record(header.study_uid)
        return self._stored_from(header, target, size)

    def _prepare_upserts(self) -> None:
        """Build the four upserts once (executed with parameters: no per-instance compiling)."""
        ins = self._insert
        p = ins(t.patient)
        self._upsert_patient = p.on_conflict_do_update(
            index_elements=[t.patient.c.patient_id, t.patient.c.issuer],
            set_={"name": p.excluded.name, "birth_date": p.excluded.birth_date,
                  "sex": p.excluded.sex, "updated": p.excluded.updated},
        ).returning(t.patient.c.id)
        s = ins(t.study)
        self._upsert_study = s.on_conflict_do_update(
            index_elements=[t.study.c.study_uid],
            # The latest instance names the study's patient (a corrected Patient ID moves it).
            set_={"updated": s.excluded.updated, "patient_ref": s.excluded.patient_ref},
        ).returning(t.study.c.id)
        r = ins(t.series)
        self._upsert_series = r.on_conflict_do_update(
            index_elements=[t.series.c.series_uid],
            set_={"modality": r.excluded.modality, "study_ref": r.excluded.study_ref},
        ).returning(t.series.c.id)
        i = ins(t.instance)
        self._upsert_instance = i.on_conflict_do_update(
            index_elements=[t.instance.c.sop_uid],
            set_={name: i.excluded[name] for name in (
                "series_ref", "sop_class_uid", "transfer_syntax", "instance_number", "path", "size", "received")},
        )
        self._previous_path = select(t.instance.c.path).where(t.instance.c.sop_uid == bindparam("sop"))

    @staticmethod
    def _series_key(h: InstanceHeader) -> tuple[str, ...]:
        """What the patient, study and series rows are made of: equal keys, equal rows."""
        return (
            h.patient_id, h.issuer, h.patient_name, h.birth_date, h.sex, h.study_uid, h.accession,
            h.accession_issuer, h.study_id, h.study_date, h.study_time, h.study_description,
            h.referring_physician, h.procedure_code, h.procedure_scheme, h.procedure_meaning,
            h.series_uid, h.modality, str(h.series_number), h.series_description, h.body_part,
        )

    def _index(self, h: InstanceHeader, relative: str, size: int) -> str | None:
        """Index one instance in its own transaction; the instance's previous path."""
        return self._index_batch([(h, relative, size)])[0]

    def _index_batch(self, items: Sequence[tuple[InstanceHeader, str, int]]) -> list[str | None]:
        """Upsert the patient, study, series and instance rows of several instances in one
        transaction; the previous path of each instance (None when new).

        The series row of the previous instance is remembered: the next instance of the same
        series (with the same patient and study attributes) costs two statements, not five.
        """
        try:
            return self._index_rows(items, use_memory=True)
        except IntegrityError:
            # A remembered series row is gone (a study removed meanwhile): do it in full.
            self._forget_series()
            return self._index_rows(items, use_memory=False)

    def _forget_series(self) -> None:
        with self._series_lock:
            self._series_refs.clear()

    def _index_rows(self, items: Sequence[tuple[InstanceHeader, str, int]], *, use_memory: bool) -> list[str | None]:
        now = time.time()
        learned: dict[str, tuple[tuple[str, ...], int]] = {}
        previous: list[str | None] = []
        with self.engine.begin() as conn:
            for h, relative, size in items:
                key = self._series_key(h)
                known = learned.get(h.series_uid)
                if known is None and use_memory:
                    with self._series_lock:
                        known = self._series_refs.get(h.series_uid)
                series_ref = known[1] if known is not None and known[0] == key else None
                if series_ref is None:
                    series_ref = self._upsert_parents(conn, h, now)
                    learned[h.series_uid] = (key, series_ref)
                previous.append(conn.execute(self._previous_path, {"sop": h.sop_uid}).scalar_one_or_none())
                conn.execute(self._upsert_instance, {
                    "series_ref": series_ref, "sop_uid": h.sop_uid, "sop_class_uid": h.sop_class_uid,
                    "transfer_syntax": h.transfer_syntax, "instance_number": h.instance_number,
                    "path": relative, "size": size, "received": now,
                })
        with self._series_lock:
            if len(self._series_refs) + len(learned) > _SERIES_MEMORY:
                self._series_refs.clear()
            self._series_refs.update(learned)
        return previous

    def _upsert_parents(self, conn: Connection, h: InstanceHeader, now: float) -> int:
        """The patient, study and series rows of an instance; the series row id."""
        patient_ref = conn.execute(self._upsert_patient, {
            "patient_id": h.patient_id, "issuer": h.issuer, "name": h.patient_name,
            "birth_date": h.birth_date, "sex": h.sex, "updated": now,
        }).scalar_one()
        study_ref = conn.execute(self._upsert_study, {
            "patient_ref": patient_ref, "study_uid": h.study_uid, "accession": h.accession,
            "accession_issuer": h.accession_issuer, "study_id": h.study_id,
            "study_date": h.study_date, "study_time": h.study_time,
            "description": h.study_description, "referring_physician": h.referring_physician,
            "procedure_code": h.procedure_code, "procedure_scheme": h.procedure_scheme,
            "procedure_meaning": h.procedure_meaning, "created": now, "updated": now,
        }).scalar_one()
        return int(conn.execute(self._upsert_series, {
            "study_ref": study_ref, "series_uid": h.series_uid, "modality": h.modality,
            "series_number": h.series_number, "description": h.series_description,
            "body_part": h.body_part,
        }).scalar_one())

    # -- lookups ---------------------------------------------------------------------------------
    def _instance_query(self):  # type: ignore[no-untyped-def]
        return (
            select(
                t.instance.c.sop_uid,
                t.instance.c.sop_class_uid,
                t.instance.c.transfer_syntax,
                t.study.c.study_uid,
                t.series.c.series_uid,
                t.instance.c.path,
                t.instance.c.size,
            )
            .select_from(t.instance.join(t.series).join(t.study))
        )

    def _stored(self, row: Any) -> StoredInstance:
        return StoredInstance(
            sop_uid=row.sop_uid,
            sop_class_uid=row.sop_class_uid,
            transfer_syntax=row.transfer_syntax,
            study_uid=row.study_uid,
            series_uid=row.series_uid,
            path=self._absolute(row.path),
            size=row.size,
        )

    def instance(self, sop_uid: str) -> StoredInstance | None:
        """The stored instance ``sop_uid``, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(self._instance_query().where(t.instance.c.sop_uid == sop_uid)).first()
        return self._stored(row) if row is not None else None

    def instances(self, sop_uids: Iterable[str]) -> dict[str, StoredInstance]:
        """The stored instances among ``sop_uids``, by SOP Instance UID (one query per 900)."""
        wanted = list(dict.fromkeys(sop_uids))
        found: dict[str, StoredInstance] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start : start + _IN_CHUNK]
                for row in conn.execute(self._instance_query().where(t.instance.c.sop_uid.in_(chunk))):
                    found[row.sop_uid] = self._stored(row)
        return found

    def study_instances(self, study_uid: str) -> list[StoredInstance]:
        """Every stored instance of a study, by series then instance number."""
        query = (
            self._instance_query()
            .where(t.study.c.study_uid == study_uid)
            .order_by(t.series.c.series_number, t.series.c.series_uid, t.instance.c.instance_number, t.instance.c.sop_uid)
        )
        with self.engine.connect() as conn:
            return [self._stored(row) for row in conn.execute(query)]

    def count_instances(self, study_uid: str) -> int:
        query = (
            select(func.count())
            .select_from(t.instance.join(t.series).join(t.study))
            .where(t.study.c.study_uid == study_uid)
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    # -- studies and jackets ---------------------------------------------------------------------
    def _study_records(self, conn: Connection, where: Any) -> list[StudyRecord]:
        rows = conn.execute(
            select(t.study, t.patient.c.patient_id, t.patient.c.issuer, t.patient.c.name,
                   t.patient.c.birth_date, t.patient.c.sex)
            .select_from(t.study.join(t.patient))
            .where(where)
            .order_by(t.study.c.study_date.desc(), t.study.c.study_time.desc(), t.study.c.id.desc())
        ).all()
        if not rows:
            return []
        refs = [r.id for r in rows]
        stats: dict[int, tuple[int, int]] = {}
        modalities: dict[int, list[str]] = {}
        for start in range(0, len(refs), _IN_CHUNK):
            chunk = refs[start : start + _IN_CHUNK]
            for ref, series_count, instance_count in conn.execute(
                select(t.series.c.study_ref, func.count(func.distinct(t.series.c.id)), func.count(t.instance.c.id))
                .select_from(t.series.outerjoin(t.instance))
                .where(t.series.c.study_ref.in_(chunk))
                .group_by(t.series.c.study_ref)
            ):
                stats[ref] = (series_count, instance_count)
            for ref, modality in conn.execute(
                select(t.series.c.study_ref, t.series.c.modality)
                .where(t.series.c.study_ref.in_(chunk))
                .distinct()
                .order_by(t.series.c.study_ref, t.series.c.modality)
            ):
                if modality:
                    modalities.setdefault(ref, []).append(modality)
        out = []
        for r in rows:
            series_count, instance_count = stats.get(r.id, (0, 0))
            out.append(
                StudyRecord(
                    study_uid=r.study_uid,
                    patient=PatientRecord(r.patient_id, r.issuer, r.name, r.birth_date, r.sex),
                    accession=r.accession,
                    accession_issuer=r.accession_issuer,
                    study_id=r.study_id,
                    study_date=r.study_date,
                    study_time=r.study_time,
                    description=r.description,
                    referring_physician=r.referring_physician,
                    procedure_code=r.procedure_code,
                    procedure_scheme=r.procedure_scheme,
                    procedure_meaning=r.procedure_meaning,
                    modalities=tuple(modalities.get(r.id, ())),
                    series_count=series_count,
                    instance_count=instance_count,
                    updated=r.updated,
                )
            )
        return out

    def study(self, study_uid: str) -> StudyRecord | None:
        with self.engine.connect() as conn:
            found = self._study_records(conn, t.study.c.study_uid == study_uid)
        return found[0] if found else None

    def studies_by_accession(self, accession: str) -> list[StudyRecord]:
        with self.engine.connect() as conn:
            return self._study_records(conn, t.study.c.accession == accession)

    def jacket(self, patient_id: str, *, issuer: str | None = None) -> Jacket | None:
        """Every stored exam of a patient with its study data, newest first (None: unknown).

        ``issuer`` None matches the Patient ID under any issuer; the first patient row found
        names the jacket."""
        where = t.patient.c.patient_id == patient_id
        if issuer is not None:
            where = where & (t.patient.c.issuer == issuer)
        with self.engine.connect() as conn:
            studies = self._study_records(conn, where)
            if not studies:
                row = conn.execute(select(t.patient).where(where).order_by(t.patient.c.id)).first()
                if row is None:
                    return None
                return Jacket(PatientRecord(row.patient_id, row.issuer, row.name, row.birth_date, row.sex), ())
        return Jacket(studies[0].patient, tuple(studies))

    def contents(self, study_uid: str) -> StudyContents | None:
        """A study's data with every series and instance (the KOS builder's input)."""
        with self.engine.connect() as conn:
            found = self._study_records(conn, t.study.c.study_uid == study_uid)
            if not found:
                return None
            rows = conn.execute(
                select(t.series, t.instance.c.sop_uid, t.instance.c.sop_class_uid,
                       t.instance.c.instance_number, t.instance.c.path)
                .select_from(t.series.join(t.instance).join(t.study))
                .where(t.study.c.study_uid == study_uid)
                .order_by(t.series.c.series_number, t.series.c.series_uid,
                          t.instance.c.instance_number, t.instance.c.sop_uid)
            ).all()
        if not rows:
            return None
        series: dict[str, tuple[Any, list[InstanceRef]]] = {}
        for r in rows:
            entry = series.setdefault(r.series_uid, (r, []))
            entry[1].append(InstanceRef(r.sop_class_uid, r.sop_uid, r.instance_number))
        records = tuple(
            SeriesRecord(
                series_uid=uid,
                modality=row.modality,
                series_number=row.series_number,
                description=row.description,
                body_part=row.body_part,
                instances=tuple(refs),
            )
            for uid, (row, refs) in series.items()
        )
        return StudyContents(study=found[0], series=records, sample_path=self._absolute(rows[0].path))

    # -- removal ---------------------------------------------------------------------------------
    def delete_study(self, study_uid: str) -> int:
        """Remove a study's instances (files and rows); the number of instances removed."""
        with self.engine.begin() as conn:
            study_ref = conn.execute(select(t.study.c.id).where(t.study.c.study_uid == study_uid)).scalar_one_or_none()
            if study_ref is None:
                return 0
            series_refs = select(t.series.c.id).where(t.series.c.study_ref == study_ref)
            paths = conn.execute(select(t.instance.c.path).where(t.instance.c.series_ref.in_(series_refs))).scalars().all()
            conn.execute(delete(t.instance).where(t.instance.c.series_ref.in_(series_refs)))
            conn.execute(delete(t.series).where(t.series.c.study_ref == study_ref))
            conn.execute(delete(t.study).where(t.study.c.id == study_ref))
        self._forget_series()
        for relative in paths:
            self._absolute(relative).unlink(missing_ok=True)
        self.arrivals.forget(study_uid)
        return len(paths)

    def sweep_tmp(self, *, min_age: float = 3600.0) -> int:
        """Delete temporary and staging files older than ``min_age`` seconds (left by a crash)."""
        removed = 0
        cutoff = time.time() - min_age
        for entry in (*self.tmp_dir.iterdir(), *self.staging_dir.iterdir()):
            try:
                if entry.stat().st_mtime < cutoff:
                    entry.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

