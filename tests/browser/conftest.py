"""The browser every test of the pages drives: Debian's Chromium, through Playwright."""

from __future__ import annotations

import contextlib
import itertools
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--screenshots",
        metavar="DIR",
        help="write the docs' screenshots into DIR (docs/ to update them), not a temporary one",
    )


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Return headless Chromium, the distribution's (never one Playwright downloads)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "no chromium on PATH: apt-get install chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, headless=True)
        yield launched
        launched.close()


Gated = Callable[..., contextlib.AbstractContextManager[Path]]
"""``gated(script, *args, exit_code=0)``: see the `gated` fixture."""


@pytest.fixture
def gated(tmp_path: Path) -> Gated:
    """Return a function that runs a script of this folder held at a gate, as a block.

    ``with gated("importer.py", *args) as gate:`` starts ``python SCRIPT ARGS... GATE``,
    which holds at half of its work until the file GATE exists; the block
    touches ``gate`` to let it go on. Leaving the block lets it go too, and
    expects the process to exit with ``exit_code``.
    """
    names = itertools.count()

    @contextlib.contextmanager
    def run(script: str, *args: object, exit_code: int = 0) -> Iterator[Path]:
        gate = tmp_path / f"go-on-{next(names)}"
        path = Path(__file__).with_name(script)
        process = subprocess.Popen([sys.executable, str(path), *map(str, args), str(gate)])
        try:
            yield gate
        finally:
            gate.touch()
            assert process.wait(timeout=60) == exit_code

    return run
