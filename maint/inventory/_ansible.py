"""The glue between maint and ansible-core's inventory code.

Everything that imports ansible lives here and is imported only by :func:`maint.inventory.load_inventory`,
so commands that never read an inventory (``maint --help``) do not pay for ansible-core.

Three things differ from running ansible-inventory, on purpose:

- an inventory source that no plugin can parse is an error, not a warning (ansible's
  ``INVENTORY_ANY_UNPARSED_IS_FAILED``), and the error names the file and line;
- ansible's Display stays silent while maint uses it: warnings and deprecations are captured, never
  printed on maint's stderr;
- importing ansible does not create ``~/.ansible/tmp``: its local temp dir goes to the system temp dir.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from maint.errors import BadInput

# Set while ansible.constants is first imported: the config values are read at import time, and
# DEFAULT_LOCAL_TMP is created then (a directory under the user's home by default). The process
# environment is restored afterwards so that ansible-playbook runs started later are unaffected.
_IMPORT_ENVIRONMENT = {
    "ANSIBLE_LOCAL_TEMP": tempfile.gettempdir(),
    "ANSIBLE_DEPRECATION_WARNINGS": "False",
    "ANSIBLE_SYSTEM_WARNINGS": "False",
    "ANSIBLE_LOCALHOST_WARNING": "False",
    "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
    "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
    "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True",
    "ANSIBLE_HOST_PATTERN_MISMATCH": "ignore",
}
# The user's own settings win for these; the others are what maint needs to work at all.
_USER_MAY_SET = frozenset({"ANSIBLE_LOCAL_TEMP"})

# Forced again on the constants module after import, in case ansible was imported before maint was.
_CONSTANTS: dict[str, object] = {
    "INVENTORY_UNPARSED_IS_FAILED": True,
    "INVENTORY_ANY_UNPARSED_IS_FAILED": True,
    "INVENTORY_UNPARSED_WARNING": False,
    "HOST_PATTERN_MISMATCH": "ignore",
    "LOCALHOST_WARNING": False,
    "SYSTEM_WARNINGS": False,
}

# Seconds one call of a dynamic inventory script (--list, or --host NAME) may take: maint.yml's
# inventory_timeout, set by load() for the scripts it runs.
DEFAULT_SCRIPT_TIMEOUT = 60.0
_script_timeout: contextvars.ContextVar[float] = contextvars.ContextVar(
    "maint_inventory_script_timeout", default=DEFAULT_SCRIPT_TIMEOUT
)

_prepare_lock = threading.Lock()
_prepared = False


def prepare() -> None:
    """Import and configure ansible-core once per process (idempotent and thread-safe)."""
    global _prepared
    with _prepare_lock:
        if _prepared:
            return
        saved = {name: os.environ.get(name) for name in _IMPORT_ENVIRONMENT}
        try:
            for name, value in _IMPORT_ENVIRONMENT.items():
                if name in _USER_MAY_SET and os.environ.get(name):
                    continue
                os.environ[name] = value
            with _silenced_stdio():
                from ansible import constants
                from ansible.plugins import loader as plugin_loader
                from ansible.utils.collection_loader import AnsibleCollectionConfig

                if AnsibleCollectionConfig.collection_finder is None:
                    # what every ansible CLI does first: without it, inventory plugins from
                    # collections (`plugin: amazon.aws.aws_ec2`) cannot be found.
                    plugin_loader.init_plugin_loader()
        finally:
            for name, old in saved.items():
                if old is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = old
        for constant, setting in _CONSTANTS.items():
            setattr(constants, constant, setting)
        _prepared = True


@contextlib.contextmanager
def _silenced_stdio() -> Iterator[None]:
    """Swallow what ansible writes directly on stdout/stderr while it is imported."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Capture ansible's warnings and deprecation messages instead of printing them.

    ansible-core 2.19 collects them in a context-local ``DeferredWarningContext`` (thread-safe); older
    releases have no such hook, so their stderr is redirected instead.
    """
    try:
        from ansible._internal._display_utils import DeferredWarningContext
    except ImportError:  # ansible-core < 2.19
        with _silenced_stdio():
            yield
        return
    with DeferredWarningContext(variables={}):
        yield


@dataclass
class Failure:
    """One inventory plugin's failure to parse one source."""

    plugin: str
    source: str
    error: BaseException
    line: int | None = None


@dataclass
class Recorder:
    """What the inventory manager saw: plugin failures and the sources being parsed."""

    failures: list[Failure] = field(default_factory=list)
    stack: list[str] = field(default_factory=list)


class ScriptTimeout(BadInput):
    """A dynamic inventory script ran longer than ``inventory_timeout``; it was ended with its children."""


class _BoundedPopen(subprocess.Popen[bytes]):
    """The Popen of ansible's script plugin: the script runs in a process group of its own, and its
    ``communicate()`` is bounded by the inventory timeout. At the timeout, or when maint is interrupted
    while it waits, the whole group is killed, so that no child of the script (a hung API call, a
    ``sleep``) outlives it."""

    def __init__(self, args: Any, *positional: Any, **options: Any) -> None:
        options["start_new_session"] = True
        super().__init__(args, *positional, **options)
        self._limit = _script_timeout.get()
        self._script = str(args[0]) if isinstance(args, (list, tuple)) and args else str(args)

    def communicate(self, input: Any = None, timeout: float | None = None) -> tuple[Any, Any]:
        try:
            return super().communicate(input, timeout=self._limit)
        except subprocess.TimeoutExpired:
            self._end_group()
            raise ScriptTimeout(
                f"inventory script did not finish within {self._limit:g} s: it was stopped with its child processes",
                source=self._script,
                hint="make it answer faster, or give it longer with inventory_timeout in maint.yml (e.g. 5m)",
            ) from None
        except BaseException:
            self._end_group()
            raise

    def _end_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        try:
            super().communicate(timeout=5)  # reaps the script; its pipes close with the group
        except subprocess.TimeoutExpired:  # a child that left the group still holds the pipes open
            self.kill()
            self.wait()


# Stands in for the subprocess module inside ansible's script plugin (it uses Popen and PIPE).
_BOUNDED_SUBPROCESS = types.SimpleNamespace(Popen=_BoundedPopen, PIPE=subprocess.PIPE)


def _bound_scripts(plugin: Any) -> None:
    """Make ansible's script plugin run inventory scripts through :class:`_BoundedPopen`."""
    module = sys.modules.get(type(plugin).__module__)
    if module is not None and getattr(module, "subprocess", None) is subprocess:
        module.subprocess = _BOUNDED_SUBPROCESS  # type: ignore[attr-defined]


def make_manager(loader: Any, sources: Sequence[str], recorder: Recorder) -> Any:
    """Build and parse an ansible ``InventoryManager`` over ``sources``, recording why plugins failed.

    Returns the manager; raises ``AnsibleError`` as ansible does (the caller turns it into
    :class:`BadInput` with :func:`translate_failure` and the same ``recorder``).
    """
    from ansible.inventory.manager import InventoryManager

    class RecordingInventoryManager(InventoryManager):  # type: ignore[misc]
        """ansible's manager, keeping the exception of each failed plugin instead of only warning."""

        def _fetch_inventory_plugins(self) -> list[Any]:
            plugins: list[Any] = super()._fetch_inventory_plugins()
            for plugin in plugins:
                _record_failures(plugin, recorder)
                if str(getattr(plugin, "_load_name", "")).rsplit(".", 1)[-1] == "script":
                    _bound_scripts(plugin)
            return plugins

        def parse_source(self, source: str, cache: bool = False) -> bool:
            recorder.stack.append(source)
            parsed: bool = super().parse_source(source, cache=cache)
            # left in place when parsing raised, so the failing (innermost) source is stack[-1]
            recorder.stack.pop()
            return parsed

    return RecordingInventoryManager(loader, sources=list(sources))


def _record_failures(plugin: Any, recorder: Recorder) -> None:
    """Wrap one plugin instance's ``parse`` so that its exception is recorded before ansible eats it."""
    name = str(getattr(plugin, "_load_name", type(plugin).__name__)).rsplit(".", 1)[-1]
    state: dict[str, int | None] = {"line": None}
    original_parse: Callable[..., Any] = plugin.parse

    def parse(inventory: Any, loader: Any, path: str, *args: Any, **kwargs: Any) -> Any:
        state["line"] = None
        try:
            return original_parse(inventory, loader, path, *args, **kwargs)
        except Exception as error:
            recorder.failures.append(Failure(name, str(path), error, state["line"]))
            raise

    plugin.parse = parse

    # ansible-core 2.19's INI plugin tracks the current line in `_origin` but clears it before it
    # raises; keep it so the error can name the line.
    inner_parse = getattr(plugin, "_parse", None)
    if name == "ini" and callable(inner_parse) and hasattr(plugin, "_origin"):

        def _parse(*args: Any, **kwargs: Any) -> Any:
            try:
                return inner_parse(*args, **kwargs)
            except Exception:
                state["line"] = getattr(getattr(plugin, "_origin", None), "line_num", None)
                raise

        plugin._parse = _parse


_HINTS = {
    "ini": "INI inventory lines are '[group]', '[group:vars]', '[group:children]', 'host key=value ...'",
    "yaml": "a YAML inventory maps group names to 'hosts', 'vars' and 'children'",
    "auto": "a YAML inventory plugin config needs a 'plugin:' key naming an installed inventory plugin",
    "toml": "a TOML inventory maps group names to 'hosts', 'vars' and 'children'",
    "script": "an inventory script must be executable, exit 0 and print inventory JSON for --list",
    "host_list": "a host list is comma-separated: 'host1,host2,' (a single host needs a trailing comma)",
}
_GENERIC_HINT = "maint reads Ansible inventories: INI, YAML, a directory of them, or an executable script"
_YAML_EXTENSIONS = (".yml", ".yaml", ".json")


def translate_failure(error: BaseException, recorder: Recorder) -> BadInput:
    """Turn ansible's "failed to parse inventory" into one :class:`BadInput` naming file, line and cause."""
    for failure in recorder.failures:
        if isinstance(failure.error, ScriptTimeout):  # already one line naming the script
            return failure.error
    source = recorder.stack[-1] if recorder.stack else None
    failures = [failure for failure in recorder.failures if failure.source == source]
    if source is None or (not failures and _origin_of(error)[0]):
        return describe(error)  # not a plugin's failure: a group_vars/host_vars file, say
    if not failures:
        return BadInput(
            "not a recognised inventory source (no inventory plugin accepted it)",
            source=source,
            hint=_GENERIC_HINT,
        )
    failure = _most_relevant(source, failures)
    path, line = _origin_of(failure.error)
    if failure.line:
        line = failure.line
    if line is None:  # ansible-core < 2.19 writes "path:line:" into the INI parser's messages
        match = re.search(re.escape(source) + r":(\d+):", str(failure.error))
        line = int(match.group(1)) if match else None
    message = _cause_message(failure.error)
    path = path or source
    text = _line_text(path, line)
    if text and text not in message:
        message = f"{message}, in: {text}"
    return BadInput(message, source=path, line=line, hint=_HINTS.get(failure.plugin, _GENERIC_HINT))


def _most_relevant(source: str, failures: list[Failure]) -> Failure:
    """The failure of the plugin a person most likely meant for this file.

    Every plugin that accepts a file tries it, so a broken INI file also "fails" as YAML and a
    broken script also fails as INI; the file's kind says which message is useful.
    """
    by_plugin = {failure.plugin: failure for failure in failures}
    extension = os.path.splitext(source)[1].lower()
    if os.path.isfile(source) and os.access(source, os.X_OK):
        preferred = ["script"]
    elif extension in _YAML_EXTENSIONS:
        yaml_failure = by_plugin.get("yaml")
        if yaml_failure is not None and "Plugin configuration YAML" in str(yaml_failure.error):
            preferred = ["auto", "yaml"]
        else:
            preferred = ["yaml", "auto"]
    elif extension == ".toml":
        preferred = ["toml"]
    elif "," in source and not os.path.exists(source):
        preferred = ["host_list"]
    else:
        preferred = ["ini", "yaml"]
    for name in preferred:
        if name in by_plugin:
            return by_plugin[name]
    return failures[0]


def _line_text(path: str, line: int | None) -> str | None:
    """The stripped text of line ``line`` of the file, shortened, or None."""
    if not line or not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, text in enumerate(handle, start=1):
                if number == line:
                    text = text.strip()
                    return text if len(text) <= 80 else text[:77] + "..."
    except OSError:
        return None
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and its causes, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)


def _origin_of(error: BaseException) -> tuple[str | None, int | None]:
    """The file and line ansible attached to the error or one of its causes, if any."""
    try:
        from ansible._internal._datatag._tags import Origin
    except ImportError:  # ansible-core < 2.19: positions only in messages
        Origin = None
    path: str | None = None
    for cause in _chain(error):
        obj = getattr(cause, "obj", None)
        if Origin is not None and obj is not None:
            origin = obj if isinstance(obj, Origin) else Origin.get_tag(obj)
            if origin is not None and origin.path:
                if origin.line_num:
                    return origin.path, origin.line_num
                path = path or origin.path
        mark = getattr(cause, "problem_mark", None)  # a bare PyYAML error
        if mark is not None:
            return path, mark.line + 1
    return path, None


_TAGGED_TYPE = re.compile(r"<class '[\w.]*?_AnsibleTagged(\w+)'>")


def _cause_message(error: BaseException) -> str:
    """One line saying what is wrong, without ansible's multi-line context blocks.

    ansible-core's own message already appends the causes ("YAML parsing failed: ..."); the INI
    plugin's generic "Failed to parse inventory" prefix says nothing the file name does not.
    """
    message = _TAGGED_TYPE.sub(lambda match: "a " + match.group(1).lower(), _one_line(str(error)))
    for prefix in ("Failed to parse inventory: ", "Failed to parse inventory."):
        if message.startswith(prefix) and len(message) > len(prefix):
            message = message[len(prefix) :].strip()
    stderr = _script_stderr(error)
    if stderr and stderr not in message:
        message = f"{message} (stderr: {stderr})"
    return message


def _script_stderr(error: BaseException) -> str | None:
    """The last line an inventory script wrote on stderr, which ansible puts in its help text."""
    for cause in _chain(error):
        help_text = getattr(cause, "_help_text", None) or getattr(cause, "help_text", None)
        if isinstance(help_text, str) and help_text.strip():
            lines = [line.strip() for line in help_text.strip().splitlines() if line.strip()]
            lines = [line for line in lines if not line.lower().startswith("standard error from")]
            if lines:
                return lines[-1]
    return None


def _one_line(text: str) -> str:
    """Collapse a possibly multi-line message to its first paragraph on one line."""
    first = text.strip().split("\n\n", 1)[0]
    return " ".join(first.split())


def describe(error: BaseException) -> BadInput:
    """A :class:`BadInput` for an ansible error raised outside a plugin (vars files, templating)."""
    path, line = _origin_of(error)
    hint = _GENERIC_HINT
    if (path and os.path.splitext(path)[1].lower() in _YAML_EXTENSIONS) or "YAML" in str(error):
        hint = "group_vars/ and host_vars/ files are YAML mappings of variable names to values"
    return BadInput(_cause_message(error), source=path, line=line, hint=hint)


def one_line(text: str) -> str:
    """Collapse a possibly multi-line ansible message to its first paragraph on one line."""
    return _one_line(text)


def load(sources: Sequence[str], script_timeout: float = DEFAULT_SCRIPT_TIMEOUT) -> tuple[Any, Any, Any]:
    """Parse the sources: ``(loader, InventoryManager, VariableManager)``, or :class:`BadInput`
    (:class:`ScriptTimeout` when a dynamic inventory script runs longer than ``script_timeout`` seconds).

    Call :func:`prepare` first.
    """
    token = _script_timeout.set(script_timeout)
    try:
        return _load(sources)
    finally:
        _script_timeout.reset(token)


def _load(sources: Sequence[str]) -> tuple[Any, Any, Any]:
    from ansible.errors import AnsibleError
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.manager import VariableManager
    from ansible.vars.plugins import get_vars_from_inventory_sources

    recorder = Recorder()
    with quiet():
        loader = DataLoader()
        try:
            manager = make_manager(loader, sources, recorder)
        except AnsibleError as error:
            raise translate_failure(error, recorder) from None
        variables = VariableManager(loader=loader, inventory=manager)
        # Ansible reads group_vars/ and host_vars/ files only when a host's variables are first
        # asked for; read them all now, so that a broken one is an error of loading the inventory.
        # ansible's loader caches what it parsed, so host selection does not read them again.
        entities = [*manager.groups.values(), *manager.hosts.values()]
        try:
            get_vars_from_inventory_sources(loader, list(sources), entities, "all")
        except AnsibleError as error:
            raise describe(error) from None
    return loader, manager, variables


def _encoder() -> Any:
    try:
        from ansible._internal._json._profiles._inventory_legacy import Encoder
    except ImportError:  # ansible-core < 2.19
        from ansible.parsing.ajson import AnsibleJSONEncoder

        return AnsibleJSONEncoder
    return Encoder


def encoder_profile_name() -> str:
    """The ``_meta.profile`` value ansible-inventory --list writes."""
    return str(getattr(_encoder(), "profile_name", "inventory_legacy"))


def plain(value: dict[str, Any]) -> dict[str, Any]:
    """Ansible's (tagged, possibly vaulted) values as plain JSON types, encoded as ansible-inventory does."""
    result: dict[str, Any] = json.loads(json.dumps(value, cls=_encoder()))
    return result


def boolean(value: Any) -> bool:
    """Ansible's reading of a boolean variable ("yes", "false", 0, ...); unknown words are False."""
    from ansible.module_utils.parsing.convert_bool import boolean as ansible_boolean

    return bool(ansible_boolean(value, strict=False))


def value_origin(value: Any) -> tuple[str | None, int | None]:
    """The file and line a variable's value was read from, when ansible knows it."""
    try:
        from ansible._internal._datatag._tags import Origin
    except ImportError:
        return None, None
    origin = Origin.get_tag(value)
    if origin is None or not origin.path:
        return None, None
    return origin.path, origin.line_num


# ansible-core's vaulted values: 2.19's EncryptedString, the AnsibleVaultEncryptedUnicode of earlier releases.
_VAULTED_TYPES = frozenset({"EncryptedString", "AnsibleVaultEncryptedUnicode"})


def connection_vars(
    host: Any, public: Mapping[str, Any], names: Sequence[str], loader: Any, variables: Any
) -> dict[str, Any]:
    """The host's connection variables, with Jinja2 templates rendered as Ansible would render them.

    ``ansible_host: "{{ ip }}"`` is common in inventories; Ansible renders it when it connects, so
    maint does too (only values that contain a template pay for it). Values keep ansible's origin
    tags, so that a caller can name the file and line of a bad value. Raises :class:`BadInput`
    naming the variable and the file it came from when a template cannot be rendered.
    """
    from ansible.errors import AnsibleError

    result: dict[str, Any] = {}
    templar = None
    for name in names:
        if name not in public:
            continue
        value = public[name]
        if type(value).__name__ in _VAULTED_TYPES:
            # The inventory (and its cache) is read without vault passwords, and a host's address and login
            # are part of the cached record: they cannot be secrets.
            source, line = value_origin(value)
            raise BadInput(
                f"host {host.name}: {name} is encrypted with Ansible Vault; maint reads connection variables "
                "in the clear", source=source, line=line,
                hint="leave ansible_host, ansible_port, ansible_user and the SSH options unencrypted",
            )  # fmt: skip
        if isinstance(value, str) and ("{{" in value or "{%" in value):
            if templar is None:
                from ansible.template import Templar

                with quiet():
                    all_vars = variables.get_vars(host=host, include_hostvars=True, stage="all")
                templar = Templar(loader=loader, variables=all_vars)
            try:
                with quiet():
                    value = templar.template(value)
            except AnsibleError as error:
                source, line = value_origin(public[name])
                raise BadInput(
                    f"host {host.name}: cannot render {name}: {_cause_message(error)}",
                    source=source,
                    line=line,
                    hint="the template may use only variables the host has",
                ) from None
        result[name] = value
    return result
