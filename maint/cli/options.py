"""Options shared by several commands, and small rendering helpers."""

from __future__ import annotations

import datetime as dt
import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml

F = TypeVar("F", bound=Callable[..., Any])


def db_option(function: F) -> F:
    """``--db URL``: the store (default: $MAINT_DB, else maint.yml's store, else maint.db in the state directory)."""
    return click.option(
        "--db",
        "db_url",
        metavar="URL",
        help="Store URL (SQLAlchemy). Default: $MAINT_DB, else 'store' in maint.yml, else .maint/maint.db beside "
        "maint.yml, else ~/.local/state/maint/maint.db (/var/lib/maint/maint.db for root). See 'maint config show'.",
    )(function)


def reading_store(db_url: str | None, empty: int = 0, empty_json: Any = None) -> Any:
    """The store for a command that only reads it: opened, never created. Without one, one line on stderr says
    where it was looked for and the command ends with ``empty``: the exit code it has on an empty store (0 for a
    listing; 3 for a record asked for by id, as for an id the store does not hold: then it is that command's
    error, also as the error document of ``--format json``). ``empty_json`` (a listing's ``[]`` under
    ``--format json``) is printed on stdout first, as an empty store's listing would be."""
    from maint.errors import BadInput, ExitCode
    from maint.store import Store, StoreMissing

    try:
        return Store(db_url, create=False)
    except StoreMissing as missing:
        if empty == ExitCode.BAD_INPUT:
            raise BadInput(str(missing)) from None
        click.echo(f"maint: {missing}", err=True)
        if empty_json is not None:
            echo_json(empty_json)
        raise click.exceptions.Exit(empty) from None


class Timeout(click.ParamType):  # type: ignore[type-arg]  # generic in click >= 8.2 only, not 8.1
    """A timeout option: seconds or a duration (90, 15m, 2h), longer than 0 and at most 7d (a usage error
    otherwise, exit 2)."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        from maint.checks import timeout_seconds

        try:
            return timeout_seconds(value.strip() if isinstance(value, str) else value)
        except ValueError as error:
            self.fail(str(error), param, ctx)


TIMEOUT = Timeout()


@dataclass
class Invocation:
    """What the main entry point knows of the command it ran (the context object): the output format once
    ``--format`` is parsed, and whether the command printed its JSON document (never two)."""

    output_format: str = "text"
    printed: bool = False


def remember_format(context: click.Context, _parameter: click.Parameter, value: Any) -> Any:
    """The ``--format`` options' callback: note the format in the :class:`Invocation`, when there is one."""
    if isinstance(context.obj, Invocation) and value is not None:
        context.obj.output_format = value
    return value


def format_option(function: F) -> F:
    """``--format text|json``; read first (eager), so an error in any other option is reported in that format
    (:func:`maint.reports.documents.error_document`)."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        is_eager=True,
        callback=remember_format,
        help="Output format; json writes one JSON document to stdout, also when the command fails.",
    )(function)


FORCE_KEY = "maint.force"


def _remember_force(context: click.Context, _parameter: click.Parameter, value: bool) -> bool:
    context.meta[FORCE_KEY] = value
    return value


def junit_xml_option(function: F) -> F:
    """``--junit-xml PATH`` and ``--force-junit-xml``: also write the run as JUnit XML (run, resume, rerun).

    ``--force-junit-xml`` (named so, since on a run a plain --force would read as forcing the run) is kept
    in the context (see :func:`force_given`) rather than passed to the command.
    """
    function = click.option(
        "--force-junit-xml", is_flag=True, expose_value=False, callback=_remember_force,
        help="Let --junit-xml replace an existing file that is not a maint report (never the store in use).",
    )(function)  # fmt: skip
    return click.option(
        "--junit-xml", "junit_xml", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
        help="Also write the run as JUnit XML to PATH (for CI test reports), whatever its exit code. An existing "
        "file is replaced only if it is a maint report (else exit 3; see --force-junit-xml).",
    )(function)  # fmt: skip


def force_given() -> bool:
    """Whether the running command was given ``--force-junit-xml`` (:func:`junit_xml_option`)."""
    context = click.get_current_context(silent=True)
    return bool(context is not None and context.meta.get(FORCE_KEY))


def inventory_option(function: F) -> F:
    """``-i/--inventory`` (repeatable; default $MAINT_INVENTORY)."""
    return click.option(
        "-i",
        "--inventory",
        "inventory",
        multiple=True,
        metavar="INVENTORY",
        help="Ansible inventory: INI/YAML file, directory, script or 'host1,host2,' (repeatable). "
        "Default: $MAINT_INVENTORY.",
    )(function)


def vault_option(function: F) -> F:
    """``--vault-password-file FILE``, ``--vault-id [LABEL@]FILE`` (both repeatable) and ``--ask-vault-pass``,
    passed on as one ``vault`` value (see :func:`vault_from_options`)."""

    def remember(context: click.Context, parameter: click.Parameter, value: Any) -> Any:
        context.meta.setdefault(VAULT_KEY, {})[parameter.name] = value
        return value

    options: list[tuple[tuple[str, str], dict[str, Any]]] = [
        (("--vault-password-file", "password_files"),
         {"multiple": True, "metavar": "FILE", "help": "A file holding the Ansible Vault password (or an "
          "executable printing it), as in ansible-playbook (repeatable). Default: $ANSIBLE_VAULT_PASSWORD_FILE."}),
        (("--vault-id", "vault_ids"),
         {"multiple": True, "metavar": "[LABEL@]FILE", "help": "A vault id and its password file (repeatable)."}),
        (("--ask-vault-pass", "ask_vault_pass"),
         {"is_flag": True, "help": "Ask for the vault password on the terminal."}),
    ]  # fmt: skip
    for declaration, extra in options:
        function = click.option(*declaration, expose_value=False, callback=remember, **extra)(function)
    return function


VAULT_KEY = "maint.vault"
BECOME_KEY = "maint.become"


def _remember_become(context: click.Context, parameter: click.Parameter, value: Any) -> Any:
    context.meta.setdefault(BECOME_KEY, {})[parameter.name] = value
    return value


def ask_become_pass_option(function: F) -> F:
    """``-K/--ask-become-pass`` alone (resume and rerun replay the run's other become options)."""
    return click.option(
        "-K", "--ask-become-pass", "ask_become_pass", is_flag=True, expose_value=False, callback=_remember_become,
        help="Ask for the become password on the terminal (never recorded).",
    )(function)  # fmt: skip


def become_option(function: F) -> F:
    """Ansible's ``-b/--become``, ``--become-user``, ``--become-method`` and ``-K/--ask-become-pass``, passed on as
    one value (see :func:`become_from_options`); the lowest precedence of the become settings."""
    options: list[tuple[tuple[str, ...], dict[str, Any]]] = [
        (("-b", "--become", "become"),
         {"is_flag": True, "default": None, "help": "Run native steps as another user (sudo to root by default), "
          "unless a playbook, step or inventory variable says otherwise."}),
        (("--become-user", "become_user"), {"metavar": "USER", "help": "The user to become (default root)."}),
        (("--become-method", "become_method"),
         {"type": click.Choice(["sudo", "su", "doas"]), "help": "How to become it (default sudo)."}),
    ]  # fmt: skip
    for declaration, extra in options:
        function = click.option(*declaration, expose_value=False, callback=_remember_become, **extra)(function)
    return ask_become_pass_option(function)


def become_from_options() -> tuple[Any, str | None]:
    """The running command's become keywords (:class:`maint.become.Keywords`; ansible.cfg's become, become_user
    and become_method where an option is not given) and the password typed at -K (ansible.cfg's become_ask_pass
    is not honoured: a prompt that was not asked for on the command line would stop a scheduled run)."""
    from maint import ansible_config
    from maint.become import Keywords

    given = click.get_current_context().meta.get(BECOME_KEY, {})
    password = None
    if given.get("ask_become_pass"):
        password = click.prompt("BECOME password", hide_input=True, err=True)
    wanted = {name: given.get(option) for name, option in
              (("become", "become"), ("become_user", "become_user"), ("become_method", "become_method"))}  # fmt: skip
    if any(value is None for value in wanted.values()):
        ansible = ansible_config.read()
        wanted = {name: ansible.get(name) if value is None else value for name, value in wanted.items()}
    return Keywords(wanted["become"], wanted["become_user"], wanted["become_method"]), password


def project_dir() -> Path:
    """The project directory: the directory of the project's maint.yml in use (``--config``, ``$MAINT_CONFIG``,
    ./ or a parent directory's), else the current directory (:mod:`maint.config.discovery`)."""
    from maint.config import discover

    return discover().project_dir


def vault_from_options() -> Any:
    """The running command's :class:`maint.vault.VaultOptions` (:func:`vault_option`), prompting for the
    password on the terminal with ``--ask-vault-pass``."""
    from maint.vault import vault_options

    context = click.get_current_context()
    given = context.meta.get(VAULT_KEY, {})
    password = None
    if given.get("ask_vault_pass"):
        password = click.prompt("Vault password", hide_input=True, err=True)
    return vault_options(given.get("password_files") or (), given.get("vault_ids") or (), password)


class _VaultLoader(yaml.SafeLoader):
    """YAML's safe loader, reading ``!vault |`` values as ansible-inventory encodes them (decrypted when the run
    is planned)."""


def _vault_value(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, str]:
    return {"__ansible_vault": str(loader.construct_scalar(node))}  # type: ignore[arg-type]


_VaultLoader.add_constructor("!vault", _vault_value)


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout, with ``schema_version`` (:func:`maint.cli.documents.versioned`),
    and note that the command printed its document."""
    from maint.reports.documents import versioned

    click.echo(json.dumps(versioned(data), indent=2, sort_keys=False, default=str))
    context = click.get_current_context(silent=True)
    if context is not None and isinstance(context.obj, Invocation):
        context.obj.printed = True


def parse_extra_vars(values: tuple[str, ...]) -> dict[str, Any]:
    """Ansible-style ``-e`` values: ``key=value [key=value ...]``, a JSON/YAML mapping, or ``@file``."""
    result: dict[str, Any] = {}
    for value in values:
        text = value.strip()
        if text.startswith("@"):
            path = Path(text[1:])
            try:
                loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=_VaultLoader)
            except OSError as error:
                raise click.BadParameter(f"cannot read {path}: {error.strerror}", param_hint="-e") from None
            except yaml.YAMLError as error:
                raise click.BadParameter(f"{path} is not valid YAML: {error}", param_hint="-e") from None
            if isinstance(loaded, str) and loaded.startswith("$ANSIBLE_VAULT;"):
                # Decrypted whole, its values would be recorded with the run's variables as plaintext.
                raise click.BadParameter(
                    f"{path} is encrypted whole with ansible-vault: maint reads vaulted values, not vaulted files "
                    "(decrypt it and encrypt its values with 'ansible-vault encrypt_string')", param_hint="-e",
                )  # fmt: skip
            if not isinstance(loaded, dict):
                raise click.BadParameter(f"{path} must hold a mapping of variables", param_hint="-e")
            result.update(loaded)
        elif text.startswith("{"):
            try:
                loaded = yaml.safe_load(text)
            except yaml.YAMLError:
                loaded = None
            if not isinstance(loaded, dict):
                raise click.BadParameter(f"not a JSON/YAML mapping: {value}", param_hint="-e")
            result.update(loaded)
        else:
            for pair in shlex.split(text):
                key, sep, item = pair.partition("=")
                if not sep or not key.isidentifier():
                    raise click.BadParameter(
                        f"expected KEY=VALUE, a JSON mapping or @file, got {pair!r}", param_hint="-e"
                    )
                result[key] = item
    return result



AGE_EXAMPLE = "e.g. 30d, 12h, 2w or 2026-03-01 or 2026-03-01T06:00:00Z"


def bound(value: str, option: str, now: dt.datetime, *, end_of_day: bool = False) -> str:
    """The stored timestamp of an age-or-date option (an age before ``now`` or an ISO date/time).

    A date alone given with ``end_of_day`` means the end of that day. Raises click.BadParameter naming
    ``option`` with an example when the value is neither.
    """
    from maint.clock import timestamp
    from maint.stats import parse_bound

    try:
        return timestamp(parse_bound(value, now, end_of_day=end_of_day))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an age or a date ({AGE_EXAMPLE})", param_hint=option) from None


def period(since: str | None, until: str | None, now: dt.datetime) -> tuple[str | None, str | None]:
    """The stored timestamps of ``--since`` and ``--until`` (None where not given).

    Raises click.BadParameter for a value that is neither an age nor a date, or a --since after --until.
    """
    start = bound(since, "--since", now) if since is not None else None
    end = bound(until, "--until", now, end_of_day=True) if until is not None else None
    if start is not None and end is not None and start > end:
        raise click.BadParameter(
            f"{since!r} is after --until {until!r} (e.g. --since 30d --until 7d)", param_hint="--since"
        )
    return start, end


def since_option(name: str, help_text: str) -> Callable[[F], F]:
    """An option taking an age or an ISO date/time, passed on as the store's UTC timestamp text
    (``--until`` with a date alone means the end of that day)."""

    def convert(_context: click.Context, _parameter: click.Parameter, value: str | None) -> str | None:
        from maint.clock import utc_now

        return None if value is None else bound(value, name, utc_now(), end_of_day=name == "--until")

    def decorate(function: F) -> F:
        return click.option(name, metavar="AGE|DATE", callback=convert, help=help_text)(function)

    return decorate
