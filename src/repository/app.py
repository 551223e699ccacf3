"""The Document Repository as a service: the SOAP endpoint (ITI-41/RAD-68 and ITI-43), the
registry client, the start-up sweep and reconciliation, and the process that runs them.

``/repository`` answers both transactions (dispatch is on wsa:Action; RAD-68 uses the ITI-41
action); ``/repository?wsdl`` serves the DocumentRepository WSDL. MTOM parts are spooled into
the store's own spool directory, on the store's filesystem, so accepting a document is a rename.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from dataclasses import fields
from typing import Final

import anyio
import anyio.to_thread
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from repository.config import RepositorySettings
from repository.consent import ConsentRetrieve
from repository.db import make_engine, upgrade
from repository.reconcile import Reconciler
from repository.service import DocumentRepository, Timing
from repository.store import DocumentStore
from xds.http.client import LeanAsyncSoapClient
from xds.http.server import Handler, SoapService, run_server, soap_routes
from xds.security.audit import AuditLog
from xds.security.gate import RetrievalGate, gate_for_policy, utc_now
from xds.vocabulary import Action
from xds.wsdl import DOCUMENT_REPOSITORY, WsdlProvider

__all__ = ["PATH", "build_repository_app", "consent_gate", "describe_endpoints", "repository_service", "serve_repository"]

log = logging.getLogger(__name__)

PATH: Final = "/repository"
#: Spool and object files younger than this are never swept (another worker may own them).
SWEEP_MIN_AGE: Final = 3600.0


def timing_for(settings: RepositorySettings) -> Timing:
    """Deadlines derived from the registry timeout (a call = connect + write + read, at most)."""
    call = 3 * settings.registry_timeout
    return Timing(call_deadline=call, lease=2 * call + 60, grace=settings.pending_grace)


def consent_gate(settings: RepositorySettings, *, clock: Callable[[], datetime] = utc_now) -> RetrievalGate | None:
    """The retrieval gate of the ``consent`` policy (None for ``open``)."""
    return gate_for_policy(
        settings.access_policy,
        trusted_token_cert=settings.trusted_token_cert,
        audience=settings.token_audience,
        clock=clock,
        audit=AuditLog(path, clock=clock) if (path := settings.audit_path()) is not None and settings.access_policy == "consent" else None,
        actor="repository",
    )


def repository_service(
    repository: DocumentRepository, *, settings: RepositorySettings, gate: RetrievalGate | None = None
) -> SoapService:
    """The SOAP endpoint of the Document Repository; with ``gate``, ITI-43 goes through it
    (DESIGN §4: one component in front of the retrieve code)."""
    retrieve: Handler = repository.retrieve
    if gate is not None:
        retrieve = ConsentRetrieve(gate, repository_id=settings.repository_id).wrap(retrieve)
    return SoapService(
        path=PATH,
        handlers={Action.ITI41: repository.provide_and_register, Action.ITI43: retrieve},
        wsdl=WsdlProvider(DOCUMENT_REPOSITORY, schema_dir=settings.schemas),
        name="DocumentRepository",
    )


def build_repository_app(
    settings: RepositorySettings,
    *,
    engine: Engine | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    clock: Callable[[], datetime] = utc_now,
) -> Starlette:
    """The repository's ASGI app. Its lifespan opens the registry client, sweeps leftovers of
    crashed processes, and reconciles interrupted submissions at once and then every
    ``reconcile_interval`` seconds, in the background. ``clock`` is what the consent gate
    checks assertion lifetimes against."""
    gate = consent_gate(settings, clock=clock)
    engine = engine or make_engine(settings.database_url())
    upgrade(engine)
    store = DocumentStore(settings.store_dir(), engine)
    timing = timing_for(settings)
    repository = DocumentRepository(store, repository_id=settings.repository_id, client=None, timing=timing)
    reconciler = Reconciler(
        store,
        repository.lookup_registry,
        repository_id=settings.repository_id,
        lease_seconds=timing.lease,
        retry_after=settings.reconcile_interval,
        settle_after=timing.call_deadline,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # ITI-42 and ITI-18 are small SOAP exchanges: the lean HTTP/1.1 client costs a fraction of
        # httpx's CPU per call (docs/benchmarks.md, repository section).
        async with LeanAsyncSoapClient(
            settings.registry, timeout=settings.registry_timeout, spool_dir=store.spool_dir, headers=settings.registry_headers()
        ) as client:
            repository.client = client
            swept = await anyio.to_thread.run_sync(lambda: store.sweep(min_age=SWEEP_MIN_AGE))
            if swept:
                log.info("start-up sweep removed %d leftover file(s)", swept)
            async with anyio.create_task_group() as group:
                # A first round right away (in the background: the registry may be this very
                # process, not serving until start-up ends), then every reconcile_interval.
                group.start_soon(
                    lambda: reconciler.run_forever(interval=settings.reconcile_interval, first_round_at_once=True)
                )
                try:
                    yield
                finally:
                    group.cancel_scope.cancel()
            repository.client = None
        engine.dispose()

    routes: list[BaseRoute] = list(
        soap_routes(
            services=[repository_service(repository, settings=settings, gate=gate)],
            spool_dir=store.spool_dir,
            max_body_bytes=settings.max_body_bytes,
            max_envelope_bytes=settings.max_envelope_bytes,
            # Documents are fsynced before ITI-42: their bytes go to the disk while they arrive.
            write_behind=True,
        )
    )
    routes.extend(extra_routes)
    return Starlette(routes=routes, lifespan=lifespan)


def app_from_environment() -> Starlette:
    """App factory for worker processes: settings come from ``XDS_REPOSITORY_*`` variables."""
    from xds.settings import load_settings

    return build_repository_app(load_settings(RepositorySettings, section="repository"))


def _export(settings: RepositorySettings) -> None:
    for f in fields(settings):
        value = getattr(settings, f.name)
        if value is not None:
            os.environ[f"XDS_REPOSITORY_{f.name.upper()}"] = str(value)


def describe_endpoints(settings: RepositorySettings) -> list[str]:
    scheme = "https" if settings.tls_cert else "http"
    base = f"{scheme}://{settings.host}:{settings.port}{PATH}"
    return [
        f"Document Repository ITI-41 Provide and Register (and RAD-68):  {base}",
        f"Document Repository ITI-43 Retrieve Document Set:             {base}",
        f"WSDL:                                                         {base}?wsdl",
        f"repositoryUniqueId {settings.repository_id}; registry {settings.registry}",
        f"documents in {settings.store_dir().resolve()}",
        f"access policy {settings.access_policy}"
        + (f" (assertions for {settings.token_audience}, signed by {settings.trusted_token_cert})" if settings.access_policy == "consent" else ""),
    ]


def serve_repository(settings: RepositorySettings) -> None:
    """Run the repository until interrupted, logging the endpoints it serves."""
    engine = make_engine(settings.database_url())
    upgrade(engine)
    log.info("index database: %s", engine.url.render_as_string(hide_password=True))
    engine.dispose()
    for line in describe_endpoints(settings):
        log.info("%s", line)
    if settings.workers > 1:
        _export(settings)
        run_server(
            "repository.app:app_from_environment",
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            factory=True,
            log_level=settings.log_level,
            **settings.tls_options(),  # type: ignore[arg-type]
        )
    else:
        run_server(
            build_repository_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level,
            **settings.tls_options(),  # type: ignore[arg-type]
        )  # fmt: skip
