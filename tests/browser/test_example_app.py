"""The example application in a real browser: users of two tenants, each signed in through its form.

``examples/dashboard_in_fastapi.py`` is served by uvicorn in a thread of the
test (so the test reads the audit log it writes) over a fresh database, the
dashboard at ``/admin/imports``. alice (tenant-a, may cancel) and bob
(tenant-b, reads only) each drive a browser context of their own, with
their own session cookie.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from importjob import ImportJob, ImportJobRepository, ImportJobStatus
from importjob.web import AUDIT_LOGGER

IMPORTER = Path(__file__).with_name("importer.py")
IMPORTER_CANCELLED = 3  # importer.py's CANCELLED: it stopped at a flush, the job cancelled
PREFIX = "/admin/imports"
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


def _rate_chart_points(page: Page) -> str | None:
    """Return the points of the job page's rows-per-second chart, None on a page without one."""
    line = page.locator("[data-rate-chart] [data-rate-line]")
    return line.get_attribute("points") if line.count() else None


def _expect_the_rate_chart_moved(page: Page, before: str | None) -> None:
    """Expect the job page's rows-per-second chart to draw other points than ``before``."""
    # TODO(chart): the chart comes with another change. Once it is on the
    # job page, a page without one must fail here: drop this early return.
    if before is None and _rate_chart_points(page) is None:
        return
    expect(page.locator("[data-rate-chart] [data-rate-line]")).not_to_have_attribute(
        "points", before or ""
    )


def test_a_running_import_moves_live_on_its_owner_s_page_and_she_cancels_it(
    sign_in: Callable[[str], Page],
    repo: ImportJobRepository,
    db_url: str,
    tmp_path: Path,
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
    gate = tmp_path / "go-on"
    importer = subprocess.Popen(
        [sys.executable, str(IMPORTER), db_url, str(job.id), "200", str(gate)]
    )
    try:
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
    finally:
        gate.touch()
        # The worker learns of the cancel at its next flush, and stops.
        assert importer.wait(timeout=60) == IMPORTER_CANCELLED
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
