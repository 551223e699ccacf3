"""The patient portal's views, through the Starlette test client, mounted at /portal as the
composition root mounts it, against an in-memory affinity domain (tests/support/portal.py)."""

from __future__ import annotations

import base64
import io
import logging
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from consumer.web import PortalSettings, build_portal_app
from consumer.web.state import Portal
from tests.support.portal import FakeDomain, FakeExam, FakeGrant, secret_free

CT = "1.2.826.0.1.3680043.8.498.101"
MR = "1.2.826.0.1.3680043.8.498.102"
LATER = "1.2.826.0.1.3680043.8.498.103"


class World:
    def __init__(
        self, tmp_path: Path, *, https: bool = False, token_lifetime: timedelta = timedelta(minutes=5), domain: FakeDomain | None = None
    ) -> None:
        self.domain = domain or FakeDomain(token_lifetime=token_lifetime)
        self.grant = self.domain.enrol(
            [
                FakeExam(CT, "CT chest with contrast", "20260301093000", "CT", body_part="CHEST"),
                FakeExam(MR, "MR brain", "20260210", "MR", body_part="HEAD", report=None),
                FakeExam(LATER, "CT abdomen", "20260320", "CT", released=False,
                         release_time=datetime(2026, 12, 24, 10, 0, tzinfo=UTC)),
            ]  # fmt: skip
        )
        self.settings = PortalSettings(
            registry_url="http://registry.test/registry",
            repository_url="http://registry.test/repository",
            cache_dir=tmp_path / "cache",
        )
        self.app = build_portal_app(self.settings, backend=self.domain)
        self.portal: Portal = self.app.state.portal
        outer = Starlette(routes=[Mount("/portal", app=self.app)])
        scheme = "https" if https else "http"
        self.client = TestClient(outer, base_url=f"{scheme}://portal.test")

    def csrf(self, path: str = "/portal/signin") -> str:
        page = self.client.get(path)
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert match, page.text
        return match.group(1)

    def sign_in(self, grant: FakeGrant | None = None, *, pin: str | None = None, code: str | None = None):  # type: ignore[no-untyped-def]
        grant = grant or self.grant
        token = self.csrf()
        return self.client.post(
            "/portal/signin",
            data={"csrf_token": token, "code": code or grant.code, "pin": pin if pin is not None else (grant.pin or "")},
            follow_redirects=False,
        )

    def signed_in(self) -> str:
        response = self.sign_in()
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/portal/jacket"
        page = self.client.get("/portal/jacket")
        assert page.status_code == 200
        return page.text


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    try:
        yield w
    finally:
        w.portal.close()


def _csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


# -- sign in ---------------------------------------------------------------------------------------
def test_sign_in_page_is_accessible_and_protected(world: World) -> None:
    page = world.client.get("/portal/")
    assert page.status_code == 200 and str(page.url).endswith("/portal/signin")
    html = page.text
    for field in ("code", "pin"):
        assert re.search(rf'<label for="{field}">', html) and f'id="{field}"' in html
    assert '<html lang="en">' in html and '<main id="main"' in html
    assert "/portal/static/portal.css" in html
    assert "<script>" not in html and "style=" not in html  # the CSP forbids inline code
    headers = page.headers
    assert headers["cache-control"] == "no-store" and headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in headers["content-security-policy"]
    cookie = headers["set-cookie"].lower()
    assert "portal_signin=" in cookie and "httponly" in cookie and "path=/portal/" in cookie
    css = world.client.get("/portal/static/portal.css")
    assert css.status_code == 200 and "@media" in css.text


def test_sign_in_needs_the_forms_csrf_token(world: World) -> None:
    world.csrf()
    g = world.grant
    missing = world.client.post("/portal/signin", data={"code": g.code, "pin": g.pin})
    assert missing.status_code == 403 and "expired" in missing.text
    forged = world.client.post("/portal/signin", data={"csrf_token": "x" * 43, "code": g.code, "pin": g.pin})
    assert forged.status_code == 403
    token = world.csrf()
    foreign = world.client.post(
        "/portal/signin", data={"csrf_token": token, "code": g.code, "pin": g.pin}, headers={"Origin": "http://evil.test"}
    )
    assert foreign.status_code == 403
    assert "sign_in" not in world.domain.calls  # none of them reached the registry


def test_refusals_are_shown_without_echoing_code_or_pin(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    g = world.grant
    typo = g.code[:-1] + str((int(g.code[-1]) + 1) % 10)
    mistyped = world.sign_in(code=typo)
    assert mistyped.status_code == 400 and "check digit" in mistyped.text
    wrong = world.sign_in(pin="97531")
    assert wrong.status_code == 401 and "not correct" in wrong.text
    for response in (mistyped, wrong):
        assert secret_free(response.text, g.code, typo, "97531", g.code[:4] + "-" + g.code[4:])
        assert 'value="' + g.code not in response.text
    for _ in range(3):
        assert world.sign_in(pin="97531").status_code == 401
    locked = world.sign_in(pin="97531")
    assert locked.status_code == 423 and "locked" in locked.text and "1 minute" in locked.text
    still = world.sign_in()  # the right PIN now: still locked
    assert still.status_code == 423
    assert secret_free(caplog.text, g.code, "97531", g.pin or "")


def test_sign_in_starts_a_fresh_session_holding_the_assertion_not_the_pin(world: World) -> None:
    pre_cookie = world.client.get("/portal/signin").cookies.get("portal_signin") or world.client.cookies.get("portal_signin")
    response = world.sign_in()
    assert response.status_code == 303
    set_cookie = " ".join(response.headers.get_list("set-cookie")).lower()
    assert "portal_session=" in set_cookie and "httponly" in set_cookie and "samesite=lax" in set_cookie
    assert "secure" not in set_cookie and "path=/portal/" in set_cookie
    sid = world.client.cookies.get("portal_session")
    assert sid and sid != pre_cookie
    assert len(world.portal.pre_sessions) == 0
    session = world.portal.sessions.get(sid)
    assert session is not None
    stored = repr(session.data)
    assert b"Assertion" in session.data["assertion"]
    assert secret_free(stored, world.grant.pin or "", world.grant.code)


def test_secure_cookie_over_https(tmp_path: Path) -> None:
    w = World(tmp_path, https=True)
    try:
        response = w.sign_in()
        assert response.status_code == 303
        assert "secure" in " ".join(response.headers.get_list("set-cookie")).lower()
    finally:
        w.portal.close()


def test_choose_pin_when_the_grant_has_none(world: World) -> None:
    fresh = world.domain.enrol([FakeExam(CT, "CT chest", "20260301", "CT")], pin=None)
    first = world.sign_in(fresh, pin="anything")
    assert first.status_code == 303 and first.headers["location"] == "/portal/pin"
    page = world.client.get("/portal/pin")
    assert page.status_code == 200 and 'for="pin_again"' in page.text
    assert secret_free(page.text, fresh.code)
    token = _csrf_of(page.text)
    mismatch = world.client.post("/portal/pin", data={"csrf_token": token, "pin": "135790", "pin_again": "135791"})
    assert mismatch.status_code == 400 and "not the same" in mismatch.text
    weak = world.client.post("/portal/pin", data={"csrf_token": token, "pin": "12", "pin_again": "12"})
    assert weak.status_code == 400 and "4 to 12 digits" in weak.text
    assert fresh.pin is None
    done = world.client.post(
        "/portal/pin", data={"csrf_token": token, "pin": "135790", "pin_again": "135790"}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"] == "/portal/jacket"
    assert fresh.pin == "135790"
    assert "CT chest" in world.client.get("/portal/jacket").text
    assert world.client.get("/portal/pin", follow_redirects=False).status_code == 303  # nothing pending now


def test_sign_out_ends_the_session_and_deletes_its_cache(world: World) -> None:
    html = world.signed_in()
    world.client.get(f"/portal/exam/{CT}")
    session_dirs = [p for p in world.portal.cache.root.iterdir()]
    assert len(session_dirs) == 1 and any(session_dirs[0].rglob("*.dcm"))
    no_token = world.client.post("/portal/signout", data={})
    assert no_token.status_code == 403
    out = world.client.post("/portal/signout", data={"csrf_token": _csrf_of(html)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"].startswith("/portal/signin")
    assert not list(world.portal.cache.root.iterdir())
    assert len(world.portal.sessions) == 0
    again = world.client.get("/portal/jacket", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/portal/signin"


# -- the jacket ------------------------------------------------------------------------------------
def test_jacket_lists_released_exams_reports_and_pending_ones(world: World) -> None:
    html = world.signed_in()
    assert "CT chest with contrast" in html and "MR brain" in html
    assert "2026-03-01" in html and "2026-02-10" in html
    assert "IMPRESSION: no acute disease." in html  # the text/plain report, shown
    assert "No report yet" in html  # the MR has none
    assert "Available on 2026-12-24 10:00 UTC" in html
    assert f"/portal/exam/{CT}" in html and f"/portal/exam/{LATER}" not in html
    # Body part is blank until the images are fetched, then read from the DICOM.
    assert "CHEST" not in html
    world.client.get(f"/portal/exam/{CT}")
    assert "CHEST" in world.client.get("/portal/jacket").text


def test_spanish_pages_and_a_safe_language_switch(world: World) -> None:
    world.signed_in()
    switch = world.client.get("/portal/language/es", params={"next": "/portal/jacket"}, follow_redirects=False)
    assert switch.status_code == 303 and switch.headers["location"] == "/portal/jacket"
    assert "lang=es" in switch.headers["set-cookie"]
    html = world.client.get("/portal/jacket").text
    assert '<html lang="es">' in html and "Mis estudios" in html and "Disponible el 2026-12-24" in html
    away = world.client.get("/portal/language/en", params={"next": "https://evil.test/"}, follow_redirects=False)
    assert away.headers["location"] == "/portal/"
    sneaky = world.client.get("/portal/language/en", params={"next": "//evil.test/portal/"}, follow_redirects=False)
    assert sneaky.headers["location"] == "/portal/"


# -- the exam viewer -------------------------------------------------------------------------------
def test_exam_page_thumbnails_viewer_and_window_presets(world: World) -> None:
    world.signed_in()
    page = world.client.get(f"/portal/exam/{CT}")
    assert page.status_code == 200
    html = page.text
    thumbs = re.findall(r'src="(/portal/exam/[^"]+/thumbnail\.png)"', html)
    assert len(thumbs) == 2
    for url in thumbs:
        image = world.client.get(url)
        assert image.headers["content-type"] == "image/png"
        assert max(Image.open(io.BytesIO(image.content)).size) <= 160
    for preset in ("soft", "lung", "bone", "brain", "default"):
        assert f'value="{preset}"' in html
    assert 'type="range"' in html and 'max="2"' in html and 'for="slice"' in html and 'for="window"' in html
    lung = world.client.get(f"/portal/exam/{CT}/series/1/slice/0.png", params={"window": "lung"})
    bone = world.client.get(f"/portal/exam/{CT}/series/1/slice/0.png", params={"window": "bone"})
    assert lung.status_code == bone.status_code == 200 and lung.content != bone.content
    assert world.client.get(f"/portal/exam/{CT}/series/1/slice/3.png").status_code == 404
    assert world.client.get(f"/portal/exam/{CT}/series/2/thumbnail.png").status_code == 404
    stepped = world.client.get(f"/portal/exam/{CT}", params={"series": 1, "slice": 2, "window": "lung"}).text
    assert "Image 3 of 3" in stepped and 'value="lung" selected' in stepped
    assert world.domain.fetched == [CT]  # fetched once, then served from the session's cache
    mr = world.client.get(f"/portal/exam/{MR}").text
    assert 'value="lung"' not in mr  # HU presets only for CT


def test_only_studies_in_the_tokens_scope_are_fetched(world: World) -> None:
    world.signed_in()
    for study in (LATER, "1.2.3.4.999", "..%2F..%2Fetc"):
        response = world.client.get(f"/portal/exam/{study}")
        assert response.status_code == 404
        assert world.client.get(f"/portal/exam/{study}/download.zip").status_code == 404
    assert world.domain.fetched == []
    assert world.client.get(f"/portal/exam/{CT}/series/0/thumbnail.png").status_code == 404  # not opened yet


def test_download_is_a_streamed_zip_of_the_dicom_files(world: World) -> None:
    world.signed_in()
    response = world.client.get(f"/portal/exam/{CT}/download.zip")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert "content-length" not in response.headers  # streamed, not built first
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = archive.namelist()
        assert len(names) == 6 and all(n.endswith(".dcm") for n in names)
        assert len({n.split("/")[0] for n in names}) == 2
        first = archive.read(names[0])
    assert first[128:132] == b"DICM"
    cached = {p.name: p.read_bytes() for p in world.portal.cache.root.rglob("*.dcm")}
    assert cached[names[0].split("/")[-1]] == first


# -- shares ----------------------------------------------------------------------------------------
def _create_share(world: World, html: str, studies: list[str], label: str = "Dr. Lee, cardiology") -> str:
    expires = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    form = world.client.get("/portal/shares/new", params={"study": studies})
    assert form.status_code == 200
    for study in studies:
        assert re.search(rf'value="{re.escape(study)}" checked', form.text)
    created = world.client.post(
        "/portal/shares",
        data={"csrf_token": _csrf_of(form.text), "study": studies, "label": label, "expires": expires},
    )
    assert created.status_code == 200, created.text
    return created.text


def test_create_a_share_shows_code_and_pin_once_with_a_pdf_sheet(world: World) -> None:
    html = world.signed_in()
    created = _create_share(world, html, [CT])
    share = next(g for g in world.domain.grants.values() if g.parent == world.grant.grant_id)
    assert share.label == "Dr. Lee, cardiology" and [e.study_uid for e in share.exams] == [CT]
    display = f"{share.code[:4]}-{share.code[4:]}"
    assert f'id="share-code">{display}<' in created and f'id="share-pin">{share.pin}<' in created
    match = re.search(r'href="data:application/pdf;base64,([^"]+)"', created)
    assert match
    pdf = base64.b64decode(match.group(1))
    assert pdf.startswith(b"%PDF-") and display.encode() in pdf and (share.pin or "").encode() in pdf
    listing = world.client.get("/portal/shares").text
    assert "Dr. Lee, cardiology" in listing and "Not used yet" in listing
    assert secret_free(listing, share.code, display, share.pin or "")


def test_share_form_refuses_bad_choices(world: World) -> None:
    world.signed_in()
    form = world.client.get("/portal/shares/new")
    token = _csrf_of(form.text)
    future = (datetime.now(UTC) + timedelta(days=5)).date().isoformat()
    cases = [
        ({"label": "Dr. Lee", "expires": future}, "at least one"),
        ({"study": [CT], "label": "", "expires": future}, "who the share is for"),
        ({"study": [CT], "label": "Dr. Lee", "expires": "2001-01-01"}, "in the future"),
        ({"study": [LATER], "label": "Dr. Lee", "expires": future}, "at least one"),
    ]
    for data, message in cases:
        response = world.client.post("/portal/shares", data={"csrf_token": token, **data})
        assert response.status_code == 400 and message in response.text, data
    assert "create_share" not in world.domain.calls
    assert world.client.post("/portal/shares", data={"study": [CT], "label": "x", "expires": future}).status_code == 403


def test_share_recipient_sees_only_the_shared_exams_until_revoked(world: World, tmp_path: Path) -> None:
    html = world.signed_in()
    _create_share(world, html, [MR])
    share = next(g for g in world.domain.grants.values() if g.parent == world.grant.grant_id)
    other = World(tmp_path / "recipient", domain=world.domain)
    try:
        seen = other.sign_in(share)
        assert seen.status_code == 303
        jacket = other.client.get("/portal/jacket").text
        assert "MR brain" in jacket and "CT chest with contrast" not in jacket and "CT abdomen" not in jacket
        assert "/portal/shares" not in jacket  # no shares menu for a recipient
        assert other.client.get("/portal/shares").status_code == 403
        assert other.client.get(f"/portal/exam/{CT}").status_code == 404
        # The patient revokes it: the recipient's session ends at its next request.
        listing = world.client.get("/portal/shares").text
        revoke = re.search(r'action="(/portal/shares/[^"]+/revoke)"', listing)
        assert revoke
        done = world.client.post(revoke.group(1), data={"csrf_token": _csrf_of(listing)}, follow_redirects=False)
        assert done.status_code == 303 and share.revoked
        assert "Revoked" in world.client.get("/portal/shares").text
        ended = other.client.get("/portal/jacket", follow_redirects=False)
        assert ended.status_code == 303 and ended.headers["location"] == "/portal/signin?m=ended"
        assert other.sign_in(share).status_code == 401
    finally:
        other.portal.close()


def test_extend_a_share(world: World) -> None:
    html = world.signed_in()
    _create_share(world, html, [CT])
    share = next(g for g in world.domain.grants.values() if g.parent == world.grant.grant_id)
    listing = world.client.get("/portal/shares").text
    action = re.search(r'action="(/portal/shares/[^"]+/extend)"', listing)
    assert action
    target = (datetime.now(UTC) + timedelta(days=40)).date()
    done = world.client.post(
        action.group(1), data={"csrf_token": _csrf_of(listing), "expires": target.isoformat()}, follow_redirects=False
    )
    assert done.status_code == 303
    assert share.expires.date() == target
    assert target.isoformat() in world.client.get("/portal/shares").text


# -- the token -------------------------------------------------------------------------------------
def test_token_is_refreshed_before_it_expires(tmp_path: Path) -> None:
    w = World(tmp_path, token_lifetime=timedelta(seconds=30))  # inside the 60 s margin
    try:
        w.signed_in()
        assert w.domain.calls.count("refresh") >= 1
        before = w.domain.calls.count("refresh")
        w.client.get("/portal/jacket")
        assert w.domain.calls.count("refresh") > before
        assert w.portal.refresh_due() == 1  # the background round refreshes it too
    finally:
        w.portal.close()


def test_revoked_grant_ends_the_session(world: World) -> None:
    world.signed_in()
    world.grant.revoked = True
    response = world.client.get("/portal/jacket", follow_redirects=False)
    # The fake accepts no call for a revoked grant: the session ends.
    assert response.status_code == 303 and response.headers["location"] == "/portal/signin?m=ended"
    assert "Your session has ended" in world.client.get("/portal/signin?m=ended").text
    assert len(world.portal.sessions) == 0
