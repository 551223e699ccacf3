"""Server-side image previews: one DICOM frame -> a PNG of bounded size, windowed for display.

The pipeline of DICOM PS3.4 Annex N / PS3.3 §C.11 in its simplest form:

1. stored values -> modality values with Rescale Slope and Intercept (PS3.3 §C.11.1.1.2, e.g.
   Hounsfield units for CT);
2. a linear VOI window (PS3.3 §C.11.2.1.2.1) of a preset (soft tissue, lung, bone, brain, for
   CT), the file's own Window Center / Width ("default"), or the frame's range ("full");
3. MONOCHROME1 is inverted after windowing (PS3.3 §C.7.6.3.1.2: minimum is white);
4. colour images (RGB, YBR converted to RGB by the decoder) are shown as they are.

Sizes are bounded twice: a frame larger than :data:`MAX_PIXELS` is not decoded at all, and the
PNG is scaled down to the requested box (aspect ratio kept).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut, pixel_array

__all__ = [
    "DEFAULT_WINDOW",
    "FRAME_SIZE",
    "MAX_PIXELS",
    "PRESETS",
    "THUMBNAIL_SIZE",
    "PreviewError",
    "Window",
    "apply_window",
    "frame_png",
    "presets_for",
    "render_frame",
]

#: A frame of more pixels than this (per sample) is refused rather than decoded.
MAX_PIXELS: Final = 4096 * 4096
THUMBNAIL_SIZE: Final = 160
FRAME_SIZE: Final = 768
DEFAULT_WINDOW: Final = "default"
FULL_RANGE: Final = "full"


@dataclass(frozen=True, slots=True)
class Window:
    """A VOI window in modality units (PS3.3 §C.11.2.1.2): centre and width."""

    center: float
    width: float


#: Common CT presets in Hounsfield units (centre, width).
PRESETS: Final[dict[str, Window]] = {
    "soft": Window(40, 400),
    "lung": Window(-600, 1500),
    "bone": Window(400, 1800),
    "brain": Window(40, 80),
}


class PreviewError(Exception):
    """The file cannot be previewed (not an image, too large, undecodable)."""


def presets_for(modality: str) -> tuple[str, ...]:
    """The window choices that make sense for a modality: HU presets only for CT."""
    if modality.upper() == "CT":
        return (DEFAULT_WINDOW, *PRESETS, FULL_RANGE)
    return (DEFAULT_WINDOW, FULL_RANGE)


def _first_number(value: object) -> float | None:
    """The first value of a DS that may be multi-valued (PS3.3 §C.11.2.1.2: the first is the
    default)."""
    if isinstance(value, (MultiValue, list, tuple)):
        value = value[0] if len(value) else None
    if value is None or value == "":
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def file_window(ds: Dataset) -> Window | None:
    center = _first_number(ds.get("WindowCenter"))
    width = _first_number(ds.get("WindowWidth"))
    if center is None or width is None or width < 1:
        return None
    return Window(center, width)


def apply_window(values: np.ndarray, window: Window) -> np.ndarray:
    """PS3.3 §C.11.2.1.2.1, the linear function, to 8 bits."""
    c, w = window.center, max(window.width, 1.0)
    low = c - 0.5 - (w - 1) / 2
    scaled = ((values - (c - 0.5)) / (w - 1 if w > 1 else 1) + 0.5) * 255.0
    out = np.clip(scaled, 0, 255)
    out = np.where(values <= low, 0, out)
    return out.astype(np.uint8)


def _range_window(values: np.ndarray) -> Window:
    lo, hi = float(np.min(values)), float(np.max(values))
    return Window((lo + hi) / 2, max(hi - lo, 1.0))


def _check_size(ds: Dataset) -> int:
    rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if rows < 1 or columns < 1:
        raise PreviewError("this object has no image")
    if rows * columns > MAX_PIXELS:
        raise PreviewError(f"the image is too large to preview ({columns} x {rows})")
    return int(ds.get("NumberOfFrames", 1) or 1)


def render_frame(path: Path, *, frame: int = 0, window: str = DEFAULT_WINDOW) -> Image.Image:
    """One frame of ``path`` as an 8-bit greyscale or RGB Pillow image, windowed."""
    try:
        header = dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise PreviewError(f"not a readable DICOM file: {exc}") from None
    frames = _check_size(header)
    if not 0 <= frame < frames:
        raise PreviewError(f"frame {frame} is out of range (the image has {frames})")
    try:
        pixels = pixel_array(str(path), index=frame if frames > 1 else None)
    except Exception as exc:  # pydicom raises many kinds for unsupported encodings
        raise PreviewError(f"the pixel data cannot be decoded: {type(exc).__name__}") from None
    samples = int(header.get("SamplesPerPixel", 1) or 1)
    if samples == 3:
        return _colour(pixels, header)
    values = np.asarray(apply_modality_lut(pixels, header), dtype=np.float32)
    if values.ndim != 2:
        raise PreviewError("unexpected pixel array shape")
    chosen = PRESETS.get(window)
    if chosen is None and window != FULL_RANGE:
        chosen = file_window(header)
    grey = apply_window(values, chosen or _range_window(values))
    if str(header.get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1":
        grey = 255 - grey
    return Image.fromarray(grey, mode="L")


def _colour(pixels: np.ndarray, header: Dataset) -> Image.Image:
    if pixels.ndim != 3 or pixels.shape[-1] != 3:
        raise PreviewError("unexpected colour pixel array shape")
    bits = int(header.get("BitsStored", 8) or 8)
    if bits > 8:
        pixels = (pixels.astype(np.float32) * (255.0 / ((1 << bits) - 1))).clip(0, 255)
    return Image.fromarray(pixels.astype(np.uint8), mode="RGB")


def frame_png(path: Path, *, frame: int = 0, window: str = DEFAULT_WINDOW, box: int = FRAME_SIZE) -> bytes:
    """The PNG of one frame, scaled down to fit ``box`` x ``box`` pixels."""
    image = render_frame(path, frame=frame, window=window)
    image.thumbnail((box, box), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def open_png(data: bytes) -> Image.Image:
    """Decode a PNG (for callers checking what was rendered)."""
    return Image.open(io.BytesIO(data))
