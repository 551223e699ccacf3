"""Headless Chromium for the web front ends' browser tests.

Playwright's Python package drives the Debian ``chromium`` binary (installed by
``scripts/install-browser.sh``) through ``executable_path``; nothing is downloaded. Tests that
need it skip with the reason when the binary or the package is missing. Screenshots go to
``test-artifacts/screenshots`` (kept by CI as artefacts, ignored by git).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def chromium_path() -> str | None:
    """The Debian Chromium binary (the real one behind the /usr/bin wrapper when present)."""
    explicit = os.environ.get("XDS_CHROMIUM")
    if explicit:
        return explicit
    real = Path("/usr/lib/chromium/chromium")
    if real.exists():
        return str(real)
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module. Not per session: Playwright's sync API keeps an
    event loop running in the main thread while it is started, and the asyncio code of the
    tests that come after it in the same process (anyio.run, asyncio.run) could not start."""
    binary = chromium_path()
    if binary is None:
        pytest.skip("chromium is not installed (scripts/install-browser.sh installs the Debian package)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (the test extra has it)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=binary, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (own cookies) and page per test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    try:
        yield context.new_page()
    finally:
        context.close()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/screenshots/<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
