"""``xds up``: every actor in one process on the embedded default (SQLite and local files).

Each actor builds its own Starlette app; this module only composes them: their routes in one app
on one port, and their lifespans (MLLP listeners, DICOM listeners, background jobs) entered in
order and left in reverse. No protocol logic lives here.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from imaging_source.app import build_source_app
from imaging_source.app import describe_endpoints as source_endpoints
from imaging_source.config import SourceSettings
from registry.app import build_registry_app
from registry.app import describe_endpoints as registry_endpoints
from registry.config import RegistrySettings
from repository.app import build_repository_app
from repository.app import describe_endpoints as repository_endpoints
from repository.config import RepositorySettings
from xds.http.server import run_server

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class UpSettings:
    host: str = "127.0.0.1"
    port: int = 8010
    data_dir: Path = Path("data")
    codes: Path | None = None
    mllp_port: int = 2575
    repository_id: str | None = None  # None: the repository's fixed default OID
    dicom_port: int = 11112  # the Edge Server's Storage SCP; 0 disables it
    ris_port: int = 2576  # the Edge Server's HL7 report/order feed; 0 disables it


def compose(apps: Sequence[Starlette]) -> Starlette:
    """One app with every actor's routes, running every actor's lifespan."""
    routes: list[BaseRoute] = [route for app in apps for route in app.routes]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for app in apps:
                await stack.enter_async_context(app.router.lifespan_context(app))
            yield

    return Starlette(routes=routes, lifespan=lifespan)


def build_up_app(settings: UpSettings) -> tuple[Starlette, list[str]]:
    """The composed app and the endpoint lines to log. The repository reaches the registry over
    loopback HTTP, as it would across machines: actors meet only on the wire."""
    registry = RegistrySettings(
        host=settings.host,
        port=settings.port,
        data_dir=settings.data_dir,
        codes=settings.codes,
        mllp_port=settings.mllp_port,
    )
    local = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    repository_options: dict[str, object] = {}
    if settings.repository_id:
        repository_options["repository_id"] = settings.repository_id
    repository = RepositorySettings(
        host=settings.host,
        port=settings.port,
        data_dir=settings.data_dir,
        registry=f"http://{local}:{settings.port}/registry",
        **repository_options,  # type: ignore[arg-type]
    )
    source = SourceSettings(
        host=settings.host,
        port=settings.port,
        data_dir=settings.data_dir,
        dicom_host=settings.host,
        dicom_port=settings.dicom_port,
        mllp_host=settings.host,
        mllp_port=settings.ris_port,
        repository_url=f"http://{local}:{settings.port}/repository",
        codes=settings.codes,
    )
    apps = [
        build_registry_app(registry),
        build_repository_app(repository),
        build_source_app(source, run_services=True),
    ]
    endpoints = [*registry_endpoints(registry), *repository_endpoints(repository), *source_endpoints(source)]
    return compose(apps), endpoints


def run_up(settings: UpSettings) -> None:
    app, endpoints = build_up_app(settings)
    log.info("data directory: %s", settings.data_dir.resolve())
    for line in endpoints:
        log.info("%s", line)
    run_server(app, host=settings.host, port=settings.port)
