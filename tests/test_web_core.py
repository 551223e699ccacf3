"""The shared web pieces: sessions, CSRF, security headers, catalogues."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from xds.web import Catalogue, CsrfError, SecurityHeaders, SessionCookie, SessionStore, check_csrf, pick_locale
from xds.web import template_environment


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_session_expires_when_idle_and_absolutely() -> None:
    clock = Clock()
    store = SessionStore(idle=60, absolute=300, clock=clock)
    session = store.create({"who": "p"})
    for _ in range(4):
        clock.now += 59
        assert store.get(session.sid) is session
    clock.now += 61
    assert store.get(session.sid) is None
    other = store.create()
    for _ in range(5):
        clock.now += 59
        assert store.get(other.sid) is other
    clock.now += 59  # 354 s after creation: past the absolute limit though never idle
    assert store.get(other.sid) is None


def test_store_is_bounded_and_ids_are_fresh() -> None:
    store = SessionStore(max_sessions=3)
    sessions = [store.create() for _ in range(5)]
    assert len(store) == 3
    assert store.get(sessions[0].sid) is None and store.get(sessions[4].sid) is sessions[4]
    assert len({s.sid for s in sessions}) == 5 and all(len(s.sid) >= 40 for s in sessions)
    assert store.drop_where(lambda s: s is sessions[3]) == 1
    assert store.get(sessions[3].sid) is None


def _app(store: SessionStore) -> Starlette:
    cookie = SessionCookie(name="sid", path="/")

    async def login(request: Request) -> PlainTextResponse:
        session = store.create()
        response = PlainTextResponse(session.csrf)
        cookie.set(response, request, session)
        return response

    async def post(request: Request) -> PlainTextResponse:
        form = await request.form()
        try:
            check_csrf(request, store.get(cookie.read(request)), form.get("csrf_token"))
        except CsrfError as exc:
            return PlainTextResponse(str(exc), status_code=403)
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/login", login, methods=["POST"]), Route("/do", post, methods=["POST"])])
    app.add_middleware(SecurityHeaders)
    return app


def test_cookie_attributes_csrf_and_headers() -> None:
    client = TestClient(_app(SessionStore()), base_url="http://portal.test")
    response = client.post("/login")
    set_cookie = response.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=lax" in set_cookie and "secure" not in set_cookie
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    # "no-referrer" would make browsers post forms with Origin: null, which check_csrf refuses.
    assert response.headers["referrer-policy"] == "same-origin"
    token = response.text
    assert client.post("/do", data={"csrf_token": token}).text == "ok"
    assert client.post("/do", data={"csrf_token": token[:-1] + "x"}).status_code == 403
    assert client.post("/do", data={}).status_code == 403
    evil = client.post("/do", data={"csrf_token": token}, headers={"Origin": "http://evil.test"})
    assert evil.status_code == 403 and "another site" in evil.text
    same = client.post("/do", data={"csrf_token": token}, headers={"Origin": "http://portal.test"})
    assert same.text == "ok"


def test_secure_cookie_over_https() -> None:
    client = TestClient(_app(SessionStore()), base_url="https://portal.test")
    assert "secure" in client.post("/login").headers["set-cookie"].lower()


def test_check_csrf_without_session() -> None:
    scope = {"type": "http", "method": "POST", "headers": [], "path": "/", "query_string": b""}
    with pytest.raises(CsrfError):
        check_csrf(Request(scope), None, "anything")


def test_locale_choice_and_catalogue() -> None:
    def request(headers: dict[str, str]) -> Request:
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        return Request({"type": "http", "method": "GET", "headers": raw, "path": "/", "query_string": b""})

    locales = ("en", "es")
    assert pick_locale(request({}), locales) == "en"
    assert pick_locale(request({"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"}), locales) == "es"
    assert pick_locale(request({"Accept-Language": "fr, en;q=0.2, es;q=0.8"}), locales) == "es"
    assert pick_locale(request({"Accept-Language": "es", "Cookie": "lang=en"}), locales) == "en"
    catalogue = Catalogue({"en": {"hi": "Hello {name}", "only": "English"}, "es": {"hi": "Hola {name}"}})
    _ = catalogue.gettext("es")
    assert _("hi", name="Ana") == "Hola Ana" and _("only") == "English" and _("missing") == "missing"


def test_templates_escape(tmp_path: Path) -> None:
    (tmp_path / "t.html").write_text("<p>{{ value }}</p>")
    env = template_environment(tmp_path)
    assert env.get_template("t.html").render(value="<script>") == "<p>&lt;script&gt;</p>"
