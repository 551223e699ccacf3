"""The images of the viewer: a thumbnail per series and any slice of a series in a window
preset, rendered from the cached DICOM (only for a study the session has already opened)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from consumer.web.preview import DEFAULT_WINDOW, FRAME_SIZE, THUMBNAIL_SIZE, PreviewError, frame_png, presets_for
from consumer.web.records import study_dir
from consumer.web.state import Portal, SignedIn
from consumer.web.studies import INDEX_NAME, is_uid, load_index
from consumer.web.views.common import blocking, guarded

__all__ = ["routes"]


def routes(portal: Portal) -> list[BaseRoute]:
    async def render(request: Request, who: SignedIn, *, thumbnail: bool) -> Response:
        study_uid = request.path_params["study_uid"]
        if not is_uid(study_uid) or not portal.in_scope(who, study_uid):
            return Response(status_code=404)
        directory = study_dir(portal, who, study_uid)
        if not (directory / INDEX_NAME).is_file():
            return Response(status_code=404)
        index = await blocking(load_index, directory)
        number = request.path_params["series"]
        if not 0 <= number < len(index.series):
            return Response(status_code=404)
        series = index.series[number]
        position = len(series.frames) // 2 if thumbnail else request.path_params["slice"]
        if not 0 <= position < len(series.frames):
            return Response(status_code=404)
        window = request.query_params.get("window", DEFAULT_WINDOW)
        if window not in presets_for(series.modality):
            window = DEFAULT_WINDOW
        ref = series.frames[position]
        try:
            png = await blocking(
                frame_png, directory / ref.path, frame=ref.frame, window=window, box=THUMBNAIL_SIZE if thumbnail else FRAME_SIZE
            )
        except PreviewError:
            return Response(status_code=415)
        return Response(png, media_type="image/png")

    async def thumbnail(request: Request, who: SignedIn) -> Response:
        return await render(request, who, thumbnail=True)

    async def frame(request: Request, who: SignedIn) -> Response:
        return await render(request, who, thumbnail=False)

    base = "/exam/{study_uid}/series/{series:int}"
    return [
        Route(base + "/thumbnail.png", guarded(portal, thumbnail), methods=["GET"], name="thumbnail"),
        Route(base + "/slice/{slice:int}.png", guarded(portal, frame), methods=["GET"], name="frame"),
    ]
