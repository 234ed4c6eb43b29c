"""The pages in a real browser: Debian's Chromium, driven by Playwright.

Run by ``tox -e browser`` only (the default cells have no browser). A
missing Chromium fails these tests, as a missing database fails the others.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from importjob import ImportJob, ImportJobRepository

IMPORTER = Path(__file__).with_name("importer.py")
HOSTILE = '<script>window.pwned=1</script>"\'><img src=x onerror="window.pwned=2">'


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """Return a new page that fails the test on any dialog or script error."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    opened = context.new_page()
    problems: list[str] = []
    opened.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    yield opened
    context.close()
    assert problems == []


def test_job_page_follows_an_import_live(
    page: Page,
    serve: Callable[..., Any],
    repo: ImportJobRepository,
    db_url: str,
    tmp_path: Path,
) -> None:
    job = repo.create(ImportJob(source_type="csv", filename="pairs.csv", total_rows=200))
    server = serve()
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.goto(f"{server.base_url}/jobs/{job.id}")
    status = page.locator('[data-job-page] [data-field="status"]').first
    bar = page.locator('[data-job-page] progress[data-field="bar"]')
    expect(status).to_have_text("pending")
    gate = tmp_path / "go-on"
    importer = subprocess.Popen(
        [sys.executable, str(IMPORTER), db_url, str(job.id), "200", str(gate)]
    )
    try:
        # The importer holds at half: the bar stands there, pushed, and the rest shows it.
        expect(status).to_have_text("processing")
        expect(bar).to_have_attribute("value", "100", timeout=60_000)
        expect(page.locator('[data-job-page] [data-field="percent"]')).to_have_text("50.0 %")
        expect(page.locator('[data-job-page] [data-field="rate"]')).to_contain_text("rows/s")
        gate.touch()
        expect(status).to_have_text("completed", timeout=60_000)
        expect(bar).to_have_attribute("value", "200")
        expect(page.locator('[data-job-page] [data-field="percent"]')).to_have_text("100.0 %")
        expect(page.locator('[data-job-page] [data-field="error_count"]')).to_have_text("28")
        # The reasons, fetched once at the end.
        expect(page.locator("[data-reasons] tbody tr")).to_have_count(1)
        expect(page.locator("[data-reasons] tbody td").first).to_have_text("28")
    finally:
        gate.touch()
        assert importer.wait(timeout=60) == 0
    assert navigations == [f"{server.base_url}/jobs/{job.id}"]  # never reloaded


def test_jobs_list_follows_its_jobs_live(
    page: Page, serve: Callable[..., Any], repo: ImportJobRepository
) -> None:
    job = repo.create(ImportJob(source_type="csv", filename="list.csv", total_rows=4))
    server = serve()
    page.goto(server.base_url)
    row = page.locator(f'tr[data-job-id="{job.id}"]')
    expect(row.locator('[data-field="status"]')).to_have_text("pending")
    repo.start(job.id)
    repo.advance(job.id, 4, 4, 0)
    repo.update_status(job.id, "completed")
    expect(row.locator('[data-field="status"]')).to_have_text("completed")
    expect(row.locator('[data-field="percent"]')).to_have_text("100.0 %")


def test_hostile_values_run_no_script(
    page: Page, serve: Callable[..., Any], repo: ImportJobRepository
) -> None:
    job = repo.create(
        ImportJob(
            source_type="csv",
            filename=HOSTILE,
            total_rows=10,
            owner=HOSTILE,
            metadata={HOSTILE: HOSTILE},
        )
    )
    repo.add_error(
        job.id, {"type": HOSTILE, "field": HOSTILE, "message": HOSTILE, "value": HOSTILE}
    )
    repo.update_progress(job.id, 1, 0, 1)
    server = serve()
    for path in (f"/jobs/{job.id}", "/"):
        page.goto(f"{server.base_url}{path}")
        expect(page.get_by_text(HOSTILE).first).to_be_visible()
        assert page.evaluate("typeof window.pwned") == "undefined"
        assert page.locator("img").count() == 0
    # A value pushed live is written as text too.
    page.goto(f"{server.base_url}/jobs/{job.id}")
    repo.start(job.id, worker_id="worker<img src=x onerror=window.pwned=3>")
    worker = page.locator('[data-job-page] [data-field="worker_id"]')
    expect(worker).to_have_text("worker<img src=x onerror=window.pwned=3>")
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert page.locator("img").count() == 0


def test_jobs_list_adds_the_jobs_created_while_it_is_open(
    page: Page, serve: Callable[..., Any], repo: ImportJobRepository
) -> None:
    server = serve()
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.goto(f"{server.base_url}/?owner=acme")
    expect(page.locator("[data-no-jobs]")).to_be_visible()
    repo.create(ImportJob(source_type="csv", filename="theirs.csv", owner="other"))
    job = repo.create(ImportJob(source_type="csv", filename=HOSTILE, total_rows=4, owner="acme"))
    row = page.locator(f'tr[data-job-id="{job.id}"]')
    # Within 5 s as a rule; a busy machine gets more.
    expect(row.locator("a")).to_have_text(HOSTILE, timeout=30_000)
    expect(row.locator('[data-field="status"]')).to_have_text("pending")
    expect(page.locator("tr[data-job-id]")).to_have_count(1)  # not the other owner's
    expect(page.locator("[data-no-jobs]")).to_have_count(0)
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert page.locator("img").count() == 0
    # The added row is followed live as the others are.
    repo.start(job.id)
    repo.advance(job.id, 4, 4, 0)
    repo.update_status(job.id, "completed")
    expect(row.locator('[data-field="status"]')).to_have_text("completed", timeout=30_000)
    expect(row.locator('[data-field="percent"]')).to_have_text("100.0 %")
    assert navigations == [f"{server.base_url}/?owner=acme"]  # never reloaded
