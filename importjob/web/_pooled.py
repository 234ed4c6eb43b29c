"""The repository of a pooled connection, for the routes and the listener's reads."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import AsyncIterator
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from importjob.repository_async import AsyncImportJobRepository

# One repository per pooled connection, made at its first use: a connection
# serves one checkout at a time, and making a repository costs a cursor and a
# read of the connection's parameters on every checkout otherwise.
_repositories: weakref.WeakKeyDictionary[AsyncConnection[Any], AsyncImportJobRepository] = (
    weakref.WeakKeyDictionary()
)


@contextlib.asynccontextmanager
async def pooled_repository(
    pool: AsyncConnectionPool[Any],
) -> AsyncIterator[AsyncImportJobRepository]:
    """Check a connection out of ``pool`` for the block and yield its repository."""
    async with pool.connection() as conn:
        repo = _repositories.get(conn)
        if repo is None:
            repo = _repositories[conn] = AsyncImportJobRepository(conn)
        yield repo
