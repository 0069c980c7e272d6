"""``av.clamav``: scan paths with ClamAV (``clamscan``, or ``clamdscan`` through a running clamd)."""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from maint.checks import (
    SECTION,
    Outcome,
    Param,
    ParamError,
    Status,
    StepType,
    command_failure,
    duration,
    first_line,
    human_age,
    quote,
    sections,
    text,
)
from maint.executors import CommandResult

# Where clamscan and clamd look for signatures without -d / DatabaseDirectory (Debian, Ubuntu, Fedora,
# RHEL, Alpine packages). Only used to measure the database's age when ``database`` is not given.
DEFAULT_DATABASE = "/var/lib/clamav"

EXIT_MARK = "MAINT-AV-EXIT"

# freshclam rewrites these on every run, new signatures or not: they would make a stale DB look fresh.
_NOT_SIGNATURES = frozenset({"freshclam.dat", "mirrors.dat"})
# One line per clean, empty, linked or excluded file: dropped on the host so a big tree costs no
# output, while "Access denied" and "No such file" lines (which --infected would hide) stay.
_QUIET_LINES = ("OK", "Empty file", "Symbolic link", "Excluded")
_FOUND = re.compile(r"^(?P<path>.+): (?P<signature>\S+) FOUND$")
_SUMMARY_FIELD = re.compile(r"^(?P<key>[A-Za-z][A-Za-z ]*[a-z]):\s*(?P<value>\d+)\s*$")
_TCP_SOCKET = re.compile(r"^(?P<host>[^/\s]+):(?P<port>\d+)$")
_DB_TROUBLE = re.compile(r"database|cl_load|loaddb|\.c[vl]d", re.IGNORECASE)
SHOWN_INFECTED = 3
SHOWN_PROBLEMS = 2


def path_list(value: Any) -> tuple[str, ...]:
    """Paths to scan: a list, or one text of paths separated by whitespace, commas or colons.

    A rendered template of a list variable (``"['/home', '/srv']"``) is read back as that list.
    Raises ValueError when no path is left.
    """
    if isinstance(value, str) and value.strip().startswith("[") and value.strip().endswith("]"):
        try:
            parsed = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            parsed = None
        if isinstance(parsed, (list, tuple)):
            value = list(parsed)
    items = [text(item) for item in value] if isinstance(value, list) else re.split(r"[\s,:]+", text(value))
    paths = tuple(item for item in items if item.strip())
    if not paths:
        raise ValueError("expected a path or a list of paths, got none")
    return paths


def pattern_list(value: Any) -> tuple[str, ...]:
    """One regular expression or a list of them (POSIX extended syntax, as clamscan reads them)."""
    items = value if isinstance(value, list) else [value]
    return tuple(text(item) for item in items if text(item).strip())


def optional_text(value: Any) -> str | None:
    """Text, where an empty value (a template's ``default('')``) means "not given"."""
    result = text(value).strip()
    if "\n" in result:
        raise ValueError(f"expected one line, got {value!r}")
    return result or None


def count(value: Any) -> int:
    """A whole number from 0 up."""
    if isinstance(value, bool):
        raise ValueError("expected a whole number, got a boolean")
    try:
        result = int(str(value).strip())
    except ValueError:
        raise ValueError(f"expected a whole number, got {value!r}") from None
    if result < 0:
        raise ValueError(f"expected a whole number from 0 up, got {result}")
    return result


class ClamAV(StepType):
    """Scans ``paths`` with clamscan (or clamdscan) and measures the age of the signature database.

    One command collects three facts between markers: the host's clock, the modification times of
    the files in the signature database directory (the newest one is the database's age: it works
    offline, for official .cvd/.cld files and custom .hsb/.ndb ones alike), and the scan, whose
    per-file lines for clean files are dropped on the host.
    """

    default_tier = "L2"
    default_severity = "critical"

    name = "av.clamav"
    description = "ClamAV scan of paths: failed on infected files, warning on an old signature database."
    params = {
        "paths": Param(path_list, required=True, help="paths to scan (a list, or one text separated by , : or spaces)"),
        "database": Param(
            optional_text,
            help=f"signature database directory or file, passed as -d (default: clamscan's own, {DEFAULT_DATABASE})",
        ),
        "max_infected": Param(count, 0, help="failed when more infected files than this (up to it: warning)"),
        "max_db_age": Param(duration, 7 * 86400.0, help="warning when the newest signature file is older (7d)"),
        "exclude": Param(pattern_list, (), help="regexes of file paths not to scan (--exclude)"),
        "exclude_dir": Param(pattern_list, (), help="regexes of directories not to scan (--exclude-dir)"),
        "clamd_socket": Param(
            optional_text, help="scan through clamd with clamdscan: its unix socket path, or HOST:PORT"
        ),
    }

    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__(values)
        if self.values["clamd_socket"] and (self.values["exclude"] or self.values["exclude_dir"]):
            raise ParamError("exclude and exclude_dir do not apply to clamdscan: set ExcludePath in clamd.conf")

    @property
    def tool(self) -> str:
        """``clamdscan`` with a clamd socket, else ``clamscan``."""
        return "clamdscan" if self.values["clamd_socket"] else "clamscan"

    def command(self) -> str:
        """Host time, signature file mtimes and the filtered scan output, each after its marker."""
        database = quote(self.values["database"] or DEFAULT_DATABASE)
        paths = " ".join(quote(path) for path in self.values["paths"])
        quiet = " ".join(f"-e {quote(f'/: {line}$/d')}" for line in _QUIET_LINES)
        facts = (
            f"echo '{SECTION} now'; date +%s; echo '{SECTION} db'; "
            f"if [ -d {database} ]; then for f in {database}/*; do "
            f'[ -f "$f" ] && stat -c "%Y %n" -- "$f"; done; '
            f'else stat -c "%Y %n" -- {database} 2>/dev/null; fi; echo \'{SECTION} scan\''
        )
        socket = self.values["clamd_socket"]
        if socket:
            tcp = _TCP_SOCKET.match(socket)
            if tcp:
                config = f"{quote('TCPSocket ' + tcp['port'])} {quote('TCPAddr ' + tcp['host'])}"
                mode = "--stream"
            else:
                config = quote(f"LocalSocket {socket}")
                mode = "--fdpass"
            scan = (
                f"conf=$(mktemp) && printf '%s\\n' {config} > \"$conf\" && "
                f'clamdscan --config-file="$conf" {mode} -- {paths}; echo "{EXIT_MARK} $?"; rm -f "$conf"'
            )
        else:
            options = ["-r"]
            if self.values["database"]:
                options += ["-d", quote(self.values["database"])]
            options += [quote(f"--exclude={pattern}") for pattern in self.values["exclude"]]
            options += [quote(f"--exclude-dir={pattern}") for pattern in self.values["exclude_dir"]]
            scan = f'clamscan {" ".join(options)} -- {paths}; echo "{EXIT_MARK} $?"'
        return f"{facts}; {{ {scan}; }} | LC_ALL=C sed {quiet}"

    def evaluate(self, result: CommandResult) -> Outcome:
        """Infected files → failed (warning up to ``max_infected``); an old database → warning;
        a scan that could not run or not read everything (exit 2) → error."""
        tool = self.tool
        found_sections = {name: text.splitlines() for name, text in sections(result.stdout).items()}
        scan_exit = _scan_exit(found_sections.get("scan", []))
        if scan_exit is None:
            if result.exit_code:
                return command_failure(result, tool)
            detail = first_line(result.stderr) or first_line(result.stdout) or "no output"
            return Outcome(Status.ERROR, f"{tool} did not finish: {detail}")
        scan = [line for line in found_sections.get("scan", []) if not line.startswith(EXIT_MARK)]
        if scan_exit in (126, 127):
            return command_failure(dataclasses.replace(result, exit_code=scan_exit, stdout=""), tool)

        found, fields, problems = _parse_scan(scan)
        # "LibClamAV Warning: The virus database is older than 7 days" is max_db_age's business.
        problems += [
            line.strip()
            for line in result.stderr.splitlines()
            if line.strip() and not line.startswith("LibClamAV Warning")
        ]
        metrics: dict[str, float] = {}
        age = _database_age(found_sections)
        if age is not None:
            metrics["db_age_seconds"] = float(age)
        if "Known viruses" in fields:
            metrics["known_signatures"] = float(fields["Known viruses"])
        if "Scanned files" in fields:
            metrics["scanned_files"] = float(fields["Scanned files"])

        if found:
            infected = max(fields.get("Infected files", 0), len({path for path, _ in found}))
            metrics["infected_files"] = float(infected)
            status = Status.FAILED if infected > self.values["max_infected"] else Status.WARNING
            shown = ", ".join(f"{path} ({signature})" for path, signature in found[:SHOWN_INFECTED])
            more = f" and {len(found) - SHOWN_INFECTED} more" if len(found) > SHOWN_INFECTED else ""
            plural = "" if infected == 1 else "s"
            summary = f"{infected} infected file{plural} in {self._where()}: {shown}{more}"
            if problems:
                summary += f"; also {_problems(problems, fields)}"
            return Outcome(status, summary + self._age_note(age, status)[1], metrics)

        if scan_exit != 0:
            metrics["infected_files"] = 0.0
            return Outcome(Status.ERROR, self._failure(scan_exit, problems, fields), metrics)

        metrics["infected_files"] = 0.0
        scanned = f"{fields['Scanned files']} files scanned, " if "Scanned files" in fields else ""
        status, note = self._age_note(age, Status.OK)
        summary = f"no infected files in {self._where()} ({scanned}{_describe_age(age)}){note}"
        return Outcome(status, summary, metrics)

    def _where(self) -> str:
        paths = self.values["paths"]
        if len(paths) <= 3:
            return ", ".join(paths)
        return f"{', '.join(paths[:2])} and {len(paths) - 2} more paths"

    def _age_note(self, age: int | None, status: Status) -> tuple[Status, str]:
        """The status raised to warning for an old (or unknown) database, and a note saying why."""
        limit = self.values["max_db_age"]
        if age is None:
            where = self.values["database"] or DEFAULT_DATABASE
            note = f"; cannot tell the signature database's age: no files in {where}"
        elif age > limit:
            note = f"; signature database {human_age(age)} old (max {human_age(limit)})"
        else:
            return status, ""
        return (Status.WARNING if status is Status.OK else status), note

    def _failure(self, scan_exit: int, problems: list[str], fields: dict[str, int]) -> str:
        tool = self.tool
        trouble = " ".join(problems)
        if self.values["clamd_socket"] and ("connect" in trouble.lower() or "clamd" in trouble.lower()):
            return f"clamdscan cannot reach clamd at {self.values['clamd_socket']}: {_shorten(problems)}"
        if not self.values["clamd_socket"] and _DB_TROUBLE.search(trouble):
            database = self.values["database"] or "(clamscan's default)"
            return f"clamscan cannot load the signature database {database}: {_shorten(problems)}"
        if problems or fields.get("Total errors"):
            return f"{tool} could not scan everything (exit {scan_exit}): {_problems(problems, fields)}"
        if scan_exit == 1:
            return f"{tool} exited 1 (virus found) without naming an infected file"
        return f"{tool} failed (exit {scan_exit})"




def _scan_exit(lines: list[str]) -> int | None:
    for line in reversed(lines):
        if line.startswith(EXIT_MARK + " "):
            try:
                return int(line.split()[1])
            except (IndexError, ValueError):
                return None
    return None


def _parse_scan(lines: list[str]) -> tuple[list[tuple[str, str]], dict[str, int], list[str]]:
    """Infected (path, signature) pairs, the SCAN SUMMARY's numeric fields, and the other lines."""
    found: list[tuple[str, str]] = []
    fields: dict[str, int] = {}
    problems: list[str] = []
    in_summary = False
    for line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        if "SCAN SUMMARY" in stripped:
            in_summary = True
            continue
        if in_summary:
            field = _SUMMARY_FIELD.match(stripped)
            if field:
                fields[field["key"]] = int(field["value"])
            continue
        match = _FOUND.match(stripped)
        if match:
            found.append((match["path"], match["signature"]))
        else:
            problems.append(stripped)
    return found, fields, problems


def _database_age(found: dict[str, list[str]]) -> int | None:
    """Host time minus the newest signature file's mtime; None when either is missing."""
    try:
        now = int(found.get("now", [""])[0].strip())
    except (IndexError, ValueError):
        return None
    newest: int | None = None
    for line in found.get("db", []):
        stamp, _, name = line.strip().partition(" ")
        if not stamp.isdigit() or name.rsplit("/", 1)[-1] in _NOT_SIGNATURES:
            continue
        newest = max(newest or 0, int(stamp))
    return None if newest is None else max(0, now - newest)


def _describe_age(age: int | None) -> str:
    return "signatures of unknown age" if age is None else f"signatures {human_age(age)} old"


def _shorten(problems: list[str]) -> str:
    # "ERROR: Can't open file or directory" after the LibClamAV line that says why, or "WARNING: /x:
    # Can't access file" after "/x: No such file or directory", adds nothing.
    useful = [line for line in problems if not line.startswith(("ERROR: Can't", "WARNING: "))] or problems
    shown = "; ".join(useful[:SHOWN_PROBLEMS])
    return shown if len(shown) <= 200 else shown[:199] + "…"


def _problems(problems: list[str], fields: dict[str, int]) -> str:
    errors = fields.get("Total errors")
    counted = f"{errors} error{'' if errors == 1 else 's'}" if errors else ""
    detail = _shorten(problems) if problems else ""
    return ": ".join(part for part in (counted, detail) if part) or "errors"
