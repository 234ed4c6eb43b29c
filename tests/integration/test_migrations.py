"""The migrations: what they build, that it matches the model, and going back."""

from __future__ import annotations

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

import importjob
from importjob import (
    ImportJob,
    ImportJobRepository,
    ImportJobStatus,
    SourceType,
    apply_migrations,
    rollback_migrations,
)
from importjob.exceptions import InvalidFieldError
from importjob.schema import migration_ids, yoyo_url

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
        "import_job_source_once",
        "ix_import_job_source_sha256",
    }
    # Shaped for list_by_status and claim_next: the filter, then the order;
    # rescue_stale reads the processing jobs through it too.
    assert indexes["ix_import_job_status"].endswith("(status, created_at, id)")
    # purge_finished looks only at ended jobs.
    assert indexes["ix_import_job_completed_at"].endswith(
        "(completed_at) WHERE (completed_at IS NOT NULL)"
    )
    # list_recent reads it backwards: newest first.
    assert indexes["ix_import_job_created_at"].endswith("(created_at, id)")
    # A file imported once: one live or completed unique_source job per digest.
    assert indexes["import_job_source_once"].startswith("CREATE UNIQUE INDEX")
    assert indexes["import_job_source_once"].endswith(
        "(source_sha256) WHERE (unique_source AND (status = ANY"
        " (ARRAY['pending'::text, 'processing'::text, 'completed'::text])))"
    )
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
        datetime: "timestamp with time zone",
    }[origin], nullable


# Columns the model does not show: the trackers' bookkeeping (advance's
# batch_id) and the watchers', with their type, nullability and default.
BOOKKEEPING = {
    "applied_batches": ["jsonb", "NO", "'{}'::jsonb"],
    # Until when a watcher follows the job (migration 0007): its changes notify.
    "watched_until": ["timestamp with time zone", "YES", None],
    # The error log's numbering: every entry recorded, logged or not (migration 0011).
    "errors_recorded": ["bigint", "NO", "0"],
    # The places for reasons handed out, the bound on the job's groups (migration 0011).
    "error_groups": ["bigint", "NO", "0"],
    # Created with create(unique_source=True): its file is imported once (0015).
    "unique_source": ["boolean", "NO", "false"],
    # The entries only the errors column holds, its head (0018); NULL on a
    # job written before it, whose log holds every entry.
    "errors_head": ["bigint", "YES", "0"],
}
# The tables the migrations make: the jobs, their error logs and the counts of reasons.
TABLES = ["import_job", "import_job_error", "import_job_error_group"]
# Columns are added at the end: the seed's fields, 0006's and 0007's
# bookkeeping, then 0011's field and bookkeeping, then 0015's fields and flag,
# then 0018's head.
_FIELDS = [field.name for field in attrs.fields(ImportJob)]
COLUMN_ORDER = [
    *_FIELDS[: _FIELDS.index("errors_logged")],
    "applied_batches",
    "watched_until",
    "errors_logged",
    "errors_recorded",
    "error_groups",
    "checkpoint",
    "source_sha256",
    "source_size",
    "unique_source",
    "errors_head",
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
        elif factory := getattr(field.default, "factory", None):  # errors: a fresh list
            assert default == "'[]'::jsonb", field.name
            assert factory() == []
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


def test_a_flush_calls_no_rule_function(conn: psycopg.Connection[Any]) -> None:
    # The rules run where their columns are written (0017): a flush writes
    # counters, whose trigger's WHEN is the check, and calls no function.
    repo = ImportJobRepository(conn)
    job = repo.create(ImportJob(source_type="csv", filename="p"))

    def calls() -> int:
        [(count,)] = conn.execute(
            "SELECT coalesce(pg_stat_get_xact_function_calls('import_job_rules'::regproc), 0)"
        ).fetchall()
        return int(count)

    with conn.transaction():
        conn.execute("SET LOCAL track_functions = 'pl'")
        repo.advance(job.id, processed=10, success=9, errors=1, worker_id="w")
        repo.update_progress(job.id, processed=20, success=18, errors=2)
        repo.heartbeat(job.id, "w")
        assert calls() == 0
        repo.update_status(job.id, ImportJobStatus.PROCESSING)
        assert calls() == 1


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


def test_stored_entries_are_carried_into_the_error_log(empty_db_url: str) -> None:
    from importjob import ImportJobRepository  # noqa: PLC0415

    apply_migrations(empty_db_url)
    # Back to before the log, with jobs that stored entries the old way.
    ids = migration_ids()
    since_log = ids[ids.index("importjob-0011-error-log") :]
    assert rollback_migrations(empty_db_url, count=len(since_log)) == since_log[::-1]
    entries = [
        {"type": "ImportValidationError", "row": 1, "field": "answer", "message": "empty"},
        {"type": "ParseError", "line_number": 2, "message": "unterminated quote"},
        {"type": "ImportValidationError", "row": 3, "field": "answer", "message": "empty"},
    ]
    old, clean = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO import_job (id, source_type, filename, errors, errors_dropped)"
            " VALUES (%s, 'csv', 'old.csv', %s, 2), (%s, 'csv', 'clean.csv', '[]', 0)",
            [old, Jsonb(entries), clean],
        )
        # More jobs than one backfill batch holds (500).
        conn.execute(
            "INSERT INTO import_job (source_type, filename, errors)"
            " SELECT 'text', 'many.txt', jsonb_build_array(jsonb_build_object('row', i))"
            "   FROM generate_series(1, 1100) AS i"
        )
    assert apply_migrations(empty_db_url) == since_log
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        repo = ImportJobRepository(conn)
        assert list(repo.iter_errors(old)) == entries
        stored = repo.get_by_id(old)
        assert stored is not None
        assert (stored.errors, stored.errors_logged, stored.errors_dropped) == (entries, 3, 2)
        assert [(g.type, g.message, g.count, g.other) for g in repo.error_summary(old)] == [
            # Dropped before the log: counted, their reasons unknown (ties: the other first).
            (None, None, 2, True),
            ("ImportValidationError", "empty", 2, False),
            ("ParseError", "unterminated quote", 1, False),
        ]
        # A new entry goes on from the true recording position: 3 stored + 2 dropped.
        repo.add_error(old, {"message": "new"})
        assert conn.execute(
            "SELECT max(n) FROM import_job_error WHERE job_id = %s", [old]
        ).fetchone() == (6,)
        assert list(repo.iter_errors(clean)) == []
        assert repo.error_summary(clean) == []
        assert conn.execute("SELECT count(*) FROM import_job_error").fetchone() == (1104,)
        # Two reasons took places (the dropped entries' "other" takes none); one more now.
        assert conn.execute(
            "SELECT error_groups FROM import_job WHERE id = %s", [old]
        ).fetchone() == (3,)


def test_the_head_goes_back_into_the_log_when_0018_is_rolled_back(empty_db_url: str) -> None:
    from importjob import ImportJobRepository  # noqa: PLC0415

    apply_migrations(empty_db_url)
    given = {"message": "given at create"}
    entries = [
        {"type": "ImportValidationError", "row": 1, "field": "answer", "message": "empty"},
        {"type": "ParseError", "line_number": 2, "message": "unterminated quote"},
        {"type": "ImportValidationError", "row": 3, "field": "answer", "message": "empty"},
    ]
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        repo = ImportJobRepository(conn, max_errors=2)
        split = repo.create(ImportJob(source_type="csv", filename="split.csv"))
        repo.add_errors(split.id, entries)  # 1 and 2 in the head, 3 in the log
        headed = repo.create(ImportJob(source_type="csv", filename="g.csv", errors=[given]))
        repo.add_error(headed.id, entries[0])  # the head, after the given entry
    assert rollback_migrations(empty_db_url) == ["importjob-0018-errors-head"]
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        # What the code before 0018 reads: every entry in the log, every reason counted.
        logged = conn.execute(
            "SELECT job_id, n, entry FROM import_job_error ORDER BY job_id = %s, n", [split.id]
        ).fetchall()
        assert logged == [
            (headed.id, 1, entries[0]),
            *[(split.id, n, entry) for n, entry in enumerate(entries, 1)],
        ]
        counts = conn.execute(
            "SELECT job_id = %s, message, count FROM import_job_error_group ORDER BY 1, 2",
            [split.id],
        ).fetchall()
        assert counts == [(False, "empty", 1), (True, "empty", 2), (True, "unterminated quote", 1)]
        assert conn.execute(
            "SELECT error_groups FROM import_job ORDER BY id = %s", [split.id]
        ).fetchall() == [(1,), (2,)]
    # Applied again, those jobs are from before it (errors_head NULL): read
    # once each, counted once each.
    assert apply_migrations(empty_db_url) == ["importjob-0018-errors-head"]
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        repo = ImportJobRepository(conn, max_errors=2)
        assert list(repo.iter_errors(split.id)) == entries
        assert list(repo.iter_errors(headed.id)) == entries[:1]
        assert [(g.message, g.count) for g in repo.error_summary(split.id)] == [
            ("empty", 2),
            ("unterminated quote", 1),
        ]
        stored = repo.get_by_id(headed.id)
        assert stored is not None
        assert stored.errors == [given, entries[0]]
