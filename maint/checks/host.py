"""Host-wide checks: available memory, pending reboot, time synchronisation."""

from __future__ import annotations

from maint.checks import (
    SECTION,
    Outcome,
    Param,
    Status,
    StepType,
    choice,
    command_failure,
    first_line,
    number,
    percent,
    quote,
    sections,
    text,
)
from maint.executors import CommandResult


class MemAvailable(StepType):
    """Reads MemAvailable and MemTotal from /proc/meminfo."""

    name = "mem.available"
    description = "Available memory (MemAvailable) as a percentage of total, against lower bounds."
    params = {
        "warn_below": Param(percent, 20.0, help="warning below this available percentage"),
        "critical_below": Param(percent, 10.0, help="failed below this available percentage"),
    }

    def command(self) -> str:
        """The kernel's memory counters."""
        return "cat /proc/meminfo"

    def evaluate(self, result: CommandResult) -> Outcome:
        """Available % = MemAvailable / MemTotal (kernel 3.14 and later report MemAvailable)."""
        if result.exit_code != 0:
            return command_failure(result, "/proc/meminfo")
        values: dict[str, int] = {}
        for line in result.stdout.splitlines():
            key, _, rest = line.partition(":")
            fields = rest.split()
            if fields and fields[0].isdigit():
                values[key.strip()] = int(fields[0]) * 1024
        if "MemTotal" not in values or "MemAvailable" not in values:
            return Outcome(Status.ERROR, "/proc/meminfo has no MemTotal/MemAvailable (kernel older than 3.14?)")
        total, available = values["MemTotal"], values["MemAvailable"]
        available_percent = round(100.0 * available / total, 1) if total else 0.0
        status = Status.OK
        if available_percent < self.values["critical_below"]:
            status = Status.FAILED
        elif available_percent < self.values["warn_below"]:
            status = Status.WARNING
        summary = (
            f"{available_percent:g}% of memory available ({available / 2**30:.1f} of {total / 2**30:.1f} GiB; "
            f"warn below {self.values['warn_below']:g}%, critical below {self.values['critical_below']:g}%)"
        )
        metrics = {"available_percent": available_percent, "available_bytes": float(available),
                   "total_bytes": float(total)}  # fmt: skip
        return Outcome(status, summary, metrics)


class RebootRequired(StepType):
    """Looks for the reboot-required flag file that Debian and Ubuntu packages leave."""

    default_tier = "L1"
    default_severity = "info"

    name = "reboot.required"
    description = "Whether the host waits for a reboot (/var/run/reboot-required), and which packages asked."
    params = {
        "path": Param(text, "/var/run/reboot-required", help="flag file; PATH.pkgs lists the packages"),
        "status": Param(choice("warning", "failed"), "warning", help="status when a reboot is pending"),
    }

    def command(self) -> str:
        """The flag, the packages that set it, and the uptime."""
        path = quote(self.values["path"])
        packages = quote(self.values["path"] + ".pkgs")
        return (
            f"echo '{SECTION} flag'; if [ -e {path} ]; then echo pending; else echo none; fi; "
            f"echo '{SECTION} packages'; cat {packages} 2>/dev/null; "
            f"echo '{SECTION} uptime'; cat /proc/uptime"
        )

    def evaluate(self, result: CommandResult) -> Outcome:
        """pending → the configured status, naming the packages; none → ok."""
        found = sections(result.stdout)
        if result.exit_code != 0 or "flag" not in found:
            return command_failure(result, "reboot-required check")
        uptime = found.get("uptime", "").split()
        metrics = {"uptime_seconds": float(uptime[0])} if uptime else {}
        if found["flag"].strip() != "pending":
            metrics["reboot_required"] = 0.0
            return Outcome(Status.OK, "no reboot pending", metrics)
        metrics["reboot_required"] = 1.0
        packages = sorted({line.strip() for line in found.get("packages", "").splitlines() if line.strip()})
        asked = f" (asked by {', '.join(packages[:5])}{', ...' if len(packages) > 5 else ''})" if packages else ""
        return Outcome(Status(self.values["status"]), f"reboot pending{asked}", metrics)


class TimeSync(StepType):
    """Asks systemd-timesyncd (timedatectl) or chrony whether the clock is synchronised."""

    name = "time.sync"
    description = "Clock synchronisation (systemd-timesyncd or chrony) and the offset chrony reports."
    params = {
        "max_offset": Param(number, 0.5, help="seconds of offset beyond which chrony's clock counts as failed"),
    }

    def command(self) -> str:
        """Whichever of chrony and timedatectl is there answers."""
        return (
            "if command -v chronyc >/dev/null 2>&1; then echo '@@maint-section@@ chrony'; chronyc -n tracking; "
            "elif command -v timedatectl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then "
            "echo '@@maint-section@@ timedatectl'; timedatectl show -p NTPSynchronized -p NTP; "
            "else echo '@@maint-section@@ none'; fi"
        )

    def evaluate(self, result: CommandResult) -> Outcome:
        """chrony: 'Leap status : Normal' and |System time offset| <= max_offset; timedatectl: NTPSynchronized=yes."""
        found = sections(result.stdout)
        if "none" in found:
            return Outcome(Status.ERROR, "no time synchronisation found on the host (chrony, systemd-timesyncd)")
        if "chrony" in found:
            fields = {}
            for line in found["chrony"].splitlines():
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
            if result.exit_code != 0 or "Leap status" not in fields:
                detail = first_line(result.stderr) or first_line(result.stdout)
                return Outcome(Status.ERROR, f"chronyc tracking failed: {detail}")
            # "System time     : 0.000012345 seconds fast of NTP time"
            offset_text = fields.get("System time", "0 seconds fast").split()
            offset = abs(float(offset_text[0])) if offset_text else 0.0
            metrics = {"offset_seconds": offset}
            if fields["Leap status"] != "Normal":
                leap = fields["Leap status"]
                return Outcome(Status.FAILED, f"chrony is not synchronised (leap status: {leap})", metrics)
            if offset > self.values["max_offset"]:
                return Outcome(Status.FAILED, f"clock is {offset:g}s off (max {self.values['max_offset']:g}s)", metrics)
            return Outcome(Status.OK, f"chrony synchronised, offset {offset:g}s", metrics)
        fields = dict(line.partition("=")[::2] for line in found.get("timedatectl", "").splitlines() if "=" in line)
        if result.exit_code != 0 or "NTPSynchronized" not in fields:
            detail = first_line(result.stderr) or first_line(result.stdout)
            return Outcome(Status.ERROR, f"timedatectl failed: {detail}")
        if fields["NTPSynchronized"] == "yes":
            return Outcome(Status.OK, "systemd-timesyncd synchronised", {"synchronized": 1.0})
        service = "NTP service off" if fields.get("NTP") == "no" else "NTP service on but not synchronised"
        return Outcome(Status.FAILED, f"clock not synchronised ({service})", {"synchronized": 0.0})
