"""``xds up``: every actor in one process on the embedded default (SQLite and local files).

Each actor builds its own Starlette app; this module only composes them: their routes in one app
on one port, and their lifespans (MLLP listeners, DICOM listeners, background jobs) entered in
order and left in reverse. No protocol logic lives here.

DESIGN §4: ``xds up`` runs the ``consent`` access policy by default. The wiring that makes it
work on one machine, written once here:

* the registry signs assertions with the key pair it generates under ``<data>/keys`` at first
  start; the repository and the Edge Server trust that certificate
  (``<data>/keys/token-signing.cert.pem``) and verify assertions locally;
* the grant API key (``<data>/keys/grant-api.key``, 0600, generated once) authenticates the Edge
  Server at the registry's grant API, and lets the repository's reconciler see what is
  registered (a service of the deployment, not a consumer).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount

from consumer.web import PortalSettings, build_portal_app

from imaging_source.app import build_source_app, open_store
from imaging_source.app import describe_endpoints as source_endpoints
from imaging_source.config import SourceSettings
from imaging_source.web import build_console_app
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
    # DESIGN §4: "consent" (the clearinghouse: the token gate) or "open" (plain XDS.b).
    access_policy: str = "consent"
    # The assigning authority of the hospital's MRNs (sourcePatientId) when a modality sends no
    # OID in Issuer of Patient ID; by default the IHE test authority "IHEGREEN".
    local_patient_id_oid: str = "1.3.6.1.4.1.21367.13.20.2000"
    # The assigning authority of the hospital's accession numbers when the images name none as an
    # OID: a fixed OID under the UUID arc (2.25) for a default installation; configure your own.
    accession_issuer_oid: str = "2.25.281772451561841388745146899892894698548"

    @property
    def local(self) -> str:
        """The address the actors use to reach each other (loopback for a wildcard bind)."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host

    @property
    def base_url(self) -> str:
        return f"http://{self.local}:{self.port}"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def token_cert(self) -> Path:
        """Where the registry keeps the certificate its assertions are signed with."""
        return self.keys_dir / "token-signing.cert.pem"


def grant_api_key(settings: UpSettings) -> str:
    """The deployment's grant API key, generated at first use into ``<data>/keys/grant-api.key``."""
    path = settings.keys_dir / "grant-api.key"
    if path.is_file():
        key = path.read_text(encoding="ascii").strip()
        if key:
            return key
    settings.keys_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key + "\n")
    return key


def registry_settings(settings: UpSettings) -> RegistrySettings:
    return RegistrySettings(
        host=settings.host,
        port=settings.port,
        data_dir=settings.data_dir,
        codes=settings.codes,
        mllp_port=settings.mllp_port,
        access_policy=settings.access_policy,
        grant_api_key=grant_api_key(settings),
    )


def repository_settings(settings: UpSettings) -> RepositorySettings:
    options: dict[str, object] = {}
    if settings.repository_id:
        options["repository_id"] = settings.repository_id
    if settings.access_policy == "consent":
        options["trusted_token_cert"] = settings.token_cert
    return RepositorySettings(
        host=settings.host,
        port=settings.port,
        data_dir=settings.data_dir,
        registry=f"{settings.base_url}/registry",
        registry_key=grant_api_key(settings),
        access_policy=settings.access_policy,
        **options,  # type: ignore[arg-type]
    )


def source_settings(settings: UpSettings) -> SourceSettings:
    """The Edge Server's settings under ``xds up`` (also what ``xds demo`` seeds through)."""
    return SourceSettings(
        host=settings.host,
        port=settings.port,
        data_dir=settings.data_dir,
        dicom_host=settings.host,
        dicom_port=settings.dicom_port,
        mllp_host=settings.host,
        mllp_port=settings.ris_port,
        repository_url=f"{settings.base_url}/repository",
        codes=settings.codes,
        access_policy=settings.access_policy,
        trusted_token_cert=settings.token_cert if settings.access_policy == "consent" else None,
        grant_api_url=f"{settings.base_url}/consent",
        grant_api_key=grant_api_key(settings),
        portal_url=f"{settings.base_url}/portal/",
        local_patient_id_oid=settings.local_patient_id_oid,
        accession_issuer_oid=settings.accession_issuer_oid,
    )


def compose(apps: Sequence[Starlette], *, mounts: Mapping[str, Starlette] | None = None) -> Starlette:
    """One app with every actor's routes and the web front ends mounted at their prefixes (each
    keeps its own middleware), running every lifespan (Starlette's Mount runs none itself)."""
    mounted = dict(mounts or {})
    routes: list[BaseRoute] = [route for app in apps for route in app.routes]
    routes += [Mount(prefix, app=app) for prefix, app in mounted.items()]
    everything = [*apps, *mounted.values()]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for app in everything:
                await stack.enter_async_context(app.router.lifespan_context(app))
            yield

    return Starlette(routes=routes, lifespan=lifespan)


def build_up_app(settings: UpSettings) -> tuple[Starlette, list[str]]:
    """The composed app and the endpoint lines to log. The repository reaches the registry over
    loopback HTTP, as it would across machines: actors meet only on the wire."""
    registry = registry_settings(settings)
    repository = repository_settings(settings)
    source = source_settings(settings)
    # Order matters: the registry generates its token key pair, which the others then trust.
    apps = [build_registry_app(registry)]
    store = open_store(source)
    apps += [build_repository_app(repository), build_source_app(source, store=store, run_services=True)]
    portal = PortalSettings(
        registry_url=f"{settings.base_url}/registry",
        repository_url=f"{settings.base_url}/repository",
        sources={source.source_id: f"{settings.base_url}/imaging-source"},
        cache_dir=settings.data_dir / "portal-cache",
    )
    mounts = {
        "/portal": build_portal_app(portal),
        "/console": build_console_app(source, engine=store.engine, store=store),
    }
    endpoints = [*registry_endpoints(registry), *repository_endpoints(repository), *source_endpoints(source)]
    public = f"http://{settings.host}:{settings.port}"
    endpoints += [
        f"Patient portal (access code + PIN):  {public}/portal/",
        f"Staff console:                      {public}/console/  (add a user: xds source staff add NAME --role admin)",
    ]
    return compose(apps, mounts=mounts), endpoints


def run_up(settings: UpSettings) -> None:
    app, endpoints = build_up_app(settings)
    log.info("data directory: %s", settings.data_dir.resolve())
    for line in endpoints:
        log.info("%s", line)
    run_server(app, host=settings.host, port=settings.port)
