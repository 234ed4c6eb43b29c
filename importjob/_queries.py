"""The SQL statements of `importjob`, read once per process from ``sql/``.

Each file in ``sql/`` holds one parameterized statement. In an installed
package they are the package data ``importjob/sql/*.sql``.
"""

from __future__ import annotations

import functools
from typing import LiteralString, cast

from importjob._resources import resource_dir


@functools.cache
def queries() -> dict[str, LiteralString]:
    """Return every statement, keyed by its file name without ``.sql``."""
    found: dict[str, LiteralString] = {}
    for resource in resource_dir("sql").iterdir():
        if resource.name.endswith(".sql"):
            # The files ship with the package and hold no values: the one
            # place where their text is trusted as a literal.
            text = _compact(resource.read_text(encoding="utf-8"))
            found[resource.name.removesuffix(".sql")] = cast(LiteralString, text)  # type: ignore[redundant-cast]
    return found


def _compact(text: str) -> str:
    """Return the statement without its comment lines, blank lines and indentation.

    The comments are for the reader of ``sql/``. psycopg caches the
    conversion of a statement's ``%(name)s`` placeholders only for a text of
    at most 4 KiB (``MAX_CACHED_STATEMENT_LENGTH``) and parses a longer one
    again at every call, and the longest statements pass 4 KiB with their
    comments. No statement in ``sql/`` holds a string literal spanning
    lines.
    """
    return "\n".join(
        stripped
        for line in text.splitlines()
        if (stripped := line.strip()) and not stripped.startswith("--")
    )


def query(name: str) -> LiteralString:
    """Return the statement of ``sql/<name>.sql``."""
    return queries()[name]
