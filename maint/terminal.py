"""Text that reaches a terminal: no control sequence from a host, a file or a server ever passes raw.

Hosts print what they like, and a terminal obeys control characters: ESC starts sequences that set
the window title (OSC 0), write the clipboard (OSC 52), clear the screen (CSI 2J) or talk to the
terminal itself (DCS); C1 controls such as U+009B do the same in one character, and bidi overrides
reorder what the operator reads. :func:`escape_controls` shows every such character as a visible
escape (``\\u001b``, ``\\u009b``, ``\\u202e``) and keeps newline and tab (and a CRLF line end). The
escape is JSON's own, so JSON that passes the CLI's output stream stays valid and means the same.

The CLI writes everything through :class:`EscapingWriter` (:func:`escaped_output`), the one choke
point of its output; text reports (CSV, JUnit) escape their cells with the same function. maint's
own colours and progress line go through :func:`styled` and :func:`control`, which escape the text
first and add the sequences after.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Iterator
from typing import Any, TextIO

import click

from maint.secrets import mask_url_credentials

# C0 controls but tab and newline, DEL, C1 controls, and the bidi embedding/override/isolate
# formatting characters; a carriage return only where it is not the start of a CRLF line end.
CONTROL = re.compile("\r(?!\n)|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    return f"\\u{ord(match[0]):04x}"


def escape_controls(text: str) -> str:
    """``text`` with every control character but newline and tab (and CRLF) shown as a visible escape:
    ``\\u001b`` (the six characters) for ESC, ``\\u009b`` for a C1 control, ``\\u202e`` for a bidi
    override. Raises nothing."""
    return CONTROL.sub(_visible, text)


def sanitise(text: str) -> str:
    """``text`` as it may be printed: control characters escaped, URL passwords masked."""
    return mask_url_credentials(escape_controls(text))


class EscapingWriter:
    """A text stream that writes everything through :func:`sanitise` to the stream it wraps.

    It has no ``buffer`` attribute on purpose: Click then writes text to it rather than bytes to the
    binary stream underneath. :meth:`write_raw` is for maint's own control sequences only.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        """Write ``text`` sanitised; returns the length of ``text``. Raises TypeError for bytes."""
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self.stream.write(sanitise(text))
        return len(text)

    def write_raw(self, text: str) -> int:
        """Write ``text`` as it is (maint's own colour and cursor sequences, nothing else)."""
        return self.stream.write(text)

    def writelines(self, lines: Any) -> None:
        """Write each of ``lines`` sanitised."""
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Flush the wrapped stream."""
        self.stream.flush()

    def isatty(self) -> bool:
        """Whether the wrapped stream is a terminal."""
        return self.stream.isatty()

    def fileno(self) -> int:
        """The wrapped stream's file descriptor."""
        return self.stream.fileno()

    def writable(self) -> bool:
        """True."""
        return True

    @property
    def encoding(self) -> str:
        """The wrapped stream's encoding."""
        return str(getattr(self.stream, "encoding", None) or "utf-8")

    @property
    def errors(self) -> str | None:
        """The wrapped stream's error handler."""
        return getattr(self.stream, "errors", None)

    @property
    def closed(self) -> bool:
        """Whether the wrapped stream is closed."""
        return bool(self.stream.closed)


@contextlib.contextmanager
def escaped_output() -> Iterator[None]:
    """Within the block, ``sys.stdout`` and ``sys.stderr`` write through :class:`EscapingWriter`."""
    saved = sys.stdout, sys.stderr
    sys.stdout = EscapingWriter(saved[0])
    sys.stderr = EscapingWriter(saved[1])
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        sys.stdout, sys.stderr = saved


def _write(text: str, err: bool) -> None:
    stream = sys.stderr if err else sys.stdout
    raw = getattr(stream, "write_raw", None)  # an EscapingWriter, or something passing on to one
    if raw is not None:
        raw(text)
        stream.flush()
    else:
        click.echo(text, nl=False, err=err)


_colour = {"off": False}


def disable_colour() -> None:
    """No colour from now on in this process (``--no-color``)."""
    _colour["off"] = True


def colour_wanted(stream: Any) -> bool:
    """Whether to colour what goes to ``stream``: a terminal, unless ``NO_COLOR`` is set to anything
    (https://no-color.org) or ``--no-color`` was given."""
    return not _colour["off"] and not os.environ.get("NO_COLOR") and stream.isatty()


def show_debug_log() -> None:
    """maint's debug records (``maint.*`` loggers: connections, authentication, escalation) on stderr, one line
    each, sanitised like all output (``-vvv``)."""
    logger = logging.getLogger("maint")
    if any(getattr(handler, "maint_verbose", False) for handler in logger.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("maint: debug: %(message)s"))
    handler.maint_verbose = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


def styled(message: str, *, fg: str, err: bool = True, nl: bool = True) -> None:
    """Print ``message`` (sanitised) in colour ``fg`` when :func:`colour_wanted`, plain otherwise."""
    stream = sys.stderr if err else sys.stdout
    text = sanitise(message)
    if colour_wanted(stream):
        text = click.style(text, fg=fg)  # noqa: TID251 (the one place colour is added)
    _write(text + ("\n" if nl else ""), err)


def control(sequence: str, message: str = "", *, err: bool = True) -> None:
    """Print maint's own terminal ``sequence`` (e.g. ``\\r\\x1b[K`` to redraw a line) and ``message``
    sanitised after it, without a newline."""
    _write(sequence + sanitise(message), err)
