"""The example application in a real browser: users of two tenants, each signed in through its form.

``examples/dashboard_in_fastapi.py`` is served by uvicorn in a thread of the
test (so the test reads the audit log it writes) over a fresh database, the
dashboard at ``/admin/imports``. alice (tenant-a, may cancel) and bob
(tenant-b, reads only) each drive a browser context of their own, with
their own session cookie. ``--screenshots DIR`` writes the docs' pictures
of the list and job pages into DIR (CONTRIBUTING.md: The docs).
"""

from __future__ import annotations

import hashlib
import logging
import struct
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from importjob import ImportJob, ImportJobRepository, ImportJobStatus
from importjob.exceptions import ImportValidationError
from importjob.web import AUDIT_LOGGER

IMPORTER_CANCELLED = 3  # importer.py's CANCELLED: it stopped at a flush, the job cancelled
PREFIX = "/admin/imports"
# The docs' screenshots are this size.
VIEWPORT = ViewportSize(width=1280, height=820)
# A new job reaches an open list within 5 s as a rule; a busy machine gets more.
PUSHED_MS = 30_000
# Every URL a page holds or asks for, resolved by the browser.
_URLS_OF_PAGE = """() => [
    ...[...document.querySelectorAll("a[href]")].map((a) => a.href),
    ...[...document.querySelectorAll("form")].map((form) => form.action),
    ...[...document.querySelectorAll("[src]")].map((el) => el.src),
    ...[...document.querySelectorAll("link[href]")].map((link) => link.href),
]"""
_CANCEL_FROM_PAGE = """async (url) => {
    const answer = await fetch(url, {method: "POST"});
    return [answer.status, await answer.text()];
}"""


class ExampleApp:
    """The example application, served: its base URL and where its users' pages go."""

    def __init__(self, base_url: str, passwords: dict[str, str]) -> None:
        self.base_url = base_url
        self.passwords = passwords
        self.dashboard = f"{base_url}{PREFIX}"
        self.requested: dict[str, list[str]] = {}  # user: every URL their page asked for


@pytest.fixture
def example_app(
    db_url: str, asgi_server: Callable[..., Any], example: Callable[[str], Any]
) -> ExampleApp:
    """Return the FastAPI example, served on a free loopback port over the fresh database."""
    module = example("dashboard_in_fastapi")
    assert module.PREFIX == PREFIX
    server = asgi_server(module.create(db_url))
    return ExampleApp(server.base_url, {name: user[0] for name, user in module.USERS.items()})


@pytest.fixture
def sign_in(browser: Browser, example_app: ExampleApp) -> Iterator[Callable[[str], Page]]:
    """Return a function signing a user in through the login form, in a context of their own.

    The page it returns is on the dashboard's list, where the login sends
    them. A script error on any page fails the test.
    """
    contexts = []
    problems: list[str] = []

    def _sign_in(user: str) -> Page:
        context = browser.new_context(viewport=VIEWPORT, base_url=example_app.base_url)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"{user}: {error}"))
        requested = example_app.requested.setdefault(user, [])
        page.on("request", lambda request: requested.append(request.url))
        page.goto("/")
        page.get_by_label("user").fill(user)
        page.get_by_label("password").fill(example_app.passwords[user])
        page.get_by_role("button", name="sign in").click()
        expect(page).to_have_url(f"{example_app.dashboard}/")
        return page

    yield _sign_in
    for context in contexts:
        context.close()
    assert problems == []


def _job(repo: ImportJobRepository, owner: str | None, filename: str, **fields: Any) -> ImportJob:
    return repo.create(ImportJob(source_type="csv", filename=filename, owner=owner, **fields))


def _listed(page: Page) -> set[str]:
    return set(
        page.locator("tr[data-job-id]").evaluate_all("rows => rows.map(r => r.dataset.jobId)")
    )


def _outside(urls: list[str], app: ExampleApp) -> list[str]:
    return [url for url in urls if not url.startswith(f"{app.dashboard}/")]


def test_each_user_sees_their_own_tenant_s_imports_live_under_the_prefix(
    browser: Browser,
    sign_in: Callable[[str], Page],
    example_app: ExampleApp,
    repo: ImportJobRepository,
) -> None:
    alices = _job(repo, "tenant-a", "alice.csv")
    bobs = _job(repo, "tenant-b", "bob.csv")
    _job(repo, None, "nobody.csv")
    anonymous = browser.new_context(base_url=example_app.base_url)
    for path in (f"{PREFIX}/", f"{PREFIX}/jobs/{alices.id}", f"{PREFIX}/api/jobs"):
        answer = anonymous.request.get(path)
        assert answer.status == 403, path
        assert str(alices.id) not in answer.text()
    anonymous.close()

    alice, bob = sign_in("alice"), sign_in("bob")
    navigations: list[str] = []
    alice.on("framenavigated", lambda frame: navigations.append(frame.url))
    assert _listed(alice) == {str(alices.id)}
    assert _listed(bob) == {str(bobs.id)}
    # Created while both lists are open: alice's, one of no owner, then bob's.
    # Bob's list gains his, later than alice's: had hers reached him, it would be there.
    new = _job(repo, "tenant-a", "alice-new.csv", total_rows=4)
    _job(repo, None, "nobody-new.csv")
    bobs_new = _job(repo, "tenant-b", "bob-new.csv")
    row = alice.locator(f'tr[data-job-id="{new.id}"]')
    expect(row.locator("a")).to_have_text("alice-new.csv", timeout=PUSHED_MS)
    expect(bob.locator(f'tr[data-job-id="{bobs_new.id}"]')).to_have_count(1, timeout=PUSHED_MS)
    assert _listed(alice) == {str(alices.id), str(new.id)}
    assert _listed(bob) == {str(bobs.id), str(bobs_new.id)}
    # The added row is followed live.
    repo.start(new.id)
    repo.advance(new.id, 4, 4, 0)
    repo.update_status(new.id, "completed")
    expect(row.locator('[data-field="status"]')).to_have_text("completed", timeout=PUSHED_MS)
    expect(row.locator('[data-field="percent"]')).to_have_text("100.0 %")
    assert navigations == []  # never reloaded

    # Every link, form, asset and stream is under the prefix: the login's pages only are not.
    alice.goto(f"{PREFIX}/jobs/{new.id}")
    expect(alice.locator('[data-job-page] [data-field="status"]')).to_have_text("completed")
    for page in (alice, bob):
        assert _outside(page.evaluate(_URLS_OF_PAGE), example_app) == []
    login = [f"{example_app.base_url}/", f"{example_app.base_url}/login"]
    for user in ("alice", "bob"):
        asked = example_app.requested[user]
        assert _outside(asked, example_app) == login
        assert f"{example_app.dashboard}/static/app.js" in asked
        assert f"{example_app.dashboard}/api/jobs/events" in asked
        assert any(url.startswith(f"{example_app.dashboard}/api/events?id=") for url in asked)


def _rate_chart_points(page: Page) -> str:
    """Return the points of the job page's rows-per-second chart, once the page has drawn it."""
    line = page.locator("svg[data-rate-chart] polyline[data-rate-line]")
    expect(line).to_have_count(1)
    points = line.get_attribute("points")
    assert points, "the chart has no line"
    return points


def _expect_the_rate_chart_moved(page: Page, before: str) -> None:
    """Expect the job page's rows-per-second chart to draw other points than ``before``."""
    expect(page.locator("svg[data-rate-chart] polyline[data-rate-line]")).not_to_have_attribute(
        "points", before
    )


def test_a_running_import_moves_live_on_its_owner_s_page_and_she_cancels_it(
    sign_in: Callable[[str], Page],
    repo: ImportJobRepository,
    db_url: str,
    gated: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    job = _job(repo, "tenant-a", "orders.csv", total_rows=200)
    alice = sign_in("alice")
    alice.goto(f"{PREFIX}/jobs/{job.id}")
    navigations: list[str] = []
    alice.on("framenavigated", lambda frame: navigations.append(frame.url))
    status = alice.locator('[data-job-page] [data-field="status"]')
    bar = alice.locator('[data-job-page] progress[data-field="bar"]')
    expect(status).to_have_text("pending")
    chart = _rate_chart_points(alice)
    # Let go at the end of the block, the importer learns of the cancel at its
    # next flush, and stops.
    with gated("importer.py", db_url, job.id, 200, exit_code=IMPORTER_CANCELLED):
        # The importer holds at half, running: the page shows it there, pushed.
        expect(status).to_have_text("processing", timeout=60_000)
        expect(bar).to_have_attribute("value", "100", timeout=60_000)
        expect(alice.locator('[data-job-page] [data-field="percent"]')).to_have_text("50.0 %")
        expect(alice.locator('[data-job-page] [data-field="rate"]')).to_contain_text("rows/s")
        _expect_the_rate_chart_moved(alice, chart)
        alice.once("dialog", lambda dialog: dialog.accept())
        alice.locator("[data-cancel]").click()
        expect(alice.locator('[data-field="cancel-result"]')).to_have_text("cancelled")
        expect(status).to_have_text("cancelled", timeout=PUSHED_MS)
        expect(alice.locator("[data-cancel]")).to_have_count(0)
        stored = repo.get_by_id(job.id)
        assert stored is not None
        assert stored.status == ImportJobStatus.CANCELLED
        assert stored.processed_rows == 100
    assert navigations == []
    [record] = [r for r in caplog.records if r.name == AUDIT_LOGGER]
    assert (record.levelno, record.user, record.job_id, record.result) == (  # type: ignore[attr-defined]
        logging.INFO,
        "alice",
        str(job.id),
        "allowed",
    )


def test_bob_cannot_see_alice_s_import_nor_cancel_his_own(
    sign_in: Callable[[str], Page],
    example_app: ExampleApp,
    repo: ImportJobRepository,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    alices = repo.start(_job(repo, "tenant-a", "alice.csv").id, worker_id="w1")
    bobs = repo.start(_job(repo, "tenant-b", "bob.csv", total_rows=10).id, worker_id="w2")
    bob = sign_in("bob")

    def not_found(job_id: uuid.UUID) -> bytes:
        answer = bob.goto(f"{PREFIX}/jobs/{job_id}")
        assert answer is not None
        assert answer.status == 404
        # The same page as any missing job's, but for the id it names.
        return answer.body().replace(str(job_id).encode(), b"ID")

    assert not_found(alices.id) == not_found(uuid.uuid4())
    expect(bob.get_by_text("alice.csv")).to_have_count(0)

    bob.goto(f"{PREFIX}/jobs/{bobs.id}")
    expect(bob.locator('[data-job-page] [data-field="status"]')).to_have_text("processing")
    expect(bob.locator("[data-cancel]")).to_have_count(0)
    # Sent from his page all the same, as its own script would: same-origin, his cookie.
    status, body = bob.evaluate(
        _CANCEL_FROM_PAGE, f"{example_app.dashboard}/api/jobs/{bobs.id}/cancel"
    )
    assert status == 403
    assert "may not cancel" in body
    assert repo.get_by_id(bobs.id) == bobs  # nothing changed
    expect(bob.locator('[data-job-page] [data-field="status"]')).to_have_text("processing")
    [record] = [r for r in caplog.records if r.name == AUDIT_LOGGER]
    assert record.levelno == logging.WARNING
    assert (record.action, record.user, record.job_id, record.owner, record.result) == (  # type: ignore[attr-defined]
        "cancel",
        "bob",
        str(bobs.id),
        "tenant-b",
        "refused: no right to cancel",
    )


# The docs' screenshots: a day of imports of two tenants, as admin sees them.

_REASONS = [
    ("email", "must be an email address", "jane.doe@"),
    ("quantity", "must be a whole number", "12,5"),
    ("sku", "unknown product", "SKU-00931"),
]


# owner, file, rows in it, rows processed and failed, how it ended, how long ago it began, ran for
_ENDED = [
    ("tenant-a", "customers-2026-11.csv", 12_480, 12_480, 37, "completed", 180 * 60, 252),
    ("tenant-b", "invoices-q3.csv", 5_200, 1_850, 1_850, "failed", 120 * 60, 48),
    ("tenant-b", "contacts.csv", 900, 310, 0, "cancelled", 55 * 60, 20),
    (None, "nightly-sync.csv", 3_000, 3_000, 0, "completed", 40 * 60, 31),
]


def _began(conn: psycopg.Connection[Any], job: ImportJob, ago: int, ran: int = 0) -> None:
    # Created and run earlier in the day, as the imports of a real list were.
    conn.execute(
        """
        UPDATE import_job
        SET created_at = now() - make_interval(secs => %(ago)s),
            started_at = CASE WHEN started_at IS NOT NULL
                THEN now() - make_interval(secs => %(ago)s - 2) END,
            completed_at = CASE WHEN completed_at IS NOT NULL
                THEN now() - make_interval(secs => %(ago)s - %(ran)s) END
        WHERE id = %(id)s
        """,
        {"id": job.id, "ago": ago, "ran": ran},
    )


def _a_day_of_imports(repo: ImportJobRepository) -> ImportJob:
    """Fill the database with imports of tenant-a, tenant-b and none; return the running one."""
    conn = repo.connection
    for owner, filename, total, rows, failed, status, ago, ran in _ENDED:
        ended = _job(repo, owner, filename, total_rows=total)
        repo.start(ended.id, worker_id="worker-2")
        logged = range(min(failed, 40))
        entries = [ImportValidationError(17 + 389 * n, *_REASONS[n % 3]) for n in logged]
        repo.advance(ended.id, rows, rows - failed, failed, entries=entries)
        repo.update_status(ended.id, status)
        _began(conn, ended, ago, ran)
    running = _job(
        repo,
        "tenant-a",
        "orders-2026-12.csv",
        total_rows=48_000,
        metadata={"batch": 7},
        source_sha256=hashlib.sha256(b"orders-2026-12.csv").hexdigest(),
        source_size=5_412_880,
    )
    repo.start(running.id, worker_id="worker-1")
    _began(conn, running, 6 * 60)
    # Its failed rows so far, the reasons the page reads as it opens.
    so_far = [
        ImportValidationError(3 + 61 * n, *_REASONS[reason])
        for n, reason in enumerate([0] * 180 + [1] * 70 + [2] * 34)
    ]
    repo.advance(running.id, 18_000, 18_000 - 284, 284, entries=so_far, worker_id="worker-1")
    _job(repo, "tenant-b", "products.csv", total_rows=2_400)
    return running


def _advance_to(page: Page, repo: ImportJobRepository, job: ImportJob, processed: int) -> None:
    # One flush of a worker, seen on the page before the next.
    now = repo.get_by_id(job.id)
    assert now is not None
    more = processed - now.processed_rows
    repo.advance(job.id, more, more, worker_id="worker-1")
    expect(page.locator('[data-job-page] [data-field="progress"]')).to_have_text(
        f"{processed:,} / {job.total_rows:,}"
    )


def take_screenshots(page: Page, repo: ImportJobRepository, directory: Path) -> list[Path]:
    """Write the list and job pages, as admin sees them, into ``directory``; return the files."""
    running = _a_day_of_imports(repo)
    page.goto(f"{PREFIX}/jobs/{running.id}")
    # Advanced in steps while the page is open, as a worker flushes: the live parts move.
    for processed in (19_200, 20_500, 21_888):
        _advance_to(page, repo, running, processed)
    expect(page.locator('[data-job-page] [data-field="percent"]')).to_have_text("45.6 %")
    expect(page.locator("[data-reasons] tbody tr")).to_have_count(3)
    job_page = directory / "job-page.png"
    page.screenshot(path=job_page)
    page.goto(f"{PREFIX}/")
    expect(page.locator("tr[data-job-id]")).to_have_count(6)
    expect(page.locator(f'tr[data-job-id="{running.id}"] [data-field="percent"]')).to_have_text(
        "45.6 %"
    )
    list_page = directory / "list-page.png"
    page.screenshot(path=list_page)
    return [list_page, job_page]


@pytest.fixture
def screenshots(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Return where the screenshots go: ``--screenshots DIR``, else a temporary directory."""
    chosen: str | None = request.config.getoption("screenshots")
    return Path(chosen) if chosen else tmp_path


def test_screenshots_of_the_list_and_job_pages(
    sign_in: Callable[[str], Page], repo: ImportJobRepository, screenshots: Path
) -> None:
    written = take_screenshots(sign_in("admin"), repo, screenshots)
    assert [path.name for path in written] == ["list-page.png", "job-page.png"]
    for path in written:
        image = path.read_bytes()
        assert image.startswith(b"\x89PNG\r\n\x1a\n")
        width, height = struct.unpack(">II", image[16:24])  # the IHDR chunk's first fields
        assert (width, height) == (VIEWPORT["width"], VIEWPORT["height"])
        assert len(image) > 30_000, path  # a page of text and bars, not a blank one
