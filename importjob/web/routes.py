"""The pages and the JSON API of `importjob serve`.

Every request value goes through a check that names the field (400): the
repository's own, which every call makes, and the caps of what one request
may ask here. Every statement runs through `AsyncImportJobRepository`, and a
job's JSON is `importjob._job_json.job_json`, the shape of ``importjob show
--json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, BinaryIO, cast
from urllib.parse import urlencode

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from importjob import _validate
from importjob._job_json import job_json, metadata_filter, metadata_pair, value_text
from importjob.exceptions import (
    DataImportError,
    ImportJobDatabaseError,
    ImportJobNotFoundError,
    InvalidFieldError,
    InvalidStatusTransitionError,
)
from importjob.models import ErrorGroup, ErrorPage, ImportJob, ImportJobStatus
from importjob.repository import DEFAULT_STALE_AFTER
from importjob.repository_async import AsyncImportJobRepository
from importjob.web import _openapi
from importjob.web._listener import SHOWN_REASONS, Delivery, Inbox
from importjob.web._paths import base_path
from importjob.web._pooled import pooled_repository
from importjob.web.access import Access, audit, request_access

# What a page or a request may ask for at most.
MAX_JOBS = 500
MAX_ERRORS_PAGE = 1000
MAX_STREAMED_JOBS = 200
# The list page counts each status this far: past it, it shows "10,000+".
COUNTED_AT_MOST = 10_000
# The job page's errors per page (its reasons: SHOWN_REASONS, as its snapshots carry).
ERRORS_PER_PAGE = 50
# How long a new stream waits for its job's first snapshot before saying 503.
FIRST_SNAPSHOT_SECONDS = 10.0
# Streams send a comment this often, so proxies keep them open.
PING_SECONDS = 15
_CHUNK = 1 << 16


# Request values.


def _job_id(request: Request) -> uuid.UUID:
    return _validate.job_id(request.path_params["id"], "id")


def _int(request: Request, name: str, default: int, most: int | None = None) -> int:
    # The number the text spells, at most ``most``: what one request may ask.
    # Whether the repository takes it (a limit of at least 1, an offset of
    # at most 2**63-1) is the repository's check, made by the call.
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    if not text.isascii() or not text.isdigit():
        raise InvalidFieldError(name, "must be a whole number", text)
    value = int(text)
    if most is not None and value > most:
        raise InvalidFieldError(name, f"must be at most {most}", text)
    return value


def _status(request: Request) -> ImportJobStatus | None:
    text = request.query_params.get("status")
    return ImportJobStatus.parse(text) if text else None


def _list_filters(request: Request) -> dict[str, Any]:
    """Return list_recent's filters from ``?owner=``, ``?filename=`` and ``?meta.KEY=VALUE``.

    A page's form sends the metadata as ``?meta=KEY=VALUE`` (one field) too,
    and every field, empty ones included: an empty value is no filter.
    Each is checked by the repository's own rules, naming the parameter.
    """
    owner = request.query_params.get("owner") or None
    filename = request.query_params.get("filename") or None
    pairs: list[tuple[str, str]] = []
    for name, text in request.query_params.multi_items():
        if name.startswith("meta."):
            pairs.append((name.removeprefix("meta."), text))
        elif name == "meta" and text:
            pairs.append(metadata_pair(text, "meta"))
    contains = metadata_filter(pairs, "meta")
    _validate.owner(owner)
    _validate.metadata(contains, "meta")
    if filename is not None:
        _validate.filename(filename)
    return {"owner": owner, "metadata": contains, "filename": filename}


async def _list(request: Request, limit: int) -> tuple[list[ImportJob], dict[str, Any]]:
    """Return the newest jobs the request's filters ask for, of the owners its user sees.

    With the filters as the request gave them, for the page's form to show.
    """
    status, asked = _status(request), _list_filters(request)
    seen, owner = _owner_in_view(request_access(request), asked["owner"])
    if not seen:
        return [], asked
    async with _repository(request) as repo:
        return await repo.list_recent(status, limit, **{**asked, "owner": owner}), asked


def _owner_in_view(access: Access, asked: str | None) -> tuple[bool, str | None]:
    """Return whether the user sees the jobs of the owner a filter asks for, and whose they are.

    A user who sees every owner sees the owner asked (None: every owner);
    another sees their own owner's jobs, and none of another owner's.
    """
    if access.all_owners:
        return True, asked
    return asked in (None, access.owner), access.owner


# Reads.


def _repository(
    request: Request,
) -> contextlib.AbstractAsyncContextManager[AsyncImportJobRepository]:
    return pooled_repository(request.app.state.pool)


def _seen(access: Access, owners: dict[uuid.UUID, str | None], job_id: uuid.UUID) -> bool:
    return job_id in owners and access.sees(owners[job_id])


async def _visible(request: Request, job_id: uuid.UUID) -> None:
    """Raise `ImportJobNotFoundError` unless the job exists and the user sees it.

    Before anything else of the job is read: another owner's job answers
    as one that does not exist, and nothing of it is read but its owner.
    """
    access = request_access(request)
    if access.all_owners:
        return  # the job's own reads say whether it exists
    async with _repository(request) as repo:
        owners = await repo.owners([job_id])
    if not _seen(access, owners, job_id):
        raise ImportJobNotFoundError(job_id)


async def _job_with_reasons(
    request: Request, job_id: uuid.UUID
) -> tuple[ImportJob, list[ErrorGroup]]:
    async def job() -> ImportJob | None:
        async with _repository(request) as repo:
            return await repo.get_by_id(job_id)

    async def reasons() -> list[ErrorGroup]:
        async with _repository(request) as repo:
            return await repo.error_summary(job_id, limit=SHOWN_REASONS)

    # Side by side on two pooled connections: the answer waits one round trip,
    # not two. An unknown job: error_summary raises ImportJobNotFoundError.
    found, top = await asyncio.gather(job(), reasons())
    if found is None:  # deleted between the two reads
        raise ImportJobNotFoundError(job_id)
    return found, top


async def _error_page(request: Request, job_id: uuid.UUID, after: int, limit: int) -> ErrorPage:
    async with _repository(request) as repo:
        return await repo.error_page(job_id, after=after, limit=limit)


def _listed(job: ImportJob, now: datetime) -> dict[str, Any]:
    # A list reads no error entries: leave out the empty array, as `list --json` does.
    shown = job_json(job, now, None)
    del shown["errors"]
    return shown


# The JSON API.


async def api_jobs(request: Request) -> Response:
    """GET /api/jobs?status=&owner=&filename=&meta.KEY=VALUE&limit=: the newest jobs."""
    jobs, _ = await _list(request, _int(request, "limit", 50, MAX_JOBS))
    now = datetime.now(UTC)
    return JSONResponse([_listed(job, now) for job in jobs])


async def api_job(request: Request) -> Response:
    """GET /api/jobs/{id}: one job, as `importjob show --json`."""
    job_id = _job_id(request)
    await _visible(request, job_id)
    job, reasons = await _job_with_reasons(request, job_id)
    return JSONResponse(job_json(job, datetime.now(UTC), reasons))


async def _chunks(request: Request, job: ImportJob) -> list[ImportJob]:
    if job.chunks is None:
        return []
    async with _repository(request) as repo:
        return await repo.children(job.id)


async def api_chunks(request: Request) -> Response:
    """GET /api/jobs/{id}/chunks: a chunked import's chunks in order, with their progress."""
    job_id = _job_id(request)
    await _visible(request, job_id)
    async with _repository(request) as repo:
        job = await repo.get_by_id(job_id)
        if job is None:
            raise ImportJobNotFoundError(job_id)
        chunks = await repo.children(job_id)
    now = datetime.now(UTC)
    return JSONResponse([_listed(chunk, now) for chunk in chunks])


async def api_errors(request: Request) -> Response:
    """GET /api/jobs/{id}/errors?after=&limit=: a page of the error log, in recording order."""
    job_id = _job_id(request)
    after = _int(request, "after", 0)
    limit = _int(request, "limit", 100, MAX_ERRORS_PAGE)
    await _visible(request, job_id)
    page = await _error_page(request, job_id, after, limit)
    entries = [{"n": n, "entry": entry} for n, entry in page.entries]
    return JSONResponse({"errors": entries, "next_after": page.next_after})


async def errors_csv(request: Request) -> Response:
    """GET /api/jobs/{id}/errors.csv: every logged error entry, as `importjob errors`."""
    job_id = _job_id(request)
    await _visible(request, job_id)
    # Spooled to a file past 1 MiB: constant memory for a log of any size.
    spool = tempfile.SpooledTemporaryFile(max_size=1 << 20)  # noqa: SIM115 - closed by the stream
    try:
        async with _repository(request) as repo:
            await repo.export_errors(job_id, cast(BinaryIO, spool), format="csv")
    except BaseException:
        spool.close()
        raise
    spool.seek(0)

    async def chunks() -> AsyncIterator[bytes]:
        with spool:
            while chunk := spool.read(_CHUNK):
                yield chunk

    return StreamingResponse(
        chunks(),
        media_type="text/csv; charset=utf-8",
        # Named by the id, never by the job's filename: nothing of the user's in a header.
        headers={"content-disposition": f'attachment; filename="errors-{job_id}.csv"'},
    )


def _event(delivery: Delivery) -> dict[str, str]:
    if isinstance(delivery, DataImportError):
        job_id = getattr(delivery, "job_id", None)
        return {"event": "gone", "data": json.dumps({"id": str(job_id), "error": str(delivery)})}
    return {"event": "job", "data": delivery.data}


def _ended(delivery: Delivery) -> bool:
    return isinstance(delivery, DataImportError) or delivery.job.is_finished


async def api_events(request: Request) -> Response:
    """GET /api/jobs/{id}/events: SSE, the job now and at each change, until it ends."""
    job_id = _job_id(request)
    await _visible(request, job_id)
    inbox = Inbox()
    subscription = contextlib.AsyncExitStack()
    await subscription.enter_async_context(request.app.state.listener.subscribe(inbox, [job_id]))
    try:
        try:
            first = (await asyncio.wait_for(inbox.take(), FIRST_SNAPSHOT_SECONDS))[job_id]
        except TimeoutError as exc:
            raise ImportJobDatabaseError("no snapshot in time") from exc
        if isinstance(first, DataImportError):
            raise first
    except BaseException:
        await subscription.aclose()
        raise

    async def stream() -> AsyncIterator[dict[str, str]]:
        async with subscription:
            delivery: Delivery = first
            while True:
                yield _event(delivery)
                if _ended(delivery):
                    return
                delivery = (await inbox.take())[job_id]

    return EventSourceResponse(stream(), ping=PING_SECONDS, headers={"cache-control": "no-store"})


async def api_events_many(request: Request) -> Response:
    """GET /api/events?id=...&id=...: SSE for the jobs list, each job as it changes."""
    texts = request.query_params.getlist("id")
    if not 1 <= len(texts) <= MAX_STREAMED_JOBS:
        raise InvalidFieldError("id", f"give 1 to {MAX_STREAMED_JOBS} job ids", len(texts))
    job_ids = list(dict.fromkeys(_validate.job_id(text, "id") for text in texts))
    listener = request.app.state.listener
    access = request_access(request)
    followed, inbox = job_ids, Inbox()
    if not access.all_owners:
        async with _repository(request) as repo:
            owners = await repo.owners(job_ids)
        followed = [job_id for job_id in job_ids if _seen(access, owners, job_id)]
        for job_id in job_ids:
            if job_id not in followed:
                # What the listener says of a job that does not exist.
                inbox.put(job_id, ImportJobNotFoundError(job_id))

    async def stream() -> AsyncIterator[dict[str, str]]:
        open_ = set(job_ids)
        async with listener.subscribe(inbox, followed):
            while open_:
                for job_id, delivery in (await inbox.take()).items():
                    yield _event(delivery)
                    if _ended(delivery):
                        open_.discard(job_id)

    return EventSourceResponse(stream(), ping=PING_SECONDS, headers={"cache-control": "no-store"})


async def api_new_jobs(request: Request) -> Response:
    """GET /api/jobs/events?status=&owner=&filename=&meta.KEY=VALUE&limit=: SSE, the list's gains.

    ``job`` with a job's JSON as `api_jobs` lists it: first the jobs the
    list shows now, oldest first, then each job it gains, as it is created
    (or goes back to pending). On each wake the stream reads the list again
    as `api_jobs` does, scoped to the user's owner, so it never tells of a
    job the user does not see.
    """
    limit = _int(request, "limit", 50, MAX_JOBS)
    # Checked before the stream opens: a bad filter is a 400, not a broken stream.
    _status(request)
    _list_filters(request)
    listener = request.app.state.listener

    async def stream() -> AsyncIterator[dict[str, str]]:
        sent: set[uuid.UUID] = set()
        async with listener.new_jobs() as woken:
            while True:
                jobs, _ = await _list(request, limit)
                now = datetime.now(UTC)
                for job in reversed(jobs):
                    if job.id not in sent:
                        yield {"event": "job", "data": json.dumps(_listed(job, now))}
                # Only the list's window: a stream open for days holds no more ids.
                sent = {job.id for job in jobs}
                await woken.wait()
                woken.clear()

    return EventSourceResponse(stream(), ping=PING_SECONDS, headers={"cache-control": "no-store"})


def _cross_site(request: Request) -> bool:
    # Browsers say where a request comes from; a page of another site must
    # not act with the user's cookies. Clients that are not browsers send none.
    return request.headers.get("sec-fetch-site") not in (None, "same-origin", "none")


async def _act(
    request: Request,
    action: str,
    run: Callable[[AsyncImportJobRepository, uuid.UUID], Awaitable[ImportJob]],
) -> Response:
    """Do ``action`` on the request's job if its access allows it; audit it either way.

    Every action goes through here: ``can_cancel`` gates each, a request
    another site's page made is refused, another owner's job is 404 as a
    missing one, and the audit log gets one record, allowed or not.
    """
    job_id = _job_id(request)
    access = request_access(request)
    async with _repository(request) as repo:
        owners = await repo.owners([job_id])  # for the audit log, whoever asks
    owner = owners.get(job_id)

    def refused(why: str) -> None:
        audit(action, access, job_id, owner, f"refused: {why}")

    if not access.can_cancel:
        refused(f"no right to {action}")
        return JSONResponse({"error": request.app.state.cancel_refusal}, status_code=403)
    if _cross_site(request):
        refused("a cross-site request")
        return JSONResponse({"error": f"{action} from another site is refused"}, status_code=403)
    if not _seen(access, owners, job_id):
        refused("no such job" if job_id not in owners else "another owner's job")
        raise ImportJobNotFoundError(job_id)
    try:
        async with _repository(request) as repo:
            job = await run(repo, job_id)
    except (ImportJobNotFoundError, InvalidStatusTransitionError) as exc:
        refused(str(exc))
        raise
    except Exception as exc:
        audit(action, access, job_id, owner, f"failed: {type(exc).__name__}")
        raise
    audit(action, access, job_id, owner, "allowed")
    return JSONResponse(job_json(job, datetime.now(UTC), None))


async def api_cancel(request: Request) -> Response:
    """POST /api/jobs/{id}/cancel: cancel a job, when the request's access allows it."""
    return await _act(request, "cancel", lambda repo, job_id: repo.cancel(job_id))


async def healthz(request: Request) -> Response:
    """GET /healthz: 200 when the database answers, with the listener's state."""
    async with _repository(request) as repo:
        await repo.ping()
    return JSONResponse({"status": "ok", "listening": request.app.state.listener.connected})


async def metrics(request: Request) -> Response:
    """GET /metrics: jobs by status, rows, the oldest pending job, stalled jobs (every owner)."""
    if not request_access(request).all_owners:
        # Counts over every owner's jobs: for a user who sees them all.
        return JSONResponse({"error": "metrics need access to every owner"}, status_code=403)
    async with _repository(request) as repo:
        counted = await repo.job_metrics(DEFAULT_STALE_AFTER)
    registry = CollectorRegistry()
    by_status = {
        "jobs": Gauge("importjob_jobs", "Import jobs, by status.", ["status"], registry=registry),
        "processed": Gauge(
            "importjob_rows_processed",
            "Rows processed, summed over the jobs of each status.",
            ["status"],
            registry=registry,
        ),
        "failed": Gauge(
            "importjob_rows_failed",
            "Rows that failed, summed over the jobs of each status.",
            ["status"],
            registry=registry,
        ),
        "skipped": Gauge(
            "importjob_rows_skipped",
            "Rows skipped on purpose (a duplicate), summed over the jobs of each status.",
            ["status"],
            registry=registry,
        ),
    }
    oldest = Gauge(
        "importjob_oldest_pending_age_seconds",
        "Age of the oldest PENDING job (0 when none waits).",
        registry=registry,
    )
    stalled = Gauge(
        "importjob_processing_without_heartbeat",
        f"PROCESSING jobs with no heartbeat for {int(DEFAULT_STALE_AFTER.total_seconds())} s.",
        registry=registry,
    )
    followed = Gauge(
        "importjob_serve_followed_jobs", "Jobs this server streams live now.", registry=registry
    )
    for status, jobs in counted.items():  # every status, with zeros when it has no jobs
        by_status["jobs"].labels(status.value).set(jobs.jobs)
        by_status["processed"].labels(status.value).set(jobs.processed_rows)
        by_status["failed"].labels(status.value).set(jobs.failed_rows)
        by_status["skipped"].labels(status.value).set(jobs.skipped_rows)
    oldest.set(counted[ImportJobStatus.PENDING].oldest_age_seconds or 0.0)
    stalled.set(counted[ImportJobStatus.PROCESSING].without_heartbeat)
    reads = Gauge(
        "importjob_serve_snapshot_reads",
        "Reads this server made for its live streams since it started (one per change per job).",
        registry=registry,
    )
    listened = Gauge(
        "importjob_serve_listened_jobs",
        "Jobs the server's one listening connection LISTENs to now.",
        registry=registry,
    )
    followed.set(request.app.state.listener.followed)
    listened.set(request.app.state.listener.listening)
    reads.set(request.app.state.listener.reads)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def api_openapi(request: Request) -> Response:
    """GET /api/openapi.json: the OpenAPI 3.1 document of this API, to generate a client from."""
    document = _openapi.document(
        base_path(request.scope) or "",
        max_jobs=MAX_JOBS,
        max_errors_page=MAX_ERRORS_PAGE,
        max_streamed_jobs=MAX_STREAMED_JOBS,
    )
    return JSONResponse(document)


# The pages.


def _page(request: Request, name: str, **context: Any) -> Response:
    template = request.app.state.templates.get_template(name)
    return HTMLResponse(
        template.render(
            base=base_path(request.scope),
            can_cancel=request_access(request).can_cancel,
            asks_token=request.app.state.asks_token,
            # The moment the relative times are told from.
            now=datetime.now(UTC),
            **context,
        )
    )


async def _counts(request: Request, owner: str | None) -> dict[ImportJobStatus, int] | None:
    """Return the status counts of the jobs in the page's view, None when it sees none.

    Of the user's owner, or of the owner the filter names; of every owner
    for a user who sees them all and names none.
    """
    seen, owner = _owner_in_view(request_access(request), owner)
    if not seen:
        return None
    async with _repository(request) as repo:
        return await repo.count_by_status(owner=owner, at_most=COUNTED_AT_MOST)


def _with_status(request: Request, status: ImportJobStatus | None) -> str:
    # The page's own query with another status: a count's link keeps the other filters.
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "status"]
    if status is not None:
        kept.insert(0, ("status", status.value))
    return f"?{urlencode(kept)}" if kept else ""


async def jobs_page(request: Request) -> Response:
    """GET /: the status counts and the newest jobs, live."""
    status, limit = _status(request), _int(request, "limit", 50, MAX_JOBS)
    asked = _list_filters(request)
    (jobs, filters), counts = await asyncio.gather(
        _list(request, limit), _counts(request, asked["owner"])
    )
    now = datetime.now(UTC)
    return _page(
        request,
        "jobs.html",
        jobs=[_listed(job, now) for job in jobs],
        counts=[
            (member.value, counts[member] if counts else 0, _with_status(request, member))
            for member in ImportJobStatus
        ],
        counted_at_most=COUNTED_AT_MOST,
        every_status=_with_status(request, None),
        status=status.value if status else "",
        owner=filters["owner"] or "",
        filename=filters["filename"] or "",
        all_owners=request_access(request).all_owners,
        # The form edits one KEY=VALUE; the others (from ?meta.KEY links) ride along.
        meta=[(key, value_text(value, "null")) for key, value in filters["metadata"].items()],
        statuses=[member.value for member in ImportJobStatus],
        limit=limit,
    )


async def job_page(request: Request) -> Response:
    """GET /jobs/{id}: one job, live, with its reasons and a page of its errors."""
    job_id = _job_id(request)
    after = _int(request, "after", 0)
    await _visible(request, job_id)
    job, reasons = await _job_with_reasons(request, job_id)
    page = await _error_page(request, job_id, after, ERRORS_PER_PAGE)
    now = datetime.now(UTC)
    return _page(
        request,
        "job.html",
        job=job_json(job, now, reasons),
        chunks=[_listed(chunk, now) for chunk in await _chunks(request, job)],
        entries=page.entries,
        after=after,
        next_after=page.next_after,
    )


ROUTES = [
    Route("/", jobs_page),
    Route("/jobs/{id}", job_page),
    Route("/api/jobs", api_jobs),
    # Before /api/jobs/{id}, which would take "events" for a (bad) id.
    Route("/api/jobs/events", api_new_jobs),
    Route("/api/jobs/{id}", api_job),
    Route("/api/jobs/{id}/chunks", api_chunks),
    Route("/api/jobs/{id}/errors", api_errors),
    Route("/api/jobs/{id}/errors.csv", errors_csv),
    Route("/api/jobs/{id}/events", api_events),
    Route("/api/jobs/{id}/cancel", api_cancel, methods=["POST"]),
    Route("/api/events", api_events_many),
    Route("/api/openapi.json", api_openapi),
    Route("/metrics", metrics),
    Route("/healthz", healthz),
]
