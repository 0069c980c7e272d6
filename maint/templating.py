"""Jinja2 rendering of step parameters: sandboxed, StrictUndefined, shell-quoted where it matters."""

from __future__ import annotations

import functools
import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # jinja2 is imported on first use: playbooks without templates never need it
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment


class Raw(str):
    """Text that a shell template inserts as is (the ``raw`` filter), for trusted snippets."""


def _shell_finalize(value: Any) -> str:
    if isinstance(value, Raw):
        return str(value)
    return shlex.quote(str(value))


class RenderError(Exception):
    """A template could not be rendered for a host (e.g. an undefined variable)."""


@functools.cache
def environment(shell: bool) -> SandboxedEnvironment:
    """The sandboxed environment for plain (``shell=False``) or shell-command templates.

    In a shell template every ``{{ expression }}`` is shell-quoted, so host variables cannot inject
    commands; ``{{ x | raw }}`` opts out for a trusted value.
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
    """Render ``template`` with ``variables``; raises RenderError with a one-line reason."""
    import jinja2

    try:
        return template.render(variables)
    except jinja2.UndefinedError as error:
        raise RenderError(f"undefined variable: {error.message}") from None
    except jinja2.TemplateError as error:
        raise RenderError(f"template error: {error}") from None
    except Exception as error:  # a filter raising on a value, a sandbox refusal
        raise RenderError(f"template error: {type(error).__name__}: {error}") from None


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
