"""Consent grants in the registry (DESIGN §4), on SQLite and PostgreSQL: enrolment, scope by
release time, shares for the care team, lock-out with growing back-off per code and per client
address, the audit trail; then the grant API and the token endpoint over a real loopback server,
and a scan of everything logged for codes and PINs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from alembic.migration import MigrationContext
from alembic.autogenerate import compare_metadata
from sqlalchemy import Engine

import registry.store.grants_schema as grants_schema
from registry.app import build_registry_app
from registry.config import RegistrySettings
from registry.grants import (
    CredentialsRejected,
    GrantConflict,
    GrantStore,
    Locked,
    SharedExam,
)
from registry.store.schema import metadata
from tests.support.registry import Clock
from xds.http.server import ServerThread
from xds.security.accesscode import AccessCodeError, damm_check_digit
from xds.security.pin import PinPolicyError, ScryptParams
from xds.security.saml import verify_assertion
from xds.settings import SettingsError, load_settings
from xds.xml import parse_xml

PID = "PAT-1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
FAST = ScryptParams(n=2**10)
PIN = "2468"


def _exams(now: datetime) -> list[SharedExam]:
    return [
        SharedExam("1.2.840.1.1", "1.2.840.9.1", ("1.2.840.8.1",), now - timedelta(hours=1)),  # released
        SharedExam("1.2.840.1.2", "1.2.840.9.2", ("1.2.840.8.2",), now + timedelta(hours=72)),  # later
        SharedExam("1.2.840.1.3"),  # not built yet
    ]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(registry_engine: Engine, clock: Clock) -> GrantStore:
    return GrantStore(registry_engine, clock=clock, pin_params=FAST)


def _wrong(store: GrantStore, code: str, n: int, *, address: str | None = None) -> list[type]:
    outcomes: list[type] = []
    for i in range(n):
        try:
            store.present(code, "0000", client_address=address or f"192.0.2.{i + 1}")
            outcomes.append(object)
        except (CredentialsRejected, Locked) as exc:
            outcomes.append(type(exc))
    return outcomes


# -- the store -------------------------------------------------------------------------------------
def test_enrol_present_and_scope(store: GrantStore, clock: Clock) -> None:
    issued = store.create(patient_id=PID, pin=PIN, expires=clock.now + timedelta(days=90), exams=_exams(clock.now))
    assert len(issued.access_code) == 8 and issued.access_code not in repr(issued)
    grant = store.present(issued.access_code, PIN, client_address="192.0.2.1")
    assert grant.grant_id == issued.grant.grant_id and grant.patient_id == PID
    scope = grant.scope(clock.now)
    assert scope.manifest_unique_ids == {"1.2.840.9.1"}
    assert scope.study_instance_uids == {"1.2.840.1.1"}
    assert scope.report_unique_ids == {"1.2.840.8.1"}
    # 72 hours later the second exam is released; the third still has no manifest.
    clock.advance(hours=73)
    assert store.present(issued.access_code, PIN, client_address="192.0.2.1").scope(clock.now).manifest_unique_ids == {
        "1.2.840.9.1",
        "1.2.840.9.2",
    }


def test_the_database_holds_neither_code_nor_pin(store: GrantStore, clock: Clock, registry_engine: Engine) -> None:
    """A copy of the database hands out no access code and no PIN: only keyed digests."""
    from sqlalchemy import text as sql

    issued = store.create(patient_id=PID, pin=PIN, expires=clock.now + timedelta(days=90), exams=_exams(clock.now))
    _wrong(store, "12345671", 2)  # an unknown code leaves a throttle row
    with registry_engine.connect() as conn:
        dumped = [
            str(value)
            for table in ("consent_grant", "consent_grant_exam", "consent_throttle", "consent_audit")
            for row in conn.execute(sql(f"SELECT * FROM {table}"))
            for value in row
        ]
    assert dumped and not [v for v in dumped if issued.access_code in v or PIN in v or "12345671" in v]
    assert store.present(issued.access_code, PIN, client_address="192.0.2.1").grant_id == issued.grant.grant_id


def test_exams_added_withdrawn_and_released(store: GrantStore, clock: Clock) -> None:
    issued = store.create(patient_id=PID, pin=PIN, expires=clock.now + timedelta(days=30))
    gid = issued.grant.grant_id
    store.put_exam(gid, SharedExam("1.2.3.1", "1.2.3.91", (), None))
    assert store.get(gid).scope(clock.now).manifest_unique_ids == frozenset()
    store.set_release_time(gid, "1.2.3.1", clock.now)
    assert store.get(gid).scope(clock.now).manifest_unique_ids == {"1.2.3.91"}
    store.put_exam(gid, SharedExam("1.2.3.1", "1.2.3.92", ("1.2.3.81",), clock.now))
    assert store.get(gid).scope(clock.now).report_unique_ids == {"1.2.3.81"}
    store.withdraw_exam(gid, "1.2.3.1")
    assert store.get(gid).exams == ()
    with pytest.raises(LookupError):
        store.withdraw_exam(gid, "1.2.3.1")
    actions = [r.action for r in store.audit_records(grant_id=gid)]
    assert actions == ["create", "put-exam", "release-time", "put-exam", "withdraw-exam"]


def test_pin_policy_applies_on_enrolment(store: GrantStore, clock: Clock) -> None:
    with pytest.raises(PinPolicyError, match="4 to 12 digits"):
        store.create(patient_id=PID, pin="12", expires=clock.now + timedelta(days=1))


def test_lockout_after_five_failures_with_growing_backoff(store: GrantStore, clock: Clock) -> None:
    issued = store.create(patient_id=PID, pin=PIN, expires=clock.now + timedelta(days=30))
    code = issued.access_code
    # Each attempt from another address, so only the per-code counter is at work.
    assert _wrong(store, code, 5) == [CredentialsRejected] * 5
    with pytest.raises(Locked) as locked:
        store.present(code, PIN, client_address="198.51.100.1")  # even the right PIN
    assert locked.value.retry_after == timedelta(minutes=1)
    clock.advance(seconds=61)
    assert _wrong(store, code, 1) == [CredentialsRejected]  # sixth failure: locked for 2 minutes
    clock.advance(seconds=61)
    with pytest.raises(Locked) as locked:
        store.present(code, PIN, client_address="198.51.100.1")
    assert locked.value.retry_after == timedelta(seconds=59)
    clock.advance(seconds=60)
    assert _wrong(store, code, 1) == [CredentialsRejected]  # seventh: 4 minutes
    with pytest.raises(Locked) as locked:
        store.present(code, PIN, client_address="198.51.100.1")
    assert locked.value.retry_after == timedelta(minutes=4)
    clock.advance(minutes=4, seconds=1)
    assert store.present(code, PIN, client_address="198.51.100.1").grant_id == issued.grant.grant_id
    # Success resets the code's counter: four more failures do not lock it.
    assert _wrong(store, code, 4) == [CredentialsRejected] * 4
    assert store.present(code, PIN, client_address="198.51.100.1").grant_id == issued.grant.grant_id


def test_unknown_code_locks_like_a_real_one(store: GrantStore, clock: Clock) -> None:
    body = "1234567"
    unknown = body + damm_check_digit(body)
    assert _wrong(store, unknown, 6) == [CredentialsRejected] * 5 + [Locked]
    rows = store.audit_records()
    assert [r.outcome for r in rows] == ["unknown-code"] * 5 + ["locked"]
    assert all(r.grant_id is None for r in rows)


def test_client_address_is_throttled_across_codes(store: GrantStore, clock: Clock) -> None:
    issued = store.create(patient_id=PID, pin=PIN, expires=clock.now + timedelta(days=30))
    for i in range(5):
        body = f"765432{i}"
        assert _wrong(store, body + damm_check_digit(body), 1, address="203.0.113.9") == [CredentialsRejected]
    with pytest.raises(Locked):
        store.present(issued.access_code, PIN, client_address="203.0.113.9")
    # Another address is not affected, and the address lock lapses.
    assert store.present(issued.access_code, PIN, client_address="203.0.113.10").grant_id == issued.grant.grant_id
    clock.advance(seconds=61)
    assert store.present(issued.access_code, PIN, client_address="203.0.113.9").grant_id == issued.grant.grant_id


def test_mistyped_code_is_not_a_failure(store: GrantStore, clock: Clock) -> None:
    issued = store.create(patient_id=PID, pin=PIN, expires=clock.now + timedelta(days=30))
    code = issued.access_code
    typo = code[:3] + str((int(code[3]) + 1) % 10) + code[4:]
    for _ in range(8):
        with pytest.raises(AccessCodeError):
            store.present(typo, PIN, client_address="192.0.2.50")
    assert store.present(code, PIN, client_address="192.0.2.50").grant_id == issued.grant.grant_id
    records = [(r.action, r.outcome) for r in store.audit_records()]
    assert records == [("create", "success")] + [("present", "malformed")] * 8 + [("present", "success")]


def test_expired_grant_is_refused_and_audited(store: GrantStore, clock: Clock) -> None:
    issued = store.create(patient_id=PID, pin=PIN, expires=clock.now + timedelta(days=1))
    clock.advance(days=1)
    with pytest.raises(CredentialsRejected):
        store.present(issued.access_code, PIN, client_address="192.0.2.7")
    record = store.audit_records()[-1]
    assert (record.grant_id, record.client_address, record.action, record.outcome) == (
        issued.grant.grant_id,
        "192.0.2.7",
        "present",
        "expired",
    )


def test_shares_are_narrower_and_follow_their_parent(store: GrantStore, clock: Clock) -> None:
    parent = store.create(patient_id=PID, pin=PIN, expires=clock.now + timedelta(days=90), exams=_exams(clock.now))
    pid = parent.grant.grant_id
    with pytest.raises(GrantConflict, match="does not share"):
        store.create_share(pid, study_uids=["9.9.9"], pin="1357", expires=clock.now + timedelta(days=7))
    with pytest.raises(GrantConflict, match="outlive"):
        store.create_share(pid, study_uids=["1.2.840.1.1"], pin="1357", expires=clock.now + timedelta(days=91))
    share = store.create_share(pid, study_uids=["1.2.840.1.1", "1.2.840.1.2"], pin="1357", expires=clock.now + timedelta(days=7))
    assert share.access_code != parent.access_code
    seen = store.present(share.access_code, "1357", client_address="192.0.2.9")
    assert seen.parent_id == pid and seen.scope(clock.now).manifest_unique_ids == {"1.2.840.9.1"}
    # The parent withdraws an exam: the share loses it too.
    store.withdraw_exam(pid, "1.2.840.1.1")
    assert store.present(share.access_code, "1357", client_address="192.0.2.9").scope(clock.now).manifest_unique_ids == frozenset()
    # Revoking the parent revokes the share.
    assert store.revoke(pid) == 2
    with pytest.raises(CredentialsRejected):
        store.present(share.access_code, "1357", client_address="192.0.2.9")
    with pytest.raises(CredentialsRejected):
        store.present(parent.access_code, PIN, client_address="192.0.2.9")
    assert store.get(share.grant.grant_id).revoked


class RepeatingRng:
    """Draws the same digits for the first two codes, then others: a forced collision."""

    def __init__(self) -> None:
        self.draws = [1, 2, 3, 4, 5, 6, 7] * 2 + [7, 6, 5, 4, 3, 2, 1]

    def randbelow(self, bound: int) -> int:
        return self.draws.pop(0) % bound


def test_codes_are_unique_among_live_grants(registry_engine: Engine, clock: Clock) -> None:
    store = GrantStore(registry_engine, clock=clock, pin_params=FAST, rng=RepeatingRng())
    first = store.create(patient_id=PID, pin=PIN, expires=clock.now + timedelta(days=1))
    second = store.create(patient_id=PID, pin="1357", expires=clock.now + timedelta(days=1))
    assert first.access_code.startswith("1234567") and second.access_code.startswith("7654321")
    assert store.present(second.access_code, "1357", client_address="192.0.2.1").grant_id == second.grant.grant_id


def test_reset_pin_lifts_the_lock(store: GrantStore, clock: Clock) -> None:
    issued = store.create(patient_id=PID, pin=PIN, expires=clock.now + timedelta(days=30))
    _wrong(store, issued.access_code, 5)
    store.reset_pin(issued.grant.grant_id, "97531")
    with pytest.raises(CredentialsRejected):
        store.present(issued.access_code, PIN, client_address="192.0.2.60")
    assert store.present(issued.access_code, "97531", client_address="192.0.2.61").grant_id == issued.grant.grant_id


def test_migration_matches_the_declared_tables(registry_engine: Engine) -> None:
    names = {t.name for t in (grants_schema.consent_grant, grants_schema.consent_grant_exam,
                              grants_schema.consent_throttle, grants_schema.consent_audit)}
    with registry_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    ours = [d for d in diff if any(name in repr(d) for name in names)]
    assert ours == []


# -- HTTP ------------------------------------------------------------------------------------------
API_KEY = "test-grant-api-key-0123456789"


@dataclass
class Live:
    url: str
    settings: RegistrySettings

    def api(
        self, method: str, path: str, *, key: str | None = API_KEY, headers: dict[str, str] | None = None, **kwargs: object
    ) -> httpx.Response:
        sent = dict(headers or {})
        if key:
            sent["authorization"] = f"Bearer {key}"
        return httpx.request(method, self.url + path, headers=sent, timeout=30, **kwargs)  # type: ignore[arg-type]

    def token(self, code: str, pin: str, *, json: bool = False, source: str = "127.0.0.1") -> httpx.Response:
        """Present code and PIN from the loopback address ``source`` (each its own client)."""
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(transport=transport, timeout=30) as client:
            if json:
                return client.post(self.url + "/consent/token", json={"code": code, "pin": pin})
            return client.post(self.url + "/consent/token", data={"code": code, "pin": pin})


@pytest.fixture
def live(registry_db_url: str, tmp_path: Path) -> Iterator[Live]:
    settings = RegistrySettings(
        db=registry_db_url,
        data_dir=tmp_path,
        mllp_port=0,
        access_policy="consent",
        grant_api_key=API_KEY,
        token_lifetime_s=120,
        token_audience="urn:test:audience",
    )
    with ServerThread(build_registry_app(settings)) as server:
        yield Live(server.url, settings)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def test_settings_reject_an_unknown_policy() -> None:
    with pytest.raises(SettingsError, match="open' or 'consent"):
        load_settings(RegistrySettings, section="registry", environ={"XDS_REGISTRY_ACCESS_POLICY": "closed"})


def test_grant_api_and_token_over_http(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    now = datetime.now(UTC)
    body = {
        "patient_id": PID,
        "pin": "864209",
        "expires": _iso(now + timedelta(days=30)),
        "exams": [
            {"study_uid": "1.2.5.1", "manifest_unique_id": "1.2.5.91", "report_unique_ids": ["1.2.5.81"],
             "release_time": _iso(now - timedelta(minutes=1))},
            {"study_uid": "1.2.5.2", "manifest_unique_id": "1.2.5.92", "release_time": _iso(now + timedelta(hours=72))},
        ],
    }
    assert live.api("POST", "/consent/grants", key=None, json=body).status_code == 401
    assert live.api("POST", "/consent/grants", key="wrong", json=body).status_code == 401
    assert live.api("POST", "/consent/grants", json={**body, "pin": "12"}).json()["error"].startswith("a numeric PIN")
    assert live.api("POST", "/consent/grants", json={**body, "expires": "tomorrow"}).status_code == 400
    assert live.api("POST", "/consent/grants", content=b"{}", headers={"content-type": "text/plain"}).status_code == 415
    created = live.api("POST", "/consent/grants", json=body)
    assert created.status_code == 201, created.text
    code, gid = created.json()["access_code"], created.json()["grant"]["grant_id"]
    assert created.json()["access_code_display"] == f"{code[:4]}-{code[4:]}"
    shown = live.api("GET", f"/consent/grants/{gid}").json()["grant"]
    assert [e["study_uid"] for e in shown["exams"]] == ["1.2.5.1", "1.2.5.2"] and code not in str(shown)
    assert live.api("GET", "/consent/grants/no-such-grant").status_code == 404

    # The token lists only the released exam; it verifies with the published certificate.
    answer = live.token(f"{code[:4]}-{code[4:]}", "864209")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/samlassertion+xml")
    cert = httpx.get(live.url + "/consent/certificate", timeout=10).content
    verified = verify_assertion(parse_xml(answer.content), trusted_cert=cert, audience="urn:test:audience", now=datetime.now(UTC))
    assert verified.grant_id == gid
    assert verified.scope.manifest_unique_ids == {"1.2.5.91"} and verified.scope.report_unique_ids == {"1.2.5.81"}
    assert verified.not_on_or_after - verified.not_before == timedelta(seconds=120)
    key_file = live.settings.data_dir / "keys" / "token-signing.key.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600

    # Release the second exam now, add a third, withdraw the first: JSON presentation this time.
    assert live.api("PUT", f"/consent/grants/{gid}/exams/1.2.5.2/release", json={"release_time": _iso(now)}).status_code == 200
    assert live.api("PUT", f"/consent/grants/{gid}/exams/1.2.5.3", json={"manifest_unique_id": "1.2.5.93", "release_time": _iso(now)}).status_code == 200
    assert live.api("DELETE", f"/consent/grants/{gid}/exams/1.2.5.1").status_code == 200
    assert live.api("DELETE", f"/consent/grants/{gid}/exams/1.2.5.1").status_code == 404
    answer = live.token(code, "864209", json=True)
    scope = verify_assertion(parse_xml(answer.content), trusted_cert=cert, audience="urn:test:audience", now=datetime.now(UTC)).scope
    assert scope.manifest_unique_ids == {"1.2.5.92", "1.2.5.93"}

    # A share for the care team, with its own code.
    share = live.api("POST", f"/consent/grants/{gid}/shares", json={"study_uids": ["1.2.5.3"], "pin": "11223344", "expires": _iso(now + timedelta(days=2))})
    assert share.status_code == 201, share.text
    share_code = share.json()["access_code"]
    scope = verify_assertion(parse_xml(live.token(share_code, "11223344").content), trusted_cert=cert, audience="urn:test:audience", now=datetime.now(UTC)).scope
    assert scope.manifest_unique_ids == {"1.2.5.93"}
    assert live.api("POST", f"/consent/grants/{gid}/shares", json={"study_uids": ["7.7"], "pin": "11223344", "expires": _iso(now + timedelta(days=2))}).status_code == 409

    # Refusals: a typo is 400; wrong PIN and unknown code answer alike; then the lock (423).
    typo = code[:2] + str((int(code[2]) + 1) % 10) + code[3:]
    assert live.token(typo, "864209").status_code == 400
    unknown_body = "5555555"
    unknown = live.token(unknown_body + damm_check_digit(unknown_body), "864209", source="127.0.0.2")
    wrong = live.token(code, "000000", source="127.0.0.3")
    assert (unknown.status_code, wrong.status_code) == (401, 401)
    assert unknown.content == wrong.content
    assert live.token(code, "", json=True).status_code == 400
    # Four more failures, each from its own address: the fifth on this code locks the code.
    statuses = [live.token(code, "000000", source=f"127.0.0.{4 + i}").status_code for i in range(4)]
    assert statuses == [401] * 4
    locked = live.token(code, "864209", source="127.0.0.8")
    assert locked.status_code == 423 and 0 < int(locked.headers["retry-after"]) <= 60
    # One address failing on five codes is locked too, whatever code it tries next.
    for i in range(5):
        other = f"444444{i}"
        assert live.token(other + damm_check_digit(other), "864209", source="127.0.0.20").status_code == 401
    assert live.token(share_code, "11223344", source="127.0.0.20").status_code == 423

    # A PIN reset lifts the code's lock; revocation ends the grant and its share.
    assert live.api("POST", f"/consent/grants/{gid}/pin", json={"pin": "97531"}).status_code == 204
    assert live.token(code, "97531", source="127.0.0.9").status_code == 200
    revoked = live.api("POST", f"/consent/grants/{gid}/revoke")
    assert revoked.json() == {"revoked": 2}
    assert live.token(share_code, "11223344", source="127.0.0.10").status_code == 401
    assert live.token(code, "97531", source="127.0.0.9").status_code == 401

    # Nothing logged anywhere in the process carries a code or a PIN.
    secrets_used = [code, f"{code[:4]}-{code[4:]}", share_code, "864209", "11223344", "97531", typo]
    logged = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert caplog.records, "the server logged nothing at all, so the scan would prove nothing"
    for secret in secrets_used:
        assert secret not in logged


def test_grant_api_off_without_a_key(registry_db_url: str, tmp_path: Path) -> None:
    settings = RegistrySettings(db=registry_db_url, data_dir=tmp_path, mllp_port=0, access_policy="consent")
    with ServerThread(build_registry_app(settings)) as server:
        response = httpx.post(server.url + "/consent/grants", json={}, headers={"authorization": "Bearer x"}, timeout=10)
        assert response.status_code == 403
        assert httpx.post(server.url + "/consent/token", data={"code": "1", "pin": "2"}, timeout=10).status_code == 400


def test_open_registry_has_no_consent_endpoints(registry_db_url: str, tmp_path: Path) -> None:
    settings = RegistrySettings(db=registry_db_url, data_dir=tmp_path, mllp_port=0)
    with ServerThread(build_registry_app(settings)) as server:
        assert httpx.post(server.url + "/consent/token", data={"code": "1", "pin": "2"}, timeout=10).status_code == 404
    assert not (tmp_path / "keys").exists()
