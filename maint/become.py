"""Privilege escalation of native steps, with Ansible's names and precedence.

A host's steps run as the login user unless become is asked for, the way Ansible decides it (lowest first):
maint's defaults, the command line (``-b``, ``--become-user``, ``--become-method``, ``-K``), the playbook's
``become*`` keywords, the step's, and last the variables (``ansible_become``, ``ansible_become_user``,
``ansible_become_method``, ``ansible_become_flags``, ``ansible_become_exe``,
``ansible_become_password``/``ansible_become_pass``; ``-e`` being a variable too). :func:`settings` turns
them into one :class:`Become` per step (None: no escalation); the SSH executor starts one escalated shell
per (method, user, flags, executable) on a host's connection with :meth:`Become.command`, and runs every
such step in it.

Pure: no I/O except reading a password file or variable named by a reference (``env:NAME``,
``file:PATH``, or Ansible's ``{{ lookup('file', PATH) }}``/``{{ lookup('env', NAME) }}``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from maint import secrets

METHODS = ("sudo", "su", "doas")
DEFAULT_USER = "root"
DEFAULT_TIMEOUT = 30.0
# Ansible's default flags per method. sudo: -S reads the password on stdin (maint adds it if the flags lack
# it), -n is dropped when there is a password (as Ansible does). doas is driven with -n only.
DEFAULT_FLAGS = {"sudo": "-H -S -n", "su": "", "doas": "-n"}
# The words su's password prompt starts with, in the host's language (Ansible's ``ansible_su_prompt_l10n``
# replaces the list). maint asks sudo for its own prompt; su has no such option.
SU_PROMPTS = (
    "Password", "Mot de passe", "Passwort", "Contraseña", "Senha", "Parola", "Wachtwoord", "Hasło", "Heslo",
    "Lösenord", "Adgangskode", "Passord", "Salasana", "Пароль", "密码", "密碼", "パスワード", "암호",
)  # fmt: skip
# The escalated shell leads its own process group (sudo and su run their command in theirs), so that a
# step's end reaches every process it started, as in the login user's session; setsid (util-linux) makes it
# so without a fork when the shell is not a group leader already. A host without setsid gets the shell as is
# (a step's end then reaches its own process only).
# On a terminal its stderr goes away (every step's streams go to files there): a shell reading a terminal
# with its stderr on one would be interactive (prompts, job control).
ESCALATED_SHELL = "if command -v setsid >/dev/null 2>&1; then exec setsid -w /bin/sh -s{0}; else exec /bin/sh -s{0}; fi"
KEYWORDS = ("become", "become_user", "become_method", "become_flags")
PASSWORD_VARIABLES = ("ansible_become_password", "ansible_become_pass")  # the later one wins, as in Ansible
_LOOKUP = re.compile(r"^\{\{\s*lookup\(\s*(['\"])(file|env)\1\s*,\s*(['\"])([^'\"]+)\3\s*\)\s*\}\}$")


class BecomeError(ValueError):
    """The become settings of a host or step cannot be used; the message says which and how to fix it."""


@dataclass(frozen=True)
class Keywords:
    """The ``become*`` keywords of a playbook or a step, or the command line's become options (None: not set)."""

    become: bool | None = None
    user: str | None = None
    method: str | None = None
    flags: str | None = None

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Keywords:
        """The keywords in ``data`` (a playbook or step mapping); raises ValueError naming the key that is wrong."""
        become = data.get("become")
        if become is not None and not isinstance(become, bool):
            raise ValueError("'become' must be true or false")
        values: dict[str, str | None] = {}
        for key in KEYWORDS[1:]:
            value = data.get(key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"'{key}' must be a non-empty string")
            values[key] = value
        method = values["become_method"]
        if method is not None and method not in METHODS:
            raise ValueError(f"'become_method' {method!r} is not one of {', '.join(METHODS)} (native steps' methods)")
        return cls(become, values["become_user"], method, values["become_flags"])

    def recorded(self) -> dict[str, Any]:
        """The keywords that are set, as a run records them (no password is one of them)."""
        values = (self.become, self.user, self.method, self.flags)
        return {key: value for key, value in zip(KEYWORDS, values, strict=True) if value is not None}

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None) -> Keywords:
        """The keywords of :meth:`recorded` (a resumed run's), none for a run that had none."""
        record = record or {}
        return cls(record.get("become"), record.get("become_user"), record.get("become_method"),
                   record.get("become_flags"))  # fmt: skip

    def over(self, lower: Keywords) -> Keywords:
        """These keywords where set, ``lower``'s elsewhere."""
        return Keywords(
            self.become if self.become is not None else lower.become,
            self.user or lower.user,
            self.method or lower.method,
            self.flags if self.flags is not None else lower.flags,
        )


@dataclass(frozen=True)
class Become:
    """How one step escalates: method, target user, flags, executable, password and how long authenticating
    may take. ``session`` names the escalated shell it runs in: steps with the same one share it."""

    method: str
    user: str = DEFAULT_USER
    flags: str = ""
    executable: str = ""
    password: str | None = field(default=None, repr=False, compare=False)
    timeout: float = field(default=DEFAULT_TIMEOUT, compare=False)
    prompts: tuple[str, ...] = field(default=SU_PROMPTS, compare=False)

    @property
    def session(self) -> tuple[str, str, str, str]:
        """The key of the escalated shell this step runs in."""
        return self.method, self.user, self.flags, self.executable

    @property
    def needs_terminal(self) -> bool:
        """Whether the method asks for its password on a terminal only (su): the session then gets a pty."""
        return self.method == "su"

    def command(self, token: str, prompt: str, terminal: bool = False) -> str:
        """The shell command that authenticates and then runs ``/bin/sh -s`` as the target user, after
        printing ``token`` on a line of its own on stdout, then on stderr (the only sign of success maint
        trusts; on stderr it also says that everything sudo wrote there came before). ``prompt`` is
        sudo's password prompt (``-p``); ``terminal``: the command runs on one. Every value is quoted, none can
        run as code."""
        flags = _words(self.flags)
        if self.method == "sudo":
            if self.password is not None:
                flags = [flag for flag in flags if flag != "-n"]
            if "-S" not in flags:
                flags.append("-S")
            words = [*flags, "-p", prompt, "-u", self.user, "/bin/sh", "-c"]
        elif self.method == "doas":
            if "-n" not in flags:
                flags.insert(0, "-n")
            words = [*flags, "-u", self.user, "/bin/sh", "-c"]
        else:
            words = [*flags, self.user, "-c"]
        shell = ESCALATED_SHELL.format(" 2>/dev/null" if terminal else "")
        words = [self.executable or self.method, *words, f"echo {token}; echo {token} >&2; {shell}"]
        return " ".join(shlex.quote(word) for word in words)

    def prompt_pattern(self) -> re.Pattern[str]:
        """What su's password prompt looks like (case-insensitive, any of ``prompts`` then a colon)."""
        words = "|".join(re.escape(word) for word in self.prompts)
        return re.compile(f"(?:{words}) ?(?::|\uff1a) ?$", re.IGNORECASE)


def settings(
    variables: Mapping[str, Any], step: Keywords = Keywords(), playbook: Keywords = Keywords(),
    command_line: Keywords = Keywords(), asked_password: str | None = None,
) -> Become | None:  # fmt: skip
    """The escalation of a step on a host, or None when it runs as the login user.

    ``variables`` are the host's (with ``-e``), ``asked_password`` the one typed at ``-K``. Raises
    :class:`BecomeError` for a method maint does not implement, an unusable user or flags, or a password
    reference that cannot be read.
    """
    keywords = step.over(playbook).over(command_line)
    enabled = keywords.become
    if "ansible_become" in variables:
        from maint.inventory._ansible import boolean

        enabled = boolean(variables["ansible_become"])
    if not enabled:
        return None
    method = str(variables.get("ansible_become_method") or keywords.method or "sudo")
    if method not in METHODS:
        raise BecomeError(
            f"ansible_become_method={method}: maint's native steps implement {', '.join(METHODS)}; "
            "use one of them for this host, or run the step as an Ansible step (ansible-runner applies it)"
        )
    user = str(variables.get("ansible_become_user") or keywords.user or DEFAULT_USER)
    if user.startswith("-") or not user.strip() or any(character.isspace() for character in user):
        raise BecomeError(f"become user {user!r} is not a user name")
    flags = variables.get("ansible_become_flags")
    flags = str(flags) if flags is not None else keywords.flags if keywords.flags is not None else DEFAULT_FLAGS[method]
    try:
        shlex.split(flags)
    except ValueError as error:
        raise BecomeError(f"become flags {flags!r} cannot be split into words: {error}") from None
    executable = str(variables.get("ansible_become_exe") or "")
    password = asked_password
    for name in PASSWORD_VARIABLES:
        if variables.get(name) not in (None, ""):
            password = _password(name, variables[name])
    timeout = variables.get("maint_become_timeout", DEFAULT_TIMEOUT)
    try:
        timeout = float(timeout)
    except (TypeError, ValueError):
        raise BecomeError(f"maint_become_timeout={timeout!r} is not a number of seconds") from None
    prompts = variables.get("ansible_su_prompt_l10n") or SU_PROMPTS
    if isinstance(prompts, str):
        prompts = [word.strip() for word in prompts.split(",") if word.strip()]
    return Become(method, user, flags, executable, password, timeout, tuple(str(word) for word in prompts))


def _password(name: str, value: Any) -> str:
    """A password variable's value: itself, or what its reference names."""
    text = str(value)
    lookup = _LOOKUP.match(text.strip())
    if lookup:
        text = f"{lookup.group(2)}:{lookup.group(4)}"
    elif "{{" in text or "{%" in text:
        raise BecomeError(
            f"{name} is a template maint does not evaluate: give the password, env:NAME, file:PATH, "
            "or {{ lookup('file', PATH) }} / {{ lookup('env', NAME) }}"
        )
    if secrets.is_reference(text):
        try:
            return secrets.resolve(text).value
        except ValueError as error:
            raise BecomeError(f"{name}: {error}") from None
    return text


def _words(flags: str) -> list[str]:
    return shlex.split(flags) if flags else []
