"""Where a template placeholder lands in a POSIX shell command, and what it may be replaced with.

A command template such as ``echo "{{ p }}"`` is rendered with every ``{{ expression }}`` replaced by
a placeholder; :func:`place` walks the rendered text as ``/bin/sh`` would read it (bare words,
single and double quotes, ``$(...)``, backticks, ``${...}``, here-documents, comments) and replaces
each placeholder with a *reference* to a shell variable that holds the value, written for the
context it is in::

    bare word            "${__maint_v1}"
    "double quotes"      ${__maint_v1}
    'single quotes'      '"${__maint_v1}"'      (closes the quotes around the reference)
    here-document        ${__maint_v1}

The value itself never becomes part of the command text, so the shell cannot read it as code in
any of these contexts; a mistaken idea of the context can only make the value arrive differently
(split into words, or as the reference's text), never run. A value made only of characters no shell
context gives a meaning to (letters, digits and ``@%+=:,./-_``, what ``shlex.quote`` leaves as is)
is written in place, so commands read as written (``-v warn=2``), except in a here-document, where a
line of it could end the document. What maint cannot make safe is refused
with :class:`UnsafePlacement`: a quoted here-document (it expands nothing), arithmetic (``$((..))``,
``((..))``, ``[[..]]`` and ``let``: bash evaluates a value there and runs what its array subscripts
contain), and the common ways of handing text to another shell (``eval``, ``sh -c``, ``su -c``,
``ssh``, a pipe or here-document into a shell), where the value would be that shell's code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# The shells (and shell-like runners) whose script argument or standard input is code.
SHELLS = frozenset({"sh", "bash", "dash", "ksh", "mksh", "zsh", "ash", "yash", "busybox", "csh", "tcsh", "fish"})
# Programs that run their ``-c`` argument through a shell.
SHELL_RUNNERS = frozenset({"su", "runuser"})
# Commands that run the command after them (and their options): skipped to find the real command name.
WRAPPERS = frozenset({"sudo", "doas", "env", "nice", "nohup", "exec", "command", "time", "timeout", "ionice",
                      "setsid", "stdbuf", "chroot", "builtin", "then", "do", "else", "elif", "!", "{"})  # fmt: skip
VARIABLE_PREFIX = "__maint_v"
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_SHELL_C = re.compile(r"-[A-Za-z]*c[A-Za-z]*")
# What shlex.quote leaves unquoted: inert text in every context but a here-document's lines.
_INERT = re.compile(r"[\w@%+=:,./-]+", re.ASCII)
_INTEGER = re.compile(r"-?[0-9]+")


class UnsafePlacement(ValueError):
    """A placeholder sits where no reference to its value is safe; the message says where and what to do."""

    def __init__(self, message: str, placeholder: int) -> None:
        super().__init__(message)
        self.placeholder = placeholder


def reference(index: int) -> str:
    """The shell variable that holds placeholder ``index``'s value."""
    return f"{VARIABLE_PREFIX}{index}"


@dataclass
class _Frame:
    """One level of the parse: what opened it and the simple command being read at this level."""

    kind: str  # top, cmd ($(...)), bq (backticks), dq ("..."), param (${...}), arith ($((...)), ((...)), [[...]])
    quoted: bool = False  # param only: inside double quotes
    depth: int = 0  # nesting of ( ) or { } inside this frame
    words: list[str] = field(default_factory=list)  # completed words of the current simple command
    word: list[str] = field(default_factory=list)  # the word being read (quote characters left out)
    word_started: bool = False
    after_pipe: bool = False  # the current simple command reads a pipe
    pipeline: list[int] = field(default_factory=list)  # placeholders in the pipeline so far
    code: str = ""  # why text at this level is code for another shell ('' when it is not)


@dataclass
class _HereDoc:
    delimiter: str
    quoted: bool
    strip_tabs: bool
    code: str  # the here-document feeds a shell: why ('' when it does not)


def place(
    parts: Sequence[str | int], values: Sequence[str] | None = None, name: Callable[[int], str] = reference
) -> tuple[str, set[int]]:
    """Join ``parts`` (literal text and placeholder indexes) into a command, each placeholder replaced by
    its value when that is inert text (``values`` given), else by a reference to the shell variable
    ``name(index)`` written for its quoting context.

    Returns the command and the indexes it references (the variables the caller must assign). Raises
    UnsafePlacement for a placeholder neither is safe in (see the module docstring).
    """
    placer = _Placer(parts, values, name)
    return placer.run(), placer.referenced


class _Placer:
    """One pass over a rendered command: the output, the stack of open constructs, here-documents."""

    def __init__(self, parts: Sequence[str | int], values: Sequence[str] | None, name: Callable[[int], str]) -> None:
        self.values = values
        self.referenced: set[int] = set()
        self.text = "".join(part if isinstance(part, str) else "\0" for part in parts)
        self.indexes = [part for part in parts if isinstance(part, int)]
        self.seen = 0  # placeholders consumed so far
        self.name = name
        self.out: list[str] = []
        self.stack: list[_Frame] = [_Frame("top")]
        self.pending: list[_HereDoc] = []  # here-documents whose bodies start at the next newline
        self.body: _HereDoc | None = None  # the here-document whose body is being read
        self.line: list[str] = []  # the here-document body line read so far
        self.single = False  # inside '...'
        self.comment = False  # inside a # comment

    def run(self) -> str:
        text = self.text
        position = 0
        while position < len(text):
            char = text[position]
            if char == "\0":
                self.placeholder()
                position += 1
            elif self.body is not None:
                position = self.here_document_char(position)
            elif self.comment:
                if char == "\n":
                    self.comment = False
                    continue  # the newline ends the command: read it as such
                self.out.append(char)
                position += 1
            elif self.single:
                self.out.append(char)
                self.single = char != "'"
                position += 1
            elif self.stack[-1].kind == "dq":
                position = self.double_quoted_char(position)
            else:
                position = self.bare_char(position)
        self.end_word()
        return "".join(self.out)

    # Words and commands --------------------------------------------------------------------------

    def emit(self, text: str, word: str | None = None) -> None:
        """Output ``text``, which adds ``word`` (default: ``text``) to the word being read."""
        self.out.append(text)
        self.word_char(text if word is None else word)

    def word_char(self, char: str) -> None:
        frame = self.word_frame()
        frame.word.append(char)
        frame.word_started = True

    def word_frame(self) -> _Frame:
        """The frame whose simple command the current text belongs to (quotes and ${...} are inside a word)."""
        return next((f for f in reversed(self.stack) if f.kind in ("top", "cmd", "bq", "arith")), self.stack[0])

    def end_word(self) -> None:
        frame = self.stack[-1]
        if frame.word_started:
            frame.words.append("".join(frame.word))
            if frame.after_pipe and frame.pipeline:
                name = _command_name(frame.words)
                if name in SHELLS or name == "ssh":
                    raise self.refused(frame.pipeline[0], f"'{name}' reading a pipe")
        frame.word, frame.word_started = [], False

    def end_command(self, pipe: bool) -> None:
        """A simple command ended (``pipe``: at a ``|`` that feeds the next one)."""
        self.end_word()
        frame = self.stack[-1]
        frame.words = []
        frame.after_pipe = pipe
        if not pipe:
            frame.pipeline = []

    # Characters ------------------------------------------------------------------------------------

    def bare_char(self, position: int) -> int:
        text = self.text
        frame = self.stack[-1]
        char = text[position]
        ahead = text[position : position + 3]
        if char == "\\":
            return self.escape(position)
        if char == "'":
            self.single = True
            self.emit(char, "")
            return position + 1
        if char == '"':
            return self.open(position, '"', _Frame("dq"))
        if char == "`":
            if frame.kind == "bq":
                self.end_word()
                self.out.append(char)
                self.close()
                return position + 1
            return self.open(position, "`", _Frame("bq"))
        if ahead.startswith("$"):
            opened = self.substitution(position, ahead, quoted=False)
            if opened:
                return opened
        if frame.kind == "param":
            if char == "{":
                frame.depth += 1
            elif char == "}":
                if frame.depth == 0:
                    self.out.append(char)
                    self.close()
                    return position + 1
                frame.depth -= 1
            self.emit(char)
            return position + 1
        if frame.kind == "arith" and frame.depth == 0 and ahead[:2] in ("))", "]]"):
            self.end_word()
            self.out.append(ahead[:2])
            self.close()
            return position + 2
        if frame.kind != "arith" and not frame.word_started:
            if ahead.startswith("((") or (ahead.startswith("[[") and ahead[2:3] in (" ", "\t", "\n")):
                return self.open(position, ahead[:2], _Frame("arith"))
            if char == "#":
                self.comment = True
                self.out.append(char)
                return position + 1
        if char == "(":
            if frame.kind in ("cmd", "arith"):
                frame.depth += 1
            self.end_command(pipe=False)
            self.out.append(char)
            return position + 1
        if char == ")":
            if frame.kind == "cmd" and frame.depth == 0:
                self.end_word()
                self.out.append(char)
                self.close()
                return position + 1
            if frame.kind in ("cmd", "arith"):
                frame.depth -= 1
            self.end_command(pipe=False)
            self.out.append(char)
            return position + 1
        if ahead.startswith("<<") and not ahead.startswith("<<<") and frame.kind != "arith":
            return self.here_document_operator(position)
        if char in " \t":
            self.end_word()
            self.out.append(char)
            return position + 1
        if char == "\n":
            self.out.append(char)
            self.end_command(pipe=False)
            if self.pending:
                self.body = self.pending.pop(0)
                self.line = []
            return position + 1
        if char in ";&|" and frame.kind != "arith":
            double = ahead[1:2] == char
            self.end_command(pipe=char == "|" and not double)
            self.out.append(ahead[:2] if double else char)
            return position + (2 if double else 1)
        self.emit(char)
        return position + 1

    def double_quoted_char(self, position: int) -> int:
        text = self.text
        char = text[position]
        ahead = text[position : position + 3]
        if char == "\\":
            return self.escape(position)
        if char == '"':
            self.out.append(char)
            self.close()
            return position + 1
        if char == "`":
            return self.open(position, "`", _Frame("bq"))
        if ahead.startswith("$"):
            opened = self.substitution(position, ahead, quoted=True)
            if opened:
                return opened
        self.emit(char)
        return position + 1

    def substitution(self, position: int, ahead: str, quoted: bool) -> int:
        """Enter the $((, $( or ${ at ``position`` (``ahead``: the text from there); 0 when it is none."""
        if ahead == "$((":
            return self.open(position, "$((", _Frame("arith"))
        if ahead.startswith("$("):
            return self.open(position, "$(", _Frame("cmd"))
        if ahead.startswith("${"):
            return self.open(position, "${", _Frame("param", quoted=quoted))
        return 0

    def escape(self, position: int) -> int:
        """The backslash at ``position`` and the character it escapes, read as one word character."""
        escaped = self.text[position + 1 : position + 2]
        if escaped == "\0":  # \{{ x }}: the backslash alone; the placeholder is read next
            self.emit("\\")
            return position + 1
        self.emit("\\" + escaped, escaped)
        return position + 2

    def open(self, position: int, opener: str, frame: _Frame) -> int:
        """Enter ``frame`` (quotes, a substitution, arithmetic) opened by ``opener`` at ``position``."""
        enclosing = self.stack[-1]
        self.word_char("")
        # Text inside a construct that is itself another shell's code stays code, whatever it is nested in.
        frame.code = enclosing.code or self.code_here()
        self.out.append(opener)
        self.stack.append(frame)
        return position + len(opener)

    def close(self) -> None:
        if len(self.stack) > 1:
            self.stack.pop()

    def here_document_operator(self, position: int) -> int:
        text = self.text
        strip_tabs = text[position + 2 : position + 3] == "-"
        start = position + (3 if strip_tabs else 2)
        end = start
        while end < len(text) and text[end] in " \t":
            end += 1
        word_start = end
        while end < len(text) and text[end] not in " \t\n;&|<>()":
            end += 1
        word = text[word_start:end]
        if "\0" in word:
            raise UnsafePlacement(
                "a placeholder as a here-document's delimiter: write the delimiter in the template",
                self.indexes[self.seen])
        self.end_word()
        frame = self.stack[-1]
        name = _command_name(frame.words)
        code = frame.code or (f"'{name}'" if name in SHELLS or name == "ssh" else "")
        self.pending.append(_HereDoc(
            delimiter=word.replace("'", "").replace('"', "").replace("\\", ""),
            quoted=any(mark in word for mark in "'\"\\"),
            strip_tabs=strip_tabs,
            code=code and f"a here-document read by {code}",
        ))  # fmt: skip
        self.out.append(text[position:end])
        return end

    def here_document_char(self, position: int) -> int:
        body = self.body
        assert body is not None
        char = self.text[position]
        self.out.append(char)
        if char != "\n":
            self.line.append(char)
            return position + 1
        line = "".join(self.line)
        if (line.lstrip("\t") if body.strip_tabs else line) == body.delimiter:
            self.body = self.pending.pop(0) if self.pending else None
        self.line = []
        return position + 1

    # Placeholders ----------------------------------------------------------------------------------

    def placeholder(self) -> None:
        index = self.indexes[self.seen]
        self.seen += 1
        variable = self.name(index)
        value = self.values[index] if self.values is not None else None
        inert = value is not None and _INERT.fullmatch(value) is not None
        if self.body is not None:
            self.line.append("\0")
            self.referenced.add(index)
            if self.body.quoted:
                raise UnsafePlacement(
                    "a placeholder in a quoted here-document (<<'EOF') is never expanded: use an unquoted "
                    "delimiter (<<EOF), where maint passes the value without it being read as code", index)
            if self.body.code:
                raise self.refused(index, self.body.code)
            self.out.append("${" + variable + "}")
            return
        if self.comment:
            self.out.append(variable)
            return
        # Arithmetic is judged on the value (a whole number is fine there), so only when it is known.
        arithmetic = any(frame.kind == "arith" for frame in self.stack)
        if arithmetic and self.values is not None and not (value and _INTEGER.fullmatch(value)):
            raise UnsafePlacement(
                "a placeholder inside arithmetic ($((...)), ((...)) or [[...]]): bash evaluates a value there "
                "and runs the commands in its array subscripts; compute in the template instead "
                "({{ n | int + 1 }}) or compare with test or [ ]; a whole number is fine there", index)
        frame = self.stack[-1]
        code = frame.code or self.code_here()
        if code:
            raise self.refused(index, code)
        self.word_frame().pipeline.append(index)
        if value is not None and (inert or arithmetic):
            self.emit(value, "\0")
            return
        self.referenced.add(index)
        if self.single:
            self.emit(f"'\"${{{variable}}}\"'", "\0")
        elif frame.kind == "dq" or (frame.kind == "param" and frame.quoted):
            self.emit("${" + variable + "}", "\0")
        else:
            self.emit('"${' + variable + '}"', "\0")

    def code_here(self) -> str:
        """Why the word being read is another shell's code ('' when it is not)."""
        frame = self.word_frame()
        words = frame.words
        if words[:1] and _basename(words[0]) == "let":
            return "'let' (arithmetic)"
        for position, word in enumerate(words):
            name = _basename(word)
            if name == "eval":
                return "'eval'"
            if name == "ssh":
                return "'ssh' (the remote shell)"
            if name in SHELLS or name in SHELL_RUNNERS:
                option = next((i for i in range(position + 1, len(words))
                               if _SHELL_C.fullmatch(words[i]) or words[i] == "--command"), None)  # fmt: skip
                if option is None:
                    continue
                # The first word after -c is the script; the words after it are its arguments ($0, $1, ...).
                if all(words[i].startswith("-") for i in range(option + 1, len(words))):
                    return f"'{name} -c'"
        return ""

    def refused(self, index: int, code: str) -> UnsafePlacement:
        return UnsafePlacement(
            f"a placeholder inside code run by {code}: its value would be run as shell code there; pass it as "
            "an argument instead, e.g. sh -c 'echo \"$1\"' sh {{ value }}", index)


def _basename(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def _command_name(words: Sequence[str]) -> str:
    """The command a simple command runs: its first word after assignments, keywords and wrappers
    (sudo, env, ...) with their options."""
    skipping_options = False
    for word in words:
        name = _basename(word)
        if _ASSIGNMENT.match(word) or name in ("if", "while", "until"):
            continue
        if name in WRAPPERS:
            skipping_options = True
            continue
        if skipping_options and word.startswith("-"):
            continue
        return name
    return ""
