"""The importjob command, as a user meets it: real subprocesses, a real PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from importjob import Chunk, ImportJob, ImportJobRepository, ImportJobStatus
from importjob.exceptions import ImportValidationError, ParseError
from importjob.schema import migration_ids

S = ImportJobStatus
COMMAND = Path(sys.executable).with_name("importjob")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(extra)
    return env


def importjob(*args: str, url: str | None, **env: str) -> Any:
    """Run the command; ``url`` goes in DATABASE_URL, as a deploy sets it."""
    extra = {"DATABASE_URL": url} if url else {}
    return subprocess.run(
        [str(COMMAND), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(**extra, **env),
        check=False,
    )


def _one_line_error(result: Any, code: int = 2) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("importjob: ")
    return str(line)


def test_help_on_every_command() -> None:
    commands = [
        "migrate",
        "list",
        "show",
        "errors",
        "watch",
        "cancel",
        "rescue",
        "purge",
        "demo",
        "serve",
    ]
    top = importjob("--help", url=None)
    assert top.returncode == 0
    for command in commands:
        assert command in top.stdout
        result = importjob(command, "--help", url=None)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"Usage: importjob {command}")


def test_migrate_and_rollback(empty_db_url: str) -> None:
    missing = importjob("list", url=empty_db_url)
    assert "run `importjob migrate`" in _one_line_error(missing)
    applied = importjob("migrate", url=empty_db_url)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout == f"applied: {', '.join(migration_ids())}\n"
    again = importjob("migrate", url=empty_db_url)
    assert again.stdout == "nothing to apply: all applied\n"
    back = importjob("migrate", "--rollback", url=empty_db_url)
    assert back.stdout == f"rolled back: {migration_ids()[-1]}\n"
    assert importjob("migrate", url=empty_db_url).stdout == f"applied: {migration_ids()[-1]}\n"


@pytest.fixture
def jobs(repo: ImportJobRepository) -> list[ImportJob]:
    """Three jobs, oldest first: completed with errors, processing, pending."""
    done = repo.create(ImportJob(source_type="csv", filename="faq.csv", total_rows=4))
    repo.start(done.id, "worker-1")
    repo.advance(
        done.id,
        processed=4,
        success=2,
        errors=2,
        entries=[
            ImportValidationError(2, "answer", "must not be empty", value=""),
            ParseError(4, "unterminated quote", raw_data='"x'),
        ],
    )
    repo.update_status(done.id, S.COMPLETED)
    running = repo.create(ImportJob(source_type="json", filename="pairs.json", total_rows=10))
    repo.start(running.id, "worker-2")
    repo.advance(running.id, processed=5, success=5)
    waiting = repo.create(ImportJob(source_type="text", filename="notes.txt"))
    return [repo.get_by_id(job.id) for job in (done, running, waiting)]  # type: ignore[misc]


def test_list_newest_first(db_url: str, jobs: list[ImportJob]) -> None:
    result = importjob("list", url=db_url)
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["id", "status", "file", "progress", "errors", "skipped", "age"]
    assert [row.split()[0] for row in rows] == [str(job.id) for job in reversed(jobs)]
    done_row = rows[-1].split()
    assert done_row[1:6] == ["completed", "faq.csv", "4/4", "100%", "2"]
    assert rows[1].split()[3:5] == ["5/10", "50%"]


def test_list_filters_limits_and_prints_json(db_url: str, jobs: list[ImportJob]) -> None:
    only = importjob("list", "--status", "processing", "--json", url=db_url)
    assert only.returncode == 0, only.stderr
    [listed] = json.loads(only.stdout)
    assert listed["id"] == str(jobs[1].id)
    assert listed["processed_rows"] == 5
    assert listed["worker_id"] == "worker-2"
    newest = json.loads(importjob("list", "--limit", "2", "--json", url=db_url).stdout)
    assert [job["id"] for job in newest] == [str(jobs[2].id), str(jobs[1].id)]
    empty = importjob("list", "--status", "cancelled", url=db_url)
    assert empty.stdout == "no import jobs\n"


def test_list_filters_by_owner_and_metadata(db_url: str, repo: ImportJobRepository) -> None:
    faq = repo.create(
        ImportJob(
            source_type="csv", filename="faq.csv", owner="acme", metadata={"ds": "faq", "n": 7}
        )
    )
    repo.advance(faq.id, 5, 3, 1, skipped=1, outcomes={"created": 3, "duplicate": 1})
    text = repo.create(
        ImportJob(source_type="csv", filename="n.csv", owner="acme", metadata={"n": "7"})
    )
    other = repo.create(ImportJob(source_type="csv", filename="o.csv", metadata={"ds": "faq"}))

    def ids(*args: str) -> list[str]:
        result = importjob("list", "--json", *args, url=db_url)
        assert result.returncode == 0, result.stderr
        return [job["id"] for job in json.loads(result.stdout)]

    assert ids("--owner", "acme") == [str(text.id), str(faq.id)]
    assert ids("--meta", "ds=faq") == [str(other.id), str(faq.id)]
    assert ids("--owner", "acme", "--meta", "ds=faq", "--meta", "n=7") == [str(faq.id)]
    # A JSON scalar is read as one; quoted, it is the string.
    assert ids("--meta", "n=7") == [str(faq.id)]
    assert ids("--meta", 'n="7"') == [str(text.id)]
    assert ids("--owner", "nobody") == []
    assert ids("--filename", "FAQ") == [str(faq.id)]
    assert ids("--filename", ".csv", "--owner", "acme") == [str(text.id), str(faq.id)]
    table = importjob("list", "--owner", "acme", "--meta", "ds=faq", url=db_url)
    header, row = table.stdout.splitlines()
    assert row.split()[header.split().index("skipped")] == "1"
    [listed] = json.loads(
        importjob("list", "--json", "--meta", "ds=faq", "--meta", "n=7", url=db_url).stdout
    )
    assert (listed["owner"], listed["skipped_count"]) == ("acme", 1)
    assert listed["outcomes"] == {"created": 3, "duplicate": 1}


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--meta", "novalue"), "--meta"),
        (("--meta", "=faq"), "--meta"),
        (("--owner", ""), "--owner"),
        (("--owner", "a\tb"), "--owner"),
        (("--filename", ""), "--filename"),
        (("--filename", "x" * 256), "--filename"),
    ],
)
def test_list_refuses_a_bad_filter_in_one_line(
    db_url: str, args: tuple[str, ...], named: str
) -> None:
    result = importjob("list", *args, url=db_url)
    assert named in _one_line_error(result)


def test_show_gives_the_owner_metadata_and_outcomes(db_url: str, repo: ImportJobRepository) -> None:
    job = repo.create(
        ImportJob(source_type="csv", filename="faq.csv", owner="acme", metadata={"ds": "faq"})
    )
    repo.advance(job.id, 4, 2, 0, skipped=2, outcomes={"created": 2, "duplicate": 2})
    shown = importjob("show", str(job.id), url=db_url)
    assert shown.returncode == 0, shown.stderr
    fields = dict(line.split(None, 1) for line in shown.stdout.splitlines() if line.strip())
    assert fields["owner"].strip() == "acme"
    assert json.loads(fields["metadata"]) == {"ds": "faq"}
    assert fields["skipped_count"].strip() == "2"
    assert json.loads(fields["outcomes"]) == {"created": 2, "duplicate": 2}
    as_json = json.loads(importjob("show", str(job.id), "--json", url=db_url).stdout)
    assert (as_json["owner"], as_json["metadata"]) == ("acme", {"ds": "faq"})
    assert (as_json["skipped_count"], as_json["outcomes"]["duplicate"]) == (2, 2)


def test_show_of_a_chunked_import_gives_its_sums_and_its_chunks(
    db_url: str, repo: ImportJobRepository
) -> None:
    parent, chunks = repo.create_chunked(
        ImportJob(source_type="csv", filename="big.csv"), [Chunk(5), Chunk(5), Chunk(5)]
    )
    repo.start(chunks[0].id, "w1")
    repo.advance(chunks[0].id, 5, 5, 0)
    repo.update_status(chunks[0].id, ImportJobStatus.COMPLETED)
    repo.start(chunks[1].id, "w2")
    repo.advance(chunks[1].id, 2, 1, 1)
    shown = importjob("show", str(parent.id), url=db_url)
    assert shown.returncode == 0, shown.stderr
    lines = [line.strip() for line in shown.stdout.splitlines()]
    [by_status] = [line for line in lines if line.startswith("chunks by status")]
    fields = dict(line.split(None, 1) for line in lines if line and line != by_status)
    shown_counts = (fields["status"], fields["processed_rows"], fields["chunks"])
    assert shown_counts == ("processing", "7", "3")
    assert by_status.split(None, 3)[3] == "1 completed, 1 processing, 1 pending"


def test_show(db_url: str, jobs: list[ImportJob]) -> None:
    done = jobs[0]
    result = importjob("show", str(done.id), url=db_url)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for field in ImportJob.__attrs_attrs__:
        if field.name != "errors":
            assert field.name in text
    for expected in ("faq.csv", "worker-1", "4/4 100%", "rows/s", "errors (2 stored)"):
        assert expected in text
    table = text[text.index("errors (2 stored)") :]
    assert "answer" in table
    assert "must not be empty" in table
    assert "unterminated quote" in table
    assert "more not stored" not in text
    # The reasons above the entries, and where the rest is.
    reasons = text[text.index("top reasons") : text.index("errors (2 stored)")]
    assert "ImportValidationError" in reasons
    assert "unterminated quote" in reasons
    assert f"the error log holds 2 entries: importjob errors {done.id}" in text


def test_show_a_failed_job_with_job_level_errors(db_url: str, repo: ImportJobRepository) -> None:
    job = repo.create(ImportJob(source_type="csv", filename="broken.csv"))
    repo.start(job.id)
    repo.add_error(job.id, {"type": "RuntimeError", "message": "embedding service down"})
    repo.update_status(job.id, S.FAILED)
    shown = importjob("show", str(job.id), url=db_url)
    assert shown.returncode == 0, shown.stderr
    assert "failed" in shown.stdout
    assert "embedding service down" in shown.stdout


def test_show_json_and_dropped_errors(db_url: str, repo: ImportJobRepository) -> None:
    bounded = ImportJobRepository(repo.connection, max_errors=1)
    job = bounded.create(ImportJob(source_type="csv", filename="big.csv"))
    bounded.add_errors(job.id, [{"row": n, "field": "q", "message": "bad"} for n in range(5)])
    shown = importjob("show", str(job.id), url=db_url)
    assert "4 more not stored (past the bound)" in shown.stdout
    data = json.loads(importjob("show", str(job.id), "--json", url=db_url).stdout)
    assert data["errors_dropped"] == 4
    assert data["errors"] == [{"row": 0, "field": "q", "message": "bad"}]
    assert data["elapsed_seconds"] is None  # never started
    assert data["status"] == "pending"


def test_watch_follows_a_demo_in_another_process(db_url: str, repo: ImportJobRepository) -> None:
    with subprocess.Popen(
        [str(COMMAND), "demo", "--rows", "3000", "--row-ms", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(DATABASE_URL=db_url),
    ) as demo:
        assert demo.stdout is not None
        first = demo.stdout.readline()
        job_id = first.split()[2].rstrip(":")
        watched = importjob("watch", job_id, url=db_url)
        rest = demo.stdout.read()
        assert demo.wait(timeout=60) == 0
    assert watched.returncode == 0, watched.stderr
    lines = watched.stdout.splitlines()
    assert lines[-1] == f"import job {job_id}: completed"
    counts = [int(line.split()[1].split("/")[0]) for line in lines if line.startswith("processing")]
    middle = [count for count in counts if 0 < count < 3000]
    assert len(middle) >= 3, lines  # it saw the import move
    assert counts == sorted(counts)
    assert lines[-2].startswith("completed 3000/3000 100% errors=75")
    assert "completed: 3000 rows, 2925 imported, 75 failed" in rest
    assert f"see: importjob show {job_id}" in rest
    stored = repo.get_by_id(job_id)
    assert stored is not None
    assert stored.status is S.COMPLETED


def test_watch_exits_1_when_the_job_is_cancelled(db_url: str, repo: ImportJobRepository) -> None:
    job = repo.create(ImportJob(source_type="csv", filename="c.csv"))
    repo.start(job.id)

    def cancel_soon() -> None:
        time.sleep(1)
        assert importjob("cancel", str(job.id), url=db_url).returncode == 0

    canceller = threading.Thread(target=cancel_soon)
    canceller.start()
    watched = importjob("watch", str(job.id), url=db_url)
    canceller.join()
    assert watched.returncode == 1
    assert watched.stdout.splitlines()[-1] == f"import job {job.id}: cancelled"


def test_cancel(db_url: str, repo: ImportJobRepository) -> None:
    job = repo.create(ImportJob(source_type="csv", filename="c.csv"))
    result = importjob("cancel", str(job.id), url=db_url)
    assert (result.returncode, result.stdout) == (0, f"cancelled import job {job.id}\n")
    again = importjob("cancel", str(job.id), url=db_url)
    assert "cannot go from cancelled to cancelled" in _one_line_error(again, code=1)


def test_rescue(db_url: str, repo: ImportJobRepository) -> None:
    # Wide margins: each run of the command takes a moment to start.
    lost = repo.create(ImportJob(source_type="csv", filename="l.csv"))
    repo.start(lost.id, "gone-worker")
    other = repo.create(ImportJob(source_type="csv", filename="r.csv"))
    repo.start(other.id, "other-worker")
    none = importjob("rescue", "--older-than", "1h", url=db_url)
    assert none.stdout == "rescued 0 jobs\n"
    time.sleep(3)
    alive = repo.create(ImportJob(source_type="csv", filename="a.csv"))
    repo.start(alive.id, "live-worker")
    result = importjob("rescue", "--older-than", "2s", url=db_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "rescued 2 jobs"
    assert f"failed {lost.id} (worker gone-worker)" in result.stdout
    assert f"failed {other.id} (worker other-worker)" in result.stdout
    assert repo.get_by_id(alive.id).status is S.PROCESSING  # type: ignore[union-attr]
    time.sleep(2.5)
    queued = importjob("rescue", "--older-than", "2s", "--requeue", url=db_url)
    assert queued.stdout.splitlines() == [
        f"pending {alive.id} (worker live-worker)",
        "rescued 1 job",
    ]


def test_purge(db_url: str, repo: ImportJobRepository) -> None:
    for _ in range(3):
        job = repo.create(ImportJob(source_type="csv", filename="p.csv"))
        repo.cancel(job.id)
    keep = repo.create(ImportJob(source_type="csv", filename="k.csv"))
    assert importjob("purge", "--older-than", "30d", url=db_url).stdout == "purged 0 jobs\n"
    time.sleep(0.1)
    purged = importjob("purge", "--older-than", "0s", "--batch", "2", url=db_url)
    assert purged.stdout == "purged 3 jobs\n"
    assert [job.id for job in repo.list_recent()] == [keep.id]


def test_demo(db_url: str, repo: ImportJobRepository) -> None:
    result = importjob("demo", "--rows", "200", "--fail-every", "10", "--row-ms", "0", url=db_url)
    assert result.returncode == 0, result.stderr
    first, summary, see = result.stdout.splitlines()
    job_id = first.split()[2].rstrip(":")
    assert first.endswith("importing 200 rows")
    assert summary.startswith("completed: 200 rows, 180 imported, 20 failed in ")
    assert see == f"see: importjob show {job_id}"
    job = repo.get_by_id(job_id)
    assert job is not None
    assert (job.status, job.processed_rows, job.error_count) == (S.COMPLETED, 200, 20)
    assert job.errors[0] == {
        "type": "ImportValidationError",
        "message": "must not be empty",
        "row": 10,
        "field": "answer",
        "value": "",
    }


@pytest.fixture
def home(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A user with no database configured and an empty data directory; stop its server after."""
    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    yield env
    stopped = importjob("embedded", "stop", url=None, **env)
    assert stopped.returncode == 0, stopped.stderr


def test_the_embedded_default(home: dict[str, str]) -> None:
    assert importjob("embedded", "status", url=None, **home).stdout.startswith("stopped: ")
    demo = importjob("demo", "--rows", "50", "--row-ms", "0", url=None, **home)
    assert demo.returncode == 0, demo.stderr
    job_id = demo.stdout.split()[2].rstrip(":")
    listed = importjob("list", "--json", url=None, **home)
    assert [job["id"] for job in json.loads(listed.stdout)] == [job_id]
    status = importjob("embedded", "status", url=None, **home)
    assert status.stdout == f"running: {home['XDG_DATA_HOME']}/importjob/postgresql-18\n"
    assert importjob("embedded", "stop", url=None, **home).stdout == "stopped\n"
    assert importjob("embedded", "stop", url=None, **home).stdout == "not running\n"
    # Started again on demand, with the data kept.
    again = importjob("show", job_id, "--json", url=None, **home)
    assert json.loads(again.stdout)["status"] == "completed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "not-an-id"], "not an import job id: 'not-an-id'"),
        (["show", "6f1c1d2e-3a45-4b67-8c9d-0e1f2a3b4c5d"], "no import job 6f1c1d2e"),
        (["list", "--limit", "0"], "'--limit'"),
        (["list", "--status", "done"], "'--status'"),
        (["list", "--bogus"], "No such option '--bogus'"),
        (["rescue", "--older-than", "soon"], "not a duration"),
        (["rescue"], "Missing option '--older-than'"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(db_url: str, args: list[str], message: str) -> None:
    assert message in _one_line_error(importjob(*args, url=db_url))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://someone:s3cret@127.0.0.1:1/nowhere", "cannot connect to"),
        ("mysql://someone:s3cret@127.0.0.1/x", "malformed database URL"),
        ("postgresql://someone:s3cret@127.0.0.1:99999999/x", "malformed database URL"),
        ("postgresql://someone:s3cret@127.0.0.1/x?colour=blue", "malformed database URL"),
    ],
)
def test_database_errors_never_show_the_password(url: str, message: str) -> None:
    for result in (
        importjob("list", url=url),
        importjob("--database", url, "list", url=None),
    ):
        line = _one_line_error(result)
        assert message in line
        assert "s3cret" not in line
        assert "someone:***@" in line


def test_debug_shows_the_traceback() -> None:
    result = importjob("--debug", "list", url="postgresql://u:s3cret@127.0.0.1:1/x")
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_durations() -> None:
    from importjob.cli import _Duration  # noqa: PLC0415 - the parser under test

    parse = _Duration().convert
    assert parse("90s", None, None) == timedelta(seconds=90)
    assert parse("1h30m", None, None) == timedelta(minutes=90)
    assert parse("30d", None, None) == timedelta(days=30)
    assert parse("2w", None, None) == timedelta(weeks=2)


def test_errors_exports_every_logged_entry(
    db_url: str, repo: ImportJobRepository, tmp_path: Path
) -> None:
    bounded = ImportJobRepository(repo.connection, max_errors=1)
    job = bounded.create(ImportJob(source_type="csv", filename="big.csv"))
    entries = [{"row": n, "field": "q", "message": f'bad, "{n}"'} for n in range(1, 6)]
    bounded.add_errors(job.id, entries)
    to_stdout = importjob("errors", str(job.id), url=db_url)
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert to_stdout.stderr == "exported 5 error entries\n"
    rows = list(csv.DictReader(io.StringIO(to_stdout.stdout)))
    assert [(row["n"], row["row"], row["message"]) for row in rows] == [
        (str(n), str(n), f'bad, "{n}"') for n in range(1, 6)
    ]
    assert [json.loads(row["entry"]) for row in rows] == entries
    target = tmp_path / "errors.jsonl"
    to_file = importjob(
        "errors", str(job.id), "--format", "jsonl", "--output", str(target), url=db_url
    )
    assert to_file.returncode == 0, to_file.stderr
    assert to_file.stdout == ""
    assert [json.loads(line) for line in target.read_text().splitlines()] == entries
    shown = json.loads(importjob("show", str(job.id), "--json", url=db_url).stdout)
    assert shown["errors_logged"] == 5
    # Five reasons of one entry each (ties in no promised order).
    assert sorted(shown["error_summary"], key=lambda group: group["message"]) == [
        {"type": None, "field": "q", "message": f'bad, "{n}"', "count": 1, "other": False}
        for n in range(1, 6)
    ]


def test_errors_of_an_unknown_job_exits_2_and_writes_nothing(db_url: str, tmp_path: Path) -> None:
    target = tmp_path / "errors.csv"
    unknown = "9f911d66-961f-4da0-9a50-0944f3140a69"
    result = importjob("errors", unknown, "--output", str(target), url=db_url)
    assert unknown in _one_line_error(result)
    assert list(tmp_path.iterdir()) == []
    bad_format = importjob("errors", unknown, "--format", "xml", url=db_url)
    assert "'xml' is not one of 'csv', 'jsonl'" in _one_line_error(bad_format)


def test_show_and_list_show_the_fingerprint_and_checkpoint(
    db_url: str, repo: ImportJobRepository
) -> None:
    digest = "ab" * 32
    job = repo.create(
        ImportJob(source_type="csv", filename="f.csv", source_sha256=digest, source_size=4096),
        unique_source=True,
    )
    repo.start(job.id, "w")
    repo.advance(job.id, 10, 10, checkpoint={"row": 10, "offset": 512})
    shown = json.loads(importjob("show", str(job.id), "--json", url=db_url).stdout)
    assert (shown["source_sha256"], shown["source_size"]) == (digest, 4096)
    assert shown["checkpoint"] == {"row": 10, "offset": 512}
    [listed] = json.loads(importjob("list", "--json", url=db_url).stdout)
    assert (listed["source_sha256"], listed["source_size"]) == (digest, 4096)
    assert listed["checkpoint"] == {"row": 10, "offset": 512}
    text = importjob("show", str(job.id), url=db_url).stdout
    assert digest in text
    assert '{"row": 10, "offset": 512}' in text


def test_demo_of_a_chunked_import_run_by_worker_processes(
    db_url: str, repo: ImportJobRepository
) -> None:
    result = importjob(
        "demo", "--rows", "300", "--chunks", "7", "--workers", "3", "--row-ms", "0", url=db_url
    )
    assert result.returncode == 0, result.stderr
    first, *_, summary, see = result.stdout.splitlines()
    assert first.endswith("importing 300 rows in 7 chunks with 3 worker processes")
    assert summary.startswith("completed: 300 rows, 293 imported, 7 failed in ")
    parent_id = first.split()[2].rstrip(":")
    assert see == f"see: importjob show {parent_id}"
    chunks = repo.children(parent_id)
    assert [c.total_rows for c in chunks] == [42, 43, 43, 43, 43, 43, 43]
    assert [c.status for c in chunks] == [S.COMPLETED] * 7
    # Run by the workers: none of them left running, every job of theirs ended.
    assert len({c.worker_id for c in chunks}) >= 1
    assert repo.list_by_status(S.PROCESSING) == []


def test_demo_refuses_more_chunks_than_rows(db_url: str) -> None:
    result = importjob("demo", "--rows", "3", "--chunks", "4", url=db_url)
    assert result.returncode == 2
    assert "--chunks" in result.stderr
    assert "more chunks (4) than rows (3)" in result.stderr
