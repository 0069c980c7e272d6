"""Services and processes: systemd units where systemd runs, plain processes everywhere."""

from __future__ import annotations

from maint.checks import SECTION, Outcome, Param, Status, StepType, command_failure, number, quote, sections, text
from maint.executors import CommandResult


class ServiceActive(StepType):
    """``systemctl is-active`` for a unit; a host without systemd is an error pointing to process.running."""

    default_tier = "L2"
    default_severity = "critical"

    name = "service.active"
    description = "A systemd unit is active (hosts without systemd: use process.running)."
    params = {"name": Param(text, required=True, help="unit name, e.g. nginx or nginx.service")}

    def command(self) -> str:
        """The unit's state, or a note that systemd is not running."""
        unit = quote(self.values["name"])
        return (
            f"if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then "
            f"echo '{SECTION} state'; systemctl is-active -- {unit}; "
            f"echo '{SECTION} since'; systemctl show -p ActiveEnterTimestamp --value -- {unit}; "
            f"else echo '{SECTION} no-systemd'; fi"
        )

    def evaluate(self, result: CommandResult) -> Outcome:
        """active → ok; activating/reloading → warning; anything else → failed."""
        found = sections(result.stdout)
        unit = self.values["name"]
        if "no-systemd" in found:
            return Outcome(Status.ERROR, f"systemd is not running on the host: check {unit} with process.running")
        if "state" not in found:
            return command_failure(result, "systemctl")
        state = found["state"].strip() or "unknown"
        if state == "active":
            since = found.get("since", "").strip()
            return Outcome(Status.OK, f"{unit} active" + (f" since {since}" if since else ""), {"active": 1.0})
        if state in ("activating", "reloading"):
            return Outcome(Status.WARNING, f"{unit} is {state}", {"active": 0.0})
        return Outcome(Status.FAILED, f"{unit} is {state}", {"active": 0.0})


class ProcessRunning(StepType):
    """Counts processes by exact name (``pgrep -x``), by command-line regex (``pgrep -f``), or by pid file."""

    default_tier = "L2"
    default_severity = "critical"

    name = "process.running"
    description = "A process is running: by name, by command-line pattern, or by a pid file."
    params = {
        "name": Param(text, help="exact process name (pgrep -x)"),
        "pattern": Param(text, help="regex on the full command line (pgrep -f)"),
        "pidfile": Param(text, help="a pid file whose process must be alive"),
        "min": Param(number, 1.0, help="failed with fewer matching processes"),
    }

    def command(self) -> str:
        """pgrep's pids, or the pid file's pid and whether it is alive."""
        values = self.values
        chosen = [key for key in ("name", "pattern", "pidfile") if values[key]]
        if len(chosen) != 1:
            # Validated here rather than in a converter: the three parameters are alternatives.
            return "echo 'process.running needs exactly one of name, pattern, pidfile' >&2; exit 64"
        if values["pidfile"]:
            pidfile = quote(values["pidfile"])
            return (
                f"if [ ! -r {pidfile} ]; then echo '{SECTION} missing'; exit 0; fi; "
                f"pid=$(head -n 1 {pidfile}); echo '{SECTION} pid'; echo \"$pid\"; echo '{SECTION} alive'; "
                # /proc first: kill -0 is refused (EPERM) for another user's process, which is alive all the same.
                "case \"$pid\" in ''|*[!0-9]*) echo no ;; *) if [ -d /proc/\"$pid\" ] || kill -0 \"$pid\" 2>/dev/null; "
                "then cat /proc/\"$pid\"/comm 2>/dev/null || echo yes; else echo no; fi ;; esac"
            )
        flag = "-x" if values["name"] else "-f"
        target = quote(values["name"] or values["pattern"])
        return f"echo '{SECTION} pids'; pgrep {flag} -- {target}; true"

    def evaluate(self, result: CommandResult) -> Outcome:
        """ok when at least ``min`` processes match (or the pid file's process is alive)."""
        if result.exit_code == 64:
            return Outcome(Status.ERROR, result.stderr.strip())
        found = sections(result.stdout)
        if result.exit_code != 0 or not found:
            return command_failure(result, "pgrep")
        if "missing" in found:
            return Outcome(Status.FAILED, f"pid file {self.values['pidfile']} is missing", {"processes": 0.0})
        if "pid" in found:
            pid = found["pid"].strip()
            alive = found.get("alive", "").strip()
            if alive in ("", "no"):
                shown = pid or "(empty)"
                return Outcome(Status.FAILED, f"process {shown} from {self.values['pidfile']} is not running",
                               {"processes": 0.0})  # fmt: skip
            return Outcome(Status.OK, f"{alive} running as pid {pid}", {"processes": 1.0})
        pids = found.get("pids", "").split()
        what = self.values["name"] or f"/{self.values['pattern']}/"
        count = len(pids)
        minimum = int(self.values["min"])
        metrics = {"processes": float(count)}
        if count < minimum:
            return Outcome(Status.FAILED, f"{count} {what} processes running (need {minimum})", metrics)
        shown = ", ".join(pids[:5]) + (", ..." if count > 5 else "")
        return Outcome(Status.OK, f"{count} {what} processes running (pids {shown})", metrics)
