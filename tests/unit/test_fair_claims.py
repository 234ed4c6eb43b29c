"""Claims go round the owners: one owner's backlog never starves another's job."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from importjob import Chunk, ImportJob, ImportJobRepository


def _job(owner: str | None) -> ImportJob:
    return ImportJob(source_type="csv", filename="pairs.csv", owner=owner)


def _backlog(conn: psycopg.Connection[Any], owner: str | None, jobs: int) -> None:
    """Queue ``jobs`` pending jobs of ``owner`` in one statement, as a bulk load would."""
    conn.execute(
        "INSERT INTO import_job (source_type, filename, owner)"
        " SELECT 'csv', 'backlog.csv', %s FROM generate_series(1, %s)",
        [owner, jobs],
    )


def _claim(repo: ImportJobRepository) -> ImportJob:
    job = repo.claim_next("w")
    assert job is not None, "a job is pending"
    return job


def _claim_owners(repo: ImportJobRepository, claims: int) -> list[str | None]:
    return [_claim(repo).owner for _ in range(claims)]


@pytest.mark.parametrize("running", [0, 1, 2, 4, 8, 32])
@pytest.mark.parametrize("backlog_owner", ["tenant-a", None])
def test_a_single_job_is_claimed_among_the_next_two_despite_a_backlog(
    conn: psycopg.Connection[Any],
    repo: ImportJobRepository,
    running: int,
    backlog_owner: str | None,
) -> None:
    # Jobs without an owner are one owner of their own, like any other.
    _backlog(conn, backlog_owner, 10_000)
    assert _claim_owners(repo, running) == [backlog_owner] * running  # the workers are busy
    single = repo.create(_job("tenant-b"))
    first, second = _claim(repo), _claim(repo)
    assert single.id in {first.id, second.id}


def test_claims_alternate_between_owners_with_work_waiting(
    conn: psycopg.Connection[Any], repo: ImportJobRepository
) -> None:
    _backlog(conn, "tenant-a", 100)
    for _ in range(5):
        repo.create(_job("tenant-b"))
    owners = _claim_owners(repo, 12)
    assert owners[:10] == ["tenant-a", "tenant-b"] * 5
    assert owners[10:] == ["tenant-a", "tenant-a"]  # tenant-b has nothing left waiting


def test_an_owner_back_after_a_pause_does_not_jump_the_queue(
    conn: psycopg.Connection[Any], repo: ImportJobRepository
) -> None:
    # tenant-b's jobs were claimed long ago; its new ones join the current
    # round rather than the rounds it left behind, so each owner keeps
    # getting one claim in two.
    for _ in range(3):
        repo.create(_job("tenant-b"))
    _backlog(conn, "tenant-a", 50)
    assert _claim_owners(repo, 6) == ["tenant-b", "tenant-a"] * 3
    _claim_owners(repo, 20)  # tenant-a's alone, rounds 4 to 23
    for _ in range(3):
        repo.create(_job("tenant-b"))
    assert _claim_owners(repo, 6) == ["tenant-a", "tenant-b"] * 3


def test_three_owners_take_turns(conn: psycopg.Connection[Any], repo: ImportJobRepository) -> None:
    for owner in ("a", "b", "c"):
        _backlog(conn, owner, 4)
    assert _claim_owners(repo, 12) == ["a", "b", "c"] * 4


def test_a_chunked_import_takes_turns_with_another_owner(repo: ImportJobRepository) -> None:
    repo.create_chunked(_job("tenant-a"), [Chunk(10, {"rows": n}) for n in range(50)])
    single = repo.create(_job("tenant-b"))
    first, second = _claim(repo), _claim(repo)
    assert (first.owner, second.id) == ("tenant-a", single.id)
    assert [_claim(repo).chunk_index for _ in range(49)] == list(range(1, 50))  # in order


def test_a_job_handed_back_is_claimed_before_the_rounds_after_it(
    conn: psycopg.Connection[Any], repo: ImportJobRepository
) -> None:
    _backlog(conn, "tenant-a", 10)
    taken = _claim(repo)
    _claim_owners(repo, 4)
    repo.release(taken.id, "w")  # its worker stopped: its turn came already
    single = repo.create(_job("tenant-b"))
    again, then = _claim(repo), _claim(repo)
    assert (again.id, then.id) == (taken.id, single.id)


def test_a_job_requeued_by_the_rescue_waits_no_longer_than_a_new_one(
    conn: psycopg.Connection[Any], repo: ImportJobRepository
) -> None:
    _backlog(conn, "tenant-a", 10)
    lost = _claim(repo)
    conn.execute(
        "UPDATE import_job SET heartbeat_at = now() - interval '1 hour' WHERE id = %s", [lost.id]
    )
    [requeued] = repo.rescue_stale(timedelta(minutes=5), requeue=True)
    assert requeued.id == lost.id
    assert _claim(repo).id == lost.id


def test_every_pending_job_is_claimed_once_whatever_its_round(
    conn: psycopg.Connection[Any], repo: ImportJobRepository
) -> None:
    for owner, count in [("a", 30), ("b", 7), (None, 12)]:
        _backlog(conn, owner, count)
    claimed = [_claim(repo) for _ in range(49)]
    assert len({job.id for job in claimed}) == 49
    assert repo.claim_next("w") is None
    # Once b's seven rounds are past, a and the owner-less jobs alternate.
    assert [job.owner for job in claimed[21:29]] == ["a", None] * 4
