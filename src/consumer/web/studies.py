"""The index of a fetched study: its series and, in display order, their frames.

Built once from the DICOM headers of the files :func:`consumer.fetch.fetch` wrote
(``<study>/<series>/<sop>.dcm``) and kept next to them as JSON. Slices are ordered by
Instance Number, then by position along the slice normal (PS3.3 §C.7.6.2.1.1), and each frame of
a multi-frame instance is a slice of its own.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

__all__ = ["FrameRef", "SeriesIndex", "StudyIndex", "is_uid", "load_index"]

INDEX_NAME: Final = ".portal-index.json"
_UID: Final = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def is_uid(text: str) -> bool:
    """A DICOM UID (PS3.5 §9.1): digits and dots, at most 64 characters."""
    return len(text) <= 64 and bool(_UID.match(text))


@dataclass(frozen=True, slots=True)
class FrameRef:
    path: str  # relative to the study directory
    frame: int


@dataclass(frozen=True, slots=True)
class SeriesIndex:
    uid: str
    number: str
    description: str
    modality: str
    body_part: str
    frames: tuple[FrameRef, ...]


@dataclass(frozen=True, slots=True)
class StudyIndex:
    series: tuple[SeriesIndex, ...]

    @property
    def body_parts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.body_part for s in self.series if s.body_part))

    @property
    def files(self) -> int:
        return len({f.path for s in self.series for f in s.frames})


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return str(value).strip() if value is not None else ""


def _position(ds: Dataset) -> float:
    """Distance along the slice normal (PS3.3 §C.7.6.2.1.1), 0 when unknown."""
    try:
        ipp = [float(v) for v in ds.ImagePositionPatient]
        iop = [float(v) for v in ds.ImageOrientationPatient]
    except (AttributeError, TypeError, ValueError):
        return 0.0
    if len(ipp) != 3 or len(iop) != 6:
        return 0.0
    normal = (
        iop[1] * iop[5] - iop[2] * iop[4],
        iop[2] * iop[3] - iop[0] * iop[5],
        iop[0] * iop[4] - iop[1] * iop[3],
    )
    return sum(p * n for p, n in zip(ipp, normal, strict=True))


def _number(ds: Dataset, keyword: str) -> int:
    try:
        return int(ds.get(keyword) or 0)
    except (TypeError, ValueError):
        return 0


def _build(study_dir: Path) -> StudyIndex:
    by_series: dict[str, dict[str, Any]] = {}
    for path in sorted(study_dir.glob("*/*.dcm")):
        try:
            ds = dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, EOFError):
            continue
        if not ds.get("Rows") or not ds.get("Columns"):
            continue  # not an image (a KOS, an SR ...)
        uid = _text(ds, "SeriesInstanceUID") or path.parent.name
        series = by_series.setdefault(
            uid,
            {
                "number": _text(ds, "SeriesNumber"),
                "description": _text(ds, "SeriesDescription"),
                "modality": _text(ds, "Modality"),
                "body_part": _text(ds, "BodyPartExamined"),
                "items": [],
            },
        )
        frames = max(1, _number(ds, "NumberOfFrames"))
        key = (_number(ds, "InstanceNumber"), _position(ds), path.name)
        series["items"].append((key, path.relative_to(study_dir).as_posix(), frames))
    result = []
    for uid, data in by_series.items():
        items = sorted(data.pop("items"))
        frames = tuple(FrameRef(rel, f) for _key, rel, count in items for f in range(count))
        result.append(SeriesIndex(uid=uid, frames=frames, **data))

    def order(s: SeriesIndex) -> tuple[int, str]:
        return (int(s.number) if s.number.isdigit() else 1 << 30, s.uid)

    return StudyIndex(tuple(sorted(result, key=order)))


def _from_json(data: Any) -> StudyIndex:
    return StudyIndex(
        tuple(
            SeriesIndex(**{**s, "frames": tuple(FrameRef(f["path"], int(f["frame"])) for f in s["frames"])})
            for s in data["series"]
        )
    )


def load_index(study_dir: Path, *, rebuild: bool = False) -> StudyIndex:
    """The study's index, built from the headers the first time (or with ``rebuild``)."""
    stored = study_dir / INDEX_NAME
    if stored.is_file() and not rebuild:
        try:
            return _from_json(json.loads(stored.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError):
            pass
    index = _build(study_dir)
    temp = stored.with_suffix(".tmp")
    temp.write_text(json.dumps(asdict(index)), encoding="utf-8")
    temp.replace(stored)
    return index
