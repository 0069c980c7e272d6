"""The settings of Ansible's own configuration that maint honours, read by ansible-core's config manager.

A sysadmin's ``ansible.cfg`` (and ``ANSIBLE_*`` variables) already say where the inventory is, which user
and key to log in with, how many hosts to work on at once and how to become root. maint reads them with
Ansible's precedence (``$ANSIBLE_CONFIG``, ``./ansible.cfg``, ``~/.ansible.cfg``, ``/etc/ansible/ansible.cfg``,
then ``ANSIBLE_*`` variables over the file) through ``ansible.config.manager.ConfigManager``, so a relative
path in the file is relative to the file, as in Ansible. They are the lowest precedence of each setting:
maint's command-line options, then maint.yml, then these. Only values set in a file or the environment
count; Ansible's built-in defaults (5 forks) do not replace maint's (50).

ansible-core is imported on the first :func:`read`, never for ``maint --help``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# maint's name (the key in [defaults] or [privilege_escalation]) -> ansible-core's setting.
SETTINGS = {
    "inventory": "DEFAULT_HOST_LIST",
    "remote_user": "DEFAULT_REMOTE_USER",
    "private_key_file": "DEFAULT_PRIVATE_KEY_FILE",
    "host_key_checking": "HOST_KEY_CHECKING",
    "forks": "DEFAULT_FORKS",
    "timeout": "DEFAULT_TIMEOUT",
    "become": "DEFAULT_BECOME",
    "become_user": "DEFAULT_BECOME_USER",
    "become_method": "DEFAULT_BECOME_METHOD",
    "become_ask_pass": "DEFAULT_BECOME_ASK_PASS",
    "vault_password_file": "DEFAULT_VAULT_PASSWORD_FILE",
}
# What maint does with each (``maint config show``).
MEANING = {
    "inventory": "the inventory when neither -i nor $MAINT_INVENTORY gives one",
    "remote_user": "the login user of hosts whose inventory sets no ansible_user",
    "private_key_file": "the key of hosts whose inventory sets no ansible_ssh_private_key_file",
    "host_key_checking": "False: accept unknown host keys of hosts whose inventory does not say",
    "forks": "hosts worked on at once without -f",
    "timeout": "the connect timeout without --connect-timeout",
    "become": "become without -b (playbooks, steps and inventory variables still win)",
    "become_user": "the user to become without --become-user",
    "become_method": "how to become without --become-method (sudo, su, doas)",
    "become_ask_pass": "ignored: maint asks for the become password only with -K",
    "vault_password_file": "the vault password file without --vault-password-file or --vault-id",
}
BECOME_METHODS = ("sudo", "su", "doas")


@dataclass(frozen=True)
class Setting:
    """One setting in effect: ``value`` and ``origin`` (the file, or ``env: ANSIBLE_...``)."""

    name: str
    value: Any
    origin: str


@dataclass(frozen=True)
class AnsibleConfig:
    """The settings that a file or the environment sets (``settings``), and the file Ansible reads (or None)."""

    file: str | None = None
    settings: Mapping[str, Setting] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        """The value of setting ``name`` (a key of :data:`SETTINGS`), or ``default`` when nothing sets it."""
        found = self.settings.get(name)
        return default if found is None else found.value

    @property
    def inventory(self) -> list[str]:
        """The inventory sources (absolute when the file gave them relative), [] when nothing sets them."""
        value = self.get("inventory") or []
        return [str(source) for source in ([value] if isinstance(value, str) else value)]


# Where Ansible looks for its file when $ANSIBLE_CONFIG names none (ansible.config.manager.find_ini_config_file).
CANDIDATES = ("ansible.cfg", "~/.ansible.cfg", "/etc/ansible/ansible.cfg")
_read: dict[tuple[Any, ...], AnsibleConfig] = {}


def read() -> AnsibleConfig:
    """The settings of :data:`SETTINGS` that Ansible's configuration sets, with their origins, from the current
    directory and environment (read once per process for the same files and ``ANSIBLE_*`` variables).

    Without any candidate file and ``ANSIBLE_*`` variable nothing can be set: ansible-core is not imported.
    Raises :class:`maint.errors.BadInput` naming the file when ansible-core refuses it or one of these values.
    """
    import os

    variables = tuple(sorted((name, value) for name, value in os.environ.items() if name.startswith("ANSIBLE_")))
    files = []
    for candidate in CANDIDATES:
        path = os.path.abspath(os.path.expanduser(candidate))
        with contextlib.suppress(OSError):
            files.append((path, os.stat(path).st_mtime_ns))
    if not variables and not files:
        return AnsibleConfig()
    key = (os.getcwd(), variables, tuple(files))
    if key not in _read:
        _read[key] = _manager_settings()
    return _read[key]


def _manager_settings() -> AnsibleConfig:
    import io
    import os

    from ansible.config.manager import ConfigManager
    from ansible.errors import AnsibleError

    from maint.errors import BadInput

    manager = None
    found: dict[str, Setting] = {}
    try:
        # ansible-core prints its own warnings (a world-writable directory's ansible.cfg ignored): not here.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            manager = ConfigManager()
            for name, key in SETTINGS.items():
                value, origin = manager.get_config_value_and_origin(key)
                variable = str(origin).removeprefix("env: ") if str(origin).startswith("env: ") else None
                if variable is not None and not os.environ.get(variable, "").strip():
                    continue  # an empty variable sets nothing (Ansible would read "" as a path: the directory)
                if origin != "default" and value is not None:
                    found[name] = Setting(name, _plain(value), str(origin))
    except AnsibleError as error:
        where = getattr(manager, "_config_file", None) or os.environ.get("ANSIBLE_CONFIG")
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BadInput(f"Ansible's configuration: {message}", source=where,
                       hint="fix the file or the ANSIBLE_* variable it names") from None  # fmt: skip
    method = found.get("become_method")
    if method is not None and method.value not in BECOME_METHODS:
        raise BadInput(f"become_method {method.value!r} is not one maint knows ({', '.join(BECOME_METHODS)})",
                       source=method.origin, hint="set become_method to sudo, su or doas")  # fmt: skip
    return AnsibleConfig(manager._config_file, found)


def _plain(value: Any) -> Any:
    """ansible-core's tagged values as plain Python ones."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    return str(value)
