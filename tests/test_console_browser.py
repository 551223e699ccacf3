"""The staff console in real headless Chromium, served by uvicorn on a loopback port and mounted at
/console as the composition root mounts it: staff sign in, find a patient, enrol them with a PIN
typed on the on-screen keypad, download the code sheet (a PDF holding the code), share an exam,
and retry a failed job from the job list. Screenshots of the main pages are saved as artefacts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from imaging_source.jobs import JobState
from imaging_source.release import ReleasePolicy
from tests.support.browser import browser, page, screenshot  # noqa: F401  (fixtures)
from tests.support.console import USER_PASSWORD, EdgeSite, FakeGrantApi, console_app, edge_site, live_console

PIN = "271828"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[EdgeSite]:
    with edge_site(tmp_path) as made:
        yield made


def _type_on_keypad(page: Any, digits: str) -> None:
    for digit in digits:
        page.get_by_role("button", name=digit, exact=True).click()


def test_staff_enrol_a_patient_share_and_retry_a_failed_job(page: Any, site: EdgeSite, tmp_path: Path) -> None:  # noqa: F811
    chest = site.study(accession="ACC100", modalities=("CT",), study_date="20240102")
    site.study(accession="ACC101", modalities=("MR",), study_date="20240210")
    other = site.study(patient_id="PAT002", patient_name="Roe^Max", accession="ACC200")
    failed_id = site.failed_job(other, "repository refused the submission: XDSRepositoryError")
    fake = FakeGrantApi()
    with live_console(console_app(site, grant_client=fake.client())) as base:
        # Sign in with the keyboard only.
        page.goto(base + "/login")
        screenshot(page, "console-01-login")
        page.get_by_label("User name").fill("clerk")
        page.get_by_label("Password").fill(USER_PASSWORD)
        page.get_by_label("Password").press("Enter")
        page.wait_for_url(re.compile(r".*/console/patients$"))

        # Find the patient by name and open the jacket.
        page.get_by_label("Name or MRN").fill("jane doe")
        page.get_by_label("Name or MRN").press("Enter")
        page.get_by_role("link", name="DOE, Jane").click()
        page.wait_for_url(re.compile(r".*/console/patient\?mrn=PAT001.*"))
        assert page.get_by_role("heading", level=1).inner_text() == "DOE, Jane"
        assert "ACC100" in page.inner_text("table") and "ACC101" in page.inner_text("table")
        screenshot(page, "console-02-patient")

        # Enrol: the patient types the PIN twice on the on-screen keypad.
        page.get_by_role("button", name="Patient sets the PIN now (keypad)").click()
        page.wait_for_url(re.compile(r".*/console/patient/keypad.*"))
        assert page.locator("[data-keypad]").is_visible()
        _type_on_keypad(page, PIN)
        page.get_by_role("button", name="OK").click()  # to the second field
        _type_on_keypad(page, PIN)
        assert page.locator("#pin").input_value() == PIN and page.locator("#pin_again").input_value() == PIN
        assert page.locator("#pin").get_attribute("type") == "password"  # masked
        screenshot(page, "console-03-keypad")
        page.get_by_role("button", name="OK").click()
        page.wait_for_url(re.compile(r".*/console/enrolled/.*"))
        code = page.locator("#access-code").inner_text()
        assert re.fullmatch(r"\d{4}-\d{4}", code)
        (grant,) = fake.grants.values()
        assert grant["pin"] == PIN
        screenshot(page, "console-04-code")

        # The code sheet is a PDF holding the code (and not the PIN).
        with page.expect_download() as info:
            page.get_by_role("link", name="Download the code sheet (PDF)").click()
        sheet = tmp_path / "sheet.pdf"
        info.value.save_as(sheet)
        text = "".join(p.extract_text() for p in PdfReader(sheet).pages)
        assert code in text and PIN not in text

        # Back to the jacket: put one exam in the cart and share it immediately.
        page.get_by_role("button", name="Done").click()
        page.wait_for_url(re.compile(r".*/console/patient\?mrn=PAT001.*"))
        assert "Enrolled on" in page.locator("#enrolled-status").inner_text()
        page.get_by_label("Share exam ACC100").check()
        page.get_by_label("Immediately, even without a report").check()
        page.get_by_role("button", name="Share selected exams").click()
        assert "Shared 1 exam(s) (immediately)" in page.locator(".flashes").inner_text()
        (shared,) = site.jobs.for_study(chest.study_uid)
        assert shared.policy is ReleasePolicy.IMMEDIATELY and shared.state is JobState.QUEUED
        assert page.get_by_label("Share exam ACC100").count() == 0  # its job is active now

        # The failed job is retried from the job list and goes back to queued.
        page.get_by_role("navigation").get_by_role("link", name="Share jobs", exact=True).click()
        page.get_by_label("State").select_option("failed")
        page.get_by_role("button", name="Filter").click()
        row = page.locator(f"#job-{failed_id}")
        assert "XDSRepositoryError" in row.inner_text() and "failed" in row.inner_text()
        screenshot(page, "console-05-jobs")
        row.get_by_role("button", name=f"Retry job {failed_id}").click()
        assert f"Job {failed_id} is queued again" in page.locator(".flashes").inner_text()
        job = site.jobs.get(failed_id)
        assert job is not None and job.state is JobState.QUEUED
        assert page.locator(f"#job-{failed_id}").count() == 0  # no longer among the failed jobs
        page.goto(f"{base}/jobs/{failed_id}")
        page.wait_for_url(re.compile(rf".*/console/jobs/{failed_id}$"))
        assert page.locator("#job-state").inner_text() == "queued" and "manual retry" in page.inner_text("main")
        screenshot(page, "console-06-job")

        # The audit trail names who did what.
        page.get_by_role("navigation").get_by_role("link", name="Audit trail", exact=True).click()
        actions = page.locator("#actions").inner_text()
        for done in ("sign-in", "view-patient", "enrol", "code-sheet", "share", "retry"):
            assert done in actions
        assert code not in page.content()
        screenshot(page, "console-07-audit")

        # Readable on a phone: the jacket's table becomes stacked cards.
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{base}/patient?mrn=PAT001&issuer=HOSP")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        screenshot(page, "console-08-patient-phone")
