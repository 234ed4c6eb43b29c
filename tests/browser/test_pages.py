"""The pages in a real browser: Debian's Chromium, driven by Playwright.

Run by ``tox -e browser`` only (the default cells have no browser). A
missing Chromium fails these tests, as a missing database fails the others.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from importjob import Chunk, ImportJob, ImportJobRepository

NONE = "\u2013"  # the en dash a missing time shows
RELATIVE = re.compile(r"^(just now|\d+ (s|min) ago)$")
EXACT = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")
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
    gated: Callable[..., Any],
) -> None:
    job = repo.create(ImportJob(source_type="csv", filename="pairs.csv", total_rows=200))
    server = serve()
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.goto(f"{server.base_url}/jobs/{job.id}")
    status = page.locator('[data-job-page] [data-field="status"]').first
    bar = page.locator('[data-job-page] progress[data-field="bar"]')
    expect(status).to_have_text("pending")
    with gated("importer.py", db_url, job.id, 200) as gate:
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


def test_rate_chart_draws_the_import_and_falls_to_zero_when_it_stalls(
    page: Page,
    serve: Callable[..., Any],
    repo: ImportJobRepository,
    db_url: str,
    gated: Callable[..., Any],
) -> None:
    job = repo.create(ImportJob(source_type="csv", filename="rate.csv", total_rows=200))
    server = serve()
    page.goto(f"{server.base_url}/jobs/{job.id}")
    line = page.locator("svg[data-rate-chart] polyline[data-rate-line]")
    now, peak = page.locator("[data-rate-now]"), page.locator("[data-rate-peak]")
    expect(line).to_have_count(1)
    with gated("importer.py", db_url, job.id, 200) as gate:
        expect(page.locator('[data-job-page] progress[data-field="bar"]')).to_have_attribute(
            "value", "100", timeout=60_000
        )
        # Held at half: the chart's own clock takes the rate down to zero,
        # while the peak remembers the first half.
        expect(now).to_have_text("0 rows/s", timeout=30_000)
        expect(peak).not_to_have_text("0 rows/s")
        expect(peak).to_contain_text("rows/s")
        stalled = line.get_attribute("points")
        assert stalled is not None
        assert len(stalled.split()) == 60  # a point a bucket
        gate.touch()
        expect(page.locator('[data-job-page] [data-field="status"]').first).to_have_text(
            "completed", timeout=60_000
        )
        # The second half drawn: the line is not the stalled one any more.
        expect(line).not_to_have_attribute("points", stalled)


def test_chunk_rows_follow_their_chunks_live(
    page: Page,
    serve: Callable[..., Any],
    repo: ImportJobRepository,
    db_url: str,
    gated: Callable[..., Any],
) -> None:
    parent, (a, b) = repo.create_chunked(
        ImportJob(source_type="csv", filename="chunked.csv"),
        [Chunk(40, {"rows": [0, 40]}), Chunk(40, {"rows": [40, 80]})],
    )
    server = serve()
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.goto(f"{server.base_url}/jobs/{parent.id}")
    rows = {chunk.id: page.locator(f'tr[data-job-id="{chunk.id}"]') for chunk in (a, b)}
    statuses = page.locator("[data-chunk-statuses]")
    expect(statuses).to_have_text("pending 2")
    with gated("chunk_worker.py", db_url, 2) as gate:
        # The worker holds the chunk it claimed at half: its row, and only
        # its row, says so. Usually the first chunk; the second when the
        # first's row was locked for a moment by the page's watch mark.
        expect(statuses).to_have_text("pending 1 · processing 1", timeout=60_000)
        [claimed] = [c.id for c in repo.children(parent.id) if c.status == "processing"]
        first, second = rows[claimed], rows[b.id if claimed == a.id else a.id]
        expect(first.locator('[data-field="bar"]')).to_have_attribute("value", "20", timeout=60_000)
        expect(first.locator('[data-field="percent"]')).to_have_text("50.0 %")
        expect(first.locator('[data-field="status"]')).to_have_text("processing")
        expect(first.locator('[data-field="worker_id"]')).to_have_text("chunk-worker")
        expect(second.locator('[data-field="status"]')).to_have_text("pending")
        gate.touch()
        for row in (first, second):
            expect(row.locator('[data-field="status"]')).to_have_text("completed", timeout=60_000)
            expect(row.locator('[data-field="bar"]')).to_have_attribute("value", "40")
            expect(row.locator('[data-field="progress"]')).to_have_text("40 / 40")
        expect(statuses).to_have_text("completed 2")
        # The parent's own fields are its own, not a chunk's.
        expect(page.locator('[data-job-page] [data-field="percent"]').first).to_have_text(
            "100.0 %", timeout=60_000
        )
    assert navigations == [f"{server.base_url}/jobs/{parent.id}"]  # never reloaded


def test_times_are_relative_with_the_exact_time_on_hover(
    page: Page, serve: Callable[..., Any], repo: ImportJobRepository
) -> None:
    job = repo.create(ImportJob(source_type="csv", filename="times.csv", total_rows=4))
    server = serve()
    page.goto(server.base_url)
    age = page.locator(f'tr[data-job-id="{job.id}"] time[data-field="age"]')
    expect(age).to_have_text(RELATIVE)
    expect(age).to_have_attribute("title", EXACT)
    page.goto(f"{server.base_url}/jobs/{job.id}")
    started = page.locator('[data-job-page] time[data-field="started_at"]')
    expect(started).to_have_text(NONE)
    expect(page.locator('[data-job-page] time[data-field="created_at"]')).to_have_text(RELATIVE)
    # A time pushed live is written the same way, by the script.
    repo.start(job.id)
    expect(started).to_have_text(RELATIVE)
    expect(started).to_have_attribute("title", EXACT)
    moment = started.get_attribute("datetime")
    assert moment is not None
    heartbeat = page.locator('[data-job-page] time[data-field="heartbeat_at"]')
    expect(heartbeat).to_have_attribute("title", EXACT)
