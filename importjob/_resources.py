"""Find the data directories (``sql/``, ``migrations/``) the package ships."""

from __future__ import annotations

import importlib.resources
from importlib.resources.abc import Traversable
from pathlib import Path


def resource_dir(name: str) -> Traversable:
    """Return the package's data directory ``name``.

    An installed wheel holds it as ``importjob/<name>``. A checkout (or an
    editable install) keeps it at the repository root, beside the package.
    """
    packaged = importlib.resources.files("importjob") / name
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / name
