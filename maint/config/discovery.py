"""Which maint.yml is in use, why, and where maint keeps its state.

maint.yml is looked for the way git, ruff or ansible look for their files; the first found is used:

1. ``--config FILE`` (:func:`choose`, called by the ``maint`` group);
2. ``$MAINT_CONFIG``;
3. ``./maint.yml``;
4. ``maint.yml`` in a parent directory of the current one, up to the root of its repository (a directory
   holding ``.git``, ``.hg`` or ``.svn``; the walk stops there) or the file system's root;
5. ``$XDG_CONFIG_HOME/maint/maint.yml`` (default ``~/.config/maint/maint.yml``);
6. ``/etc/maint/maint.yml``.

The first four are a project's own file: the project directory (``playbooks/``, ``templates/``) is the
file's directory, and its state (the default store, the inventory cache, ansible-runner's records) is
``.maint/`` beside it. A user's or the system's file holds settings, not a project: with it, or without
any maint.yml, the project directory is the current one and the state lives in the user's state
directory, ``$XDG_STATE_HOME/maint`` (default ``~/.local/state/maint``), or for root ``/var/lib/maint``
(unless ``$XDG_STATE_HOME`` is set).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

FILE_NAME = "maint.yml"
STATE_NAME = ".maint"  # a project's state directory, beside its maint.yml
VCS_MARKERS = (".git", ".hg", ".svn")
SYSTEM_CONFIG = Path("/etc/maint") / FILE_NAME
SYSTEM_STATE = Path("/var/lib/maint")

# Where the file in use came from, as ``maint config show`` names it.
SOURCES = ("--config", "$MAINT_CONFIG", "cwd", "parent", "user", "system", "none")
PROJECT_SOURCES = frozenset({"--config", "$MAINT_CONFIG", "cwd", "parent"})

_chosen: Path | None = None


def choose(path: Path | None) -> None:
    """Use ``path`` (``--config FILE``) before any other maint.yml in this process; None goes back to discovery."""
    global _chosen
    _chosen = path


@dataclass(frozen=True)
class Discovered:
    """The maint.yml in use (``path``, None when there is none), where it was found (one of :data:`SOURCES`),
    the project directory and the state directory."""

    path: Path | None
    source: str
    project_dir: Path
    state_dir: Path

    @property
    def project(self) -> bool:
        """Whether the file is a project's own (its state lives beside it)."""
        return self.source in PROJECT_SOURCES


def discover(
    cwd: Path | None = None, environ: Mapping[str, str] | None = None, home: Path | None = None,
    euid: int | None = None,
) -> Discovered:  # fmt: skip
    """The maint.yml in use, looked for in the order of this module's docstring.

    ``cwd``, ``environ``, ``home`` and ``euid`` default to the process's own (given by tests). A file named by
    ``--config`` or ``$MAINT_CONFIG`` is used whether it exists or not (loading it reports a missing one);
    the others are used only when they are files. Raises nothing.
    """
    environment = os.environ if environ is None else environ
    here = (cwd or Path.cwd()).absolute()
    named = [(_chosen, "--config")]
    if environment.get("MAINT_CONFIG"):
        named.append((Path(environment["MAINT_CONFIG"]).expanduser(), "$MAINT_CONFIG"))
    for path, source in named:
        if path is not None:
            path = path if path.is_absolute() else here / path
            return project_of(path, source)
    for directory in (here, *here.parents):
        candidate = directory / FILE_NAME
        if candidate.is_file():
            return project_of(candidate, "cwd" if directory == here else "parent")
        if any((directory / marker).exists() for marker in VCS_MARKERS):
            break
    state = user_state_dir(environment, home, euid)
    for candidate, source in ((user_config_dir(environment, home) / FILE_NAME, "user"), (SYSTEM_CONFIG, "system")):
        if candidate.is_file():
            return Discovered(candidate, source, here, state)
    return Discovered(None, "none", here, state)


def project_of(path: Path, source: str = "--config") -> Discovered:
    """A project's own maint.yml at ``path``: its directory is the project's, ``.maint/`` beside it the state's."""
    return Discovered(path, source, path.parent, path.parent / STATE_NAME)


def user_config_dir(environ: Mapping[str, str] | None = None, home: Path | None = None) -> Path:
    """``$XDG_CONFIG_HOME/maint``, default ``~/.config/maint``."""
    environment = os.environ if environ is None else environ
    base = environment.get("XDG_CONFIG_HOME") or str((home or Path.home()) / ".config")
    return Path(base) / "maint"


def user_state_dir(environ: Mapping[str, str] | None = None, home: Path | None = None, euid: int | None = None) -> Path:
    """The state directory outside a project: ``$XDG_STATE_HOME/maint`` when set; else ``/var/lib/maint`` for
    root and ``~/.local/state/maint`` for anyone else."""
    environment = os.environ if environ is None else environ
    if environment.get("XDG_STATE_HOME"):
        return Path(environment["XDG_STATE_HOME"]) / "maint"
    if (os.geteuid() if euid is None else euid) == 0:
        return SYSTEM_STATE
    return (home or Path.home()) / ".local" / "state" / "maint"


def describe_source(found: Discovered) -> str:
    """Why ``found`` is in use, in a few words (``maint config show``)."""
    return {
        "--config": "given with --config",
        "$MAINT_CONFIG": "named by $MAINT_CONFIG",
        "cwd": "in the current directory",
        "parent": "in a parent directory of the current one",
        "user": "the user's configuration",
        "system": "the system's configuration",
        "none": "no maint.yml found: every option has its default",
    }[found.source]
