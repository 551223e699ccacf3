"""The staff console's views against a real Edge Server index (SQLite; the staff tables also on
PostgreSQL): sign-in, lock-out, CSRF, roles, patient search, the jacket, enrolment (keypad PIN,
PIN later, code sheet, PIN reset, revocation) against a fake grant API and the real registry, the
cart, share jobs and retry, the audit trail, and the ``xds source staff`` commands."""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from pypdf import PdfReader
from sqlalchemy import text

from imaging_source.cli import source
from imaging_source.db import make_engine, upgrade
from imaging_source.grant_client import GrantClient
from imaging_source.jobs import JobState
from imaging_source.release import ReleasePolicy
from imaging_source.reports import ReportBook
from imaging_source.ris import Procedure, ReportEvent
from imaging_source.schema import metadata
from imaging_source.web.retrievals import read_page
from imaging_source.web.staff import (
    LOCK_AFTER,
    LOCK_BASE_SECONDS,
    StaffDirectory,
    StaffExists,
    StaffPolicyError,
    StaffRole,
    verify_password,
)
from imaging_source.web.views_auth import GENERIC_FAILURE
from tests.support.console import (
    ADMIN_PASSWORD,
    API_KEY,
    FAST,
    USER_PASSWORD,
    EdgeSite,
    FakeGrantApi,
    StaffBrowser,
    console_app,
    edge_site,
)
from xds.http.server import ServerThread
from xds.security.audit import AuditLog

CODE = re.compile(r'id="access-code"[^>]*>(\d{4}-\d{4})<')
PIN = "482913"


@dataclass
class Clock:
    now: float = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def site(tmp_path: Path) -> Iterator[EdgeSite]:
    with edge_site(tmp_path) as made:
        yield made


@pytest.fixture
def fake() -> FakeGrantApi:
    return FakeGrantApi()


@pytest.fixture
def clerk(site: EdgeSite, fake: FakeGrantApi) -> StaffBrowser:
    browser = StaffBrowser(console_app(site, grant_client=fake.client()))
    assert browser.sign_in("clerk", USER_PASSWORD).url.path == "/console/patients"
    return browser


@pytest.fixture
def admin(site: EdgeSite, fake: FakeGrantApi) -> StaffBrowser:
    browser = StaffBrowser(console_app(site, grant_client=fake.client()))
    assert browser.sign_in("admin", ADMIN_PASSWORD).url.path == "/console/patients"
    return browser


def _dump(site: EdgeSite) -> str:
    with site.engine.connect() as conn:
        return "\n".join(str(v) for table in metadata.sorted_tables for row in conn.execute(table.select()) for v in row)


def _actions(site: EdgeSite) -> list[tuple[str, str, str]]:
    with site.engine.connect() as conn:
        rows = conn.execute(text("select staff, action, patient_id from imaging_staff_action order by id")).all()
    return [(r[0], r[1], r[2]) for r in rows]


# -- staff users ------------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgresql"])
def staff_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'imaging.sqlite'}"
        return
    url = request.getfixturevalue("pg_database")
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text('TRUNCATE "imaging_staff_user", "imaging_staff_action" RESTART IDENTITY'))
    engine.dispose()
    yield url


def test_staff_directory_hashes_and_locks_out_with_back_off(staff_db_url: str) -> None:
    engine = make_engine(staff_db_url)
    upgrade(engine)
    clock = Clock()
    staff = StaffDirectory(engine, clock=clock, params=FAST)
    staff.add("rita", "a long password 1", role=StaffRole.ADMIN)
    with pytest.raises(StaffExists):
        staff.add("rita", "another password", role=StaffRole.USER)
    with pytest.raises(StaffPolicyError):
        staff.add("bob", "short", role=StaffRole.USER)
    with pytest.raises(StaffPolicyError):
        staff.add("bad name!", "a long password 1", role=StaffRole.USER)
    with engine.connect() as conn:
        stored = conn.execute(text("select password_hash from imaging_staff_user where username = 'rita'")).scalar_one()
    # The hash names its cost and salt; the password is nowhere in it.
    assert stored.startswith("scrypt$1024$8$1$") and "long password" not in stored
    assert verify_password("a long password 1", stored) and not verify_password("a long password 2", stored)
    assert staff.authenticate("rita", "a long password 1").user is not None
    for attempt in range(1, LOCK_AFTER + 1):
        outcome = staff.authenticate("rita", "wrong password")
        assert outcome.user is None and outcome.locked == (attempt == LOCK_AFTER)
    # Locked: even the right password is refused, until the lock ends.
    assert staff.authenticate("rita", "a long password 1").locked
    clock.now += LOCK_BASE_SECONDS + 1
    assert staff.authenticate("rita", "wrong password").locked  # the sixth failure doubles the lock
    user = staff.get("rita")
    assert user is not None and user.locked_until == pytest.approx(clock.now + 2 * LOCK_BASE_SECONDS)
    clock.now += 2 * LOCK_BASE_SECONDS + 1
    signed = staff.authenticate("rita", "a long password 1").user
    assert signed is not None and signed.failed_logins == 0 and signed.last_login == clock.now
    staff.set_disabled("rita", disabled=True)
    assert staff.authenticate("rita", "a long password 1").user is None
    assert staff.authenticate("nobody", "a long password 1").user is None
    engine.dispose()


def test_staff_cli_add_list_disable_passwd(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'imaging.sqlite'}"
    runner = CliRunner()

    def run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(source, ["staff", *args, "--db", db, "--data-dir", str(tmp_path)], input=input)

    added = run("add", "mia", "--role", "admin", "--password-stdin", input="first password 99\n")
    assert added.exit_code == 0 and "added staff user mia (admin)" in added.output
    typed = run("add", "tom", input="typed password 77\ntyped password 77\n")
    assert typed.exit_code == 0, typed.output
    assert "typed password" not in typed.output
    assert run("add", "tom", "--password-stdin", input="typed password 88\n").exit_code != 0
    assert "at least 10" in run("add", "amy", "--password-stdin", input="short\n").output
    listing = run("list")
    assert "mia" in listing.output and "admin" in listing.output and "tom" in listing.output
    assert run("disable", "tom").exit_code == 0
    assert "disabled" in run("list").output
    assert run("disable", "ghost").exit_code != 0
    assert run("passwd", "mia", "--password-stdin", input="second password 99\n").exit_code == 0
    engine = make_engine(db)
    staff = StaffDirectory(engine)
    assert staff.authenticate("mia", "second password 99").user is not None
    assert staff.authenticate("mia", "first password 99").user is None
    assert staff.authenticate("tom", "typed password 77").user is None  # disabled
    engine.dispose()


# -- signing in ----------------------------------------------------------------------------------------
def test_sign_in_sign_out_and_generic_failure(site: EdgeSite, fake: FakeGrantApi) -> None:
    browser = StaffBrowser(console_app(site, grant_client=fake.client()))
    assert browser.get("/patients").url.path == "/console/login"  # not signed in
    wrong = browser.sign_in("clerk", "not the password")
    unknown = browser.sign_in("nobody", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert GENERIC_FAILURE in wrong.text and GENERIC_FAILURE in unknown.text
    page = browser.sign_in("clerk", USER_PASSWORD)
    assert page.url.path == "/console/patients" and "clerk (user)" in page.text
    cookie = browser.http.cookies.jar
    attributes = [c for c in cookie if c.name == "xds_console"]
    assert attributes and attributes[0].path == "/console" and attributes[0].has_nonstandard_attr("HttpOnly")
    assert browser.post("/logout").url.path == "/console/login"
    assert browser.get("/jobs").url.path == "/console/login"
    assert [a[1] for a in _actions(site)] == ["sign-in-failed", "sign-in-failed", "sign-in", "sign-out"]
    # The form refuses posts without the pre-session's token.
    fresh = StaffBrowser(console_app(site, grant_client=fake.client()))
    assert fresh.post("/login", {"username": "clerk", "password": USER_PASSWORD}).status_code == 403


def test_lock_out_after_five_failures_then_back_off(site: EdgeSite, fake: FakeGrantApi) -> None:
    clock = Clock()
    browser = StaffBrowser(console_app(site, grant_client=fake.client(), clock=clock))
    for _ in range(LOCK_AFTER):
        assert browser.sign_in("clerk", "wrong wrong wrong").status_code == 401
    locked = browser.sign_in("clerk", USER_PASSWORD)
    assert locked.status_code == 401 and GENERIC_FAILURE in locked.text  # the same words as any failure
    clock.now += LOCK_BASE_SECONDS + 1
    assert browser.sign_in("clerk", USER_PASSWORD).url.path == "/console/patients"
    assert ("clerk", "sign-in-failed", "") in _actions(site)


def test_csrf_is_checked_on_every_form(clerk: StaffBrowser, site: EdgeSite) -> None:
    spec = site.study(accession="ACC1")
    share = {"mrn": "PAT001", "issuer": "HOSP", "policy": "immediately", "study": spec.study_uid}
    assert clerk.post("/patient/share", share, csrf="").status_code == 403
    assert clerk.post("/patient/share", share, csrf=clerk.csrf[:-2] + "xx").status_code == 403
    foreign = clerk.post("/patient/share", share, headers={"Origin": "http://evil.test"})
    assert foreign.status_code == 403 and "another site" in foreign.text
    assert clerk.post("/logout", csrf="nope").status_code == 403
    assert site.jobs.list() == []
    assert clerk.post("/patient/share", share).status_code == 200
    assert len(site.jobs.list()) == 1


def test_pages_link_under_the_mount_and_carry_no_inline_code(admin: StaffBrowser, site: EdgeSite) -> None:
    site.study(accession="ACC1")
    for path in ("/patients?q=doe", "/patient?mrn=PAT001&issuer=HOSP", "/jobs", "/audit", "/staff",
                 "/patient/keypad?mrn=PAT001&issuer=HOSP&purpose=enrol"):
        page = admin.get(path)
        assert page.status_code == 200, path
        links = re.findall(r'(?:href|action|src)="([^"]+)"', page.text)
        assert links and all(link.startswith(("/console/", "#")) for link in links), (path, links)
        assert "<script>" not in page.text and "style=" not in page.text and "<style" not in page.text
        assert "'unsafe-inline'" not in page.headers["content-security-policy"]
        # Browsers send "Origin: null" with form posts under no-referrer; same-origin keeps our origin.
        assert page.headers.get_list("referrer-policy") == ["same-origin"]
    css = admin.get("/static/console.css")
    assert css.status_code == 200 and "keypad" in css.text


def test_roles_user_and_admin(clerk: StaffBrowser, admin: StaffBrowser, site: EdgeSite, fake: FakeGrantApi) -> None:
    assert clerk.get("/staff").status_code == 403
    assert clerk.post("/staff/add", {"username": "eve", "role": "admin", "password": "x" * 12, "password_again": "x" * 12}).status_code == 403
    assert site.staff.get("eve") is None
    site.study(accession="ACC1")
    assert clerk.post("/patient/enrol", {"mrn": "PAT001", "issuer": "HOSP"}).status_code == 200
    assert clerk.post("/patient/revoke", {"mrn": "PAT001", "issuer": "HOSP", "confirm": "on"}).status_code == 403
    assert not any(g["revoked"] for g in fake.grants.values())
    # The admin adds a user, who signs in; disabling the user ends their session.
    added = admin.post("/staff/add", {"username": "nina", "role": "user", "password": "nina password 1", "password_again": "nina password 1"})
    assert "Added nina (user)" in added.text
    nina = StaffBrowser(admin.http.app)  # the same console (and session store) as the admin's
    assert nina.sign_in("nina", "nina password 1").url.path == "/console/patients"
    assert "nina" in admin.post("/staff/disabled", {"username": "nina", "disabled": "on"}).text
    assert nina.get("/patients").url.path == "/console/login"
    assert "cannot disable your own" in admin.post("/staff/disabled", {"username": "admin", "disabled": "on"}).text
    staff_users = {u.username: u for u in site.staff.list()}
    assert staff_users["nina"].disabled and not staff_users["admin"].disabled


# -- patients --------------------------------------------------------------------------------------
def test_search_by_name_words_and_mrn(clerk: StaffBrowser, site: EdgeSite) -> None:
    site.study(patient_id="PAT001", patient_name="Doe^Jane", accession="A1")
    site.study(patient_id="PAT002", patient_name="Doe^John", accession="A2")
    site.study(patient_id="X%9", patient_name="Smith^Ann", accession="A3")

    def found(query: str) -> list[str]:
        page = clerk.get("/patients", params={"q": query})
        return re.findall(r'<td data-label="MRN">([^<]+)</td>', page.text)

    assert found("doe") == ["PAT001", "PAT002"]
    assert found("jane DOE") == ["PAT001"]
    assert found("PAT00") == ["PAT001", "PAT002"]
    assert found("X%") == ["X%9"]
    assert found("%") == []  # matched literally
    assert found("nobody") == [] and "No patient matches" in clerk.get("/patients", params={"q": "nobody"}).text


def test_patient_page_is_the_jacket_with_report_and_share_state(clerk: StaffBrowser, site: EdgeSite) -> None:
    ct = site.study(accession="ACC1", modalities=("CT",), study_date="20240102")
    mr = site.study(accession="ACC2", modalities=("MR",), study_date="20240305")
    ReportBook(site.engine).record_report(
        ReportEvent(accession="ACC1", patient_id="PAT001", issuer="HOSP", status="F", status_time=1_700_000_000.0,
                    text="No acute findings.", procedure=Procedure())
    )
    job_id = site.failed_job(mr, "repository unreachable")
    page = clerk.get("/patient", params={"mrn": "PAT001", "issuer": "HOSP"})
    assert page.status_code == 200
    assert "DOE, Jane" in page.text and "2024-01-02" in page.text and "2024-03-05" in page.text
    rows = {acc: row for row in page.text.split("<tr>") for acc in ("ACC1", "ACC2") if f">{acc}<" in row}
    row_ct, row_mr = rows["ACC1"], rows["ACC2"]
    assert page.text.index(">ACC2<") < page.text.index(">ACC1<")  # newest first
    assert "CT" in row_ct and "Final" in row_ct and "not shared" in row_ct and ct.study_uid in row_ct
    assert "No report" in row_mr and "failed" in row_mr and f"/console/jobs/{job_id}" in row_mr
    assert ("clerk", "view-patient", "PAT001") in _actions(site)
    assert clerk.get("/patient", params={"mrn": "NOPE"}).status_code == 404


# -- enrolment -------------------------------------------------------------------------------------
def test_enrol_with_keypad_pin_shows_code_once_and_prints_sheet(
    clerk: StaffBrowser, site: EdgeSite, fake: FakeGrantApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    site.study(accession="ACC1")
    keypad = clerk.get("/patient/keypad", params={"mrn": "PAT001", "issuer": "HOSP", "purpose": "enrol"})
    assert 'type="password"' in keypad.text and "data-keypad" in keypad.text
    assert 'aria-label="Main"' not in keypad.text  # handed to the patient: no console navigation
    form = {"mrn": "PAT001", "issuer": "HOSP", "purpose": "enrol", "expires_days": "30"}
    mismatch = clerk.post("/patient/keypad", {**form, "pin": PIN, "pin_again": "482914"})
    assert mismatch.status_code == 400 and "not the same" in mismatch.text and not fake.grants
    weak = clerk.post("/patient/keypad", {**form, "pin": "12", "pin_again": "12"})
    assert weak.status_code == 400 and "4 to 12 digits" in weak.text and not fake.grants
    shown = clerk.post("/patient/keypad", {**form, "pin": PIN, "pin_again": PIN})
    codes = CODE.findall(shown.text)
    assert len(codes) == 1
    display = codes[0]
    (grant,) = fake.grants.values()
    assert grant["pin"] == PIN and grant["patient_id"] == f"PAT001^^^&{site.settings.affinity_domain_oid}&ISO"
    assert dt.datetime.fromisoformat(grant["expires"]) - dt.datetime.now(dt.UTC) < dt.timedelta(days=31)
    # Shown once: a reload of the result page no longer shows it.
    result_path = shown.url.path.removeprefix("/console")
    again = clerk.get(result_path)
    assert display not in again.text and "shown already" in again.text
    sheet_path = re.search(r'id="sheet-link" href="([^"]+)"', again.text)
    assert sheet_path is not None
    sheet = clerk.http.get(sheet_path.group(1))
    assert sheet.headers["content-type"] == "application/pdf" and "attachment" in sheet.headers["content-disposition"]
    pages = "".join(p.extract_text() for p in PdfReader(io.BytesIO(sheet.content)).pages)
    assert display in pages and PIN not in pages and "https://portal.example.org/" in pages
    assert "the PIN you chose when you enrolled" in pages
    # Neither the code nor the PIN is kept in the index or written to a log.
    dumped = _dump(site)
    assert display not in dumped and display.replace("-", "") not in dumped and PIN not in dumped
    assert display not in caplog.text and display.replace("-", "") not in caplog.text and PIN not in caplog.text
    assert [a[1] for a in _actions(site) if a[1] in ("enrol", "code-sheet")] == ["enrol", "code-sheet"]
    patient = clerk.get("/patient", params={"mrn": "PAT001", "issuer": "HOSP"})
    assert "Enrolled on" in patient.text and grant["grant_id"] in patient.text
    # Done forgets the code: the sheet cannot be downloaded any more.
    clerk.post(result_path + "/done")
    assert clerk.http.get(sheet_path.group(1)).status_code == 404
    # Enrolling again without "replace" is refused and issues nothing.
    clerk.post("/patient/keypad", {**form, "pin": PIN, "pin_again": PIN})
    assert len(fake.grants) == 1


def test_enrol_with_pin_later_sends_no_pin(clerk: StaffBrowser, site: EdgeSite, fake: FakeGrantApi) -> None:
    site.study(accession="ACC1")
    page = clerk.post("/patient/enrol", {"mrn": "PAT001", "issuer": "HOSP", "expires_days": "90"})
    assert len(CODE.findall(page.text)) == 1 and "chooses a PIN the first time" in page.text
    (create,) = [body for method, path, body in fake.requests if method == "POST" and path == "/grants"]
    assert create is not None and "pin" not in create
    (grant,) = fake.grants.values()
    assert grant["pin_set"] is False
    assert any(a[1] == "enrol" for a in _actions(site))
    link = re.search(r'id="sheet-link" href="([^"]+)"', page.text)
    assert link is not None
    pages = "".join(p.extract_text() for p in PdfReader(io.BytesIO(clerk.http.get(link.group(1)).content)).pages)
    assert "you are asked to choose a PIN" in pages and "the PIN you chose" not in pages


def test_grant_client_sends_no_pin_member_for_a_pending_grant(fake: FakeGrantApi) -> None:
    client = fake.client()
    issued = client.create(patient_id="P^^^&1.2&ISO", pin=None, expires=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    with_pin = client.create(patient_id="P^^^&1.2&ISO", pin="9876", expires=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    bodies = [body for method, _path, body in fake.requests if method == "POST"]
    assert bodies[0] is not None and "pin" not in bodies[0]
    assert bodies[1] is not None and bodies[1]["pin"] == "9876"
    assert fake.grants[issued.grant_id]["pin_set"] is False and fake.grants[with_pin.grant_id]["pin_set"] is True


def test_pin_reset_and_revoke(clerk: StaffBrowser, admin: StaffBrowser, site: EdgeSite, fake: FakeGrantApi) -> None:
    site.study(accession="ACC1")
    clerk.post("/patient/enrol", {"mrn": "PAT001", "issuer": "HOSP"})
    (grant,) = fake.grants.values()
    reset = clerk.post("/patient/keypad", {"mrn": "PAT001", "issuer": "HOSP", "purpose": "reset", "pin": "7391", "pin_again": "7391"})
    assert "new PIN is set" in reset.text and grant["pin"] == "7391"
    unconfirmed = admin.post("/patient/revoke", {"mrn": "PAT001", "issuer": "HOSP"})
    assert "Tick the confirmation" in unconfirmed.text and not grant["revoked"]
    revoked = admin.post("/patient/revoke", {"mrn": "PAT001", "issuer": "HOSP", "confirm": "on"})
    assert "Revoked 1 grant" in revoked.text and grant["revoked"]
    assert "Not enrolled" in revoked.text
    assert [a[1] for a in _actions(site) if a[1] in ("pin-reset", "revoke")] == ["pin-reset", "revoke"]


def test_registry_down_issues_nothing(clerk: StaffBrowser, site: EdgeSite, fake: FakeGrantApi) -> None:
    site.study(accession="ACC1")
    fake.down = True
    page = clerk.post("/patient/enrol", {"mrn": "PAT001", "issuer": "HOSP"})
    assert "cannot be reached" in page.text and not CODE.findall(page.text)
    assert "Not enrolled" in page.text


def test_keypad_enrolment_against_the_real_registry(tmp_path: Path, site: EdgeSite) -> None:
    """The code and the PIN typed at the keypad trade for a token at the registry."""
    from registry.app import build_registry_app
    from registry.config import RegistrySettings

    registry = RegistrySettings(
        db=f"sqlite:///{tmp_path / 'registry.sqlite'}", data_dir=tmp_path / "registry", mllp_port=0,
        access_policy="consent", grant_api_key=API_KEY, token_lifetime_s=120,
    )
    with ServerThread(build_registry_app(registry)) as server:
        client = GrantClient(f"{server.url}/consent", API_KEY)
        browser = StaffBrowser(console_app(site, grant_client=client))
        browser.sign_in("clerk", USER_PASSWORD)
        site.study(accession="ACC1")
        shown = browser.post("/patient/keypad", {"mrn": "PAT001", "issuer": "HOSP", "purpose": "enrol", "pin": PIN, "pin_again": PIN})
        (display,) = CODE.findall(shown.text)
        assert httpx.post(f"{server.url}/consent/token", data={"code": display, "pin": PIN}).status_code == 200
        assert httpx.post(f"{server.url}/consent/token", data={"code": display, "pin": "000000"}).status_code == 401
        client.close()


# -- the cart and the jobs ---------------------------------------------------------------------------
def test_cart_shares_selected_exams_under_a_policy_and_autosend(clerk: StaffBrowser, site: EdgeSite) -> None:
    first = site.study(accession="ACC1")
    second = site.study(accession="ACC2")
    other = site.study(patient_id="PAT009", patient_name="Roe^Max", accession="ACC9")
    refused = clerk.post("/patient/share", {"mrn": "PAT001", "issuer": "HOSP", "policy": "when-final", "study": [first.study_uid, other.study_uid]})
    assert "not an exam of this patient" in refused.text and site.jobs.list() == []
    assert "Select at least one" in clerk.post("/patient/share", {"mrn": "PAT001", "issuer": "HOSP", "policy": "routine"}).text
    page = clerk.post("/patient/share", {"mrn": "PAT001", "issuer": "HOSP", "policy": "when-final", "study": [first.study_uid, second.study_uid]})
    assert "Shared 2 exam(s) (when-final)" in page.text
    jobs = {j.study_uid: j for j in site.jobs.list()}
    assert set(jobs) == {first.study_uid, second.study_uid}
    assert all(j.policy is ReleasePolicy.WHEN_FINAL and j.state is JobState.QUEUED and j.issuer == "HOSP" for j in jobs.values())
    assert jobs[first.study_uid].accession == "ACC1"
    # The shared exams are no longer offered while their jobs are active.
    assert f'value="{first.study_uid}"' not in page.text and "queued" in page.text
    on = clerk.post("/patient/autosend", {"mrn": "PAT001", "issuer": "HOSP", "enable": "on", "policy": "immediately"})
    assert "Autosend is on (immediately)" in on.text
    (auto,) = site.jobs.autosend_patients()
    assert (auto.patient_id, auto.issuer, auto.policy) == ("PAT001", "HOSP", ReleasePolicy.IMMEDIATELY)
    off = clerk.post("/patient/autosend", {"mrn": "PAT001", "issuer": "HOSP", "enable": "off"})
    assert "Autosend is off" in off.text and site.jobs.autosend_patients() == []
    assert [a[1] for a in _actions(site) if a[1] in ("share", "autosend-on", "autosend-off")] == ["share", "autosend-on", "autosend-off"]


def test_job_list_filters_detail_and_retry(clerk: StaffBrowser, site: EdgeSite) -> None:
    failed_spec = site.study(accession="ACC1")
    other_spec = site.study(patient_id="PAT002", patient_name="Doe^John", accession="ACC2")
    failed = site.failed_job(failed_spec, "repository refused: XDSRepositoryError")
    queued = site.jobs.create(patient_id="PAT002", issuer="HOSP", study_uid=other_spec.study_uid, policy=ReleasePolicy.ROUTINE).id
    listing = clerk.get("/jobs")
    assert f'id="job-{failed}"' in listing.text and f'id="job-{queued}"' in listing.text
    assert "repository refused: XDSRepositoryError" in listing.text
    only_failed = clerk.get("/jobs", params={"state": "failed"})
    assert f'id="job-{failed}"' in only_failed.text and f'id="job-{queued}"' not in only_failed.text
    only_patient = clerk.get("/jobs", params={"patient": "PAT002"})
    assert f'id="job-{queued}"' in only_patient.text and f'id="job-{failed}"' not in only_patient.text
    assert clerk.get("/jobs", params={"state": "bogus"}).status_code == 400
    retried = clerk.post(f"/jobs/{failed}/retry", {"state": "failed"})
    assert f"Job {failed} is queued again" in retried.text
    job = site.jobs.get(failed)
    assert job is not None and job.state is JobState.QUEUED and job.attempts == 0
    detail = clerk.get(f"/jobs/{failed}")
    assert 'id="job-state">queued' in detail.text and "manual retry" in detail.text and "XDSRepositoryError" in detail.text
    assert "Retry this job" not in detail.text
    # A job that is not failed is not retried from the list (no button), and a done one refuses.
    assert clerk.post("/jobs/99999/retry").status_code == 404
    assert ("clerk", "retry", "PAT001") in _actions(site)


# -- the audit trail ---------------------------------------------------------------------------------
def test_audit_trail_shows_staff_actions_and_gated_retrievals(clerk: StaffBrowser, site: EdgeSite, fake: FakeGrantApi) -> None:
    site.study(accession="ACC1")
    clerk.get("/patient", params={"mrn": "PAT001", "issuer": "HOSP"})
    clerk.post("/patient/enrol", {"mrn": "PAT001", "issuer": "HOSP"})
    (grant_id,) = fake.grants
    path = site.settings.audit_path()
    assert path is not None
    moment = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
    log = AuditLog(path, clock=lambda: moment)
    for n in range(60):
        log.record(actor="imaging-source", transaction="RAD-69", outcome="permitted", who=grant_id if n % 2 else "anonymous",
                   client="10.0.0.7", requested=n, returned=n)
    log.close()
    page = clerk.get("/audit")
    assert "view-patient" in page.text and "enrol" in page.text
    cell = '<td data-label="Transaction">RAD-69</td>'
    assert page.text.count(cell) == 50 and "PAT001 (HOSP)" in page.text
    older = re.search(r'href="(/console/audit\?rbefore=\d+)"', page.text)
    assert older is not None
    rest = clerk.http.get(older.group(1).replace("&amp;", "&"))
    assert rest.text.count(cell) == 10
    # The retrieval pages together hold every record once, newest first.
    first = read_page(path, limit=50)
    second = read_page(path, before=first.next_before, limit=50)
    assert [r.requested for r in first.records + second.records] == list(range(59, -1, -1))
    assert second.next_before is None
    by_patient = clerk.get("/audit", params={"patient": "PAT001"})
    actions = by_patient.text.split('id="actions"')[1].split('id="retrievals"')[0]
    assert "view-patient" in actions and ">sign-in<" not in actions


def test_retrieval_log_is_read_in_bounded_pages(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = [f'{{"time": "2025-01-01T00:00:{n % 60:02d}+00:00", "who": "{"g" * (n % 300)}", "requested": {n}}}' for n in range(2000)]
    path.write_text("\n".join(lines[:1000]) + "\nnot json\n" + "\n".join(lines[1000:]) + "\n")
    seen: list[int] = []
    before = None
    pages = 0
    while True:
        page = read_page(path, before=before, limit=73, max_bytes=20_000)
        seen += [r.requested for r in page.records]
        pages += 1
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == list(range(1999, -1, -1)) and pages > 2000 // 73
    assert read_page(tmp_path / "missing.jsonl").records == () and read_page(None).records == ()
