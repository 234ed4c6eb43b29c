"""The documentation: every Python example runs, and what the pages name exists.

Each ```python block of ``docs/**/*.md`` and ``README.md`` runs on its own, in
a fresh migrated database (its URL in ``DATABASE_URL``, as a reader's shell
would have it) and an empty working directory: an example that raises fails
its test. Blocks that show a shell session are ```sh or ```console and do not
run. The reference must render every public name, the guarantees must name
tests that exist, and the least-privilege page must grant what the privilege
test grants.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

import importjob
import importjob.exceptions
import importjob.web

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]
_FENCE = re.compile(r"^```(?P<lang>[\w-]*)[^\n]*\n(?P<code>.*?)^```\s*$", re.MULTILINE | re.DOTALL)


def _blocks(lang: str) -> list[tuple[str, str]]:
    """Return (where, code) for every fenced block of ``lang`` in the pages."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            if match["lang"] == lang:
                line = text.count("\n", 0, match.start()) + 1
                found.append((f"{page.relative_to(ROOT)}:{line}", match["code"]))
    return found


EXAMPLES = _blocks("python")


def test_the_pages_hold_examples() -> None:
    # An empty collection would pass every parametrized case below by having none.
    assert len(EXAMPLES) >= 10
    assert any(where.startswith("README.md") for where, _ in EXAMPLES)


@pytest.mark.parametrize(("where", "code"), EXAMPLES, ids=[where for where, _ in EXAMPLES])
def test_example_runs(
    where: str, code: str, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "__docs_example__"}
    exec(compile(code, where, "exec"), namespace)  # noqa: S102 - the examples are ours


def _directives() -> set[str]:
    """Return the names the reference renders with ``:::`` directives."""
    names = set()
    for page in (DOCS / "reference").glob("*.md"):
        names.update(re.findall(r"^::: ([\w.]+)\s*$", page.read_text(encoding="utf-8"), re.M))
    return names


@pytest.mark.parametrize("module", [importjob, importjob.exceptions, importjob.web])
def test_the_reference_renders_every_public_name(module: Any) -> None:
    rendered = _directives()
    if module.__name__ in rendered:  # the whole module, every documented member
        return
    missing = [n for n in module.__all__ if f"{module.__name__}.{n}" not in rendered]
    assert not missing


def test_the_guarantees_name_tests_that_exist() -> None:
    text = (DOCS / "explanation" / "guarantees.md").read_text(encoding="utf-8")
    named = 0
    for cell in re.findall(r"\| ([^|]*`[^|]*) \|$", text, re.M):
        current: Path | None = None
        for ref in re.findall(r"`([^`]*::[^`]*)`", cell):
            path, _, test = ref.partition("::")
            if path:
                current = ROOT / "tests" / path
            assert current is not None, ref
            defined = {
                node.name
                for node in ast.walk(ast.parse(current.read_text(encoding="utf-8")))
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            }
            assert test in defined, f"{ref} in {current.relative_to(ROOT)}"
            named += 1
    assert named > 50


def test_the_least_privilege_page_grants_what_the_test_grants() -> None:
    source = (ROOT / "tests" / "integration" / "test_privileges.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    grants = next(
        ast.literal_eval(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and node.target.id == "APP_GRANTS"
        and node.value is not None
    )
    page = "".join(
        code for where, code in _blocks("sql") if where.startswith("docs/howto/privileges.md")
    )
    shown = [line.rstrip(";") for line in page.splitlines() if line.startswith("GRANT")]
    assert shown == [grant.format(app="importjob_app") for grant in grants]
