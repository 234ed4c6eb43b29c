"""The OpenAPI 3.1 document of the JSON API, kept as data: what a client is generated from.

Every endpoint of `importjob.web.routes.ROUTES` but the two HTML pages is
here, with its parameters, its answers and their bodies; a test holds the
two lists to each other. The pages (``/`` and ``/jobs/{id}``) are for a
browser and are left out.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from importjob import _validate
from importjob.models import ImportJobStatus, SourceType

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"{_REF}{name}"}


def _nullable(kind: str, **more: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **more}


_COUNT = {"type": "integer", "minimum": 0, "maximum": _validate.MAX_COUNT}
_TIME = _nullable("string", format="date-time")
_UUID = {"type": "string", "format": "uuid"}
# An owner holds no control character; no text PostgreSQL stores holds a NUL.
_NO_CONTROL = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"
_KEY_VALUE = "^[^=\\x00]+=[^\\x00]*$"
# Any JSON value, as the application gave it (a checkpoint, a chunk's spec).
_ANY: dict[str, Any] = {}

_JOB_FIELDS: dict[str, Any] = {
    "id": _UUID,
    "status": {"type": "string", "enum": [status.value for status in ImportJobStatus]},
    "source_type": {"type": "string", "enum": [source.value for source in SourceType]},
    "filename": {"type": "string"},
    "total_rows": _COUNT,
    "processed_rows": _COUNT,
    "success_count": _COUNT,
    "error_count": _COUNT,
    "started_at": _TIME,
    "completed_at": _TIME,
    "created_at": _TIME,
    "updated_at": _TIME,
    "heartbeat_at": _TIME,
    "worker_id": _nullable("string"),
    "errors_dropped": _COUNT,
    "errors_logged": _COUNT,
    "checkpoint": _ANY,
    "source_sha256": _nullable("string", pattern="^[0-9a-f]{64}$"),
    "source_size": _nullable("integer", minimum=0),
    "owner": _nullable("string"),
    "metadata": {"type": "object"},
    "skipped_count": _COUNT,
    "outcomes": {"type": "object", "additionalProperties": _COUNT},
    "parent_id": _nullable("string", format="uuid"),
    "chunk": _ANY,
    "chunk_index": _nullable("integer", minimum=0),
    "chunks": _nullable("integer", minimum=0),
    "keep_going": {"type": "boolean"},
    "elapsed_seconds": _nullable("number"),
    "rows_per_second": _nullable("number"),
}

_SCHEMAS: dict[str, Any] = {
    "Job": {
        "description": (
            "A job as `importjob show --json` prints it. `errors` (its first logged"
            " entries) is left out of lists; `error_summary` (its top reasons) is only"
            " in the answer of GET /api/jobs/{id}."
        ),
        "type": "object",
        "required": list(_JOB_FIELDS),
        "properties": {
            **_JOB_FIELDS,
            "errors": {"type": "array", "items": {"type": "object"}},
            "error_summary": {"type": "array", "items": _ref("ErrorGroup")},
        },
    },
    "ErrorGroup": {
        "description": "How many of a job's error entries share one type, field and message.",
        "type": "object",
        "required": ["type", "field", "message", "count", "other"],
        "properties": {
            "type": _nullable("string"),
            "field": _nullable("string"),
            "message": _nullable("string"),
            "count": _COUNT,
            "other": {"type": "boolean"},
        },
    },
    "ErrorPage": {
        "description": "A page of a job's error log; `next_after` is the next page's `after`.",
        "type": "object",
        "required": ["errors", "next_after"],
        "properties": {
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["n", "entry"],
                    "properties": {
                        "n": {"type": "integer", "minimum": 1},
                        "entry": {"type": "object"},
                    },
                },
            },
            "next_after": _nullable("integer", minimum=1),
        },
    },
    "Event": {
        "description": (
            "One server-sent event: `job` with the job's JSON (as in a list), or `gone`"
            ' with `{"id": ..., "error": ...}` for a job deleted or not seen.'
        ),
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"enum": ["job", "gone"]},
            "data": {"type": "string", "contentMediaType": "application/json"},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "listening"],
        "properties": {"status": {"const": "ok"}, "listening": {"type": "boolean"}},
    },
    "Error": {
        "description": (
            "What went wrong. `field` names the request value at fault (a query or"
            " path parameter) on every 400 but one: a mount path the links cannot stay"
            " under, which is the host's configuration, not the request's."
        ),
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
    },
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


_RESPONSES: dict[str, Any] = {
    "BadValue": _error("A malformed value: `field` names the parameter."),
    "Forbidden": _error("The application's access function refused the request or the action."),
    "NotFound": _error("No such job, or another owner's job, answered alike."),
    "Conflict": _error("A change the job's status refuses (it has ended)."),
    "Unavailable": _error("The database cannot be reached, or the dashboard is not started."),
}


def _answers(*names: str) -> dict[str, Any]:
    codes = {"BadValue": "400", "Forbidden": "403", "NotFound": "404", "Conflict": "409"}
    refs = {codes[name]: {"$ref": f"#/components/responses/{name}"} for name in names}
    return {**refs, "503": {"$ref": "#/components/responses/Unavailable"}}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _text(description: str, media_type: str) -> dict[str, Any]:
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


def _events(description: str) -> dict[str, Any]:
    # Before OpenAPI 3.2 (itemSchema), a stream's schema describes each of its events.
    return {"description": description, "content": {"text/event-stream": {"schema": _ref("Event")}}}


def _limit(default: int, most: int) -> dict[str, Any]:
    return {
        "name": "limit",
        "in": "query",
        "description": f"How many at most, 1 to {most}.",
        "schema": {"type": "integer", "minimum": 1, "maximum": most, "default": default},
    }


_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "The job's id.",
    "schema": _UUID,
}


def _get(summary: str, ok: dict[str, Any], *errors: str, **more: Any) -> dict[str, Any]:
    return {"get": {"summary": summary, **more, "responses": {"200": ok, **_answers(*errors)}}}


def _of_job(summary: str, ok: dict[str, Any], **more: Any) -> dict[str, Any]:
    parameters = [_ID, *more.pop("parameters", [])]
    return _get(summary, ok, "BadValue", "Forbidden", "NotFound", parameters=parameters, **more)


def _paths(max_jobs: int, max_errors_page: int, max_streamed_jobs: int) -> dict[str, Any]:
    jobs = {"type": "array", "items": _ref("Job")}
    # The list's filters: GET /api/jobs and the stream of the jobs it gains.
    listed = [
        _limit(50, max_jobs),
        {
            "name": "status",
            "in": "query",
            "description": "Only jobs in this status (any letter case).",
            "schema": _JOB_FIELDS["status"],
        },
        {
            "name": "owner",
            "in": "query",
            "description": "Only this owner's jobs.",
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": _validate.MAX_OWNER_LENGTH,
                "pattern": _NO_CONTROL,
            },
        },
        {
            "name": "filename",
            "in": "query",
            "description": "Only jobs whose file name contains this text, in any letter case.",
            "schema": {
                "type": "string",
                "maxLength": _validate.MAX_FILENAME_LENGTH,
                "pattern": "^[^\\x00]*$",
            },
        },
        {
            "name": "meta",
            "in": "query",
            "description": (
                "Only jobs whose metadata has KEY set to VALUE, each given as"
                " KEY=VALUE (repeatable); VALUE is a JSON scalar if it reads as"
                ' one (`7`, `true`, `"7"`), else the text. `meta.KEY=VALUE`'
                " is the same filter."
            ),
            "style": "form",
            "explode": True,
            "schema": {"type": "array", "items": {"type": "string", "pattern": _KEY_VALUE}},
        },
    ]
    return {
        "/api/jobs": _get(
            "The newest jobs the user sees, newest first.",
            _json("The jobs, as in `importjob list --json`.", jobs),
            "BadValue",
            "Forbidden",
            parameters=listed,
        ),
        "/api/jobs/events": _get(
            "Server-sent events for a list: `job` with each job it shows now, then each it gains.",
            _events(
                "The jobs GET /api/jobs lists, oldest first, then each new job of the list"
                " (created, or back to pending) as it comes. It does not end by itself."
            ),
            "BadValue",
            "Forbidden",
            parameters=listed,
        ),
        "/api/jobs/{id}": _of_job(
            "One job, with its first errors and its top error reasons.",
            _json("The job, as `importjob show --json`.", _ref("Job")),
        ),
        "/api/jobs/{id}/chunks": _of_job(
            "A chunked import's chunks in chunk order; none for another job.",
            _json("The chunks, each as in the list.", jobs),
        ),
        "/api/jobs/{id}/errors": _of_job(
            "A page of the job's error log, in recording order.",
            _json("The page.", _ref("ErrorPage")),
            parameters=[
                {
                    "name": "after",
                    "in": "query",
                    "description": "The entries after this one (a page's `next_after`).",
                    "schema": {**_COUNT, "default": 0},
                },
                _limit(100, max_errors_page),
            ],
        ),
        "/api/jobs/{id}/errors.csv": _of_job(
            "Every logged error entry of the job, as `importjob errors` writes them.",
            _text("A CSV file, one entry a row.", "text/csv"),
        ),
        "/api/jobs/{id}/events": _of_job(
            "Server-sent events: `job` with the job's JSON now and at each change.",
            _events("The stream ends after a terminal status, or after `gone`."),
        ),
        "/api/jobs/{id}/cancel": {
            "post": {
                "summary": "Cancel the job, if the request's access allows it.",
                "parameters": [
                    _ID,
                    {
                        "name": "X-Importjob-Token",
                        "in": "header",
                        "description": "The token `importjob serve --allow-cancel` printed.",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": _json("The cancelled job.", _ref("Job")),
                    **_answers("BadValue", "Forbidden", "NotFound", "Conflict"),
                },
            }
        },
        "/api/events": _get(
            "Server-sent events for a list: each job as it changes.",
            _events("Ends when every job has ended or is gone."),
            "BadValue",
            "Forbidden",
            parameters=[
                {
                    "name": "id",
                    "in": "query",
                    "required": True,
                    "description": f"The jobs to follow, 1 to {max_streamed_jobs}.",
                    "style": "form",
                    "explode": True,
                    "schema": {
                        "type": "array",
                        "items": _UUID,
                        "minItems": 1,
                        "maxItems": max_streamed_jobs,
                    },
                },
            ],
        ),
        "/metrics": _get(
            "Prometheus metrics over every owner's jobs.",
            _text("The Prometheus text exposition format.", "text/plain"),
            "Forbidden",
        ),
        "/healthz": _get("Whether the database answers.", _json("It does.", _ref("Health"))),
        "/api/openapi.json": _get(
            "This document.", _json("The OpenAPI 3.1 document.", {"type": "object"}), "Forbidden"
        ),
    }


def document(
    base: str, *, max_jobs: int, max_errors_page: int, max_streamed_jobs: int
) -> dict[str, Any]:
    """Return the OpenAPI document of the API served under ``base`` (its mount path)."""
    paths = _paths(max_jobs, max_errors_page, max_streamed_jobs)
    for path in paths.values():
        for operation in path.values():
            # Whatever the path, the access function may refuse the request first.
            operation["responses"].setdefault("403", {"$ref": "#/components/responses/Forbidden"})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "importjob",
            "version": version("importjob"),
            "description": (
                "The import jobs' JSON API. Who sees which jobs, and who may cancel, is"
                " decided by the application that serves it, per request."
            ),
        },
        # Relative to where the document was served: the paths resolve under the mount.
        "servers": [{"url": base or "/"}],
        "paths": paths,
        "components": {"schemas": _SCHEMAS, "responses": _RESPONSES},
    }
