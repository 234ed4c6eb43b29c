"""A job as JSON, the one shape `importjob show --json` prints and the web API serves."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

from importjob.exceptions import InvalidFieldError
from importjob.models import ErrorGroup, ImportJob


def elapsed_seconds(job: ImportJob, now: datetime) -> float | None:
    """Return how long the job has run (until ``now`` or its end), or None before it started."""
    if job.started_at is None:
        return None
    return ((job.completed_at or now) - job.started_at).total_seconds()


def rows_per_second(job: ImportJob, now: datetime) -> float | None:
    """Return the job's processed rows per second of run time, or None before it started."""
    elapsed = elapsed_seconds(job, now)
    return job.processed_rows / elapsed if elapsed else None


def job_json(job: ImportJob, now: datetime, reasons: Sequence[ErrorGroup] | None) -> dict[str, Any]:
    """Return every field of ``job``, its elapsed time and rate, and its top error reasons.

    ``reasons`` None leaves ``error_summary`` out: a live snapshot, which
    reads the job alone.
    """
    shown: dict[str, Any] = {
        **job.to_dict(),
        "elapsed_seconds": elapsed_seconds(job, now),
        "rows_per_second": rows_per_second(job, now),
    }
    if reasons is not None:
        shown["error_summary"] = [attrs.asdict(group) for group in reasons]
    return shown


def value_text(value: Any, missing: str) -> str:
    """Return a field's value as a person reads it: ``missing`` for None, JSON for JSON.

    A checkpoint is any JSON value: shown as the JSON the API serves, not as
    Python's repr.
    """
    if value is None:
        return missing
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def metadata_value(text: str) -> Any:
    """Return a metadata filter's value as given on a command line or in a URL.

    A JSON scalar is read as one (``7``, ``true``, ``null``, ``"7"``, the
    string ``7``); anything else is the string itself (``faq``).
    """
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return text if isinstance(value, dict | list) else value


def metadata_pair(text: str, field: str) -> tuple[str, str]:
    """Return the key and the value of a ``KEY=VALUE`` metadata filter, naming ``field``."""
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise InvalidFieldError(field, "must be KEY=VALUE", text)
    return key, value


def metadata_filter(pairs: Sequence[tuple[str, str]], field: str) -> dict[str, Any]:
    """Return the metadata a list filters on from ``(key, value)`` pairs, naming ``field``."""
    contains: dict[str, Any] = {}
    for key, text in pairs:
        if not key:
            raise InvalidFieldError(field, "must name a key: KEY=VALUE", f"{key}={text}")
        contains[key] = metadata_value(text)
    return contains
