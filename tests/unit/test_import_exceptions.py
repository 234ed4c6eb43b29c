"""The exception hierarchy: context, messages, pickling, stored form."""

from __future__ import annotations

import builtins
import json
import pickle
import uuid
from datetime import UTC, datetime

import pytest

from importjob import ImportJobStatus
from importjob.exceptions import (
    DataImportError,
    DuplicateDetectedError,
    ImportJobCancelledError,
    ImportJobDatabaseError,
    ImportJobExistsError,
    ImportJobNotFoundError,
    ImportJobStoppedError,
    ImportValidationError,
    InvalidFieldError,
    InvalidStatusTransitionError,
    ParseError,
    SchemaMissingError,
)

JOB_ID = uuid.UUID("0b7c8f6e-2a54-4e37-9d6e-3c1f5a0e9b21")
PAIR_ID = uuid.UUID("5f0e2b9a-8c41-4d7e-a1b3-6e2d9c0f4a87")

# One instance of every exception, with context worth round-tripping.
EXAMPLES: list[DataImportError] = [
    DataImportError("the import broke"),
    ParseError(17, "unterminated quote", raw_data='"What is 2+2?,4'),
    ParseError(3, "empty line"),
    ImportValidationError(42, "question", "must not be empty", value=""),
    DuplicateDetectedError(9, PAIR_ID, 0.9731),
    ImportJobNotFoundError(JOB_ID),
    ImportJobExistsError(JOB_ID),
    InvalidStatusTransitionError(JOB_ID, ImportJobStatus.COMPLETED, ImportJobStatus.PENDING),
    InvalidFieldError("filename", "must not be empty", ""),
    ImportJobDatabaseError("OperationalError: connection lost"),
    ImportJobStoppedError(JOB_ID, ImportJobStatus.FAILED),
    ImportJobCancelledError(JOB_ID),
    SchemaMissingError("the import_job table does not exist"),
]


def test_parse_error_has_line_number() -> None:
    error = ParseError(17, "unterminated quote", raw_data='"What is 2+2?,4')
    assert error.line_number == 17
    assert error.raw_data == '"What is 2+2?,4'
    assert error.message == "unterminated quote"
    assert str(error) == "line 17: unterminated quote"
    assert ParseError(3, "empty line").raw_data is None


def test_validation_error_has_field() -> None:
    error = ImportValidationError(42, "question", "must not be empty", value="  ")
    assert (error.row, error.field, error.value) == (42, "question", "  ")
    assert error.message == "must not be empty"
    assert "question" in str(error)
    assert "must not be empty" in str(error)
    assert "42" in str(error)


def test_duplicate_error_has_existing_id() -> None:
    error = DuplicateDetectedError(9, PAIR_ID, 0.9731)
    assert error.row == 9
    assert error.existing_id == PAIR_ID
    assert error.similarity == 0.9731
    assert str(PAIR_ID) in str(error)
    assert "0.973" in str(error)


def test_import_job_not_found_has_id() -> None:
    error = ImportJobNotFoundError(JOB_ID)
    assert error.job_id == JOB_ID
    assert str(JOB_ID) in str(error)
    assert "not found" in str(error)


def test_base_does_not_shadow_builtin_import_error() -> None:
    assert not issubclass(DataImportError, builtins.ImportError)
    for error in EXAMPLES:
        assert isinstance(error, DataImportError)


def test_invalid_field_error_is_a_value_error() -> None:
    error = InvalidFieldError("limit", "must be at least 1", 0)
    assert isinstance(error, ValueError)
    assert str(error) == "limit: must be at least 1 (got 0)"


def test_invalid_field_error_shortens_a_huge_value() -> None:
    error = InvalidFieldError("filename", "must be at most 255 characters", "x" * 10_000)
    assert len(str(error)) < 200
    assert error.value == "x" * 10_000  # kept whole as an attribute


def test_transition_error_names_both_statuses() -> None:
    error = InvalidStatusTransitionError(JOB_ID, ImportJobStatus.COMPLETED, "pending")
    assert str(error) == f"import job {JOB_ID} cannot go from completed to pending"
    assert (error.from_status, error.to_status) == ("completed", "pending")


@pytest.mark.parametrize("error", EXAMPLES, ids=lambda e: type(e).__name__)
def test_survives_pickle_unchanged(error: DataImportError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert copy == error
    assert vars(copy) == vars(error)
    assert str(copy) == str(error)
    assert copy.to_dict() == error.to_dict()


@pytest.mark.parametrize("error", EXAMPLES, ids=lambda e: type(e).__name__)
def test_to_dict_is_json_ready(error: DataImportError) -> None:
    entry = error.to_dict()
    assert entry["type"] == type(error).__name__
    assert entry["message"] == error.message
    assert entry["message"] in str(error)
    assert json.loads(json.dumps(entry)) == entry


def test_to_dict_holds_the_context() -> None:
    assert ParseError(17, "bad", raw_data="a,b").to_dict() == {
        "type": "ParseError",
        "message": "bad",
        "line_number": 17,
        "raw_data": "a,b",
    }
    assert ImportValidationError(4, "answer", "too long", value="x" * 3).to_dict() == {
        "type": "ImportValidationError",
        "message": "too long",
        "row": 4,
        "field": "answer",
        "value": "xxx",
    }
    assert DuplicateDetectedError(9, PAIR_ID, 0.5).to_dict()["existing_id"] == str(PAIR_ID)
    assert ImportJobNotFoundError(JOB_ID).to_dict()["job_id"] == str(JOB_ID)
    transition = InvalidStatusTransitionError(JOB_ID, ImportJobStatus.FAILED, "cancelled")
    assert transition.to_dict()["from_status"] == "failed"
    assert transition.to_dict()["to_status"] == "cancelled"


def test_stopped_and_cancelled_say_the_status() -> None:
    stopped = ImportJobStoppedError(JOB_ID, ImportJobStatus.FAILED)
    assert str(stopped) == f"import job {JOB_ID} was ended elsewhere: it is failed"
    assert stopped.to_dict()["status"] == "failed"
    cancelled = ImportJobCancelledError(JOB_ID)
    assert isinstance(cancelled, ImportJobStoppedError)
    assert str(cancelled) == f"import job {JOB_ID} was cancelled"
    assert cancelled.to_dict()["status"] == "cancelled"


def test_to_dict_stores_times_as_iso_text() -> None:
    moment = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    entry = ImportValidationError(1, "published", "in the future", value=moment).to_dict()
    assert entry["value"] == "2026-11-26T12:00:00+00:00"


def test_equality_is_by_class_and_arguments() -> None:
    assert ParseError(1, "a") == ParseError(1, "a")
    assert ParseError(1, "a") != ParseError(2, "a")
    assert DataImportError("a") != ImportJobDatabaseError("a")
    assert len({ParseError(1, "a"), ParseError(1, "a")}) == 1


def test_to_dict_stores_any_offending_value_as_json() -> None:
    entry = ImportValidationError(4, "tags", "must be a list", value={"a", "b"}).to_dict()
    assert isinstance(entry["value"], str)
    assert json.loads(json.dumps(entry)) == entry
