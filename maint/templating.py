"""Jinja2 rendering of step parameters: sandboxed, StrictUndefined, and in shell commands values that the
shell never reads as code.

In a shell command template (a step type's ``shell_params``, e.g. ``command``) each ``{{ expression }}``
becomes a reference to a shell variable holding its value, written for the quoting context it sits in
(:mod:`maint.shellcontext`), and the command starts by assigning those variables, each value in single
quotes::

    echo "{{ p }}"   with p = $(touch pwned)   ->   __maint_v0='$(touch pwned)'
                                                    echo "${__maint_v0}"

so ``bare``, ``"double"``, ``'single'``, nested quotes, ``$(...)``, backticks, ``${...}`` and
here-documents all receive the value as data. ``{{ x | raw }}`` opts out for a trusted snippet.
"""

from __future__ import annotations

import functools
import shlex
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from maint.shellcontext import UnsafePlacement, place, reference

if TYPE_CHECKING:  # jinja2 is imported on first use: playbooks without templates never need it
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment


class Raw(str):
    """Text that a shell template inserts as is (the ``raw`` filter), for trusted snippets."""


# The values of the shell template being rendered on this thread, in the order the template printed them.
_rendering = threading.local()
PLACEHOLDER = "\0"


def _shell_finalize(value: Any) -> str:
    if isinstance(value, Raw):
        return str(value).replace(PLACEHOLDER, "")
    values: list[str] = _rendering.values
    values.append(str(value))
    return PLACEHOLDER


class RenderError(Exception):
    """A template could not be rendered for a host (e.g. an undefined variable)."""


@functools.cache
def environment(shell: bool) -> SandboxedEnvironment:
    """The sandboxed environment for plain (``shell=False``) or shell-command templates.

    In a shell template every ``{{ expression }}`` becomes a reference to a shell variable (see the
    module docstring), so values cannot inject commands; ``{{ x | raw }}`` opts out for a trusted value.
    """
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_shell_finalize if shell else None,
    )
    env.filters["raw"] = Raw
    env.filters["quote"] = lambda value: shlex.quote(str(value))
    return env


def is_template(value: Any) -> bool:
    """Whether ``value`` is a string containing Jinja2 syntax."""
    return isinstance(value, str) and ("{{" in value or "{%" in value or "{#" in value)


def compile_template(source: str, shell: bool) -> jinja2.Template:
    """Compile ``source``; raises jinja2.TemplateSyntaxError with a line number on bad syntax."""
    return environment(shell).from_string(source)


def render(template: jinja2.Template, variables: Mapping[str, Any]) -> str:
    """Render ``template`` with ``variables``; raises RenderError with a one-line reason.

    A shell command template renders to the variable assignments and the command (module docstring).
    """
    import jinja2

    shell = template.environment is environment(True)
    try:
        if not shell:
            return template.render(variables)
        _rendering.values = []
        try:
            text = template.render(variables)
            values: list[str] = _rendering.values
        finally:
            del _rendering.values
        return _shell_command(text, values)
    except UnsafePlacement as error:
        raise RenderError(str(error)) from None
    except jinja2.UndefinedError as error:
        raise RenderError(f"undefined variable: {error.message}") from None
    except jinja2.TemplateError as error:
        raise RenderError(f"template error: {error}") from None
    except Exception as error:  # a filter raising on a value, a sandbox refusal
        raise RenderError(f"template error: {type(error).__name__}: {error}") from None


def _shell_command(text: str, values: list[str]) -> str:
    """The rendered command ``text`` (a PLACEHOLDER per value) as assignments of ``values`` and the command."""
    if not values:
        return text
    pieces = text.split(PLACEHOLDER)
    if len(pieces) != len(values) + 1:
        raise RenderError("the command contains a NUL character")
    parts: list[str | int] = [pieces[0]]
    for index, piece in enumerate(pieces[1:]):
        parts += [index, piece]
    command, referenced = place(parts, values)
    assignments = "".join(f"{reference(index)}={shlex.quote(values[index])}\n" for index in sorted(referenced))
    return assignments + command


def unsafe_placement(source: str) -> tuple[int, str] | None:
    """The line (1-based, in ``source``) and reason of the first placeholder of a shell command template that
    sits where its value would be code (see :mod:`maint.shellcontext`), or None.

    A template with ``{% ... %}`` tags is left to the check at render time: its text depends on them.
    """
    import jinja2

    parts: list[str | int] = []
    lines: list[int] = []
    inside = ""
    raw = False
    try:
        tokens = list(environment(True).lex(source))
    except jinja2.TemplateSyntaxError:
        return None
    for line, kind, value in tokens:
        if kind == "variable_begin":
            inside, raw = "variable", False
        elif kind == "variable_end":
            inside = ""
            if raw:
                parts.append("x")
            else:
                parts.append(len(lines))
                lines.append(line)
        elif kind == "block_begin":
            return None
        elif kind == "comment_begin":
            inside = "comment"
        elif kind == "comment_end":
            inside = ""
        elif inside == "variable" and kind == "name" and value == "raw":
            raw = True
        elif not inside and kind == "data":
            parts.append(value)
    try:
        place(parts)
    except UnsafePlacement as error:
        return lines[error.placeholder], str(error)
    return None


def compile_expression(source: str) -> Any:
    """Compile a Jinja2 expression (a step's ``when``); raises jinja2.TemplateSyntaxError."""
    if source.strip() in ("True", "true"):
        source = "true"
    elif source.strip() in ("False", "false"):
        source = "false"
    return environment(False).compile_expression(source, undefined_to_none=False)


def evaluate(expression: Any, variables: Mapping[str, Any]) -> Any:
    """Evaluate a compiled expression with ``variables``; raises RenderError with a one-line reason."""
    import jinja2

    try:
        value = expression(**variables)
        if isinstance(value, jinja2.Undefined):
            bool(value)  # StrictUndefined raises here, naming the variable
    except jinja2.UndefinedError as error:
        raise RenderError(f"undefined variable in 'when': {error.message}") from None
    except Exception as error:
        raise RenderError(f"'when' failed: {type(error).__name__}: {error}") from None
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "no", "0", "off")
    return value
