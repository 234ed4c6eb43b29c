"""Fingerprint the file an import reads, so that it is imported once.

::

    fp = importjob.fingerprint("pairs.csv")
    job = ImportJob(source_type="csv", filename="pairs.csv",
                    source_sha256=fp.sha256, source_size=fp.size)
    repo.create(job, unique_source=True)   # SourceAlreadyImportedError if it was
"""

from __future__ import annotations

import hashlib
import io
import os
from typing import BinaryIO

import attrs

from importjob import _validate
from importjob.exceptions import InvalidFieldError

__all__ = ["Fingerprint", "fingerprint"]

# Read this much at a time: large enough that the hash, not the calls,
# sets the pace (hashlib releases the GIL for it), small enough to stay
# in the CPU's cache.
_CHUNK = 1 << 20


def _to_sha256(value: object) -> str:
    return _validate.sha256(value, "sha256")


def _is_size(_: object, __: attrs.Attribute[int], value: object) -> None:
    _validate.count("size", value)


@attrs.frozen
class Fingerprint:
    """A file's SHA-256 digest (64 lowercase hex digits) and its size in bytes."""

    sha256: str = attrs.field(converter=_to_sha256)
    size: int = attrs.field(validator=_is_size)


def fingerprint(source: str | os.PathLike[str] | BinaryIO) -> Fingerprint:
    """Return the `Fingerprint` of a file: a path, or a binary file object open for reading.

    Streams the file in 1 MiB chunks: constant memory whatever its size. A
    file object is read from where it stands to its end. Raises
    `InvalidFieldError` naming ``source`` for a directory, a missing or
    unreadable file, or a text-mode file object.
    """
    if isinstance(source, str | os.PathLike):
        try:
            with open(source, "rb", buffering=0) as file:
                return _digest(file)
        except IsADirectoryError:
            raise InvalidFieldError("source", "is a directory, not a file", source) from None
        except FileNotFoundError:
            raise InvalidFieldError("source", "no such file", source) from None
        except OSError as exc:
            raise InvalidFieldError("source", f"cannot be read: {exc.strerror}", source) from exc
    if isinstance(source, io.TextIOBase) or not hasattr(source, "read"):
        raise InvalidFieldError(
            "source", "must be a path or a binary file object open for reading", source
        )
    return _digest(source)


def _digest(file: BinaryIO) -> Fingerprint:
    digest = hashlib.sha256()
    size = 0
    readinto = getattr(file, "readinto", None)
    if readinto is not None:
        # One buffer for the whole file: no new bytes object per chunk.
        buffer = bytearray(_CHUNK)
        view = memoryview(buffer)
        while n := readinto(buffer):
            digest.update(view[:n])
            size += n
    else:
        while chunk := file.read(_CHUNK):
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise InvalidFieldError("source", "must be opened in binary mode", file)
            digest.update(chunk)
            size += len(chunk)
    return Fingerprint(digest.hexdigest(), size)
