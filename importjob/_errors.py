"""The one place where driver errors become `importjob.exceptions`.

Both repositories run every statement inside `translate_errors`; the
driver's exception is kept as ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg_errors

from importjob.exceptions import (
    DataImportError,
    ImportJobDatabaseError,
    ImportJobExistsError,
    ImportJobTimeoutError,
    InvalidFieldError,
    SchemaMissingError,
)

_COUNTS = ("processed", "success", "errors")
_CHECK_PREFIX = "import_job_"
_CHECK_SUFFIX = "_check"


def translate(exc: psycopg.Error, params: Mapping[str, object]) -> DataImportError:
    """Return the project exception that stands for the driver's ``exc``."""
    constraint = exc.diag.constraint_name or ""
    if isinstance(exc, pg_errors.UniqueViolation) and constraint == "import_job_pkey":
        return ImportJobExistsError(params["id"])  # type: ignore[arg-type]
    if isinstance(exc, pg_errors.CheckViolation) and constraint.startswith(_CHECK_PREFIX):
        # Constraints are named import_job_<field>_check (see migrations/).
        field = constraint.removeprefix(_CHECK_PREFIX).removesuffix(_CHECK_SUFFIX)
        return InvalidFieldError(
            field, f"refused by the database ({constraint})", params.get(field)
        )
    if isinstance(exc, pg_errors.NumericValueOutOfRange):
        # A counter added in SQL would pass bigint: the caller's numbers are wrong.
        return InvalidFieldError(
            "counters", "a counter would pass 2**63-1", {k: params.get(k) for k in _COUNTS}
        )
    if isinstance(exc, pg_errors.QueryCanceled | pg_errors.LockNotAvailable):
        # statement_timeout, lock_timeout, or pg_cancel_backend: say which.
        reason = (exc.diag.message_primary or str(exc)).strip()
        return ImportJobTimeoutError(f"the database cancelled the statement: {reason}")
    if isinstance(exc, pg_errors.UndefinedTable):
        # import_job, or a table a later migration adds: say which.
        reason = (exc.diag.message_primary or "a table is missing").strip()
        return SchemaMissingError(
            f"{reason}: apply the migrations (importjob.apply_migrations, or yoyo apply)"
        )
    return ImportJobDatabaseError(f"{type(exc).__name__}: {exc}".strip())


@contextmanager
def translate_errors(params: Mapping[str, object]) -> Iterator[None]:
    """Turn a `psycopg.Error` raised inside the block into a project exception."""
    try:
        yield
    except psycopg.Error as exc:
        raise translate(exc, params) from exc
