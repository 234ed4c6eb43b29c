"""Apply and roll back the migrations that build the ``import_job`` table.

The migrations are yoyo SQL files. A deploy runs them with the ``yoyo``
command (from a checkout: ``migrations/``; from the installed package:
``package:importjob:migrations``); scripts and tests use these functions.
``schema.sql`` at the repository root is the schema they build, whole.

A database built by the pre-release migrations (``importjob-0001-...`` to
``importjob-0018-errors-head``) is brought to the 1.0 baseline in place by
`apply_migrations` (``migrations/prerelease/upgrade.sql``), once.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from urllib.parse import urlsplit

import psycopg
from yoyo import get_backend, read_migrations

from importjob._errors import translate_errors
from importjob._resources import resource_dir
from importjob.exceptions import ImportJobDatabaseError, InvalidFieldError

__all__ = [
    "BASELINE",
    "PRERELEASE",
    "apply_migrations",
    "migration_ids",
    "rollback_migrations",
    "yoyo_url",
]

_SCHEMES = {"postgresql", "postgres", "postgresql+psycopg"}

BASELINE = "importjob-0001-baseline"
# The pre-release chain the baseline replaces, in the order it applied.
PRERELEASE = (
    "importjob-0001-create-import-job",
    "importjob-0002-track-workers",
    "importjob-0003-index-workers",
    "importjob-0004-notify-changes",
    "importjob-0005-index-newest",
    "importjob-0006-applied-batches",
    "importjob-0007-notify-watched-jobs",
    "importjob-0008-hot-flushes",
    "importjob-0009-one-row-check",
    "importjob-0010-drop-column-checks",
    "importjob-0011-error-log",
    "importjob-0012-backfill-error-log",
    "importjob-0013-check-errors-where-written",
    "importjob-0014-drop-errors-from-row-check",
    "importjob-0015-checkpoints-and-sources",
    "importjob-0016-index-sources",
    "importjob-0017-rules-where-written",
    "importjob-0018-errors-head",
)


def yoyo_url(database_url: str) -> str:
    """Return ``database_url`` with the scheme yoyo uses for psycopg 3.

    Accepts ``postgresql://``, ``postgres://`` and ``postgresql+psycopg://``
    URLs; raises `InvalidFieldError` for anything else.
    """
    if not isinstance(database_url, str):
        raise InvalidFieldError("database_url", "must be a string", database_url)
    parts = urlsplit(database_url)
    if parts.scheme not in _SCHEMES:
        raise InvalidFieldError(
            "database_url",
            "must be a postgresql:// URL",
            # Never echo a password back.
            parts._replace(netloc=parts.hostname or "").geturl(),
        )
    # Swap the scheme only: urlunsplit would drop the empty host of "postgresql:///db".
    return "postgresql+psycopg" + database_url[len(parts.scheme) :]


@contextmanager
def _migrations() -> Iterator[Any]:
    # Hand yoyo a real directory: the package data, wherever it is installed
    # (a zip import would be extracted to a temporary directory for the call).
    with ExitStack() as stack:
        root = resource_dir("migrations")
        path = stack.enter_context(importlib.resources.as_file(root))
        migrations = read_migrations(str(path))
        if not len(migrations):
            raise RuntimeError(f"no migrations found in {path}: the package is incomplete")
        yield migrations


def migration_ids() -> list[str]:
    """Return the ids of the package's migrations, in the order they apply."""
    with _migrations() as migrations:
        return [migration.id for migration in migrations]


def apply_migrations(database_url: str) -> list[str]:
    """Apply every migration not yet applied to the database; return their ids.

    Takes an ordinary ``postgresql://`` URL. Holds yoyo's lock while it works,
    so concurrent callers wait for each other; a no-op (returning ``[]``) when
    all is applied. A database built by the whole pre-release chain is first
    brought to the baseline in place (every job and entry kept); one built
    by part of it raises `ImportJobDatabaseError` saying what to do, and
    nothing changes.
    """
    backend = get_backend(yoyo_url(database_url))
    try:
        with _migrations() as migrations, backend.lock():
            _upgrade_prerelease(backend, database_url)
            todo = backend.to_apply(migrations)
            backend.apply_migrations(todo)
            return [migration.id for migration in todo]
    finally:
        backend.connection.close()


def rollback_migrations(database_url: str, count: int | None = 1) -> list[str]:
    """Roll back the last ``count`` applied migrations (all when None); return their ids."""
    backend = get_backend(yoyo_url(database_url))
    try:
        with _migrations() as migrations, backend.lock():
            todo = backend.to_rollback(migrations)
            if count is not None:
                todo = todo[:count]
            backend.rollback_migrations(todo)
            return [migration.id for migration in todo]
    finally:
        backend.connection.close()


def _upgrade_prerelease(backend: Any, database_url: str) -> None:
    """Bring a database the pre-release chain built to the baseline, in one transaction."""
    backend.ensure_internal_schema_updated()
    cursor = backend.execute("SELECT migration_id FROM _yoyo_migration")
    applied = {row[0] for row in cursor.fetchall()}
    done = [migration for migration in PRERELEASE if migration in applied]
    if not done:
        return
    if len(done) < len(PRERELEASE):
        raise ImportJobDatabaseError(
            f"this database has importjob's pre-release migrations up to {done[-1]}, not all"
            f" of them: apply the rest ({PRERELEASE[-1]} last) with the pre-release code"
            " first, then migrate again"
        )
    upgrade = resource_dir("migrations").joinpath("prerelease", "upgrade.sql").read_text()
    with translate_errors({}), psycopg.connect(database_url) as conn, conn.transaction():
        conn.execute(upgrade)  # no parameters: run as one script
        conn.execute(
            "DELETE FROM _yoyo_migration WHERE migration_id = ANY (%s)", [list(PRERELEASE)]
        )
        conn.execute(
            "INSERT INTO _yoyo_migration (migration_hash, migration_id, applied_at_utc)"
            " VALUES (%s, %s, now() AT TIME ZONE 'utc')",
            [hashlib.sha256(BASELINE.encode()).hexdigest(), BASELINE],
        )
