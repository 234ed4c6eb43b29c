"""Checks shared by the model and the repository.

Each check raises `InvalidFieldError` naming the field, so that bad input is
refused in Python, with a clear message, before anything reaches the database.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from importjob._identity import worker_id as current_worker_id
from importjob.exceptions import DataImportError, InvalidFieldError

# PostgreSQL's bigint, the type of every counter column.
MAX_COUNT = 2**63 - 1
MAX_FILENAME_LENGTH = 255
MAX_WORKER_ID_LENGTH = 200
MAX_DURATION = timedelta(days=36_525)
# An error entry is kept within this many bytes of JSON: longer strings in it
# are cut (ending in TRUNCATED_MARK) and the entry gets "truncated": true.
MAX_ERROR_ENTRY_BYTES = 8192
TRUNCATED_MARK = "…[truncated]"
# Deeper nesting in an error entry is refused (it is a bug, or an attack).
MAX_ERROR_ENTRY_DEPTH = 32
# A checkpoint is a position (a row number, an offset, a page token), not data.
MAX_CHECKPOINT_BYTES = 8192
MAX_OWNER_LENGTH = 200
# A job's metadata: the application's few fields, not its data.
MAX_METADATA_BYTES = 8192
MAX_LABEL_LENGTH = 64
# json.dumps builds an encoder per call when given options: one, made once.
_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode


def encode_json(value: object) -> str:
    """Return checked JSON ``value`` as text, for a jsonb parameter (NaN refused)."""
    return _ENCODE(value)


def count(field: str, value: object) -> int:
    """Return ``value`` if it is a counter value: an int from 0 to 2**63-1."""
    # bool is an int subclass; True rows processed is a bug in the caller.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidFieldError(field, "must be an integer", value)
    if value < 0:
        raise InvalidFieldError(field, "must not be negative", value)
    if value > MAX_COUNT:
        raise InvalidFieldError(field, f"must be at most {MAX_COUNT}", value)
    return value


def positive(field: str, value: object) -> int:
    """Return ``value`` if it is an int from 1 to 2**63-1."""
    if isinstance(value, int) and not isinstance(value, bool) and value <= 0:
        raise InvalidFieldError(field, "must be at least 1", value)
    return count(field, value)


def text(field: str, value: object) -> str:
    """Return ``value`` if it is a str PostgreSQL can store: UTF-8, no NUL character."""
    if not isinstance(value, str):
        raise InvalidFieldError(field, "must be a string", value)
    _storable(field, value)
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


def _storable(field: str, value: str) -> None:
    # PostgreSQL text holds neither NUL nor a lone surrogate (not UTF-8).
    if "\x00" in value:
        raise InvalidFieldError(field, "must not contain a NUL character", value)
    # isascii() is a flag read; the regex search costs more than the rest.
    if not value.isascii() and _SURROGATE.search(value):
        raise InvalidFieldError(field, "must be valid unicode (a lone surrogate)", value)


def filename(value: object, field: str = "filename") -> str:
    """Return ``value`` if it is a valid file name: 1 to 255 characters."""
    name = text(field, value)
    if not name:
        raise InvalidFieldError(field, "must not be empty", value)
    if len(name) > MAX_FILENAME_LENGTH:
        raise InvalidFieldError(field, f"must be at most {MAX_FILENAME_LENGTH} characters", value)
    return name


def worker_id(value: object) -> str:
    """Return ``value`` if it is a worker identity: 1 to 200 characters."""
    name = text("worker_id", value)
    if not name or len(name) > MAX_WORKER_ID_LENGTH:
        raise InvalidFieldError(
            "worker_id", f"must be 1 to {MAX_WORKER_ID_LENGTH} characters", value
        )
    return name


def worker_or_current(value: object) -> str:
    """Return ``value`` as a worker identity, or this process's own when it is None."""
    return worker_id(current_worker_id() if value is None else value)


def rate(field: str, value: object) -> float:
    """Return ``value`` if it is a share: a number more than 0 and at most 1."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 1:
        raise InvalidFieldError(field, "must be a number more than 0 and at most 1", value)
    return float(value)


def seconds(field: str, value: object) -> float:
    """Return ``value`` if it is a number of seconds, 0 or more (a bool is not)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise InvalidFieldError(field, "must be a number of seconds, 0 or more", value)
    return float(value)


def optional_seconds(field: str, value: object) -> float | None:
    """Return ``value`` if it is None or a number of seconds, 0 or more."""
    return None if value is None else seconds(field, value)


def batch_id(value: object) -> tuple[str | None, int | None]:
    """Return a batch's key and number from ``None`` or a (key, number) pair.

    The key is 1 to 200 characters, the number from 1 to 2**63-1.
    """
    if value is None:
        return None, None
    if not isinstance(value, tuple) or len(value) != 2:
        raise InvalidFieldError("batch_id", "must be a (key, number) pair", value)
    key, number = value
    if not isinstance(key, str) or not 0 < len(key) <= MAX_WORKER_ID_LENGTH:
        raise InvalidFieldError(
            "batch_id", f"key must be a string of 1 to {MAX_WORKER_ID_LENGTH} characters", value
        )
    _storable("batch_id", key)
    return key, positive("batch_id", number)


def job_id(value: object, field: str = "job_id") -> UUID:
    """Return ``value`` as a UUID; a str in any form `uuid.UUID` reads is accepted."""
    if isinstance(value, UUID):
        return value
    if isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            pass
    raise InvalidFieldError(field, "must be a UUID", value)


def aware_datetime(field: str, value: object) -> datetime | None:
    """Return ``value`` if it is None or a timezone-aware datetime."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidFieldError(field, "must be a datetime", value)
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidFieldError(field, "must be timezone-aware", value)
    return value


def duration(field: str, value: object) -> timedelta:
    """Return ``value`` if it is a `datetime.timedelta` of zero or more."""
    if not isinstance(value, timedelta):
        raise InvalidFieldError(field, "must be a datetime.timedelta", value)
    if value < timedelta(0):
        raise InvalidFieldError(field, "must not be negative", value)
    if value > MAX_DURATION:
        # now() minus more than this leaves PostgreSQL's timestamp range.
        raise InvalidFieldError(field, "must be at most 100 years", value)
    return value


def _over(text: str, limit: int) -> bool:
    """Return whether ``text`` is more than ``limit`` bytes of UTF-8."""
    # A character is at most 4 bytes: most texts need no encoding to tell.
    return len(text) * 4 > limit and len(text.encode()) > limit


class JsonText(str):
    """JSON text checked already (a tracker's checkpoint): sent as it is."""

    __slots__ = ()


def checkpoint(value: object, field: str = "checkpoint") -> str | None:
    """Return a checkpoint as JSON text for a jsonb parameter, None for None (no checkpoint).

    Any JSON value is one; refused when not JSON-serializable or over
    `MAX_CHECKPOINT_BYTES` of JSON.
    """
    if value is None or type(value) is JsonText:
        return value
    return JsonText(_bounded_json(field, value, MAX_CHECKPOINT_BYTES))


def _bounded_json(field: str, value: object, limit: int) -> str:
    """Return ``value`` as JSON text, refused when not JSON or over ``limit`` bytes of it."""
    _json_value(field, value, 0)
    text = _ENCODE(value)
    if _over(text, limit):
        raise InvalidFieldError(field, f"must be at most {limit} bytes of JSON", _cut(text, 100))
    return text


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def owner(value: object, field: str = "owner") -> str | None:
    """Return ``value`` if it is None or an owner: 1 to 200 characters, no control character."""
    if value is None:
        return None
    name = text(field, value)
    if not 0 < len(name) <= MAX_OWNER_LENGTH:
        raise InvalidFieldError(field, f"must be 1 to {MAX_OWNER_LENGTH} characters", value)
    if _CONTROL.search(name):
        raise InvalidFieldError(field, "must not contain control characters", value)
    return name


def metadata(value: object, field: str = "metadata") -> str:
    """Return a job's metadata as JSON text for a jsonb parameter.

    A dict of string keys and JSON values, at most `MAX_METADATA_BYTES` of JSON.
    """
    if not isinstance(value, Mapping):
        raise InvalidFieldError(field, "must be a dict", value)
    return _bounded_json(field, dict(value), MAX_METADATA_BYTES)


def label(value: object, field: str = "outcome") -> str:
    """Return ``value`` if it is an outcome label: 1 to 64 characters."""
    name = text(field, value)
    if not 0 < len(name) <= MAX_LABEL_LENGTH:
        raise InvalidFieldError(field, f"must be 1 to {MAX_LABEL_LENGTH} characters", value)
    return name


def outcomes(value: object, field: str = "outcomes") -> str:
    """Return rows per outcome label, ``{label: rows}``, as JSON text for a jsonb parameter."""
    if not isinstance(value, Mapping):
        raise InvalidFieldError(field, "must be a dict of label to rows", value)
    if not value:
        return "{}"  # most flushes carry none: skip the encoder
    for key, rows in value.items():
        label(key, field)
        count(field, rows)
    return _ENCODE(dict(value))


_SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256(value: object, field: str = "source_sha256") -> str:
    """Return ``value`` as a SHA-256 digest in lowercase hex (64 hex digits)."""
    if not isinstance(value, str) or _SHA256.fullmatch(value.lower()) is None:
        raise InvalidFieldError(field, "must be a SHA-256 digest: 64 hex digits", value)
    return value.lower()


def error_entry(value: object, field: str = "error") -> dict[str, Any]:
    """Return ``value`` as a dict that can be stored as a jsonb object.

    Refuses what JSON or jsonb cannot hold; an entry over
    `MAX_ERROR_ENTRY_BYTES` is truncated, not refused (see `truncate_entry`).
    """
    if not isinstance(value, Mapping):
        raise InvalidFieldError(field, "must be a dict", value)
    _json_value(field, value, 0)
    entry = dict(value)
    if _over(_ENCODE(entry), MAX_ERROR_ENTRY_BYTES):
        return truncate_entry(entry)
    return entry


def _encoded_entry(value: object, field: str) -> str:
    """Check one error entry and return its JSON text, truncated when over the bound."""
    if not (isinstance(value, dict) or isinstance(value, Mapping)):  # noqa: SIM101 - as above
        raise InvalidFieldError(field, "must be a dict", value)
    _json_value(field, value, 0)
    text = _ENCODE(value)
    if _over(text, MAX_ERROR_ENTRY_BYTES):
        return _ENCODE(truncate_entry(dict(value)))
    return text


def truncate_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """Return ``entry`` cut to at most `MAX_ERROR_ENTRY_BYTES` of JSON, marked ``truncated``.

    Every string (keys included) is cut to the longest length that lets the
    entry fit; an entry too big even so (thousands of keys) keeps only its
    ``type`` and the start of its ``message``.
    """
    length = MAX_ERROR_ENTRY_BYTES // 4
    while length >= 16:
        cut: dict[str, Any] = _cut_strings(entry, length)
        cut["truncated"] = True
        if not _over(_ENCODE(cut), MAX_ERROR_ENTRY_BYTES):
            return cut
        length //= 2
    return {
        "type": _cut(str(entry.get("type", "")), 100),
        "message": _cut(str(entry.get("message", "")), 1000),
        "truncated": True,
    }


def _cut(text: str, length: int) -> str:
    return text if len(text) <= length else text[:length] + TRUNCATED_MARK


def _cut_strings(value: Any, length: int) -> Any:
    if isinstance(value, str):
        return _cut(value, length)
    if isinstance(value, Mapping):
        return {_cut(key, length): _cut_strings(item, length) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_cut_strings(item, length) for item in value]
    return value


def dump_entries(values: object, field: str) -> str:
    """Check a sequence of error entries and return it as a JSON array, for a jsonb parameter.

    An entry is a dict, or an import exception stored as its ``to_dict()``.
    """
    if not isinstance(values, list | tuple):
        raise InvalidFieldError(field, "must be a list of dicts", values)
    if not values:
        return "[]"  # most flushes carry no entries: skip the encoder
    # Each entry is encoded once, for its size and for the array.
    return "[" + ", ".join(_encoded_entry(_as_entry(value), field) for value in values) + "]"


def _as_entry(value: object) -> object:
    return value.to_dict() if isinstance(value, DataImportError) else value


def _json_value(field: str, value: object, depth: int) -> None:
    # Walk the value once: json.dumps would accept tuples, NaN and non-str
    # keys silently converted, and jsonb refuses NUL in any string. Every
    # flush with errors walks its entries: the exact types are tried first,
    # as the ABC checks cost more than the rest of a small entry's walk.
    if depth > MAX_ERROR_ENTRY_DEPTH:
        raise InvalidFieldError(field, f"must not nest deeper than {MAX_ERROR_ENTRY_DEPTH}", None)
    if isinstance(value, str):
        _storable(field, value)
    elif isinstance(value, dict) or isinstance(value, Mapping):  # noqa: SIM101 - dict is the fast test
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidFieldError(field, "must have only string keys", key)
            _storable(field, key)
            _json_value(field, item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _json_value(field, item, depth + 1)
    else:
        _json_scalar(field, value)


def _json_scalar(field: str, value: object) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        # jsonb holds any integer, but past 64 bits most JSON readers do not.
        if abs(value) > MAX_COUNT:
            raise InvalidFieldError(field, "must hold integers within 64 bits", value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidFieldError(field, "must not hold NaN or infinity", value)
    elif isinstance(value, str):
        _storable(field, value)
    else:
        raise InvalidFieldError(
            field, f"must be JSON-serializable, not {type(value).__name__}", value
        )
