"""The staff console under test: a real Edge Server index in a temporary directory, studies of a
few patients, staff users, a fake of the registry's grant API (the real one is used where a test
needs it), and a signed-in test client that carries the CSRF token like a browser."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from imaging_source.config import SourceSettings
from imaging_source.db import make_engine, upgrade
from imaging_source.dicomstore import DicomStore
from imaging_source.grant_client import GrantClient
from imaging_source.jobs import JobStore
from imaging_source.release import ReleasePolicy
from imaging_source.web import build_console_app
from imaging_source.web.staff import PasswordParams, StaffDirectory, StaffRole
from tests.support.dicom import StudySpec, make_study, part10_bytes
from xds.http.server import ServerThread

API_KEY = "console-grant-api-key-0123456789"
AFFINITY = "1.3.6.1.4.1.21367.13.20.1000"
ADMIN_PASSWORD = "admin password 2024"
USER_PASSWORD = "clerk password 2024"
#: Cheaper scrypt for tests (the stored hash names its own cost, so this is only speed).
FAST = PasswordParams(n=2**10)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class FakeGrantApi:
    """The registry's ``/consent/grants`` API as a transport: grants in a dict, every request's
    body kept (to check what the Edge sent, e.g. no ``pin`` for a PIN-pending grant)."""

    grants: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)
    down: bool = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        path = request.url.path.removeprefix("/consent")
        self.requests.append((request.method, path, body))
        if self.down:
            return httpx.Response(503, json={"error": "down"})
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return httpx.Response(401, json={"error": "no key"})
        parts = [p for p in path.split("/") if p]
        if request.method == "POST" and parts == ["grants"]:
            assert body is not None
            pin = body.get("pin")
            if "pin" in body and not isinstance(pin, str):
                return httpx.Response(400, json={"error": "pin must be a string when given"})
            grant_id = "g-" + secrets.token_hex(6)
            digits = f"{secrets.randbelow(10**8):08d}"
            self.grants[grant_id] = {
                "grant_id": grant_id, "patient_id": body["patient_id"], "expires": body["expires"],
                "exams": body["exams"], "pin_set": isinstance(pin, str), "pin": pin, "revoked": False,
            }
            public = {k: v for k, v in self.grants[grant_id].items() if k != "pin"}
            return httpx.Response(
                201, json={"grant": public, "access_code": digits, "access_code_display": f"{digits[:4]}-{digits[4:]}"}
            )
        if len(parts) >= 2 and parts[0] == "grants":
            grant = self.grants.get(parts[1])
            if grant is None:
                return httpx.Response(404, json={"error": "no such grant"})
            if request.method == "POST" and parts[2:] == ["pin"]:
                assert body is not None
                grant["pin"], grant["pin_set"] = body["pin"], True
                return httpx.Response(204)
            if request.method == "POST" and parts[2:] == ["revoke"]:
                if grant["revoked"]:
                    return httpx.Response(409, json={"error": "revoked already"})
                grant["revoked"] = True
                return httpx.Response(200, json={"revoked": 1})
            if request.method == "GET" and len(parts) == 2:
                return httpx.Response(200, json={"grant": {k: v for k, v in grant.items() if k != "pin"}})
        return httpx.Response(404, json={"error": "not here"})

    def client(self) -> GrantClient:
        return GrantClient("http://registry.test/consent", API_KEY, transport=httpx.MockTransport(self.handler))


@dataclass
class EdgeSite:
    """An Edge Server's index and store in a temporary directory, with staff and studies."""

    settings: SourceSettings
    engine: Engine
    store: DicomStore
    jobs: JobStore
    staff: StaffDirectory

    def study(self, **spec: Any) -> StudySpec:
        made = StudySpec(**spec)
        for ds in make_study(made):
            self.store.store_bytes(part10_bytes(ds))
        return made

    def failed_job(self, spec: StudySpec, error: str = "repository refused: XDSRepositoryError") -> int:
        job = self.jobs.create(
            patient_id=spec.patient_id, issuer=spec.issuer, study_uid=spec.study_uid, accession=spec.accession,
            policy=ReleasePolicy.IMMEDIATELY,
        )
        return self.jobs.fail(job.id, error).id


@contextmanager
def edge_site(tmp_path: Path, *, db_url: str | None = None, **settings: Any) -> Iterator[EdgeSite]:
    data = tmp_path / "edge"
    data.mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "data_dir": data, "db": db_url or f"sqlite:///{data / 'imaging.sqlite'}", "fsync": False,
        "grant_api_key": API_KEY, "affinity_domain_oid": AFFINITY, "audit_log": data / "audit.jsonl",
        "portal_url": "https://portal.example.org/",
    }
    values.update(settings)
    config = SourceSettings(**values)
    engine = make_engine(config.database_url())
    upgrade(engine)
    store = DicomStore(config.store_dir(), engine, fsync=False)
    staff = StaffDirectory(engine, params=FAST)
    staff.add("admin", ADMIN_PASSWORD, role=StaffRole.ADMIN)
    staff.add("clerk", USER_PASSWORD, role=StaffRole.USER)
    try:
        yield EdgeSite(config, engine, store, JobStore(engine), staff)
    finally:
        engine.dispose()


def console_app(site: EdgeSite, *, grant_client: GrantClient | None, **options: Any) -> Starlette:
    """The console mounted at /console, as the composition root mounts it."""
    app = build_console_app(site.settings, store=site.store, grant_client=grant_client, password_params=FAST, **options)
    return Starlette(routes=[Mount("/console", app)])


class StaffBrowser:
    """A TestClient that remembers the last page's CSRF token, as a browser's form would."""

    def __init__(self, app: Starlette, base_url: str = "http://edge.test") -> None:
        self.http = TestClient(app, base_url=base_url, follow_redirects=True)
        self.csrf = ""

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.get("/console" + path, **kwargs)
        self._remember(response)
        return response

    def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: str | None = None, **kwargs: Any) -> httpx.Response:
        body = dict(data or {})
        body.setdefault("csrf_token", self.csrf if csrf is None else csrf)
        response = self.http.post("/console" + path, data=body, **kwargs)
        self._remember(response)
        return response

    def _remember(self, response: httpx.Response) -> None:
        found = CSRF.search(response.text) if response.headers.get("content-type", "").startswith("text/html") else None
        if found:
            self.csrf = found.group(1)

    def sign_in(self, username: str, password: str) -> httpx.Response:
        self.get("/login")
        return self.post("/login", {"username": username, "password": password})


@contextmanager
def live_console(app: Starlette) -> Iterator[str]:
    """The console under uvicorn on a free loopback port; yields its base URL (…/console)."""
    with ServerThread(app) as server:
        yield server.url + "/console"
