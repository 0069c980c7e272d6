"""Manual pages (man(7) roff) of ``maint`` and each of its commands, made from the Click commands themselves, so
that a page says what ``--help`` says: ``maint.1``, ``maint-run.1``, ``maint-tickets-list.1``, ...

``scripts/man-pages`` writes them to ``man/``, where they are committed and from where ``pip install`` puts them
in ``share/man/man1``; a test makes them again and compares. The output depends on nothing but the commands and
maint's version (no date: a page changes only when its command does), so making them twice gives the same bytes.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import click

from maint import __version__

SECTION = "1"
MANUAL = "maint manual"


def pages(command: click.Command | None = None, version: str = __version__) -> dict[str, str]:
    """The manual pages of ``command`` (default: the ``maint`` group) and of every command under it, hidden ones
    left out, as file name -> roff text, in the order of ``maint --help``."""
    if command is None:
        from maint.cli import cli

        command = cli
    contexts = _contexts(command, click.Context(command, info_name="maint", **command.context_settings))
    return {_page_name(context) + f".{SECTION}": _page(context, version) for context in contexts}


def write(directory: Path, command: click.Command | None = None) -> list[Path]:
    """Write :func:`pages` into ``directory`` (created if need be); returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in pages(command).items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def reference(command: click.Command | None = None) -> str:
    """The command reference of the documentation (``docs/commands.md``): every command with its synopsis, its
    ``--help`` text and its options, from the same commands as the manual pages, so the two never disagree."""
    if command is None:
        from maint.cli import cli

        command = cli
    lines = [
        "# Command reference",
        "",
        "Every command, with what its `--help` says (this page is made from the commands by `scripts/man-pages`;",
        "a test fails while it differs). Each also has a manual page: `man maint-run`.",
    ]
    for context in _contexts(command, click.Context(command, info_name="maint", **command.context_settings)):
        sub = context.command
        usage = f"{context.command_path} {' '.join(sub.collect_usage_pieces(context))}".rstrip()
        lines += ["", f"## {context.command_path}", "", "```text", usage, "```", ""]
        for paragraph in inspect.cleandoc((sub.help or "").split("\f")[0]).split("\n\n"):
            if paragraph.startswith("\b\n"):
                lines += ["```text", *paragraph[2:].splitlines(), "```", ""]
            elif paragraph.strip():
                lines += [" ".join(line.strip() for line in paragraph.splitlines()), ""]
        options = [
            record for parameter in sub.get_params(context)
            if isinstance(parameter, click.Option) and (record := parameter.get_help_record(context))
        ]  # fmt: skip
        for declaration, text in options:
            lines.append(f"- `{declaration}`: {' '.join(text.split())}")
        if isinstance(sub, click.Group):
            for name in sub.list_commands(context):
                child = sub.get_command(context, name)
                if child is not None and not child.hidden:
                    anchor = f"{context.command_path} {name}".replace(" ", "-")
                    lines.append(f"- [`{name}`](#{anchor}): {child.get_short_help_str(limit=200)}")
    return "\n".join(line.rstrip() for line in lines).rstrip() + "\n"


def _contexts(command: click.Command, context: click.Context) -> list[click.Context]:
    found = [context]
    if isinstance(command, click.Group):
        # list_commands and get_command, not .commands: maint's group imports its commands only when asked.
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            if sub is not None and not sub.hidden:
                found += _contexts(sub, click.Context(sub, info_name=name, parent=context, **sub.context_settings))
    return found


def _page_name(context: click.Context) -> str:
    return context.command_path.replace(" ", "-")


def _page(context: click.Context, version: str) -> str:
    command = context.command
    name = _page_name(context)
    lines = [
        f'.TH "{_escape(name.upper())}" "{SECTION}" "" "maint {_escape(version)}" "{MANUAL}"',
        ".SH NAME",
        f"{_escape(name)} \\- {_escape(command.get_short_help_str(limit=200))}",
        ".SH SYNOPSIS",
        f".B {_escape(context.command_path)}",
        _escape(" ".join(command.collect_usage_pieces(context))),
        ".SH DESCRIPTION",
        *_paragraphs((command.help or "").split("\f")[0]),
    ]
    if command.epilog:
        lines += _paragraphs(command.epilog)
    options = [
        record
        for parameter in command.get_params(context)
        if isinstance(parameter, click.Option) and (record := parameter.get_help_record(context))
    ]
    if options:
        lines.append(".SH OPTIONS")
        for declaration, text in options:
            lines += [".TP", f"\\fB{_escape(declaration)}\\fR", *_paragraphs(text, first=False)]
    see_also = [] if context.parent is None else [_page_name(context.parent)]
    if isinstance(command, click.Group):
        lines.append(".SH COMMANDS")
        for sub_name in command.list_commands(context):
            sub = command.get_command(context, sub_name)
            if sub is None or sub.hidden:
                continue
            page = f"{name}-{sub_name}"
            see_also.append(page)
            lines += [".TP", f"\\fB{_escape(sub_name)}\\fR", _escape(sub.get_short_help_str(limit=200))]
            lines.append(f"See \\fB{_escape(page)}\\fR({SECTION}).")
    if see_also:
        lines.append(".SH SEE ALSO")
        lines.append(",\n".join(f"\\fB{_escape(page)}\\fR({SECTION})" for page in see_also))
    return "\n".join(lines) + "\n"


def _paragraphs(text: str, first: bool = True) -> list[str]:
    """``text`` (a docstring or an option's help) as roff paragraphs: blank lines separate them and a paragraph
    starting with Click's ``\\b`` line is kept as written, as ``--help`` keeps it."""
    lines: list[str] = []
    for index, paragraph in enumerate(inspect.cleandoc(text).split("\n\n")):
        if not paragraph.strip():
            continue
        if index or first:
            lines.append(".PP")
        if paragraph.startswith("\b\n"):
            lines += [".nf", *(_escape(line) for line in paragraph[2:].splitlines()), ".fi"]
        else:
            lines += [_escape(line.strip()) for line in paragraph.splitlines() if line.strip()]
    return lines


def _escape(text: str) -> str:
    """``text`` as roff text: backslashes and hyphens escaped (a hyphen prints as a minus, so an option copied
    from the page works), and a line starting with a control character (``.``, ``'``) made plain text."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text.startswith((".", "'")) else text
