"""Shell completion: ``maint completion SHELL`` prints the script, and the candidates of the arguments and
options that name something maint knows (playbooks, runs, windows, hosts and groups).

The shells ask through Click's protocol (``_MAINT_COMPLETE=bash_complete maint ...``), once per Tab press, so
a candidate function is quick, prints nothing and changes nothing: any error means no candidates. Runs are read
from an existing store only (a missing one is not created); hosts and groups come from the inventory cache
(:mod:`maint.inventory.cache`) alone, never from ansible-core, so a Tab press never pays for parsing an
inventory: without a cache (no run yet, or a dynamic inventory) there are no host candidates.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.shell_completion import CompletionItem

if TYPE_CHECKING:
    from maint.config.discovery import Discovered

SHELLS = ("bash", "zsh", "fish")
RECENT_RUNS = 30  # run ids offered, newest first
# What separates the parts of an Ansible host pattern (web:&prod,!db-01): a part is completed after the last one.
PATTERN_SEPARATORS = ",:"

Candidates = list[CompletionItem]
Completer = Callable[[click.Context, click.Parameter, str], Candidates]


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script of SHELL (bash, zsh or fish) for maint.

    Completes commands, options, playbook names, recent run ids, window names and inventory hosts and
    groups (these from the inventory cache a run leaves, so a run must have read the inventory once).
    Install it once:

    \b
        maint completion bash > /etc/bash_completion.d/maint
        maint completion zsh > "${fpath[1]}/_maint"
        maint completion fish > ~/.config/fish/completions/maint.fish

    or load it in the shell's startup file: eval "$(maint completion bash)" (same as
    eval "$(_MAINT_COMPLETE=bash_source maint)"; zsh_source and fish_source for the others).
    """
    from click.shell_completion import get_completion_class

    from maint.cli import COMPLETE_VARIABLE, cli

    completer = get_completion_class(shell)
    assert completer is not None  # the choice holds only shells Click knows
    click.echo(completer(cli, {}, "maint", COMPLETE_VARIABLE).source(), nl=False)


def _quiet(function: Callable[[click.Context, str], Iterable[tuple[str, str | None]]]) -> Completer:
    """A candidate function from ``function(context, incomplete)``, which yields (value, help) pairs: those
    starting with ``incomplete``, sanitised (they come from files and the store); none, and nothing printed,
    when it raises."""

    @functools.wraps(function)
    def complete(context: click.Context, _parameter: click.Parameter, incomplete: str) -> Candidates:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found = list(function(context, incomplete))
            from maint.terminal import sanitise
        except Exception:  # a Tab press never shows an error
            return []
        return [
            CompletionItem(sanitise(value), help=None if text is None else sanitise(text))
            for value, text in found
            if value.startswith(incomplete)
        ]

    return complete


def _discovered(context: click.Context) -> Discovered:
    """The maint.yml in use: ``--config`` on the line being completed, else the one discovery finds."""
    from maint.config import discovery

    config_file = context.find_root().params.get("config_file")
    if config_file is not None:
        discovery.choose(Path(config_file))  # for the store's location too; this process ends after completing
    return discovery.discover()


@_quiet
def playbook_names(context: click.Context, _incomplete: str) -> Iterable[tuple[str, str | None]]:
    """The playbooks ``maint run`` knows by name: built-in ones and the project's ``playbooks/``."""
    from maint.playbooks import available

    return ((name, None) for name in available(_discovered(context).project_dir))


@_quiet
def run_ids(context: click.Context, _incomplete: str) -> Iterable[tuple[str, str | None]]:
    """The newest run ids of the store (``--db`` if given before), with when and what ran; none without a
    store (not created: opened read-only and not upgraded)."""
    from maint.store import Store
    from maint.store.history import RunFilter

    _discovered(context)
    store = Store(context.params.get("db_url"), upgrade=False, create=False)
    try:
        found = store.find_runs(RunFilter(limit=RECENT_RUNS))
    finally:
        store.close()
    for run in found:
        started = str(run["started"])[:16].replace("T", " ")  # to the minute, UTC as stored
        yield run["id"], f"{started}Z {run['status']} {','.join(playbook['name'] for playbook in run['playbooks'])}"


@_quiet
def window_names(context: click.Context, _incomplete: str) -> Iterable[tuple[str, str | None]]:
    """The maintenance windows of maint.yml."""
    from maint.config import load

    found = _discovered(context)
    return ((name, None) for name in load(found.project_dir, found.path).windows)


@_quiet
def host_patterns(context: click.Context, incomplete: str) -> Iterable[tuple[str, str | None]]:
    """Host and group names from the inventory cache, completing the last part of a pattern (``web:&pro``).

    The cache of the inventory given with ``-i`` (or ``$MAINT_INVENTORY``) when there is one, else the newest
    cache of the state directory (the inventory last used with it); nothing without a cache.
    """
    cache_dir = _discovered(context).state_dir / "cache"
    start = max(incomplete.rfind(separator) for separator in PATTERN_SEPARATORS) + 1
    part = incomplete[start:]
    prefix = incomplete[: start + len(part) - len(part.lstrip("&!"))]  # keeps the separators and & or ! before
    names: dict[str, str] = {"all": "group"}
    for name, groups in _cached_groups(cache_dir, context.params.get("inventory") or ()).items():
        names.setdefault(name, "host")
        for group in groups:
            names.setdefault(group, "group")
    return ((prefix + name, kind) for name, kind in sorted(names.items()))


def _cached_groups(cache_dir: Path, given: Iterable[str]) -> dict[str, list[str]]:
    """The hosts (and their groups) the inventory cache in ``cache_dir`` holds for the sources ``given``, else
    ``$MAINT_INVENTORY``, else the newest cache file."""
    from maint.inventory import ENVIRONMENT_VARIABLE
    from maint.inventory.cache import CachedInventory, newest_cached_groups

    sources = list(given) or ([os.environ[ENVIRONMENT_VARIABLE]] if os.environ.get(ENVIRONMENT_VARIABLE) else [])
    if not sources:
        return newest_cached_groups(cache_dir)
    return CachedInventory(sources, cache_dir).cached_groups()  # reads the files for the cache key only
