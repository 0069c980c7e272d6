"""Privilege escalation on an SSH connection: sudo, su or doas started on a channel, its password prompt
answered, its success recognised by a token; the channel then carries the escalated shell of
:mod:`maint.executors.session`.

sudo is asked for maint's own prompt (``-p`` with a random nonce), so a host in any language is understood;
su's prompt is recognised by its first word (:meth:`maint.become.Become.prompt_pattern`); success is never
read from a message. A failure is one line (:class:`maint.executors.BecomeFailed`) and what the attempt
started on the host is ended: by a terminal hang-up, or by signalling the session's process group.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import paramiko

from maint.executors import BecomeFailed, HostHung

if TYPE_CHECKING:
    from maint.become import Become

# su and sudo with requiretty get a pseudo-terminal, made transparent before they start (no echo, no line
# editing, no signals, no output translation).
TERMINAL_SETUP = "stty raw -echo -iexten 2>/dev/null; exec "
# How much of what sudo or su says before the token is kept: prompts, a lecture, an error message.
MAX_OUTPUT = 64 * 1024
# A failed attempt's process group gets this long after SIGTERM before SIGKILL; opening the channel that
# sends them may take OPEN_TIMEOUT.
END_GRACE = 2.0
OPEN_TIMEOUT = 5.0
NO_PASSWORD_HINT = "set ansible_become_password, as env:NAME or file:PATH, or give -K"
# Printed with the escalation session's process id before sudo replaces that shell.
GROUP_MARK = "maint-group="


class EscalationStopped(Exception):
    """The run was stopped while an escalation was authenticating."""


class EndedUnasked(BecomeFailed):
    """sudo ended without asking for a password or succeeding: maybe it wants a terminal (requiretty)."""


def _first_line(output: bytes, *hidden: bytes) -> str:
    """The first line of ``output`` that says something, without maint's prompt and token, printable only."""
    for raw in output.replace(b"\r", b"\n").split(b"\n"):
        for word in hidden:
            raw = raw.replace(word, b"")
        text = "".join(character for character in raw.decode("utf-8", "replace") if character.isprintable()).strip()
        if text:
            return text[:200]
    return ""


def escalate(
    transport: paramiko.Transport, open_channel: Callable[[float], paramiko.Channel], become: Become, terminal: bool,
    cancel: threading.Event | None = None,
) -> paramiko.Channel:  # fmt: skip
    """Start ``become``'s command on a channel of ``open_channel`` (given a deadline) and answer its password
    prompt; the channel once the success token has come on both streams (on the terminal: twice).

    Raises BecomeFailed (EndedUnasked when sudo ended before asking anything or succeeding: maybe it wants a
    terminal), EscalationStopped when ``cancel`` is set first, HostHung when no channel opens.
    """
    deadline = time.monotonic() + become.timeout
    what = f"{become.method} to {become.user}"
    nonce = secrets.token_hex(8)
    token = f"maint-become-{nonce}".encode()
    # sudo's -p prompt: maint's own words, so that it is recognised in any language; no % (sudo's escapes).
    prompt = f"[maint become {nonce}] password: "
    command = become.command(token.decode(), prompt, terminal)
    channel = open_channel(deadline)
    # Until the escalated shell runs, both streams are read as one (sudo -S prompts on stderr): waiting
    # on one stream while the other has news would cost a poll interval per exchange.
    channel.set_combine_stderr(True)
    try:
        if terminal:
            channel.get_pty(term="dumb", width=500, height=24)
            channel.exec_command(TERMINAL_SETUP + command)
        else:
            # The session's process group (sudo leads it once exec'd): what is ended when sudo fails to
            # answer in time. On a terminal, closing the channel hangs the terminal up, which does that.
            channel.exec_command(f"echo {GROUP_MARK}$$; exec {command}")
    except (paramiko.SSHException, EOFError, OSError) as error:
        channel.close()
        raise HostHung(f"could not start {what}: {error or type(error).__name__}") from None
    channel.settimeout(0.2)
    out = bytearray()
    answered = 0  # where the output after the last answered prompt starts
    prompts = 0
    group: re.Match[bytes] | None = None  # the session's process group, once printed
    line = token + b"\n"
    su_prompt = become.prompt_pattern() if become.method == "su" else None
    try:
        while True:
            if bytes(out).replace(b"\r", b"").count(line) >= 2:
                # The token came on stdout and then on stderr: whatever sudo wrote on stderr came before.
                channel.set_combine_stderr(False)
                return channel
            seen = bytes(out[answered:])
            asked = (
                prompt.encode() in seen if su_prompt is None
                else su_prompt.search(seen.decode("utf-8", "replace").replace("\r", "").rstrip("\n")) is not None
            )  # fmt: skip
            if asked:
                prompts += 1
                if become.password is None:
                    raise BecomeFailed(f"{what} asks for a password and none is set ({NO_PASSWORD_HINT})")
                if prompts > 1:
                    raise BecomeFailed(f"{what}: the become password was not accepted (ansible_become_password)")
                answered = len(out)
                channel.sendall(become.password.encode() + b"\n")
                continue
            try:
                chunk = channel.recv(65536)
            except TimeoutError:
                chunk = None
            if chunk:
                out += chunk
                if group is None and not terminal:
                    group = re.search(GROUP_MARK.encode() + rb"(\d+)\n", out)
                if len(out) > MAX_OUTPUT:
                    answered = max(0, answered - (len(out) - MAX_OUTPUT))
                    del out[:-MAX_OUTPUT]
            elif chunk is not None or channel.exit_status_ready():
                code = channel.recv_exit_status()
                said = _first_line(re.sub(GROUP_MARK.encode() + rb"\d+\n", b"", out), prompt.encode(), token)
                message = f"{what} failed (exit {code}){': ' + said if said else ''}"
                if become.password is None and become.method != "doas":
                    message += f" ({NO_PASSWORD_HINT})"
                raise EndedUnasked(message) if prompts == 0 and become.method == "sudo" else BecomeFailed(message)
            if cancel is not None and cancel.is_set():
                raise EscalationStopped
            if time.monotonic() >= deadline:
                state = "after the password" if prompts else "(no password prompt, no sign of success)"
                raise BecomeFailed(f"{what}: no answer within {become.timeout:g}s {state}")
    except BaseException:
        # Its state is unknown: the session is never reused, and what it started is ended.
        if group is not None and not channel.exit_status_ready():
            end_group(transport, int(group.group(1)))
        channel.close()
        raise


def end_group(transport: paramiko.Transport, group: int) -> None:
    """SIGTERM, then SIGKILL after END_GRACE, to process group ``group`` of the login user, sent from a
    session of its own on ``transport`` (without waiting for it)."""
    try:
        channel = transport.open_session(timeout=OPEN_TIMEOUT)
        channel.exec_command(
            f"kill -TERM -{group} 2>/dev/null; "
            f"(sleep {END_GRACE:g}; kill -KILL -{group}) </dev/null >/dev/null 2>&1 &"
        )
        channel.close()
    except (paramiko.SSHException, EOFError, OSError):
        pass  # the connection is going: closing it ends the session's processes that read or write it
