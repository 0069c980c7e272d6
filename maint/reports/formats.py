"""The report formats of ``maint report`` and writing a report where it was asked for.

A report never replaces what it should not: the store (maint's own or any maint store), or a file
that is not an earlier maint report. Each format carries a marker (HTML: ``<meta name="generator"
content="maint ...">``, JSON: a ``generator`` key, JUnit: a ``<!-- generator: maint ... -->``
comment, CSV: maint's header row) by which an earlier report is recognised and replaced.
"""

from __future__ import annotations

import errno
import json
import os
import re
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from maint import __version__
from maint.errors import BadInput
from maint.reports.documents import SCHEMA_VERSION
from maint.terminal import escape_controls

FORMATS = ("html", "json", "junit", "csv")
GENERATOR = f"maint {__version__}"
# How an earlier maint report starts (looked for in its first bytes): HTML, JSON, JUnit, CSV.
REPORT_MARKERS = (
    re.compile(rb'<meta name="generator" content="maint[ "]'),
    re.compile(rb'^\{\s*"generator": "maint[ "]'),
    re.compile(rb"^<\?xml[^>]*\?>\s*<!-- generator: maint[ -]"),
)
HEAD_BYTES = 8192
SQLITE_HEADER = b"SQLite format 3\x00"
# Tables only a maint store has (every maint store has them all).
STORE_TABLES = frozenset({"runs", "results", "ledger"})
STORE_FILE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def render_report(document: Mapping[str, Any], output_format: str, project_dir: Path) -> str:
    """The text of a report document (:func:`maint.reports.gather.report_document`) in ``output_format``.

    ``project_dir`` is where a project's ``templates/report.html.j2`` overrides the built-in page.
    Returns the text; raises BadInput for an unknown format or a broken project template.
    """
    if output_format == "json":
        # The generator first: an earlier report is recognised by it (REPORT_MARKERS).
        versioned = {"generator": GENERATOR, "schema_version": SCHEMA_VERSION, **document}
        text = json.dumps(versioned, indent=2, sort_keys=False, default=str)
        return escape_controls(text) + "\n"  # DEL, which json leaves raw, as \u007f
    if output_format == "csv":
        from maint.reports.spreadsheet import results_csv

        return results_csv(document)
    if output_format == "junit":
        from maint.reports.junit import junit_xml

        return junit_xml(document)
    if output_format == "html":
        from maint.reports.html import html_report

        page = html_report(document, project_dir)
        if not REPORT_MARKERS[0].search(page[:HEAD_BYTES].encode()):
            # A project's own template without the generator tag still makes a recognisable report.
            first, newline, rest = page.partition("\n")
            page = f'{first}{newline}<meta name="generator" content="{GENERATOR}">\n{rest}'
        return page
    raise BadInput(f"unknown report format {output_format!r}", hint=f"one of {', '.join(FORMATS)}")


def write_report(
    path: Path, text: str, *, force: bool = False, store_url: str | None = None, force_option: str = "--force"
) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same directory and a rename,
    so a reader (a CI server collecting artifacts) never sees half a report.

    The file follows the umask but never grants group or other more than the store's directory does
    (see :func:`report_mode`). An existing ``path`` is replaced only as :func:`check_target` allows
    (``force``; ``store_url`` names the store in use, default: the one maint.yml or $MAINT_DB names).
    Raises BadInput, naming the path and why, when it may not or cannot be written.
    """
    from maint.files import write_atomic

    store = store_file(store_url)
    check_target(path, force=force, store=store, force_option=force_option)
    try:
        write_atomic(path, text, report_mode(store))
    except OSError as error:
        if path.is_dir():
            hint = "that is a directory: give a file name"
        elif error.errno in (errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EPERM, errno.EROFS):
            hint = "the directory must exist and be writable"
        else:
            hint = "is the disk full?"
        raise BadInput(f"cannot write {path}: {error.strerror}", hint=hint) from None


def store_file(url: str | None = None) -> Path | None:
    """The database file of the store ``url`` names (default: the store in use: $MAINT_DB, maint.yml's
    ``store``, else the default), or None for a server or in-memory store; raises nothing."""
    try:
        from maint.store import resolve_url
        from maint.store.urls import sqlite_path

        return sqlite_path(url or resolve_url(None))
    except Exception:  # a broken URL or maint.yml is reported by whatever opens the store
        return None


def open_report(path: Path, *, force: bool = False, store_url: str | None = None,
                markers: Sequence[re.Pattern[bytes]] = ()) -> IO[str]:  # fmt: skip
    """``path`` opened for writing text a piece at a time (an export too big to hold), on the same
    terms as :func:`write_report`: refused as :func:`check_target` says (``markers`` recognise this
    writer's own earlier files), mode as :func:`report_mode`. Raises BadInput naming the path."""
    store = store_file(store_url)
    check_target(path, force=force, store=store, markers=markers)
    mode = report_mode(store)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    except OSError as error:
        raise BadInput(f"cannot write {path}: {error.strerror}", hint="give a writable path with -o") from None
    os.fchmod(descriptor, mode)  # an existing file keeps its mode on open: narrow it like a new one
    return os.fdopen(descriptor, "w", encoding="utf-8", newline="")


def check_target(path: Path, *, force: bool = False, store: Path | None = None,
                 markers: Sequence[re.Pattern[bytes]] = (), force_option: str = "--force") -> None:  # fmt: skip
    """Refuse to let a report replace ``path`` unless it does not exist or is an earlier maint report
    (one of the formats here, or a file the caller's ``markers`` recognise in its first bytes).

    A maint store (an SQLite file with maint's tables) and any other file are replaced only with
    ``force``; ``store`` (the store in use, and its -wal/-shm/-journal files) never. Raises BadInput
    (exit 3) with one line naming the file and the option that forces it (``force_option``).
    """
    if store is not None and _same_store(path, store):
        raise BadInput(f"{path} is the store in use: a report never replaces it, not even with {force_option}",
                       hint="write the report to another file")  # fmt: skip
    if force or not path.exists() or path.is_dir():
        return  # a directory is refused by the write itself, with its own message
    kind = existing_kind(path, markers)
    if kind == "report":
        return
    raise BadInput(f"{path} exists and is {kind}, not a maint report: not replaced", hint=f"{force_option} replaces it")


def existing_kind(path: Path, markers: Sequence[re.Pattern[bytes]] = ()) -> str:
    """What the existing file ``path`` is: ``report`` (an earlier maint report, or an empty file: nothing
    to lose, as ``mktemp`` leaves it), ``a maint store``, ``an SQLite database``, ``unreadable``, or
    ``a file``; raises nothing."""
    try:
        with path.open("rb") as handle:
            head = handle.read(HEAD_BYTES)
    except OSError:
        return "unreadable"
    if not head and path.is_file():
        return "report"
    if head.startswith(SQLITE_HEADER):
        return "a maint store" if _has_store_tables(path) else "an SQLite database"
    if any(marker.search(head) for marker in (*REPORT_MARKERS, *markers)):
        return "report"
    from maint.reports.spreadsheet import COLUMNS

    if head.split(b"\r\n", 1)[0].split(b"\n", 1)[0] == ",".join(COLUMNS).encode():
        return "report"
    return "a file"


def report_mode(store: Path | None) -> int:
    """The mode of a new report: ``0o666`` less the umask, and no read or write bit for group or
    other that the store's directory does not grant them (a report shows what the store holds)."""
    umask = os.umask(0o022)
    os.umask(umask)
    mode = 0o666 & ~umask
    if store is not None:
        try:
            directory = store.parent.stat().st_mode
        except OSError:
            directory = 0o700
        mode &= 0o600 | (directory & 0o066)
    return mode


def _same_store(path: Path, store: Path) -> bool:
    try:
        folder = path.parent.resolve()
        same_folder = folder == store.parent.resolve()
    except OSError:
        return False
    if same_folder and path.name in {store.name + suffix for suffix in STORE_FILE_SUFFIXES}:
        return True
    try:
        return path.exists() and store.exists() and os.path.samefile(path, store)
    except OSError:
        return False


def _has_store_tables(path: Path) -> bool:
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        return True  # an SQLite file that cannot be read is not overwritten lightly
    try:
        names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error:
        return True
    finally:
        connection.close()
    return names >= STORE_TABLES
