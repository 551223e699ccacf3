"""The patient portal in real headless Chromium, against a real system.

The system: ``xds up`` as its own process on free loopback ports (every actor, consent policy),
seeded by ``xds demo --json`` (a chest CT and a brain MR with reports, enrolled, shared with
immediate release). The portal under test is the one ``xds up`` mounts at ``/portal``.

The lock-out test runs last: the registry throttles per client address too, and every portal
sign-in comes from the portal's address.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from consumer.fetch import FetchOptions, FetchSummary, SecuredSoapClient, fetch, find_exams
from consumer.token import TokenRefused, request_token, token_url_for
from tests.support.browser import browser, page, screenshot  # noqa: F401
from tests.support.up import Up, running_up, xds_command, xds_env

pytestmark = pytest.mark.timeout(600)


@dataclass(frozen=True)
class System:
    up: Up
    demo: dict[str, Any]
    portal: str  # base URL of the portal, ending in /portal

    @property
    def self_service(self) -> bool:
        """Whether the registry offers the self-service API (shares need it)."""
        answer = httpx.get(self.up.base + "/consent/self", timeout=10)
        return answer.status_code != 404


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    directory = tmp_path_factory.mktemp("portal-e2e")
    with running_up(directory) as up:
        seeded = subprocess.run(
            [
                *xds_command(), "demo", "--port", str(up.port), "--mllp-port", str(up.mllp_port),
                "--dicom-port", str(up.dicom_port), "--ris-port", str(up.ris_port), "--data-dir", str(up.data_dir),
                "--json",
            ],  # fmt: skip
            capture_output=True,
            text=True,
            env=xds_env(),
            timeout=300,
        )
        assert seeded.returncode == 0, seeded.stderr[-3000:] + up.log.read_text()[-3000:]
        demo = json.loads(seeded.stdout)
        assert demo["portal"] == up.base + "/portal/"
        yield System(up, demo, up.base + "/portal")


def _sign_in(page: Any, system: System, *, pin: str | None = None) -> None:  # noqa: F811
    page.goto(system.portal + "/")
    page.get_by_label("Access code").fill(system.demo["access_code_display"])
    page.get_by_label("PIN", exact=True).fill(pin if pin is not None else system.demo["pin"])
    page.get_by_role("button", name="Sign in").click()


def _loaded(image: Any) -> None:
    """Wait until an <img> has decoded (polled from Python: the page's CSP forbids the eval
    that Playwright's wait_for_function polling uses)."""
    for _ in range(200):
        if image.evaluate("img => img.complete && img.naturalWidth > 0"):
            return
        image.page.wait_for_timeout(50)
    raise AssertionError(f"image {image} did not load")


def _consumer_exams(system: System, code: str, pin: str) -> list[str]:
    token = request_token(token_url_for(system.demo["registry"]), code, pin)
    assert token.patient_id
    with SecuredSoapClient(system.demo["registry"], security=token.security_header) as client:
        return sorted(e.study_uid for e in find_exams(client, token.patient_id))


def _consumer_fetch(system: System, code: str, pin: str, out: Path) -> FetchSummary:
    """What a care team's system does with the share's code and PIN: ``xds consumer fetch``'s
    library call (token, ITI-18, ITI-43, RAD-69, every instance checked against the KOS)."""
    token = request_token(token_url_for(system.demo["registry"]), code, pin)
    assert token.patient_id
    options = FetchOptions(
        registry=system.demo["registry"], repository=system.demo["repository"], patient_id=token.patient_id, out=out,
        sources={system.demo["source_id"]: system.demo["imaging_source"]}, security=token.security_header,
    )  # fmt: skip
    return fetch(options)


def test_patient_jacket_viewer_and_a_share_for_the_care_team(system: System, page: Any, tmp_path: Path) -> None:  # noqa: F811
    studies = {s["modality"]: s for s in system.demo["studies"]}
    ct, mr = studies["CT"], studies["MR"]
    page.goto(system.portal + "/")
    assert page.title().startswith("Sign in")
    screenshot(page, "portal-sign-in")

    _sign_in(page, system)
    page.wait_for_url(re.compile(r".*/portal/jacket$"))
    jacket = page.locator("main")
    assert jacket.get_by_role("heading", name=ct["description"]).is_visible()
    assert jacket.get_by_role("heading", name=mr["description"]).is_visible()
    assert jacket.get_by_text("Report available").count() == 2
    page.get_by_text("Read the report").first.click()
    assert page.locator("pre.report-text").first.is_visible()
    screenshot(page, "portal-jacket")
    assert system.demo["pin"] not in page.content()

    # The exam viewer: thumbnails, the slider (keyboard), the window presets.
    page.locator("article", has=page.get_by_role("heading", name=ct["description"])).get_by_role("link", name="View images").click()
    page.wait_for_url(re.compile(r".*/portal/exam/.*"))
    thumbs = page.locator("ul.thumbs img")
    assert thumbs.count() >= 1
    for index in range(thumbs.count()):
        _loaded(thumbs.nth(index))
    viewer = page.locator("#viewer-image")
    first_src = viewer.get_attribute("src")
    slider = page.get_by_label("Image", exact=True)
    slider.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert viewer.get_attribute("src") != first_src
    page.get_by_label("Contrast").select_option("lung")
    assert "window=lung" in (viewer.get_attribute("src") or "")
    _loaded(viewer)
    screenshot(page, "portal-exam-viewer")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download this exam").click()
    archive = Path(download_info.value.path())
    assert archive.stat().st_size > 10_000 and archive.read_bytes()[:2] == b"PK"

    assert system.self_service, "the registry offers the self-service API (/consent/self)"

    # A share of the CT only, for a recipient, with its own code and PIN shown once.
    page.get_by_role("link", name="My exams", exact=True).click()
    page.locator("article", has=page.get_by_role("heading", name=ct["description"])).get_by_label("Select to share").check()
    page.get_by_role("button", name="Share the selected exams").click()
    assert page.get_by_label(ct["description"], exact=False).is_checked()
    page.get_by_label("Shared with").fill("Dr. Lee, cardiology")
    page.get_by_role("button", name="Create the share").click()
    page.wait_for_selector("#share-code")
    code = page.locator("#share-code").inner_text().strip()
    pin = page.locator("#share-pin").inner_text().strip()
    assert re.fullmatch(r"\d{4}-\d{4}", code) and pin and code != system.demo["access_code_display"]
    screenshot(page, "portal-share-created")
    with page.expect_download() as sheet_info:
        page.get_by_role("link", name="Download the sheet (PDF)").click()
    assert Path(sheet_info.value.path()).read_bytes().startswith(b"%PDF-")

    # A consumer with the share's code and PIN sees, and fetches, exactly the shared exam.
    assert _consumer_exams(system, code, pin) == [ct["study_uid"]]
    fetched = _consumer_fetch(system, code, pin, tmp_path / "care-team")
    assert fetched.ok and fetched.studies == (ct["study_uid"],) and fetched.instances == ct["instances"]
    assert _consumer_exams(system, system.demo["access_code"], system.demo["pin"]) == sorted([ct["study_uid"], mr["study_uid"]])

    # The patient sees when it was used, and revokes it; the consumer then sees nothing.
    page.get_by_role("link", name="Shares", exact=True).click()
    share = page.locator("article", has=page.get_by_role("heading", name="Dr. Lee, cardiology"))
    assert "Not used yet" not in share.inner_text()
    share.get_by_role("button", name="Revoke").click()
    page.wait_for_url(re.compile(r".*/portal/shares\?m=revoked$"))
    assert "Revoked" in page.locator("article", has=page.get_by_role("heading", name="Dr. Lee, cardiology")).inner_text()
    with pytest.raises(TokenRefused):
        _consumer_exams(system, code, pin)


def test_wrong_pin_five_times_locks_the_code(system: System, page: Any) -> None:  # noqa: F811
    wrong = "0" * 6 if system.demo["pin"] != "0" * 6 else "1" * 6
    for attempt in range(5):
        _sign_in(page, system, pin=wrong)
        if attempt < 4:
            assert "not correct" in page.get_by_role("alert").inner_text()
    # Five failures lock the code: the right PIN now is refused, with the time to wait.
    _sign_in(page, system)
    alert = page.get_by_role("alert").inner_text()
    assert "locked" in alert and re.search(r"try again in \d+ minute", alert)
    assert system.demo["pin"] not in page.content() and wrong not in page.content()
    screenshot(page, "portal-locked")
