"""Property tests: whatever a caller passes, only documented errors come out, changing nothing.

Every public method of both repositories and the tracker gets arbitrary
values (any unicode with NUL, huge integers, wrong types, non-JSON payloads,
unknown ids and statuses). A call either works, or raises one of the
project's documented exceptions; a refused call leaves the table as it was.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from importjob import ImportJob, ImportJobStatus, SourceType
from importjob._validate import MAX_ERROR_ENTRY_BYTES, TRUNCATED_MARK
from importjob.exceptions import (
    ImportJobCancelledError,
    ImportJobExistsError,
    ImportJobNotFoundError,
    InvalidFieldError,
    InvalidStatusTransitionError,
    SourceAlreadyImportedError,
)

# Any character PostgreSQL text can hold: no NUL, no lone surrogate.
STORABLE = st.characters(codec="utf-8", exclude_characters="\x00")
DEEP: Any = 1
for _ in range(40):
    DEEP = [DEEP]

RUNS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(),
    st.binary(max_size=20),
    st.uuids(),
    st.datetimes(),
    st.timedeltas(),
    st.sampled_from(list(ImportJobStatus) + list(SourceType)),
)
anything = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.text(), st.integers()), inner)
    ),
    max_leaves=10,
)
# What a checkpoint may be: any JSON value PostgreSQL's jsonb holds.
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63) + 1, 2**63 - 1),
        st.text(alphabet=STORABLE, max_size=50),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(alphabet=STORABLE, max_size=10), inner, max_size=4),
    ),
    max_leaves=10,
)
counts = st.one_of(st.integers(), anything)
statuses = st.one_of(st.sampled_from([s.value for s in ImportJobStatus]), anything)
entries = st.one_of(st.dictionaries(st.text(), anything, max_size=5), anything, st.builds(object))

# Refusals a call may give besides InvalidFieldError: documented, and they write nothing.
REFUSALS = (
    ImportJobNotFoundError,
    InvalidStatusTransitionError,
    ImportJobExistsError,
    ImportJobCancelledError,
    SourceAlreadyImportedError,
)


def _table(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT * FROM import_job ORDER BY id").fetchall()


def _job_ids(draw: Callable[..., Any], known: uuid.UUID) -> Any:
    return draw(st.one_of(st.just(known), st.just(str(known)), st.uuids(), anything))


jobs = st.builds(
    ImportJob,
    source_type=st.sampled_from(list(SourceType)),
    filename=st.text(
        alphabet=STORABLE,
        min_size=1,
        max_size=255,
    ),
    total_rows=st.integers(0, 2**63 - 1),
    source_sha256=st.one_of(
        st.none(), st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
    ),
    source_size=st.one_of(st.none(), st.integers(0, 2**63 - 1)),
    checkpoint=st.one_of(st.none(), st.integers(0, 2**63 - 1), st.text(alphabet=STORABLE)),
)


CALLS: dict[str, tuple[set[str], Callable[[Any, Callable[..., Any], uuid.UUID], Any]]] = {
    "get_by_id": ({"job_id"}, lambda side, draw, known: side.get_by_id(_job_ids(draw, known))),
    "list_by_status": (
        {"status", "limit"},
        lambda side, draw, known: side.list_by_status(draw(statuses), draw(counts)),
    ),
    "list_recent": (
        {"status", "limit", "with_errors"},
        lambda side, draw, known: side.list_recent(
            draw(st.one_of(st.none(), statuses)),
            draw(counts),
            with_errors=draw(st.one_of(st.booleans(), anything)),
        ),
    ),
    "error_summary": (
        {"job_id", "limit"},
        lambda side, draw, known: side.error_summary(_job_ids(draw, known), draw(counts)),
    ),
    "iter_errors": (
        {"job_id", "batch"},
        lambda side, draw, known: side.errors_of(_job_ids(draw, known), batch=draw(counts)),
    ),
    "export_errors": (
        {"job_id", "out", "format"},
        lambda side, draw, known: side.export_errors(
            _job_ids(draw, known),
            draw(st.one_of(st.builds(io.BytesIO), st.builds(io.StringIO), anything)),
            format=draw(st.one_of(st.sampled_from(["csv", "jsonl"]), anything)),
        ),
    ),
    "update_progress": (
        {"job_id", "processed", "success", "errors", "total"},
        lambda side, draw, known: side.update_progress(
            _job_ids(draw, known), draw(counts), draw(counts), draw(counts), total=draw(counts)
        ),
    ),
    "advance": (
        {
            "job_id",
            "processed",
            "success",
            "errors",
            "entries",
            "worker_id",
            "counters",
            "batch_id",
            "checkpoint",
        },
        lambda side, draw, known: side.advance(
            _job_ids(draw, known),
            draw(counts),
            draw(counts),
            draw(counts),
            entries=draw(st.one_of(st.lists(entries, max_size=3), anything)),
            worker_id=draw(st.one_of(st.none(), st.text(), anything)),
            batch_id=draw(
                st.one_of(st.none(), st.tuples(st.one_of(st.text(), anything), counts), anything)
            ),
            checkpoint=draw(st.one_of(json_values, anything)),
        ),
    ),
    "heartbeat": (
        {"job_id", "worker_id"},
        lambda side, draw, known: side.heartbeat(
            _job_ids(draw, known), draw(st.one_of(st.none(), st.text(), anything))
        ),
    ),
    "update_status": (
        {"job_id", "status"},
        lambda side, draw, known: side.update_status(_job_ids(draw, known), draw(statuses)),
    ),
    "cancel": (
        {"job_id"},
        lambda side, draw, known: side.cancel(_job_ids(draw, known)),
    ),
    "add_error": (
        {"job_id", "error"},
        lambda side, draw, known: side.add_error(_job_ids(draw, known), draw(entries)),
    ),
    "add_errors": (
        {"job_id", "errors"},
        lambda side, draw, known: side.add_errors(
            _job_ids(draw, known), draw(st.one_of(st.lists(entries, max_size=3), anything))
        ),
    ),
    "claim_next": (
        {"worker_id"},
        lambda side, draw, known: side.claim_next(draw(st.one_of(st.text(), anything))),
    ),
    "start": (
        {"job_id", "worker_id"},
        lambda side, draw, known: side.start(
            _job_ids(draw, known), draw(st.one_of(st.text(), anything))
        ),
    ),
    "rescue_stale": (
        {"older_than", "requeue"},
        lambda side, draw, known: side.rescue_stale(
            draw(st.one_of(st.timedeltas(min_value=timedelta(days=1)), anything)),
            draw(st.one_of(st.booleans(), anything)),
        ),
    ),
    "purge_finished": (
        {"older_than", "batch"},
        lambda side, draw, known: side.purge_finished(
            draw(st.one_of(st.timedeltas(min_value=timedelta(days=1)), anything)), draw(counts)
        ),
    ),
    "create": (
        {"job", "status", "started_at", "unique_source", "source_sha256"},
        lambda side, draw, known: side.create(
            draw(st.one_of(anything, jobs)),
            unique_source=draw(st.one_of(st.booleans(), anything)),
        ),
    ),
}


@pytest.mark.parametrize("method", CALLS)
@RUNS
@given(data=st.data())
def test_only_documented_errors_and_nothing_written(
    side: Any, conn: psycopg.Connection[Any], method: str, data: st.DataObject
) -> None:
    fields, call = CALLS[method]
    known = side.create(ImportJob(source_type="csv", filename="known.csv")).id
    before = _table(conn)
    try:
        call(side, data.draw, known)
    except InvalidFieldError as refused:
        assert refused.field in fields, (refused.field, refused)
        assert refused.field in str(refused)
        assert _table(conn) == before
    except REFUSALS:
        assert _table(conn) == before


@RUNS
@given(job=jobs)
def test_any_valid_text_is_stored_verbatim(side: Any, job: ImportJob) -> None:
    stored = side.create(job)
    assert side.get_by_id(job.id) == stored
    assert stored.filename == job.filename


@RUNS
@given(
    entry=st.dictionaries(
        st.text(
            alphabet=STORABLE,
            max_size=20,
        ),
        st.one_of(
            st.text(
                alphabet=STORABLE,
                max_size=200,
            ),
            st.integers(-(2**63) + 1, 2**63 - 1),
            st.booleans(),
            st.none(),
        ),
        max_size=6,
    )
)
def test_any_json_entry_reads_back_equal(side: Any, entry: dict[str, Any]) -> None:
    job = side.create(ImportJob(source_type="text", filename="e.txt"))
    side.add_error(job.id, entry)
    assert side.get_by_id(job.id).errors == [entry]


@RUNS
@given(checkpoint=json_values)
def test_any_json_checkpoint_reads_back_equal(side: Any, checkpoint: Any) -> None:
    job = side.create(ImportJob(source_type="text", filename="c.txt"))
    side.advance(job.id, 1, 1, checkpoint=checkpoint)
    assert side.get_by_id(job.id).checkpoint == checkpoint


@RUNS
@given(values=st.lists(anything, min_size=1, max_size=3))
@example(values=[2**80])
@example(values=[-1])
@example(values=["1"])
def test_tracker_counts_only_whole_rows(
    side: Any, conn: psycopg.Connection[Any], values: list[Any]
) -> None:
    job = side.create(ImportJob(source_type="csv", filename="t.csv"))
    with side.track(job.id, every_rows=1_000_000, every_seconds=3600) as t:
        counted = 0
        for value in values:
            try:
                t.ok(value)
                counted += value
            except InvalidFieldError as refused:
                assert refused.field == "n"
            try:
                t.failed(value)
                counted += 1
            except InvalidFieldError as refused:
                assert refused.field == "error"
    done = side.get_by_id(job.id)
    assert done.processed_rows == counted


@pytest.mark.parametrize(
    "size",
    [MAX_ERROR_ENTRY_BYTES, 100_000, 10_000_000],
    ids=["8 KiB", "100 kB", "10 MB"],
)
def test_oversized_entries_are_truncated_not_refused(side: Any, size: int) -> None:
    job = side.create(ImportJob(source_type="csv", filename="big.csv"))
    huge = "ä" * size
    side.add_error(job.id, {"row": 7, "field": "answer", "message": "too long", "value": huge})
    [stored] = side.get_by_id(job.id).errors
    assert len(json.dumps(stored, ensure_ascii=False).encode()) <= MAX_ERROR_ENTRY_BYTES
    assert stored["truncated"] is True
    assert stored["row"] == 7
    assert stored["message"] == "too long"
    assert stored["value"].endswith(TRUNCATED_MARK)
    assert stored["value"].startswith("ää")


@pytest.mark.parametrize(
    "entry",
    [{"message": "a\ud800"}, {"\udfff": 1}, {"x": ["\x00"]}, {"deep": DEEP}],
    ids=["surrogate", "surrogate key", "nested NUL", "too deep"],
)
def test_entries_postgresql_cannot_hold_are_refused(side: Any, entry: dict[str, Any]) -> None:
    job = side.create(ImportJob(source_type="csv", filename="bad.csv"))
    with pytest.raises(InvalidFieldError) as refused:
        side.add_error(job.id, entry)
    assert refused.value.field == "error"
    assert side.get_by_id(job.id).errors == []


def test_an_entry_of_many_keys_keeps_its_type_and_message(side: Any) -> None:
    job = side.create(ImportJob(source_type="csv", filename="keys.csv"))
    entry = {f"key{n}": n for n in range(5_000)} | {"type": "ParseError", "message": "bad"}
    side.add_error(job.id, entry)
    assert side.get_by_id(job.id).errors == [
        {"type": "ParseError", "message": "bad", "truncated": True}
    ]


@pytest.mark.parametrize(
    "value",
    ["x" * 10_000_000, "a\x00b", "a\ud800b", 2**64, -1, 1.5, b"bytes", ["pairs.csv"], None],
    ids=["10 MB", "NUL", "surrogate", "2**64", "negative", "float", "bytes", "list", "None"],
)
def test_hostile_filenames_and_counts_name_their_field(side: Any, value: Any) -> None:
    field = "total_rows" if isinstance(value, int | float) else "filename"
    with pytest.raises(InvalidFieldError) as refused:
        if field == "filename":
            ImportJob(source_type="csv", filename=value)
        else:
            ImportJob(source_type="csv", filename="f.csv", total_rows=value)
    assert refused.value.field == field
    assert len(str(refused.value)) < 300  # a 10 MB value is not echoed back whole
