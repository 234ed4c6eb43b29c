"""The browser every test of the pages drives: Debian's Chromium, through Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--screenshots",
        metavar="DIR",
        help="write the docs' screenshots into DIR (docs/ to update them), not a temporary one",
    )


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Return headless Chromium, the distribution's (never one Playwright downloads)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "no chromium on PATH: apt-get install chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, headless=True)
        yield launched
        launched.close()
