"""The report formats of ``maint report`` and writing a report where it was asked for."""

from __future__ import annotations

import errno
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from maint.errors import BadInput

FORMATS = ("html", "json", "junit", "csv")


def render_report(document: Mapping[str, Any], output_format: str, project_dir: Path) -> str:
    """The text of a report document (:func:`maint.reports.gather.report_document`) in ``output_format``.

    ``project_dir`` is where a project's ``templates/report.html.j2`` overrides the built-in page.
    Returns the text; raises BadInput for an unknown format or a broken project template.
    """
    if output_format == "json":
        return json.dumps(document, indent=2, sort_keys=False, default=str) + "\n"
    if output_format == "csv":
        from maint.reports.spreadsheet import results_csv

        return results_csv(document)
    if output_format == "junit":
        from maint.reports.junit import junit_xml

        return junit_xml(document)
    if output_format == "html":
        from maint.reports.html import html_report

        return html_report(document, project_dir)
    raise BadInput(f"unknown report format {output_format!r}", hint=f"one of {', '.join(FORMATS)}")


def write_report(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same directory and a rename,
    so a reader (a CI server collecting artifacts) never sees half a report. The file gets mode 0644.

    Raises BadInput, naming the path and why, when the file cannot be written.
    """
    from maint.files import write_atomic

    try:
        write_atomic(path, text)
    except OSError as error:
        if path.is_dir():
            hint = "that is a directory: give a file name"
        elif error.errno in (errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EPERM, errno.EROFS):
            hint = "the directory must exist and be writable"
        else:
            hint = "is the disk full?"
        raise BadInput(f"cannot write {path}: {error.strerror}", hint=hint) from None
