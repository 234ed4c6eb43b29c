"""What happened to every row: imported with an outcome, skipped, failed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from importjob import ImportJob, ImportJobStatus
from importjob.exceptions import (
    DuplicateDetectedError,
    ImportValidationError,
    InvalidFieldError,
    ParseError,
)
from importjob.repository import MAX_OUTCOME_LABELS

S = ImportJobStatus
EXISTING = uuid.UUID("00000000-0000-0000-0000-00000000000a")


def _job(**fields: Any) -> ImportJob:
    return ImportJob(source_type="csv", filename="pairs.csv", **fields)


def _stored(side: Any, job_id: Any) -> ImportJob:
    job: ImportJob | None = side.get_by_id(job_id)
    assert job is not None
    return job


def _adds_up(job: ImportJob) -> bool:
    return job.processed_rows == job.success_count + job.error_count + job.skipped_count


def test_a_tracked_import_counts_every_rows_outcome(side: Any) -> None:
    job = side.create(_job(total_rows=10))
    with side.track(job.id, every_rows=3, every_seconds=3600) as t:
        t.ok(outcome="created")
        t.ok(2, outcome="created")
        t.ok(outcome="updated")
        t.ok()  # imported, how not said
        t.skipped("unchanged")
        t.skipped(DuplicateDetectedError(7, EXISTING, 0.97))
        t.failed(ImportValidationError(8, "answer", "must not be empty"))
        t.skipped(ParseError(9, "not a pair"))
        assert (t.processed_rows, t.success_count, t.error_count, t.skipped_count) == (9, 5, 1, 3)
    done = _stored(side, job.id)
    assert done.status is S.COMPLETED
    assert (done.processed_rows, done.success_count, done.error_count, done.skipped_count) == (
        9,
        5,
        1,
        3,
    )
    assert _adds_up(done)
    assert done.outcomes == {
        "created": 3,
        "updated": 1,
        "unchanged": 1,
        "duplicate": 1,
        "ParseError": 1,
    }
    # A skipped exception is an entry, as a failure is, with its context.
    duplicate, failure, parse = side.errors_of(job.id)
    assert duplicate == {
        "type": "DuplicateDetectedError",
        "message": f"duplicate of {EXISTING} (similarity 0.970)",
        "row": 7,
        "existing_id": str(EXISTING),
        "similarity": 0.97,
        "skipped": True,
    }
    assert failure["type"] == "ImportValidationError"
    assert "skipped" not in failure
    assert parse["skipped"] is True
    assert done.errors == [duplicate, failure, parse]


def test_labels_past_the_bound_count_under_other(side: Any) -> None:
    job = side.create(_job())
    labels = [f"label-{n:02}" for n in range(MAX_OUTCOME_LABELS + 8)]
    with side.track(job.id, every_rows=5, every_seconds=3600) as t:
        for label in labels:
            t.ok(outcome=label)
        t.ok(3, outcome="label-00")  # a label the job has keeps counting
        t.skipped("other")  # the application's own "other" adds to it
    done = _stored(side, job.id)
    assert len(done.outcomes) == MAX_OUTCOME_LABELS + 1
    assert done.outcomes["label-00"] == 4
    assert done.outcomes["other"] == 8 + 1
    assert sum(done.outcomes.values()) == done.processed_rows == len(labels) + 4
    assert set(done.outcomes) - {"other"} <= set(labels)


@pytest.mark.parametrize("label", ["", "x" * 65, 7, None])
def test_a_bad_label_is_refused_naming_it_and_counts_nothing(side: Any, label: Any) -> None:
    job = side.create(_job())
    with side.track(job.id, every_rows=1, every_seconds=3600) as t:
        if label is not None:
            with pytest.raises(InvalidFieldError) as caught:
                t.ok(outcome=label)
            assert caught.value.field == "outcome"
        with pytest.raises(InvalidFieldError) as caught:
            t.skipped(label)
        assert caught.value.field == "reason"
        assert (t.processed_rows, t.success_count, t.skipped_count) == (0, 0, 0)
    done = _stored(side, job.id)
    assert (done.processed_rows, done.outcomes, side.errors_of(job.id)) == (0, {}, [])


def test_a_checkpoint_holds_back_the_outcomes_after_it(side: Any) -> None:
    job = side.create(_job())
    with side.track(job.id, every_rows=1000, every_seconds=3600) as t:
        t.ok(3, outcome="created")
        t.skipped("duplicate")
        t.checkpoint(4)
        t.ok(outcome="created")
        t.skipped("unchanged")
        t.flush()
        held = _stored(side, job.id)
        # The batch took the rows up to the checkpoint, their outcomes with them.
        assert (held.processed_rows, held.skipped_count, held.checkpoint) == (4, 1, 4)
        assert held.outcomes == {"created": 3, "duplicate": 1}
        t.checkpoint(6)
        t.flush()
        assert _stored(side, job.id).outcomes == {"created": 4, "duplicate": 1, "unchanged": 1}
    assert _adds_up(_stored(side, job.id))


def test_advance_adds_skipped_rows_and_outcomes(side: Any) -> None:
    job = side.create(_job())
    side.advance(job.id, 10, 6, 1, skipped=3, outcomes={"created": 5, "duplicate": 3})
    side.advance(job.id, 2, 2, 0, outcomes={"created": 1, "updated": 1})
    stored = _stored(side, job.id)
    assert (stored.processed_rows, stored.skipped_count) == (12, 3)
    assert stored.outcomes == {"created": 6, "duplicate": 3, "updated": 1}
    # A batch applied once whatever it carries.
    batch = {"skipped": 1, "outcomes": {"duplicate": 1}, "batch_id": ("w", 1)}
    side.advance(job.id, 1, 0, 0, **batch)
    side.advance(job.id, 1, 0, 0, **batch)
    again = _stored(side, job.id)
    assert (again.processed_rows, again.skipped_count, again.outcomes["duplicate"]) == (13, 4, 4)
    # The seed's update_progress keeps its meaning: the counters it names.
    side.update_progress(job.id, 20, 15, 1)
    after = _stored(side, job.id)
    assert (after.processed_rows, after.success_count, after.error_count) == (20, 15, 1)
    assert after.skipped_count == 4


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"skipped": -1}, "skipped"),
        ({"skipped": True}, "skipped"),
        ({"outcomes": ["created"]}, "outcomes"),
        ({"outcomes": {"": 1}}, "outcomes"),
        ({"outcomes": {"x" * 65: 1}}, "outcomes"),
        ({"outcomes": {"created": -1}}, "outcomes"),
        ({"outcomes": {"created": "1"}}, "outcomes"),
    ],
)
def test_advance_refuses_bad_counts_naming_them(
    side: Any, changes: dict[str, Any], field: str
) -> None:
    job = side.create(_job())
    with pytest.raises(InvalidFieldError) as caught:
        side.advance(job.id, 1, 1, 0, **changes)
    assert caught.value.field == field
    stored = _stored(side, job.id)
    assert (stored.processed_rows, stored.skipped_count, stored.outcomes) == (0, 0, {})


def test_a_job_created_with_counts_keeps_them() -> None:
    job = _job(processed_rows=3, success_count=1, skipped_count=2, outcomes={"duplicate": 2})
    assert (job.skipped_count, job.outcomes) == (2, {"duplicate": 2})
    for fields, field in (
        ({"skipped_count": -1}, "skipped_count"),
        ({"outcomes": {"": 1}}, "outcomes"),
        ({"outcomes": {"a": 1.5}}, "outcomes"),
    ):
        with pytest.raises(InvalidFieldError) as caught:
            _job(**fields)
        assert caught.value.field == field


def test_create_stores_given_counts_and_outcomes(side: Any) -> None:
    created = side.create(_job(processed_rows=3, skipped_count=2, outcomes={"duplicate": 2}))
    assert created == _stored(side, created.id)
    assert (created.skipped_count, created.outcomes) == (2, {"duplicate": 2})


def test_watch_snapshots_carry_skipped_rows_and_outcomes(side: Any) -> None:
    job = side.create(_job(owner="me", metadata={"ds": "faq"}))
    side.start(job.id, "w")
    side.advance(job.id, 3, 2, 0, skipped=1, outcomes={"created": 2, "duplicate": 1})
    side.update_status(job.id, S.COMPLETED)
    [snapshot] = side.watch_all(job.id, timeout=5)
    assert (snapshot.skipped_count, snapshot.outcomes) == (1, {"created": 2, "duplicate": 1})
    assert (snapshot.owner, snapshot.metadata) == ("me", {"ds": "faq"})
