"""Apply and roll back the migrations that build the ``import_job`` table.

The migrations are yoyo SQL files. A deploy runs them with the ``yoyo``
command (from a checkout: ``migrations/``; from the installed package:
``package:importjob:migrations``); scripts and tests use these functions.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from urllib.parse import urlsplit

from yoyo import get_backend, read_migrations

from importjob._resources import resource_dir
from importjob.exceptions import InvalidFieldError

__all__ = ["apply_migrations", "migration_ids", "rollback_migrations", "yoyo_url"]

_SCHEMES = {"postgresql", "postgres", "postgresql+psycopg"}


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
    all is applied.
    """
    backend = get_backend(yoyo_url(database_url))
    try:
        with _migrations() as migrations, backend.lock():
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
