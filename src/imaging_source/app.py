"""The Edge Server as a process: the HTTP app (RAD-69 SOAP endpoint, WADO-URI) and the DICOM
Storage SCP, over one store.

``/imaging-source`` answers RAD-69 (``?wsdl`` serves the ImagingDocumentSource WSDL);
``/wado`` answers RAD-55 WADO-URI. The C-STORE SCP runs in the same process (pynetdicom
threads) so that its arrivals wake retrievals waiting on them; several HTTP workers are
therefore not offered here: RAD-69 streams from disk and is not CPU-bound.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Final

import anyio.to_thread
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from imaging_source.config import SourceSettings
from imaging_source.consent import ConsentRad69, ConsentWado
from imaging_source.db import make_engine, upgrade
from imaging_source.dicomstore import DicomStore
from imaging_source.feed import RisFeed
from imaging_source.intake import Intake
from imaging_source.reports import ReportBook
from imaging_source.scp import StorageSCP
from imaging_source.service import ImagingDocumentSource
from imaging_source.transcode import Transcoder
from imaging_source.wado import WadoEndpoint
from imaging_source.worker import runner_from_settings
from xds.hl7.mllp import MllpServer, serve_mllp
from xds.http.server import Handler, SoapService, run_server, soap_routes
from xds.security.audit import AuditLog
from xds.security.gate import RetrievalGate, gate_for_policy, utc_now
from xds.vocabulary import Action
from xds.wsdl import IMAGING_DOCUMENT_SOURCE, WsdlProvider

__all__ = [
    "PATH",
    "WADO_PATH",
    "EdgeServices",
    "build_source_app",
    "consent_gate",
    "describe_endpoints",
    "open_store",
    "serve_source",
]

log = logging.getLogger(__name__)

PATH: Final = "/imaging-source"
WADO_PATH: Final = "/wado"
#: Temporary files older than this are swept at start (left by a crash).
SWEEP_MIN_AGE: Final = 3600.0


def open_store(settings: SourceSettings, *, engine: Engine | None = None) -> DicomStore:
    """The store of ``settings`` with its index migrated to the newest schema."""
    engine = engine or make_engine(settings.database_url())
    upgrade(engine)
    return DicomStore(settings.store_dir(), engine, fsync=settings.fsync)


def consent_gate(settings: SourceSettings, *, clock: Callable[[], datetime] = utc_now) -> RetrievalGate | None:
    """The retrieval gate of the ``consent`` policy (None for ``open``)."""
    return gate_for_policy(
        settings.access_policy,
        trusted_token_cert=settings.trusted_token_cert,
        audience=settings.token_audience,
        clock=clock,
        audit=AuditLog(path, clock=clock) if (path := settings.audit_path()) is not None and settings.access_policy == "consent" else None,
        actor="imaging-source",
    )


def source_service(
    source: ImagingDocumentSource, *, settings: SourceSettings, gate: RetrievalGate | None = None
) -> SoapService:
    """The SOAP endpoint of the Imaging Document Source (RAD TF-3 §4.69); with ``gate``, RAD-69
    goes through it (DESIGN §4: one component in front of the retrieve code)."""
    retrieve: Handler = source.retrieve
    if gate is not None:
        retrieve = ConsentRad69(gate, source_id=settings.source_id).wrap(retrieve)
    return SoapService(
        path=PATH,
        handlers={Action.RAD69: retrieve},
        wsdl=WsdlProvider(IMAGING_DOCUMENT_SOURCE, schema_dir=settings.schemas),
        name="ImagingDocumentSource",
    )


def build_source_app(
    settings: SourceSettings,
    *,
    store: DicomStore | None = None,
    transcoder: Transcoder | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    ris_feed: RisFeed | None = None,
    run_services: bool = False,
    clock: Callable[[], datetime] = utc_now,
) -> Starlette:
    """The Edge Server's ASGI app: RAD-69 at :data:`PATH`, WADO-URI at :data:`WADO_PATH`.

    With ``ris_feed`` and a non-zero ``mllp_port``, the app's lifespan also runs the RIS feed's
    MLLP listener (HL7 v2 ORU^R01 / ORM^O01). With ``run_services`` it runs the whole Edge
    Server: the intake, the Storage SCP (unless ``dicom_port`` is 0), the share-job runner and,
    unless ``mllp_port`` is 0, the RIS feed; so one process (``xds source serve`` or ``xds up``)
    needs nothing but this app. In the ``consent`` access policy RAD-69 and WADO-URI go through
    the consent gate; ``clock`` is what it checks assertion lifetimes against."""
    gate = consent_gate(settings, clock=clock)
    store = store or open_store(settings)
    if run_services and ris_feed is None and settings.mllp_port:
        ris_feed = RisFeed(ReportBook(store.engine))
    services = EdgeServices(settings, store) if run_services else None
    transcoder = transcoder or Transcoder()
    source = ImagingDocumentSource(store, source_id=settings.source_id, transcoder=transcoder)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        swept = await anyio.to_thread.run_sync(lambda: store.sweep_tmp(min_age=SWEEP_MIN_AGE))
        if swept:
            log.info("start-up sweep removed %d leftover file(s)", swept)
        if services is not None:
            await anyio.to_thread.run_sync(services.start)
        mllp: MllpServer | None = None
        if ris_feed is not None and settings.mllp_port:
            try:
                mllp = await serve_mllp(
                    ris_feed, host=settings.mllp_host, port=settings.mllp_port, oversize_reply=ris_feed.reject_oversize
                )
            except OSError as exc:
                log.warning("RIS feed listener not started: %s", exc)
        try:
            yield
        finally:
            if mllp is not None:
                await mllp.stop()
            if services is not None:
                await anyio.to_thread.run_sync(services.stop)

    routes: list[BaseRoute] = list(
        soap_routes(
            services=[source_service(source, settings=settings, gate=gate)],
            spool_dir=store.root / "spool",
            max_envelope_bytes=settings.max_envelope_bytes,
            max_body_bytes=settings.max_envelope_bytes,
        )
    )
    wado: ASGIApp = WadoEndpoint(store, transcoder)
    if gate is not None:
        wado = ConsentWado(wado, gate)
    routes.append(Route(WADO_PATH, endpoint=wado, methods=["GET", "HEAD"]))
    routes.extend(extra_routes)
    return Starlette(routes=routes, lifespan=lifespan)


def describe_endpoints(settings: SourceSettings) -> list[str]:
    base = f"http://{settings.host}:{settings.port}"
    lines = [
        f"Imaging Document Source RAD-69:   {base}{PATH}",
        f"WSDL:                             {base}{PATH}?wsdl",
        f"WADO-URI (RAD-55):                {base}{WADO_PATH}",
        f"repositoryUniqueId (Retrieve Location UID) {settings.source_id}",
        f"DICOM instances in {settings.store_dir().resolve()}",
        f"access policy {settings.access_policy}"
        + (f" (assertions for {settings.token_audience}, signed by {settings.trusted_token_cert})" if settings.access_policy == "consent" else ""),
    ]
    if settings.dicom_port:
        lines.append(f"DICOM Storage SCP {settings.ae_title} on {settings.dicom_host}:{settings.dicom_port}")
    if settings.mllp_port:
        lines.append(f"RIS feed (HL7 v2 ORU/ORM over MLLP): mllp://{settings.mllp_host}:{settings.mllp_port}")
    return lines


class EdgeServices:
    """The Edge Server's work besides HTTP: the intake (first indexing what a previous run left
    in ``incoming/``), the C-STORE SCP and the share-job runner (RAD-68), started and stopped
    together, in that order and in reverse."""

    def __init__(self, settings: SourceSettings, store: DicomStore) -> None:
        self.settings = settings
        self.store = store
        self.intake = Intake(store)
        self.scp: StorageSCP | None = None
        self.jobs = runner_from_settings(settings, store)

    def start(self) -> None:
        self.intake.start()
        if self.settings.dicom_port:
            self.scp = StorageSCP(
                self.store,
                ae_title=self.settings.ae_title,
                host=self.settings.dicom_host,
                port=self.settings.dicom_port,
                intake=self.intake,
                check_called_ae=self.settings.check_called_ae,
            )
            self.scp.start()
        self.jobs.start()

    def stop(self) -> None:
        self.jobs.stop()
        if self.scp is not None:
            self.scp.stop()
            self.scp = None
        self.intake.stop()


def serve_source(settings: SourceSettings) -> None:
    """Run the Edge Server (HTTP; unless their port is 0, the Storage SCP and the RIS feed)."""
    store = open_store(settings)
    log.info("index database: %s", store.engine.url.render_as_string(hide_password=True))
    for line in describe_endpoints(settings):
        log.info("%s", line)
    try:
        app = build_source_app(settings, store=store, run_services=True)
        run_server(app, host=settings.host, port=settings.port, log_level=settings.log_level)
    finally:
        store.engine.dispose()
