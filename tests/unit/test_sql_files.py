"""The SQL is data: one parameterized statement per file, no SQL built from values."""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path

import pytest

from importjob import apply_migrations, rollback_migrations
from importjob._queries import queries

SQL = Path(__file__).resolve().parents[2] / "sql"
PACKAGE = Path(__file__).resolve().parents[2] / "importjob"
PARAMETER = re.compile(r"%\((\w+)\)s")


@pytest.mark.parametrize("path", sorted(SQL.glob("*.sql")), ids=lambda p: p.name)
def test_each_sql_file_is_one_parameterized_statement(path: Path) -> None:
    text = path.read_text()
    name = path.stem
    # A header saying what it does and what it returns, under the file's name.
    assert text.startswith(f"-- {name}: "), name
    body = "\n".join(line.split("--")[0] for line in text.splitlines()).strip()
    assert body.endswith(";")
    assert ";" not in body[:-1], f"{name}: one statement per file"
    # Values only as named parameters, each with an explicit type.
    assert not re.search(r"(?<!%)%s", body)
    for match in PARAMETER.finditer(body):
        assert body[match.end() : match.end() + 2] == "::", f"{name}: {match.group(0)} uncast"
    assert re.sub(PARAMETER, "", body).count("%") == body.count("%%") * 2
    # Identifiers only through psycopg.sql.Identifier, in the two files that need one.
    placeholders = re.findall(r"\{(\w+)\}", body)
    assert placeholders == (["channel"] if name in {"listen", "unlisten"} else [])
    # Loaded as the same statement without its comment lines and
    # indentation, small enough for psycopg to cache the conversion of its
    # placeholders (it parses a text over 4 KiB again at every call).
    code = [line for line in text.splitlines() if not line.strip().startswith("--")]
    loaded = queries()[name]
    assert loaded.split() == [word for line in code for word in line.split()]
    assert len(loaded.encode()) <= 4096, name
    # No string literal spans lines, so stripping lines keeps every literal.
    assert all(line.split("--")[0].count("'") % 2 == 0 for line in code), name


def test_no_sql_text_is_built_from_values_in_the_package() -> None:
    keywords = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|LISTEN|FROM|WHERE)\b")
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                literal = "".join(
                    str(part.value) for part in node.values if isinstance(part, ast.Constant)
                )
                assert not keywords.search(literal), f"{path.name}:{node.lineno} f-string SQL"
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
                for side in (node.left, node.right):
                    if isinstance(side, ast.Constant) and isinstance(side.value, str):
                        assert not keywords.search(side.value), f"{path.name}:{node.lineno}"
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "format":
                target = node.func.value  # type: ignore[attr-defined]
                if isinstance(target, ast.Constant) and isinstance(target.value, str):
                    assert not keywords.search(target.value), f"{path.name}:{node.lineno}"


def test_passwords_never_reach_the_logs(
    empty_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The test server trusts every connection, so any password gets in.
    with_password = empty_db_url.replace("postgres@", "postgres:Sup3rS3cret@", 1)
    assert "Sup3rS3cret" in with_password
    caplog.set_level(logging.DEBUG)
    apply_migrations(with_password)
    rollback_migrations(with_password, count=None)
    logged = "\n".join(f"{record.getMessage()} {record.args!r}" for record in caplog.records)
    assert caplog.records  # yoyo does log: the check has something to read
    assert "Sup3rS3cret" not in logged
