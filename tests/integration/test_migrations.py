"""The migrations: what they build, that it matches the model, and going back."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import types
import typing
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import psycopg
import pytest
from psycopg.types.json import Jsonb
from yoyo import get_backend

import importjob
from importjob import (
    ImportJob,
    ImportJobRepository,
    ImportJobStatus,
    SourceType,
    apply_migrations,
    rollback_migrations,
)
from importjob.exceptions import ImportJobDatabaseError, InvalidFieldError
from importjob.schema import PRERELEASE, migration_ids, yoyo_url

CHECKOUT_MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def _schema(url: str) -> dict[str, Any]:
    """Return what the database holds of import_job: columns, indexes, constraints."""
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "SELECT column_name, data_type, is_nullable, column_default"
            "  FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = 'import_job'"
            " ORDER BY ordinal_position"
        ).fetchall()
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes"
            " WHERE schemaname = current_schema() AND tablename = 'import_job'"
            " ORDER BY indexname"
        ).fetchall()
        constraints = conn.execute(
            "SELECT conname, pg_get_constraintdef(c.oid) FROM pg_constraint c"
            "  JOIN pg_class t ON t.oid = c.conrelid"
            " WHERE t.relname = 'import_job' ORDER BY conname"
        ).fetchall()
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_name NOT LIKE '%%yoyo%%'"
            "   AND table_type = 'BASE TABLE'"
            " ORDER BY table_name"
        ).fetchall()
    return {
        "columns": columns,
        "indexes": indexes,
        "constraints": constraints,
        "tables": [name for (name,) in tables],
    }


def test_import_job_table_created(empty_db_url: str) -> None:
    assert _schema(empty_db_url)["tables"] == []
    assert apply_migrations(empty_db_url) == migration_ids()
    schema = _schema(empty_db_url)
    assert schema["tables"] == TABLES
    assert [column[0] for column in schema["columns"]] == COLUMN_ORDER


def test_import_job_indexes_created(empty_db_url: str) -> None:
    apply_migrations(empty_db_url)
    indexes = dict(_schema(empty_db_url)["indexes"])
    assert set(indexes) == {
        "import_job_pkey",
        "ix_import_job_status",
        "ix_import_job_completed_at",
        "ix_import_job_created_at",
        "import_job_source_once_per_owner",
        "ix_import_job_source_sha256",
        "ix_import_job_owner",
        "ix_import_job_owner_status",
        "ix_import_job_metadata",
        "ix_import_job_parent",
        "ix_import_job_processing_chunk",
        "ix_import_job_claim",
        "ix_import_job_owner_round",
    }
    # A read of a parent adds its processing chunks, found without reading
    # the others; a flush moves neither column, so it stays HOT.
    assert indexes["ix_import_job_processing_chunk"].endswith(
        "(parent_id) WHERE ((parent_id IS NOT NULL) AND (status = 'processing'::text))"
    )
    # claim_next reads the pending jobs in its order: round, then age; only
    # pending jobs are in it, and a flush moves none of its columns.
    assert indexes["ix_import_job_claim"].endswith(
        "(claim_round, created_at, id) WHERE ((status = 'pending'::text) AND (chunks IS NULL))"
    )
    # Shaped for list_by_status: the filter, then the order; rescue_stale
    # reads the processing jobs through it too.
    assert indexes["ix_import_job_status"].endswith("(status, created_at, id)")
    # purge_finished looks only at ended jobs.
    assert indexes["ix_import_job_completed_at"].endswith(
        "(completed_at) WHERE (completed_at IS NOT NULL)"
    )
    # list_recent reads it backwards: newest first.
    assert indexes["ix_import_job_created_at"].endswith("(created_at, id)")
    # A file imported once per owner: one live or completed unique_source
    # job per owner and digest, jobs without an owner counting as one owner.
    once = indexes["import_job_source_once_per_owner"]
    assert once.startswith("CREATE UNIQUE INDEX")
    assert once.endswith(
        "(owner, source_sha256) NULLS NOT DISTINCT WHERE (unique_source AND (status = ANY"
        " (ARRAY['pending'::text, 'processing'::text, 'completed'::text])))"
    )
    # An owner's jobs, newest first; and by status.
    assert indexes["ix_import_job_owner"].endswith("(owner, created_at, id)")
    assert indexes["ix_import_job_owner_status"].endswith("(owner, status, created_at, id)")
    # Metadata containment (@>).
    assert indexes["ix_import_job_metadata"].endswith("USING gin (metadata jsonb_path_ops)")
    # Any job of a digest, for unique_source against jobs created without it.
    assert indexes["ix_import_job_source_sha256"].endswith(
        "(source_sha256) WHERE (source_sha256 IS NOT NULL)"
    )


def test_list_by_status_uses_the_status_index(conn: psycopg.Connection[Any]) -> None:
    from importjob._queries import query  # noqa: PLC0415 - the statement under test

    # An empty table is scanned whatever the indexes: ask the planner whether
    # the index can serve both the filter and the order.
    conn.execute("SET enable_seqscan = off")
    conn.execute("SET enable_bitmapscan = off")
    plan = conn.execute(
        b"EXPLAIN " + query("list_by_status").encode(), {"status": "pending", "limit": 50}
    ).fetchall()
    text = "\n".join(line for (line,) in plan)
    assert "ix_import_job_status" in text
    assert "Sort" not in text  # the index gives the order


def test_rescue_stale_reads_only_processing_jobs_through_an_index(
    conn: psycopg.Connection[Any],
) -> None:
    from importjob._queries import query  # noqa: PLC0415 - the statement under test

    conn.execute("SET enable_seqscan = off")
    conn.execute("SET enable_bitmapscan = off")
    plan = conn.execute(
        b"EXPLAIN " + query("rescue_stale").encode(),
        {
            "older_than": "5 minutes",
            "requeue": False,
            "max_errors": 1000,
            "error_log_limit": None,
            "max_groups": 1000,
        },
    ).fetchall()
    text = "\n".join(line for (line,) in plan)
    assert "Index Scan using ix_import_job_status" in text
    assert "Index Cond: (status = 'processing'::text)" in text


# What a flush (advance with a worker: counters, entries, heartbeat, batch
# mark) writes. None of it may be indexed, or the update cannot be HOT.
FLUSH_COLUMNS = {
    "processed_rows",
    "success_count",
    "error_count",
    "errors",
    "errors_dropped",
    "heartbeat_at",
    "worker_id",
    "applied_batches",
    "updated_at",
    "errors_logged",
    "errors_recorded",
    "checkpoint",
    "skipped_count",
    "outcomes",
}


def test_no_index_covers_a_column_a_flush_writes(conn: psycopg.Connection[Any]) -> None:
    indexed = {
        name
        for (name,) in conn.execute(
            "SELECT DISTINCT a.attname FROM pg_index i"
            "  JOIN pg_attribute a ON a.attrelid = i.indrelid"
            " WHERE i.indrelid = 'import_job'::regclass"
            "   AND (a.attnum = ANY (i.indkey)"
            "        OR pg_get_expr(i.indpred, i.indrelid) ~ ('\\m' || a.attname || '\\M')"
            "        OR pg_get_expr(i.indexprs, i.indrelid) ~ ('\\m' || a.attname || '\\M'))"
        )
    }
    assert indexed == {
        "id",
        "status",
        "created_at",
        "completed_at",
        "source_sha256",
        "unique_source",
        "owner",
        "metadata",
        "parent_id",
        "chunk_index",
        "chunks",
        "claim_round",
    }
    assert not indexed & FLUSH_COLUMNS
    [(options,)] = conn.execute(
        "SELECT reloptions FROM pg_class WHERE oid = 'import_job'::regclass"
    ).fetchall()
    assert options == ["fillfactor=70"]  # room on the page for the new row version


def _updates(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """Return the table's updates and HOT updates so far, this backend's included."""
    conn.execute("SELECT pg_stat_force_next_flush()")  # at the end of this statement
    conn.execute("SELECT pg_stat_clear_snapshot()")
    [(updated, hot)] = conn.execute(
        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
        " WHERE relid = 'import_job'::regclass"
    ).fetchall()
    return updated, hot


def test_flushes_update_the_row_in_place(conn: psycopg.Connection[Any]) -> None:
    from importjob import ImportJobRepository  # noqa: PLC0415

    repo = ImportJobRepository(conn)
    job = repo.create(ImportJob(source_type="csv", filename="hot.csv"))
    repo.start(job.id, "worker-1")
    updated, hot = _updates(conn)
    # Each in a transaction of its own: every flush records a new heartbeat.
    for number in range(1, 6):
        repo.advance(
            job.id,
            processed=10,
            success=9,
            errors=1,
            entries=[{"row": number, "message": "bad"}],
            worker_id="worker-1",
            batch_id=("tracker", number),
        )
    repo.heartbeat(job.id, "worker-1")
    after = _updates(conn)
    assert (after[0] - updated, after[1] - hot) == (6, 6)
    stored = repo.get_by_id(job.id)
    assert stored is not None
    assert stored.heartbeat_at is not None
    assert stored.started_at is not None
    assert stored.heartbeat_at > stored.started_at


def _sql_type(annotation: Any) -> tuple[str, bool]:
    """Return the column type the model's annotation stands for, and its nullability."""
    nullable = False
    if annotation is Any:  # checkpoint: any JSON value, or none
        return "jsonb", True
    if isinstance(annotation, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        nullable = len(members) < len(typing.get_args(annotation))
        [annotation] = members
    origin = typing.get_origin(annotation) or annotation
    return {
        uuid.UUID: "uuid",
        ImportJobStatus: "text",
        SourceType: "text",
        str: "text",
        int: "bigint",
        list: "jsonb",
        dict: "jsonb",
        bool: "boolean",
        datetime: "timestamp with time zone",
    }[origin], nullable


# Columns the model does not show: the trackers' bookkeeping (advance's
# batch_id), the watchers', the error log's, with their type, nullability and default.
BOOKKEEPING = {
    "applied_batches": ["jsonb", "NO", "'{}'::jsonb"],
    # Until when a watcher follows the job: its changes notify.
    "watched_until": ["timestamp with time zone", "YES", None],
    # The error log's numbering: every entry recorded, logged or not.
    "errors_recorded": ["bigint", "NO", "0"],
    # The places for reasons handed out, the bound on the job's groups.
    "error_groups": ["bigint", "NO", "0"],
    # Created with create(unique_source=True): its file is imported once.
    "unique_source": ["boolean", "NO", "false"],
    # On a chunked import: the chunk whose end ended it (ended_import).
    "ended_by": ["uuid", "YES", None],
    # A pending job's round of claims: claim_next goes round the owners.
    "claim_round": ["bigint", "YES", None],
}
# The tables the migrations make: the jobs, the counts of ended ones, the error logs, the reasons.
TABLES = [
    "import_job",
    "import_job_ended_change",
    "import_job_ended_count",
    "import_job_error",
    "import_job_error_group",
]
# The order schema.sql gives: the seed's fields with the error counters
# beside errors, then the times, the worker, the bookkeeping, the file.
COLUMN_ORDER = [
    "id",
    "status",
    "source_type",
    "filename",
    "total_rows",
    "processed_rows",
    "success_count",
    "error_count",
    "errors",
    "errors_recorded",
    "errors_logged",
    "errors_dropped",
    "error_groups",
    "started_at",
    "completed_at",
    "created_at",
    "updated_at",
    "heartbeat_at",
    "worker_id",
    "applied_batches",
    "watched_until",
    "checkpoint",
    "source_sha256",
    "source_size",
    "unique_source",
    "owner",
    "metadata",
    "skipped_count",
    "outcomes",
    "parent_id",
    "chunk",
    "chunk_index",
    "chunks",
    "keep_going",
    "ended_by",
    "claim_round",
]

# Values the database fills in itself, where the model leaves None until stored.
DATABASE_ASSIGNED = {"id": "gen_random_uuid()", "created_at": "now()", "updated_at": "now()"}


def test_schema_matches_the_model_column_by_column(conn: psycopg.Connection[Any]) -> None:
    info = conn.info
    url = f"postgresql://{info.user}@/{info.dbname}?host={info.host}&port={info.port}"
    columns = {name: rest for name, *rest in _schema(url)["columns"]}
    hints = typing.get_type_hints(ImportJob)
    fields = attrs.fields(ImportJob)
    assert list(columns) == COLUMN_ORDER
    assert set(COLUMN_ORDER) == {field.name for field in fields} | set(BOOKKEEPING)
    for name, shape in BOOKKEEPING.items():
        assert columns[name] == shape, name
    for field in fields:
        data_type, is_nullable, default = columns[field.name]
        sql_type, nullable = _sql_type(hints[field.name])
        assert data_type == sql_type, field.name
        # The model leaves database-assigned values None until the row is stored.
        stored_nullable = nullable and field.name not in DATABASE_ASSIGNED
        assert is_nullable == ("YES" if stored_nullable else "NO"), field.name
        if field.name in DATABASE_ASSIGNED:
            assert default == DATABASE_ASSIGNED[field.name]
        elif factory := getattr(field.default, "factory", None):  # a fresh list or dict
            [(stored_default,)] = conn.execute(f"SELECT {default}").fetchall()
            assert stored_default == factory(), field.name
        elif field.default is attrs.NOTHING or field.default is None:
            assert default is None, field.name
        else:
            stored = conn.execute(f"SELECT {default}").fetchone()
            assert stored == (field.default,), field.name


def test_database_defaults_build_the_models_defaults(conn: psycopg.Connection[Any]) -> None:
    # A row given only what the model requires equals the model's own default job.
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute(
            "INSERT INTO import_job (source_type, filename) VALUES ('csv', 'p.csv') RETURNING *"
        ).fetchone()
    assert row is not None
    stored = ImportJob.from_row(row)
    fresh = ImportJob(source_type="csv", filename="p.csv")
    skip = set(DATABASE_ASSIGNED)
    assert {k: v for k, v in attrs.asdict(stored).items() if k not in skip} == {
        k: v for k, v in attrs.asdict(fresh).items() if k not in skip
    }


def test_database_checks_back_the_model(conn: psycopg.Connection[Any]) -> None:
    from importjob._errors import translate  # noqa: PLC0415 - the translator under test

    bad = {
        "status": "INSERT INTO import_job (source_type, filename, status) VALUES ('csv','p','x')",
        "source_type": "INSERT INTO import_job (source_type, filename) VALUES ('xml', 'p')",
        "filename": "INSERT INTO import_job (source_type, filename) VALUES ('csv', '')",
        "total_rows": "INSERT INTO import_job (source_type, filename, total_rows)"
        " VALUES ('csv', 'p', -1)",
        "processed_rows": "INSERT INTO import_job (source_type, filename, processed_rows)"
        " VALUES ('csv', 'p', -1)",
        "success_count": "INSERT INTO import_job (source_type, filename, success_count)"
        " VALUES ('csv', 'p', -1)",
        "error_count": "INSERT INTO import_job (source_type, filename, error_count)"
        " VALUES ('csv', 'p', -1)",
        "errors_dropped": "INSERT INTO import_job (source_type, filename, errors_dropped)"
        " VALUES ('csv', 'p', -1)",
        "errors": "INSERT INTO import_job (source_type, filename, errors) VALUES ('csv','p','{}')",
        "completed_at": "INSERT INTO import_job (source_type, filename, status)"
        " VALUES ('csv', 'p', 'failed')",
        "started_at": "INSERT INTO import_job (source_type, filename, status)"
        " VALUES ('csv', 'p', 'processing')",
        "source_sha256": "INSERT INTO import_job (source_type, filename, source_sha256)"
        " VALUES ('csv', 'p', 'ABC')",
        "source_size": "INSERT INTO import_job (source_type, filename, source_size)"
        " VALUES ('csv', 'p', -1)",
    }
    for field, statement in bad.items():
        with pytest.raises(psycopg.errors.CheckViolation) as caught:
            conn.execute(statement)
        translated = translate(caught.value, {})
        assert isinstance(translated, InvalidFieldError), field
        assert translated.field == field
    assert conn.execute("SELECT count(*) FROM import_job").fetchone() == (0,)


def test_the_rules_hold_for_updates_too(conn: psycopg.Connection[Any]) -> None:
    from importjob._errors import translate  # noqa: PLC0415 - the translator under test

    [(job_id,)] = conn.execute(
        "INSERT INTO import_job (source_type, filename) VALUES ('csv', 'p') RETURNING id"
    ).fetchall()
    before = conn.execute("SELECT * FROM import_job").fetchall()
    bad = {
        "status": "status = 'x'",
        "filename": "filename = ''",
        "completed_at": "status = 'completed'",
        "started_at": "status = 'processing'",
        "total_rows": "total_rows = -1",
        "processed_rows": "processed_rows = processed_rows - 1",
        "error_count": "error_count = -5",
        "errors_dropped": "errors_dropped = -1",
        "errors": "errors = '{}'",
        "source_sha256": "source_sha256 = 'ABC'",
        "source_size": "source_size = -1",
    }
    for field, assignment in bad.items():
        with pytest.raises(psycopg.errors.CheckViolation) as caught:
            conn.execute(f"UPDATE import_job SET {assignment} WHERE id = %s", [job_id])
        translated = translate(caught.value, {})
        assert isinstance(translated, InvalidFieldError), field
        assert translated.field == field
    assert conn.execute("SELECT * FROM import_job").fetchall() == before


def test_apply_is_a_no_op_when_all_is_applied(empty_db_url: str) -> None:
    assert apply_migrations(empty_db_url) == migration_ids()
    before = _schema(empty_db_url)
    assert apply_migrations(empty_db_url) == []
    assert _schema(empty_db_url) == before


def test_rollback_removes_everything(empty_db_url: str) -> None:
    apply_migrations(empty_db_url)
    assert rollback_migrations(empty_db_url, count=None) == list(reversed(migration_ids()))
    assert _schema(empty_db_url) == {"columns": [], "indexes": [], "constraints": [], "tables": []}
    with psycopg.connect(empty_db_url) as conn:
        leftovers = conn.execute(
            "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND relname LIKE '%%import_job%%'"
            " UNION ALL SELECT proname::text FROM pg_proc WHERE proname LIKE '%%import_job%%'"
        ).fetchall()
    assert leftovers == []


def test_apply_rollback_apply_is_clean(empty_db_url: str) -> None:
    apply_migrations(empty_db_url)
    first = _schema(empty_db_url)
    rollback_migrations(empty_db_url, count=None)
    assert apply_migrations(empty_db_url) == migration_ids()
    assert _schema(empty_db_url) == first


def test_rollback_of_the_last_migration_only(empty_db_url: str) -> None:
    apply_migrations(empty_db_url)
    assert rollback_migrations(empty_db_url) == migration_ids()[-1:]
    assert rollback_migrations(empty_db_url) == migration_ids()[-2:-1]


def test_the_rounds_migration_hands_rounds_to_the_jobs_waiting(empty_db_url: str) -> None:
    apply_migrations(empty_db_url)
    # Back to before the rounds, whatever came after them.
    while rollback_migrations(empty_db_url) != ["importjob-0009-claim-round-column"]:
        pass
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        for owner in ["a", "a", "a", "b", None]:
            conn.execute(
                "INSERT INTO import_job (source_type, filename, owner) VALUES ('csv', 'x.csv', %s)",
                [owner],
            )
        apply_migrations(empty_db_url)
        repo = ImportJobRepository(conn)
        claimed = [repo.claim_next("w") for _ in range(5)]
    assert [job.owner for job in claimed if job] == ["a", "b", None, "a", "a"]


def test_every_migration_has_its_rollback() -> None:
    forward = sorted(
        path
        for path in CHECKOUT_MIGRATIONS.glob("*.sql")
        if not path.name.endswith(".rollback.sql")
    )
    assert [path.stem for path in forward] == migration_ids()
    for path in forward:
        assert path.with_suffix(".rollback.sql").is_file(), path.name


def _yoyo(*args: str) -> subprocess.CompletedProcess[str]:
    yoyo = shutil.which("yoyo", path=str(Path(sys.executable).parent)) or shutil.which("yoyo")
    assert yoyo, "the yoyo command is installed with importjob"
    return subprocess.run(
        [yoyo, *args, "--batch", "--no-config-file"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.parametrize("source", [str(CHECKOUT_MIGRATIONS), "package:importjob:migrations"])
def test_the_yoyo_command_applies_them(empty_db_url: str, source: str) -> None:
    # How a deploy runs them: from the checkout, or from the installed package.
    url = yoyo_url(empty_db_url)
    applied = _yoyo("apply", "--database", url, source)
    assert applied.returncode == 0, applied.stderr
    assert _schema(empty_db_url)["tables"] == TABLES
    assert apply_migrations(empty_db_url) == []  # the same bookkeeping as yoyo's
    rolled_back = _yoyo("rollback", "--all", "--database", url, source)
    assert rolled_back.returncode == 0, rolled_back.stderr
    assert _schema(empty_db_url)["tables"] == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@h:5/d", "postgresql+psycopg://u:p@h:5/d"),
        ("postgres://u@h/d?sslmode=require", "postgresql+psycopg://u@h/d?sslmode=require"),
        ("postgresql+psycopg:///d?host=/tmp/s", "postgresql+psycopg:///d?host=/tmp/s"),
    ],
)
def test_yoyo_url(url: str, expected: str) -> None:
    assert yoyo_url(url) == expected


def test_yoyo_url_refuses_other_schemes_without_echoing_the_password() -> None:
    with pytest.raises(InvalidFieldError, match="database_url") as caught:
        yoyo_url("mysql://user:s3cret@db/x")
    assert "s3cret" not in str(caught.value)
    with pytest.raises(InvalidFieldError, match="must be a string"):
        yoyo_url(None)  # type: ignore[arg-type]


def test_the_package_is_public_and_typed() -> None:
    assert set(importjob.__all__) >= {
        "ImportJob",
        "ImportJobStatus",
        "ImportJobRepository",
        "apply_migrations",
    }
    package = Path(importjob.__file__).parent
    assert (package / "py.typed").is_file()
    if os.environ.get("IMPORTJOB_TEST_INSTALLED"):
        # Under tox the tests run against the installed wheel, not the checkout.
        assert "site-packages" in package.parts
        assert sorted(p.name for p in (package / "sql").glob("*.sql")) == sorted(
            p.name for p in (CHECKOUT_MIGRATIONS.parent / "sql").glob("*.sql")
        )
        assert (package / "migrations").is_dir()


SCHEMA_FILE = CHECKOUT_MIGRATIONS.parent / "schema.sql"
PRERELEASE_SCHEMA = Path(__file__).with_name("prerelease_schema.sql")


def _catalog(url: str, *, column_order: bool = True) -> dict[str, Any]:
    """Return everything importjob's schema is made of, as the catalogs describe it."""
    position = "a.attnum" if column_order else "a.attname"
    with psycopg.connect(url) as conn:

        def rows(statement: str) -> list[tuple[Any, ...]]:
            return conn.execute(statement).fetchall()

        return {
            "tables": rows(
                "SELECT c.relname, c.relkind, c.reloptions, obj_description(c.oid, 'pg_class')"
                "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relname NOT LIKE '%yoyo%'"
                " ORDER BY c.relname"
            ),
            "columns": rows(
                "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod),"
                "       a.attnotnull, pg_get_expr(d.adbin, d.adrelid)"
                "  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
                "  JOIN pg_namespace n ON n.oid = c.relnamespace"
                "  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
                " WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0"
                "   AND NOT a.attisdropped AND c.relname NOT LIKE '%yoyo%'"
                f" ORDER BY c.relname, {position}"
            ),
            "constraints": rows(
                "SELECT t.relname, c.conname, pg_get_constraintdef(c.oid)"
                "  FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid"
                "  JOIN pg_namespace n ON n.oid = t.relnamespace"
                " WHERE n.nspname = 'public' AND t.relname NOT LIKE '%yoyo%'"
                " ORDER BY t.relname, c.conname"
            ),
            "indexes": rows(
                "SELECT indexname, indexdef FROM pg_indexes"
                " WHERE schemaname = 'public' AND tablename NOT LIKE '%yoyo%' ORDER BY indexname"
            ),
            "functions": rows(
                "SELECT p.proname, pg_get_function_identity_arguments(p.oid),"
                "       pg_get_functiondef(p.oid)"
                "  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                " WHERE n.nspname = 'public' ORDER BY 1, 2"
            ),
            "triggers": rows(
                "SELECT tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t"
                "  JOIN pg_class c ON c.oid = t.tgrelid"
                "  JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND NOT t.tgisinternal ORDER BY tgname"
            ),
        }


def test_schema_sql_is_what_the_migrations_build(
    empty_db_url: str, other_empty_db_url: str
) -> None:
    apply_migrations(empty_db_url)
    with psycopg.connect(other_empty_db_url, autocommit=True) as conn:
        conn.execute(SCHEMA_FILE.read_text())
    migrated, from_file = _catalog(empty_db_url), _catalog(other_empty_db_url)
    assert migrated["tables"], "the migrations built nothing"
    for part in migrated:
        assert from_file[part] == migrated[part], part


def _prerelease(url: str, applied: tuple[str, ...] = PRERELEASE) -> None:
    """Build what the pre-release migrations built, as yoyo records it."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(PRERELEASE_SCHEMA.read_text())
    backend = get_backend(yoyo_url(url))
    try:
        backend.ensure_internal_schema_updated()
        with backend.transaction():
            for migration in applied:
                backend.execute(
                    "INSERT INTO _yoyo_migration (migration_hash, migration_id, applied_at_utc)"
                    " VALUES (%s, %s, now())",
                    (hashlib.sha256(migration.encode()).hexdigest(), migration),
                )
    finally:
        backend.connection.close()


def _applied(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [
            row[0]
            for row in conn.execute(
                "SELECT migration_id FROM _yoyo_migration ORDER BY migration_id"
            ).fetchall()
        ]


ENTRIES = [
    {"type": "ImportValidationError", "row": n, "field": "answer", "message": m}
    for n, m in enumerate(["empty", "too long", "empty", "empty", "too long"], start=1)
]
GIVEN = {"message": "given at create"}


def _fill_prerelease(url: str) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """Store jobs the way the pre-release code did: a head, a log past it, no head at all."""
    headed, unheaded, clean = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(url, autocommit=True) as conn:
        # A given entry, then entries 1-3 in the column only (the head), 4-5 logged.
        conn.execute(
            "INSERT INTO import_job (id, source_type, filename, errors, errors_head,"
            " errors_recorded, errors_logged, errors_dropped, error_count, error_groups)"
            " VALUES (%s, 'csv', 'h.csv', %s, 3, 5, 5, 2, 5, 2)",
            [headed, Jsonb([GIVEN, *ENTRIES[:3]])],
        )
        # From before the head: every entry logged, the column copies the first two.
        conn.execute(
            "INSERT INTO import_job (id, source_type, filename, errors, errors_head,"
            " errors_recorded, errors_logged, errors_dropped, error_count, error_groups)"
            " VALUES (%s, 'csv', 'u.csv', %s, NULL, 5, 5, 3, 5, 2)",
            [unheaded, Jsonb(ENTRIES[:2])],
        )
        conn.execute(
            "INSERT INTO import_job (id, source_type, filename, status, started_at,"
            " completed_at) VALUES (%s, 'text', 'c.txt', 'completed', now(), now())",
            [clean],
        )
        for job, first in ((headed, 4), (unheaded, 1)):
            for n in range(first, 6):
                conn.execute(
                    "INSERT INTO import_job_error (job_id, n, entry) VALUES (%s, %s, %s)",
                    [job, n, Jsonb(ENTRIES[n - 1])],
                )
            for message in ("empty", "too long"):
                count = sum(e["message"] == message for e in ENTRIES[first - 1 :])
                conn.execute(
                    "INSERT INTO import_job_error_group (job_id, key, type, field, message, count)"
                    " VALUES (%s, import_job_error_key('ImportValidationError', 'answer', %s),"
                    "         'ImportValidationError', 'answer', %s, %s)",
                    [job, message, message, count],
                )
    return headed, unheaded, clean


def test_a_prerelease_database_is_brought_to_the_baseline_in_place(
    empty_db_url: str, other_empty_db_url: str
) -> None:
    _prerelease(empty_db_url)
    headed, unheaded, clean = _fill_prerelease(empty_db_url)
    # Brought to the baseline, then the migrations after it apply as usual.
    assert apply_migrations(empty_db_url) == migration_ids()[1:]
    assert _applied(empty_db_url) == migration_ids()
    # The same schema as a fresh 1.0 database, but for the columns' order.
    apply_migrations(other_empty_db_url)
    upgraded = _catalog(empty_db_url, column_order=False)
    assert upgraded == _catalog(other_empty_db_url, column_order=False)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        repo = ImportJobRepository(conn, max_errors=4)
        assert conn.execute("SELECT count(*) FROM import_job").fetchone() == (3,)
        for job_id in (headed, unheaded):
            assert list(repo.iter_errors(job_id)) == ENTRIES
            assert [(g.message, g.count) for g in repo.error_summary(job_id)] == [
                ("empty", 3),
                ("too long", 2),
            ]
        stored = repo.get_by_id(headed)
        assert stored is not None
        assert stored.errors == [GIVEN, *ENTRIES[:3]]
        assert (stored.error_count, stored.errors_logged, stored.errors_dropped) == (5, 5, 2)
        # Recording goes on from the job's numbers, its array closed.
        repo.add_error(headed, {"message": "new"})
        assert list(repo.iter_errors(headed))[-1] == {"message": "new"}
        again = repo.get_by_id(headed)
        assert again is not None
        assert again.errors == stored.errors
        assert (again.errors_logged, again.errors_dropped) == (6, 3)
        assert list(repo.iter_errors(clean)) == []
    # Applied again: nothing more to do.
    assert apply_migrations(empty_db_url) == []


def test_part_of_the_prerelease_chain_is_refused_changing_nothing(empty_db_url: str) -> None:
    _prerelease(empty_db_url, applied=PRERELEASE[:12])
    before = _catalog(empty_db_url), _applied(empty_db_url)
    with pytest.raises(ImportJobDatabaseError) as caught:
        apply_migrations(empty_db_url)
    message = str(caught.value)
    assert "\n" not in message
    assert PRERELEASE[11] in message
    assert PRERELEASE[-1] in message
    assert (_catalog(empty_db_url), _applied(empty_db_url)) == before


def test_yoyo_apply_refuses_a_prerelease_database_in_one_line(empty_db_url: str) -> None:
    _prerelease(empty_db_url)
    before = _catalog(empty_db_url), _applied(empty_db_url)
    result = _yoyo("apply", "--database", yoyo_url(empty_db_url), str(CHECKOUT_MIGRATIONS))
    assert result.returncode != 0
    assert "run `importjob migrate` once to bring it to importjob 1.0" in result.stderr
    assert (_catalog(empty_db_url), _applied(empty_db_url)) == before
