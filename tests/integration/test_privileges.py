"""Least privilege: an owner role migrates; an app role that reads and writes rows does the rest.

Each test makes two LOGIN roles of its own (roles are cluster-wide: they are
dropped at the end, whatever happens), gives the owner the empty database's
schema, applies the migrations as the owner, and grants the app role
`APP_GRANTS` and nothing else. Then, connected as the app role, the
repositories, the tracker and the command work, and the schema cannot be
changed.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, LiteralString, NamedTuple
from urllib.parse import quote, urlsplit

import attrs
import httpx
import psycopg
import pytest
from psycopg import errors, sql

from importjob import (
    AsyncImportJobRepository,
    Chunk,
    ImportJob,
    ImportJobRepository,
    ImportJobStatus,
    apply_migrations,
    track,
    track_async,
    worker_id,
)
from importjob.exceptions import ImportValidationError, ParseError, SourceAlreadyImportedError
from importjob.schema import migration_ids

S = ImportJobStatus
COMMAND = Path(sys.executable).with_name("importjob")

# Everything the app role is granted, by the owner, after the migrations
# (`importjob migrate` or `yoyo apply` as the owner). {app} is its name.
# Nothing else is needed: the notify trigger runs its function without
# checking EXECUTE (the fixture revokes it from PUBLIC to prove it), LISTEN
# needs no privilege, and the ids come from the client, not a sequence.
APP_GRANTS: tuple[LiteralString, ...] = (
    "GRANT USAGE ON SCHEMA public TO {app}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE import_job TO {app}",
    # The error log and its counts of reasons, and the functions that key
    # and sort reasons, which the statements counting them call.
    "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE import_job_error TO {app}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE import_job_error_group TO {app}",
    "GRANT EXECUTE ON FUNCTION import_job_error_key(text, text, text) TO {app}",
    "GRANT EXECUTE ON FUNCTION import_job_error_reasons(uuid, jsonb) TO {app}",
    # How many more entries a job's errors array takes.
    "GRANT EXECUTE ON FUNCTION import_job_errors_room(jsonb, bigint, bigint) TO {app}",
    # A flush's rows per outcome label, added up.
    "GRANT EXECUTE ON FUNCTION import_job_outcomes_add(jsonb, jsonb, integer) TO {app}",
    # Every job as its readers see it: a chunked import with its chunks' sums.
    "GRANT SELECT ON TABLE import_job_summed TO {app}",
    # A failed chunk's end stops its siblings through it.
    "GRANT EXECUTE ON FUNCTION import_job_chunks_stop(uuid) TO {app}",
    # An end appends its change (as any writer); job_metrics folds them in.
    "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE import_job_ended_change TO {app}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE import_job_ended_count TO {app}",
)
TABLES = (
    "import_job",
    "import_job_ended_change",
    "import_job_ended_count",
    "import_job_error",
    "import_job_error_group",
)

_names = itertools.count()


class Deployment(NamedTuple):
    """The two roles of a deployment and their URLs to the migrated database."""

    owner: str
    app: str
    owner_url: str
    app_url: str
    app_password: str


def _as_role(url: str, role: str, password: str) -> str:
    """Return ``url`` with another user and password; host, port and database stay."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    credentials = f"{quote(role, safe='')}:{quote(password, safe='')}"
    return parts._replace(netloc=f"{credentials}@{host}").geturl()


def _drop_roles(admin_url: str, roles: list[str]) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        # A connection a failed test left open must not keep its role alive.
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ANY(%s)",
            [roles],
        )
        existing = [
            name
            for (name,) in admin.execute(
                "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", [roles]
            )
        ]
        if existing:
            names = sql.SQL(", ").join(map(sql.Identifier, existing))
            # Their objects and grants in this database first (it is dropped after).
            admin.execute(sql.SQL("DROP OWNED BY {}").format(names))
            admin.execute(sql.SQL("DROP ROLE {}").format(names))


@pytest.fixture
def deployment(empty_db_url: str) -> Iterator[Deployment]:
    """Return an owner and an app role of their own over a database the owner migrated."""
    run = f"{os.getpid()}_{next(_names)}"
    owner, app = f"importjob_owner_{run}", f"importjob_app_{run}"
    owner_password, app_password = secrets.token_hex(16), secrets.token_hex(16)
    try:
        with psycopg.connect(empty_db_url, autocommit=True) as admin:
            for role, password in ((owner, owner_password), (app, app_password)):
                admin.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(password)
                    )
                )
            # PostgreSQL 15+ lets only the database owner create in public.
            admin.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(owner)))
            # Nothing through PUBLIC: the app role reaches the schema by its grant only.
            admin.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        owner_url = _as_role(empty_db_url, owner, owner_password)
        assert apply_migrations(owner_url) == migration_ids()
        with psycopg.connect(owner_url, autocommit=True) as conn:
            for grant in APP_GRANTS:
                conn.execute(sql.SQL(grant).format(app=sql.Identifier(app)))
            # Trigger functions run without an EXECUTE check; the functions
            # the statements call, by the grants above. Every function the
            # migrations made, so that a new one without its grant fails here.
            conn.execute("REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC")
        yield Deployment(
            owner, app, owner_url, _as_role(empty_db_url, app, app_password), app_password
        )
    finally:
        _drop_roles(empty_db_url, [owner, app])


def test_the_app_role_holds_the_grants_and_nothing_more(deployment: Deployment) -> None:
    privileges = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
    with psycopg.connect(deployment.owner_url) as conn:
        owners = conn.execute(
            "SELECT tablename, tableowner FROM pg_tables"
            " WHERE schemaname = 'public' ORDER BY tablename"
        ).fetchall()
        held = {
            (table, privilege): conn.execute(
                "SELECT has_table_privilege(%s, %s, %s)", [deployment.app, table, privilege]
            ).fetchone()
            for table in TABLES
            for privilege in privileges
        }
        [schema] = conn.execute(
            "SELECT has_schema_privilege(%(app)s, 'public', 'USAGE'),"
            "       has_schema_privilege(%(app)s, 'public', 'CREATE'),"
            "       has_function_privilege(%(app)s, 'import_job_notify()', 'EXECUTE'),"
            "       has_function_privilege("
            "           %(app)s, 'import_job_error_key(text, text, text)', 'EXECUTE'),"
            "       has_function_privilege("
            "           %(app)s, 'import_job_error_reasons(uuid, jsonb)', 'EXECUTE'),"
            "       has_table_privilege(%(app)s, '_yoyo_migration', 'SELECT')",
            {"app": deployment.app},
        ).fetchall()
    assert [(t, o) for t, o in owners if t in TABLES] == [(t, deployment.owner) for t in TABLES]
    # Rows only: reading and writing them, nothing else.
    assert held == {
        (table, privilege): (privilege in {"SELECT", "INSERT", "UPDATE", "DELETE"},)
        for table in TABLES
        for privilege in privileges
    }
    # USAGE, not CREATE; no EXECUTE on the trigger function, on the
    # reasons' functions by their grants; nothing of yoyo's.
    assert schema == (True, False, False, True, True, False)


def test_every_repository_method_runs_as_the_app_role(deployment: Deployment) -> None:
    with psycopg.connect(deployment.app_url, autocommit=True) as conn:
        assert conn.info.user == deployment.app
        repo = ImportJobRepository(conn)
        job = repo.create(ImportJob(source_type="csv", filename="faq.csv", total_rows=4))
        assert repo.get_by_id(job.id) == job
        assert repo.owners([job.id]) == {job.id: None}
        assert repo.list_by_status(S.PENDING) == [job]
        assert repo.list_recent() == [job]
        repo.update_progress(job.id, processed=1, success=1, errors=0)
        assert repo.advance(job.id, processed=1, errors=1) is S.PENDING
        repo.add_error(job.id, ImportValidationError(2, "answer", "must not be empty"))
        repo.add_errors(job.id, [ParseError(3, "unterminated quote"), {"message": "odd row"}])
        started = repo.start(job.id, "worker-1")
        assert (started.status, started.worker_id) == (S.PROCESSING, "worker-1")
        assert repo.heartbeat(job.id, "worker-1") is S.PROCESSING
        assert repo.advance(job.id, outcomes={"created": 1}) is S.PROCESSING
        done = repo.update_status(job.id, S.COMPLETED)
        assert (done.processed_rows, done.success_count, done.error_count) == (2, 1, 1)
        assert [entry.get("type") for entry in done.errors] == [
            "ImportValidationError",
            "ParseError",
            None,
        ]

        lost = repo.create(ImportJob(source_type="json", filename="lost.json"))
        claimed = repo.claim_next("worker-2")
        assert claimed is not None
        assert (claimed.id, claimed.status) == (lost.id, S.PROCESSING)
        [rescued] = repo.rescue_stale(timedelta(0))
        assert (rescued.id, rescued.status) == (lost.id, S.FAILED)
        # The error log and its reasons: read, summed, exported.
        # Three reasons of one entry each: ties come in no promised order.
        assert sorted(group.type or "" for group in repo.error_summary(job.id)) == [
            "",
            "ImportValidationError",
            "ParseError",
        ]
        assert len(list(repo.iter_errors(job.id, batch=2))) == 3
        page = repo.error_page(job.id, after=1, limit=1)
        assert ([n for n, _ in page.entries], page.next_after) == ([2], 2)
        repo.ping()
        assert repo.job_metrics()[S.COMPLETED].jobs == 1
        out = io.BytesIO()
        assert repo.export_errors(job.id, out, format="jsonl") == 3
        dropped = repo.create(ImportJob(source_type="text", filename="dropped.txt"))
        assert repo.cancel(dropped.id).status is S.CANCELLED

        # The watcher LISTENs on a connection of its own, as the app role; the
        # app role's change fires the notify trigger.
        watched = repo.create(ImportJob(source_type="csv", filename="watched.csv"))
        snapshots = repo.watch(watched.id, timeout=30)
        assert next(snapshots).status is S.PENDING
        repo.cancel(watched.id)
        assert [snapshot.status for snapshot in snapshots] == [S.CANCELLED]

        # A file imported once, and a checkpoint.
        once = ImportJob(source_type="csv", filename="once.csv", source_sha256="e" * 64)
        assert repo.create(once, unique_source=True).source_sha256 == "e" * 64
        with pytest.raises(SourceAlreadyImportedError):
            repo.create(attrs.evolve(once, id=uuid.uuid4()), unique_source=True)
        repo.advance(once.id, 1, 1, checkpoint={"row": 1})
        assert repo.cancel(once.id).checkpoint == {"row": 1}

        assert repo.purge_finished(timedelta(0)) == 5
        assert repo.list_recent() == []


async def _async_operations(url: str) -> list[ImportJob]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        repo = AsyncImportJobRepository(conn)
        job = await repo.create(ImportJob(source_type="json", filename="pairs.json"))
        assert await repo.get_by_id(job.id) == job
        assert await repo.owners([job.id]) == {job.id: None}
        assert await repo.list_by_status(S.PENDING) == [job]
        assert await repo.list_recent() == [job]
        claimed = await repo.claim_next("async-worker")
        assert claimed is not None
        assert claimed.id == job.id
        assert await repo.advance(job.id, processed=2, success=2) is S.PROCESSING
        await repo.add_error(job.id, {"message": "noted"})
        await repo.update_status(job.id, S.COMPLETED)
        [noted] = await repo.error_summary(job.id)
        assert (noted.message, noted.count) == ("noted", 1)
        assert [entry async for entry in repo.iter_errors(job.id)] == [{"message": "noted"}]
        page = await repo.error_page(job.id)
        assert ([n for n, _ in page.entries], page.next_after) == ([1], None)
        await repo.ping()
        assert (await repo.job_metrics())[S.COMPLETED].jobs == 1
        out = io.BytesIO()
        assert await repo.export_errors(job.id, out) == 1

        tracked = await repo.create(ImportJob(source_type="csv", filename="t.csv", total_rows=3))
        async with track_async(repo, tracked.id, every_rows=2) as tracker:
            await tracker.ok()
            await tracker.failed(ImportValidationError(2, "question", "must not be empty"))
            await tracker.ok()

        watched = await repo.create(ImportJob(source_type="text", filename="w.txt"))
        snapshots = repo.watch(watched.id, timeout=30)
        assert (await anext(snapshots)).status is S.PENDING
        await repo.cancel(watched.id)
        assert [snapshot.status async for snapshot in snapshots] == [S.CANCELLED]

        ended = await repo.list_recent()
        assert await repo.purge_finished(timedelta(0)) == 3
        return ended


def test_a_chunked_import_runs_as_the_app_role(deployment: Deployment) -> None:
    with psycopg.connect(deployment.app_url, autocommit=True) as conn:
        repo = ImportJobRepository(conn)
        # Stored, claimed, summed and cancelled as the app role.
        parent, [chunk] = repo.create_chunked(
            ImportJob(source_type="csv", filename="big.csv"), [Chunk(3, {"rows": [0, 3]})]
        )
        assert repo.claim_next("worker-3") == repo.children(parent.id)[0]
        repo.advance(chunk.id, 2, 2, 0, outcomes={"created": 2})
        summed = repo.get_by_id(parent.id)
        assert summed is not None
        assert (summed.status, summed.processed_rows, summed.outcomes) == (
            S.PROCESSING,
            2,
            {"created": 2},
        )
        assert repo.cancel(parent.id).status is S.CANCELLED


def test_the_async_repository_runs_as_the_app_role(deployment: Deployment) -> None:
    ended = asyncio.run(_async_operations(deployment.app_url))
    assert [(job.filename, job.status) for job in ended] == [
        ("w.txt", S.CANCELLED),
        ("t.csv", S.COMPLETED),
        ("pairs.json", S.COMPLETED),
    ]
    tracked = ended[1]
    assert (tracked.processed_rows, tracked.success_count, tracked.error_count) == (3, 2, 1)


def test_a_tracked_import_runs_as_the_app_role(deployment: Deployment) -> None:
    with psycopg.connect(deployment.app_url, autocommit=True) as conn:
        repo = ImportJobRepository(conn)
        job = repo.create(ImportJob(source_type="csv", filename="tracked.csv", total_rows=5))
        with track(repo, job.id, every_rows=2) as tracker:
            for row in range(1, 6):
                if row == 3:
                    tracker.failed(ImportValidationError(row, "answer", "must not be empty"))
                else:
                    tracker.ok()
        done = repo.get_by_id(job.id)
    assert done is not None
    assert done.status is S.COMPLETED
    assert (done.processed_rows, done.success_count, done.error_count) == (5, 4, 1)
    assert [entry["row"] for entry in done.errors] == [3]
    assert done.worker_id == worker_id()
    assert done.completed_at is not None


def _importjob(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run(
        [str(COMMAND), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "DATABASE_URL": url},
        check=False,
    )


def test_the_command_runs_as_the_app_role(deployment: Deployment) -> None:
    with psycopg.connect(deployment.app_url, autocommit=True) as conn:
        repo = ImportJobRepository(conn)
        shown = repo.create(ImportJob(source_type="csv", filename="shown.csv", total_rows=3))
        to_cancel = repo.create(ImportJob(source_type="json", filename="to-cancel.json"))
        lost = repo.create(ImportJob(source_type="text", filename="lost.txt"))
        repo.start(lost.id, "worker-gone")
        old = repo.create(ImportJob(source_type="csv", filename="old.csv"))
        repo.update_status(old.id, S.CANCELLED)
    with psycopg.connect(deployment.owner_url, autocommit=True) as conn:
        # Time passes: the worker went quiet two hours ago, the old job ended 60 days ago.
        conn.execute(
            "UPDATE import_job SET heartbeat_at = now() - interval '2 hours' WHERE id = %s",
            [lost.id],
        )
        conn.execute(
            "UPDATE import_job SET completed_at = now() - interval '60 days' WHERE id = %s",
            [old.id],
        )

    ran = {
        name: _importjob(deployment.app_url, *args)
        for name, args in {
            "list": ["list"],
            "show": ["show", str(shown.id)],
            "errors": ["errors", str(shown.id)],
            "cancel": ["cancel", str(to_cancel.id)],
            "rescue": ["rescue", "--older-than", "1h"],
            "purge": ["purge", "--older-than", "30d"],
            "demo": ["demo", "--rows", "20", "--row-ms", "0"],
        }.items()
    }
    for name, result in ran.items():
        assert result.returncode == 0, (name, result.stderr)
    assert str(shown.id) in ran["list"].stdout
    assert "shown.csv" in ran["show"].stdout
    assert ran["errors"].stdout.startswith("n,type,row,line_number,field,message,value,entry")
    assert ran["cancel"].stdout == f"cancelled import job {to_cancel.id}\n"
    assert ran["rescue"].stdout.splitlines() == [
        f"failed {lost.id} (worker worker-gone)",
        "rescued 1 job",
    ]
    assert ran["purge"].stdout == "purged 1 job\n"
    assert "completed: 20 rows" in ran["demo"].stdout

    with psycopg.connect(deployment.app_url) as conn:
        statuses: dict[str, str] = dict(
            conn.execute("SELECT filename, status FROM import_job").fetchall()
        )
    assert statuses == {
        "shown.csv": "pending",
        "to-cancel.json": "cancelled",
        "lost.txt": "failed",
        "demo-20-pairs.csv": "completed",
    }


@pytest.mark.parametrize("args", [["migrate"], ["migrate", "--rollback"]])
def test_the_app_role_cannot_migrate(deployment: Deployment, args: list[str]) -> None:
    result = _importjob(deployment.app_url, *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    # yoyo's lock table is the owner's: "permission denied for table yoyo_lock".
    assert line.startswith("importjob: permission denied"), line
    assert deployment.app_password not in line
    assert apply_migrations(deployment.owner_url) == []  # all still applied


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE import_job_copy (id uuid PRIMARY KEY)",
        "ALTER TABLE import_job ADD COLUMN note text",
        "DROP TABLE import_job",
        "CREATE INDEX ix_import_job_filename ON import_job (filename)",
        "TRUNCATE import_job",
        "DROP FUNCTION import_job_notify() CASCADE",
    ],
)
def test_the_app_role_cannot_change_the_schema(
    deployment: Deployment, statement: LiteralString
) -> None:
    # Refused, and rolled back as the connection closes.
    with pytest.raises(errors.InsufficientPrivilege), psycopg.connect(deployment.app_url) as conn:
        conn.execute(statement)
    with psycopg.connect(deployment.app_url) as conn:
        # The table is whole and still notifies: its trigger is there.
        assert conn.execute("SELECT count(*) FROM import_job").fetchone() == (0,)
        [(triggers,)] = conn.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'import_job_notify'"
        ).fetchall()
    assert triggers == 1


def test_the_web_server_runs_as_the_app_role(
    deployment: Deployment, serve: Callable[..., Any]
) -> None:
    with psycopg.connect(deployment.app_url, autocommit=True) as conn:
        repo = ImportJobRepository(conn)
        job = repo.create(ImportJob(source_type="csv", filename="served.csv", total_rows=2))
        repo.start(job.id, "worker-1")
        repo.advance(job.id, 1, 0, 1, entries=[ImportValidationError(1, "answer", "empty")])
    server = serve("--allow-cancel", url=deployment.app_url)
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        assert http.get("/healthz").status_code == 200
        assert [shown["id"] for shown in http.get("/api/jobs").json()] == [str(job.id)]
        assert http.get(f"/api/jobs/{job.id}").json()["error_summary"][0]["count"] == 1
        assert http.get(f"/api/jobs/{job.id}/errors").status_code == 200
        assert "empty" in http.get(f"/api/jobs/{job.id}/errors.csv").text
        assert "importjob_jobs" in http.get("/metrics").text
        assert http.get(f"/jobs/{job.id}").status_code == 200
        # The stream marks the job watched (an UPDATE) and LISTENs, as the app role.
        with http.stream("GET", f"/api/jobs/{job.id}/events") as stream:
            lines = stream.iter_lines()
            assert next(line for line in lines if line.startswith("data:"))
            cancelled = http.post(
                f"/api/jobs/{job.id}/cancel", headers={"X-Importjob-Token": server.token or ""}
            )
            assert cancelled.status_code == 200
            assert any('"cancelled"' in line for line in lines if line.startswith("data:"))
