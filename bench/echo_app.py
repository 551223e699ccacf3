"""The benchmark's server: the Document Registry app plus two transport baselines on the same
SOAP stack, so one server answers both and their ratio isolates what the registry costs.

    python bench/echo_app.py --port 8099 --workers 2      # settings from XDS_REGISTRY_* variables

* ``/registry`` is :func:`registry.app.build_registry_app` unchanged (ITI-42, ITI-18).
* ``/echo`` is a :class:`~xds.http.server.SoapService` mounted beside it with
  :func:`~xds.http.server.soap_routes`. Action ``urn:xds-bench:Echo`` answers with the request
  body (same message size both ways); ``urn:xds-bench:Null`` answers the Success
  RegistryResponse the registry sends, without touching the registry.

Both go through the same receive, envelope parsing and checking, dispatch and response
rendering as the registry's endpoint. Used by ``registry_submit.py``; the project's own
``xds registry serve`` does not include it.
"""

from __future__ import annotations

import argparse
import copy

from starlette.applications import Starlette

from registry.app import build_registry_app
from registry.config import RegistrySettings
from xds.http.server import SoapRequest, SoapResponse, SoapService, run_server, soap_routes
from xds.metadata.responses import build_registry_response
from xds.settings import load_settings

ECHO_PATH = "/echo"
ECHO_ACTION = "urn:xds-bench:Echo"
NULL_ACTION = "urn:xds-bench:Null"


def echo_service() -> SoapService:
    async def echo(request: SoapRequest) -> SoapResponse:
        return SoapResponse(action=ECHO_ACTION + "Response", body=copy.deepcopy(request.body))

    async def null(request: SoapRequest) -> SoapResponse:
        return SoapResponse(action=NULL_ACTION + "Response", body=build_registry_response([]))

    return SoapService(path=ECHO_PATH, handlers={ECHO_ACTION: echo, NULL_ACTION: null}, name="BenchEcho")


def create_app() -> Starlette:
    """App factory for uvicorn workers: the registry (settings from XDS_REGISTRY_*) + /echo."""
    settings = load_settings(RegistrySettings, section="registry")
    app = build_registry_app(settings)
    app.router.routes.extend(
        soap_routes(
            services=[echo_service()],
            spool_dir=settings.data_dir / "spool" / "echo",
            max_body_bytes=settings.max_body_bytes,
            max_envelope_bytes=settings.max_body_bytes,
        )
    )
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="registry + SOAP echo baseline, for the benchmarks")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    run_server("echo_app:create_app", host="127.0.0.1", port=args.port, workers=args.workers, factory=True,
               log_level=args.log_level)


if __name__ == "__main__":
    main()
