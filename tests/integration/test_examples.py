"""The example applications of ``examples/``, run as their readers would run them."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from importjob import ImportJob, ImportJobRepository

PREFIX = "/admin/imports"


def _started(repo: ImportJobRepository, owner: str) -> ImportJob:
    created = repo.create(ImportJob(source_type="csv", filename="f.csv", owner=owner))
    return repo.start(created.id, worker_id="w1")


def _first_event(response: httpx.Response) -> tuple[str, str]:
    name = ""
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line.partition(":")[2].strip()
        elif line.startswith("data:"):
            return name, line.partition(":")[2].strip()
    raise AssertionError("the stream ended without an event")


def test_the_fastapi_example_mounts_it_behind_its_own_login(
    db_url: str,
    asgi_server: Callable[..., Any],
    repo: ImportJobRepository,
    example: Callable[[str], Any],
) -> None:
    fastapi_example = example("dashboard_in_fastapi")
    mine = _started(repo, "tenant-a")
    theirs = _started(repo, "tenant-b")
    server = asgi_server(fastapi_example.create(db_url))

    @contextlib.contextmanager
    def signed_in(user: str, password: str) -> Iterator[httpx.Client]:
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            answer = http.post("/login", data={"user": user, "password": password})
            assert answer.status_code == 303, answer.text
            assert answer.headers["location"] == f"{PREFIX}/"
            yield http

    with httpx.Client(base_url=server.base_url) as anonymous:
        assert anonymous.get(f"{PREFIX}/").status_code == 403
        assert anonymous.post("/login", data={"user": "alice", "password": "no"}).status_code == 401
        assert 'action="/login"' in anonymous.get("/").text
    with signed_in("alice", "alice-pw") as alice, signed_in("bob", "bob-pw") as bob:
        page = alice.get(f"{PREFIX}/")
        assert page.status_code == 200
        assert str(mine.id) in page.text
        assert str(theirs.id) not in page.text
        assert f'src="{PREFIX}/static/app.js"' in page.text
        assert alice.get(f"{PREFIX}/api/jobs/{theirs.id}").status_code == 404
        with alice.stream("GET", f"{PREFIX}/api/jobs/{mine.id}/events") as stream:
            name, data = _first_event(stream)
            assert name == "job"
            assert str(mine.id) in data
        assert bob.post(f"{PREFIX}/api/jobs/{theirs.id}/cancel").status_code == 403
        assert alice.post(f"{PREFIX}/api/jobs/{mine.id}/cancel").status_code == 200
    with signed_in("admin", "admin-pw") as admin:
        assert len(admin.get(f"{PREFIX}/api/jobs").json()) == 2
