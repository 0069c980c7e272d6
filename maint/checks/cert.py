"""``cert.expiry``: days until a TLS certificate expires, from a PEM file or a live host:port."""

from __future__ import annotations

import datetime as dt

from maint.checks import SECTION, Outcome, Param, Status, StepType, first_line, number, quote, sections, text
from maint.executors import CommandResult


class CertExpiry(StepType):
    """Reads the certificate's notAfter with ``openssl x509`` (from ``path`` or from ``address``)."""

    default_tier = "L2"
    default_severity = "critical"

    name = "cert.expiry"
    description = "Days until a certificate (PEM file, or the one a host:port serves) expires."
    params = {
        "path": Param(text, help="PEM certificate file on the host"),
        "address": Param(text, help="host:port serving TLS, asked from the host (openssl s_client)"),
        "servername": Param(text, help="SNI name for address (default: its host part)"),
        "warn_days": Param(number, 30.0, help="warning with fewer days left"),
        "critical_days": Param(number, 7.0, help="failed with fewer days left (and when expired)"),
    }

    def command(self) -> str:
        """The certificate's subject and end date, then the host's clock."""
        path, address = self.values["path"], self.values["address"]
        if bool(path) == bool(address):
            return "echo 'cert.expiry needs exactly one of path, address' >&2; exit 64"
        if path:
            read = f"openssl x509 -noout -enddate -subject -in {quote(path)}"
        else:
            server = self.values["servername"] or address.rsplit(":", 1)[0]
            read = (
                f"echo | timeout 20 openssl s_client -connect {quote(address)} -servername {quote(server)} "
                "2>/dev/null | openssl x509 -noout -enddate -subject"
            )
        return f"echo '{SECTION} cert'; {read}; echo '{SECTION} rc'; echo $?; echo '{SECTION} now'; date +%s"

    def evaluate(self, result: CommandResult) -> Outcome:
        """Days left = notAfter - host time; expired or under critical_days → failed."""
        where = self.values["path"] or self.values["address"]
        if result.exit_code == 64:
            return Outcome(Status.ERROR, result.stderr.strip())
        found = sections(result.stdout)
        if result.exit_code == 127 or ("not found" in result.stderr and "openssl" in result.stderr):
            return Outcome(Status.ERROR, f"openssl not found on the host: {first_line(result.stderr)}")
        fields = dict(line.partition("=")[::2] for line in found.get("cert", "").splitlines() if "=" in line)
        if found.get("rc", "1").strip() != "0" or "notAfter" not in fields:
            detail = first_line(result.stderr) or "no certificate read"
            return Outcome(Status.ERROR, f"cannot read the certificate of {where}: {detail}")
        try:
            expires = dt.datetime.strptime(" ".join(fields["notAfter"].split()), "%b %d %H:%M:%S %Y %Z")
            now = int(found["now"].split()[0])
        except (ValueError, KeyError, IndexError):
            return Outcome(Status.ERROR, f"cannot parse the certificate dates of {where}: {fields.get('notAfter')!r}")
        seconds_left = expires.replace(tzinfo=dt.UTC).timestamp() - now
        days_left = seconds_left / 86400
        metrics = {"days_left": round(days_left, 2)}
        subject = fields.get("subject", "").strip()
        named = f" ({subject})" if subject else ""
        if seconds_left <= 0:
            return Outcome(Status.FAILED, f"{where}{named} expired {-days_left:.0f} days ago", metrics)
        status = Status.OK
        if days_left < self.values["critical_days"]:
            status = Status.FAILED
        elif days_left < self.values["warn_days"]:
            status = Status.WARNING
        summary = f"{where}{named} expires in {days_left:.0f} days ({expires:%Y-%m-%d})"
        return Outcome(status, summary, metrics)
