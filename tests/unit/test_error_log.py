"""The error log: every entry kept in order, exact reasons, read back and exported."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from importjob import (
    ErrorGroup,
    ErrorPage,
    ImportJob,
    ImportJobRepository,
    ImportJobStatus,
    LoggedError,
)
from importjob._queries import query
from importjob._validate import TRUNCATED_MARK
from importjob.exceptions import ImportJobNotFoundError, ImportValidationError, InvalidFieldError

CSV_COLUMNS = ["n", "type", "row", "line_number", "field", "message", "value", "entry"]


def _entry(row: int, message: str = "must not be empty", field: str = "answer") -> dict[str, Any]:
    return {"type": "ImportValidationError", "row": row, "field": field, "message": message}


def _log(conn: psycopg.Connection[Any], job_id: uuid.UUID) -> list[tuple[int, Any]]:
    return conn.execute(
        "SELECT n, entry FROM import_job_error WHERE job_id = %s ORDER BY n", [job_id]
    ).fetchall()


def test_every_entry_is_logged_in_recording_order_however_it_came(side: Any) -> None:
    small = side.with_max_errors(2)
    job = small.create(ImportJob(source_type="csv", filename="p.csv"))
    small.start(job.id, "w")
    small.advance(job.id, 2, 0, 2, entries=[_entry(1), _entry(2)])
    small.add_error(job.id, ImportValidationError(3, "question", "too long", value="x" * 10))
    small.add_errors(job.id, [_entry(4), {"message": "no type"}])
    with small.track(job.id, every_rows=2) as tracker:
        for row in (6, 7, 8):
            tracker.failed(_entry(row))
    expected_rows = [1, 2, 3, 4, None, 6, 7, 8]
    entries = small.errors_of(job.id, batch=3)
    assert [entry.get("row") for entry in entries] == expected_rows
    assert entries[2]["value"] == "x" * 10
    stored = small.get_by_id(job.id)
    # The errors column is what it was: the first max_errors, the rest counted.
    assert [entry["row"] for entry in stored.errors] == [1, 2]
    assert stored.errors_dropped == 6
    assert stored.errors_logged == 8
    assert stored.error_count == 5


def test_a_batch_sent_again_logs_and_counts_nothing_more(side: Any) -> None:
    job = side.create(ImportJob(source_type="csv", filename="p.csv"))
    for _ in range(3):
        side.advance(job.id, 2, 0, 2, entries=[_entry(1), _entry(2)], batch_id=("t", 1))
    side.advance(job.id, 1, 0, 1, entries=[_entry(3)], batch_id=("t", 2))
    side.advance(job.id, 2, 0, 2, entries=[_entry(1), _entry(2)], batch_id=("t", 1))
    assert [entry["row"] for entry in side.errors_of(job.id)] == [1, 2, 3]
    [group] = side.error_summary(job.id)
    assert group.count == 3
    assert side.get_by_id(job.id).errors_logged == 3


def test_past_the_log_limit_entries_are_counted_not_logged(side: Any) -> None:
    limited = side.with_options(max_errors=2, error_log_limit=3)
    job = limited.create(ImportJob(source_type="csv", filename="p.csv"))
    limited.add_errors(job.id, [_entry(row) for row in range(1, 6)])
    limited.add_error(job.id, _entry(6, "duplicate"))
    assert [entry["row"] for entry in limited.errors_of(job.id)] == [1, 2, 3]
    stored = limited.get_by_id(job.id)
    assert (stored.errors_logged, stored.errors_dropped, len(stored.errors)) == (3, 4, 2)
    # The reasons count every entry, those past both bounds too.
    assert limited.error_summary(job.id) == [
        ErrorGroup(
            type="ImportValidationError", field="answer", message="must not be empty", count=5
        ),
        ErrorGroup(type="ImportValidationError", field="answer", message="duplicate", count=1),
    ]


def test_the_log_is_numbered_by_recording_order(conn: psycopg.Connection[Any]) -> None:
    # An entry past the log's limit takes its number and no row.
    repo = ImportJobRepository(conn, max_errors=0, error_log_limit=2)
    job = repo.create(ImportJob(source_type="csv", filename="p.csv"))
    repo.add_errors(job.id, [_entry(1), _entry(2), _entry(3)])
    ImportJobRepository(conn, max_errors=0, error_log_limit=None).add_error(job.id, _entry(4))
    assert [(n, entry["row"]) for n, entry in _log(conn, job.id)] == [(1, 1), (2, 2), (4, 4)]
    csv_out = io.BytesIO()
    assert repo.export_errors(job.id, csv_out) == 3
    rows = list(csv.DictReader(io.StringIO(csv_out.getvalue().decode())))
    assert [row["n"] for row in rows] == ["1", "2", "4"]


def test_error_summary_groups_exactly_largest_first(side: Any) -> None:
    job = side.create(ImportJob(source_type="csv", filename="p.csv"))
    side.add_errors(
        job.id,
        [_entry(1, "a"), {"message": "bare"}, _entry(2, "b"), _entry(3, "b"), {"row": 9}],
    )
    side.add_errors(job.id, [_entry(4, "b"), {"row": 10}, {"type": "X", "field": None}])
    summary = side.error_summary(job.id)
    assert [(g.type, g.field, g.message, g.count) for g in summary[:2]] == [
        ("ImportValidationError", "answer", "b", 3),
        (None, None, None, 2),  # entries without type, field and message group under None
    ]
    # The ones of one entry each, in any order among themselves.
    assert sorted((g.type or "", g.message or "", g.count) for g in summary[2:]) == [
        ("", "bare", 1),
        ("ImportValidationError", "a", 1),
        ("X", "", 1),
    ]
    assert [g.count for g in side.error_summary(job.id, limit=2)] == [3, 2]
    assert not any(group.other for group in summary)
    assert side.error_summary(side.create(ImportJob(source_type="csv", filename="q")).id) == []


def test_reasons_whose_joined_texts_match_stay_apart(side: Any) -> None:
    # A reason's key length-prefixes each text: no separator can be forged.
    job = side.create(ImportJob(source_type="csv", filename="p.csv"))
    entries: list[dict[str, str | None]] = [
        {"type": "a", "field": "b,c", "message": ""},
        {"type": "a,b", "field": "c", "message": ""},
        {"type": "a", "field": "b", "message": None},
        {"type": "a", "field": "b", "message": ""},
        {"type": "1:a", "message": ""},
        {"field": "1:a", "message": ""},
    ]
    side.add_errors(job.id, entries)
    summary = side.error_summary(job.id)
    assert {(g.type, g.field, g.message, g.count) for g in summary} == {
        (e.get("type"), e.get("field"), e.get("message"), 1) for e in entries
    }
    assert len(summary) == len(entries)


def _state(conn: psycopg.Connection[Any], job_id: uuid.UUID) -> tuple[Any, ...]:
    """Everything a recorded entry changes: the job's bookkeeping, its log and its groups."""
    job = conn.execute(
        "SELECT errors, errors_dropped, errors_logged, errors_recorded, error_groups"
        "  FROM import_job WHERE id = %s",
        [job_id],
    ).fetchone()
    groups = conn.execute(
        "SELECT key = '00000000-0000-0000-0000-000000000000', type, field, message, count"
        "  FROM import_job_error_group WHERE job_id = %s ORDER BY 1, 2, 3, 4",
        [job_id],
    ).fetchall()
    return job, [entry for _, entry in _log(conn, job_id)], groups


def test_add_error_records_an_entry_exactly_as_a_batch_of_one(
    side: Any, conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # add_error runs a statement of its own; past every bound, it must agree with add_errors.
    small = side.with_options(max_errors=3, error_log_limit=5)
    monkeypatch.setitem(small.repo._limits, "max_groups", 2)
    one, batch = (small.create(ImportJob(source_type="csv", filename="p.csv")) for _ in range(2))
    entries = [
        _entry(1, "a"),
        _entry(2, "b"),
        _entry(3, "a"),
        {"message": "no type"},
        _entry(5, "c"),  # a third reason: past max_groups, "other"
        _entry(6, "b"),
        {"type": "T", "field": None, "message": "d"},
        _entry(8, "a"),  # past error_log_limit: counted, not logged
    ]
    for entry in entries:
        small.add_error(one.id, entry)
        small.add_errors(batch.id, [entry])
        assert _state(conn, one.id) == _state(conn, batch.id), entry
    job, log, groups = _state(conn, one.id)
    assert job[1:] == (5, 5, 8, 5)  # dropped, logged, recorded, places handed out
    assert len(job[0]) == 3  # entries 1 to 3, repeated in the errors array
    assert [entry.get("row") for entry in log] == [1, 2, 3, None, 5]  # up to the limit
    assert sum(group[-1] for group in groups) == 8  # every entry's reason
    assert sum(group.count for group in small.error_summary(one.id)) == 8


def test_the_groups_of_a_job_are_bounded(side: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # The repository's bound, made small (MAX_ERROR_GROUPS is read when it is made).
    side = side.with_max_errors(0)
    monkeypatch.setitem(side.repo._limits, "max_groups", 3)
    job = side.create(ImportJob(source_type="csv", filename="p.csv"))
    # A message embedding the row's value: a new group for every row.
    side.add_errors(job.id, [_entry(row, f"bad value {row}") for row in range(1, 6)])
    side.add_errors(job.id, [_entry(1, "bad value 1"), _entry(9, "bad value 9")])
    summary = side.error_summary(job.id)
    assert (
        [(g.message, g.count, g.other) for g in summary]
        == [
            (None, 3, True),  # values 4, 5 and 9: past the bound
            ("bad value 1", 2, False),
            *[(g.message, 1, False) for g in summary[2:]],
        ]
    )
    assert sorted(g.message for g in summary[2:]) == ["bad value 2", "bad value 3"]
    assert sum(group.count for group in summary) == 7
    assert len(side.errors_of(job.id)) == 7  # the log keeps them all


def test_export_csv_and_jsonl_hold_every_entry_verbatim(side: Any) -> None:
    job = side.create(ImportJob(source_type="csv", filename="p.csv"))
    tricky = {
        "type": "ParseError",
        "line_number": 7,
        "message": 'a "quoted", multi\nline message \\ with a backslash',
        "value": "naïve, 日本語 \t tab",
        "raw_data": {"nested": [1, 2.5, None, True]},
    }
    entries = [_entry(1), tricky, {"row": 3, "value": ""}]
    side.add_errors(job.id, entries)
    csv_out = io.BytesIO()
    assert side.export_errors(job.id, csv_out) == 3
    text = csv_out.getvalue().decode()
    reader = csv.reader(io.StringIO(text, newline=""))
    assert next(reader) == CSV_COLUMNS
    rows = list(reader)
    assert [row[0] for row in rows] == ["1", "2", "3"]
    assert [json.loads(row[7]) for row in rows] == entries
    assert rows[1][1:7] == ["ParseError", "", "7", "", tricky["message"], tricky["value"]]
    assert rows[0][1:7] == ["ImportValidationError", "1", "", "answer", "must not be empty", ""]
    jsonl_out = io.BytesIO()
    assert side.export_errors(job.id, jsonl_out, format="jsonl") == 3
    lines = jsonl_out.getvalue().decode().splitlines()
    assert [json.loads(line) for line in lines] == entries


def test_an_export_larger_than_a_chunk_arrives_whole(side: Any, tmp_path: Path) -> None:
    job = side.create(ImportJob(source_type="csv", filename="p.csv"))
    for start in range(0, 3000, 500):
        side.add_errors(job.id, [_entry(row, "x" * 40) for row in range(start, start + 500)])
    path = tmp_path / "errors.jsonl"
    with path.open("wb") as out:
        assert side.export_errors(job.id, out, format="jsonl") == 3000
    assert [json.loads(line)["row"] for line in path.read_text().splitlines()] == list(range(3000))
    assert [entry["row"] for entry in side.errors_of(job.id, batch=7)] == list(range(3000))


def test_an_empty_log_and_an_unknown_job(side: Any) -> None:
    job = side.create(ImportJob(source_type="csv", filename="p.csv"))
    out = io.BytesIO()
    assert side.export_errors(job.id, out) == 0
    assert out.getvalue().decode().splitlines() == [",".join(CSV_COLUMNS)]
    assert side.errors_of(job.id) == []
    unknown = uuid.uuid4()
    out = io.BytesIO()
    with pytest.raises(ImportJobNotFoundError):
        side.export_errors(unknown, out)
    assert out.getvalue() == b""  # not even the header
    with pytest.raises(ImportJobNotFoundError):
        side.errors_of(unknown)
    with pytest.raises(ImportJobNotFoundError):
        side.error_summary(unknown)


def test_error_page_reads_the_log_a_keyset_page_at_a_time(side: Any) -> None:
    # Two entries repeated in the errors column: the pages read the log alone.
    small = side.with_max_errors(2)
    job = small.create(ImportJob(source_type="csv", filename="p.csv"))
    entries = [_entry(row) for row in range(1, 6)]
    small.add_errors(job.id, entries)
    numbered = tuple(LoggedError(n, entry) for n, entry in enumerate(entries, start=1))
    assert small.error_page(job.id, limit=2) == ErrorPage(entries=numbered[:2], next_after=2)
    # A page past the column's entries, then the last, full: the next one is empty.
    assert small.error_page(job.id, after=1, limit=2) == ErrorPage(
        entries=numbered[1:3], next_after=3
    )
    assert small.error_page(job.id, after=3, limit=2) == ErrorPage(
        entries=numbered[3:], next_after=5
    )
    assert small.error_page(job.id, after=5, limit=2) == ErrorPage(entries=(), next_after=None)
    assert small.error_page(job.id, after=2) == ErrorPage(entries=numbered[2:], next_after=None)
    assert small.error_page(job.id, after=99) == ErrorPage(entries=(), next_after=None)
    # iter_errors reads the same pages.
    assert small.errors_of(job.id, batch=2) == entries


def test_error_page_of_an_empty_log_and_of_an_unknown_job(side: Any) -> None:
    job = side.create(ImportJob(source_type="csv", filename="p.csv"))
    assert side.error_page(job.id) == ErrorPage(entries=(), next_after=None)
    unknown = uuid.uuid4()
    with pytest.raises(ImportJobNotFoundError) as caught:
        side.error_page(unknown, after=3, limit=1)
    assert caught.value.job_id == unknown


def test_error_page_refuses_bad_arguments_naming_them(side: Any) -> None:
    job = side.create(ImportJob(source_type="csv", filename="p.csv"))
    for after in (-1, True, 1.5, "3", None, 2**63):
        with pytest.raises(InvalidFieldError) as caught:
            side.error_page(job.id, after=after)
        assert caught.value.field == "after"
    for limit in (0, -5, False, None, "1", 2.0):
        with pytest.raises(InvalidFieldError) as caught:
            side.error_page(job.id, limit=limit)
        assert caught.value.field == "limit"
    with pytest.raises(InvalidFieldError) as caught:
        side.error_page("not-a-uuid")
    assert caught.value.field == "job_id"


def test_error_page_checks_before_it_sends(conn: psycopg.Connection[Any], db_url: str) -> None:
    # Over a closed connection a call that reached the database would fail as a database error.
    closed = psycopg.connect(db_url)
    closed.close()
    repo = ImportJobRepository(closed)
    with pytest.raises(InvalidFieldError) as caught:
        repo.error_page(uuid.uuid4(), limit=0)
    assert caught.value.field == "limit"
    with pytest.raises(InvalidFieldError) as caught:
        repo.iter_errors(uuid.uuid4(), batch=0)
    assert caught.value.field == "batch"


def test_bad_arguments_are_refused_naming_them_and_nothing_written(
    side: Any, tmp_path: Path
) -> None:
    job = side.create(ImportJob(source_type="csv", filename="p.csv"))
    side.add_error(job.id, _entry(1))
    for limit in (0, -1, True, 1.5, "10"):
        with pytest.raises(InvalidFieldError) as caught:
            side.with_options(error_log_limit=limit)
        assert caught.value.field == "error_log_limit"
    for batch in (0, -5, None, "1"):
        with pytest.raises(InvalidFieldError) as caught:
            side.repo.iter_errors(job.id, batch=batch)
        assert caught.value.field == "batch"
    with pytest.raises(InvalidFieldError) as caught:
        side.error_summary(job.id, limit=0)
    assert caught.value.field == "limit"
    out = io.BytesIO()
    with pytest.raises(InvalidFieldError) as caught:
        side.export_errors(job.id, out, format="xml")
    assert caught.value.field == "format"
    assert out.getvalue() == b""
    closed = io.BytesIO()
    closed.close()
    text_file = (tmp_path / "t.csv").open("w")
    (tmp_path / "r.csv").write_bytes(b"")
    read_only = (tmp_path / "r.csv").open("rb")
    for bad_out in (closed, io.StringIO(), text_file, read_only, None, "errors.csv"):
        with pytest.raises(InvalidFieldError) as caught:
            side.export_errors(job.id, bad_out)
        assert caught.value.field == "out"
    text_file.close()
    read_only.close()
    assert (tmp_path / "t.csv").read_text() == ""
    with pytest.raises(InvalidFieldError) as caught:
        side.error_summary("not-a-uuid")
    assert caught.value.field == "job_id"


def test_an_oversized_entry_is_logged_truncated_like_the_errors_column(side: Any) -> None:
    job = side.create(ImportJob(source_type="csv", filename="p.csv"))
    side.add_error(job.id, {"type": "Huge", "message": "m" * 20_000})
    [logged] = side.errors_of(job.id)
    assert logged == side.get_by_id(job.id).errors[0]
    assert logged["truncated"] is True
    assert logged["message"].endswith(TRUNCATED_MARK)
    [group] = side.error_summary(job.id)
    assert group.message == logged["message"]


def test_a_rescued_job_logs_its_lost_worker(side: Any, conn: psycopg.Connection[Any]) -> None:
    job = side.create(ImportJob(source_type="csv", filename="p.csv"))
    side.start(job.id, "gone")
    side.add_error(job.id, _entry(1))
    conn.execute(
        "UPDATE import_job SET heartbeat_at = now() - interval '1 hour' WHERE id = %s", [job.id]
    )
    [rescued] = side.rescue_stale(timedelta(minutes=5))
    assert rescued.errors_logged == 2
    entries = side.errors_of(job.id)
    assert entries[1]["type"] == "WorkerLostError"
    assert entries[1]["worker_id"] == "gone"
    assert entries[1] == rescued.errors[-1]
    assert {(g.type, g.count) for g in side.error_summary(job.id)} == {
        ("ImportValidationError", 1),
        ("WorkerLostError", 1),
    }


def test_a_deleted_job_takes_its_log_and_reasons(conn: psycopg.Connection[Any]) -> None:
    # No foreign key: a statement-level trigger deletes them, and only theirs.
    repo = ImportJobRepository(conn, max_errors=0)
    job = repo.create(ImportJob(source_type="csv", filename="p.csv"))
    kept = repo.create(ImportJob(source_type="csv", filename="kept.csv"))
    repo.add_errors(job.id, [_entry(1), _entry(2)])
    repo.add_errors(kept.id, [_entry(3)])
    conn.execute("DELETE FROM import_job WHERE id = %s", [job.id])
    assert conn.execute("SELECT job_id, n FROM import_job_error").fetchall() == [(kept.id, 1)]
    assert conn.execute("SELECT job_id FROM import_job_error_group").fetchall() == [(kept.id,)]


def test_purge_deletes_logs_in_bounded_batches(side: Any, conn: psycopg.Connection[Any]) -> None:
    side = side.with_max_errors(0)
    kept = side.create(ImportJob(source_type="csv", filename="running.csv"))
    side.add_errors(kept.id, [_entry(1)])
    jobs = [side.create(ImportJob(source_type="csv", filename=f"{i}.csv")) for i in range(3)]
    for job, count in zip(jobs, (5, 0, 2), strict=True):
        side.add_errors(job.id, [_entry(row) for row in range(count)])
        side.update_status(job.id, ImportJobStatus.CANCELLED)
    # Each batch deletes at most batch_size entries, and a job once its log is empty.
    params = {"older_than": timedelta(0), "batch_size": 2}
    with conn.transaction(force_rollback=True):
        batches: list[tuple[int, int]] = [
            conn.execute(query("purge_finished"), params).fetchone() or (0, 0) for _ in range(6)
        ]
    assert all(entries <= 2 for _, entries in batches)
    assert sum(jobs_deleted for jobs_deleted, _ in batches) == 3
    assert sum(entries for _, entries in batches) == 7
    assert side.purge_finished(timedelta(0), batch=2) == 3
    assert conn.execute("SELECT job_id FROM import_job_error").fetchall() == [(kept.id,)]
    assert conn.execute("SELECT job_id FROM import_job_error_group").fetchall() == [(kept.id,)]
    assert side.get_by_id(kept.id) is not None


def test_lists_and_watch_snapshots_read_no_entries(side: Any) -> None:
    job = side.create(ImportJob(source_type="csv", filename="p.csv"))
    side.add_errors(job.id, [_entry(1), _entry(2)])
    [listed] = side.list_recent()
    assert (listed.errors, listed.errors_logged, listed.id) == ([], 2, job.id)
    [whole] = side.list_recent(with_errors=True)
    assert whole == side.get_by_id(job.id)
    assert [e["row"] for e in whole.errors] == [1, 2]
    assert side.list_recent(ImportJobStatus.PENDING) == [listed]
    assert side.list_recent(ImportJobStatus.PENDING, with_errors=True) == [whole]
    # list_by_status keeps its documented contract: the job with its errors.
    assert side.list_by_status(ImportJobStatus.PENDING) == [whole]
    with pytest.raises(InvalidFieldError) as caught:
        side.list_recent(with_errors="yes")
    assert caught.value.field == "with_errors"
    side.cancel(job.id)
    [snapshot] = side.watch_all(job.id, timeout=30)
    assert (snapshot.status, snapshot.errors, snapshot.errors_logged) == (
        ImportJobStatus.CANCELLED,
        [],
        2,
    )


def _groups(conn: psycopg.Connection[Any], job_id: uuid.UUID) -> dict[str | None, int]:
    rows = conn.execute(
        "SELECT message, count FROM import_job_error_group WHERE job_id = %s", [job_id]
    ).fetchall()
    return dict(rows)


def test_every_entry_is_a_log_row_and_errors_repeats_the_first(
    side: Any, conn: psycopg.Connection[Any]
) -> None:
    # However an entry comes, it is a row of the log and counted by its
    # reason; the errors array repeats the first max_errors of them.
    small = side.with_max_errors(3)
    job = small.create(ImportJob(source_type="csv", filename="p.csv"))
    small.start(job.id, "w")
    small.add_errors(job.id, [_entry(1, "a"), _entry(2, "b")])
    # Two more: the first fills the array, the second is past it.
    small.advance(job.id, 2, 0, 2, entries=[_entry(3, "a"), _entry(4, "a")])
    small.add_error(job.id, _entry(5, "b"))
    with small.track(job.id, every_rows=2) as tracker:
        tracker.failed(_entry(6, "c"))
        tracker.failed(_entry(7, "a"))
    stored = small.get_by_id(job.id)
    assert [entry["row"] for entry in stored.errors] == [1, 2, 3]
    assert (stored.errors_logged, stored.errors_dropped) == (7, 4)
    logged = [(n, entry["row"]) for n, entry in _log(conn, job.id)]
    assert logged == [(n, n) for n in range(1, 8)]
    assert _groups(conn, job.id) == {"a": 4, "b": 2, "c": 1}
    for batch in (1, 2, 3, 100):
        assert [e["row"] for e in small.errors_of(job.id, batch=batch)] == [1, 2, 3, 4, 5, 6, 7]
    assert [(g.message, g.count) for g in small.error_summary(job.id)] == [
        ("a", 4),
        ("b", 2),
        ("c", 1),
    ]
    csv_out, jsonl_out = io.BytesIO(), io.BytesIO()
    assert small.export_errors(job.id, csv_out) == 7
    assert small.export_errors(job.id, jsonl_out, format="jsonl") == 7
    rows = list(csv.DictReader(io.StringIO(csv_out.getvalue().decode())))
    assert [(row["n"], row["row"]) for row in rows] == [(str(n), str(n)) for n in range(1, 8)]
    assert [json.loads(line)["row"] for line in jsonl_out.getvalue().splitlines()] == [*range(1, 8)]


def test_once_an_entry_does_not_fit_errors_takes_no_later_one(side: Any) -> None:
    # A repository with a larger bound finds the array closed: it stays the
    # log's first entries, never a gap.
    small, large = side.with_max_errors(2), side.with_max_errors(10)
    job = small.create(ImportJob(source_type="csv", filename="p.csv"))
    small.add_errors(job.id, [_entry(1), _entry(2), _entry(3)])
    large.add_error(job.id, _entry(4))
    large.add_errors(job.id, [_entry(5)])
    stored = large.get_by_id(job.id)
    assert [entry["row"] for entry in stored.errors] == [1, 2]
    assert (stored.errors_logged, stored.errors_dropped) == (5, 3)


def test_entries_given_at_create_are_no_entries_of_the_log(side: Any) -> None:
    # A job created with errors keeps them in its array, before the
    # recorded ones: no number, no reason counted.
    given = [{"message": "given at create"}]
    job = side.create(ImportJob(source_type="csv", filename="p.csv", errors=given))
    small = side.with_max_errors(3)
    small.add_errors(job.id, [_entry(1), _entry(2), _entry(3)])
    stored = small.get_by_id(job.id)
    assert stored.errors == [*given, _entry(1), _entry(2)]
    assert [e["row"] for e in small.errors_of(job.id)] == [1, 2, 3]
    assert [e["row"] for e in small.errors_of(job.id, batch=1)] == [1, 2, 3]
    assert [(g.message, g.count) for g in small.error_summary(job.id)] == [("must not be empty", 3)]


def test_a_created_jobs_jsonl_export_holds_each_entry_once_in_order(side: Any) -> None:
    # Entries given to create, then more through add_error and a tracker,
    # crossing from the errors column into the log (max_errors=3, two given).
    small = side.with_max_errors(3)
    given = [{"message": "given 1"}, {"message": "given 2"}]
    job = small.create(ImportJob(source_type="csv", filename="p.csv", errors=given))
    small.add_error(job.id, _entry(1, "a"))
    with small.track(job.id, every_rows=2, every_seconds=3600) as tracker:
        for row in (2, 3, 4):
            tracker.failed(_entry(row, "b"))
    later = [_entry(1, "a"), _entry(2, "b"), _entry(3, "b"), _entry(4, "b")]
    assert small.get_by_id(job.id).errors == [*given, later[0]]
    jsonl_out, csv_out = io.BytesIO(), io.BytesIO()
    written = small.export_errors(job.id, jsonl_out, format="jsonl")
    exported = [json.loads(line) for line in jsonl_out.getvalue().splitlines()]
    assert written == len(exported)
    small.export_errors(job.id, csv_out)
    rows = csv.DictReader(io.StringIO(csv_out.getvalue().decode(), newline=""))
    # The JSON lines hold what the CSV export and the pages hold, entry for entry.
    assert exported == [json.loads(row["entry"]) for row in rows]
    assert exported == small.errors_of(job.id) == small.errors_of(job.id, batch=1)
    # In recording order, each once; the entries given at create are no
    # entries of the log.
    assert exported == later
