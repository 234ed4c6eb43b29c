"""Let the docs link to files of the repository outside ``docs/`` by their path on disk.

A page links to ``../../migrations/schema.sql`` so that the link works where
the Markdown is read (an editor, a forge). MkDocs resolves links inside
``docs/`` only, so this hook copies each such file that exists into the site
under ``repository/`` and points the link there. A link to a file that does
not exist is left alone, and ``mkdocs build --strict`` fails on it. Markdown
files are left alone too: the site would render them as pages of its own.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

_ROOT = Path(__file__).resolve().parents[2]
_PREFIX = "repository"
_LINK = re.compile(r"\]\((?P<target>\.\./[^)#\s]+)(?P<anchor>#[^)\s]*)?\)")


def _outside(page_uri: str, target: str) -> str | None:
    """Return the repository path ``target`` names from a page, if it leaves ``docs/``."""
    joined = posixpath.normpath(posixpath.join("docs", posixpath.dirname(page_uri), target))
    if joined.startswith("docs/") or joined.startswith("..") or joined.endswith(".md"):
        return None
    return joined if (_ROOT / joined).is_file() else None


def _linked(docs_dir: Path) -> set[str]:
    """Return every repository file outside ``docs/`` that a page links to."""
    found = set()
    for page in docs_dir.rglob("*.md"):
        page_uri = page.relative_to(docs_dir).as_posix()
        for match in _LINK.finditer(page.read_text(encoding="utf-8")):
            path = _outside(page_uri, match["target"])
            if path is not None:
                found.add(path)
    return found


def on_files(files: Files, config: Any) -> Files:
    """Add the repository files the pages link to, as they are on disk."""
    for path in sorted(_linked(Path(config["docs_dir"]))):
        files.append(File.generated(config, f"{_PREFIX}/{path}", abs_src_path=str(_ROOT / path)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Point each link to a repository file at its copy in the site."""
    page_uri = page.file.src_uri

    def relink(match: re.Match[str]) -> str:
        path = _outside(page_uri, match["target"])
        if path is None:
            return match[0]
        copy = posixpath.relpath(f"{_PREFIX}/{path}", posixpath.dirname(page_uri) or ".")
        return f"]({copy}{match['anchor'] or ''})"

    return _LINK.sub(relink, markdown)
