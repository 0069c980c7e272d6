"""Ansible-compatible inventories and host patterns, read by ansible-core's own inventory code.

maint does not parse inventories itself: :func:`load_inventory` hands the sources to ansible-core's
``InventoryManager`` (INI, YAML, directories with ``group_vars/`` and ``host_vars/``, executable
dynamic scripts, ``host1,host2,`` lists, inventory plugins) and its ``VariableManager`` (variable
precedence), so a host has the same groups and variables here as in ``ansible-inventory``. What maint
adds: errors that name the file and line instead of Ansible warnings, and the :class:`Host` record the
SSH executor needs.

ansible-core is imported on the first :func:`load_inventory` call, not when this module is imported.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maint.errors import BadInput
from maint.inventory import _ssh
from maint.inventory.patterns import HINT as _PATTERN_HINT
from maint.inventory.patterns import check_pattern

__all__ = [
    "Host", "Inventory", "check_selection", "inventory_digest", "load_inventory", "resolve_sources", "with_defaults",
]

DEFAULT_SSH_PORT = 22
ENVIRONMENT_VARIABLE = "MAINT_INVENTORY"

# Ansible's ssh connection plugin reads each setting from these vars; when several are set the
# last one wins (its config definitions list them from low to high precedence).
_ADDRESS_VARS = ("ansible_host", "ansible_ssh_host")
_PORT_VARS = ("ansible_port", "ansible_ssh_port")
_USER_VARS = ("ansible_user", "ansible_ssh_user")
_KEY_FILE_VARS = ("ansible_private_key_file", "ansible_ssh_private_key_file")
_HOST_KEY_CHECKING_VARS = ("ansible_host_key_checking", "ansible_ssh_host_key_checking")
_SSH_ARGUMENT_VARS = ("ansible_ssh_common_args", "ansible_ssh_extra_args")
_CONNECTION_VARS = (
    _ADDRESS_VARS + _PORT_VARS + _USER_VARS + _KEY_FILE_VARS + _HOST_KEY_CHECKING_VARS + _SSH_ARGUMENT_VARS
)

def check_selection(pattern: str, limit: str | None = None) -> None:
    """BadInput naming the pattern (or the limit) when its syntax is wrong; see :mod:`maint.inventory.patterns`."""
    if not pattern or not pattern.strip():
        raise BadInput("empty host pattern", hint=_PATTERN_HINT)
    for text, what in ((pattern, "host pattern"), (limit, "limit pattern")):
        if text is None:
            continue
        try:
            check_pattern(text)
        except ValueError as error:
            raise BadInput(f"invalid {what} {text!r}: {error}", hint=_PATTERN_HINT) from None


@dataclass(frozen=True)
class Host:
    """One inventory host as the executors see it.

    ``vars`` are all of the host's variables after Ansible precedence, as plain JSON-safe values
    (exactly what ``ansible-inventory --host NAME`` prints). The connection fields are read from the
    same variables, the way Ansible's ssh connection plugin reads them: ``address`` is the name Ansible
    gives ssh (``ansible_host``, else the inventory name), which an ssh_config ``Host`` entry may map
    elsewhere; ``port_set`` says whether the inventory sets ``port`` (when it does not, an ssh_config
    ``Port`` applies); ``ssh_args`` are ``ansible_ssh_common_args`` and ``ansible_ssh_extra_args``,
    rendered, in that order (see :mod:`maint.executors.sshconfig`).
    """

    name: str
    address: str
    port: int
    user: str | None
    key_file: str | None
    known_hosts: str | None
    strict_host_key_checking: bool
    vars: Mapping[str, Any] = field(hash=False, repr=False)
    groups: tuple[str, ...] = ()
    port_set: bool = True
    ssh_args: tuple[str, ...] = ()


class Inventory:
    """A parsed inventory: host selection by Ansible pattern, and ansible-inventory's three views.

    Build it with :func:`load_inventory`. Methods are safe to call from several threads.
    """

    def __init__(self, sources: tuple[str, ...], digest: str, loader: Any, manager: Any, variables: Any) -> None:
        self.sources = sources
        self.digest = digest
        self._loader = loader
        self._manager = manager
        self._variables = variables
        self._lock = threading.RLock()
        self._hosts: dict[str, Host] = {}
        self._public_vars: dict[str, dict[str, Any]] = {}

    def __repr__(self) -> str:
        return f"Inventory(sources={self.sources!r}, hosts={len(self._manager.hosts)})"

    def select(self, pattern: str = "all", limit: str | None = None) -> list[Host]:
        """The hosts a play with ``hosts: PATTERN`` run with ``--limit LIMIT`` would target.

        Ansible's pattern language: ``all``/``*``, host and group names, globs, ``~regex``, subscripts
        (``web[0]``, ``web[1:3]``), unions (``a:b``, ``a,b``), intersections (``a:&b``), exclusions
        (``a:!b``) and, in ``limit``, ``@file`` (host names, one a line). Returns the hosts in inventory
        order, ``[]`` when nothing matches. Raises :class:`BadInput` for an invalid pattern (a bad
        regex, an empty pattern, a missing ``@file``).
        """
        check_selection(pattern, limit)
        from ansible.errors import AnsibleError

        from maint.inventory import _ansible

        with self._lock, _ansible.quiet():
            try:
                found = self._matching(pattern, limit)
            except AnsibleError as error:
                if isinstance(error.__context__, IndexError):  # a subscript past the last host
                    return []
                raise self._pattern_error(pattern, limit, error) from None
            except IndexError as error:  # ansible's pattern code indexing an empty term
                raise self._pattern_error(pattern, limit, error) from None
            finally:
                self._manager.subset(None)
            return [self._host(host) for host in found]

    def ansible_list(self, limit: str | None = None) -> dict[str, Any]:
        """Exactly what ``ansible-inventory -i SOURCES --list [--limit LIMIT]`` prints, as parsed JSON.

        Groups map to their ``hosts`` and ``children``; ``_meta.hostvars`` holds every host's
        variables (hosts without variables are left out, as Ansible does). Raises :class:`BadInput`
        for an invalid ``limit``.
        """
        check_selection("all", limit)
        from ansible.errors import AnsibleError

        from maint.inventory import _ansible

        with self._lock, _ansible.quiet():
            try:
                hosts = self._matching("all", limit)
            except AnsibleError as error:
                if not isinstance(error.__context__, IndexError):
                    raise self._pattern_error("all", limit, error) from None
                hosts = []
            finally:
                self._manager.subset(None)
            available = frozenset(host.name for host in hosts)
            # mirrors ansible/cli/inventory.py json_inventory()
            results = self._format_group(self._manager.groups["all"], available, set())
            hostvars: dict[str, Any] = {}
            for host in hosts:
                public = self._host_public_vars(host)
                if public:
                    hostvars[host.name] = public
            results["_meta"] = {"hostvars": hostvars, "profile": _ansible.encoder_profile_name()}
            return _ansible.plain(results)

    def host_vars(self, name: str) -> dict[str, Any]:
        """Exactly what ``ansible-inventory --host NAME`` prints, as parsed JSON.

        ``NAME`` is a host name (or, as in Ansible, a pattern matching exactly one host). Raises
        :class:`BadInput` when no inventory host, or more than one, matches.
        """
        from ansible.errors import AnsibleError

        from maint.inventory import _ansible

        check_selection(name)
        with self._lock, _ansible.quiet():
            try:
                found = self._matching(name, None)
            except (AnsibleError, IndexError):
                found = []
            if len(found) != 1:
                known = ", ".join(sorted(self._manager.hosts)[:5])
                if found:
                    message = f"{name!r} matches {len(found)} hosts, give one host name"
                else:
                    message = f"unknown host {name!r}"
                raise BadInput(message, hint=f"inventory hosts include: {known}" if known else None)
            return _ansible.plain(self._host_public_vars(found[0]))

    def graph(self, pattern: str = "all") -> str:
        """Exactly what ``ansible-inventory --graph PATTERN`` prints (without the final newline).

        ``PATTERN`` must be a group name, as in Ansible; raises :class:`BadInput` otherwise.
        """
        group = self._manager.groups.get(pattern)
        if group is None:
            groups = ", ".join(sorted(self._manager.groups))
            raise BadInput(f"{pattern!r} is not a group of the inventory", hint=f"groups: {groups}")
        with self._lock:
            return "\n".join(_graph_group(group, 0))

    def _matching(self, pattern: str, limit: str | None) -> list[Any]:
        """ansible ``Host`` objects for pattern and limit; the caller holds the lock and resets the subset."""
        self._manager.subset(limit or None)
        return [host for host in self._manager.get_hosts(pattern) if not getattr(host, "implicit", False)]

    def _pattern_error(self, pattern: str, limit: str | None, error: Exception) -> BadInput:
        from maint.inventory import _ansible

        message = _ansible.one_line(str(error))
        if limit and limit.lstrip("&!").startswith("@"):
            limit_file = limit.lstrip("&!")[1:]
            if "limit file" in message:
                return BadInput("limit file not found or not a file", source=limit_file, hint=_PATTERN_HINT)
        shown = pattern if not limit else f"{pattern} (limit {limit})"
        return BadInput(f"invalid host pattern {shown!r}: {message}", hint=_PATTERN_HINT)

    def _host_public_vars(self, host: Any) -> dict[str, Any]:
        """The host's variables as ansible-inventory shows them (tagged ansible values, a fresh dict)."""
        cached = self._public_vars.get(host.name)
        if cached is None:
            cached = self._all_vars(host)
            from ansible import constants

            cached = {key: value for key, value in cached.items() if key not in constants.INTERNAL_STATIC_VARS}
            self._public_vars[host.name] = cached
        return dict(cached)

    def _all_vars(self, host: Any) -> dict[str, Any]:
        from ansible.errors import AnsibleError

        from maint.inventory import _ansible

        try:
            variables: dict[str, Any] = self._variables.get_vars(host=host, include_hostvars=False, stage="all")
        except AnsibleError as error:
            raise _ansible.describe(error) from None
        return variables

    def _host(self, host: Any) -> Host:
        """maint's :class:`Host` for an ansible host object (cached: the inventory does not change)."""
        cached = self._hosts.get(host.name)
        if cached is not None:
            return cached
        from maint.inventory import _ansible

        public = self._host_public_vars(host)
        connection = _ansible.connection_vars(host, public, _CONNECTION_VARS, self._loader, self._variables)
        arguments = [str(connection[name]) for name in _SSH_ARGUMENT_VARS if connection.get(name)]
        known_hosts = _ssh.known_hosts_file(arguments)
        key_file = _last(connection, _KEY_FILE_VARS)
        checking = _last(connection, _HOST_KEY_CHECKING_VARS)
        user = _last(connection, _USER_VARS)
        address = _last(connection, _ADDRESS_VARS)
        port = _last(connection, _PORT_VARS)
        record = Host(
            name=host.name,
            address=str(address) if address not in (None, "") else host.name,
            port=_port(host.name, port, public),
            user=str(user) if user not in (None, "") else None,
            key_file=os.path.expanduser(str(key_file)) if key_file else None,
            known_hosts=os.path.expanduser(known_hosts) if known_hosts else None,
            strict_host_key_checking=not (
                _ssh.strict_checking_disabled(arguments) or (checking is not None and not _ansible.boolean(checking))
            ),
            vars=_ansible.plain(public),
            groups=tuple(sorted(group.name for group in host.groups if group.name not in ("all", "ungrouped"))),
            port_set=port not in (None, ""),
            ssh_args=tuple(arguments),
        )
        self._hosts[host.name] = record
        return record

    def _format_group(self, group: Any, available: frozenset[str], seen: set[str]) -> dict[str, Any]:
        """One group and its children, the way ansible-inventory --list lays them out."""
        entry: dict[str, Any] = {}
        results: dict[str, Any] = {group.name: entry}
        if group.name != "all":
            entry["hosts"] = [host.name for host in group.hosts if host.name in available]
        entry["children"] = []
        for child in group.child_groups:
            entry["children"].append(child.name)
            if child.name not in seen:
                results.update(self._format_group(child, available, seen))
                seen.add(child.name)
        for key in ("hosts", "vars", "children"):
            if key in entry and not entry[key]:
                del entry[key]
        if not entry:
            del results[group.name]
        return results


def _graph_group(group: Any, depth: int) -> list[str]:
    """ansible-inventory's --graph lines for a group (ansible/cli/inventory.py _graph_group)."""
    lines = [_graph_name(f"@{group.name}:", depth)]
    for child in group.child_groups:
        lines.extend(_graph_group(child, depth + 1))
    if group.name != "all":
        lines.extend(_graph_name(host.name, depth + 1) for host in group.hosts)
    return lines


def _graph_name(name: str, depth: int) -> str:
    return "  |" * depth + "--" + name if depth else name


def _last(values: Mapping[str, Any], names: Sequence[str]) -> Any:
    """The value of the last of ``names`` that is set (Ansible's precedence among synonyms)."""
    found = None
    for name in names:
        if values.get(name) is not None:
            found = values[name]
    return found


def _port(host: str, value: Any, public: Mapping[str, Any]) -> int:
    if value is None or value == "":
        return DEFAULT_SSH_PORT
    from maint.inventory import _ansible

    try:
        if isinstance(value, bool):
            raise ValueError(value)
        port = int(str(value).strip())
        if not 0 < port < 65536:
            raise ValueError(value)
    except ValueError:
        source, line = _ansible.value_origin(value)
        raise BadInput(
            f"host {host}: ansible_port must be a TCP port number, got {str(value)!r}",
            source=source,
            line=line,
            hint="set ansible_port to a number between 1 and 65535",
        ) from None
    return port


def resolve_sources(sources: Sequence[str | os.PathLike[str]], environ: Mapping[str, str] | None = None) -> list[str]:
    """The inventory sources to use: the given ones, else ``$MAINT_INVENTORY`` (one source), else the ``inventory``
    of Ansible's configuration (``ansible.cfg`` or ``$ANSIBLE_INVENTORY``, :mod:`maint.ansible_config`).

    Raises :class:`BadInput` when there are none, saying how to give one.
    """
    if sources:
        return [os.fspath(source) for source in sources]
    environment = os.environ if environ is None else environ
    configured = environment.get(ENVIRONMENT_VARIABLE, "").strip()
    if configured:
        return [configured]
    from maint import ansible_config

    if environ is None and (ansible := ansible_config.read().inventory):
        return ansible
    raise BadInput(
        "no inventory given",
        hint=f"pass -i INVENTORY (a file, a directory or 'host1,host2,'), set {ENVIRONMENT_VARIABLE} "
        "or 'inventory' in ansible.cfg",
    )


def with_defaults(host: Host, user: str | None, key_file: str | None, host_key_checking: bool | None) -> Host:
    """``host`` with the connection defaults of Ansible's configuration where its inventory sets none.

    ``remote_user``, ``private_key_file`` and ``host_key_checking`` of ansible.cfg are Ansible's lowest
    precedence: an inventory variable (``ansible_user``, ``ansible_ssh_private_key_file``,
    ``ansible_host_key_checking``, a ``StrictHostKeyChecking`` in ``ansible_ssh_common_args``) wins.
    """
    changes: dict[str, Any] = {}
    if host.user is None and user:
        changes["user"] = user
    if host.key_file is None and key_file:
        changes["key_file"] = os.path.expanduser(key_file)
    if host_key_checking is False and host.strict_host_key_checking:
        said = any(name in host.vars for name in _HOST_KEY_CHECKING_VARS)
        if not said and _ssh.first_option(host.ssh_args, "StrictHostKeyChecking") is None:
            changes["strict_host_key_checking"] = False
    return dataclasses.replace(host, **changes) if changes else host


def load_inventory(sources: Sequence[str | os.PathLike[str]], script_timeout: float | None = None) -> Inventory:
    """Parse inventory sources with ansible-core and return the :class:`Inventory`.

    Each source is a file (INI, YAML, an executable dynamic inventory script), a directory of them
    (with ``group_vars/`` and ``host_vars/``), or a comma-separated host list (``'web1,web2,'``), as
    with ``ansible -i``. Raises :class:`BadInput` naming the file (and line, when known) if a source
    is missing or cannot be parsed; ansible-core prints nothing. A dynamic inventory script that runs
    longer than ``script_timeout`` seconds per call (default 60) is killed with its child processes
    (BadInput naming it).
    """
    names = tuple(os.fspath(source) for source in sources)
    if not names:
        raise BadInput("no inventory given", hint="pass at least one inventory source")
    for name in names:
        if not name.strip():
            raise BadInput("empty inventory source", hint="pass a file, a directory or 'host1,host2,'")
        if not _is_host_list(name) and not os.path.exists(_resolve(name)):
            hint = "check the path"
            if "," not in name and os.sep not in name:
                hint = f"check the path; a single host as inventory needs a trailing comma: -i '{name},'"
            raise BadInput("inventory source not found", source=name, hint=hint)

    from maint.inventory import _ansible

    _ansible.prepare()
    timeout = _ansible.DEFAULT_SCRIPT_TIMEOUT if script_timeout is None else script_timeout
    loader, manager, variables = _ansible.load(list(names), timeout)
    return Inventory(names, inventory_digest(names), loader, manager, variables)


def _is_host_list(source: str) -> bool:
    """Whether ansible's host_list plugin (not a file plugin) will read the source."""
    return "," in source and not os.path.exists(source)


def _resolve(source: str) -> str:
    return os.path.abspath(os.path.expandvars(os.path.expanduser(source)))


def inventory_digest(sources: Sequence[str]) -> str:
    """SHA-256 (hex) over every inventory source file, with the group_vars/ and host_vars/ beside them.

    Files are fed as (path relative to their source, content), directories walked in sorted order, so
    the digest does not depend on where the project is checked out, and changes when any byte of
    the inventory does. A host list source contributes its text; a dynamic script its code (not its
    output). Hidden files and Python caches are left out.
    """
    digest = hashlib.sha256()
    for name, data, _ in inventory_files(sources):
        _feed(digest, name, data)
    return digest.hexdigest()


def inventory_files(sources: Sequence[str]) -> Iterator[tuple[bytes, bytes, Path | None]]:
    """What :func:`inventory_digest` hashes, in order: (name, content, file path or None)."""
    seen: set[str] = set()
    for index, source in enumerate(sources):
        yield b"source", str(index).encode(), None
        if _is_host_list(source):
            yield b"hosts", source.encode(), None
            continue
        path = Path(_resolve(source))
        if path.is_dir():
            for relative, file in _walk(path, seen):
                yield relative.encode(), _read(file), file
            continue
        yield path.name.encode(), _read(path), path
        for directory in ("group_vars", "host_vars"):
            beside = path.parent / directory
            if beside.is_dir():
                for relative, file in _walk(beside, seen):
                    yield f"{directory}/{relative}".encode(), _read(file), file


def _feed(digest: Any, name: bytes, data: bytes) -> None:
    """Length-prefixed, so that no two different (name, data) sequences hash alike."""
    digest.update(b"%d:%s%d:" % (len(name), name, len(data)))
    digest.update(data)


def _walk(directory: Path, seen: set[str]) -> Iterator[tuple[str, Path]]:
    """(relative posix path, path) of the files under ``directory``, sorted, each real file once."""
    real = os.path.realpath(directory)
    if real in seen:
        return
    seen.add(real)
    for entry in sorted(directory.iterdir(), key=lambda item: item.name):
        if entry.name.startswith(".") or entry.name == "__pycache__" or entry.suffix in (".pyc", ".pyo"):
            continue
        if entry.is_dir():
            for relative, file in _walk(entry, seen):
                yield f"{entry.name}/{relative}", file
        elif entry.is_file():
            real_file = os.path.realpath(entry)
            if real_file not in seen:
                seen.add(real_file)
                yield entry.name, entry


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise BadInput(f"cannot read inventory file: {error.strerror}", source=str(path)) from None
