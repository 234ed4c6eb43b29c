"""job_metrics counts the ended jobs as they end: exact, whatever happens to them, and no scan."""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from importjob import Chunk, ImportJob, ImportJobRepository, ImportJobStatus
from importjob.exceptions import DataImportError

S = ImportJobStatus

# What job_metrics returned before the ended jobs were counted as they end:
# a scan of the table, here the oracle.
SCANNED = """
SELECT status, count(*),
       coalesce(sum(processed_rows) FILTER (WHERE chunks IS NULL), 0),
       coalesce(sum(error_count) FILTER (WHERE chunks IS NULL), 0),
       coalesce(sum(skipped_count) FILTER (WHERE chunks IS NULL), 0)
  FROM import_job GROUP BY status
"""


def _counts(repo: ImportJobRepository) -> dict[S, tuple[int, int, int, int]]:
    return {
        status: (m.jobs, m.processed_rows, m.failed_rows, m.skipped_rows)
        for status, m in repo.job_metrics().items()
    }


def _scanned(conn: psycopg.Connection[Any]) -> dict[S, tuple[int, int, int, int]]:
    found = {S(row[0]): tuple(int(v) for v in row[1:]) for row in conn.execute(SCANNED)}
    return {status: found.get(status, (0, 0, 0, 0)) for status in S}  # type: ignore[misc]


def _new(repo: ImportJobRepository) -> ImportJob:
    return repo.create(ImportJob(source_type="csv", filename="pairs.csv", total_rows=10))


def test_every_way_a_job_ends_or_changes_keeps_the_counts_exact(
    conn: psycopg.Connection[Any], repo: ImportJobRepository
) -> None:
    rng = random.Random(20261203)  # noqa: S311 - a fixed walk, not a secret
    jobs: list[ImportJob] = [_new(repo) for _ in range(4)]

    def any_job() -> Any:
        return rng.choice(jobs).id

    def chunked() -> None:
        _, chunks = repo.create_chunked(
            ImportJob(source_type="json", filename="big.json"),
            [Chunk(5, {"part": n}) for n in range(rng.randint(1, 3))],
            keep_going=rng.random() < 0.5,
        )
        jobs.extend(chunks)

    def counts() -> None:
        s, e, k = rng.randint(0, 3), rng.randint(0, 3), rng.randint(0, 2)
        repo.advance(any_job(), s + e + k, s, e, skipped=k)

    def absolute() -> None:
        s, e = rng.randint(0, 9), rng.randint(0, 9)
        repo.update_progress(any_job(), s + e, s, e)

    def stale() -> None:
        conn.execute("UPDATE import_job SET heartbeat_at = now() - interval '1 hour'")
        repo.rescue_stale(timedelta(minutes=5), requeue=rng.random() < 0.5)

    steps: list[Callable[[], object]] = [
        lambda: jobs.append(_new(repo)),
        chunked,
        lambda: repo.claim_next("w"),
        counts,
        absolute,  # an ended job's too: its rows move in the counts
        lambda: repo.update_status(any_job(), S.COMPLETED),
        lambda: repo.update_status(any_job(), S.FAILED),
        lambda: repo.cancel(any_job()),
        stale,
        lambda: repo.purge_finished(timedelta(0)),
        lambda: repo.add_error(any_job(), {"message": "bad"}),
    ]
    for step in range(300):
        with contextlib.suppress(DataImportError):  # a transition refused: nothing changed
            rng.choice(steps)()
        assert _counts(repo) == _scanned(conn), f"after step {step}"
    left = conn.execute("SELECT count(*) FROM import_job_ended_change").fetchone()
    assert left == (0,)  # every change folded


def test_job_metrics_reads_the_live_jobs_and_the_count_rows_only(
    conn: psycopg.Connection[Any], repo: ImportJobRepository
) -> None:
    for _ in range(3):
        job = repo.start(_new(repo).id, "w")
        repo.advance(job.id, 4, 3, 1)
        repo.update_status(job.id, S.COMPLETED)
    # Rows changed behind the counts' back (a bulk load with the triggers
    # off would do this) show only if job_metrics read them: it does not.
    conn.execute("SET session_replication_role = replica")
    conn.execute("UPDATE import_job SET processed_rows = 1000 WHERE status = 'completed'")
    conn.execute("RESET session_replication_role")
    completed = repo.job_metrics()[S.COMPLETED]
    assert (completed.jobs, completed.processed_rows, completed.failed_rows) == (3, 12, 3)


def test_two_callers_at_once_both_get_the_exact_counts(
    connect: Callable[[], psycopg.Connection[Any]], repo: ImportJobRepository
) -> None:
    jobs = [repo.start(_new(repo).id, "w") for _ in range(60)]
    done = threading.Event()
    seen: list[list[int]] = [[], []]

    def scrape(mine: list[int]) -> None:
        other = ImportJobRepository(connect())
        while not done.is_set():
            mine.append(other.job_metrics()[S.COMPLETED].jobs)

    scrapers = [threading.Thread(target=scrape, args=(mine,)) for mine in seen]
    for thread in scrapers:
        thread.start()
    ender = ImportJobRepository(connect())
    for job in jobs:
        ender.advance(job.id, 1, 1, 0)
        ender.update_status(job.id, S.COMPLETED)
    done.set()
    for thread in scrapers:
        thread.join(60)
    for mine in seen:
        assert mine
        assert mine == sorted(mine)  # never less than its call before saw
    assert repo.job_metrics()[S.COMPLETED].jobs == 60
    assert repo.job_metrics()[S.COMPLETED].processed_rows == 60


def test_truncate_empties_the_counts(
    conn: psycopg.Connection[Any], repo: ImportJobRepository
) -> None:
    job = repo.start(_new(repo).id, "w")
    repo.update_status(job.id, S.FAILED)
    assert repo.job_metrics()[S.FAILED].jobs == 1
    conn.execute("TRUNCATE import_job, import_job_error, import_job_error_group")
    assert all(m.jobs == 0 for m in repo.job_metrics().values())


@pytest.mark.parametrize("status", [S.COMPLETED, S.FAILED, S.CANCELLED])
def test_an_end_appends_one_change_and_a_flush_of_a_live_job_none(
    conn: psycopg.Connection[Any], repo: ImportJobRepository, status: S
) -> None:
    job = repo.start(_new(repo).id, "w")
    repo.advance(job.id, 2, 2, 0)
    assert conn.execute("SELECT count(*) FROM import_job_ended_change").fetchone() == (0,)
    if status is S.CANCELLED:
        repo.cancel(job.id)
    else:
        repo.update_status(job.id, status)
    changes = conn.execute("SELECT status, jobs, processed_rows FROM import_job_ended_change")
    assert changes.fetchall() == [(status.value, 1, 2)]


def test_the_oldest_ended_job_s_age_is_read_through_the_status_index(
    conn: psycopg.Connection[Any], repo: ImportJobRepository
) -> None:
    assert repo.job_metrics()[S.COMPLETED].oldest_age_seconds is None
    for _ in range(2):
        job = repo.start(_new(repo).id, "w")
        repo.update_status(job.id, S.COMPLETED)
    conn.execute(
        "UPDATE import_job SET created_at = now() - interval '2 days'"
        " WHERE id = (SELECT id FROM import_job ORDER BY created_at LIMIT 1)"
    )
    age = repo.job_metrics()[S.COMPLETED].oldest_age_seconds
    assert age is not None
    assert 2 * 86_400 <= age < 2 * 86_400 + 60
