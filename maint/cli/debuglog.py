"""The debug log: where an unexpected error's traceback goes, with no secret in it.

It lives where the store is (beside the SQLite file, else in the state directory: the project's ``.maint/``
or the user's, see :mod:`maint.config.discovery`), because
that is where the records it talks about already are and who may read them, and is mode 0600: a
traceback holds command lines, SQL statements and URLs. ``$MAINT_DEBUG_LOG`` names another file.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from maint import __version__
from maint.files import private_directory
from maint.secrets import mask_url_credentials, redact_argv

FILE_NAME = "maint-debug.log"
# SQLAlchemy writes a failed statement's parameters (argv, outputs, variables) into its message.
SQL_PARAMETERS = re.compile(r"\[parameters: .*")
PARAMETERS_HIDDEN = "[SQL parameters hidden]"


def store_url(argv: Sequence[str]) -> str | None:
    """The store URL the command line names (the last ``--db URL`` or ``--db=URL``), else $MAINT_DB."""
    found = None
    for index, argument in enumerate(argv):
        if argument == "--db" and index + 1 < len(argv):
            found = argv[index + 1]
        elif argument.startswith("--db="):
            found = argument.partition("=")[2]
    return found or os.environ.get("MAINT_DB") or None


def debug_log_path(argv: Sequence[str], project_dir: Path | None = None) -> Path:
    """Where the traceback of an unexpected error is written: ``$MAINT_DEBUG_LOG``, else beside the
    SQLite file of the store in use (``--db``, ``$MAINT_DB``, maint.yml's ``store``, the default), else
    (a server store, or none can be found) ``project_dir``'s ``.maint/``, by default the state directory in use.
    Raises nothing."""
    configured = os.environ.get("MAINT_DEBUG_LOG")
    if configured:
        return Path(configured)
    project = project_dir or Path.cwd()
    state = project / ".maint"
    try:
        if project_dir is None:
            from maint.config import discover

            state = discover().state_dir
        from maint.store import resolve_url
        from maint.store.urls import sqlite_path

        database = sqlite_path(resolve_url(store_url(argv)))
        if database is not None and (directory := (project / database).parent).is_dir():
            return directory / FILE_NAME
    except Exception:  # the store may be what failed (a bad URL, a broken maint.yml): keep to the default
        pass
    return state / FILE_NAME


def safe_error_text(error: BaseException) -> str:
    """``str(error)`` without SQL statement parameters and URL passwords; raises nothing."""
    _hide_sql_parameters(error)
    return mask_url_credentials(SQL_PARAMETERS.sub(PARAMETERS_HIDDEN, str(error)))


def write_traceback(error: BaseException, argv: Sequence[str], path: Path) -> None:
    """Append the command line (secrets masked) and ``error``'s traceback (SQL parameters hidden, URL
    passwords masked) to ``path``, created mode 0600 (an existing file's wider mode is narrowed
    first). Raises OSError when it cannot be written or its mode cannot be fixed."""
    _hide_sql_parameters(error)
    text = "".join(traceback.format_exception(error))
    text = mask_url_credentials(SQL_PARAMETERS.sub(PARAMETERS_HIDDEN, text))
    # The traceback quotes the command line where it failed, not the secret values passed on it.
    for original, shown in zip(argv, redact_argv(argv), strict=True):
        if original != shown and len(original) > 3:
            text = text.replace(original, shown)
    if not path.parent.exists() and not os.environ.get("MAINT_DEBUG_LOG"):
        private_directory(path.parent)  # maint's own state directory
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    if not os.environ.get("MAINT_DEBUG_LOG"):
        flags |= os.O_NOFOLLOW  # maint's own path: never write through a link planted there
    descriptor = os.open(path, flags, 0o600)
    try:
        if stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "a", encoding="utf-8", closefd=False) as handle:
            handle.write(f"maint {__version__} argv={redact_argv(argv)!r}\n{text}")
    finally:
        os.close(descriptor)


def _hide_sql_parameters(error: BaseException) -> None:
    # Every SQLAlchemy statement error in the chain renders "[SQL parameters hidden ...]" instead.
    exc = sys.modules.get("sqlalchemy.exc")
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if exc is not None and isinstance(current, exc.StatementError):
            current.hide_parameters = True
        current = current.__cause__ or current.__context__
