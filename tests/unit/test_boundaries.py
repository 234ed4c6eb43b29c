"""Every length and range limit, on both sides of its boundary.

The limits are `importjob._validate`'s. For each one the last value inside
is accepted, stored and read back (so the database's constraint agrees with
the Python check), and the first value outside is refused with an
`InvalidFieldError` naming the field, with nothing written. Tests that reach
the database run on both repositories (the ``side`` fixture).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from importjob import ImportJob, ImportJobStatus
from importjob._validate import (
    MAX_COUNT,
    MAX_DURATION,
    MAX_ERROR_ENTRY_BYTES,
    MAX_ERROR_ENTRY_DEPTH,
    MAX_FILENAME_LENGTH,
    MAX_WORKER_ID_LENGTH,
    TRUNCATED_MARK,
)
from importjob.exceptions import InvalidFieldError

S = ImportJobStatus
TINY = timedelta(microseconds=1)


def _new(side: Any, **fields: Any) -> ImportJob:
    job: ImportJob = side.create(ImportJob(source_type="csv", filename="pairs.csv", **fields))
    return job


def _table(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT * FROM import_job ORDER BY id").fetchall()


@contextlib.contextmanager
def _refused(field: str) -> Iterator[None]:
    with pytest.raises(InvalidFieldError) as caught:
        yield
    assert caught.value.field == field


def _track(side: Any, job_id: Any, **settings: Any) -> None:
    with side.track(job_id, **settings):
        pytest.fail("the tracker must refuse its settings before the block runs")


def test_the_limits_are_the_documented_ones() -> None:
    # The numbers the README and the schema promise; the tests below use the names.
    assert (MAX_WORKER_ID_LENGTH, MAX_FILENAME_LENGTH) == (200, 255)
    assert MAX_COUNT == 2**63 - 1
    assert (MAX_ERROR_ENTRY_BYTES, MAX_ERROR_ENTRY_DEPTH) == (8192, 32)
    assert timedelta(days=36_525) == MAX_DURATION


# Multi-byte characters: the limits count characters, not bytes.
@pytest.mark.parametrize("char", ["w", "é"])
def test_worker_id_1_to_200_characters(side: Any, conn: Any, char: str) -> None:
    shortest, longest = char, char * MAX_WORKER_ID_LENGTH
    for name in (shortest, longest):
        claimed = _new(side)
        assert side.claim_next(name).worker_id == name
        started = _new(side)
        assert side.start(started.id, name).worker_id == name
        side.start(started.id, "someone else")
        assert side.heartbeat(started.id, name) is S.PROCESSING
        assert side.get_by_id(started.id).worker_id == name
        side.start(started.id, "someone else")
        side.advance(started.id, processed=1, worker_id=name)
        assert side.get_by_id(started.id).worker_id == name
        tracked = _new(side)
        with side.track(tracked.id, worker_id=name) as t:
            t.ok()
        assert side.get_by_id(tracked.id).worker_id == name
        assert side.get_by_id(claimed.id).worker_id == name
        assert ImportJob(source_type="csv", filename="f", worker_id=name).worker_id == name
    job = _new(side)
    before = _table(conn)
    for name in ("", longest + char):
        with _refused("worker_id"):
            side.claim_next(name)
        with _refused("worker_id"):
            side.start(job.id, name)
        with _refused("worker_id"):
            side.heartbeat(job.id, name)
        with _refused("worker_id"):
            side.advance(job.id, 1, worker_id=name)
        with _refused("worker_id"):
            _track(side, job.id, worker_id=name)
        with _refused("worker_id"):
            ImportJob(source_type="csv", filename="f", worker_id=name)
    assert _table(conn) == before


def test_batch_id_key_1_to_200_characters_number_1_to_2_63_minus_1(side: Any, conn: Any) -> None:
    job = _new(side)
    longest = "é" * MAX_WORKER_ID_LENGTH
    for batch_id in [("k", 1), (longest, 1), ("k", MAX_COUNT - 1), (longest, MAX_COUNT)]:
        assert side.advance(job.id, 1, 1, batch_id=batch_id) is S.PENDING
    # The largest number was applied, and a batch of it sent again counts once.
    side.advance(job.id, 1, 1, batch_id=(longest, MAX_COUNT))
    side.advance(job.id, 1, 1, batch_id=("k", MAX_COUNT - 1))
    assert side.get_by_id(job.id).processed_rows == 4
    marks = conn.execute("SELECT applied_batches FROM import_job WHERE id = %s", [job.id])
    assert marks.fetchone() == ({"k": MAX_COUNT - 1, longest: MAX_COUNT},)
    before = _table(conn)
    for batch_id in [("", 1), (longest + "é", 1), ("k", 0), ("k", MAX_COUNT + 1)]:
        with _refused("batch_id"):
            side.advance(job.id, 1, batch_id=batch_id)
    assert _table(conn) == before


@pytest.mark.parametrize("char", ["x", "é"])
def test_filename_1_to_255_characters(side: Any, conn: Any, char: str) -> None:
    for name in (char, char * MAX_FILENAME_LENGTH):
        job = side.create(ImportJob(source_type="csv", filename=name))
        assert side.get_by_id(job.id).filename == name
    before = _table(conn)
    for name in ("", char * (MAX_FILENAME_LENGTH + 1)):
        with _refused("filename"):
            ImportJob(source_type="csv", filename=name)
    assert _table(conn) == before


COUNTERS = ("total_rows", "processed_rows", "success_count", "error_count")


def test_counters_0_to_2_63_minus_1_on_create(side: Any) -> None:
    for value in (0, MAX_COUNT):
        fields = dict.fromkeys(COUNTERS, value)
        job = _new(side, **fields)
        stored = side.get_by_id(job.id)
        assert [getattr(stored, field) for field in COUNTERS] == [value] * 4
    for field in COUNTERS:
        for value in (-1, MAX_COUNT + 1):
            with _refused(field):
                ImportJob(source_type="csv", filename="f", **{field: value})  # type: ignore[arg-type]


def test_counters_0_to_2_63_minus_1_on_update_progress(side: Any, conn: Any) -> None:
    job = _new(side)
    side.update_progress(job.id, MAX_COUNT, MAX_COUNT, MAX_COUNT, total=MAX_COUNT)
    stored = side.get_by_id(job.id)
    assert [getattr(stored, field) for field in COUNTERS] == [MAX_COUNT] * 4
    side.update_progress(job.id, 0, 0, 0, total=0)
    stored = side.get_by_id(job.id)
    assert [getattr(stored, field) for field in COUNTERS] == [0] * 4
    before = _table(conn)
    for position, field in enumerate(("processed", "success", "errors", "total")):
        for value in (-1, MAX_COUNT + 1):
            args = [0, 0, 0, 0]
            args[position] = value
            with _refused(field):
                side.update_progress(job.id, *args[:3], total=args[3])
    assert _table(conn) == before


def test_counters_reach_2_63_minus_1_through_advance_and_no_further(side: Any, conn: Any) -> None:
    job = _new(side)
    side.advance(job.id, MAX_COUNT, MAX_COUNT, MAX_COUNT, entries_dropped=MAX_COUNT)
    stored = side.get_by_id(job.id)
    assert (stored.processed_rows, stored.success_count, stored.error_count) == (MAX_COUNT,) * 3
    assert stored.errors_dropped == MAX_COUNT
    before = _table(conn)
    for field in ("processed", "success", "errors", "entries_dropped"):
        with _refused(field):
            side.advance(job.id, **{field: MAX_COUNT + 1})
        with _refused(field):
            side.advance(job.id, **{field: -1})
        # Each is within range alone, and the sum passes bigint: the database says no.
        with _refused("counters"):
            side.advance(job.id, **{field: 1})
    assert _table(conn) == before
    # A sum that lands exactly on the limit is fine.
    other = _new(side)
    side.advance(other.id, processed=MAX_COUNT - 1)
    side.advance(other.id, processed=1)
    assert side.get_by_id(other.id).processed_rows == MAX_COUNT


def test_tracker_counts_0_to_2_63_minus_1_rows_at_once(side: Any) -> None:
    job = _new(side)
    with side.track(job.id) as t:
        t.ok(0)
        t.ok(MAX_COUNT)  # a flush of its own: past every_rows
        with _refused("n"):
            t.ok(MAX_COUNT + 1)
        with _refused("n"):
            t.ok(-1)
    stored = side.get_by_id(job.id)
    assert (stored.status, stored.processed_rows, stored.success_count) == (
        S.COMPLETED,
        MAX_COUNT,
        MAX_COUNT,
    )


def test_list_limits_1_to_2_63_minus_1(side: Any) -> None:
    jobs = [_new(side) for _ in range(3)]
    assert side.list_by_status(S.PENDING, limit=1) == jobs[:1]
    assert side.list_by_status(S.PENDING, limit=MAX_COUNT) == jobs
    assert side.list_recent(limit=1) == jobs[-1:]
    assert side.list_recent(S.PENDING, limit=MAX_COUNT) == jobs[::-1]
    for limit in (0, MAX_COUNT + 1):
        with _refused("limit"):
            side.list_by_status(S.PENDING, limit=limit)
        with _refused("limit"):
            side.list_recent(limit=limit)
        with _refused("limit"):
            side.list_recent(S.PENDING, limit=limit)


def test_purge_batch_1_to_2_63_minus_1(side: Any, conn: Any) -> None:
    for _ in range(3):
        side.cancel(_new(side).id)
    assert side.purge_finished(timedelta(0), batch=1) == 3
    for _ in range(2):
        side.cancel(_new(side).id)
    assert side.purge_finished(timedelta(0), batch=MAX_COUNT) == 2
    side.cancel(_new(side).id)
    before = _table(conn)
    for batch in (0, MAX_COUNT + 1):
        with _refused("batch"):
            side.purge_finished(timedelta(0), batch=batch)
    assert _table(conn) == before


def test_durations_0_to_100_years(side: Any, conn: Any) -> None:
    lost = _new(side)
    side.start(lost.id, "w")
    ended = _new(side)
    side.cancel(ended.id)
    # 100 years back: nothing is that old, and PostgreSQL takes the interval.
    assert side.rescue_stale(MAX_DURATION) == []
    assert side.purge_finished(MAX_DURATION) == 0
    # Zero: everything older than now (this statement's start) qualifies.
    assert [job.id for job in side.rescue_stale(timedelta(0))] == [lost.id]
    assert side.purge_finished(timedelta(0)) == 2  # ended, and lost (failed just now)
    before = _table(conn)
    for older_than in (-TINY, MAX_DURATION + TINY):
        with _refused("older_than"):
            side.rescue_stale(older_than)
        with _refused("older_than"):
            side.purge_finished(older_than)
    assert _table(conn) == before


def test_max_errors_bound_is_exact(side: Any) -> None:
    bounded = side.with_max_errors(3)
    job = _new(bounded)
    entries = [{"n": n} for n in range(4)]
    bounded.add_errors(job.id, entries[:3])  # exactly the bound: all kept
    stored = bounded.get_by_id(job.id)
    assert (stored.errors, stored.errors_dropped) == (entries[:3], 0)
    bounded.add_error(job.id, entries[3])  # one past it: counted, not kept
    stored = bounded.get_by_id(job.id)
    assert (stored.errors, stored.errors_dropped) == (entries[:3], 1)
    # The column holds the job's first entries, none skipped: once one did
    # not fit, a larger bound later adds no more to it (the log keeps them).
    unbounded = side.with_max_errors(MAX_COUNT)
    unbounded.add_error(job.id, entries[3])
    stored = unbounded.get_by_id(job.id)
    assert (stored.errors, stored.errors_dropped) == (entries[:3], 2)
    assert side.errors_of(job.id) == entries + entries[3:]
    fresh = _new(unbounded)
    unbounded.add_errors(fresh.id, entries)
    assert unbounded.get_by_id(fresh.id).errors == entries
    with _refused("max_errors"):
        side.with_max_errors(MAX_COUNT + 1)
    with _refused("max_errors"):
        side.with_max_errors(-1)


def test_tracker_settings_at_their_limits(side: Any) -> None:
    by_rows = _new(side)
    with side.track(by_rows.id, every_rows=1, every_seconds=3600) as t:
        t.ok()
        assert side.get_by_id(by_rows.id).processed_rows == 1  # flushed at once
    by_time = _new(side)
    with side.track(
        by_time.id,
        every_rows=MAX_COUNT,
        every_seconds=0,
        heartbeat_seconds=0.01,
        retry_attempts=0,
        retry_delay=0,
        retry_max_delay=0,
    ) as t:
        t.ok()
        assert side.get_by_id(by_time.id).processed_rows == 1  # flushed at once
    assert side.get_by_id(by_time.id).status is S.COMPLETED
    other = _new(side)
    for field, value in [
        ("every_rows", 0),
        ("every_rows", MAX_COUNT + 1),
        ("every_seconds", -0.001),
        ("heartbeat_seconds", 0),
        ("retry_attempts", -1),
        ("retry_attempts", MAX_COUNT + 1),
        ("retry_delay", -0.001),
        ("retry_max_delay", -0.001),
    ]:
        with _refused(field):
            _track(side, other.id, **{field: value})
    assert side.get_by_id(other.id).status is S.PENDING


def test_watch_timeout_0_or_more(side: Any) -> None:
    job = _new(side)
    with pytest.raises(TimeoutError):
        side.watch_all(job.id, timeout=0)  # the current state, then no change at once
    with _refused("timeout"):
        side.watch_all(job.id, timeout=-0.001)
    side.cancel(job.id)
    [ended] = side.watch_all(job.id, timeout=0)
    assert ended.status is S.CANCELLED


def _entry_of(size: int) -> dict[str, Any]:
    # An entry whose JSON (as stored: ensure_ascii=False) is exactly `size` bytes.
    entry: dict[str, Any] = {"row": 1, "message": ""}
    room = size - len(json.dumps(entry, ensure_ascii=False).encode())
    entry["message"] = "ä" * (room // 2) + "x" * (room % 2)
    assert len(json.dumps(entry, ensure_ascii=False).encode()) == size
    return entry


def test_an_error_entry_of_8_kib_is_kept_whole_one_byte_more_is_truncated(side: Any) -> None:
    job = _new(side)
    whole = _entry_of(MAX_ERROR_ENTRY_BYTES)
    over = _entry_of(MAX_ERROR_ENTRY_BYTES + 1)
    side.add_errors(job.id, [whole, over])
    kept, cut = side.get_by_id(job.id).errors
    assert kept == whole  # no "truncated" key, nothing cut
    assert cut["truncated"] is True
    assert cut["row"] == 1
    assert cut["message"].endswith(TRUNCATED_MARK)
    assert len(json.dumps(cut, ensure_ascii=False).encode()) <= MAX_ERROR_ENTRY_BYTES


def _cut_as_stored(entry: dict[str, Any]) -> dict[str, Any]:
    # How an entry over the bound is cut: each string to a quarter of the
    # bound's bytes in characters, marked, and the entry flagged.
    return {
        "row": entry["row"],
        "message": entry["message"][: MAX_ERROR_ENTRY_BYTES // 4] + TRUNCATED_MARK,
        "truncated": True,
    }


def test_an_8_kib_entry_is_whole_through_the_tracker_and_create_one_byte_more_cut(
    side: Any,
) -> None:
    whole = _entry_of(8 * 1024)
    over = _entry_of(8 * 1024 + 1)
    cut = _cut_as_stored(over)
    tracked = _new(side)
    with side.track(tracked.id, every_rows=1000, every_seconds=3600) as t:
        t.failed(whole)
        t.failed(over)
    assert side.get_by_id(tracked.id).errors == [whole, cut]
    assert side.errors_of(tracked.id) == [whole, cut]
    made = ImportJob(source_type="csv", filename="pairs.csv", errors=[whole, over])
    assert made.errors == [whole, cut]
    created = side.create(made)
    assert side.get_by_id(created.id).errors == [whole, cut]
    # Entries given to create are no entries of the log.
    assert side.errors_of(created.id) == []


def _nested(depth: int) -> dict[str, Any]:
    # The innermost value sits `depth` levels below the entry itself.
    value: Any = "leaf"
    for level in range(depth - 1):
        value = [value] if level % 2 else {"in": value}
    return {"deep": value}


def test_error_entries_nest_32_deep_and_integers_fit_64_bits(side: Any, conn: Any) -> None:
    job = _new(side)
    accepted = [
        _nested(MAX_ERROR_ENTRY_DEPTH),
        {"big": MAX_COUNT, "small": -MAX_COUNT},
    ]
    side.add_errors(job.id, accepted)
    assert side.get_by_id(job.id).errors == accepted
    before = _table(conn)
    for entry in [
        _nested(MAX_ERROR_ENTRY_DEPTH + 1),
        {"big": MAX_COUNT + 1},
        {"small": -MAX_COUNT - 1},
    ]:
        with _refused("error"):
            side.add_error(job.id, entry)
    assert _table(conn) == before
