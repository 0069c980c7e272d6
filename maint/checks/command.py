"""``command``: run a shell command and check its exit code and output."""

from __future__ import annotations

from maint.checks import Outcome, Param, Status, StepType, exit_codes, first_line, regex, secret, text
from maint.executors import CommandResult


class CommandCheck(StepType):
    """Runs ``command`` through the host's shell.

    ok when the exit code is in ``expect_rc`` (default 0), the output matches ``expect_stdout``
    (if given) and does not match ``fail_stdout`` (if given); a match of ``warn_stdout`` makes it a
    warning. The summary is the first line of the output, or what did not meet the expectation.
    """

    name = "command"
    description = "Run a shell command; check its exit code and output against regular expressions."
    params = {
        "command": Param(text, required=True, help="shell command; {{ vars }} are shell-quoted"),
        "expect_rc": Param(exit_codes, frozenset({0}), help="exit code(s) that count as success"),
        "expect_stdout": Param(regex, help="regex the output must match"),
        "fail_stdout": Param(regex, help="regex the output must not match"),
        "warn_stdout": Param(regex, help="regex that makes the result a warning"),
        "stdin_secret": Param(secret, help="env:NAME or file:PATH whose value the command reads on stdin"),
    }
    shell_params = frozenset({"command"})

    def command(self) -> str:
        """The command as rendered."""
        return str(self.values["command"])

    def stdin(self) -> str | None:
        """The secret's value, if the step names one: it reaches the host only on stdin."""
        value = self.values["stdin_secret"]
        return value.value if value is not None else None

    def evaluate(self, result: CommandResult) -> Outcome:
        """Check exit code, then ``fail_stdout``, ``expect_stdout`` and ``warn_stdout``."""
        output = result.stdout
        expected = self.values["expect_rc"]
        metrics = {"exit_code": float(result.exit_code)} if result.exit_code is not None else {}
        if result.exit_code not in expected:
            wanted = " or ".join(str(code) for code in sorted(expected))
            detail = first_line(result.stderr) or first_line(output)
            summary = f"exit {result.exit_code}, expected {wanted}"
            if result.exit_code == 127:
                summary = f"command not found (exit 127): {detail}" if detail else "command not found (exit 127)"
            elif detail:
                summary += f": {detail}"
            return Outcome(Status.FAILED, summary, metrics)
        fail = self.values["fail_stdout"]
        if fail is not None:
            match = fail.search(output)
            if match:
                return Outcome(Status.FAILED, f"output matches /{fail.pattern}/: {first_line(match.group(0))}", metrics)
        expect = self.values["expect_stdout"]
        if expect is not None and not expect.search(output):
            shown = first_line(output) or "(no output)"
            return Outcome(Status.FAILED, f"output does not match /{expect.pattern}/: {shown}", metrics)
        warn = self.values["warn_stdout"]
        if warn is not None:
            match = warn.search(output)
            if match:
                summary = f"output matches /{warn.pattern}/: {first_line(match.group(0))}"
                return Outcome(Status.WARNING, summary, metrics)
        return Outcome(Status.OK, first_line(output) or f"exit {result.exit_code}", metrics)
