"""Checks on what the real ``maint`` subprocess printed."""

from __future__ import annotations

import subprocess


def assert_one_line_error(done: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    """The command exited with ``code`` and printed one line on stderr, holding every fragment, no traceback."""
    assert done.returncode == code, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
