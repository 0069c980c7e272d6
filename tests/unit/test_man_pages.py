"""The committed manual pages (man/) are what scripts/man-pages makes from the commands now, byte for byte, and
each renders without a warning."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from maint.cli.manpages import _escape, pages

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "man"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pages scripts/man-pages makes, run elsewhere with another home: nothing of the machine gets in."""
    target = tmp_path_factory.mktemp("man")
    environment = {**os.environ, "HOME": str(target), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "man-pages"), str(target)], cwd=target,
                          env=environment, capture_output=True, text=True, check=False, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return target


def test_committed_pages_are_current(made: Path) -> None:
    fresh = {path.name: path.read_bytes() for path in made.glob("*.1")}
    committed = {path.name: path.read_bytes() for path in COMMITTED.glob("*.1")}
    stale = sorted(name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name))
    assert not stale, f"man/ differs from the commands' --help ({', '.join(stale)}): run scripts/man-pages"


def test_the_command_reference_of_the_documentation_is_current(made: Path) -> None:
    fresh = (made / "commands.md").read_text(encoding="utf-8")
    assert fresh == (ROOT / "docs" / "commands.md").read_text(encoding="utf-8"), (
        "docs/commands.md differs from the commands' --help: run scripts/man-pages"
    )
    for page in pages():
        assert f"\n## {page.removesuffix('.1').replace('-', ' ')}\n" in fresh, page


def test_a_page_for_maint_and_every_command() -> None:
    names = set(pages())
    assert {"maint.1", "maint-run.1", "maint-exec.1", "maint-runs-show.1", "maint-tickets-list.1"} <= names
    assert "maint-completion.1" in names
    assert len(names) == len(set(pages()))  # deterministic


def test_run_page_has_the_options_of_its_help() -> None:
    page = pages()["maint-run.1"]
    assert page.startswith('.TH "MAINT\\-RUN" "1" "" "maint ')
    assert "\\fB\\-l, \\-\\-limit PATTERN\\fR" in page
    assert ".SH SEE ALSO\n\\fBmaint\\fR(1)\n" in page


def test_roff_escaping() -> None:
    assert _escape("a-b \\n") == "a\\-b \\en"
    assert _escape(".not a request") == "\\&.not a request"
    assert _escape("'neither") == "\\&'neither"


@pytest.mark.parametrize("name", ["maint.1", "maint-run.1", "maint-tickets-list.1", "maint-completion.1"])
def test_pages_render_without_warnings(made: Path, name: str) -> None:
    if shutil.which("man"):
        command = ["man", "--warnings", "-l", str(made / name)]
    elif shutil.which("groff"):
        command = ["groff", "-man", "-Tutf8", "-ww", str(made / name)]
    else:
        pytest.skip("neither man nor groff is installed (scripts/setup --test installs man-db and groff-base)")
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60,
                          env={**os.environ, "MANWIDTH": "100", "MANPAGER": "cat", "PAGER": "cat"})  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    assert "NAME" in done.stdout and "SYNOPSIS" in done.stdout
