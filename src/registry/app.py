"""The Document Registry as a service: the SOAP endpoint (ITI-42, ITI-18), the ITI-8 MLLP
listener, and the process that runs them.

``/registry`` answers both transactions (dispatch is on wsa:Action); ``/registry?wsdl`` serves the
DocumentRegistry WSDL. Database work runs in worker threads so the event loop keeps serving.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import fields
from datetime import datetime
from pathlib import Path

import anyio.to_thread
from lxml import etree
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from registry.config import RegistrySettings
from registry.gate import ConsentGate, TrustedInstitutions
from registry.grants import GrantStore
from registry.iti8 import PatientIdentityFeed
from registry.iti18 import RegistryStoredQuery
from registry.iti42 import DocumentRegistry
from xds.hl7.mllp import MllpServer, serve_mllp
from registry.store.db import make_engine, upgrade
from xds.errors import ErrorCode, RegistryError
from xds.http.server import Handler, SoapRequest, SoapResponse, SoapService, run_server, soap_routes
from xds.metadata.responses import build_adhoc_query_response, build_registry_response
from xds.schemas import LCM, load_schema
from xds.settings import SettingsError
from xds.security.keys import SigningMaterial
from xds.vocabulary import NS_LCM, NS_QUERY, Action
from xds.wsdl import DOCUMENT_REGISTRY, WsdlProvider

log = logging.getLogger(__name__)

PATH = "/registry"
_SUBMIT = f"{{{NS_LCM}}}SubmitObjectsRequest"
_QUERY = f"{{{NS_QUERY}}}AdhocQueryRequest"


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def registry_service(
    registry: DocumentRegistry,
    queries: RegistryStoredQuery,
    *,
    schemas: Path | None = None,
    db_threads: int = 2,
    gate: Callable[[Handler], Handler] | None = None,
) -> SoapService:
    """The SOAP endpoint of the Document Registry.

    At most ``db_threads`` transactions run at once in this process. They are CPU-bound Python
    under one GIL, so more threads only add switching; on SQLite, concurrent writers would also
    wait in SQLite's busy handler, whose growing sleeps (up to 100 ms each) made the p95 of ITI-42
    under 16 concurrent clients ~0.6-0.9 s instead of ~0.15 s (docs/benchmarks.md).
    """
    limiter = anyio.CapacityLimiter(db_threads)

    async def register(request: SoapRequest) -> SoapResponse:
        # ITI TF-2b §3.42.4.1.1: the body of ITI-42 is an lcm:SubmitObjectsRequest (NIST checks
        # that the action matches the body).
        if request.body.tag != _SUBMIT:
            errors = [
                RegistryError(
                    ErrorCode.REGISTRY_METADATA_ERROR,
                    f"{Action.ITI42} carries {_local(request.body)}, not lcm:SubmitObjectsRequest",
                )
            ]
        else:
            errors = await anyio.to_thread.run_sync(registry.register, request.body, limiter=limiter)
        return SoapResponse(action=Action.ITI42_RESPONSE, body=build_registry_response(errors))

    async def stored_query(request: SoapRequest) -> SoapResponse:
        # ITI TF-2a §3.18.4.1.1: the body of ITI-18 is a query:AdhocQueryRequest.
        if request.body.tag != _QUERY:
            body = build_adhoc_query_response(
                objects=None,
                errors=[
                    RegistryError(
                        ErrorCode.REGISTRY_ERROR,
                        f"{Action.ITI18} carries {_local(request.body)}, not query:AdhocQueryRequest",
                    )
                ],
            )
        else:
            body = await anyio.to_thread.run_sync(queries.respond, request.body, limiter=limiter)
        return SoapResponse(action=Action.ITI18_RESPONSE, body=body)

    # DESIGN §4: in the consent policy the gate stands in front of the stored query.
    return SoapService(
        path=PATH,
        handlers={Action.ITI42: register, Action.ITI18: gate(stored_query) if gate else stored_query},
        wsdl=WsdlProvider(DOCUMENT_REGISTRY, schema_dir=schemas),
        name="DocumentRegistry",
    )


def build_registry_app(
    settings: RegistrySettings, *, engine: Engine | None = None, clock: Callable[[], datetime] | None = None
) -> Starlette:
    """The registry's ASGI app; the lifespan starts the ITI-8 listener when a port is set.

    ``clock`` (default: the system clock) is what the consent grants and the gate go by.
    """
    engine = engine or make_engine(settings.database_url())
    upgrade(engine)
    codes = None
    if settings.codes is not None:
        from profiles.codes import load_code_set

        codes = load_code_set(settings.codes)
    schema = load_schema(settings.schemas, LCM) if settings.schemas is not None else None
    registry = DocumentRegistry(
        engine, codes=codes, store_extra_metadata=settings.store_extra_metadata, schema=schema
    )
    queries = RegistryStoredQuery(engine, max_results=settings.max_results)
    feed = PatientIdentityFeed(registry.patients)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        mllp: MllpServer | None = None
        if settings.mllp_port:
            try:
                mllp = await serve_mllp(
                    feed, host=settings.mllp_host, port=settings.mllp_port, oversize_reply=feed.reject_oversize
                )
            except OSError as exc:
                # With several workers one of them holds the MLLP port; the others serve HTTP only.
                log.warning("ITI-8 listener not started in this process: %s", exc)
        try:
            yield
        finally:
            if mllp is not None:
                await mllp.stop()
            engine.dispose()

    consent = _consent_parts(settings, engine, clock) if settings.access_policy == "consent" or settings.grant_api_key else None
    gate = None
    if settings.access_policy == "consent":
        assert consent is not None
        gate = _consent_gate(settings, queries, *consent).wrap
    routes: list[BaseRoute] = list(
        soap_routes(
            services=[registry_service(registry, queries, schemas=settings.schemas, gate=gate)],
            spool_dir=settings.data_dir / "spool" / "registry",
            max_body_bytes=settings.max_body_bytes,
            max_envelope_bytes=settings.max_body_bytes,
        )
    )
    if consent is not None:
        routes.extend(build_consent_routes(settings, engine, parts=consent))
    return Starlette(routes=routes, lifespan=lifespan)


def _consent_parts(
    settings: RegistrySettings, engine: Engine, clock: Callable[[], datetime] | None = None
) -> tuple[GrantStore, SigningMaterial]:
    """The grant store and the token issuer's key pair (configured, or generated once)."""
    from xds.security.keys import load_or_create_signing_material

    keys = settings.data_dir / "keys"
    signing = load_or_create_signing_material(
        key_path=settings.signing_key or keys / "token-signing.key.pem",
        cert_path=settings.signing_cert or keys / "token-signing.cert.pem",
        common_name=settings.token_issuer,
    )
    return (GrantStore(engine, clock=clock) if clock is not None else GrantStore(engine)), signing


def _consent_gate(
    settings: RegistrySettings, queries: RegistryStoredQuery, grants: GrantStore, signing: SigningMaterial
) -> ConsentGate:
    """The ITI-18 gate: assertions verified with this registry's own certificate."""
    try:
        trusted = TrustedInstitutions(settings.trusted_institutions)
    except ValueError as exc:
        raise SettingsError(f"trusted_institutions: {exc}") from None
    return ConsentGate(
        queries=queries,
        grants=grants,
        trusted_cert=signing.cert_pem,
        audience=settings.token_audience,
        trusted_institutions=trusted,
        service_keys=(settings.grant_api_key,) if settings.grant_api_key else (),
    )


def build_consent_routes(
    settings: RegistrySettings, engine: Engine, *, parts: tuple[GrantStore, SigningMaterial] | None = None
) -> list[BaseRoute]:
    """The grant API, the token endpoint and the patient's self-service routes (DESIGN §4),
    signing with the configured or generated key."""
    from datetime import timedelta

    from registry.consent_http import consent_routes
    from registry.consent_self import self_service_routes

    store, signing = parts or _consent_parts(settings, engine)
    lifetime = timedelta(seconds=settings.token_lifetime_s)
    audience, issuer = settings.token_audience, settings.token_issuer
    return [
        *consent_routes(
            store, signing=signing, api_key=settings.grant_api_key, token_lifetime=lifetime, audience=audience, issuer=issuer
        ),
        *self_service_routes(store, signing=signing, token_lifetime=lifetime, audience=audience, issuer=issuer),
    ]


def app_from_environment() -> Starlette:
    """App factory for worker processes: settings come from ``XDS_REGISTRY_*`` variables."""
    from xds.settings import load_settings

    return build_registry_app(load_settings(RegistrySettings, section="registry"))


def _export(settings: RegistrySettings) -> None:
    for f in fields(settings):
        value = getattr(settings, f.name)
        if isinstance(value, tuple):
            # The environment holds a list comma-separated (xds.settings), so an item with a
            # comma (an RFC 4514 DN) cannot travel that way: configure it in the TOML file.
            if any("," in item for item in value):
                raise SettingsError(f"{f.name}: items with commas need the TOML file when workers > 1")
            os.environ[f"XDS_REGISTRY_{f.name.upper()}"] = ",".join(value)
        elif value is not None:
            os.environ[f"XDS_REGISTRY_{f.name.upper()}"] = str(value)


def describe_endpoints(settings: RegistrySettings) -> list[str]:
    scheme = "https" if settings.tls_cert else "http"
    base = f"{scheme}://{settings.host}:{settings.port}{PATH}"
    lines = [
        f"Document Registry ITI-42 Register Document Set-b:  {base}",
        f"Document Registry ITI-18 Registry Stored Query:    {base}",
        f"WSDL:                                              {base}?wsdl",
    ]
    if settings.mllp_port:
        lines.append(f"ITI-8 Patient Identity Feed (HL7 v2 over MLLP):   mllp://{settings.mllp_host}:{settings.mllp_port}")
    return lines


def serve_registry(settings: RegistrySettings) -> None:
    """Run the registry until interrupted, logging the endpoints it serves."""
    engine = make_engine(settings.database_url())
    upgrade(engine)
    engine.dispose()
    log.info("database: %s", make_engine(settings.database_url()).url.render_as_string(hide_password=True))
    for line in describe_endpoints(settings):
        log.info("%s", line)
    # DESIGN §6 "TLS": HTTPS when a certificate is set; client certificates (for the trusted
    # institutions of the consent policy) when a client CA is set.
    tls = {"ssl_certfile": settings.tls_cert, "ssl_keyfile": settings.tls_key, "ssl_ca_certs": settings.tls_client_ca}
    if settings.workers > 1:
        _export(settings)
        run_server(
            "registry.app:app_from_environment",
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            factory=True,
            log_level=settings.log_level,
            **tls,
        )
    else:
        run_server(build_registry_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level, **tls)
