"""`importjob.web.create_app` mounted in another application: its links, its access, its audit.

The host is a Starlette application served by uvicorn in a thread of the
test (so the test reads what it logs), the dashboard mounted under a prefix,
its access function deciding from a header who the user is.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount

from importjob import Chunk, ImportJob, ImportJobRepository, ImportJobStatus
from importjob.exceptions import ImportValidationError, InvalidFieldError
from importjob.web import AUDIT_LOGGER, Access, Dashboard, TokenAccess, create_app
from importjob.web._paths import base_path

PREFIX = "/admin/imports"
HOSTILE = '<script>window.pwned=1</script>"\'><img src=x onerror="window.pwned=2">'
USERS = {
    "mallory": Access(user="mallory\ncancel allowed: user='root'", owner=HOSTILE),
    "alice": Access(user="alice", owner="tenant-a", can_cancel=True),
    "bob": Access(user="bob", owner="tenant-b"),
    "root": Access(user="root", all_owners=True, can_cancel=True),
}
Serve = Callable[..., Any]
# A new job reaches a list's stream within 5 s; this allows for a busy machine.
NEW_JOB_SECONDS = 30.0
LINK = re.compile(r'(?:href|src|action|data-base)="([^"]*)"')


async def header_access(request: Request) -> Access | None:
    """Who the test says the user is, in X-Test-User (a coroutine function, as one may be)."""
    name = request.headers.get("x-test-user")
    if name == "boom":
        raise RuntimeError("the user store is down")
    return USERS.get(name or "")


def host(dashboard: Dashboard, prefix: str = PREFIX) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with dashboard.lifespan():
            yield

    return Starlette(routes=[Mount(prefix, app=dashboard)], lifespan=lifespan)


@pytest.fixture
def mounted(db_url: str, asgi_server: Serve) -> Callable[..., httpx.Client]:
    """Return a function serving the dashboard under a prefix; it returns a client of the host."""

    def _mounted(
        user: str | None = None, *, url: str = db_url, root_path: str = "", prefix: str = PREFIX
    ) -> httpx.Client:
        server = asgi_server(
            host(create_app(url, access=header_access), prefix), root_path=root_path
        )
        headers = {"x-test-user": user} if user else {}
        return httpx.Client(base_url=server.base_url, headers=headers, timeout=30)

    return _mounted


def job(repo: ImportJobRepository, owner: str, **fields: Any) -> ImportJob:
    created = repo.create(ImportJob(source_type="csv", filename="f.csv", owner=owner, **fields))
    return repo.start(created.id, worker_id="w1")


def events(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    """Yield a stream's events as (event, JSON data)."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line:
            name, _, value = line.partition(":")
            fields[name] = fields.get(name, "") + value.strip()
        elif "data" in fields:
            yield fields.get("event", "message"), json.loads(fields["data"])
            fields = {}
        else:
            fields = {}  # a ping: a comment line alone


def first_events(response: httpx.Response, count: int) -> list[tuple[str, Any]]:
    """Return a stream's first ``count`` events as (event, JSON data), then stop reading."""
    return list(itertools.islice(events(response), count))


def within(seconds: float, stream: Iterator[tuple[str, Any]]) -> tuple[str, Any]:
    """Return the stream's next event, failing if none comes within ``seconds``.

    Pings keep a quiet stream's reads from timing out, so the read waits in
    a thread of its own.
    """
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(next, stream).result(timeout=seconds)
    finally:
        pool.shutdown(wait=False)


def test_every_link_asset_and_stream_stays_under_the_mount(
    mounted: Callable[..., httpx.Client], repo: ImportJobRepository
) -> None:
    parent, (chunk, _) = repo.create_chunked(
        ImportJob(source_type="csv", filename="big.csv", owner="tenant-a"),
        [Chunk(10, {"rows": [0, 10]}), Chunk(10, {"rows": [10, 20]})],
    )
    entries = [ImportValidationError(row, "q", "empty") for row in range(60)]
    repo.start(chunk.id, "w1")
    repo.advance(chunk.id, 60, 0, 60, entries=entries)
    with mounted("root") as http:
        pages = [http.get(f"{PREFIX}/"), http.get(f"{PREFIX}/jobs/{parent.id}")]
        pages += [http.get(f"{PREFIX}/jobs/{chunk.id}"), http.get(f"{PREFIX}/jobs/{uuid.uuid4()}")]
        links = [link for page in pages for link in LINK.findall(page.text)]
        assert {page.status_code for page in pages} == {200, 404}
        assert len(links) > 10
        assert all(link.startswith(f"{PREFIX}/") or link == PREFIX for link in links), links
        assert f'href="{PREFIX}/jobs/{chunk.id}?after=50" data-next' in pages[2].text
        # Each resolves under the mount: the assets, the API the script calls, the streams.
        for path in ("/static/app.js", "/static/style.css", f"/api/jobs/{parent.id}/errors.csv"):
            assert http.get(PREFIX + path).status_code == 200, path
        with http.stream("GET", f"{PREFIX}/api/events?id={parent.id}") as stream:
            [(_, first)] = first_events(stream, 1)
            assert first["id"] == str(parent.id)
        assert http.get(f"/jobs/{parent.id}").status_code == 404  # nothing at the host's root
        # An encoded slash in the prefix reaches the same mount; its links stay under it.
        encoded = http.get(PREFIX.replace("/imports", "%2Fimports") + "/")
        assert encoded.status_code in (200, 404)
        assert all(link.startswith(PREFIX) for link in LINK.findall(encoded.text))
    script = Path(__file__).resolve().parents[2] / "importjob" / "web" / "static" / "app.js"
    # The script builds its URLs on the page's base, never from the host's root.
    assert not re.search(r"""[`"']/(api|jobs|static)""", script.read_text())


def test_a_proxy_root_path_comes_before_the_prefix(mounted: Callable[..., httpx.Client]) -> None:
    with mounted("root", root_path="/proxy") as http:
        page = http.get(f"{PREFIX}/")
    assert page.status_code == 200
    links = LINK.findall(page.text)
    assert links
    assert all(link.startswith(f"/proxy{PREFIX}") for link in links), links


@pytest.mark.parametrize(
    "root_path",
    ["//evil.example", "/a/../..", "/a/./b", "https://evil.example", "/a//b", "evil", "/a/.."],
)
def test_a_root_path_that_would_leave_the_mount_is_refused(root_path: str) -> None:
    assert base_path({"root_path": root_path}) is None


def test_a_root_path_is_encoded_into_the_links() -> None:
    assert base_path({"root_path": ""}) == ""
    assert base_path({"root_path": "/"}) == ""
    assert base_path({"root_path": "/admin/imports/"}) == "/admin/imports"
    # Decoded already by the server: an encoded slash or dot stays one character of a segment.
    assert base_path({"root_path": "/a%2F..%2Fb"}) == "/a%252F..%252Fb"
    assert base_path({"root_path": '/a\\b/"c?d#e'}) == "/a%5Cb/%22c%3Fd%23e"


def test_a_hostile_proxy_root_path_is_400_and_links_nowhere(
    mounted: Callable[..., httpx.Client],
) -> None:
    with mounted("root", root_path="//evil.example") as http:
        answer = http.get(f"{PREFIX}/")
    assert answer.status_code == 400
    assert "evil" not in answer.text
    assert "href" not in answer.text


def test_a_refused_request_is_403_and_reads_nothing(
    mounted: Callable[..., httpx.Client], empty_db_url: str
) -> None:
    # A database without the schema: any read would be 503.
    unknown = uuid.uuid4()
    paths = ["/", f"/jobs/{unknown}", "/api/jobs", f"/api/jobs/{unknown}", "/metrics", "/healthz"]
    paths += [f"/api/jobs/{unknown}/errors.csv", f"/api/jobs/{unknown}/events", "/nowhere"]
    with mounted(url=empty_db_url) as anonymous:
        for path in paths:
            assert anonymous.get(PREFIX + path).status_code == 403, path
        assert anonymous.post(f"{PREFIX}/api/jobs/{unknown}/cancel").status_code == 403
        page = anonymous.get(f"{PREFIX}/")
        assert page.headers["content-type"].startswith("text/html")
        assert anonymous.get(f"{PREFIX}/api/jobs").json() == {"error": "forbidden"}
        assert anonymous.get(f"{PREFIX}/static/app.js").status_code == 200  # the package's own
        anonymous.headers["x-test-user"] = "root"
        assert anonymous.get(f"{PREFIX}/api/jobs").status_code == 503


def test_an_access_function_that_raises_is_500_logged(
    mounted: Callable[..., httpx.Client], caplog: pytest.LogCaptureFixture
) -> None:
    with mounted("boom") as http:
        api = http.get(f"{PREFIX}/api/jobs")
        page = http.get(f"{PREFIX}/")
    assert api.status_code == page.status_code == 500
    assert api.json() == {"error": "internal error"}
    for answer in (api, page):
        assert "Traceback" not in answer.text
        assert "user store" not in answer.text
    raised = [r for r in caplog.records if r.message.startswith("the access function raised")]
    assert len(raised) == 2
    assert raised[0].exc_info is not None
    assert "the user store is down" in str(raised[0].exc_info[1])


def test_an_access_function_that_answers_no_access_is_500(
    db_url: str, asgi_server: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    dashboard = create_app(db_url, access=lambda request: "alice")  # type: ignore[arg-type,return-value]
    with httpx.Client(base_url=asgi_server(host(dashboard)).base_url) as http:
        assert http.get(f"{PREFIX}/api/jobs").status_code == 500
    assert "the access function returned str, not an Access" in caplog.text


def test_a_user_sees_only_their_owners_jobs(
    mounted: Callable[..., httpx.Client], repo: ImportJobRepository
) -> None:
    mine = job(repo, "tenant-a", total_rows=2)
    theirs = job(repo, "tenant-b", total_rows=2)
    parent, _ = repo.create_chunked(
        ImportJob(source_type="csv", filename="big.csv", owner="tenant-b"), [Chunk(1, None)]
    )
    with mounted("alice") as alice, mounted("root") as root:
        listed = [j["id"] for j in alice.get(f"{PREFIX}/api/jobs").json()]
        assert listed == [str(mine.id)]
        assert alice.get(f"{PREFIX}/api/jobs", params={"owner": "tenant-b"}).json() == []
        assert len(root.get(f"{PREFIX}/api/jobs").json()) == 3
        page = alice.get(f"{PREFIX}/").text
        assert str(mine.id) in page
        assert str(theirs.id) not in page
        assert str(theirs.id) not in alice.get(f"{PREFIX}/", params={"owner": "tenant-b"}).text
        for job_id in (theirs.id, parent.id):
            for path in ("", "/chunks", "/errors", "/errors.csv", "/events"):
                assert alice.get(f"{PREFIX}/api/jobs/{job_id}{path}").status_code == 404, path
            assert alice.get(f"{PREFIX}/jobs/{job_id}").status_code == 404
        for path in ("", "/chunks", "/errors", "/errors.csv"):
            assert alice.get(f"{PREFIX}/api/jobs/{mine.id}{path}").status_code == 200, path
        assert root.get(f"{PREFIX}/api/jobs/{parent.id}/chunks").status_code == 200
        # The list's stream: another owner's job is gone, as a job that does not exist.
        ids = f"id={mine.id}&id={theirs.id}&id={uuid.uuid4()}"
        with alice.stream("GET", f"{PREFIX}/api/events?{ids}") as stream:
            seen = first_events(stream, 3)
        kinds = {data["id"]: name for name, data in seen}
        assert kinds[str(mine.id)] == "job"
        assert kinds[str(theirs.id)] == "gone"
        # Counts over every owner: for a user who sees them all.
        assert alice.get(f"{PREFIX}/metrics").status_code == 403
        assert root.get(f"{PREFIX}/metrics").status_code == 200
        assert alice.get(f"{PREFIX}/healthz").json()["status"] == "ok"


def test_a_user_s_status_counts_are_of_their_owner_s_jobs(
    mounted: Callable[..., httpx.Client], repo: ImportJobRepository
) -> None:
    job(repo, "tenant-a", total_rows=2)
    for _ in range(3):
        job(repo, "tenant-b", total_rows=2)

    def processing(page: str) -> str:
        found = re.search(r'data-status-count="processing".*?<strong>([^<]*)</strong>', page, re.S)
        assert found, page
        return found[1]

    with mounted("alice") as alice, mounted("root") as root:
        page = alice.get(f"{PREFIX}/").text
        assert processing(page) == "1"
        assert 'name="owner"' not in page  # a filter for those who see every owner
        assert processing(alice.get(f"{PREFIX}/", params={"owner": "tenant-b"}).text) == "0"
        every = root.get(f"{PREFIX}/").text
        assert processing(every) == "4"
        assert 'name="owner"' in every
        assert processing(root.get(f"{PREFIX}/", params={"owner": "tenant-b"}).text) == "3"
        assert f'href="{PREFIX}/?status=processing"' in every


def test_the_list_s_stream_pushes_the_new_jobs_of_the_user_s_owner_only(
    mounted: Callable[..., httpx.Client], repo: ImportJobRepository
) -> None:
    shown = job(repo, "tenant-a")
    with (
        mounted("alice") as alice,
        alice.stream("GET", f"{PREFIX}/api/jobs/events") as stream,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        pushed = events(stream)
        # First what the list shows now.
        assert within(NEW_JOB_SECONDS, pushed)[1]["id"] == str(shown.id)
        theirs = repo.create(ImportJob(source_type="csv", filename="f.csv", owner="tenant-b"))
        mine = repo.create(ImportJob(source_type="csv", filename="f.csv", owner="tenant-a"))
        name, data = within(NEW_JOB_SECONDS, pushed)
        # Another owner's job, created before: never told of, not even that it exists.
        assert (name, data["id"]) == ("job", str(mine.id))
        assert str(theirs.id) != data["id"]
        # As the list gives it.
        assert set(data) == set(alice.get(f"{PREFIX}/api/jobs").json()[0])


def test_the_list_s_stream_pushes_only_the_new_jobs_its_filters_match(
    mounted: Callable[..., httpx.Client], repo: ImportJobRepository, conn: Any
) -> None:
    def created(owner: str, **fields: Any) -> ImportJob:
        return repo.create(ImportJob(source_type="csv", filename="f.csv", owner=owner, **fields))

    filters = {"owner": "tenant-a", "meta.ds": "faq", "status": "pending"}
    with mounted("root") as root:
        with root.stream("GET", f"{PREFIX}/api/jobs/events", params=filters) as stream:
            pushed = events(stream)
            created("tenant-b", metadata={"ds": "faq"})
            created("tenant-a", metadata={"ds": "other"})
            with conn.transaction():  # pending when created, processing when seen
                repo.start(created("tenant-a", metadata={"ds": "faq"}).id, worker_id="w1")
            match = created("tenant-a", metadata={"ds": "faq", "n": 1})
            # The others came first: had one matched, it would be here instead.
            name, data = within(NEW_JOB_SECONDS, pushed)
            assert (name, data["id"], data["status"]) == ("job", str(match.id), "pending")
        # A bad filter is refused before any stream starts.
        refused = root.get(f"{PREFIX}/api/jobs/events", params={"status": "nope"})
        assert (refused.status_code, refused.json()["field"]) == (400, "status")


def test_hostile_owners_users_and_metadata_are_escaped_under_the_mount(
    mounted: Callable[..., httpx.Client],
    repo: ImportJobRepository,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hostile = job(repo, HOSTILE, metadata={HOSTILE: HOSTILE})
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    with mounted("mallory") as http:
        for path in ("/", f"/jobs/{hostile.id}", f"/?owner={HOSTILE}"):
            page = http.get(PREFIX + path)
            assert page.status_code == 200
            assert str(hostile.id) in page.text
            assert "<script>window" not in page.text
            assert "<img" not in page.text
            assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page.text
        [listed] = http.get(f"{PREFIX}/api/jobs").json()
        assert (listed["owner"], listed["metadata"]) == (HOSTILE, {HOSTILE: HOSTILE})
        assert http.post(f"{PREFIX}/api/jobs/{hostile.id}/cancel").status_code == 403
    [record] = [r for r in caplog.records if r.name == AUDIT_LOGGER]
    # One line, whatever the user's name holds: no forged record after it.
    assert "\n" not in record.getMessage()
    assert record.user == USERS["mallory"].user  # type: ignore[attr-defined]


def test_another_owners_job_answers_byte_for_byte_as_a_missing_one(
    mounted: Callable[..., httpx.Client], repo: ImportJobRepository, conn: Any
) -> None:
    theirs = job(repo, "tenant-b")
    repo.advance(theirs.id, 1, 0, 1, entries=[ImportValidationError(1, "q", "empty")])
    paths = [f"/jobs/{theirs.id}", f"/jobs/{theirs.id}?after=1"]
    paths += [f"/api/jobs/{theirs.id}{tail}" for tail in ("", "/chunks", "/errors")]
    paths += [f"/api/jobs/{theirs.id}/errors.csv", f"/api/jobs/{theirs.id}/events"]
    kept = ("content-type", "content-length", "content-disposition", "cache-control")

    def answers(http: httpx.Client) -> list[tuple[int, dict[str, str], bytes]]:
        got = [http.get(PREFIX + path) for path in paths]
        got.append(http.post(f"{PREFIX}/api/jobs/{theirs.id}/cancel"))
        return [(a.status_code, {k: a.headers.get(k, "") for k in kept}, a.content) for a in got]

    with mounted("alice") as alice:
        hidden = answers(alice)
        conn.execute("DELETE FROM import_job WHERE id = %s", (theirs.id,))
        missing = answers(alice)
    assert {status for status, _, _ in hidden} == {404}
    assert hidden == missing


def test_cancel_is_the_access_s_to_allow_and_every_attempt_is_audited(
    mounted: Callable[..., httpx.Client],
    repo: ImportJobRepository,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mine = job(repo, "tenant-a")
    theirs = job(repo, "tenant-b")
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    with mounted("alice") as alice, mounted("bob") as bob:
        page = bob.get(f"{PREFIX}/jobs/{theirs.id}").text
        assert "data-cancel" not in page  # bob may not cancel: no button
        refused = bob.post(f"{PREFIX}/api/jobs/{theirs.id}/cancel")
        assert refused.status_code == 403
        assert refused.json() == {"error": "you may not cancel import jobs"}
        assert alice.post(f"{PREFIX}/api/jobs/{theirs.id}/cancel").status_code == 404
        cross = alice.post(
            f"{PREFIX}/api/jobs/{mine.id}/cancel", headers={"sec-fetch-site": "cross-site"}
        )
        assert cross.status_code == 403
        page = alice.get(f"{PREFIX}/jobs/{mine.id}").text
        assert "data-cancel" in page
        assert "data-asks-token" not in page  # the session says who: no token to ask for
        done = alice.post(
            f"{PREFIX}/api/jobs/{mine.id}/cancel", headers={"sec-fetch-site": "same-origin"}
        )
        assert done.status_code == 200
        assert done.json()["status"] == "cancelled"
        assert alice.post(f"{PREFIX}/api/jobs/{mine.id}/cancel").status_code == 409
    status = repo.get_by_id(theirs.id).status  # type: ignore[union-attr]
    assert status is ImportJobStatus.PROCESSING
    records = [r for r in caplog.records if r.name == AUDIT_LOGGER]
    assert [(r.user, r.job_id, r.owner, r.result) for r in records[:-1]] == [  # type: ignore[attr-defined]
        ("bob", str(theirs.id), "tenant-b", "refused: no right to cancel"),
        ("alice", str(theirs.id), "tenant-b", "refused: another owner's job"),
        ("alice", str(mine.id), "tenant-a", "refused: a cross-site request"),
        ("alice", str(mine.id), "tenant-a", "allowed"),
    ]
    ended = records[-1]
    assert (ended.user, ended.job_id, ended.owner) == ("alice", str(mine.id), "tenant-a")  # type: ignore[attr-defined]
    assert ended.result.startswith("refused: ")  # type: ignore[attr-defined]
    assert "cancelled" in ended.result  # type: ignore[attr-defined]
    assert {r.action for r in records} == {"cancel"}  # type: ignore[attr-defined]
    assert [r.levelno for r in records] == [logging.WARNING] * 3 + [logging.INFO, logging.WARNING]
    assert records[3].getMessage() == f"cancel allowed: user='alice' job={mine.id} owner='tenant-a'"


def test_a_cancel_of_an_ended_chunked_import_is_409_as_of_any_ended_job(
    mounted: Callable[..., httpx.Client], repo: ImportJobRepository
) -> None:
    parent, (chunk,) = repo.create_chunked(
        ImportJob(source_type="csv", filename="big.csv", owner="tenant-a"), [Chunk(1)]
    )
    repo.start(chunk.id, "w1")
    repo.update_status(chunk.id, ImportJobStatus.COMPLETED)
    with mounted("alice") as alice:
        refused = alice.post(f"{PREFIX}/api/jobs/{parent.id}/cancel")
    assert refused.status_code == 409
    assert "completed" in refused.json()["error"]
    assert "field" not in refused.json()


def test_the_openapi_document_s_server_is_the_mount_and_the_gate_applies(
    mounted: Callable[..., httpx.Client],
) -> None:
    with mounted("bob", root_path="/proxy") as bob, mounted(root_path="/proxy") as nobody:
        document = bob.get(f"{PREFIX}/api/openapi.json")
        refused = nobody.get(f"{PREFIX}/api/openapi.json")
    assert document.status_code == 200
    assert document.json()["openapi"] == "3.1.0"
    assert document.json()["servers"] == [{"url": f"/proxy{PREFIX}"}]
    assert refused.status_code == 403


def test_a_dashboard_whose_lifespan_did_not_run_says_so(
    db_url: str, asgi_server: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    dashboard = create_app(db_url, access=header_access)
    forgotten = Starlette(routes=[Mount(PREFIX, app=dashboard)])  # no lifespan entering it
    with httpx.Client(base_url=asgi_server(forgotten).base_url) as http:
        answer = http.get(f"{PREFIX}/api/jobs", headers={"x-test-user": "root"})
    assert answer.status_code == 503
    assert answer.json() == {"error": "the dashboard is not started"}
    assert "enter `dashboard.lifespan()` in the host's lifespan" in caplog.text


def _sessions(conn: Any) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name LIKE 'importjob serve%'"
    ).fetchone()
    return int(row[0])


def _sessions_end(conn: Any) -> int:
    """Return the dashboard's sessions once they have ended, or after 30 s those left."""
    # A backend leaves pg_stat_activity just after its client has closed the connection.
    deadline = time.monotonic() + 30
    while (left := _sessions(conn)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_a_dashboard_runs_one_lifespan_at_a_time(db_url: str, conn: Any) -> None:
    dashboard = create_app(db_url)

    async def run() -> None:
        async with dashboard.lifespan():
            with pytest.raises(RuntimeError, match="running already"):
                async with dashboard.lifespan():
                    pass
        async with dashboard.lifespan():  # and again once it ended
            assert dashboard.state.started

    asyncio.run(run())
    assert not dashboard.state.started
    assert _sessions_end(conn) == 0  # pool and listener closed with the block


def test_the_host_s_lifespan_opens_and_closes_the_dashboard_s_connections(
    db_url: str, asgi_server: Serve, conn: Any
) -> None:
    server = asgi_server(host(create_app(db_url, access=header_access)))
    with httpx.Client(base_url=server.base_url, headers={"x-test-user": "root"}) as http:
        assert http.get(f"{PREFIX}/healthz").json() == {"status": "ok", "listening": True}
    assert _sessions(conn) >= 2  # the pool's and the listener's
    server.stop()
    assert _sessions_end(conn) == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"owner": None}, "owner"),
        ({"owner": ""}, "owner"),
        ({"owner": "a\nb"}, "owner"),
        ({"owner": "a", "can_cancel": 1}, "can_cancel"),
        ({"all_owners": "yes"}, "all_owners"),
        ({"user": 7, "all_owners": True}, "user"),
    ],
)
def test_a_bad_access_is_refused_naming_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidFieldError) as refused:
        Access(**fields)
    assert refused.value.field == field


def test_create_app_takes_access_or_the_token_never_both(db_url: str) -> None:
    with pytest.raises(InvalidFieldError) as refused:
        create_app(db_url, access=TokenAccess(), allow_cancel=True, token="t")  # noqa: S106 - a token under test
    assert refused.value.field == "access"
    with pytest.raises(InvalidFieldError) as refused:
        create_app(db_url, allow_cancel=True)
    assert refused.value.field == "token"
    # What serve gave create_app before the access hook: TokenAccess through it.
    assert create_app(db_url, allow_cancel=True, token="t").state.asks_token  # noqa: S106
    assert not create_app(db_url, access=TokenAccess()).state.asks_token
    with pytest.raises(InvalidFieldError) as refused:
        TokenAccess("")
    assert refused.value.field == "token"


def _request(client: tuple[str, int] | None, method: str = "GET", *given: str) -> Request:
    headers = [(b"x-importjob-token", token.encode()) for token in given]
    scope = {"type": "http", "method": method, "path": "/", "headers": headers, "client": client}
    return Request(scope)


def test_serve_s_access_is_every_job_loopback_only_a_cancel_with_the_token() -> None:
    local = TokenAccess("tok", loopback_only=True)
    assert local(_request(("10.1.2.3", 5000))) is None
    assert local(_request(None)) is None
    # A page shows the button, which asks for the token; the POST must carry it.
    assert local(_request(("::1", 5000))) == Access(all_owners=True, can_cancel=True)
    assert local(_request(("127.0.0.1", 5000), "POST")) == Access(all_owners=True)
    allowed = local(_request(("127.0.0.1", 5000), "POST", "tok"))
    assert allowed == Access(all_owners=True, can_cancel=True)
    assert local(_request(("127.0.0.1", 5000), "POST", "tok2")) == Access(all_owners=True)
    anywhere = TokenAccess()
    assert anywhere(_request(("10.1.2.3", 5000), "POST", "tok")) == Access(all_owners=True)
