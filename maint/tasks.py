"""Maintenance tasks written in Python: the ``maint.task`` decorator, and finding and checking a task function.

A task is a function that takes a ``fabric.Connection`` to one host first and its parameters as keyword
arguments (see docs/python-tasks.md)::

    import maint

    @maint.task(check_mode=True)
    def key_mode(c, path, check=False):
        ...

It is named in a playbook as ``package.module:function`` (imported as usual) or ``FILE.py:function`` (a file
beside the playbook or in the project directory, imported by path). A file is imported once per content
(its modification time and size) under a private module name that stays out of ``sys.modules``, so two
projects' ``maintfile.py`` never meet.

Pure apart from importing the module a reference names.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

# The attribute ``task`` sets on a function: whether it supports check mode.
CHECK_MODE_ATTRIBUTE = "__maint_check_mode__"
# The keyword argument through which a task learns that it runs in check mode.
CHECK_ARGUMENT = "check"
# The file a project's own tasks live in, in the project directory or its playbooks/ (``maint checks list``).
MAINTFILE = "maintfile.py"

Function = TypeVar("Function", bound=Callable[..., Any])


class TaskError(ValueError):
    """A task reference that names no importable function, or arguments its signature does not take."""


def task(check_mode: bool = False) -> Callable[[Function], Function]:
    """Mark a function as a maintenance task: ``check_mode=True`` says that it may run under ``maint run
    --check`` (it then gets ``check=True`` if it takes a ``check`` argument; one that does not only reads);
    ``check_mode=False`` says that check mode skips it even if it takes ``check``. Returns the function."""

    def mark(function: Function) -> Function:
        setattr(function, CHECK_MODE_ATTRIBUTE, bool(check_mode))
        return function

    return mark


def supports_check_mode(function: Callable[..., Any]) -> bool:
    """Whether ``function`` may run in check mode: as ``task(check_mode=...)`` says, else whether it takes
    ``check``."""
    marked = getattr(function, CHECK_MODE_ATTRIBUTE, None)
    if marked is not None:
        return bool(marked)
    return CHECK_ARGUMENT in _parameters(function)


def takes_check(function: Callable[..., Any]) -> bool:
    """Whether ``function`` takes a ``check`` keyword argument (by name, or through ``**kwargs``)."""
    parameters = _parameters(function)
    return CHECK_ARGUMENT in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


@dataclass(frozen=True)
class Argument:
    """One parameter a task takes from its playbook step: its name, whether it has a default, and that default."""

    name: str
    required: bool
    default: Any = None


def arguments(function: Callable[..., Any]) -> list[Argument]:
    """The parameters ``function`` takes from a step: all but the first (the connection) and ``check``."""
    found = []
    for parameter in list(_parameters(function).values())[1:]:
        if parameter.name == CHECK_ARGUMENT or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        required = parameter.default is parameter.empty
        found.append(Argument(parameter.name, required, None if required else parameter.default))
    return found


def check_arguments(function: Callable[..., Any], given: Iterable[str], what: str) -> None:
    """Raise TaskError naming the first argument of ``given`` that ``function`` does not take, or the first
    it needs that is not given; ``what`` names the task in the message."""
    parameters = list(_parameters(function).values())
    if not parameters or parameters[0].kind not in (parameters[0].POSITIONAL_ONLY, parameters[0].POSITIONAL_OR_KEYWORD,
                                                    parameters[0].VAR_POSITIONAL):  # fmt: skip
        raise TaskError(f"{what} must take the connection as its first positional argument")
    names = set(given)
    if CHECK_ARGUMENT in names:
        raise TaskError(f"'{CHECK_ARGUMENT}' is set by maint in check mode, not by a playbook")
    accepted = {argument.name for argument in arguments(function)}
    open_ended = any(p.kind is p.VAR_KEYWORD for p in parameters)
    unknown = sorted(names - accepted)
    if unknown and not open_ended:
        known = ", ".join(sorted(accepted)) or "none"
        raise TaskError(f"unknown parameter '{unknown[0]}' for {what} (it takes: {known})")
    missing = [argument.name for argument in arguments(function) if argument.required and argument.name not in names]
    if missing:
        raise TaskError(f"{what} needs parameter '{missing[0]}'")


def summary(function: Callable[..., Any]) -> str:
    """The first line of ``function``'s docstring, or ''."""
    doc = inspect.getdoc(function) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _parameters(function: Callable[..., Any]) -> Mapping[str, inspect.Parameter]:
    try:
        return inspect.signature(function).parameters
    except (TypeError, ValueError):
        return {}


# Loading ---------------------------------------------------------------------------------------------

_lock = threading.Lock()
_files: dict[tuple[str, int, int], ModuleType] = {}


def split_reference(reference: str) -> tuple[str, str]:
    """``(module or file, function)`` of ``module:function``; raises TaskError for anything else."""
    module, sep, name = str(reference).rpartition(":")
    if not sep or not module.strip() or not name.strip() or not name.isidentifier():
        raise TaskError(f"expected package.module:function or FILE.py:function, got {reference!r}")
    return module.strip(), name.strip()


def find_file(name: str, places: Sequence[Path]) -> Path:
    """The file ``name`` (a path ending in .py) is: absolute, or the first found under ``places``; raises
    TaskError naming the places looked in."""
    path = Path(name).expanduser()
    if path.is_absolute():
        if path.is_file():
            return path
        raise TaskError(f"task file {path} not found")
    for place in places:
        candidate = place / path
        if candidate.is_file():
            return candidate.resolve()
    where = ", ".join(str(place) for place in dict.fromkeys(places)) or "the current directory"
    raise TaskError(f"task file {name} not found (looked in {where})")


def load_file(path: Path) -> ModuleType:
    """The module of the Python file ``path``, imported once per content; raises TaskError with the error's
    one-line message when importing it fails."""
    resolved = path.resolve()
    try:
        stat = resolved.stat()
    except OSError as error:
        raise TaskError(f"cannot read {path}: {error.strerror}") from None
    key = (str(resolved), stat.st_mtime_ns, stat.st_size)
    with _lock:
        module = _files.get(key)
        if module is not None:
            return module
        name = f"_maint_task_{abs(hash(key)):x}"
        spec = importlib.util.spec_from_file_location(name, resolved)
        if spec is None or spec.loader is None:
            raise TaskError(f"cannot import {path}: not a Python file")
        module = importlib.util.module_from_spec(spec)
        # While it runs, the module is in sys.modules (dataclasses and typing look it up there) and its
        # directory on sys.path (so it may import the modules beside it); neither stays.
        sys.modules[name] = module
        directory = str(resolved.parent)
        sys.path.insert(0, directory)
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            raise TaskError(f"importing {path} failed: {error_line(error)}") from None
        finally:
            sys.modules.pop(name, None)
            if directory in sys.path:
                sys.path.remove(directory)
        _files[key] = module
        return module


def load_function(reference: str, places: Sequence[Path] = ()) -> tuple[Callable[..., Any], str]:
    """The function ``reference`` names and the reference with a file's path made absolute.

    Raises TaskError when the module or file cannot be imported or has no such function.
    """
    module_name, function_name = split_reference(reference)
    if module_name.endswith(".py"):
        path = find_file(module_name, places)
        module = load_file(path)
        where = str(path)
    else:
        try:
            module = importlib.import_module(module_name)
        except Exception as error:
            raise TaskError(f"cannot import {module_name}: {error_line(error)}") from None
        where = module_name
    function = getattr(module, function_name, None)
    if function is None or not callable(function):
        found = sorted(_functions(module))
        raise TaskError(f"{where} has no function '{function_name}' (it has: {', '.join(found) or 'none'})")
    return function, f"{where}:{function_name}"


def file_tasks(path: Path) -> dict[str, Callable[..., Any]]:
    """The public functions defined in the Python file ``path`` (its tasks), by name; raises TaskError."""
    return _functions(load_file(path))


def _functions(module: ModuleType) -> dict[str, Callable[..., Any]]:
    """The public functions ``module`` defines (not those it imports)."""
    return {name: value for name, value in vars(module).items() if inspect.isfunction(value)
            and not name.startswith("_") and value.__module__ == module.__name__}  # fmt: skip


def error_line(error: BaseException) -> str:
    """``Type: first line of the message`` of an exception (``Type`` alone when it has no message)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


@dataclass(frozen=True)
class ProjectTask:
    """A task of a project's maintfile.py as ``maint checks list`` shows it: its reference (relative to the
    project), the first line of its docstring, its arguments and whether it supports check mode."""

    reference: str
    description: str
    arguments: tuple[Argument, ...]
    check_mode: bool


def project_tasks(project_dir: Path) -> tuple[list[ProjectTask], list[str]]:
    """The tasks of the project's ``maintfile.py`` (in the project directory, then in its ``playbooks/``) and
    the one-line errors of a file that does not import."""
    found: list[ProjectTask] = []
    errors: list[str] = []
    for path in (project_dir / MAINTFILE, project_dir / "playbooks" / MAINTFILE):
        if not path.is_file():
            continue
        try:
            functions = file_tasks(path)
        except TaskError as error:
            errors.append(str(error))
            continue
        shown = path.relative_to(project_dir)
        for name, function in functions.items():
            found.append(ProjectTask(f"{shown}:{name}", summary(function), tuple(arguments(function)),
                                     supports_check_mode(function)))  # fmt: skip
    return found, errors
