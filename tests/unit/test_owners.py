"""Owners and metadata: set at create, filtered by every list, a file imported once per owner."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from importjob import Chunk, ImportJob, ImportJobRepository, ImportJobStatus
from importjob.exceptions import (
    ImportJobNotFoundError,
    InvalidFieldError,
    SourceAlreadyImportedError,
)

S = ImportJobStatus
DIGEST = "e" * 64


def _job(**fields: Any) -> ImportJob:
    return ImportJob(source_type="csv", filename="pairs.csv", **fields)


def _count(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM import_job").fetchone()
    assert row is not None
    return int(row[0])


def test_owner_and_metadata_are_stored_and_read_back(side: Any) -> None:
    metadata = {"upload": 7, "dataset": "faq", "tags": ["a", "b"], "nested": {"x": None}}
    created = side.create(_job(owner="tenant-1", metadata=metadata))
    stored = side.get_by_id(created.id)
    assert stored == created
    assert (stored.owner, stored.metadata) == ("tenant-1", metadata)
    assert side.create(_job()).owner is None
    assert side.get_by_id(side.create(_job()).id).metadata == {}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"owner": ""}, "owner"),
        ({"owner": "x" * 201}, "owner"),
        ({"owner": "a\nb"}, "owner"),
        ({"owner": "a\x00b"}, "owner"),
        ({"owner": 5}, "owner"),
        ({"metadata": ["not", "a", "dict"]}, "metadata"),
        ({"metadata": {1: "key not a string"}}, "metadata"),
        ({"metadata": {"big": "x" * 9000}}, "metadata"),
        ({"metadata": {"nan": float("nan")}}, "metadata"),
        ({"metadata": {"set": {1, 2}}}, "metadata"),
    ],
)
def test_a_bad_owner_or_metadata_is_refused_naming_it(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        _job(**fields)
    assert caught.value.field == field


def test_the_database_refuses_what_the_model_refuses(conn: psycopg.Connection[Any]) -> None:
    # The same rules hold for a row written by hand.
    for column, value in (("owner", ""), ("owner", "a\tb"), ("metadata", "[]")):
        with pytest.raises(psycopg.errors.CheckViolation) as caught, conn.transaction():
            conn.execute(
                f"INSERT INTO import_job (source_type, filename, {column})"
                " VALUES ('csv', 'x.csv', %s)",
                [value],
            )
        assert caught.value.diag.constraint_name == f"import_job_{column}_check"
    assert _count(conn) == 0


def test_lists_filter_by_owner(side: Any) -> None:
    mine = [side.create(_job(owner="me")) for _ in range(3)]
    theirs = side.create(_job(owner="them"))
    nobody = side.create(_job())
    side.start(mine[1].id, "w")
    assert [job.id for job in side.list_recent(owner="me")] == [job.id for job in mine[::-1]]
    assert [job.id for job in side.list_recent(owner="them")] == [theirs.id]
    assert [job.id for job in side.list_recent(owner="nobody-here")] == []
    # No owner given: every owner's jobs.
    assert len(side.list_recent()) == 5
    assert [job.id for job in side.list_recent(S.PENDING, owner="me")] == [
        mine[2].id,
        mine[0].id,
    ]
    assert [job.id for job in side.list_by_status(S.PENDING, owner="me")] == [
        mine[0].id,
        mine[2].id,
    ]
    assert [job.id for job in side.list_by_status(S.PROCESSING, owner="me")] == [mine[1].id]
    assert [job.id for job in side.list_by_status(S.PENDING, owner="them")] == [theirs.id]
    pending = side.list_by_status(S.PENDING)
    assert {job.id for job in pending} == {mine[0].id, mine[2].id, theirs.id, nobody.id}


def test_list_recent_filters_by_metadata_containment(side: Any) -> None:
    faq = side.create(_job(metadata={"dataset": "faq", "upload": 1}))
    faq_two = side.create(_job(metadata={"dataset": "faq", "upload": 2, "tags": ["x", "y"]}))
    other = side.create(_job(owner="me", metadata={"dataset": "other"}))
    assert [job.id for job in side.list_recent(metadata={"dataset": "faq"})] == [
        faq_two.id,
        faq.id,
    ]
    assert [job.id for job in side.list_recent(metadata={"dataset": "faq", "upload": 1})] == [
        faq.id
    ]
    assert [job.id for job in side.list_recent(metadata={"tags": ["y"]})] == [faq_two.id]
    assert side.list_recent(metadata={"upload": "1"}) == []  # a string is not the number
    assert [job.id for job in side.list_recent(owner="me", metadata={"dataset": "other"})] == [
        other.id
    ]
    assert side.list_recent(owner="me", metadata={"dataset": "faq"}) == []
    # An empty filter is no filter.
    assert len(side.list_recent(metadata={})) == 3


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"owner": ""}, "owner"),
        ({"owner": 3}, "owner"),
        ({"metadata": "dataset=faq"}, "metadata"),
        ({"metadata": {"n": float("inf")}}, "metadata"),
    ],
)
def test_a_bad_filter_is_refused_naming_it(side: Any, filters: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        side.list_recent(**filters)
    assert caught.value.field == field
    if "owner" in filters:
        with pytest.raises(InvalidFieldError) as caught:
            side.list_by_status(S.PENDING, **filters)
        assert caught.value.field == field


def test_owners_reads_the_owner_of_each_job_that_exists(side: Any) -> None:
    mine = side.create(_job(owner="tenant-1"))
    nobodys = side.create(_job())
    missing = "00000000-0000-0000-0000-000000000001"
    assert side.owners([mine.id, str(nobodys.id), missing]) == {
        mine.id: "tenant-1",
        nobodys.id: None,
    }
    assert side.owners([]) == {}
    with pytest.raises(InvalidFieldError) as refused:
        side.owners(str(mine.id))
    assert refused.value.field == "job_ids"
    with pytest.raises(InvalidFieldError) as refused:
        side.owners(["nope"])
    assert refused.value.field == "job_id"


def test_update_metadata_replaces_it_and_returns_the_job(side: Any) -> None:
    job = side.create(_job(owner="me", metadata={"a": 1, "b": 2}))
    updated = side.update_metadata(job.id, {"c": 3})
    assert updated.metadata == {"c": 3}
    assert updated == side.get_by_id(job.id)
    assert updated.updated_at >= job.updated_at
    # Progress never changes the owner or the metadata.
    side.start(job.id, "w")
    side.advance(job.id, 10, 9, 1, worker_id="w")
    side.update_progress(job.id, 10, 10, 0)
    done = side.update_status(job.id, S.COMPLETED)
    assert (done.owner, done.metadata) == ("me", {"c": 3})
    # Finished jobs keep taking the application's fields.
    assert side.update_metadata(job.id, {}).metadata == {}


def test_update_metadata_refuses_bad_input_writing_nothing(side: Any) -> None:
    job = side.create(_job(metadata={"a": 1}))
    with pytest.raises(InvalidFieldError) as caught:
        side.update_metadata(job.id, {"big": "x" * 9000})
    assert caught.value.field == "metadata"
    with pytest.raises(InvalidFieldError) as caught:
        side.update_metadata("not-a-uuid", {})
    assert caught.value.field == "job_id"
    assert side.get_by_id(job.id).metadata == {"a": 1}
    with pytest.raises(ImportJobNotFoundError):
        side.update_metadata("00000000-0000-0000-0000-000000000001", {})


def test_a_file_is_imported_once_per_owner(side: Any, conn: psycopg.Connection[Any]) -> None:
    first = side.create(_job(owner="a", source_sha256=DIGEST), unique_source=True)
    # Another owner imports the same file.
    second = side.create(_job(owner="b", source_sha256=DIGEST), unique_source=True)
    # Jobs without an owner are one owner of their own.
    unowned = side.create(_job(source_sha256=DIGEST), unique_source=True)
    assert len({first.id, second.id, unowned.id}) == 3
    for owner, existing in (("a", first), ("b", second), (None, unowned)):
        with pytest.raises(SourceAlreadyImportedError) as caught:
            side.create(_job(owner=owner, source_sha256=DIGEST), unique_source=True)
        # Only ever a job of the same owner is named.
        assert caught.value.existing_job_id == existing.id
    assert _count(conn) == 3
    # A failed import of one owner lets that owner try again, and only that one.
    side.update_status(first.id, S.FAILED)
    again = side.create(_job(owner="a", source_sha256=DIGEST), unique_source=True)
    assert again.owner == "a"
    with pytest.raises(SourceAlreadyImportedError) as caught:
        side.create(_job(owner="b", source_sha256=DIGEST), unique_source=True)
    assert caught.value.existing_job_id == second.id


@pytest.mark.parametrize(
    ("first_owner", "second_owner"), [("a", "a"), (None, None), ("a", "b"), ("a", None)]
)
def test_two_connections_racing_to_import_one_file(
    db_url: str, first_owner: str | None, second_owner: str | None
) -> None:
    same = first_owner == second_owner
    with (
        psycopg.connect(db_url) as first_conn,
        psycopg.connect(db_url, autocommit=True) as second_conn,
    ):
        first = ImportJobRepository(first_conn).create(
            _job(owner=first_owner, source_sha256=DIGEST), unique_source=True
        )  # not committed yet
        outcome: dict[str, Any] = {}

        def second() -> None:
            try:
                outcome["job"] = ImportJobRepository(second_conn).create(
                    _job(owner=second_owner, source_sha256=DIGEST), unique_source=True
                )
            except SourceAlreadyImportedError as exc:
                outcome["refused"] = exc

        racer = threading.Thread(target=second)
        racer.start()
        racer.join(0.5)
        # The same owner waits on the index for the first transaction;
        # another owner's create does not conflict with it at all.
        assert racer.is_alive() is same
        first_conn.commit()
        racer.join(10)
        assert not racer.is_alive()
    if same:
        assert "job" not in outcome
        assert outcome["refused"].existing_job_id == first.id
    else:
        assert "refused" not in outcome
        assert outcome["job"].owner == second_owner


def test_an_owners_list_is_served_by_its_index(
    repo: ImportJobRepository, conn: psycopg.Connection[Any]
) -> None:
    for owner in ("a", "b"):
        for _ in range(3):
            repo.create(_job(owner=owner))
    queries = repo._sql
    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL enable_seqscan = off")
        conn.execute("SET LOCAL enable_bitmapscan = off")
        for name, params, index in (
            (
                "list_recent",
                {"status": None, "owner": "a", "metadata": None, "filename": None, "limit": 50},
                "ix_import_job_owner",
            ),
            (
                "list_recent",
                {
                    "status": "pending",
                    "owner": "a",
                    "metadata": None,
                    "filename": None,
                    "limit": 50,
                },
                "ix_import_job_owner_status",
            ),
            (
                "list_by_status_of_owner",
                {"status": "pending", "owner": "a", "limit": 50},
                "ix_import_job_owner_status",
            ),
            (
                "count_by_status",
                {"owner": "a", "at_most": 10, "statuses": [s.value for s in S]},
                "ix_import_job_owner_status",
            ),
            (
                "count_by_status",
                {"owner": None, "at_most": 10, "statuses": [s.value for s in S]},
                "ix_import_job_status",
            ),
        ):
            plan = "\n".join(
                line
                for (line,) in conn.execute(
                    "EXPLAIN " + queries[name], {"with_errors": False, **params}, prepare=False
                )
            )
            assert f"Index Scan Backward using {index}" in plan or (
                f"Index Scan using {index}" in plan
            ), plan
            assert "Sort" not in plan, plan  # the index gives the order


def test_list_recent_filters_by_part_of_the_file_name_in_any_case(side: Any) -> None:
    faq = side.create(ImportJob(source_type="csv", filename="FAQ-2026.csv", owner="me"))
    other_faq = side.create(ImportJob(source_type="json", filename="old_faq.json", owner="them"))
    side.create(ImportJob(source_type="csv", filename="pairs.csv", owner="me"))
    assert [job.id for job in side.list_recent(filename="faq")] == [other_faq.id, faq.id]
    assert [job.id for job in side.list_recent(filename="faq", owner="me")] == [faq.id]
    assert [job.id for job in side.list_recent(S.PENDING, filename=".JSON")] == [other_faq.id]
    # The text is matched as it is: no pattern character means anything.
    assert side.list_recent(filename="%") == []
    assert side.list_recent(filename="_faq") == [other_faq]
    assert side.list_recent(filename="faq", limit=1) == [other_faq]
    for bad in ("", "x" * 256, "a\x00b", 7):
        with pytest.raises(InvalidFieldError) as caught:
            side.list_recent(filename=bad)
        assert caught.value.field == "filename"


def test_count_by_status_counts_each_status_of_an_owner_or_of_all(side: Any) -> None:
    for _ in range(3):
        side.create(_job(owner="me"))
    running = side.create(_job(owner="me"))
    side.start(running.id, "w")
    done = side.create(_job(owner="them"))
    side.start(done.id, "w")
    side.update_status(done.id, S.COMPLETED)
    side.create(_job())
    counted = side.count_by_status()
    assert counted == {S.PENDING: 4, S.PROCESSING: 1, S.COMPLETED: 1, S.FAILED: 0, S.CANCELLED: 0}
    assert side.count_by_status(owner="me") == {
        **dict.fromkeys(S, 0),
        S.PENDING: 3,
        S.PROCESSING: 1,
    }
    assert side.count_by_status(owner="them") == {**dict.fromkeys(S, 0), S.COMPLETED: 1}
    assert side.count_by_status(owner="nobody") == dict.fromkeys(S, 0)
    # Counted as far as asked: that many means that many or more.
    assert side.count_by_status(at_most=2)[S.PENDING] == 2
    assert side.count_by_status(at_most=4)[S.PENDING] == 4
    assert side.count_by_status(owner="me", at_most=1) == {
        **dict.fromkeys(S, 0),
        S.PENDING: 1,
        S.PROCESSING: 1,
    }


def test_count_by_status_counts_a_chunked_import_once_in_its_status(side: Any) -> None:
    parent, children = side.create_chunked(_job(owner="me"), [Chunk(2), Chunk(2), Chunk(2)])
    assert side.count_by_status(owner="me")[S.PENDING] == 1
    claimed = side.claim_next("w")
    assert claimed.id == children[0].id
    # A chunk started: the import is processing, its other chunks wait, and one job is counted.
    assert side.count_by_status(owner="me") == {**dict.fromkeys(S, 0), S.PROCESSING: 1}
    assert side.list_recent(S.PROCESSING, owner="me") == [side.get_by_id(parent.id)]


@pytest.mark.parametrize(
    ("filters", "field"),
    [({"owner": ""}, "owner"), ({"at_most": 0}, "at_most"), ({"at_most": "9"}, "at_most")],
)
def test_count_by_status_refuses_a_bad_value_naming_it(
    side: Any, filters: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        side.count_by_status(**filters)
    assert caught.value.field == field
