"""Ansible Vault values in inventory variables and ``-e @file`` files, decrypted with ansible-core's own code.

An inventory value made with ``ansible-vault encrypt_string`` reaches maint as ansible-inventory shows it,
``{"__ansible_vault": "$ANSIBLE_VAULT;1.1;..."}``; the inventory cache keeps it so. :func:`reveal` decrypts
such values when a run is planned, with the passwords of :class:`VaultOptions` (``--vault-password-file``,
``--vault-id``, ``--ask-vault-pass``, ``$ANSIBLE_VAULT_PASSWORD_FILE``). A decrypted value is a secret: the
run masks it in everything it records, and only the password file's name is ever recorded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from maint.errors import BadInput
from maint.inventory import Host

KEY = "__ansible_vault"  # how ansible-inventory (and the inventory cache) encodes a vaulted value
ENVIRONMENT_VARIABLE = "ANSIBLE_VAULT_PASSWORD_FILE"
HINT = "give its password with --vault-password-file FILE, --vault-id [LABEL@]FILE or --ask-vault-pass"
WRONG_HINT = "check the password, or give the password of the vault id that encrypted it with --vault-id LABEL@FILE"
DEFAULT_LABEL = "default"


@dataclass(frozen=True)
class VaultOptions:
    """Where the vault passwords come from: ``(label, file)`` pairs, and a password typed at a prompt.

    A file is read (or, when executable, run) as ansible does; ``password`` is never shown or recorded.
    """

    ids: tuple[tuple[str, str], ...] = ()
    password: str | None = field(default=None, repr=False, compare=False)

    def __bool__(self) -> bool:
        return bool(self.ids) or self.password is not None

    def cmdline(self) -> list[str]:
        """The same password sources as ansible-playbook options (a prompted password is answered by the runner)."""
        arguments: list[str] = []
        for label, path in self.ids:
            if label == DEFAULT_LABEL:
                arguments += ["--vault-password-file", path]
            else:
                arguments += ["--vault-id", f"{label}@{path}"]
        if self.password is not None:
            arguments.append("--ask-vault-pass")
        return arguments


def vault_options(
    password_files: Sequence[str] = (), vault_ids: Sequence[str] = (), password: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> VaultOptions:  # fmt: skip
    """The :class:`VaultOptions` of the command-line values; when none is given, ``$ANSIBLE_VAULT_PASSWORD_FILE``
    (set empty: none), else the ``vault_password_file`` of ansible.cfg (:mod:`maint.ansible_config`; relative to
    the file)."""
    ids = [(DEFAULT_LABEL, path) for path in password_files]
    for value in vault_ids:
        label, sep, path = value.partition("@")
        ids.append((label or DEFAULT_LABEL, path) if sep else (DEFAULT_LABEL, value))
    if not ids and password is None:
        environment = os.environ if environ is None else environ
        configured = environment.get(ENVIRONMENT_VARIABLE, "").strip()
        if environ is None and ENVIRONMENT_VARIABLE not in environment:
            from maint import ansible_config

            configured = str(ansible_config.read().get("vault_password_file") or "")
        if configured:
            ids.append((DEFAULT_LABEL, configured))
    return VaultOptions(tuple(ids), password)


@dataclass(frozen=True)
class Revealed:
    """The run's variables with their vault values decrypted: hosts, extra variables, and the plaintexts to mask."""

    hosts: Mapping[str, Host] = field(default_factory=dict)
    extra_vars: Mapping[str, Any] = field(default_factory=dict)
    values: tuple[str, ...] = field(default=(), repr=False)


def is_vaulted(value: Any) -> bool:
    """Whether ``value`` is a vault value as ansible-inventory encodes it."""
    return isinstance(value, Mapping) and len(value) == 1 and isinstance(value.get(KEY), str)


def holds_vaulted(value: Any) -> bool:
    """Whether ``value`` is, or holds at any depth, a vault value."""
    if is_vaulted(value):
        return True
    if isinstance(value, Mapping):
        return any(holds_vaulted(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(holds_vaulted(item) for item in value)
    return False


def reveal(
    hosts: Mapping[str, Host], extra_vars: Mapping[str, Any], options: VaultOptions | None,
    sources: Sequence[str] = (),
) -> Revealed:  # fmt: skip
    """Decrypt every vault value of the hosts' variables and of ``extra_vars``.

    Returns the hosts and extra variables with plain values (the same objects when nothing was vaulted)
    and the decrypted values. Raises :class:`BadInput` (one line: the variable, the host, the file when it
    can be found among ``sources``, and the fix) when a value is vaulted and no password is given, or
    none of the passwords opens it.
    """
    decryptor = _Decryptor(options, sources)
    revealed_hosts: dict[str, Host] = {}
    for name, host in hosts.items():
        if holds_vaulted(host.vars):
            host = replace(host, vars=decryptor.walk(host.vars, name, f"host {name}"))
        revealed_hosts[name] = host
    revealed_extra = dict(extra_vars)
    if holds_vaulted(extra_vars):
        revealed_extra = decryptor.walk(extra_vars, None, "extra variables (-e)")
    return Revealed(revealed_hosts, revealed_extra, tuple(dict.fromkeys(decryptor.values)))


class _Decryptor:
    """Decrypts vault values with ansible's VaultLib, loading the secrets at the first one."""

    def __init__(self, options: VaultOptions | None, sources: Sequence[str]) -> None:
        self.options = options or VaultOptions()
        self.sources = sources
        self.values: list[str] = []
        self._vault: Any = None
        self._cache: dict[str, str] = {}

    def walk(self, value: Any, host: str | None, where: str, name: str = "") -> Any:
        if is_vaulted(value):
            return self.decrypt(value[KEY], host, where, name)
        if isinstance(value, Mapping):
            return {key: self.walk(item, host, where, name or str(key)) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.walk(item, host, where, name) for item in value]
        return value

    def decrypt(self, ciphertext: str, host: str | None, where: str, name: str) -> str:
        if ciphertext in self._cache:
            return self._cache[ciphertext]
        if not self.options:
            raise self._error(name, host, where, "is encrypted with Ansible Vault and no vault password was given")
        from ansible.errors import AnsibleError

        from maint.inventory._ansible import one_line

        try:
            plaintext = self._lib().decrypt(ciphertext)
        except AnsibleError as error:
            message = one_line(str(error))
            if "decryption failed" in message.lower() or "no vault secrets" in message.lower():
                message = "cannot be decrypted with the vault password given (a wrong password, or another vault id)"
            else:
                message = f"cannot be decrypted: {message}"
            raise self._error(name, host, where, message) from None
        text = bytes(plaintext).decode("utf-8", errors="replace")
        self._cache[ciphertext] = text
        self.values.append(text)
        return text

    def _lib(self) -> Any:
        if self._vault is None:
            from maint.inventory import _ansible

            _ansible.prepare()
            from ansible.errors import AnsibleError
            from ansible.parsing.dataloader import DataLoader
            from ansible.parsing.vault import VaultLib, VaultSecret, get_file_vault_secret

            loader = DataLoader()
            secrets: list[tuple[str, Any]] = []
            for label, path in self.options.ids:
                try:
                    with _ansible.quiet():
                        secret = get_file_vault_secret(filename=path, vault_id=label, loader=loader)
                        secret.load()
                except AnsibleError as error:
                    raise BadInput(f"vault password: {_ansible.one_line(str(error))}", source=path, hint=HINT) from None
                secrets.append((label, secret))
            if self.options.password is not None:
                secrets.append((DEFAULT_LABEL, VaultSecret(self.options.password.encode("utf-8"))))
            self._vault = VaultLib(secrets)
        return self._vault

    def _error(self, name: str, host: str | None, where: str, problem: str) -> BadInput:
        source, line = _find_definition(name, self.sources) if host is not None else (None, None)
        return BadInput(f"{where}: variable {name} {problem}", source=source, line=line,
                        hint=HINT if "no vault password" in problem else WRONG_HINT)  # fmt: skip


_VARS_DIRECTORIES = ("group_vars", "host_vars")


def _find_definition(name: str, sources: Sequence[str]) -> tuple[str | None, int | None]:
    """The file and line among the inventory ``sources`` (and their group_vars/host_vars) where ``name``
    is given a ``!vault`` value, or (None, None): the inventory cache keeps values, not their origin."""
    pattern = re.compile(rf"^\s*{re.escape(name)}\s*[:=]\s*!vault")
    candidates: list[str] = []
    for source in sources:
        if os.path.isdir(source):
            directories = [source]
        else:
            candidates.append(source)
            base = os.path.dirname(source) or "."
            directories = [os.path.join(base, sub) for sub in _VARS_DIRECTORIES]
        for directory in directories:
            if not os.path.isdir(directory):
                continue
            for root, _directories, files in os.walk(directory):
                candidates.extend(os.path.join(root, file) for file in sorted(files))
    for path in dict.fromkeys(candidates):
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                for number, text in enumerate(handle, start=1):
                    if pattern.match(text):
                        return path, number
        except OSError:
            continue
    return None, None
