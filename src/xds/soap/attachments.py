"""Attachments: binary MIME parts spooled to disk with their SHA-1, SHA-256 and size.

An MTOM message may carry gigabytes (a DICOM study), so no part is ever held whole in memory:
an :class:`AttachmentSink` receives the decoded bytes chunk by chunk, hashes them on the fly and
writes them to a real temporary file under a configurable directory (so the repository can
``rename`` it into its store without copying). Parts below a threshold (64 KiB by default) stay
in memory; the :class:`Attachment` they produce has the same API.

ITI TF-3 §4.2.3.2.12 (hash) and §4.2.3.2.19 (size) are computed over exactly the bytes on the
wire after transfer decoding, which is what the sink sees.

Ownership: a :class:`Spool` creates the sinks of one message and, at :meth:`Spool.cleanup`,
deletes every spool file nobody claimed. A handler that keeps a file claims it with
:meth:`Attachment.move_to` (rename into place, fsynced) or :meth:`Attachment.detach`.

Public API::

    CHUNK_SIZE = 1 MiB
    Attachment                       # content_id, content_type, path, size, sha1_hex, sha256_hex,
                                     # in_memory, open(), iter_chunks(), read_bytes(),
                                     # move_to(dest, *, fsync=True, flushed=False), detach(),
                                     # delete()
    Attachment.from_bytes(data, *, content_id, content_type)
    Attachment.from_file(path, *, content_id, content_type)     # hashes an existing file
    AttachmentSink (Protocol)        # write(bytes), close() -> Attachment, abort()
    SinkFactory = Callable[[str, str], AttachmentSink]          # (content_id, content_type)
    SpoolSink(directory, *, content_id, content_type, memory_threshold=64 KiB, on_close=None,
              background_write_above=4 MiB, write_behind=False)
    Spool(directory=None, *, memory_threshold=64 KiB, write_behind=False)
                                     # .sink, .store_bytes, .cleanup, .has_files

``write_behind`` is for spools whose files will be fsynced (the repository's): the written
bytes are handed to the disk while the rest still arrives (:class:`xds.durable.WriteBehind`),
so the fsync that makes the document durable has little left to do.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Final, Protocol

from xds.durable import WriteBehind, fsync_dir

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_MEMORY_THRESHOLD",
    "Attachment",
    "AttachmentSink",
    "SinkFactory",
    "Spool",
    "SpoolSink",
]

#: Read and write granularity: 1 MiB moves 2 GB/s through Starlette where 64 KiB moves 0.4 GB/s
#: (shared/reference/performance-anchors.md §1.2).
CHUNK_SIZE: Final = 1 << 20
#: Parts up to this size stay in memory.
DEFAULT_MEMORY_THRESHOLD: Final = 64 << 10

#: Once a part has grown past this size, its file writes move to a writer thread so that
#: hashing (in the caller's thread) and writing overlap; both release the GIL.
BACKGROUND_WRITE_ABOVE: Final = 4 << 20
_WRITE_QUEUE_DEPTH: Final = 8

_SPOOL_PREFIX: Final = "xds-part-"
_SPOOL_SUFFIX: Final = ".tmp"


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class Attachment:
    """One binary part (an MTOM attachment or decoded inline base64), with its digests.

    File-backed attachments live in a spool file that is deleted when the message's
    :class:`Spool` is cleaned up, unless the attachment was moved or detached first. Small ones
    are held in memory; :attr:`path` is then None and :meth:`move_to` / :meth:`detach` write
    a file.
    """

    __slots__ = (
        "_content_id",
        "_content_type",
        "_size",
        "_sha1",
        "_sha256",
        "_path",
        "_data",
        "_spool_dir",
        "_owned",
        "_deleted",
    )

    def __init__(
        self,
        *,
        content_id: str,
        content_type: str,
        size: int,
        sha1_hex: str,
        sha256_hex: str,
        path: Path | None = None,
        data: bytes | None = None,
        spool_dir: Path | None = None,
        owned: bool = True,
    ) -> None:
        if (path is None) == (data is None):
            raise ValueError("an Attachment has either a path or in-memory data")
        self._content_id = content_id
        self._content_type = content_type
        self._size = size
        self._sha1 = sha1_hex
        self._sha256 = sha256_hex
        self._path = path
        self._data = data
        self._spool_dir = spool_dir
        # owned: the spool file is ours to delete (False once moved/detached, or for a file
        # that was never a spool file).
        self._owned = owned
        self._deleted = False

    # -- constructors --------------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes, *, content_id: str, content_type: str) -> Attachment:
        """An in-memory attachment over ``data``."""
        data = bytes(data)
        return cls(
            content_id=content_id,
            content_type=content_type,
            size=len(data),
            sha1_hex=hashlib.sha1(data).hexdigest(),
            sha256_hex=hashlib.sha256(data).hexdigest(),
            data=data,
        )

    @classmethod
    def from_file(cls, path: os.PathLike[str] | str, *, content_id: str, content_type: str) -> Attachment:
        """An attachment over an existing file (hashed now; never deleted by cleanup)."""
        p = Path(path)
        sha1, sha256, size = hashlib.sha1(), hashlib.sha256(), 0
        with open(p, "rb", buffering=0) as f:
            while chunk := f.read(CHUNK_SIZE):
                sha1.update(chunk)
                sha256.update(chunk)
                size += len(chunk)
        return cls(
            content_id=content_id,
            content_type=content_type,
            size=size,
            sha1_hex=sha1.hexdigest(),
            sha256_hex=sha256.hexdigest(),
            path=p,
            owned=False,
        )

    # -- properties ----------------------------------------------------------------------------
    @property
    def content_id(self) -> str:
        """The part's Content-ID without angle brackets and percent-decoded ("" for inline)."""
        return self._content_id

    @property
    def content_type(self) -> str:
        return self._content_type

    @property
    def size(self) -> int:
        return self._size

    @property
    def sha1_hex(self) -> str:
        """Lower-case hex SHA-1 of the content (the XDS ``hash`` slot)."""
        return self._sha1

    @property
    def sha256_hex(self) -> str:
        return self._sha256

    @property
    def path(self) -> Path | None:
        """The file holding the content, or None while it is held in memory."""
        return self._path

    @property
    def in_memory(self) -> bool:
        return self._data is not None

    def __repr__(self) -> str:
        where = "memory" if self._data is not None else str(self._path)
        return f"Attachment({self._content_id!r}, {self._content_type!r}, size={self._size}, {where})"

    # -- reading -------------------------------------------------------------------------------
    def _check(self) -> None:
        if self._deleted:
            raise ValueError(f"attachment {self._content_id!r} was deleted")

    def open(self) -> BinaryIO:
        """A binary file object positioned at the start of the content."""
        self._check()
        if self._data is not None:
            return io.BytesIO(self._data)
        assert self._path is not None
        return open(self._path, "rb")

    def iter_chunks(self, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The content in chunks of ``chunk_size`` bytes (1 MiB by default)."""
        self._check()
        if self._data is not None:
            data = self._data
            if len(data) <= chunk_size:
                if data:
                    yield data
                return
            for offset in range(0, len(data), chunk_size):
                yield data[offset : offset + chunk_size]
            return
        assert self._path is not None
        with open(self._path, "rb", buffering=0) as f:
            while chunk := f.read(chunk_size):
                yield chunk

    def read_bytes(self, *, max_bytes: int | None = None) -> bytes:
        """The whole content; refuses (ValueError) when it is larger than ``max_bytes``."""
        self._check()
        if max_bytes is not None and self._size > max_bytes:
            raise ValueError(f"attachment {self._content_id!r} is {self._size} bytes, over {max_bytes}")
        if self._data is not None:
            return self._data
        assert self._path is not None
        return self._path.read_bytes()

    # -- ownership -----------------------------------------------------------------------------
    def move_to(self, dest: os.PathLike[str] | str, *, fsync: bool = True, flushed: bool = False) -> Path:
        """Move the content to ``dest`` (atomic rename when on the same filesystem) and own it.

        With ``fsync`` the data and the directory entry are flushed first, so a crash never
        leaves a half-written file under the final name. ``flushed=True`` says the caller has
        fsynced this very file already (the data flush is then skipped; a copy across
        filesystems is still flushed). Afterwards :attr:`path` is ``dest`` and cleanup no longer
        touches the file.
        """
        self._check()
        target = Path(dest)
        if self._data is not None:
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                _write_all(fd, self._data)
                if fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
        else:
            assert self._path is not None
            if fsync and not flushed:
                fd = os.open(self._path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            try:
                os.replace(self._path, target)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                # Another filesystem: copy under a temporary name, then rename.
                tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
                with open(self._path, "rb") as src, open(tmp, "wb") as out:
                    shutil.copyfileobj(src, out, CHUNK_SIZE)
                    out.flush()
                    if fsync:
                        os.fsync(out.fileno())
                os.replace(tmp, target)
                # Like a rename, the move leaves nothing at the old place.
                self._path.unlink(missing_ok=True)
        if fsync:
            fsync_dir(target.parent, ignore_errors=True)
        self._path = target
        self._data = None
        self._owned = False
        return target

    def detach(self) -> Path:
        """Take ownership of the file where it is; returns its path.

        An in-memory attachment is first written to a new file in the spool directory.
        """
        self._check()
        if self._data is not None:
            directory = self._spool_dir or Path(tempfile.gettempdir())
            fd, name = tempfile.mkstemp(prefix=_SPOOL_PREFIX, suffix=_SPOOL_SUFFIX, dir=directory)
            try:
                _write_all(fd, self._data)
            finally:
                os.close(fd)
            self._path = Path(name)
            self._data = None
        self._owned = False
        assert self._path is not None
        return self._path

    def delete(self) -> None:
        """Delete the spool file (no-op once moved or detached); the attachment becomes unusable."""
        if self._deleted:
            return
        if self._owned and self._path is not None:
            self._path.unlink(missing_ok=True)
        if self._owned or self._data is not None:
            self._deleted = True
            self._data = None


class AttachmentSink(Protocol):
    """Receives one part's decoded bytes in order; ``close`` yields the Attachment."""

    def write(self, data: bytes) -> None: ...

    def close(self) -> Attachment: ...

    def abort(self) -> None: ...


#: Creates a sink for a part: ``factory(content_id, content_type)``.
SinkFactory = Callable[[str, str], AttachmentSink]


class _Writer:
    """A thread that writes queued chunks to a file descriptor, in order."""

    def __init__(self, fd: int, *, write_behind: WriteBehind | None = None) -> None:
        self._fd = fd
        self._write_behind = write_behind
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=_WRITE_QUEUE_DEPTH)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="xds-spool-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self.error is None:
                try:
                    _write_all(self._fd, chunk)
                    if self._write_behind is not None:
                        self._write_behind.wrote(len(chunk))
                except BaseException as exc:  # reported to the producer on its next call
                    self.error = exc

    def put(self, chunk: bytes) -> None:
        if self.error is not None:
            raise self.error
        self._queue.put(chunk)

    def finish(self) -> None:
        """Wait until every queued chunk is written; re-raise a write error."""
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error


class SpoolSink:
    """Hashes (SHA-1, SHA-256) and counts bytes; memory up to a threshold, then a temp file.

    Past :data:`BACKGROUND_WRITE_ABOVE` bytes the file writes run in a writer thread while the
    caller keeps hashing, so a large part moves at the speed of the slower of the two.
    """

    __slots__ = (
        "_directory",
        "_content_id",
        "_content_type",
        "_threshold",
        "_buffer",
        "_fd",
        "_path",
        "_sha1",
        "_sha256",
        "_size",
        "_closed",
        "_on_close",
        "_writer",
        "_background_above",
        "_write_behind",
        "_behind",
    )

    def __init__(
        self,
        directory: Path,
        *,
        content_id: str,
        content_type: str,
        memory_threshold: int = DEFAULT_MEMORY_THRESHOLD,
        on_close: Callable[[Attachment], None] | None = None,
        background_write_above: int | None = BACKGROUND_WRITE_ABOVE,
        write_behind: bool = False,
    ) -> None:
        self._directory = directory
        self._content_id = content_id
        self._content_type = content_type
        self._threshold = memory_threshold
        self._buffer: bytearray | None = bytearray()
        self._fd: int | None = None
        self._path: Path | None = None
        self._sha1 = hashlib.sha1()
        self._sha256 = hashlib.sha256()
        self._size = 0
        self._closed = False
        self._on_close = on_close
        self._writer: _Writer | None = None
        self._background_above = background_write_above
        self._write_behind = write_behind
        self._behind: WriteBehind | None = None

    def _spill(self) -> None:
        fd, name = tempfile.mkstemp(prefix=_SPOOL_PREFIX, suffix=_SPOOL_SUFFIX, dir=self._directory)
        self._fd = fd
        self._path = Path(name)
        if self._write_behind:
            self._behind = WriteBehind(fd)
        if self._buffer:
            self._write_file(self._buffer)
        self._buffer = None

    def _write_file(self, data: bytes | bytearray | memoryview) -> None:
        assert self._fd is not None
        _write_all(self._fd, data)
        if self._behind is not None:
            self._behind.wrote(len(data))

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed:
            raise ValueError("write to a closed sink")
        if not data:
            return
        self._sha1.update(data)
        self._sha256.update(data)
        self._size += len(data)
        if self._buffer is not None:
            if len(self._buffer) + len(data) <= self._threshold:
                self._buffer += data
                return
            self._spill()
        assert self._fd is not None
        if (
            self._writer is None
            and self._background_above is not None
            and self._size > self._background_above
        ):
            self._writer = _Writer(self._fd, write_behind=self._behind)
        if self._writer is not None:
            # The writer thread keeps a reference: hand it an immutable copy only when needed.
            self._writer.put(data if type(data) is bytes else bytes(data))
        else:
            self._write_file(data)

    @property
    def in_memory(self) -> bool:
        """True while nothing has been written to a file."""
        return self._path is None

    def _stop_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.finish()

    def close(self) -> Attachment:
        if self._closed:
            raise ValueError("sink already closed")
        try:
            self._stop_writer()
        except BaseException:
            self.abort()
            raise
        self._closed = True
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        attachment = Attachment(
            content_id=self._content_id,
            content_type=self._content_type,
            size=self._size,
            sha1_hex=self._sha1.hexdigest(),
            sha256_hex=self._sha256.hexdigest(),
            path=self._path,
            data=bytes(self._buffer) if self._buffer is not None else None,
            spool_dir=self._directory,
        )
        self._buffer = None
        if self._on_close is not None:
            self._on_close(attachment)
        return attachment

    def abort(self) -> None:
        """Discard what was written (the temp file is deleted)."""
        if self._closed:
            return
        self._closed = True
        self._buffer = None
        try:
            self._stop_writer()
        except BaseException:
            pass  # the data is being discarded anyway
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._path is not None:
            self._path.unlink(missing_ok=True)


class Spool:
    """The sinks and attachments of one message, and their cleanup.

    ``Spool(directory).sink`` is a :data:`SinkFactory`. :meth:`cleanup` aborts sinks still open
    and deletes every attachment file that was not moved or detached. Use one spool per message
    (per HTTP request or reply).
    """

    def __init__(
        self,
        directory: os.PathLike[str] | str | None = None,
        *,
        memory_threshold: int = DEFAULT_MEMORY_THRESHOLD,
        write_behind: bool = False,
    ) -> None:
        self.directory = Path(directory) if directory is not None else Path(tempfile.gettempdir())
        self.memory_threshold = memory_threshold
        self.write_behind = write_behind
        self._sinks: list[SpoolSink] = []
        self._attachments: list[Attachment] = []

    def sink(self, content_id: str, content_type: str) -> SpoolSink:
        """A new sink whose attachment this spool will clean up."""
        if not self._sinks:
            # Made on first use: most SOAP messages have no attachment, and a spool is made for
            # every request and reply.
            self.directory.mkdir(parents=True, exist_ok=True)
        sink = SpoolSink(
            self.directory,
            content_id=content_id,
            content_type=content_type,
            memory_threshold=self.memory_threshold,
            on_close=self._attachments.append,
            write_behind=self.write_behind,
        )
        self._sinks.append(sink)
        return sink

    def store_bytes(self, data: bytes, *, content_id: str, content_type: str) -> Attachment:
        """An attachment over ``data`` (spooled to a file when over the memory threshold)."""
        sink = self.sink(content_id, content_type)
        view = memoryview(data)
        for offset in range(0, len(view), CHUNK_SIZE):
            sink.write(view[offset : offset + CHUNK_SIZE])
        return sink.close()

    @property
    def has_files(self) -> bool:
        """True if cleanup may have files to delete (worth doing off the event loop): a file of
        an open sink, or of an attachment that was neither moved nor detached."""
        return any(a._owned and a._path is not None for a in self._attachments) or any(
            not sink._closed and not sink.in_memory for sink in self._sinks
        )

    def cleanup(self) -> None:
        """Abort open sinks; delete every unclaimed spool file."""
        for sink in self._sinks:
            sink.abort()
        for attachment in self._attachments:
            attachment.delete()
        self._sinks.clear()
        self._attachments.clear()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
