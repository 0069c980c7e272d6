"""OpenSSH client configuration for the native SSH executor: where a host's connection goes, how it logs in.

:func:`resolve` turns an inventory :class:`~maint.inventory.Host` into an :class:`Endpoint`, as ``ssh`` run
by Ansible would see it. For each option the first value found counts, as in ssh, in this order:

1. what Ansible puts on ssh's command line from inventory variables: ``ansible_port`` (Port),
   ``ansible_user`` (User), ``ansible_ssh_private_key_file`` (IdentityFile) and
   ``ansible_host_key_checking: false`` (StrictHostKeyChecking=no);
2. ``ansible_ssh_common_args``, then ``ansible_ssh_extra_args``: ``-o Key=Value``, ``-p``, ``-l``, ``-i``, ``-J``;
3. ssh_config: the file of ``-F FILE`` alone (``-F none``: none), else ``~/.ssh/config`` then
   ``/etc/ssh/ssh_config``, looked up by the name Ansible gives ssh (``ansible_host``, else the inventory
   name).

IdentityFile and CertificateFile add up over all three. A ProxyJump hop is an endpoint of its own, resolved
from ssh_config alone with the user and port of its ``user@host:port`` (ssh reaches it with ``ssh -W``,
passing on only ``-F``); hops after the first are reached through the one before.

paramiko's SSHConfig parses the files and matches ``Host`` and ``Match``. maint expands ``Include`` (which
paramiko does not read) in place, and the %-tokens and ``~`` after the merge, so that ``%p`` and ``%r`` are
the port and user the connection really uses (paramiko would expand them with the file's own values).
Parsed files are kept for the life of the process and read again when one of them changes.
"""

from __future__ import annotations

import functools
import getpass
import glob
import hashlib
import os
import re
import shlex
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import paramiko

from maint import secrets
from maint.inventory import _ssh

if TYPE_CHECKING:
    from maint.inventory import Host

SYSTEM_CONFIG = "/etc/ssh/ssh_config"
USER_CONFIG = "~/.ssh/config"
DEFAULT_PORT = 22
# The keys ssh tries when no IdentityFile is configured (those that exist).
DEFAULT_KEY_NAMES = ("id_ed25519", "id_ecdsa", "id_rsa")
USER_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")
# Ansible's ssh plugin reads the password from these vars; the last one set wins.
PASSWORD_VARS = ("ansible_password", "ansible_ssh_pass", "ansible_ssh_password")
MAX_HOPS = 8
MAX_INCLUDE_DEPTH = 16
_NO = frozenset({"no", "off", "false"})
# StrictHostKeyChecking values that let an unknown host key in (maint cannot ask; it never writes known_hosts).
_ACCEPT_UNKNOWN = frozenset({"no", "off", "false", "accept-new"})
# Stand-ins for '%' and '~' in option values while paramiko reads the text: it would expand %h, %p, %r
# and ~ itself, with the file's own port and user.
_PERCENT, _TILDE = "\x00", "\x01"
_LINE = re.compile(r"^(\w+)(?:\s*=\s*|\s+)(.*)$")
_MATCH_EXEC = re.compile(r"(?:^|\s)!?exec(?:\s|$)", re.IGNORECASE)
_TEMPLATE_VARIABLE = re.compile(r"^\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$")


class ConfigError(ValueError):
    """An ssh_config file, an ssh option or a password variable maint cannot use; one line, with the fix."""


@dataclass(frozen=True)
class Identity:
    """A private key file to log in with; ``required`` (named on the command line or by the inventory):
    a missing file is an error rather than skipped, as ssh_config's are."""

    path: str
    required: bool = False


@dataclass(frozen=True)
class Endpoint:
    """One SSH server on the way to a host (the host itself or a jump host) and how to log in to it.

    ``name`` is the name ssh was given (an ssh_config alias, or the address itself); ``identities`` empty
    means ssh's default keys. ``via`` is the jump host this one is reached through, ``proxy_command``
    the command whose stdin and stdout carry the connection (both None: a TCP connection).
    """

    name: str
    address: str
    port: int
    user: str
    identities: tuple[Identity, ...] = ()
    certificates: tuple[str, ...] = ()
    identities_only: bool = False
    known_hosts: tuple[str, ...] = ()
    global_known_hosts: tuple[str, ...] = ()
    strict: bool = True
    host_key_alias: str | None = None
    connect_timeout: float | None = None
    keepalive: int = 0
    publickey: bool = True
    password: bool = True
    keyboard_interactive: bool = True
    via: Endpoint | None = None
    proxy_command: str | None = None
    config: str = ""

    @property
    def where(self) -> str:
        """``address:port``, as shown in messages."""
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"

    @property
    def label(self) -> str:
        """``name (address:port)``, or ``address:port`` when the name is the address."""
        return self.where if self.name == self.address else f"{self.name} ({self.where})"

    @property
    def known_hosts_name(self) -> str:
        """The name known_hosts lists the host key under: HostKeyAlias, else ``address`` or ``[address]:port``."""
        if self.host_key_alias:
            return self.host_key_alias
        return self.address if self.port == DEFAULT_PORT else f"[{self.address}]:{self.port}"

    def hops(self) -> list[Endpoint]:
        """The jump hosts before this endpoint, the first one dialled first."""
        chain: list[Endpoint] = []
        hop = self.via
        while hop is not None:
            chain.append(hop)
            hop = hop.via
        return chain[::-1]


@dataclass(frozen=True)
class _Parsed:
    """ssh_config files as read once: the parsed text (None when no file exists) and what was read."""

    config: paramiko.SSHConfig | None
    files: tuple[str, ...]
    stamps: tuple[tuple[str, tuple[int, int, int] | None], ...]
    error: str | None = None

    def lookup(self, name: str) -> Mapping[str, Any]:
        if self.error is not None:
            raise ConfigError(self.error)
        if self.config is None:
            return {}
        try:
            return self.config.lookup(name)
        except Exception as error:  # paramiko's canonicalisation, a Match it cannot evaluate
            raise ConfigError(f"ssh_config ({', '.join(self.files)}): cannot look up {name}: {error}") from None

    def describe(self) -> str:
        return ", ".join(self.files) if self.files else "no ssh_config file"


class ConfigFiles:
    """ssh_config files parsed once per process, per list of files, and again when one changes.

    Checking costs a stat of each file read (and of each directory an ``Include`` pattern looked in).
    Safe to use from several threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parsed: dict[tuple[str, ...], _Parsed] = {}

    def get(self, paths: tuple[str, ...]) -> _Parsed:
        """The files ``paths`` (missing ones skipped), parsed as one configuration in that order."""
        with self._lock:
            cached = self._parsed.get(paths)
            if cached is not None and all(_stamp(path) == stamp for path, stamp in cached.stamps):
                return cached
            parsed = _parse(paths)
            self._parsed[paths] = parsed
            return parsed


CONFIGS = ConfigFiles()


def resolve(host: Host, files: ConfigFiles | None = None) -> Endpoint:
    """The endpoint of ``host`` (with its jump hosts in ``via``) after inventory, arguments and ssh_config.

    Raises :class:`ConfigError` for an ssh_config that cannot be read or an option value that is not valid.
    """
    given: list[tuple[str, str]] = []
    if host.port_set:
        given.append(("port", str(host.port)))
    if host.user:
        given.append(("user", host.user))
    if host.key_file:
        given.append(("identityfile", host.key_file))
    if not host.strict_host_key_checking:
        given.append(("stricthostkeychecking", "no"))
    config_file: str | None = None
    for keyword, value in _ssh.command_line(host.ssh_args):
        if keyword == "-F":
            config_file = value  # the last -F counts, as in ssh
        else:
            given.append((keyword, value))
    if host.known_hosts:
        given.append(("userknownhostsfile", host.known_hosts))
    parsed = (files or CONFIGS).get(config_paths(config_file))
    return _endpoint(host.address, given, parsed, 0, None)


def config_paths(config_file: str | None) -> tuple[str, ...]:
    """The ssh_config files ssh reads: the ``-F`` file alone (none for ``-F none``), else the user's and the
    system's."""
    if config_file is None:
        return (os.path.expanduser(USER_CONFIG), SYSTEM_CONFIG)
    if config_file.lower() == "none":
        return ()
    return (os.path.abspath(os.path.expanduser(config_file)),)


def password(host: Host, environ: Mapping[str, str] | None = None) -> str | None:
    """The login password of ``host``: the last set of ``ansible_password``, ``ansible_ssh_pass`` and
    ``ansible_ssh_password``, an ``env:``/``file:`` reference read, a ``{{ variable }}`` looked up in the
    host's variables; None when none is set.

    Raises :class:`ConfigError` naming the variable (never the value) when it cannot be used.
    """
    name, value = None, None
    for variable in PASSWORD_VARS:
        if host.vars.get(variable) not in (None, ""):
            name, value = variable, host.vars[variable]
    if name is None:
        return None
    template = _TEMPLATE_VARIABLE.match(value) if isinstance(value, str) else None
    if template is not None and host.vars.get(template.group(1)) not in (None, ""):
        name, value = template.group(1), host.vars[template.group(1)]
    if isinstance(value, secrets.Secret):
        return value.value
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ConfigError(
            f"{name} is not text (an Ansible Vault value needs --vault-password-file or --ask-vault-pass)"
        )
    text = str(value)
    if secrets.is_reference(text):
        try:
            return secrets.resolve(text, environ).value
        except ValueError as error:
            raise ConfigError(f"{name}: {error}") from None
    if "{{" in text or "{%" in text:
        raise ConfigError(
            f"{name} is a Jinja2 expression maint does not render: give the password itself, "
            "'{{ a_variable }}', an env:NAME or file:PATH reference, or an Ansible Vault value"
        )
    return text


class _Options:
    """One endpoint's options: those given on the command line first (in order), then ssh_config's."""

    def __init__(self, given: Sequence[tuple[str, str]], configured: Mapping[str, Any]) -> None:
        self.given = given
        self.configured = configured

    def first(self, keyword: str) -> str | None:
        for name, value in self.given:
            if name == keyword:
                return value
        if keyword not in self.configured:
            return None
        value = self.configured[keyword]
        if value is None:  # paramiko keeps "ProxyCommand none" as None
            return "none"
        if isinstance(value, list):
            value = value[0]
        return _unescape(str(value))

    def every(self, keyword: str) -> list[tuple[str, bool]]:
        """Every value of a keyword that adds up (IdentityFile): (value, given on the command line)."""
        found = [(value, True) for name, value in self.given if name == keyword]
        configured = self.configured.get(keyword) or []
        found += [(_unescape(str(value)), False) for value in configured]
        return found

    def proxy(self) -> tuple[str, str] | None:
        """The first ProxyJump or ProxyCommand set (ssh keeps whichever comes first), with its value."""
        kinds = ("proxyjump", "proxycommand")
        for name, value in self.given:
            if name in kinds:
                return name, value
        for name in self.configured:  # paramiko's dict keeps the order options were first seen in
            found = self.first(name) if name in kinds else None
            if found is not None:
                return name, found
        return None


def _endpoint(
    name: str, given: Sequence[tuple[str, str]], parsed: _Parsed, depth: int, previous: Endpoint | None
) -> Endpoint:
    """The endpoint ``name``; ``previous``: the jump host it is reached through (a later hop of a -J list)."""
    options = _Options(given, parsed.lookup(name))
    configured = options.first("hostname")
    # Only a configured HostName has tokens (paramiko gives the name itself when none is): the name is taken as
    # it is (an IPv6 scope: fe80::1%eth0).
    hostname = _expand(configured, {"h": name}, "HostName") if configured not in (None, name) else name
    port = _port(options.first("port"), name)
    user = options.first("user") or _local_user()
    tokens = _Tokens(name, hostname, port, user)
    identities: dict[str, Identity] = {}
    for value, required in options.every("identityfile"):
        path = _path(value, tokens, "IdentityFile")
        identities.setdefault(path, Identity(path, required))
    certificates = [_path(value, tokens, "CertificateFile") for value, _ in options.every("certificatefile")]
    known_hosts = _files(options.first("userknownhostsfile"), USER_KNOWN_HOSTS, tokens, "UserKnownHostsFile")
    global_known = _files(options.first("globalknownhostsfile"), GLOBAL_KNOWN_HOSTS, tokens, "GlobalKnownHostsFile")
    checking = options.first("stricthostkeychecking")
    via, command = previous, None
    if previous is None:
        proxy = options.proxy()
        if proxy is not None and proxy[1].lower() != "none":
            if proxy[0] == "proxycommand":
                command = _expand(proxy[1], _ShellTokens(tokens), "ProxyCommand")
            else:
                _check_not_itself(proxy[1], name, port, user)
                via = _chain(proxy[1], parsed, depth)
    return Endpoint(
        name=name,
        address=hostname,
        port=port,
        user=user,
        identities=tuple(identities.values()),
        certificates=tuple(dict.fromkeys(certificates)),
        identities_only=_yes(options.first("identitiesonly")),
        known_hosts=known_hosts,
        global_known_hosts=global_known,
        strict=checking is None or checking.lower() not in _ACCEPT_UNKNOWN,
        host_key_alias=options.first("hostkeyalias"),
        connect_timeout=_seconds(options.first("connecttimeout"), "ConnectTimeout", name),
        keepalive=int(_seconds(options.first("serveraliveinterval"), "ServerAliveInterval", name) or 0),
        publickey=_allowed(options.first("pubkeyauthentication")),
        password=_allowed(options.first("passwordauthentication")),
        keyboard_interactive=_allowed(
            options.first("kbdinteractiveauthentication") or options.first("challengeresponseauthentication")
        ),
        via=via,
        proxy_command=command,
        config=parsed.describe(),
    )


def _chain(spec: str, parsed: _Parsed, depth: int) -> Endpoint:
    """The last jump host of a ProxyJump list, each hop reached through the one before."""
    hops = [hop.strip() for hop in spec.split(",") if hop.strip()]
    if depth + len(hops) > MAX_HOPS:
        raise ConfigError(f"ProxyJump {spec}: more than {MAX_HOPS} jump hosts in a row (a loop in ssh_config?)")
    previous: Endpoint | None = None
    for hop in hops:
        hop_name, hop_given = parse_jump(hop)
        previous = _endpoint(hop_name, hop_given, parsed, depth + len(hops), previous)
    if previous is None:
        raise ConfigError(f"ProxyJump {spec!r} names no host")
    return previous


def parse_jump(hop: str) -> tuple[str, list[tuple[str, str]]]:
    """``[ssh://][user@]host[:port]`` -> (host, the user and port as given options)."""
    text = hop.removeprefix("ssh://").rstrip("/")
    given: list[tuple[str, str]] = []
    user, at, rest = text.rpartition("@")
    if at:
        given.append(("user", user))
        text = rest
    if text.startswith("["):
        host, _, after = text[1:].partition("]")
        port = after.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if not host:
        raise ConfigError(f"ProxyJump hop {hop!r} names no host (expected [user@]host[:port])")
    if port:
        given.append(("port", port))
    return host, given


def _check_not_itself(spec: str, name: str, port: int, user: str) -> None:
    """ssh's refusal of a ProxyJump to the host itself (``Host *`` with ``ProxyJump bastion`` matches bastion too)."""
    hop, given = parse_jump(spec.split(",")[0].strip())
    values = dict(given)
    if hop == name and values.get("port", str(DEFAULT_PORT)) == str(port) and values.get("user", user) == user:
        raise ConfigError(f"jumphost loop via {hop}: its ProxyJump names itself (exclude it, as in 'Host * !{hop}')")


class _Tokens:
    """ssh's %-tokens for one endpoint; %C is computed only when used."""

    def __init__(self, name: str, hostname: str, port: int, user: str) -> None:
        local = _local_hostname()
        self.values = {
            "%": "%", "h": hostname, "n": name, "p": str(port), "r": user, "u": _local_user(),
            "d": os.path.expanduser("~"), "L": local.split(".")[0], "l": local, "i": str(os.getuid()), "k": name,
        }  # fmt: skip

    def get(self, token: str) -> str | None:
        if token == "C":
            values = self.values
            return hashlib.sha1((values["l"] + values["h"] + values["p"] + values["r"]).encode()).hexdigest()
        return self.values.get(token)


class _ShellTokens:
    """The tokens of a ProxyCommand, which /bin/sh reads: a host or user name (from an inventory, an ssh_config)
    holding anything a shell would act on is refused, as ssh refuses it, instead of running as code."""

    def __init__(self, tokens: _Tokens) -> None:
        self.tokens = tokens

    def get(self, token: str) -> str | None:
        value = self.tokens.get(token)
        if value is not None and token in "hnrk" and not _SHELL_SAFE.match(value):
            raise ConfigError(
                f"ProxyCommand: %{token} would be {value!r}, which holds characters a shell acts on; "
                "fix the host or user name (ansible_host, HostName, User)"
            )
        return value


# Host and user names as a ProxyCommand may carry them: letters, digits and . _ - @ : % + [ ] (IPv6, scopes).
_SHELL_SAFE = re.compile(r"^[A-Za-z0-9._@:%+\[\]-]*$")


def _expand(value: str, tokens: Mapping[str, str] | _Tokens | _ShellTokens, keyword: str) -> str:
    if "%" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        token = match.group(1)
        found = tokens.get(token) if token != "%" else "%"
        if found is None:
            raise ConfigError(f"{keyword} {value!r}: ssh has no token %{token} there")
        return found

    return re.sub(r"%(.)", replace, value)


def _path(value: str, tokens: _Tokens, keyword: str) -> str:
    return os.path.expanduser(_expand(value, tokens, keyword))


def _files(value: str | None, default: tuple[str, ...], tokens: _Tokens, keyword: str) -> tuple[str, ...]:
    if value is None:
        return tuple(os.path.expanduser(path) for path in default)
    if value.strip().lower() == "none":
        return ()
    try:
        words = shlex.split(value)
    except ValueError:
        words = value.split()
    return tuple(_path(word, tokens, keyword) for word in words)


def _port(value: str | None, name: str) -> int:
    if value is None:
        return DEFAULT_PORT
    try:
        port = int(value)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise ConfigError(f"{name}: Port {value!r} is not a TCP port number (1 to 65535)")
    return port


def _seconds(value: str | None, keyword: str, name: str) -> float | None:
    if value is None or value.lower() == "none":
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"{name}: {keyword} {value!r} is not a number of seconds") from None
    return seconds if seconds > 0 else None


def _yes(value: str | None) -> bool:
    return value is not None and value.lower() in ("yes", "true", "on")


def _allowed(value: str | None) -> bool:
    return value is None or value.lower() not in _NO


@functools.cache
def _local_user() -> str:
    return getpass.getuser()


@functools.cache
def _local_hostname() -> str:
    return socket.gethostname()


def _unescape(value: str) -> str:
    return value.replace(_PERCENT, "%").replace(_TILDE, "~")


def _stamp(path: str) -> tuple[int, int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size, status.st_ino


def _parse(paths: tuple[str, ...]) -> _Parsed:
    stamps: dict[str, tuple[int, int, int] | None] = {}
    files: list[str] = []
    lines: list[str] = []
    try:
        for path in paths:
            stamps[path] = _stamp(path)
            if stamps[path] is None:
                continue
            if lines:
                lines.append("Host *")  # the previous file's last block ends with it
            base = os.path.dirname(SYSTEM_CONFIG) if path == SYSTEM_CONFIG else os.path.expanduser("~/.ssh")
            lines += _read(path, base, stamps, files, 0)
        config = paramiko.SSHConfig.from_text("\n".join(lines)) if files else None
    except (ConfigError, paramiko.ConfigParseError) as error:
        message = str(error) if isinstance(error, ConfigError) else f"ssh_config ({', '.join(files)}): {error}"
        return _Parsed(None, tuple(files), tuple(stamps.items()), f"{message}; fix the file or pass another with -F")
    return _Parsed(config, tuple(files), tuple(stamps.items()))


def _read(
    path: str, base: str, stamps: dict[str, tuple[int, int, int] | None], files: list[str], depth: int
) -> list[str]:
    """The lines of one ssh_config file for paramiko: Include expanded, '%' and '~' of values set aside."""
    if depth > MAX_INCLUDE_DEPTH:
        raise ConfigError(f"ssh_config {path}: Include nested more than {MAX_INCLUDE_DEPTH} deep (an Include loop?)")
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            text = stream.read()
    except OSError as error:
        raise ConfigError(f"cannot read ssh_config {path}: {error.strerror or error}") from None
    files.append(path)
    lines: list[str] = []
    block = "Host *"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        found = _LINE.match(line)
        if found is None:
            raise ConfigError(f"ssh_config {path} line {number}: cannot read {line!r}")
        keyword, value = found.group(1), found.group(2).strip()
        if keyword.lower() in ("host", "match"):
            if keyword.lower() == "match" and _MATCH_EXEC.search(value):
                raise ConfigError(f"ssh_config {path} line {number}: maint does not run Match exec commands")
            block = line
            lines.append(line)
        elif keyword.lower() == "include":
            for pattern in _words(value):
                pattern = os.path.join(base, os.path.expanduser(pattern))
                stamps[os.path.dirname(pattern)] = _stamp(os.path.dirname(pattern))
                for included in sorted(glob.glob(pattern)):
                    stamps[included] = _stamp(included)
                    lines += _read(included, base, stamps, files, depth + 1)
            lines.append(block)  # back in the block the Include stood in
        else:
            lines.append(f"{keyword} {value.replace('%', _PERCENT).replace('~', _TILDE)}")
    return lines


def _words(value: str) -> list[str]:
    try:
        return shlex.split(value)
    except ValueError:
        return value.split()
