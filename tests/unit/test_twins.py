"""The sync and async twins stay one design: same names, signatures and bodies.

psycopg generates its sync code from the async code; here the twins are
written by hand, so this test holds each pair to each other: every method of
one has its twin in the other, with the same signature, and the same body
once ``async``/``await`` are dropped and the async names are mapped to their
sync ones. Only the idle heartbeat differs by nature (a thread against a
task), and is named below.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from collections.abc import Callable
from typing import Any

import pytest

from importjob import AsyncImportJobRepository, AsyncTracker, ImportJobRepository, Tracker

# The async spelling of a name, and its sync twin, as whole words.
ASYNC_TO_SYNC = {
    "AsyncImportJobRepository": "ImportJobRepository",
    "AsyncTracker": "Tracker",
    "psycopg.AsyncConnection.connect": "psycopg.connect",
    "psycopg.AsyncConnection": "psycopg.Connection",
    "psycopg.AsyncCursor": "psycopg.Cursor",
    "psycopg.AsyncCopy": "psycopg.Copy",
    "AsyncGenerator[ImportJob, None]": "Generator[ImportJob, None, None]",
    "AsyncIterator": "Iterator",
    "Awaitable[_T]": "_T",
    "asyncio.sleep": "time.sleep",
    "asyncio.Lock": "threading.Lock",
    "contextlib.asynccontextmanager": "contextlib.contextmanager",
    "AsyncWatch": "Watch",
    "Awaitable[_T]]": "_T]",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "anext": "next",
    "aclose": "close",
}
_WORDS = re.compile("|".join(rf"(?<![\w.]){re.escape(name)}(?!\w)" for name in ASYNC_TO_SYNC))

PAIRS = [(ImportJobRepository, AsyncImportJobRepository), (Tracker, AsyncTracker)]
# The idle heartbeat: a thread in the sync tracker, a task in the async one.
DIFFERENT_BY_NATURE = {"_start_beating", "_stop_beating", "_beat"}


def _sync_name(text: str) -> str:
    return _WORDS.sub(lambda match: ASYNC_TO_SYNC[match.group(0)], text)


def _members(cls: type) -> dict[str, Any]:
    """Return what the class itself defines: methods and properties, by their sync name."""
    return {
        _sync_name(name): member
        for name, member in vars(cls).items()
        if callable(member) or isinstance(member, property | staticmethod)
    }


def _function(member: Any) -> Callable[..., Any]:
    if isinstance(member, property):
        assert member.fget is not None
        return member.fget
    if isinstance(member, staticmethod):
        return member.__func__
    return member  # type: ignore[no-any-return]


class _Synced(ast.NodeTransformer):
    """Make an async function's tree into the sync one it stands for."""

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.FunctionDef:
        self.generic_visit(node)
        fields = {name: getattr(node, name) for name in node._fields}
        return ast.FunctionDef(**fields)

    def visit_Await(self, node: ast.Await) -> ast.expr:
        return self.visit(node.value)  # type: ignore[no-any-return]

    def visit_AsyncWith(self, node: ast.AsyncWith) -> ast.With:
        self.generic_visit(node)
        return ast.With(items=node.items, body=node.body, type_comment=node.type_comment)

    def visit_AsyncFor(self, node: ast.AsyncFor) -> ast.For:
        self.generic_visit(node)
        return ast.For(
            target=node.target,
            iter=node.iter,
            body=node.body,
            orelse=node.orelse,
            type_comment=node.type_comment,
        )


def _body(function: Callable[..., Any]) -> str:
    """Return the function's code without its docstring, async made sync, names mapped."""
    [tree] = ast.parse(textwrap.dedent(inspect.getsource(function))).body
    assert isinstance(tree, ast.FunctionDef | ast.AsyncFunctionDef)
    first = tree.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        tree.body = tree.body[1:] or [ast.Pass()]
    synced = ast.fix_missing_locations(_Synced().visit(tree))
    return _sync_name(ast.unparse(synced))


def _signature(function: Callable[..., Any]) -> list[tuple[str, Any, str, str]]:
    return [
        (name, param.kind, _sync_name(repr(param.default)), _sync_name(str(param.annotation)))
        for name, param in inspect.signature(function).parameters.items()
    ] + [("return", None, "", _sync_name(str(inspect.signature(function).return_annotation)))]


@pytest.mark.parametrize(("sync", "twin"), PAIRS, ids=lambda cls: cls.__name__)
def test_the_twins_have_the_same_names(sync: type, twin: type) -> None:
    assert sorted(_members(twin)) == sorted(_members(sync))


@pytest.mark.parametrize(("sync", "twin"), PAIRS, ids=lambda cls: cls.__name__)
def test_the_twins_have_the_same_signatures(sync: type, twin: type) -> None:
    theirs = _members(twin)
    for name, member in _members(sync).items():
        assert _signature(_function(theirs[name])) == _signature(_function(member)), name


@pytest.mark.parametrize(("sync", "twin"), PAIRS, ids=lambda cls: cls.__name__)
def test_the_twins_have_the_same_bodies(sync: type, twin: type) -> None:
    theirs = _members(twin)
    differ = [
        name
        for name, member in _members(sync).items()
        if name not in DIFFERENT_BY_NATURE
        and _body(_function(theirs[name])) != _body(_function(member))
    ]
    assert differ == []


@pytest.mark.parametrize(("sync", "twin"), PAIRS, ids=lambda cls: cls.__name__)
def test_every_public_twin_is_documented(sync: type, twin: type) -> None:
    for cls in (sync, twin):
        for name, member in _members(cls).items():
            if not name.startswith("_"):
                assert inspect.getdoc(_function(member)), f"{cls.__name__}.{name}"


def test_the_check_sees_a_difference() -> None:
    # The normaliser maps names and drops async; it does not hide a real change.
    def one(self: Any) -> Any:
        return self.count("a")

    async def other(self: Any) -> Any:
        return await self.count("b")

    async def same(self: Any) -> Any:
        return await self.count("a")

    assert _body(one) != _body(other)
    assert _body(one).replace("one", "same") == _body(same)
