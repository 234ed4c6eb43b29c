"""The API's OpenAPI document: it lists every endpoint, and the endpoints answer as it says.

Schemathesis generates requests from the document the mounted dashboard
serves, valid and malformed, over jobs in a real database, and checks each
answer against the document: no 5xx, a documented status, content type
and body, and a 400 that names the parameter at fault.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount

from importjob import Chunk, ImportJob, ImportJobRepository
from importjob.exceptions import ImportValidationError
from importjob.web import Access, Dashboard, _openapi, create_app, routes

Case = schemathesis.Case[Any]
PREFIX = "/admin/imports"
PAGES = {"/", "/jobs/{id}"}
# The one stream that does not end by itself.
NEVER_ENDS = "/api/jobs/events"
# Not the literals of the application's source: their order differs from process to
# process (str hashes), and the same seed must draw the same requests in every run.
CONFIG = schemathesis.Config.from_dict({"analysis": {"constants": {"enabled": False}}})
# Generated cases per operation and mode: with the real jobs' ids, a few hundred requests.
EXAMPLES = 10


def _root(request: Request) -> Access:
    return Access(user="tester", all_owners=True, can_cancel=True)


def _host(dashboard: Dashboard) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with dashboard.lifespan():
            yield

    return Starlette(routes=[Mount(PREFIX, app=dashboard)], lifespan=lifespan)


def _jobs(repo: ImportJobRepository) -> list[str]:
    """Make jobs of each kind the endpoints read, each ended so that its stream ends too."""
    failed = repo.create(ImportJob(source_type="csv", filename="a.csv", owner="tenant-a"))
    repo.start(failed.id, "w1")
    entries = [ImportValidationError(row, "email", "empty") for row in range(1, 6)]
    repo.advance(failed.id, 5, 0, 5, entries=entries)
    repo.add_error(failed.id, {"type": "Other", "message": "a line too long"})
    repo.update_status(failed.id, "failed")
    parent, chunks = repo.create_chunked(
        ImportJob(source_type="json", filename="big.json", metadata={"batch": 7}),
        [Chunk(10, {"rows": [0, 10]}), Chunk(10, {"rows": [10, 20]})],
    )
    for chunk in chunks:
        repo.start(chunk.id, "w1")
        repo.advance(chunk.id, 10, 10, 0)
        repo.update_status(chunk.id, "completed")
    cancelled = repo.cancel(repo.create(ImportJob(source_type="text", filename="c.txt")).id)
    return [str(job.id) for job in (failed, parent, chunks[0], cancelled)]


def _reaches_the_dashboard(case: Case) -> bool:
    # The host's Mount matches the path below its prefix with a ``.*`` that stops
    # at a newline: such a path is the host's own 404, never the dashboard's answer.
    return not any("\n" in unquote(str(value)) for value in (case.path_parameters or {}).values())


def field_named(ctx: CheckContext, response: schemathesis.Response, case: Case) -> None:
    """A 400 names, in ``field``, one of the operation's parameters."""
    if response.status_code != 400:
        return
    body = json.loads(response.content)
    names = {parameter.name for parameter in case.operation.iter_parameters()}
    assert body.get("field") in names, (body, sorted(names))


def test_every_endpoint_but_the_pages_is_in_the_document() -> None:
    document = _openapi.document("", max_jobs=1, max_errors_page=1, max_streamed_jobs=1)
    served = {route.path for route in routes.ROUTES} - PAGES
    assert set(document["paths"]) == served
    for route in routes.ROUTES:
        if route.path in served:
            methods = {method.lower() for method in route.methods or ()} - {"head"}
            assert set(document["paths"][route.path]) == methods, route.path


# psycopg_pool draws its reconnection jitter from the global random, in the
# dashboard's loop, while Hypothesis draws a case in this thread: Hypothesis
# takes that for a strategy using random. No strategy here does.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
def test_every_endpoint_answers_as_its_document_says(
    db_url: str, repo: ImportJobRepository
) -> None:
    ids = _jobs(repo)
    host = _host(create_app(db_url, access=_root))
    try:
        schema = schemathesis.openapi.from_asgi(f"{PREFIX}/api/openapi.json", host, config=CONFIG)
        assert schema.raw_schema["servers"] == [{"url": PREFIX}]
        calls: list[int] = []
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result
            operation = result.ok()
            if operation.path == NEVER_ENDS:
                continue  # a call would wait forever; test_web.py reads it as a stream
            modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
            # Generated ids find no job; the real ones reach each kind of job.
            fixed: list[dict[str, Any]] = [{}]
            if "{id}" in operation.path:
                fixed += [{"id": job_id} for job_id in ids]
            strategy = st.one_of(
                [
                    operation.as_strategy(mode, path_parameters=given or None)
                    for mode in modes
                    for given in fixed
                ]
            ).filter(_reaches_the_dashboard)

            @hypothesis.given(case=strategy)
            @hypothesis.settings(
                # More for more parameters: the list's filters get the most.
                max_examples=EXAMPLES * (len(fixed) + len(operation.query)),
                derandomize=True,
                deadline=None,
                database=None,
                suppress_health_check=list(hypothesis.HealthCheck),
            )
            def run(case: Case) -> None:
                response = case.call_and_validate(
                    checks=[
                        not_a_server_error,
                        status_code_conformance,
                        content_type_conformance,
                        response_schema_conformance,
                        field_named,
                    ],
                    timeout=30,
                )
                calls.append(response.status_code)

            run()
        assert len(calls) > 200
    finally:
        asgi.shutdown_lifespans()
