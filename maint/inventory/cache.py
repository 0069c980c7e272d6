"""A cache of host selections for static inventories, so a run need not start ansible-core.

Parsing an inventory with ansible-core costs a run about a quarter of a second of CPU (mostly
importing ansible), every run. For inventories made only of static files, whose content fully
determines the hosts and their variables, maint keeps what ansible-core computed (each selected
host and the result of each (pattern, limit) selection) in ``.maint/cache/`` keyed by a hash of
every inventory byte, the sources' absolute paths, maint's and ansible-core's versions and the
``ANSIBLE_*`` environment. Any change to any of those is a miss, and a miss is answered by
ansible-core itself, as without the cache.

Sources that are not static are never cached: executable files (dynamic inventory scripts), YAML
inventory plugin configurations (``plugin:``), and files with Jinja2 (``{{``/``{%``), whose values
may depend on lookups at load time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from maint import __version__
from maint.files import private_directory
from maint.inventory import Host, Inventory, _feed, check_selection, inventory_files, load_inventory

# 2: Host gained port_set and ssh_args.
FORMAT = 2
_PLUGIN_CONFIG = re.compile(rb"^plugin\s*:", re.MULTILINE)


class CachedInventory:
    """Host selection with the same answers as :class:`Inventory`, served from the cache when it can.

    ``digest`` is the inventory digest recorded with runs. Call :meth:`save` after selecting, to
    keep what a miss computed for the next run.
    """

    def __init__(self, sources: Sequence[str], cache_dir: Path | None, script_timeout: float | None = None) -> None:
        self.sources = tuple(sources)
        self.script_timeout = script_timeout
        files = list(inventory_files(self.sources))
        digest = hashlib.sha256()
        for name, data, _ in files:
            _feed(digest, name, data)
        # The same value as inventory_digest(sources), from the one read of the files.
        self.digest = digest.hexdigest()
        self._real: Inventory | None = None
        self._path: Path | None = None
        self._entries: dict[str, Any] = {"hosts": {}, "selections": {}}
        self._dirty = False
        if cache_dir is not None and all(_static(path, data) for _, data, path in files):
            self._path = cache_dir / f"inventory-{self._key(files)}.json"
            self._entries = _read(self._path) or self._entries

    @property
    def cacheable(self) -> bool:
        """Whether these sources are static and a cache directory was given."""
        return self._path is not None

    def select(self, pattern: str = "all", limit: str | None = None) -> list[Host]:
        """The hosts ``pattern`` limited by ``limit`` selects (see :meth:`Inventory.select`)."""
        check_selection(pattern, limit)  # before the cache: it holds only valid patterns
        key = _selection_key(pattern, limit)
        names = self._entries["selections"].get(key) if key is not None and self.cacheable else None
        if names is not None and all(name in self._entries["hosts"] for name in names):
            return [_host(self._entries["hosts"][name]) for name in names]
        hosts = self.inventory().select(pattern, limit)
        if key is not None and self.cacheable:
            self._entries["selections"][key] = [host.name for host in hosts]
            for host in hosts:
                self._entries["hosts"][host.name] = {**asdict(host), "vars": dict(host.vars)}
            self._dirty = True
        return hosts

    def inventory(self) -> Inventory:
        """The inventory parsed by ansible-core (loaded on first need)."""
        if self._real is None:
            self._real = load_inventory(self.sources, self.script_timeout)
        return self._real

    def cached_groups(self) -> dict[str, list[str]]:
        """Each host the cache holds (chosen by a cached selection) and its groups; parses nothing, so empty
        when nothing was cached yet or these sources are not cacheable."""
        return _groups(self._entries) if self.cacheable else {}

    def save(self) -> None:
        """Write what was computed since loading; a cache that cannot be written is skipped."""
        if not self._dirty or self._path is None:
            return
        try:
            private_directory(self._path.parent)
            handle, temporary = tempfile.mkstemp(dir=self._path.parent, prefix=".inventory-")
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump({"format": FORMAT, **self._entries}, stream)
            os.replace(temporary, self._path)
        except OSError:
            return
        self._dirty = False

    def _key(self, files: Sequence[tuple[bytes, bytes, Path | None]]) -> str:
        key = hashlib.sha256()
        try:
            ansible_version = metadata.version("ansible-core")
        except metadata.PackageNotFoundError:
            ansible_version = "?"
        environment = sorted((name, value) for name, value in os.environ.items() if name.startswith("ANSIBLE_"))
        parts: list[Any] = [FORMAT, __version__, ansible_version, os.getcwd(), self.digest, environment]
        parts.append([str(path) if path is not None else None for _, _, path in files])
        parts.append([os.path.abspath(source) if not _is_host_list(source) else source for source in self.sources])
        key.update(json.dumps(parts).encode())
        return key.hexdigest()[:32]


def open_inventory(
    sources: Sequence[str], cache_dir: Path | None, script_timeout: float | None = None
) -> CachedInventory:
    """An inventory for host selection that uses ``cache_dir`` (None: no cache) when it can; dynamic
    scripts get ``script_timeout`` seconds per call (None: the default, 60)."""
    return CachedInventory(sources, cache_dir, script_timeout)


def newest_cached_groups(cache_dir: Path) -> dict[str, list[str]]:
    """The hosts and their groups in the newest inventory cache of ``cache_dir`` (the inventory last used with
    it, whatever its sources); empty when there is none or it cannot be read."""
    try:
        files = sorted(cache_dir.glob("inventory-*.json"), key=lambda path: path.stat().st_mtime, reverse=True)
    except OSError:
        return {}
    entries = _read(files[0]) if files else None
    return _groups(entries) if entries is not None else {}


def _groups(entries: Mapping[str, Any]) -> dict[str, list[str]]:
    hosts = entries.get("hosts")
    if not isinstance(hosts, dict):
        return {}
    return {str(name): [str(group) for group in entry.get("groups", ())] for name, entry in hosts.items()}


def _is_host_list(source: str) -> bool:
    return "," in source and not os.path.exists(source)


def _static(path: Path | None, data: bytes) -> bool:
    if path is None:  # a host list or the source separator: plain text, nothing to run
        return b"{{" not in data and b"{%" not in data
    if os.access(path, os.X_OK):
        return False
    if b"{{" in data or b"{%" in data:
        return False
    return not (path.suffix in (".yml", ".yaml") and _PLUGIN_CONFIG.search(data))


def _selection_key(pattern: str, limit: str | None) -> str | None:
    """The key of a selection; for ``@file`` limits it includes the file's content (None: unreadable)."""
    extra = ""
    if limit:
        for part in re.split(r"[:,]", limit):
            part = part.lstrip("&!")
            if part.startswith("@"):
                try:
                    extra += hashlib.sha256(Path(part[1:]).read_bytes()).hexdigest()
                except OSError:
                    return None
    return json.dumps([pattern, limit, extra])


def _read(path: Path) -> dict[str, Any] | None:
    try:
        with path.open(encoding="utf-8") as stream:
            data = json.load(stream)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    return {"hosts": data.get("hosts", {}), "selections": data.get("selections", {})}


def _host(entry: Mapping[str, Any]) -> Host:
    return Host(**{**entry, "groups": tuple(entry["groups"]), "ssh_args": tuple(entry["ssh_args"])})
