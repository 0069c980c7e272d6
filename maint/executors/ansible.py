"""Runs a user's Ansible playbook through ansible-runner and turns its event stream into task results.

One small adapter around ``ansible_runner.run``: the playbook runs once for all the hosts maint
selected (the same inventory sources, ``--limit`` to exactly those hosts, maint's forks, connect
timeout and host key checking), in a private data directory that stays as the run's record. Each
``runner_on_*`` event becomes one :class:`TaskResult` the moment the runner reports it; nothing is
parsed from ansible-playbook's text output.
"""

from __future__ import annotations

import difflib
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maint.executors import CommandResult
from maint.secrets import MASK, SECRET_NAME

if TYPE_CHECKING:
    from maint.become import Keywords
    from maint.vault import VaultOptions

# The prompt of ansible-playbook --ask-vault-pass, answered by the runner with a prompted password.
VAULT_PROMPT = r"^Vault password.*:\s*?$"
# The prompt of ansible-playbook --ask-become-pass, answered with the password typed at maint's -K.
BECOME_PROMPT = r"^BECOME password.*:\s*?$"

EVENT_STATUS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
}


@dataclass(frozen=True)
class PlaybookRequest:
    """What to run: an Ansible playbook on these hosts of these inventory sources."""

    playbook: Path
    inventory: Sequence[str]
    hosts: Sequence[str]
    data_dir: Path
    forks: int = 50
    extra_vars: Mapping[str, Any] = field(default_factory=dict)
    tags: Sequence[str] = ()
    skip_tags: Sequence[str] = ()
    check: bool = False
    connect_timeout: float = 10.0
    task_timeout: float | None = None
    timeout: float | None = None  # the whole playbook
    cancel: Callable[[], bool] = lambda: False
    vault: VaultOptions | None = None  # the vault passwords, for vaulted variables and files
    hidden: Sequence[str] = field(default=(), repr=False)  # decrypted vault values, masked in the record
    # maint's -b/--become-user/--become-method and step/playbook become keywords, as ansible-playbook's options
    # (the lowest precedence there: the playbook's own keywords and the inventory's variables win).
    become: Keywords | None = None
    become_password: str | None = field(default=None, repr=False)  # typed at maint's -K


def become_cmdline(become: Keywords | None, password: str | None) -> list[str]:
    """ansible-playbook's options for maint's become keywords and a -K password (answered at its prompt)."""
    arguments: list[str] = []
    if become is not None:
        if become.become:
            arguments.append("--become")
        if become.user:
            arguments += ["--become-user", become.user]
        if become.method:
            arguments += ["--become-method", become.method]
    if password is not None:
        arguments.append("--ask-become-pass")
    return arguments


@dataclass(frozen=True)
class TaskResult:
    """One (host, task) result from the event stream."""

    host: str
    task: str
    module: str
    status: str  # ok, failed, unreachable, skipped (a failure with ignore_errors is "warning")
    changed: bool
    rc: int | None
    summary: str
    output: str
    started: float  # time.time() when the runner reported the task started on the host
    duration: float


@dataclass(frozen=True)
class PlaybookOutcome:
    """How the runner ended: its status (successful, failed, timeout, canceled), rc and where its record is."""

    status: str
    rc: int | None
    artifacts: Path | None
    output: str  # the end of ansible-playbook's own output, for errors before any task ran


def ansible_playbook_path() -> str:
    """The directory holding ``ansible-playbook``: the one of this Python first (a venv), then PATH."""
    here = Path(sys.executable).parent
    path = os.environ.get("PATH", "")
    return f"{here}{os.pathsep}{path}" if (here / "ansible-playbook").exists() else path


def inventory_sources(sources: Sequence[str]) -> list[str]:
    """The inventory sources as ansible-playbook must get them: existing paths made absolute.

    ansible-runner starts ansible-playbook in its private data directory, where a relative path
    (``-i lab/inventory.ini``) names nothing; other sources (``host1,host2,``) pass unchanged.
    """
    return [str(Path(source).resolve()) if Path(source).exists() else str(source) for source in sources]


def _diff_text(diff: Any) -> str:
    """A readable diff from a module's ``diff`` (a dict or a list of them: before/after or prepared)."""
    items = diff if isinstance(diff, list) else [diff]
    parts = []
    for item in items:
        if not isinstance(item, dict):
            continue
        if item.get("prepared"):
            parts.append(str(item["prepared"]))
            continue
        before, after = item.get("before"), item.get("after")
        if before == after:
            continue
        if isinstance(before, str) or isinstance(after, str):
            lines = difflib.unified_diff(
                str(before or "").splitlines(keepends=True), str(after or "").splitlines(keepends=True),
                str(item.get("before_header") or "before"), str(item.get("after_header") or "after"),
            )  # fmt: skip
            parts.append("".join(lines))
        elif before is not None or after is not None:
            parts.append(f"- {json.dumps(before, default=str)}\n+ {json.dumps(after, default=str)}")
    return "\n".join(part.rstrip("\n") for part in parts if part)


def _first_line(text: Any, limit: int = 160) -> str:
    for line in str(text or "").splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


def task_result(event: Mapping[str, Any], started: Mapping[tuple[str, str], float]) -> TaskResult | None:
    """The TaskResult of a ``runner_on_*`` event, or None for other events."""
    status = EVENT_STATUS.get(str(event.get("event")))
    if status is None:
        return None
    data = event.get("event_data") or {}
    result = data.get("res") or {}
    host = str(data.get("host") or "")
    task = str(data.get("task") or data.get("task_action") or "task").strip()
    changed = bool(result.get("changed"))
    rc = result.get("rc") if isinstance(result.get("rc"), int) else None
    if status == "failed" and data.get("ignore_errors"):
        status = "warning"
    message = _first_line(result.get("msg")) or _first_line(result.get("stderr")) or _first_line(result.get("stdout"))
    if message == "non-zero return code":  # the command modules' msg says less than their output
        detail = _first_line(result.get("stderr")) or _first_line(result.get("stdout"))
        message = f"rc={rc}" + (f": {detail}" if detail else "")
    if status == "skipped":
        reason = (
            _first_line(result.get("skip_reason"))
            or _first_line(result.get("msg"))
            or "by Ansible (a false when:, or no check mode support)"
        )
        summary = f"skipped: {reason}"
    elif status == "unreachable":
        summary = message or "unreachable"
    elif status in ("failed", "warning"):
        summary = ("failed (ignored): " if status == "warning" else "failed: ") + (message or f"rc={rc}")
    else:
        summary = ("changed" if changed else "ok") + (f": {message}" if message else "")
    diff = _diff_text(result.get("diff")) if result.get("diff") else ""
    stdout = str(result.get("stdout") or "")
    printed = stdout.strip() or str(result.get("stderr") or "").strip()
    if diff:
        stdout = (stdout + "\n" if stdout else "") + "[diff]\n" + diff
    elif status in ("failed", "warning", "unreachable") and result.get("msg") and not printed:
        # A module that printed nothing: its message is the output (never the command modules'
        # "non-zero return code" in front of their own stderr).
        stdout = str(result.get("msg"))
    output = CommandResult(task, rc, stdout, str(result.get("stderr") or ""), 0.0).tail()
    key = (host, task)
    begin = started.get(key, time.time())
    duration = float(data.get("duration") or 0.0) or max(0.0, time.time() - begin)
    return TaskResult(host, task, str(data.get("task_action") or ""), status, changed, rc, summary, output, begin,
                      duration)  # fmt: skip


def run_playbook(request: PlaybookRequest, on_result: Callable[[TaskResult], None]) -> PlaybookOutcome:
    """Run the playbook; ``on_result`` gets each task result as the runner reports it.

    Returns when ansible-playbook has ended (or was cancelled through ``request.cancel``). Raises
    nothing for a failing playbook: its failures are task results, and a playbook that fails before
    any task (syntax error, missing role) is told by the outcome's status, rc and output.
    """
    import ansible_runner

    # Only the private data directory is made owner-only here: the caller owns the directories above it.
    request.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(request.data_dir, 0o700)
    started: dict[tuple[str, str], float] = {}

    def handle(event: dict[str, Any]) -> bool:
        data = event.get("event_data") or {}
        if event.get("event") == "runner_on_start":
            started[(str(data.get("host")), str(data.get("task") or data.get("task_action") or "task").strip())] = (
                time.time()
            )
        else:
            found = task_result(event, started)
            if found is not None:
                on_result(found)
        # Events are kept on disk as the run's record; there is no need to hold them in memory too.
        return True

    cmdline = ["--check", "--diff"] if request.check else []
    if request.vault:
        cmdline += [shlex.quote(argument) for argument in request.vault.cmdline()]
    cmdline += [shlex.quote(argument) for argument in become_cmdline(request.become, request.become_password)]
    env = {
        "PATH": ansible_playbook_path(),
        "ANSIBLE_HOST_KEY_CHECKING": "True",  # the runner turns it off by default; maint verifies host keys
        "ANSIBLE_TIMEOUT": str(max(1, int(request.connect_timeout))),
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
    }
    if request.task_timeout:
        env["ANSIBLE_TASK_TIMEOUT"] = str(max(1, int(request.task_timeout)))
    arguments: dict[str, Any] = {
        "private_data_dir": str(request.data_dir),
        "playbook": str(request.playbook.resolve()),
        "inventory": inventory_sources(request.inventory),
        "limit": ",".join(request.hosts),
        "forks": request.forks,
        "extravars": dict(request.extra_vars),
        "cmdline": " ".join(cmdline) or None,
        "envvars": env,
        "quiet": True,
        "event_handler": handle,
        "cancel_callback": request.cancel,
        "ident": "artifacts",
        "rotate_artifacts": 0,
    }
    passwords = {}
    if request.vault and request.vault.password is not None:
        passwords[VAULT_PROMPT] = request.vault.password
    if request.become_password is not None:
        passwords[BECOME_PROMPT] = request.become_password
    if passwords:
        arguments["passwords"] = passwords
    if request.tags:
        arguments["tags"] = ",".join(request.tags)
    if request.skip_tags:
        arguments["skip_tags"] = ",".join(request.skip_tags)
    if request.timeout:
        arguments["timeout"] = int(max(1, request.timeout))
    try:
        runner = ansible_runner.run(**arguments)
    finally:
        # ansible-runner writes the answers to its prompts (a vault password typed at --ask-vault-pass) into
        # env/passwords; the data directory stays as the run's record, the password must not.
        (request.data_dir / "env" / "passwords").unlink(missing_ok=True)
    artifacts = Path(runner.config.artifact_dir) if getattr(runner, "config", None) else None
    output = ""
    if artifacts is not None and runner.status in ("canceled", "timeout"):
        stop_leftovers(artifacts)
    if artifacts is not None:
        secure_record(request.data_dir, artifacts)
        mask_record(artifacts, request.hidden)
        stdout = artifacts / "stdout"
        if stdout.exists():
            output = CommandResult("ansible-playbook", runner.rc, stdout.read_text(errors="replace"), "", 0.0).tail()
    return PlaybookOutcome(str(runner.status), runner.rc, artifacts, output)


def stop_leftovers(artifacts: Path) -> int:
    """Kill what is left of a cancelled or timed-out ansible-playbook; returns how many processes.

    The runner kills ansible-playbook's process group, but Ansible's forked workers may sit in
    other groups and would run their task to the end. They carry the runner's marker in their
    environment (``AWX_ISOLATED_DATA_DIR`` = this run's artifacts directory), which is how they are
    found without touching any other process.
    """
    import signal

    marker = f"AWX_ISOLATED_DATA_DIR={artifacts}".encode()
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environment = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environment.split(b"\0"):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
            except OSError:
                pass
    return killed


def mask_record(artifacts: Path, values: Sequence[str]) -> None:
    """Replace each of ``values`` (as written, and as escaped in JSON) by ``***`` in every file of the runner's
    record: a task that printed a decrypted vault value leaves it in its events and stdout."""
    if not any(values):
        return
    forms = sorted({form for value in values if value for form in (value, json.dumps(value)[1:-1])}, key=len,
                   reverse=True)  # fmt: skip
    for root, _directories, files in os.walk(artifacts):
        for name in files:
            path = Path(root) / name
            data = original = path.read_bytes()
            for form in forms:
                data = data.replace(form.encode(), MASK.encode())
            if data != original:
                path.write_bytes(data)


def secure_record(data_dir: Path, artifacts: Path) -> None:
    """Make the runner's files readable by their owner only and mask secret-looking environment values.

    ansible-runner writes the whole environment of ansible-playbook into ``artifacts/command``;
    values of names such as ``*_PASSWORD`` or ``*_TOKEN`` are replaced by ``***``.
    """
    command = artifacts / "command"
    if command.exists():
        try:
            record = json.loads(command.read_text())
        except ValueError:
            record = None
        if isinstance(record, dict) and isinstance(record.get("env"), dict):
            record["env"] = {name: "***" if SECRET_NAME.search(name) else value
                             for name, value in record["env"].items()}  # fmt: skip
            command.write_text(json.dumps(record))
    for root, directories, files in os.walk(data_dir):
        for name in directories:
            os.chmod(os.path.join(root, name), 0o700)
        for name in files:
            os.chmod(os.path.join(root, name), 0o600)
    os.chmod(data_dir, 0o700)
