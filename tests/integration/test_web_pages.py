"""The pages' live parts as the server draws them: times, the rate chart, chunk rows."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import httpx

from importjob import Chunk, ImportJob, ImportJobRepository, ImportJobStatus
from importjob.web._times import exact

Serve = Callable[..., Any]
NONE = "\u2013"  # the en dash a missing time shows


def page(server: Any, path: str) -> str:
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        answer = http.get(path)
    assert answer.status_code == 200, answer.text
    return answer.text


def time_element(text: str, field: str) -> re.Match[str]:
    found = re.search(
        rf'<time data-field="{field}" datetime="([^"]+)" title="([^"]+)">([^<]+)</time>', text
    )
    assert found, f"no <time> for {field}"
    return found


def test_times_read_relative_with_the_exact_time_on_hover(
    serve: Serve, repo: ImportJobRepository
) -> None:
    job = repo.create(ImportJob(source_type="csv", filename="times.csv", total_rows=3))
    job = repo.start(job.id, worker_id="w1")
    server = serve()
    listed, shown = page(server, "/"), page(server, f"/jobs/{job.id}")
    assert job.created_at is not None
    assert job.started_at is not None
    age = time_element(listed, "age")
    assert age.group(1) == job.created_at.isoformat()
    assert age.group(2) == exact(job.created_at.isoformat())
    assert re.fullmatch(r"just now|\d+ (s|min) ago", age.group(3))
    for field, moment in (("created_at", job.created_at), ("started_at", job.started_at)):
        found = time_element(shown, field)
        assert (found.group(1), found.group(2)) == (moment.isoformat(), exact(moment.isoformat()))
        assert re.fullmatch(r"just now|\d+ (s|min) ago", found.group(3))
    # Not ended: no moment, no title, a dash.
    assert f'<time data-field="completed_at">{NONE}</time>' in shown


def test_a_running_job_has_its_rate_chart_and_an_ended_one_hides_it(
    serve: Serve, repo: ImportJobRepository
) -> None:
    running = repo.create(ImportJob(source_type="csv", filename="run.csv", total_rows=3))
    ended = repo.create(ImportJob(source_type="csv", filename="end.csv", total_rows=3))
    repo.start(ended.id)
    repo.update_status(ended.id, ImportJobStatus.COMPLETED)
    server = serve()
    live = page(server, f"/jobs/{running.id}")
    assert '<div class="rate-chart">' in live
    assert "<svg data-rate-chart " in live
    done = page(server, f"/jobs/{ended.id}")
    assert '<div class="rate-chart" hidden>' in done
    # Drawn by the script alone: nothing inline for the policy to refuse.
    assert "style=" not in live
    assert "<script>" not in live


def test_a_chunked_import_draws_a_bar_per_chunk(serve: Serve, repo: ImportJobRepository) -> None:
    parent, (a, b) = repo.create_chunked(
        ImportJob(source_type="csv", filename="big.csv"),
        [Chunk(10, {"rows": [0, 10]}), Chunk(40, {"rows": [10, 50]})],
    )
    repo.start(a.id, "w1")
    repo.advance(a.id, 10, 9, 1)
    repo.update_status(a.id, ImportJobStatus.COMPLETED)
    repo.start(b.id, "w<2>")
    repo.advance(b.id, 10, 10, 0)
    shown = page(server := serve(), f"/jobs/{parent.id}")
    rows = re.findall(r'<tr data-job-id="([^"]+)" data-status="([^"]+)">(.*?)</tr>', shown, re.S)
    assert [(job_id, status) for job_id, status, _ in rows] == [
        (str(a.id), "completed"),
        (str(b.id), "processing"),
    ]
    first, second = (cells for _, _, cells in rows)
    assert '<progress max="10" value="10" data-field="bar">' in first
    assert '<td data-field="percent">100.0 %</td>' in first
    assert '<td data-field="error_count">1</td>' in first
    assert '<progress max="40" value="10" data-field="bar">' in second
    assert '<td data-field="percent">25.0 %</td>' in second
    assert '<td data-field="progress">10 / 40</td>' in second
    assert f'<td data-field="worker_id">{html.escape("w<2>")}</td>' in second
    assert "completed 1 · processing 1" in shown
    # A chunk's own page has no chunk rows.
    assert "data-chunks" not in page(server, f"/jobs/{b.id}")
