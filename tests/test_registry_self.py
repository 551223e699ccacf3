"""The patient's self-service API on the registry (DESIGN §4 "Shares for the care team"), over the
Starlette test client on SQLite and PostgreSQL: authentication by the registry's own assertion
(and every way it can be refused), the grant and its exams with the registered manifests'
metadata, renewal, PIN-pending grants and their activation (with lock-out), shares made, listed,
extended and revoked, "last used" from the audit, and migration 0003 on both databases."""

from __future__ import annotations

import base64
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, inspect, text
from starlette.testclient import TestClient

from registry.app import build_registry_app
from registry.config import RegistrySettings
from registry.gate import PRESENT_PURPOSE
from registry.grants import GrantStore
from registry.store.db import MIGRATIONS, make_engine
from tests.support import factory as f
from tests.support.registry import Clock, RegistryUnderTest
from xds.db import alembic_config
from xds.metadata.model import Code, Submission
from xds.security.accesscode import check_access_code
from xds.security.keys import SigningMaterial, generate_signing_material
from xds.security.saml import GrantScope, issue_assertion, verify_assertion
from xds.vocabulary import DICOM_DCM_OID, NS_SAML2
from xds.xml import parse_xml, to_bytes

API_KEY = "self-service-test-key-0123456789"
AUDIENCE = "urn:test:self-service"
LIFETIME_S = 300
PIN = "246813"
PORTAL = "192.0.2.10"
STUDY_RELEASED, STUDY_LATER, STUDY_UNBUILT, STUDY_UNREGISTERED = "1.2.826.7.1", "1.2.826.7.2", "1.2.826.7.3", "1.2.826.7.4"


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _when(text_value: str) -> datetime:
    moment = datetime.fromisoformat(text_value)
    assert moment.tzinfo is not None, text_value
    return moment


@dataclass
class Manifests:
    pid: str
    released: str
    released_report: str
    later: str


@dataclass
class Portal:
    """The registry app, a clock, and clients from chosen addresses."""

    app: Any
    clock: Clock
    settings: RegistrySettings
    engine: Engine
    manifests: Manifests

    def at(self, address: str = PORTAL) -> TestClient:
        return TestClient(self.app, client=(address, 50000))

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.at("192.0.2.200").request(method, path, headers={"authorization": f"Bearer {API_KEY}"}, **kwargs)

    def grant(self, *, pin: str | None = PIN, omit_pin: bool = False, days: int = 90, pid: str | None = None) -> tuple[str, str]:
        """A grant over the four test exams: (access code, grant id)."""
        now, m = self.clock.now, self.manifests
        body: dict[str, Any] = {
            "patient_id": pid or m.pid,
            "expires": _iso(now + timedelta(days=days)),
            "exams": [
                {"study_uid": STUDY_RELEASED, "manifest_unique_id": m.released, "report_unique_ids": [m.released_report],
                 "release_time": _iso(now - timedelta(hours=1))},
                {"study_uid": STUDY_LATER, "manifest_unique_id": m.later, "release_time": _iso(now + timedelta(hours=72))},
                {"study_uid": STUDY_UNBUILT},
                {"study_uid": STUDY_UNREGISTERED, "manifest_unique_id": "2.25.4242", "release_time": _iso(now - timedelta(days=1))},
            ],
        }
        if not omit_pin:
            body["pin"] = pin
        created = self.api("POST", "/consent/grants", json=body)
        assert created.status_code == 201, created.text
        return created.json()["access_code"], created.json()["grant"]["grant_id"]

    def token(self, code: str, pin: str, *, address: str = PORTAL) -> Any:
        return self.at(address).post("/consent/token", data={"code": code, "pin": pin})

    def sign_in(self, code: str, pin: str = PIN) -> bytes:
        answer = self.token(code, pin)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("application/samlassertion+xml")
        return answer.content

    def self_call(self, method: str, path: str, token: bytes | None, *, address: str = PORTAL, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["authorization"] = "SAML " + base64.b64encode(token).decode("ascii")
        return self.at(address).request(method, "/consent/self" + path, headers=headers, **kwargs)

    def signing(self) -> SigningMaterial:
        keys = self.settings.data_dir / "keys"
        return SigningMaterial(
            key_pem=(keys / "token-signing.key.pem").read_bytes(), cert_pem=(keys / "token-signing.cert.pem").read_bytes()
        )

    def audit(self, grant_id: str) -> list[tuple[str, str]]:
        return [(r.action, r.outcome) for r in GrantStore(self.engine).audit_records(grant_id=grant_id)]


def _manifest_submission(pid: str) -> Submission:
    sub = f.submission(pid, entries=2)
    kos = sub.document_entries[0]
    kos.mime_type = "application/dicom"
    kos.format_code = f.FORMAT_KOS
    kos.class_code = f.CLASS_IMAGES
    kos.title = "CT chest with contrast"
    kos.service_start_time = "20250227093000"
    kos.event_codes = [
        Code("CT", DICOM_DCM_OID, "Computed Tomography"),
        Code("SR", DICOM_DCM_OID, "SR Document"),
        Code("T-D3000", "2.16.840.1.113883.6.96", "Chest"),  # an anatomic code, not a modality
    ]
    return sub


@pytest.fixture
def portal(registry_db_url: str, tmp_path: Path) -> Iterator[Portal]:
    clock = Clock()
    engine = make_engine(registry_db_url)
    registry = RegistryUnderTest(engine)
    pid = registry.feed(f.patient_id())
    released, later = _manifest_submission(pid), f.submission(pid, entries=1)
    later.document_entries[0].title = "MR knee"
    later.document_entries[0].service_start_time = None
    for sub in (released, later):
        registry.ok(sub)
    manifests = Manifests(
        pid=pid,
        released=released.document_entries[0].unique_id,
        released_report=released.document_entries[1].unique_id,
        later=later.document_entries[0].unique_id,
    )
    settings = RegistrySettings(
        db=registry_db_url, data_dir=tmp_path, mllp_port=0, access_policy="consent", grant_api_key=API_KEY,
        token_lifetime_s=LIFETIME_S, token_audience=AUDIENCE,
    )
    app = build_registry_app(settings, clock=clock)
    with TestClient(app):  # runs the lifespan, which disposes the app's engine at the end
        yield Portal(app=app, clock=clock, settings=settings, engine=engine, manifests=manifests)
    engine.dispose()


# -- the grant and its exams -----------------------------------------------------------------------
def test_the_signed_in_grant_and_every_exam(portal: Portal) -> None:
    code, gid = portal.grant()
    token = portal.sign_in(code)
    answer = portal.self_call("GET", "", token)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["grant_id"] == gid and body["patient_id"] == portal.manifests.pid
    assert body["is_share"] is False and body["label"] is None
    assert _when(body["expires"]) == portal.clock.now + timedelta(days=90)
    assert _when(body["created"]) == portal.clock.now
    exams = {e["study_uid"]: e for e in body["exams"]}
    assert list(exams) == sorted([STUDY_RELEASED, STUDY_LATER, STUDY_UNBUILT, STUDY_UNREGISTERED])
    released = exams[STUDY_RELEASED]
    assert released == {
        "study_uid": STUDY_RELEASED,
        "manifest_unique_id": portal.manifests.released,
        "report_unique_ids": [portal.manifests.released_report],
        "release_time": released["release_time"],
        "released": True,
        "title": "CT chest with contrast",
        "date": "20250227093000",
        "modalities": ["CT", "SR"],
    }
    assert _when(released["release_time"]) == portal.clock.now - timedelta(hours=1)
    later = exams[STUDY_LATER]
    assert later["released"] is False and _when(later["release_time"]) == portal.clock.now + timedelta(hours=72)
    # No service start time: the creation time, as a consumer lists exams.
    assert later["title"] == "MR knee" and later["date"] == "20240102030405" and later["modalities"] == []
    assert exams[STUDY_UNBUILT] == {
        "study_uid": STUDY_UNBUILT, "manifest_unique_id": None, "report_unique_ids": [], "release_time": None,
        "released": False, "title": "", "date": "", "modalities": [],
    }
    unregistered = exams[STUDY_UNREGISTERED]
    assert unregistered["released"] is True and (unregistered["title"], unregistered["date"], unregistered["modalities"]) == ("", "", [])
    # 72 hours on, the later exam is released too (a fresh sign-in: the first assertion expired).
    portal.clock.advance(hours=72)
    assert portal.self_call("GET", "", token).status_code == 401
    again = {e["study_uid"]: e for e in portal.self_call("GET", "", portal.sign_in(code)).json()["exams"]}
    assert again[STUDY_LATER]["released"] is True and again[STUDY_UNBUILT]["released"] is False


def test_refused_tokens_are_401(portal: Portal) -> None:
    code, gid = portal.grant()
    token = portal.sign_in(code)
    own = portal.signing()
    scope = GrantScope(patient_id=portal.manifests.pid)

    def assertion(*, subject: str = gid, audience: str = AUDIENCE, material: SigningMaterial = own, now: datetime | None = None) -> bytes:
        return issue_assertion(
            issuer="urn:test", subject=subject, audience=audience, scope=scope, now=now or portal.clock.now,
            lifetime=timedelta(seconds=LIFETIME_S), key_pem=material.key_pem, cert_pem=material.cert_pem,
        )

    def refused(headers: dict[str, str] | None = None, raw: bytes | None = None) -> str:
        answer = portal.self_call("GET", "", raw, headers=headers or {})
        assert answer.status_code == 401, answer.text
        assert answer.headers["www-authenticate"] == "SAML"
        return answer.json()["error"]

    assert portal.self_call("GET", "", assertion()).status_code == 200  # the baseline is accepted
    assert "Authorization: SAML" in refused()
    assert "Authorization: SAML" in refused({"authorization": "Bearer " + API_KEY})
    assert "Authorization: SAML" in refused({"authorization": "SAML"})
    assert "base64" in refused({"authorization": "SAML not*base64!"})
    assert "base64" in refused(raw=b"this is not XML")
    assert "expected a SAML 2.0 Assertion" in refused(raw=b"<a/>")
    # Tampered: the subject changed to another grant after signing.
    _other_code, other_gid = portal.grant()
    document = parse_xml(token)
    name_id = document.find(f".//{{{NS_SAML2}}}NameID")
    assert name_id is not None and name_id.text == gid
    name_id.text = other_gid
    assert "signature does not verify" in refused(raw=to_bytes(document, xml_declaration=True))
    # Signed by another key, for the right audience.
    stranger = generate_signing_material(common_name="someone else")
    assert "signature does not verify" in refused(raw=assertion(material=stranger))
    assert "another audience" in refused(raw=assertion(audience="urn:test:elsewhere"))
    assert "not known" in refused(raw=assertion(subject=str(uuid.uuid4())))
    assert "valid from" in refused(raw=assertion(now=portal.clock.now + timedelta(hours=1)))
    # The grant is revoked: its still-valid assertion is refused.
    assert portal.api("POST", f"/consent/grants/{other_gid}/revoke").json() == {"revoked": 1}
    assert "revoked or expired" in refused(raw=assertion(subject=other_gid))
    # Expired assertion; then a fresh assertion of an expired grant.
    portal.clock.advance(seconds=LIFETIME_S + 61)
    assert "expired" in refused(raw=token)
    portal.clock.advance(days=91)
    assert "revoked or expired" in refused(raw=assertion())


def test_fresh_assertions_keep_a_session_going(portal: Portal) -> None:
    code, gid = portal.grant()
    first = portal.sign_in(code)
    portal.clock.advance(seconds=200)
    renewed = portal.self_call("POST", "/token", first)
    assert renewed.status_code == 200, renewed.text
    assert renewed.headers["content-type"].startswith("application/samlassertion+xml")
    assert renewed.headers["cache-control"] == "no-store"
    verified = verify_assertion(
        parse_xml(renewed.content), trusted_cert=portal.signing().cert_pem, audience=AUDIENCE, now=portal.clock.now
    )
    assert verified.grant_id == gid
    assert verified.scope.manifest_unique_ids == {portal.manifests.released, "2.25.4242"}
    assert verified.not_on_or_after == (portal.clock.now + timedelta(seconds=LIFETIME_S)).replace(microsecond=0)
    portal.clock.advance(seconds=200)  # the first has expired, the renewed one has not
    assert portal.self_call("GET", "", first).status_code == 401
    assert portal.self_call("GET", "", renewed.content).status_code == 200
    assert ("self-token", "success") in portal.audit(gid)


# -- PIN-pending grants ----------------------------------------------------------------------------
def test_activation_of_a_pin_pending_grant(portal: Portal) -> None:
    code, gid = portal.grant(omit_pin=True)
    code_null, gid_null = portal.grant(pin=None)
    shown = portal.api("GET", f"/consent/grants/{gid_null}").json()["grant"]
    assert shown["pin_pending"] is True
    # The token endpoint says "PIN pending" only for the right code.
    pending = portal.token(code, "000000")
    assert pending.status_code == 401 and pending.json()["pin_pending"] is True
    unknown = _other_valid_code(code, code_null)
    assert "pin_pending" not in portal.token(unknown, "000000").json()
    # Activation: malformed requests, then the first PIN.
    client = portal.at("192.0.2.31")
    assert client.post("/consent/self/activate", json={"code": code}).status_code == 400
    assert client.post("/consent/self/activate", content=b"code=1", headers={"content-type": "text/plain"}).status_code == 415
    mistyped = client.post("/consent/self/activate", json={"code": code[:7] + str((int(code[7]) + 1) % 10), "pin": PIN})
    assert mistyped.status_code == 400 and "check digit" in mistyped.json()["error"]
    weak = client.post("/consent/self/activate", json={"code": code, "pin": "12"})
    assert weak.status_code == 400 and weak.json()["error"].startswith("a numeric PIN")
    assert client.post("/consent/self/activate", json={"code": unknown, "pin": PIN}).status_code == 401
    done = client.post("/consent/self/activate", json={"code": code, "pin": PIN})
    assert done.status_code == 204 and done.content == b""
    again = client.post("/consent/self/activate", data={"code": code, "pin": "97531"})
    assert again.status_code == 409
    for answer in (mistyped, weak, again):
        assert code not in answer.text and PIN not in answer.text and "97531" not in answer.text
    assert portal.token(code, "97531").status_code == 401
    assert "pin_pending" not in portal.token(code, "97531").json()
    assert portal.self_call("GET", "", portal.sign_in(code)).json()["grant_id"] == gid
    assert portal.api("GET", f"/consent/grants/{gid}").json()["grant"]["pin_pending"] is False
    assert [r for r in portal.audit(gid) if r[0] == "activate"] == [("activate", "success"), ("activate", "pin-already-set")]
    assert ("token", "pin-pending") in portal.audit(gid)
    # The Edge Server may set the PIN instead (a keypad at enrolment).
    assert portal.api("POST", f"/consent/grants/{gid_null}/pin", json={"pin": "86420"}).status_code == 204
    assert portal.token(code_null, "86420").status_code == 200


def _other_valid_code(*taken: str) -> str:
    """An access code with a valid check digit that no grant of the test holds."""
    from xds.security.accesscode import damm_check_digit

    for n in range(1000000, 1000100):
        candidate = f"{n:07d}" + damm_check_digit(f"{n:07d}")
        if candidate not in taken:
            return check_access_code(candidate)
    raise AssertionError("no free code")


def test_failed_activations_lock_out(portal: Portal) -> None:
    code, _gid = portal.grant(omit_pin=True)
    unknown = _other_valid_code(code)
    client = portal.at("192.0.2.41")
    answers = [client.post("/consent/self/activate", json={"code": unknown, "pin": PIN}).status_code for _ in range(6)]
    assert answers == [401] * 5 + [423]
    locked = client.post("/consent/self/activate", json={"code": code, "pin": PIN})
    assert locked.status_code == 423 and int(locked.headers["retry-after"]) >= 1
    # The same throttle as the token endpoint: that address is locked there too.
    assert portal.token(code, PIN, address="192.0.2.41").status_code == 423
    # From elsewhere the patient activates; then five activations of a grant with a PIN lock too.
    assert portal.at("192.0.2.42").post("/consent/self/activate", json={"code": code, "pin": PIN}).status_code == 204
    prober = portal.at("192.0.2.43")
    answers = [prober.post("/consent/self/activate", json={"code": code, "pin": PIN}).status_code for _ in range(6)]
    assert answers == [409] * 5 + [423]
    portal.clock.advance(seconds=61)
    assert prober.post("/consent/self/activate", json={"code": code, "pin": PIN}).status_code == 409
    assert portal.token(code, PIN, address="192.0.2.44").status_code == 200  # the grant itself is not locked


# -- shares ----------------------------------------------------------------------------------------
def _new_share(portal: Portal, token: bytes, **changes: Any) -> Any:
    body = {"label": "Dr. Lee, cardiology", "study_uids": [STUDY_RELEASED],
            "expires": _iso(portal.clock.now + timedelta(days=7)), **changes}
    return portal.self_call("POST", "/shares", token, json=body)


def test_share_made_used_extended_and_revoked(portal: Portal, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    code, gid = portal.grant()
    token = portal.sign_in(code)
    assert portal.self_call("GET", "/shares", token).json() == {"shares": []}
    made = _new_share(portal, token)
    assert made.status_code == 201, made.text
    assert made.headers["cache-control"] == "no-store"
    body = made.json()
    share_code, share_pin = body["access_code"], body["pin"]
    assert check_access_code(share_code) == share_code
    assert body["access_code_display"] == f"{share_code[:4]}-{share_code[4:]}"
    assert re.fullmatch(r"\d{6}", share_pin)
    share = body["share"]
    sid = share["grant_id"]
    assert share == {
        "grant_id": sid, "label": "Dr. Lee, cardiology", "study_uids": [STUDY_RELEASED],
        "created": share["created"], "expires": share["expires"], "revoked": False, "last_used": None,
    }
    assert _when(share["expires"]) == portal.clock.now + timedelta(days=7)
    assert ("share", "success") in portal.audit(sid)
    listed = portal.self_call("GET", "/shares", token).json()["shares"]
    assert listed == [share] and share_code not in str(listed) and share_pin not in str(listed)

    # The recipient presents the share's code: exactly the shared exam; "last used" follows.
    portal.clock.advance(minutes=1)
    failed = portal.token(share_code, "999999" if share_pin != "999999" else "888888", address="192.0.2.77")
    assert failed.status_code == 401
    assert portal.self_call("GET", "/shares", token).json()["shares"][0]["last_used"] is None
    share_token = portal.token(share_code, share_pin, address="192.0.2.77")
    assert share_token.status_code == 200
    scope = verify_assertion(
        parse_xml(share_token.content), trusted_cert=portal.signing().cert_pem, audience=AUDIENCE, now=portal.clock.now
    ).scope
    assert scope.study_instance_uids == {STUDY_RELEASED} and scope.manifest_unique_ids == {portal.manifests.released}
    used_at = portal.clock.now
    assert _when(portal.self_call("GET", "/shares", token).json()["shares"][0]["last_used"]) == used_at
    # The share's own portal session is not a use of its code; a UsernameToken presentation is.
    portal.clock.advance(minutes=1)
    assert portal.self_call("POST", "/token", share_token.content).status_code == 200
    assert _when(portal.self_call("GET", "/shares", token).json()["shares"][0]["last_used"]) == used_at
    GrantStore(portal.engine, clock=portal.clock).present(share_code, share_pin, client_address="192.0.2.78", purpose=PRESENT_PURPOSE)
    assert _when(portal.self_call("GET", "/shares", token).json()["shares"][0]["last_used"]) == portal.clock.now

    # Extend: in the future and no later than the grant.
    extend = f"/shares/{sid}/extend"
    for bad in (
        {"expires": _iso(portal.clock.now + timedelta(days=91))},
        {"expires": _iso(portal.clock.now - timedelta(minutes=1))},
        {"expires": "next week"},
        {"expires": "2025-04-01T00:00:00"},
        {},
    ):
        answer = portal.self_call("POST", extend, token, json=bad)
        assert answer.status_code == 400, (bad, answer.text)
    extended = portal.self_call("POST", extend, token, json={"expires": _iso(portal.clock.now + timedelta(days=30))})
    assert extended.status_code == 200, extended.text
    assert _when(extended.json()["share"]["expires"]) == portal.clock.now + timedelta(days=30)
    assert extended.json()["share"]["last_used"] is not None
    assert ("extend", "success") in portal.audit(sid)

    # Revoke: the share's code stops working; the share stays listed as revoked.
    revoked = portal.self_call("POST", f"/shares/{sid}/revoke", token)
    assert revoked.status_code == 200 and revoked.json() == {"revoked": 1}
    assert portal.token(share_code, share_pin, address="192.0.2.79").status_code == 401
    assert portal.self_call("GET", "", share_token.content).status_code == 401
    assert portal.self_call("GET", "/shares", token).json()["shares"][0]["revoked"] is True
    assert portal.self_call("POST", f"/shares/{sid}/revoke", token).json() == {"revoked": 0}
    assert portal.self_call("POST", extend, token, json={"expires": _iso(portal.clock.now + timedelta(days=3))}).status_code == 409
    # Revoking the grant revokes its shares.
    second = _new_share(portal, token).json()
    assert portal.self_call("GET", "/shares", token).json()["shares"][0]["grant_id"] == second["share"]["grant_id"]
    assert portal.api("POST", f"/consent/grants/{gid}/revoke").json() == {"revoked": 2}
    assert portal.token(second["access_code"], second["pin"], address="192.0.2.80").status_code == 401
    # Nothing logged carries a code or a PIN.
    assert caplog.records
    for secret in (code, PIN, share_code, share_pin, second["access_code"], second["pin"]):
        assert secret not in caplog.text


def test_share_requests_are_checked(portal: Portal) -> None:
    code, _gid = portal.grant()
    token = portal.sign_in(code)
    now = portal.clock.now
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"label": ""}, 400, "label"),
        ({"label": "   "}, 400, "label"),
        ({"label": "x" * 121}, 400, "label"),
        ({"label": None}, 400, "label"),
        ({"study_uids": []}, 400, "study_uids"),
        ({"study_uids": STUDY_RELEASED}, 400, "study_uids"),
        ({"study_uids": [STUDY_RELEASED, STUDY_LATER]}, 400, STUDY_LATER),
        ({"study_uids": [STUDY_UNBUILT]}, 400, STUDY_UNBUILT),
        ({"study_uids": ["1.2.3.999"]}, 400, "1.2.3.999"),
        ({"expires": _iso(now + timedelta(days=90, seconds=1))}, 400, "after"),
        ({"expires": _iso(now - timedelta(seconds=1))}, 400, "future"),
        ({"expires": None}, 400, "expires"),
    ]
    for change, status, word in cases:
        answer = _new_share(portal, token, **change)
        assert answer.status_code == status, (change, answer.text)
        assert word in answer.json()["error"], (change, answer.json())
    assert portal.self_call("POST", "/shares", token, content=b"label=x", headers={"content-type": "text/plain"}).status_code == 415
    assert portal.self_call("POST", "/shares", token, content=b"[1]", headers={"content-type": "application/json"}).status_code == 400
    big = b'{"label": "' + b"x" * (1 << 20) + b'"}'
    assert portal.self_call("POST", "/shares", token, content=big, headers={"content-type": "application/json"}).status_code == 413
    assert portal.self_call("GET", "/shares", token).json() == {"shares": []}
    # At the limits: a 120-character label, the parent's own expiry, a study named twice.
    edge = _new_share(portal, token, label="y" * 120, study_uids=[STUDY_RELEASED, STUDY_UNREGISTERED, STUDY_RELEASED],
                      expires=_iso(now + timedelta(days=90)))
    assert edge.status_code == 201, edge.text
    assert edge.json()["share"]["study_uids"] == sorted([STUDY_RELEASED, STUDY_UNREGISTERED])


def test_a_share_cannot_manage_shares(portal: Portal) -> None:
    code, gid = portal.grant()
    token = portal.sign_in(code)
    made = _new_share(portal, token, label="Dr. Ng").json()
    share_token = portal.token(made["access_code"], made["pin"], address="192.0.2.90").content
    mine = portal.self_call("GET", "", share_token).json()
    assert mine["is_share"] is True and mine["label"] == "Dr. Ng" and mine["grant_id"] == made["share"]["grant_id"]
    assert [e["study_uid"] for e in mine["exams"]] == [STUDY_RELEASED] and mine["exams"][0]["title"] == "CT chest with contrast"
    sid = made["share"]["grant_id"]
    for method, path, body in (
        ("GET", "/shares", None),
        ("POST", "/shares", {"label": "x", "study_uids": [STUDY_RELEASED], "expires": _iso(portal.clock.now + timedelta(days=1))}),
        ("POST", f"/shares/{sid}/extend", {"expires": _iso(portal.clock.now + timedelta(days=1))}),
        ("POST", f"/shares/{sid}/revoke", None),
    ):
        answer = portal.self_call(method, path, share_token, json=body)
        assert answer.status_code == 403, (path, answer.text)
    assert len(portal.self_call("GET", "/shares", token).json()["shares"]) == 1
    assert portal.self_call("POST", "/token", share_token).status_code == 200
    assert gid not in str(mine)


def test_only_the_grants_own_shares(portal: Portal) -> None:
    code_a, _gid_a = portal.grant()
    code_b, _gid_b = portal.grant()
    token_a, token_b = portal.sign_in(code_a), portal.sign_in(code_b)
    theirs = _new_share(portal, token_b).json()["share"]["grant_id"]
    expires = {"expires": _iso(portal.clock.now + timedelta(days=2))}
    assert portal.self_call("POST", f"/shares/{theirs}/extend", token_a, json=expires).status_code == 404
    assert portal.self_call("POST", f"/shares/{theirs}/revoke", token_a).status_code == 404
    assert portal.self_call("POST", "/shares/no-such-share/revoke", token_a).status_code == 404
    assert portal.self_call("GET", "/shares", token_a).json() == {"shares": []}
    assert portal.self_call("GET", "/shares", token_b).json()["shares"][0]["revoked"] is False


# -- migration 0003 --------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind (PostgreSQL: a database of its own, dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.sqlite'}"
        return
    base = request.getfixturevalue("pg_database")  # skips when PostgreSQL is unreachable
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    name = f"xds_test_mig_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_migration_0003_upgrades_existing_grants(empty_db_url: str) -> None:
    from alembic import command

    engine = make_engine(empty_db_url)
    config = alembic_config(engine, MIGRATIONS)
    try:
        command.upgrade(config, "0002")
        assert "pin_pending" not in {c["name"] for c in inspect(engine).get_columns("consent_grant")}
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO consent_grant (grant_id, code_digest, pin_hash, patient_id, created, expires, revoked, failures)"
                    " VALUES ('g-old', 'd', 'h', 'P', :t, :t, :f, 0)"
                ),
                {"t": datetime(2025, 1, 1).astimezone(), "f": False},
            )
        command.upgrade(config, "head")
        columns = {c["name"]: c for c in inspect(engine).get_columns("consent_grant")}
        assert columns["label"]["nullable"] and not columns["pin_pending"]["nullable"]
        with engine.connect() as conn:
            row = conn.execute(text("SELECT label, pin_pending FROM consent_grant WHERE grant_id = 'g-old'")).one()
        assert row.label is None and row.pin_pending in (False, 0)
        indexes = {i["name"] for i in inspect(engine).get_indexes("consent_grant")}
        assert "ux_consent_grant_live_code" in indexes
        command.downgrade(config, "0002")
        assert {"label", "pin_pending"}.isdisjoint(c["name"] for c in inspect(engine).get_columns("consent_grant"))
        command.upgrade(config, "head")
        assert {"label", "pin_pending"} <= {c["name"] for c in inspect(engine).get_columns("consent_grant")}
    finally:
        engine.dispose()
