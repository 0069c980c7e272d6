"""The documentation: the README stays a short entry point, docs/ builds with MkDocs in strict mode (a broken
link, a missing page or anchor, a page left out of the navigation fails), and the README's links resolve."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_documentation_builds_strictly(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "become" / "index.html").exists()


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    # Not vacuous: the same build on a copy with a link to an anchor that does not exist fails.
    copy = tmp_path / "copy"
    (copy / "docs").mkdir(parents=True)
    for path in (ROOT / "docs").iterdir():
        (copy / "docs" / path.name).write_bytes(path.read_bytes())
    (copy / "mkdocs.yml").write_bytes((ROOT / "mkdocs.yml").read_bytes())
    index = copy / "docs" / "index.md"
    index.write_text(index.read_text() + "\nSee [nowhere](tickets.md#no-such-section).\n")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "s")],
                          cwd=copy, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode != 0 and "no-such-section" in done.stderr


def test_the_readme_is_an_entry_point_whose_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 200
    for heading in ("## Quick start (Debian, as root)", "## Install", "## A five-minute tour", "## Documentation"):
        assert heading in readme
    targets = re.findall(r"\]\(((?:docs/)[^)#]+)(?:#[^)]*)?\)", readme)
    assert len(targets) > 15
    missing = sorted({target for target in targets if not (ROOT / target).is_file()})
    assert missing == []
    documented = {path.name for path in (ROOT / "docs").glob("*.md")}
    linked = {Path(target).name for target in targets}
    assert documented - linked == set()  # every page is reachable from the README
