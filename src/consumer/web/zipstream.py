"""A zip archive written as it is sent: each member is read from disk in chunks and the archive
bytes are yielded as they are produced, so a study of any size never sits in memory whole.

:mod:`zipfile` writes to a stream that cannot seek by putting sizes and CRC in a data descriptor
after each member (APPNOTE 4.3.9); ZIP64 is forced per member so sizes past 4 GiB are fine.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

__all__ = ["stream_zip"]

CHUNK: Final = 1 << 20


class _Sink:
    """A write-only, non-seekable file object collecting what zipfile writes."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.offset = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        return None

    def drain(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def stream_zip(members: Iterable[tuple[str, Path]], *, compress: bool = True) -> Iterator[bytes]:
    """Yield a zip of ``(name in archive, file)`` pairs, chunk by chunk."""
    sink = _Sink()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(sink, mode="w", compression=method, compresslevel=1 if compress else None) as archive:  # type: ignore[arg-type]
        for name, path in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            with open(path, "rb") as source, archive.open(info, mode="w", force_zip64=True) as target:
                while chunk := source.read(CHUNK):
                    target.write(chunk)
                    data = sink.drain()
                    if data:
                        yield data
            data = sink.drain()
            if data:
                yield data
    data = sink.drain()
    if data:
        yield data
