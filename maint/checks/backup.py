"""``backup.restic``, ``backup.borg`` (checks) and ``backup.run`` (a task): backups that can be restored.

A check runs one shell script on the host that prints sections::

    @@MAINT-SECTION now 0           the host's clock (date +%s)
    @@MAINT-SECTION list RC         the repository's snapshots as JSON (stdout), then
    @@MAINT-STDERR list             what the tool said on stderr
    @@MAINT-SECTION check RC        `restic check` / `borg check` (stdout and stderr together)
    @@MAINT-SECTION expected RC     restore test: the files the snapshot lists under the sample path
    @@MAINT-SECTION restore RC      restore test: restoring them into a `mktemp -d` directory
    @@MAINT-SECTION restored RC     restore test: `find -printf '%P<TAB>%s'` of what was restored

The repository password is the first line of the command's standard input: the script reads it into
RESTIC_PASSWORD / BORG_PASSPHRASE, so it is never on a command line (``ps``) nor in any output.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Mapping
from typing import Any

from maint.checks import (
    Outcome,
    Param,
    Status,
    StepType,
    choice,
    command_failure,
    duration,
    first_line,
    flag,
    human_age,
    human_bytes,
    number,
    quote,
    secret,
    text,
)
from maint.executors import CommandResult

MARK = "@@MAINT-"
_SEVERITY = {Status.OK: 0, Status.WARNING: 1, Status.FAILED: 2, Status.ERROR: 3}

# Lines restic prints while checking that say nothing about the repository's health.
_RESTIC_CHECK_NOISE = (
    "using temporary cache",
    "create exclusive lock",
    "load indexes",
    "check all packs",
    "check snapshots",
    "read all data",
    "no errors were found",
    "[",
)


def text_list(value: Any) -> tuple[str, ...]:
    """One text or a list of texts (paths, tags); never empty."""
    items = value if isinstance(value, list) else [value]
    if not items or any(isinstance(item, (dict, list)) or item is None or str(item) == "" for item in items):
        raise ValueError(f"expected a text or a list of texts, got {value!r}")
    return tuple(str(item) for item in items)


def optional_text(value: Any) -> str | None:
    """A text, where an empty one (a template whose variable defaulted to '') means none."""
    result = text(value).strip()
    return result or None


def count(value: Any) -> int:
    """A whole number of at least 0."""
    result = number(value)
    if result < 0 or result != int(result):
        raise ValueError(f"expected a whole number of at least 0, got {value!r}")
    return int(result)


# ---------------------------------------------------------------------------------------------------
# Parsing the sectioned output


@dataclasses.dataclass
class Section:
    """One section of the script's output: its exit code, stdout and (for ``list``) stderr."""

    exit_code: int
    output: str = ""
    stderr: str = ""


def parse_sections(stdout: str) -> dict[str, Section]:
    """The sections of the script's output by name; lines before the first marker are ignored."""
    sections: dict[str, Section] = {}
    current: Section | None = None
    into_stderr = False
    lines: list[str] = []

    def flush() -> None:
        if current is None:
            return
        body = "\n".join(lines).strip("\n")
        if into_stderr:
            current.stderr = body
        else:
            current.output = body

    for line in stdout.splitlines():
        if line.startswith(MARK + "SECTION "):
            flush()
            parts = line.split()
            name, code = parts[1], parts[2] if len(parts) > 2 else "1"
            current = Section(int(code) if code.lstrip("-").isdigit() else 1)
            sections[name] = current
            into_stderr, lines = False, []
        elif line.startswith(MARK + "STDERR ") and current is not None:
            flush()
            into_stderr, lines = True, []
        else:
            lines.append(line)
    flush()
    return sections


def _timestamp(value: str) -> float:
    """Epoch seconds of an ISO 8601 time; one without an offset is UTC (the scripts set TZ=UTC)."""
    value = value.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    # restic writes nanoseconds; Python reads at most microseconds.
    head, dot, rest = value.partition(".")
    if dot:
        offset = rest.lstrip("0123456789")
        digits = rest[: len(rest) - len(offset)]
        value = f"{head}.{digits[:6].ljust(6, '0')}{offset}"
    moment = datetime.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def _worst(statuses: list[Status]) -> Status:
    return max(statuses, key=lambda status: _SEVERITY[status], default=Status.OK)


# ---------------------------------------------------------------------------------------------------
# The two repository checks


class _RepositoryCheck(StepType):
    """What restic and borg checks share: the script's frame, age and count rules, the restore test."""

    default_tier = "L3"
    default_severity = "critical"

    tool: str = ""
    noun: str = "snapshot"
    password_variable: str = ""
    params = {
        "repository": Param(text, required=True, help="repository path or URL"),
        "password": Param(secret, required=True, help="env:NAME or file:PATH holding the repository password"),
        "max_age": Param(duration, required=True, help="failed when the latest snapshot is older (26h, 2d)"),
        "warn_age": Param(duration, help="warning when the latest snapshot is older"),
        "min_snapshots": Param(count, 1, help="failed with fewer snapshots"),
        "check": Param(flag, True, help="check the repository's integrity; damage makes it failed"),
        "read_data": Param(flag, False, help="with check: also read and verify every data pack (slow)"),
        "restore_test": Param(
            optional_text, help="a path in the latest snapshot to restore into a temp dir and verify ('' for none)"
        ),
    }

    def stdin(self) -> str | None:
        """The repository password, the first line the script reads."""
        return str(self.values["password"].value) + "\n"

    def command(self) -> str:
        """The sectioned script: clock, snapshot list, check, restore test; see the module docstring."""
        tool = self.tool
        lines = [
            f"IFS= read -r {self.password_variable}; export {self.password_variable}",
            f"command -v {tool} >/dev/null 2>&1 || {{ echo '{tool}: command not found' >&2; exit 127; }}",
            "t=$(mktemp -d) || exit 1",
            "trap 'rm -rf \"$t\"' EXIT",
            # stdout and stderr of each tool go to files so that each section is whole and in order.
            f'run() {{ name=$1; shift; "$@" >"$t/out" 2>"$t/err"; rc=$?; echo "{MARK}SECTION $name $rc"; '
            f'cat "$t/out"; echo; echo "{MARK}STDERR $name"; cat "$t/err"; echo; return $rc; }}',
            f'echo "{MARK}SECTION now 0"; date +%s',
            *self.script(),
            "exit 0",
        ]
        return "\n".join(lines)

    def script(self) -> list[str]:
        """The tool-specific lines of the script (after the clock)."""
        raise NotImplementedError

    def list_problem(self, section: Section) -> Outcome:
        """The outcome when listing the snapshots failed: wrong password, no repository, other."""
        raise NotImplementedError

    def snapshot_times(self, output: str) -> list[float]:
        """Epoch times of the snapshots in the listing; raises ValueError if it cannot be parsed."""
        raise NotImplementedError

    def check_problem(self, section: Section) -> str:
        """The one line that says why the repository check failed."""
        raise NotImplementedError

    def evaluate(self, result: CommandResult) -> Outcome:
        """Snapshot count and age, then the check, then the restore test; the worst status wins."""
        repository = self.values["repository"]
        if result.exit_code == 127 or f"{MARK}SECTION" not in result.stdout:
            return command_failure(result, self.tool)
        sections = parse_sections(result.stdout)
        listing = sections.get("list")
        if listing is None:
            return command_failure(result, self.tool)
        if listing.exit_code != 0:
            return self.list_problem(listing)
        try:
            now = float(sections["now"].output.split()[0])
            times = self.snapshot_times(listing.output)
        except (KeyError, IndexError, ValueError, TypeError) as error:
            return Outcome(Status.ERROR, f"{self.tool} {repository}: cannot parse the snapshot list: {error}")
        statuses: list[Status] = []
        parts: list[str] = []
        metrics: dict[str, float] = {"snapshots": float(len(times))}
        minimum = self.values["min_snapshots"]
        if not times:
            statuses.append(Status.FAILED)
            parts.append(f"no {self.noun}s in {repository}")
        else:
            age = max(0.0, now - max(times))
            metrics["snapshot_age_seconds"] = age
            max_age, warn_age = self.values["max_age"], self.values["warn_age"]
            if age > max_age:
                statuses.append(Status.FAILED)
            elif warn_age is not None and age > warn_age:
                statuses.append(Status.WARNING)
            noun = self.noun if len(times) == 1 else self.noun + "s"
            parts.append(f"{len(times)} {noun}, latest {human_age(age)} ago (max {human_age(max_age)})")
            if len(times) < minimum:
                statuses.append(Status.FAILED)
                parts.append(f"fewer than {minimum} {self.noun}s")
        if self.values["check"]:
            checked = sections.get("check")
            if checked is None:
                statuses.append(Status.ERROR)
                parts.append("repository check did not run")
            elif checked.exit_code == 0:
                metrics["check_ok"] = 1.0
                parts.append("check ok")
            else:
                metrics["check_ok"] = 0.0
                problem = self.check_problem(checked)
                locked = "lock" in problem.lower() and "locked" in (checked.output + checked.stderr).lower()
                statuses.append(Status.ERROR if locked else Status.FAILED)
                parts.append(f"check failed: {problem}")
        if self.values["restore_test"] is not None and times:
            status, summary, restored = self._restore_outcome(sections)
            metrics["restore_ok"] = 1.0 if status is Status.OK else 0.0
            if restored is not None:
                metrics["restore_files"] = float(restored)
            statuses.append(status)
            parts.append(summary)
        return Outcome(_worst(statuses), "; ".join(parts), metrics)

    def expected_files(self, output: str) -> dict[str, int]:
        """Relative path -> size of the files the snapshot holds under the sample path."""
        raise NotImplementedError

    def _restore_outcome(self, sections: Mapping[str, Section]) -> tuple[Status, str, int | None]:
        path = self.values["restore_test"]
        expected, restore, restored = (sections.get(name) for name in ("expected", "restore", "restored"))
        if expected is None or restore is None or restored is None:
            return Status.ERROR, f"restore test of {path} did not run", None
        if expected.exit_code != 0:
            detail = first_line(expected.stderr) or first_line(expected.output) or f"exit {expected.exit_code}"
            return Status.FAILED, f"restore test: cannot list {path} in the snapshot: {detail}", None
        try:
            wanted = self.expected_files(expected.output)
        except (ValueError, TypeError, KeyError) as error:
            return Status.ERROR, f"restore test: cannot parse the listing of {path}: {error}", None
        if not wanted:
            return Status.FAILED, f"restore test: {path} holds no files in the latest snapshot", 0
        if restore.exit_code != 0:
            detail = _first_error(restore.stderr + "\n" + restore.output) or f"exit {restore.exit_code}"
            return Status.FAILED, f"restore test of {path} failed: {detail}", None
        got: dict[str, int] = {}
        for line in restored.output.splitlines():
            name, _, size = line.rpartition("\t")
            if name and size.isdigit():
                got[name] = int(size)
        missing = sorted(set(wanted) - set(got))
        wrong = sorted(name for name in wanted if name in got and got[name] != wanted[name])
        if missing or wrong:
            shown = (missing + wrong)[0]
            what = f"{len(missing)} missing" if missing else f"{len(wrong)} with the wrong size"
            return Status.FAILED, f"restore test of {path}: {what} of {len(wanted)} files (e.g. {shown})", len(got)
        total = sum(wanted.values())
        files = "1 file" if len(wanted) == 1 else f"{len(wanted)} files"
        return Status.OK, f"restore of {path} ok ({files}, {human_bytes(total)}, verified)", len(wanted)


def _first_error(output: str) -> str:
    """The first line that reports an error, joined with its indented detail line if it ends in ':'."""
    lines = [line.rstrip() for line in output.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        lowered = line.lower().strip()
        if lowered.startswith(_RESTIC_CHECK_NOISE) or lowered == "fatal: repository contains errors":
            continue
        if lowered.startswith("load(") and "retrying" in lowered:
            continue
        if line.endswith(":") and index + 1 < len(lines):
            return first_line(f"{line.strip()} {lines[index + 1].strip()}")
        return first_line(line)
    return first_line(output)


class ResticBackup(_RepositoryCheck):
    """A restic repository: snapshot count and age, ``restic check``, optionally a verified restore.

    The age is that of the newest snapshot by the host's clock. ``restore_test`` names a path as
    ``restic ls latest`` shows it (``/data/reports`` for a backup of ``/srv/data``): its files are
    restored from the latest snapshot into a ``mktemp -d`` directory with ``--verify`` (restic reads
    every restored file back and compares it with the SHA-256 content hashes in the snapshot), their
    names and sizes are compared with the snapshot's listing, and the directory is removed.
    """

    name = "backup.restic"
    description = "restic repository: latest snapshot age, snapshot count, restic check, restore test."
    tool = "restic"
    password_variable = "RESTIC_PASSWORD"

    def script(self) -> list[str]:
        """snapshots --json, then check and the restore test if the listing worked."""
        restic = f"restic -r {quote(self.values['repository'])} --no-cache"
        lines = [f"run list {restic} --no-lock snapshots --json || exit 0"]
        if self.values["check"]:
            read = " --read-data" if self.values["read_data"] else ""
            lines.append(f'{restic} check{read} >"$t/check" 2>&1; echo "{MARK}SECTION check $?"; cat "$t/check"')
        path = self.values["restore_test"]
        if path is not None:
            sample = quote(path)
            lines += [
                f"run expected {restic} --no-lock ls --json latest {sample}",
                'mkdir "$t/restore"',
                f'run restore {restic} --no-lock restore latest --target "$t/restore" --include {sample} --verify',
                "run restored find \"$t/restore\" -type f -printf '%P\\t%s\\n'",
            ]
        return lines

    def list_problem(self, section: Section) -> Outcome:
        """Wrong password and a missing repository are errors with a one-line reason."""
        repository = self.values["repository"]
        said = section.stderr + "\n" + section.output
        lowered = said.lower()
        if "wrong password" in lowered or section.exit_code == 12:
            return Outcome(
                Status.ERROR, f"restic: wrong password for {repository} (from {self.values['password'].reference})"
            )
        if "unable to open config file" in lowered or "does not exist" in lowered or section.exit_code == 10:
            return Outcome(Status.ERROR, f"restic: no repository at {repository}")
        detail = _first_error(said) or f"exit {section.exit_code}"
        return Outcome(Status.ERROR, f"restic snapshots {repository} failed (exit {section.exit_code}): {detail}")

    def snapshot_times(self, output: str) -> list[float]:
        """Times of ``restic snapshots --json``: a JSON list of snapshots with ``time``."""
        snapshots = json.loads(output or "[]")
        if not isinstance(snapshots, list):
            raise ValueError("expected a JSON list")
        return [_timestamp(item["time"]) for item in snapshots]

    def check_problem(self, section: Section) -> str:
        """The first error restic check reported."""
        return _first_error(section.output) or f"exit {section.exit_code}"

    def expected_files(self, output: str) -> dict[str, int]:
        """``restic ls --json``: a snapshot line, then nodes; files keyed by path without the leading /."""
        files: dict[str, int] = {}
        for line in output.splitlines():
            if not line.strip():
                continue
            node = json.loads(line)
            if node.get("struct_type", "node") == "node" and node.get("type") == "file":
                files[str(node["path"]).lstrip("/")] = int(node.get("size", 0))
        return files


class BorgBackup(_RepositoryCheck):
    """A borg repository: archive count and age, ``borg check``, optionally a verified restore.

    Times come from ``borg list --json`` run with ``TZ=UTC`` (borg 1.x prints local time without an
    offset). ``restore_test`` is a path in the archive (borg stores ``/srv/data`` as ``srv/data``; a
    leading / is dropped): it is extracted from the latest archive into a ``mktemp -d`` directory (borg
    authenticates every chunk as it reads it) and names and sizes are compared with ``borg list``.
    borg is told never to ask (relocated or unknown repositories are errors, not prompts).
    """

    name = "backup.borg"
    description = "borg repository: latest archive age, archive count, borg check, restore test."
    tool = "borg"
    noun = "archive"
    password_variable = "BORG_PASSPHRASE"

    def script(self) -> list[str]:
        """list --json, then check and the restore test if the listing worked."""
        repository = quote(self.values["repository"])
        lines = [
            "export TZ=UTC BORG_RELOCATED_REPO_ACCESS_IS_OK=no BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=no",
            f"run list borg list --json {repository} || exit 0",
        ]
        if self.values["check"]:
            read = " --verify-data" if self.values["read_data"] else ""
            lines.append(
                f'borg check{read} {repository} >"$t/check" 2>&1; echo "{MARK}SECTION check $?"; cat "$t/check"'
            )
        path = self.values["restore_test"]
        if path is not None:
            sample = quote(str(path).lstrip("/"))
            lines += [
                f"archive=$(borg list --last 1 --short {repository})",
                f'run expected borg list --json-lines {repository}::"$archive" {sample}',
                'mkdir "$t/restore"',
                f'run restore sh -c \'cd "$1" && shift && exec borg extract "$@"\' sh "$t/restore" '
                f'{repository}::"$archive" {sample}',
                "run restored find \"$t/restore\" -type f -printf '%P\\t%s\\n'",
            ]
        return lines

    def list_problem(self, section: Section) -> Outcome:
        """Wrong passphrase and a missing repository are errors with a one-line reason."""
        repository = self.values["repository"]
        said = section.stderr + "\n" + section.output
        lowered = said.lower()
        if "passphrase" in lowered and "incorrect" in lowered:
            return Outcome(
                Status.ERROR, f"borg: wrong passphrase for {repository} (from {self.values['password'].reference})"
            )
        if "previously located at" in lowered:
            return Outcome(
                Status.ERROR, f"borg: {repository} was moved or copied; borg refuses it ({first_line(said)})"
            )
        if "does not exist" in lowered or "is not a valid repository" in lowered:
            return Outcome(Status.ERROR, f"borg: no repository at {repository}")
        detail = first_line(section.stderr) or first_line(section.output) or f"exit {section.exit_code}"
        return Outcome(Status.ERROR, f"borg list {repository} failed (exit {section.exit_code}): {detail}")

    def snapshot_times(self, output: str) -> list[float]:
        """Times of ``borg list --json``: ``archives`` with ``time`` (or ``start``)."""
        document = json.loads(output)
        return [_timestamp(item.get("time") or item["start"]) for item in document["archives"]]

    def check_problem(self, section: Section) -> str:
        """The first line borg check printed (it is quiet unless something is wrong)."""
        return first_line(section.output) or f"exit {section.exit_code}"

    def expected_files(self, output: str) -> dict[str, int]:
        """``borg list --json-lines``: items with ``type`` ('-' for a file), ``path`` and ``size``."""
        files: dict[str, int] = {}
        for line in output.splitlines():
            if line.strip():
                item = json.loads(line)
                if item.get("type") == "-":
                    files[str(item["path"])] = int(item.get("size", 0))
        return files


# ---------------------------------------------------------------------------------------------------
# The backup task


class BackupRun(StepType):
    """Takes a backup of ``paths`` with restic or borg and records the snapshot and its size.

    restic: ``restic backup --json --quiet`` prints one summary line (snapshot id, files, bytes
    processed and added); borg: ``borg create --json`` names the archive and its stats. The
    password reaches the host on stdin only. An incomplete backup (restic exit 3, borg exit 1: some
    files could not be read) is a warning; any other failure is an error.
    """

    default_tier = "L3"
    default_severity = "critical"

    name = "backup.run"
    description = "Take a backup of paths with restic or borg; record the snapshot id and size."
    changes_host = True
    params = {
        "tool": Param(choice("restic", "borg"), "restic", help="restic or borg"),
        "repository": Param(text, required=True, help="repository path or URL (it must exist)"),
        "password": Param(secret, required=True, help="env:NAME or file:PATH holding the repository password"),
        "paths": Param(text_list, required=True, help="a path or a list of paths to back up"),
        "tags": Param(text_list, help="restic tags (borg: added to the archive comment)"),
        "archive": Param(text, "{hostname}-{now:%Y-%m-%dT%H:%M:%S}", help="borg archive name"),
    }

    def stdin(self) -> str | None:
        """The repository password, the first line the command reads."""
        return str(self.values["password"].value) + "\n"

    def command(self) -> str:
        """Read the password, then run the backup with JSON output."""
        tool = self.values["tool"]
        repository = quote(self.values["repository"])
        paths = " ".join(quote(path) for path in self.values["paths"])
        tags = self.values["tags"] or ()
        if tool == "restic":
            variable = "RESTIC_PASSWORD"
            tag_options = "".join(f" --tag {quote(tag)}" for tag in tags)
            run = f"restic -r {repository} backup --json --quiet{tag_options} -- {paths}"
        else:
            variable = "BORG_PASSPHRASE"
            comment = f" --comment {quote('tags: ' + ','.join(tags))}" if tags else ""
            archive = quote(f"{self.values['repository']}::{self.values['archive']}")
            run = (
                "export BORG_RELOCATED_REPO_ACCESS_IS_OK=no BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=no; "
                f"borg create --json{comment} {archive} {paths}"
            )
        return (
            f"IFS= read -r {variable}; export {variable}; "
            f"command -v {tool} >/dev/null 2>&1 || {{ echo '{tool}: command not found' >&2; exit 127; }}; "
            f"{run}"
        )

    def evaluate(self, result: CommandResult) -> Outcome:
        """The snapshot id, file count and sizes from the tool's JSON."""
        tool = self.values["tool"]
        if result.exit_code == 127:
            return command_failure(result, tool)
        incomplete = (tool == "restic" and result.exit_code == 3) or (tool == "borg" and result.exit_code == 1)
        if result.exit_code != 0 and not incomplete:
            said = (result.stderr + "\n" + result.stdout).lower()
            repository = self.values["repository"]
            if "wrong password" in said or ("passphrase" in said and "incorrect" in said):
                return Outcome(Status.ERROR, f"{tool}: wrong password for {repository}")
            if "unable to open config file" in said or "does not exist" in said:
                return Outcome(Status.ERROR, f"{tool}: no repository at {repository}")
            return command_failure(result, f"{tool} backup")
        try:
            outcome = self._restic(result.stdout) if tool == "restic" else self._borg(result.stdout)
        except (ValueError, KeyError, TypeError) as error:
            return Outcome(Status.ERROR, f"{tool}: cannot parse the backup's JSON output: {error}")
        if incomplete:
            detail = first_line(result.stderr)
            summary = f"{outcome.summary}; incomplete: {detail}" if detail else f"{outcome.summary}; incomplete"
            return Outcome(Status.WARNING, summary, outcome.metrics)
        return outcome

    def _restic(self, stdout: str) -> Outcome:
        summary: dict[str, Any] | None = None
        for line in stdout.splitlines():
            if line.startswith("{"):
                message = json.loads(line)
                if message.get("message_type") == "summary":
                    summary = message
        if summary is None:
            raise ValueError("no summary line")
        return self._taken(
            f"snapshot {summary['snapshot_id']}",
            files=summary.get("total_files_processed", 0),
            processed=summary.get("total_bytes_processed", 0),
            added=summary.get("data_added", 0),
            seconds=summary.get("total_duration", 0),
        )

    def _borg(self, stdout: str) -> Outcome:
        archive = json.loads(stdout)["archive"]
        stats = archive["stats"]
        return self._taken(
            f"archive {archive['name']} ({str(archive['id'])[:8]})",
            files=stats.get("nfiles", 0),
            processed=stats.get("original_size", 0),
            added=stats.get("deduplicated_size", 0),
            seconds=archive.get("duration", 0),
        )

    def _taken(self, label: str, files: float, processed: float, added: float, seconds: float) -> Outcome:
        """The outcome of a backup that was taken: what, how many files, how many bytes."""
        metrics = {
            "files": float(files),
            "bytes_processed": float(processed),
            "bytes_added": float(added),
            "duration_seconds": float(seconds),
        }
        summary = (
            f"{label} of {', '.join(self.values['paths'])}: {int(files)} files, "
            f"{human_bytes(processed)} processed, {human_bytes(added)} added"
        )
        return Outcome(Status.OK, summary, metrics)
