"""One exam: its series as thumbnails, a stack viewer (slice slider and window presets; works
without JavaScript as a form, the script only swaps the image as the slider moves), its reports,
and "download this exam" as a zip of the DICOM files, streamed."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from consumer.web.preview import DEFAULT_WINDOW, presets_for
from consumer.web.records import StudyUnavailable, document_file, ensure_study, study_dir
from consumer.web.state import Portal, SignedIn
from consumer.web.studies import StudyIndex, is_uid
from consumer.web.views.common import blocking, error_page, guarded
from consumer.web.zipstream import stream_zip

__all__ = ["routes"]

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _members(directory: Path, index: StudyIndex) -> list[tuple[str, Path]]:
    """(name in the zip, file) of every image file of the study, series by series."""
    members: list[tuple[str, Path]] = []
    seen: set[str] = set()
    for number, series in enumerate(index.series, start=1):
        label = _SAFE.sub("-", f"{series.number or number}-{series.modality}-{series.description}").strip("-")[:60]
        for frame in series.frames:
            if frame.path in seen:
                continue
            seen.add(frame.path)
            members.append((f"series-{label}/{Path(frame.path).name}", directory / frame.path))
    return members


def routes(portal: Portal) -> list[BaseRoute]:
    async def study(request: Request, who: SignedIn) -> tuple[str, StudyIndex] | Response:
        study_uid = request.path_params["study_uid"]
        if not is_uid(study_uid) or not portal.in_scope(who, study_uid):
            return error_page(portal, request, "error_not_found", status=404, who=who)
        try:
            return study_uid, await blocking(ensure_study, portal, who, study_uid)
        except StudyUnavailable:
            return error_page(portal, request, "error_images_unavailable", status=502, who=who)

    async def exam(request: Request, who: SignedIn) -> Response:
        found = await study(request, who)
        if isinstance(found, Response):
            return found
        study_uid, index = found
        series_no = min(max(_int(request.query_params.get("series"), 0), 0), len(index.series) - 1)
        series = index.series[series_no]
        count = len(series.frames)
        slice_no = min(max(_int(request.query_params.get("slice"), count // 2), 0), count - 1)
        windows = presets_for(series.modality)
        window = request.query_params.get("window", DEFAULT_WINDOW)
        if window not in windows:
            window = DEFAULT_WINDOW
        return portal.render(
            request,
            "exam.html",
            signed_in=who,
            csrf=who.csrf,
            study_uid=study_uid,
            index=index,
            series=series,
            series_no=series_no,
            slice_no=slice_no,
            count=count,
            windows=windows,
            window=window,
        )

    async def download(request: Request, who: SignedIn) -> Response:
        found = await study(request, who)
        if isinstance(found, Response):
            return found
        study_uid, index = found
        members = _members(study_dir(portal, who, study_uid), index)
        name = f"exam-{study_uid[-16:]}.zip"
        return StreamingResponse(
            stream_zip(members),
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def report(request: Request, who: SignedIn) -> Response:
        found = document_file(portal, who, request.path_params["unique_id"])
        if found is None:
            return error_page(portal, request, "error_not_found", status=404, who=who)
        path, mime = found
        if mime == "application/pdf":
            return FileResponse(path, media_type=mime, filename="report.pdf", content_disposition_type="attachment")
        return FileResponse(path, media_type="text/plain; charset=utf-8")

    return [
        Route("/exam/{study_uid}", guarded(portal, exam), methods=["GET"], name="exam"),
        Route("/exam/{study_uid}/download.zip", guarded(portal, download), methods=["GET"], name="download"),
        Route("/report/{unique_id}", guarded(portal, report), methods=["GET"], name="report"),
    ]
