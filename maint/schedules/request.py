"""The run a timer or a cron job starts: ``maint schedule run WINDOW`` as a run request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from maint.errors import BadInput
from maint.windows import Window


def run_request(window: Window, inventory: Sequence[str], *, project_dir: Path, source: str,
                lines: Mapping[str, Mapping[str, int]] | None = None, **options: Any) -> Any:  # fmt: skip
    """The RunRequest of a scheduled run of ``window``: its playbooks on its hosts, kept to the window.

    ``options`` are further RunRequest fields (db_url, argv, ...). Raises BadInput when the window
    has no playbooks.
    """
    from maint.run import RunRequest

    if not window.playbooks:
        line = (lines or {}).get(window.name, {}).get("")
        raise BadInput(f"window '{window.name}' has no playbooks to run", source=source, line=line,
                       hint="add 'playbooks: [NAME]' to the window")  # fmt: skip
    return RunRequest(
        playbooks=tuple(window.playbooks), inventory=list(inventory), limit=window.hosts, project_dir=project_dir,
        window=window.name, reason=f"scheduled: window {window.name}", **options,
    )  # fmt: skip
