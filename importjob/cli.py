"""The ``importjob`` command: run, watch and investigate imports.

Which database: ``--database URL``, else ``$DATABASE_URL``, else an embedded
PostgreSQL in a per-user data directory (migrated automatically). A
configured server is never migrated behind your back: run ``importjob
migrate``.

Exit codes: 0 done; 1 the job failed or was cancelled (``watch``), or the
change was refused (``cancel`` of an ended job); 2 bad input, a database
that cannot be reached or has no schema, an unknown job. Errors are one line
on stderr; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import collections
import hashlib
import importlib
import itertools
import json
import logging
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, cast
from urllib.parse import urlsplit

import click
import psycopg
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from importjob import _embedded, _validate
from importjob._job_json import elapsed_seconds as _elapsed
from importjob._job_json import job_json, metadata_filter, metadata_pair, value_text
from importjob._job_json import rows_per_second as _rate
from importjob.exceptions import (
    DataImportError,
    ImportJobNotFoundError,
    ImportValidationError,
    InvalidFieldError,
    InvalidStatusTransitionError,
    SchemaMissingError,
)
from importjob.models import Chunk, ErrorGroup, ImportJob, ImportJobStatus
from importjob.repository import EXPORT_FORMATS, ImportJobRepository
from importjob.schema import apply_migrations, rollback_migrations
from importjob.tracking import track
from importjob.worker import check_handler, run_worker

EXIT_OK, EXIT_JOB_FAILED, EXIT_USAGE = 0, 1, 2
# How many of a job's error reasons `show` prints, largest first.
SHOWN_REASONS = 10

_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class _CommandError(Exception):
    """An error the command reports in one line, with its exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# Parameter types: bad input is a usage error (exit 2) naming the option.


class _JobId(click.ParamType[uuid.UUID]):
    name = "ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return uuid.UUID(str(value))
        except ValueError:
            self.fail(f"not an import job id: {value!r}", param, ctx)


class _Duration(click.ParamType[timedelta]):
    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value).strip().lower()
        parts = _DURATION.findall(text)
        if not parts or _DURATION.sub("", text).strip():
            self.fail(f"not a duration like 30s, 5m, 2h, 30d or 1h30m: {value!r}", param, ctx)
        return timedelta(seconds=sum(int(n) * _UNITS[unit] for n, unit in parts))


class _KeyValue(click.ParamType[tuple[str, str]]):
    name = "KEY=VALUE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return metadata_pair(str(value), "--meta")
        except InvalidFieldError:
            self.fail(f"not KEY=VALUE: {value!r}", param, ctx)


# The database.


def _redact(url: str) -> str:
    """Return ``url`` with its password, if any, replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


class _Database:
    """Where the command's database is, resolved on first use."""

    def __init__(self, url: str | None) -> None:
        self.given = url
        self._url: str | None = None
        self.embedded = False

    @property
    def url(self) -> str:
        if self._url is None:
            if self.given:
                self._url = _checked_url(self.given)
            else:
                self._url = _embedded.database_url()
                self.embedded = True
                apply_migrations(self._url)
        return self._url

    def scrub(self, text: str) -> str:
        """Return ``text`` with the URL's password masked wherever it appears."""
        password = urlsplit(self.given).password if self.given else None
        return text.replace(password, "***") if password else text

    @contextmanager
    def repository(self) -> Iterator[ImportJobRepository]:
        url = self.url
        try:
            conn = psycopg.connect(url, autocommit=True, application_name="importjob")
        except psycopg.Error as exc:
            raise _CommandError(f"cannot connect to {_redact(url)}: {_first_line(exc)}") from exc
        with conn:
            yield ImportJobRepository(conn)


def _first_line(exc: BaseException) -> str:
    # Driver messages run to several lines; an error here is one.
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _checked_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in {"postgresql", "postgres"}:
        raise _CommandError(f"malformed database URL (want postgresql://...): {_redact(url)}")
    try:
        parts.port  # noqa: B018 - urllib checks the port only when asked for it
    except ValueError as exc:
        raise _CommandError(f"malformed database URL {_redact(url)}: {exc}") from exc
    try:
        psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise _CommandError(f"malformed database URL {_redact(url)}: {_first_line(exc)}") from exc
    return url


class _Session:
    """What one run of the command knows: its database, once the options are read."""

    database: _Database | None = None


def _database(ctx: click.Context) -> _Database:
    database = ctx.ensure_object(_Session).database
    if database is None:  # pragma: no cover - the group callback always sets it
        raise _CommandError("no database")
    return database


# Rendering.


def _console() -> Console:
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        # Piped or captured: no terminal width to respect, so never cut a value.
        console.width = max(console.width, 160)
    return console


def _age(moment: datetime, now: datetime) -> str:
    seconds = max(0, int((now - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _progress_text(job: ImportJob) -> str:
    if job.total_rows:
        return f"{job.processed_rows}/{job.total_rows} {job.processed_rows / job.total_rows:.0%}"
    return str(job.processed_rows)


def _entry_row(entry: dict[str, Any]) -> str:
    for key in ("row", "line_number"):
        if entry.get(key) is not None:
            return str(entry[key])
    return ""


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


# The command.


class _Group(click.Group):
    """Reports every error in one line on stderr with a meaningful exit code."""

    def main(self, *args: Any, **kwargs: Any) -> NoReturn:
        argv = list(kwargs.pop("args", None) or (args[0] if args else sys.argv[1:]))
        debug = "--debug" in argv
        session = _Session()

        def scrub(text: str) -> str:
            return session.database.scrub(text) if session.database else text

        try:
            # Not standalone: click returns ctx.exit()'s code instead of exiting.
            result = super().main(args=argv, standalone_mode=False, obj=session, **kwargs)
        except click.exceptions.Abort:
            _fail("aborted", 130)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code, debug)
        except _CommandError as exc:
            _fail(scrub(str(exc)), exc.exit_code, debug)
        except SchemaMissingError:
            _fail("the database has no import_job table: run `importjob migrate`", 2, debug)
        except ImportJobNotFoundError as exc:
            _fail(f"no import job {exc.job_id}", EXIT_USAGE, debug)
        except InvalidStatusTransitionError as exc:
            _fail(str(exc), EXIT_JOB_FAILED, debug)
        except (DataImportError, psycopg.Error) as exc:
            _fail(scrub(_first_line(exc)), EXIT_USAGE, debug)
        sys.exit(result if isinstance(result, int) else EXIT_OK)


def _fail(message: str, exit_code: int, debug: bool = False) -> NoReturn:
    if debug and sys.exc_info()[1] is not None:
        raise  # noqa: PLE0704 - --debug: the whole traceback
    click.echo(f"importjob: {message}", err=True)
    sys.exit(exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database",
    metavar="URL",
    help="postgresql:// URL. Default: $DATABASE_URL, else the embedded PostgreSQL.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="importjob")
@click.pass_context
def main(ctx: click.Context, database: str | None, debug: bool) -> None:
    """Run, watch and investigate imports tracked in PostgreSQL."""
    del debug  # read by _Group.main, before parsing
    ctx.ensure_object(_Session).database = _Database(
        database or os.environ.get("DATABASE_URL") or None
    )


@main.command()
@click.option("--rollback", is_flag=True, help="Roll back the last applied migration instead.")
@click.pass_context
def migrate(ctx: click.Context, rollback: bool) -> None:
    """Apply the migrations not yet applied (or roll back the last one)."""
    database = _database(ctx)
    url = database.url
    if rollback:
        done = rollback_migrations(url)
        click.echo(f"rolled back: {', '.join(done)}" if done else "nothing to roll back")
    else:
        done = apply_migrations(url)
        click.echo(f"applied: {', '.join(done)}" if done else "nothing to apply: all applied")


@main.command(name="list")
@click.option(
    "--status",
    type=click.Choice([s.value for s in ImportJobStatus], case_sensitive=False),
    help="Only jobs in this status.",
)
@click.option("--owner", help="Only jobs of this owner.")
@click.option("--filename", help="Only jobs whose file name contains this text, in any case.")
@click.option(
    "--meta",
    "meta",
    multiple=True,
    type=_KeyValue(),
    metavar="KEY=VALUE",
    help="Only jobs whose metadata has KEY set to VALUE (repeatable; a JSON scalar such as"
    ' 7 or true is read as one, "7" is the string).',
)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_jobs(
    ctx: click.Context,
    *,
    status: str | None,
    owner: str | None,
    filename: str | None,
    meta: tuple[tuple[str, str], ...],
    limit: int,
    as_json: bool,
) -> None:
    """List jobs, newest first."""
    try:
        contains = metadata_filter(meta, "--meta")
        _validate.owner(owner, "--owner")
        if filename is not None:
            _validate.filename(filename, "--filename")
    except InvalidFieldError as exc:
        raise click.BadParameter(f"{exc.message}: {exc.value!r}", param_hint=exc.field) from exc
    with _database(ctx).repository() as repo:
        jobs = repo.list_recent(status, limit, owner=owner, metadata=contains, filename=filename)
    if as_json:
        # The list reads no entries: leave out the empty array rather than show it.
        _print_json([{k: v for k, v in job.to_dict().items() if k != "errors"} for job in jobs])
        return
    now = datetime.now(UTC)
    table = Table(box=None, pad_edge=False)
    # An id is copied to other commands: never cut it; cut the file name instead.
    table.add_column("id", no_wrap=True, min_width=36)
    table.add_column("status", no_wrap=True)
    table.add_column("file", overflow="ellipsis", no_wrap=True, max_width=28)
    table.add_column("progress", no_wrap=True)
    table.add_column("errors", justify="right")
    table.add_column("skipped", justify="right")
    table.add_column("age", justify="right")
    for job in jobs:
        table.add_row(
            str(job.id),
            job.status.value,
            job.filename,
            _progress_text(job),
            str(job.error_count),
            str(job.skipped_count),
            _age(job.created_at or now, now),
        )
    _console().print(table if jobs else "no import jobs")


@main.command()
@click.argument("job_id", type=_JobId())
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show(ctx: click.Context, job_id: uuid.UUID, as_json: bool) -> None:
    """Show every field of a job, its rate, its top error reasons and its first errors."""
    with _database(ctx).repository() as repo:
        job = repo.get_by_id(job_id)
        if job is None:
            raise ImportJobNotFoundError(job_id)
        reasons = repo.error_summary(job_id, limit=SHOWN_REASONS)
        chunks = repo.children(job_id) if job.chunks else []
    now = datetime.now(UTC)
    elapsed, rate = _elapsed(job, now), _rate(job, now)
    if as_json:
        _print_json(job_json(job, now, reasons))
        return
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold")
    fields.add_column()
    for name, value in job.to_dict().items():
        if name != "errors":
            fields.add_row(name, value_text(value, "-"))
    fields.add_row("progress", _progress_text(job))
    fields.add_row("elapsed", "-" if elapsed is None else f"{elapsed:.1f}s")
    fields.add_row("rate", "-" if rate is None else f"{rate:.1f} rows/s")
    if chunks:
        by_status = collections.Counter(chunk.status.value for chunk in chunks)
        fields.add_row("chunks by status", ", ".join(f"{n} {s}" for s, n in by_status.items()))
    console = _console()
    console.print(fields)
    if reasons:
        console.print()
        console.print(_reasons_table(reasons))
    if not job.errors:
        console.print("\nno errors stored")
        if job.errors_logged:  # stored by a repository with max_errors=0
            console.print(f"the error log holds {job.errors_logged:,}: importjob errors {job.id}")
        return
    errors = Table(title=f"errors ({len(job.errors)} stored)", title_justify="left")
    for column in ("row", "field", "message"):
        errors.add_column(column)
    for entry in job.errors:
        errors.add_row(
            _entry_row(entry),
            str(entry.get("field", "")),
            str(entry.get("message", entry.get("type", ""))),
        )
    console.print()
    console.print(errors)
    if job.errors_dropped:
        console.print(f"{job.errors_dropped} more not stored (past the bound)")
    console.print(
        f"the error log holds {job.errors_logged:,}"
        f" entr{'y' if job.errors_logged == 1 else 'ies'}: importjob errors {job.id}"
    )


def _reasons_table(reasons: list[ErrorGroup]) -> Table:
    table = Table(title="top reasons", title_justify="left")
    for column in ("count", "type", "field", "message"):
        table.add_column(column, justify="right" if column == "count" else "left")
    for group in reasons:
        if group.other:
            table.add_row(f"{group.count:,}", "(other reasons)", "", "")
        else:
            table.add_row(
                f"{group.count:,}", group.type or "-", group.field or "-", group.message or "-"
            )
    return table


@main.command(name="errors")
@click.argument("job_id", type=_JobId())
@click.option(
    "--format",
    "export_format",
    type=click.Choice(EXPORT_FORMATS),
    default="csv",
    show_default=True,
    help="csv: n, type, row, line_number, field, message, value, entry; jsonl: one entry a line.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, allow_dash=True),
    default="-",
    help="Write to this file (default: stdout).",
)
@click.pass_context
def export_errors(ctx: click.Context, job_id: uuid.UUID, export_format: str, output: str) -> None:
    """Export every logged error entry of a job, in recording order."""
    with _database(ctx).repository() as repo:
        if output == "-":
            written = repo.export_errors(job_id, sys.stdout.buffer, format=export_format)
        else:
            # Written beside the target and renamed over it: an unknown job leaves no file.
            partial = f"{output}.partial"
            try:
                with open(partial, "wb") as out:
                    written = repo.export_errors(job_id, out, format=export_format)
                os.replace(partial, output)
            finally:
                if os.path.exists(partial):
                    os.remove(partial)
    click.echo(f"exported {written:,} error entr{'y' if written == 1 else 'ies'}", err=True)


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.fields.get("rate")
        return Text("-- rows/s" if speed is None else f"{speed:,.0f} rows/s")


def _progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeRemainingColumn(),
        TextColumn("errors: {task.fields[errors]}"),
        TimeElapsedColumn(),
        console=console,
    )


def _follow(snapshots: Iterator[ImportJob], console: Console) -> ImportJob:
    """Show each snapshot: a live bar on a terminal, a line each elsewhere; return the last."""
    last: ImportJob | None = None
    if console.is_terminal:
        with _progress_bar(console) as bar:
            task = bar.add_task("pending", total=None, errors=0, rate=None)
            for last in snapshots:
                now = datetime.now(UTC)
                bar.update(
                    task,
                    description=last.status.value,
                    total=last.total_rows or None,
                    completed=last.processed_rows,
                    errors=last.error_count,
                    rate=_rate(last, now),
                )
    else:
        shown = ""
        for last in snapshots:
            rate = _rate(last, datetime.now(UTC))
            line = f"{last.status.value} {_progress_text(last)} errors={last.error_count}" + (
                "" if rate is None else f" rate={rate:.0f}/s"
            )
            if line != shown:  # a heartbeat changes the row, not what a person sees
                click.echo(line)
                shown = line
    if last is None:  # pragma: no cover - watch yields the current state first
        raise _CommandError("the job could not be read")
    return last


@main.command()
@click.argument("job_id", type=_JobId())
@click.pass_context
def watch(ctx: click.Context, job_id: uuid.UUID) -> None:
    """Follow a job live until it ends; exit 0 if it completed, 1 if not."""
    with _database(ctx).repository() as repo:
        last = _follow(repo.watch(job_id), _console())
    click.echo(f"import job {last.id}: {last.status.value}")
    if last.status is not ImportJobStatus.COMPLETED:
        ctx.exit(EXIT_JOB_FAILED)


@main.command()
@click.argument("job_id", type=_JobId())
@click.pass_context
def cancel(ctx: click.Context, job_id: uuid.UUID) -> None:
    """Cancel a job; its worker stops at its next flush."""
    with _database(ctx).repository() as repo:
        repo.cancel(job_id)
    click.echo(f"cancelled import job {job_id}")


@main.command()
@click.option("--older-than", type=_Duration(), required=True, help="No heartbeat for this long.")
@click.option("--requeue", is_flag=True, help="Put them back to pending instead of failing them.")
@click.pass_context
def rescue(ctx: click.Context, older_than: timedelta, requeue: bool) -> None:
    """End the processing jobs whose worker sent no heartbeat for --older-than."""
    with _database(ctx).repository() as repo:
        rescued = repo.rescue_stale(older_than, requeue=requeue)
    for job in rescued:
        click.echo(f"{job.status.value} {job.id} (worker {job.errors[-1].get('worker_id', '?')})")
    click.echo(f"rescued {len(rescued)} job{'s' * (len(rescued) != 1)}")


@main.command()
@click.option("--older-than", type=_Duration(), required=True, help="Ended at least this long ago.")
@click.option("--batch", type=click.IntRange(min=1), default=1000, show_default=True)
@click.pass_context
def purge(ctx: click.Context, older_than: timedelta, batch: int) -> None:
    """Delete ended jobs that completed more than --older-than ago."""
    with _database(ctx).repository() as repo:
        purged = repo.purge_finished(older_than, batch=batch)
    click.echo(f"purged {purged} job{'s' * (purged != 1)}")


@main.command()
@click.option("--rows", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option(
    "--fail-every",
    type=click.IntRange(min=0),
    default=40,
    show_default=True,
    help="Every K-th row fails validation (0: none).",
)
@click.option(
    "--row-ms",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Simulated work per row, in milliseconds.",
)
@click.option(
    "--chunks",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Split the import into K chunks, run by worker processes (0: one tracker here).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="With --chunks: how many `importjob worker` processes import them.",
)
@click.pass_context
def demo(
    ctx: click.Context,
    *,
    rows: int,
    fail_every: int,
    row_ms: float,
    chunks: int,
    workers: int,
) -> None:
    """Run a simulated import through the tracker, with the same progress bar as watch.

    With --chunks K, the import is one chunked import of K chunks that
    --workers N `importjob worker` processes import, the bar following the
    whole import.
    """
    console = _console()
    if chunks:
        if chunks > rows:
            raise click.BadParameter(
                f"more chunks ({chunks}) than rows ({rows})", param_hint="--chunks"
            )
        knobs = {"fail_every": fail_every, "row_ms": row_ms}
        _chunked_demo(ctx, console, rows=rows, chunks=chunks, workers=workers, knobs=knobs)
        return
    with _database(ctx).repository() as repo:
        job = repo.create(
            ImportJob(source_type="csv", filename=f"demo-{rows}-pairs.csv", total_rows=rows)
        )
        click.echo(f"import job {job.id}: importing {rows} rows")
        started = time.monotonic()
        with track(repo, job.id, every_rows=100, every_seconds=0.25) as tracker:
            _simulate(
                rows,
                fail_every,
                row_ms / 1000,
                ok=tracker.ok,
                failed=tracker.failed,
                console=console,
            )
        took = time.monotonic() - started
        done = repo.get_by_id(job.id)
    if done is None:  # pragma: no cover - deleted while the demo ran
        raise ImportJobNotFoundError(job.id)
    click.echo(
        f"{done.status.value}: {done.processed_rows} rows, {done.success_count} imported, "
        f"{done.error_count} failed in {took:.1f}s ({done.processed_rows / took:,.0f} rows/s)"
    )
    click.echo(f"see: importjob show {done.id}")


def _chunked_demo(
    ctx: click.Context,
    console: Console,
    *,
    rows: int,
    chunks: int,
    workers: int,
    knobs: dict[str, Any],
) -> None:
    database = _database(ctx)
    url = database.url
    edges = [rows * n // chunks for n in range(chunks + 1)]
    with database.repository() as repo:
        parent, _ = repo.create_chunked(
            ImportJob(source_type="csv", filename=f"demo-{rows}-pairs.csv", metadata={**knobs}),
            [
                Chunk(end - first, {"rows": [first, end]})
                for first, end in itertools.pairwise(edges)
            ],
        )
        click.echo(
            f"import job {parent.id}: importing {rows} rows in {chunks} chunks"
            f" with {workers} worker processes"
        )
        started = time.monotonic()
        command = [sys.executable, "-c", "from importjob.cli import main; main()"]
        processes = [
            subprocess.Popen(  # noqa: S603 - this interpreter, running importjob
                [*command, "worker", "importjob._demo:import_rows", "--database", url],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(workers)
        ]
        try:
            done = _follow(repo.watch(parent.id), console)
        finally:
            for process in processes:
                process.terminate()  # a graceful stop: nothing of theirs is left running
            for process in processes:
                process.wait(timeout=60)
        took = time.monotonic() - started
    click.echo(
        f"{done.status.value}: {done.processed_rows} rows, {done.success_count} imported, "
        f"{done.error_count} failed in {took:.1f}s ({done.processed_rows / took:,.0f} rows/s)"
    )
    click.echo(f"see: importjob show {done.id}")


def _simulate(
    rows: int,
    fail_every: int,
    pause: float,
    *,
    ok: Callable[[], None],
    failed: Callable[[ImportValidationError], None],
    console: Console,
) -> None:
    bar = _progress_bar(console) if console.is_terminal else None
    task = bar.add_task("processing", total=rows, errors=0, rate=None) if bar else None
    started = time.monotonic()
    errors = 0
    with bar or _nothing():
        for row in range(1, rows + 1):
            # A stand-in for parsing and embedding one question-answer pair.
            hashlib.sha256(f"question {row}: answer {row}".encode()).hexdigest()
            if pause:
                time.sleep(pause)
            if fail_every and row % fail_every == 0:
                errors += 1
                failed(ImportValidationError(row, "answer", "must not be empty", value=""))
            else:
                ok()
            if bar is not None and task is not None and (row % 50 == 0 or row == rows):
                rate = row / max(time.monotonic() - started, 1e-9)
                bar.update(task, completed=row, errors=errors, rate=rate)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _echo_now(line: str) -> None:
    # Before the server starts: whoever reads the output (a test, a supervisor) sees it now.
    click.echo(line)
    sys.stdout.flush()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="0: any free."
)
@click.option(
    "--allow-cancel", is_flag=True, help="Allow cancelling, with a token printed at start."
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, allow_cancel: bool) -> None:
    """Serve a live dashboard and a JSON API (needs: pip install 'importjob[web]')."""
    try:
        from importjob import web  # noqa: PLC0415 - an optional extra
    except ImportError as missing:
        raise _CommandError(
            f"importjob serve needs the web extra ({missing.name} is missing):"
            " pip install 'importjob[web]'"
        ) from missing
    database = _database(ctx)
    url = database.url
    try:
        web.serve(
            url,
            host=host,
            port=port,
            allow_cancel=allow_cancel,
            database_label="embedded PostgreSQL" if database.embedded else _redact(url),
            echo=_echo_now,
        )
    except OSError as exc:
        raise _CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


@main.group()
def embedded() -> None:
    """Manage the embedded PostgreSQL used when no database is given."""


@embedded.command(name="status")
def embedded_status() -> None:
    """Say where the embedded server keeps its data and whether it runs."""
    state = "running" if _embedded.is_running() else "stopped"
    click.echo(f"{state}: {_embedded.data_dir()}")


@embedded.command(name="stop")
def embedded_stop() -> None:
    """Stop the embedded server (the next command starts it again)."""
    click.echo("stopped" if _embedded.stop() else "not running")


def _handler(spec: str) -> Callable[..., object]:
    """Import MODULE:FUNCTION, as uvicorn and celery do: from the current directory too."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise _CommandError(f"HANDLER: want MODULE:FUNCTION, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any error of the user's module is one line
        raise _CommandError(f"HANDLER: cannot import {module_name}: {_first_line(exc)}") from exc
    found: Any = module
    for name in attribute.split("."):
        if not hasattr(found, name):
            raise _CommandError(f"HANDLER: {module_name} has no {attribute}")
        found = getattr(found, name)
    try:
        check_handler(found)
    except InvalidFieldError as exc:
        raise _CommandError(f"HANDLER: {spec} {exc.message}") from exc
    return cast(Callable[..., object], found)


def _positive(option: str, value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise click.BadParameter("must be more than 0", param_hint=option)
    return value


@main.command()
@click.argument("handler", metavar="MODULE:FUNCTION")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Jobs run at once (threads; asyncio tasks for a coroutine function).",
)
@click.option("--database", "database_url", metavar="URL", help="As the command's --database.")
@click.option(
    "--stop-timeout",
    type=_Duration(),
    default="30s",
    show_default=True,
    help="On SIGTERM, how long running jobs get to hand themselves back.",
)
@click.option(
    "--rescue-after",
    type=_Duration(),
    default="5m",
    show_default=True,
    help="Requeue the jobs of workers silent this long (one worker at a time).",
)
@click.pass_context
def worker(
    ctx: click.Context,
    *,
    handler: str,
    concurrency: int,
    database_url: str | None,
    stop_timeout: timedelta,
    rescue_after: timedelta,
) -> None:
    """Claim pending jobs and run MODULE:FUNCTION(job, tracker) on each, until SIGTERM.

    Picks a job up as soon as its creation commits (LISTEN), sends no
    statement while idle, and on SIGTERM or SIGINT hands each running job
    back to pending after its current row, for another worker to resume. A
    second signal stops at once. One log line per job started and ended.
    """
    _positive("--stop-timeout", stop_timeout)
    _positive("--rescue-after", rescue_after)
    function = _handler(handler)
    url = _checked_url(database_url) if database_url else _database(ctx).url
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    clean = run_worker(
        function,
        url,
        concurrency=concurrency,
        stop_timeout=stop_timeout.total_seconds(),
        rescue_after=rescue_after,
    )
    if not clean:
        # Handlers still running past --stop-timeout: their jobs stay
        # PROCESSING, for the rescue; the process ends now all the same.
        logging.shutdown()
        sys.stdout.flush()
        os._exit(EXIT_OK)
