"""ImportJobStatus and ImportJob: values, defaults, validation, round trips."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from importjob import ImportJob, ImportJobRepository, ImportJobStatus, SourceType
from importjob.exceptions import InvalidFieldError, ParseError

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_import_status_has_pending() -> None:
    assert ImportJobStatus("pending") is ImportJobStatus.PENDING
    assert str(ImportJobStatus.PENDING) == "pending"
    assert not ImportJobStatus.PENDING.is_terminal


def test_import_status_has_processing() -> None:
    assert ImportJobStatus("processing") is ImportJobStatus.PROCESSING
    assert str(ImportJobStatus.PROCESSING) == "processing"
    assert not ImportJobStatus.PROCESSING.is_terminal


def test_import_status_has_completed() -> None:
    assert ImportJobStatus("completed") is ImportJobStatus.COMPLETED
    assert str(ImportJobStatus.COMPLETED) == "completed"
    assert ImportJobStatus.COMPLETED.is_terminal


def test_import_status_has_failed() -> None:
    assert ImportJobStatus("failed") is ImportJobStatus.FAILED
    assert str(ImportJobStatus.FAILED) == "failed"
    assert ImportJobStatus.FAILED.is_terminal


def test_import_status_has_cancelled() -> None:
    assert ImportJobStatus("cancelled") is ImportJobStatus.CANCELLED
    assert str(ImportJobStatus.CANCELLED) == "cancelled"
    assert ImportJobStatus.CANCELLED.is_terminal


def test_status_has_exactly_the_lifecycle_members() -> None:
    assert [s.name for s in ImportJobStatus] == [
        "PENDING",
        "PROCESSING",
        "COMPLETED",
        "FAILED",
        "CANCELLED",
    ]


def test_lifecycle_table() -> None:
    s = ImportJobStatus
    assert s.PENDING.next_statuses() == {s.PROCESSING, s.FAILED, s.CANCELLED}
    assert s.PROCESSING.next_statuses() == {s.COMPLETED, s.FAILED, s.CANCELLED}
    for terminal in (s.COMPLETED, s.FAILED, s.CANCELLED):
        assert terminal.next_statuses() == frozenset()
    assert s.PENDING.previous_statuses() == frozenset()
    assert s.PROCESSING.previous_statuses() == {s.PENDING}
    assert s.COMPLETED.previous_statuses() == {s.PROCESSING}
    assert s.FAILED.previous_statuses() == {s.PENDING, s.PROCESSING}
    assert s.CANCELLED.previous_statuses() == {s.PENDING, s.PROCESSING}
    assert s.PENDING.can_transition_to(s.CANCELLED)
    assert not s.COMPLETED.can_transition_to(s.FAILED)


@pytest.mark.parametrize("text", ["processing", "PROCESSING", "Processing"])
def test_status_parses_its_value_or_name(text: str) -> None:
    assert ImportJobStatus.parse(text) is ImportJobStatus.PROCESSING


@pytest.mark.parametrize("value", ["done", "", None, 1, ImportJobStatus])
def test_status_parse_refuses_the_unknown(value: Any) -> None:
    with pytest.raises(InvalidFieldError, match="status: must be one of") as caught:
        ImportJobStatus.parse(value)
    assert caught.value.field == "status"


def test_import_job_create() -> None:
    job = ImportJob(source_type="csv", filename="pairs.csv")
    assert isinstance(job.id, uuid.UUID)
    assert job.id.version == 4
    assert job.source_type is SourceType.CSV
    assert job.filename == "pairs.csv"
    assert ImportJob(source_type="csv", filename="pairs.csv").id != job.id


def test_import_job_defaults() -> None:
    job = ImportJob(source_type="json", filename="pairs.json")
    assert job.status is ImportJobStatus.PENDING
    assert (job.total_rows, job.processed_rows, job.success_count, job.error_count) == (0, 0, 0, 0)
    assert job.errors == []
    assert job.started_at is job.completed_at is job.created_at is job.updated_at is None
    assert not job.is_finished


def test_import_job_is_frozen() -> None:
    job = ImportJob(source_type="csv", filename="pairs.csv")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        job.status = ImportJobStatus.FAILED  # type: ignore[misc]
    changed = attrs.evolve(job, processed_rows=10)
    assert (job.processed_rows, changed.processed_rows) == (0, 10)
    assert changed.id == job.id


def test_evolve_validates_too() -> None:
    job = ImportJob(source_type="csv", filename="pairs.csv")
    with pytest.raises(InvalidFieldError, match="processed_rows"):
        attrs.evolve(job, processed_rows=-1)


def _stored(repo: ImportJobRepository, **fields: Any) -> ImportJob:
    job = repo.create(ImportJob(source_type="csv", filename="pairs.csv", **fields))
    stored = repo.get_by_id(job.id)
    assert stored == job
    return stored


@pytest.mark.parametrize("field", ["total_rows", "processed_rows", "success_count", "error_count"])
def test_counter_rejects_negative_and_non_integers(field: str) -> None:
    for bad in (-1, 1.5, "3", True, None, 2**63):
        with pytest.raises(InvalidFieldError) as caught:
            ImportJob(source_type="csv", filename="pairs.csv", **{field: bad})  # type: ignore[arg-type]
        assert caught.value.field == field
        assert field in str(caught.value)


def test_import_job_tracks_total_rows(repo: ImportJobRepository) -> None:
    assert _stored(repo, total_rows=1_500).total_rows == 1_500
    assert _stored(repo, total_rows=2**63 - 1).total_rows == 2**63 - 1


def test_import_job_tracks_processed_rows(repo: ImportJobRepository) -> None:
    job = _stored(repo, total_rows=1_500, processed_rows=700)
    assert job.processed_rows == 700
    repo.update_progress(job.id, processed=900, success=880, errors=20)
    assert repo.get_by_id(job.id).processed_rows == 900  # type: ignore[union-attr]


def test_import_job_tracks_success_count(repo: ImportJobRepository) -> None:
    job = _stored(repo, success_count=650)
    assert job.success_count == 650
    repo.update_progress(job.id, processed=700, success=690, errors=10)
    assert repo.get_by_id(job.id).success_count == 690  # type: ignore[union-attr]


def test_import_job_tracks_error_count(repo: ImportJobRepository) -> None:
    job = _stored(repo, error_count=50)
    assert job.error_count == 50
    repo.update_progress(job.id, processed=700, success=690, errors=10)
    assert repo.get_by_id(job.id).error_count == 10  # type: ignore[union-attr]


@pytest.mark.parametrize("source_type", ["csv", "json", "text", SourceType.JSON, "TEXT"])
def test_import_job_stores_source_type(repo: ImportJobRepository, source_type: Any) -> None:
    job = repo.create(ImportJob(source_type=source_type, filename="pairs"))
    stored = repo.get_by_id(job.id)
    assert stored is not None
    assert stored.source_type is SourceType.parse(source_type)
    assert stored.source_type.value == str(source_type).lower()


@pytest.mark.parametrize("bad", ["xml", "", "csv ", None, 3])
def test_source_type_rejects_the_unknown(bad: Any) -> None:
    with pytest.raises(InvalidFieldError, match="source_type: must be one of csv, json, text"):
        ImportJob(source_type=bad, filename="pairs.csv")


@pytest.mark.parametrize(
    "filename", ["pairs.csv", "x", "é" * 255, "Fragen & Antworten (2026).csv", "'; DROP TABLE x;--"]
)
def test_import_job_stores_filename(repo: ImportJobRepository, filename: str) -> None:
    job = repo.create(ImportJob(source_type="csv", filename=filename))
    assert repo.get_by_id(job.id).filename == filename  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("", "must not be empty"),
        ("x" * 256, "must be at most 255 characters"),
        ("pairs\x00.csv", "NUL"),
        (None, "must be a string"),
        (b"pairs.csv", "must be a string"),
    ],
)
def test_filename_rejects_bad_values(bad: Any, message: str) -> None:
    with pytest.raises(InvalidFieldError, match=message) as caught:
        ImportJob(source_type="csv", filename=bad)
    assert caught.value.field == "filename"


def test_import_job_stores_errors_json(repo: ImportJobRepository) -> None:
    errors = [
        ParseError(3, "unterminated quote", raw_data='"a,b').to_dict(),
        {"row": 7, "field": "answer", "message": "empty", "nested": {"list": [1, 2.5, None, True]}},
        {"message": "ünïcödé ✓ 🙂", "quote": "'\"\\"},
    ]
    job = _stored(repo, errors=errors)
    assert job.errors == errors
    assert all(isinstance(entry, dict) for entry in job.errors)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("not a list", "must be a list of dicts"),
        ([1], "must be a dict"),
        ([{"x": {1, 2}}], "JSON-serializable"),
        ([{"x": float("nan")}], "NaN"),
        ([{"x": "a\x00b"}], "NUL"),
        ([{1: "x"}], "string keys"),
    ],
)
def test_errors_rejects_what_jsonb_cannot_hold(bad: Any, message: str) -> None:
    with pytest.raises(InvalidFieldError, match=message) as caught:
        ImportJob(source_type="csv", filename="pairs.csv", errors=bad)
    assert caught.value.field == "errors"


def test_import_job_has_timestamps(repo: ImportJobRepository) -> None:
    job = repo.create(ImportJob(source_type="csv", filename="pairs.csv"))
    assert job.created_at is not None
    assert job.created_at.tzinfo is not None
    assert job.updated_at is not None
    assert job.started_at is None
    assert job.completed_at is None
    started = repo.update_status(job.id, ImportJobStatus.PROCESSING)
    assert started.started_at is not None
    assert started.started_at >= job.created_at
    assert started.completed_at is None
    done = repo.update_status(job.id, ImportJobStatus.COMPLETED)
    assert done.completed_at is not None
    assert done.started_at == started.started_at
    assert done.completed_at >= done.started_at
    assert done.updated_at == done.completed_at


@pytest.mark.parametrize("field", ["started_at", "completed_at", "created_at", "updated_at"])
def test_timestamps_must_be_aware(field: str) -> None:
    status = {"started_at": "processing", "completed_at": "failed"}.get(field, "pending")
    with pytest.raises(InvalidFieldError, match=f"{field}: must be timezone-aware"):
        ImportJob(
            source_type="csv",
            filename="pairs.csv",
            status=status,
            **{field: datetime(2026, 1, 1)},  # type: ignore[arg-type]
        )
    with pytest.raises(InvalidFieldError, match=f"{field}: must be a datetime"):
        ImportJob(source_type="csv", filename="pairs.csv", **{field: "2026-01-01"})  # type: ignore[arg-type]


def test_timestamps_accept_any_timezone() -> None:
    tz = timezone(timedelta(hours=-5))
    job = ImportJob(source_type="csv", filename="p", created_at=NOW.astimezone(tz))
    assert job.created_at == NOW


def test_status_and_timestamps_must_agree() -> None:
    with pytest.raises(InvalidFieldError, match="completed_at: must be set"):
        ImportJob(source_type="csv", filename="p", status="completed")
    with pytest.raises(InvalidFieldError, match="completed_at: must be unset"):
        ImportJob(source_type="csv", filename="p", completed_at=NOW)
    with pytest.raises(InvalidFieldError, match="started_at: must be set"):
        ImportJob(source_type="csv", filename="p", status="processing")
    done = ImportJob(source_type="csv", filename="p", status="failed", completed_at=NOW)
    assert done.is_finished


@pytest.mark.parametrize("bad", ["not-a-uuid", 42, None])
def test_id_must_be_a_uuid(bad: Any) -> None:
    with pytest.raises(InvalidFieldError, match="id: must be a UUID"):
        ImportJob(source_type="csv", filename="p", id=bad)


def test_id_accepts_its_text_form() -> None:
    job_id = uuid.uuid4()
    assert ImportJob(source_type="csv", filename="p", id=str(job_id)).id == job_id
