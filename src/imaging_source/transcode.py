"""Transfer syntax selection and transcoding for RAD-69 (RAD TF-3 §4.69.4.2.3; xds-notes §7.5).

The consumer lists the transfer syntaxes it accepts; each instance is returned in one of them:

1. as stored, byte for byte, when its stored syntax is listed;
2. otherwise in the first listed native little-endian syntax (Explicit VR Little Endian
   1.2.840.10008.1.2.1 or Implicit VR Little Endian 1.2.840.10008.1.2), which every uncompressed
   instance can be rewritten in (PS3.5 §10.1 / §A.1 / §A.2), and a compressed one too when a
   pydicom pixel-data decoder for its syntax is installed (JPEG baseline, JPEG-LS, JPEG 2000:
   Pillow / pylibjpeg / pyjpegls; RLE: pydicom itself, with numpy);
3. otherwise not at all: the caller answers XDSRepositoryError "cannot encode" (RAD69-005).

Decompression keeps the SOP Instance UID (RAD-69 returns the document that was asked for) and,
for a lossy source, the Lossy Image Compression (0028,2110) "01" flag pydicom preserves.

Public API::

    NATIVE: tuple[str, ...]
    Transcoder(*, decompress=True, can_decode=None)
        .choose(stored_ts, requested) -> str | None
        .chunks(path, target_ts, *, chunk_size=1 MiB) -> Iterator[bytes]    # lazy
        .encode(path, target_ts) -> bytes
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Final

from pydicom import dcmread
from pydicom.pixels import get_decoder
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

__all__ = ["NATIVE", "Transcoder", "decoder_available"]

#: The syntaxes any instance is transcoded to (NIST requests Explicit VR LE; xds-notes §7.5).
NATIVE: Final = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
CHUNK: Final = 1 << 20


def decoder_available(transfer_syntax: str) -> bool:
    """Whether pydicom has a usable pixel-data decoder for ``transfer_syntax`` (needs numpy)."""
    try:
        return bool(get_decoder(UID(transfer_syntax)).is_available)
    except (NotImplementedError, ValueError, ImportError):
        return False


class Transcoder:
    """Chooses the returned transfer syntax and rewrites instances into it.

    ``decompress`` False (or a ``can_decode`` that says no) refuses every compressed source.
    """

    def __init__(self, *, decompress: bool = True, can_decode: Callable[[str], bool] | None = None) -> None:
        self.decompress = decompress
        self.can_decode = can_decode or decoder_available

    def _convertible(self, stored_ts: str) -> bool:
        uid = UID(stored_ts)
        if not uid.is_transfer_syntax:
            return False
        if not uid.is_compressed:
            return True  # native or deflated: a re-encoding, no pixel decoding
        return self.decompress and self.can_decode(stored_ts)

    def choose(self, stored_ts: str, requested: Sequence[str]) -> str | None:
        """The syntax to return an instance stored in ``stored_ts`` in, or None (RAD69-005)."""
        wanted = [ts for ts in requested if ts]
        if stored_ts in wanted:
            return stored_ts
        native = [ts for ts in wanted if ts in NATIVE]
        if native and self._convertible(stored_ts):
            return native[0]
        return None

    def encode(self, path: Path, target_ts: str) -> bytes:
        """The instance at ``path`` as Part 10 bytes in ``target_ts`` (one of :data:`NATIVE`)."""
        if target_ts not in NATIVE:
            raise ValueError(f"cannot encode into {target_ts}")
        ds = dcmread(path)
        source = UID(ds.file_meta.TransferSyntaxUID)
        if source.is_compressed:
            # PS3.5 §8.2: decode the encapsulated frames into native Pixel Data (Explicit VR LE).
            ds.decompress(generate_instance_uid=False)
        ds.file_meta.TransferSyntaxUID = UID(target_ts)
        buffer = io.BytesIO()
        ds.save_as(
            buffer,
            implicit_vr=target_ts == ImplicitVRLittleEndian,
            little_endian=True,
            enforce_file_format=True,
        )
        return buffer.getvalue()

    def chunks(self, path: Path, target_ts: str, *, chunk_size: int = CHUNK) -> Iterator[bytes]:
        """Lazily: nothing is read until the first chunk is asked for (a streamed response
        transcodes one instance at a time, as it is sent)."""
        data = self.encode(path, target_ts)
        view = memoryview(data)
        for start in range(0, len(view), chunk_size):
            yield bytes(view[start : start + chunk_size])
