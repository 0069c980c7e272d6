"""Pending package updates (apt, dnf, zypper, apk) and the task that applies them (apt).

The apt types can work on a private apt state instead of the machine's (``state_dir``): the lab
uses that to give each of its hosts its own dpkg database, package lists and sources, so a check
or an upgrade there never reads or changes the packages of the machine the lab runs on.
"""

from __future__ import annotations

import re
import shlex
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from maint.checks import (
    SECTION,
    Outcome,
    Param,
    Status,
    StepType,
    command_failure,
    first_line,
    flag,
    number,
    quote,
    sections,
    threshold_status,
)
from maint.checks.antivirus import optional_text
from maint.executors import CommandResult

DEFAULT_REBOOT_FILE = "/var/run/reboot-required"
SHOWN_PACKAGES = 5

# apt prints one line per package it would upgrade: "Inst NAME [OLD] (NEW RELEASE, RELEASE [ARCH])".
# A newly installed dependency has no [OLD].
_INST = re.compile(r"^Inst (?P<name>\S+)(?: \[(?P<old>[^\]]*)\])? \((?P<new>\S+) (?P<releases>.*?)(?: \[[^\]]*\])?\)")
_APT_OPTION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:_.\-]*=.*$")


# Converters ---------------------------------------------------------------------------------------




def optional_number(value: Any) -> float | None:
    """A number, where an empty value (a template's ``default('')``) means "no threshold"."""
    if isinstance(value, str) and not value.strip():
        return None
    return number(value)


def apt_options(value: Any) -> tuple[str, ...]:
    """apt configuration options as ``Key=Value`` texts, each passed to apt as ``-o Key=Value``.

    Accepts a mapping (``{Dir::Cache: /srv/apt}``), a list of ``Key=Value`` or ``-o Key=Value``
    texts, or one text of them (as a rendered template gives). Raises ValueError on anything else.
    """
    if isinstance(value, Mapping):
        items = [f"{key}={item}" for key, item in value.items()]
    elif isinstance(value, list):
        items = [str(item).strip().removeprefix("-o").strip() for item in value]
    else:
        items = [word for word in shlex.split(str(value)) if word != "-o"]
    options = tuple(item for item in items if item)
    for option in options:
        if not _APT_OPTION.match(option):
            raise ValueError(f"expected apt options like Dir::Cache=/path, got {option!r}")
    return options


# apt ------------------------------------------------------------------------------------------------


def state_dir_options(state_dir: str) -> tuple[str, ...]:
    """The apt options that keep apt and dpkg entirely inside ``state_dir``.

    Layout: ``apt.conf`` (read through APT_CONFIG instead of /etc/apt/apt.conf.d, see
    :func:`apt_setup`), ``sources.list`` and ``sources.list.d/``, ``preferences`` and
    ``preferences.d/``, ``trusted.gpg.d/``, ``lists/`` (package lists), ``cache/`` (downloaded
    packages; no binary cache files), ``log/`` (apt's history), ``dpkg/`` (dpkg's database, with
    ``status``) and ``root/``, the directory packages are unpacked into.
    """
    return (
        f"Dir::State={state_dir}",
        f"Dir::State::Lists={state_dir}/lists",
        f"Dir::State::status={state_dir}/dpkg/status",
        f"Dir::Cache={state_dir}/cache",
        "Dir::Cache::pkgcache=",
        "Dir::Cache::srcpkgcache=",
        f"Dir::Etc::SourceList={state_dir}/sources.list",
        f"Dir::Etc::SourceParts={state_dir}/sources.list.d",
        f"Dir::Etc::Preferences={state_dir}/preferences",
        f"Dir::Etc::PreferencesParts={state_dir}/preferences.d",
        f"Dir::Etc::Trusted={state_dir}/trusted.gpg",
        f"Dir::Etc::TrustedParts={state_dir}/trusted.gpg.d",
        f"Dir::Log={state_dir}/log",
        f"DPkg::Options::=--admindir={state_dir}/dpkg",
        f"DPkg::Options::=--instdir={state_dir}/root",
        f"DPkg::Options::=--log={state_dir}/dpkg.log",
    )


# apt's and dpkg's working directories in a state_dir, which the commands that write there create.
STATE_WORK_DIRS = ("lists/partial", "cache/archives/partial", "dpkg/info", "dpkg/updates", "log", "root")


def apt_setup(values: Mapping[str, Any], writes: bool = False) -> str:
    """Shell that defines ``maint_apt TOOL ARGS...`` (apt-get, apt-mark with the step's options) first.

    It stops the step early when apt-get is missing (exit 127) or ``state_dir`` has no apt.conf: with
    ``state_dir``, apt's own configuration comes from ``STATE_DIR/apt.conf`` (APT_CONFIG), because
    ``-o`` options are applied only after /etc/apt/apt.conf.d has been read, and that directory
    holds hooks (``DPkg::Post-Invoke``, ``DPkg::Pre-Install-Pkgs``) that act on the machine. A
    missing apt.conf is an error rather than a silent fall-back to the machine's configuration.
    ``writes``: the step runs apt-get update or an upgrade, so the state_dir's working directories
    (:data:`STATE_WORK_DIRS`) are created when missing.
    """
    state_dir = values["state_dir"]
    options = (*(state_dir_options(state_dir) if state_dir else ()), *values["apt_options"])
    shell = "command -v apt-get >/dev/null 2>&1 || { echo 'apt-get: command not found' >&2; exit 127; }; "
    environment = "LC_ALL=C DEBIAN_FRONTEND=noninteractive"
    if state_dir:
        config = quote(f"{state_dir}/apt.conf")
        missing = f"{{ echo {config}': no such file (state_dir needs its apt.conf)' >&2; exit 2; }}"
        shell += f"test -f {config} || {missing}; "
        environment += f" APT_CONFIG={config}"
        if writes:
            shell += "mkdir -p " + " ".join(quote(f"{state_dir}/{sub}") for sub in STATE_WORK_DIRS) + " || exit $?; "
    rendered = "".join(f" -o {quote(option)}" for option in options)
    return shell + f'maint_apt() {{ tool=$1; shift; {environment} "$tool"{rendered} "$@"; }}; '


@dataclass(frozen=True)
class Upgrade:
    """One package apt would upgrade (or newly install): name, versions, and whether it is a security fix."""

    name: str
    old: str | None
    new: str
    security: bool

    def describe(self) -> str:
        """``name old -> new`` (``name new`` for a new package)."""
        return f"{self.name} {self.old} -> {self.new}" if self.old else f"{self.name} (new) {self.new}"


def is_security_release(releases: str) -> bool:
    """Whether apt's release list names a security suite.

    Examples: ``Debian-Security:12/stable-security``, ``Ubuntu:22.04/jammy-security``.
    """
    return "security" in releases.lower()


def parse_simulation(output: str) -> list[Upgrade]:
    """The ``Inst`` lines of ``apt-get -s upgrade`` output (``Conf``/``Remv`` lines are ignored)."""
    upgrades = []
    for line in output.splitlines():
        match = _INST.match(line)
        if match:
            upgrades.append(Upgrade(match["name"], match["old"], match["new"], is_security_release(match["releases"])))
    return upgrades


def kept_back(output: str) -> list[str]:
    """Packages apt lists under "The following packages have been kept back:"."""
    names: list[str] = []
    collecting = False
    for line in output.splitlines():
        if line.startswith("The following packages have been kept back"):
            collecting = True
        elif collecting and line.startswith(" "):
            names.extend(line.split())
        else:
            collecting = False
    return names


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN_PACKAGES])
    return shown + (f" (+{len(items) - SHOWN_PACKAGES} more)" if len(items) > SHOWN_PACKAGES else "")


def _failed_stage(result: CommandResult, stages: Mapping[str, str]) -> Outcome:
    """An error naming the last stage whose marker was printed (the command that failed)."""
    found = sections(result.stdout)
    last = list(found)[-1] if found else next(iter(stages))
    return command_failure(result, stages.get(last, last))


_APT_COMMON = {
    "state_dir": Param(
        optional_text,
        help="a private apt state (apt.conf, sources.list, lists/, dpkg/status, root/, ...) instead of the "
        "machine's; empty: the machine's own",
    ),
    "apt_options": Param(apt_options, (), help="more apt options, Key=Value (a list or a mapping), passed as -o"),
    "update_lists": Param(flag, False, help="run apt-get update first"),
    "dist_upgrade": Param(flag, False, help="count (or apply) what dist-upgrade would, new dependencies included"),
}


class AptUpdates(StepType):
    """Simulates an upgrade (``apt-get -s``) and counts pending, security and held packages."""

    name = "updates.apt"
    description = "Pending apt updates, security updates among them, and held packages, against thresholds."
    params = {
        **_APT_COMMON,
        "warn": Param(optional_number, 1.0, help="warning at or above this many pending updates"),
        "critical": Param(optional_number, None, help="failed at or above this many pending updates"),
        "security_warn": Param(optional_number, None, help="warning at or above this many security updates"),
        "security_critical": Param(optional_number, 1.0, help="failed at or above this many security updates"),
    }

    _STAGES = {"update": "apt-get update", "simulate": "apt-get -s upgrade", "held": "apt-mark showhold"}

    def command(self) -> str:
        """Optional ``apt-get update``, the upgrade simulation and ``apt-mark showhold``, between markers."""
        guard, apt_get = apt_setup(self.values, writes=self.values["update_lists"]), "maint_apt apt-get"
        action = "dist-upgrade" if self.values["dist_upgrade"] else "upgrade"
        parts = [guard]
        if self.values["update_lists"]:
            parts.append(f"echo '{SECTION} update'; {apt_get} -q update >/dev/null || exit $?; ")
        parts.append(
            f"echo '{SECTION} simulate'; {apt_get} -s -o Debug::NoLocking=1 {action} || exit $?; "
            f"echo '{SECTION} held'; maint_apt apt-mark showhold"
        )
        return "".join(parts)

    def evaluate(self, result: CommandResult) -> Outcome:
        """Status: the worse of the pending and the security thresholds; held packages are reported."""
        if result.exit_code != 0:
            return _failed_stage(result, self._STAGES)
        found = sections(result.stdout)
        if "simulate" not in found or "held" not in found:
            return Outcome(Status.ERROR, f"apt: unexpected output: {first_line(result.stdout)!r}")
        upgrades = parse_simulation(found["simulate"])
        held = found["held"].split()
        # apt lists held packages among those kept back: they are reported once, as held.
        back = [name for name in kept_back(found["simulate"]) if name not in held]
        security = [upgrade for upgrade in upgrades if upgrade.security]
        values = self.values
        status = max(
            threshold_status(len(upgrades), values["warn"], values["critical"]),
            threshold_status(len(security), values["security_warn"], values["security_critical"]),
            key=_severity,
        )
        if upgrades:
            summary = f"{_count(len(upgrades), 'update')} pending ({len(security)} security): " + _names(
                [upgrade.describe() for upgrade in sorted(upgrades, key=lambda item: not item.security)]
            )
        else:
            summary = "no updates pending"
        if back:
            summary += f"; kept back: {_names(back)}"
        if held:
            summary += f"; held: {_names(held)}"
        metrics = {
            "pending": float(len(upgrades)),
            "security": float(len(security)),
            "held": float(len(held)),
            "kept_back": float(len(back)),
        }
        return Outcome(status, summary, metrics)


def _severity(status: Status) -> int:
    return [Status.OK, Status.WARNING, Status.FAILED].index(status)


class ApplyUpdates(StepType):
    """Applies pending apt updates (all, or only security ones) and says what changed.

    The command simulates first (the plan: each package's old and new version), then, unless
    ``dry_run``, upgrades, simulates again (what is still pending of the plan) and looks for the
    reboot-required file.
    """

    default_tier = "L2"
    default_severity = "warning"

    name = "updates.apply"
    description = "Task: apply apt updates (all or security only; dry_run simulates), report versions and reboot need."
    changes_host = True
    params = {
        **_APT_COMMON,
        "security_only": Param(flag, False, help="upgrade only packages whose new version comes from a security suite"),
        "dry_run": Param(flag, False, help="only simulate: report what would be upgraded"),
        "reboot_required_file": Param(
            optional_text, DEFAULT_REBOOT_FILE, help="file whose existence means a reboot is needed"
        ),
    }

    _STAGES = {
        "update": "apt-get update",
        "plan": "apt-get -s upgrade",
        "apply": "apt-get upgrade",
        "after": "apt-get -s upgrade (after)",
        "reboot": "reboot check",
    }
    # awk on the host: the names of the simulated upgrades whose release list names a security suite.
    _SECURITY_AWK = "awk '/^Inst /{ r = $0; sub(/^[^(]*\\(/, \"\", r); if (tolower(r) ~ /security/) print $2 }'"

    def command(self) -> str:
        """Plan, apply, re-check and reboot check, each after its marker."""
        guard, apt_get = (
            apt_setup(self.values, writes=not self.values["dry_run"] or self.values["update_lists"]),
            "maint_apt apt-get",
        )
        action = "dist-upgrade" if self.values["dist_upgrade"] else "upgrade"
        simulate = f"{apt_get} -s -o Debug::NoLocking=1 {action}"
        parts = [guard]
        if self.values["update_lists"]:
            parts.append(f"echo '{SECTION} update'; {apt_get} -q update >/dev/null || exit $?; ")
        parts.append(f"echo '{SECTION} plan'; plan=$({simulate}) || exit $?; printf '%s\\n' \"$plan\"; ")
        if not self.values["dry_run"]:
            upgrade = f"{apt_get} -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
            parts.append(f"echo '{SECTION} apply'; ")
            if self.values["security_only"]:
                parts.append(
                    f"packages=$(printf '%s\\n' \"$plan\" | {self._SECURITY_AWK}); "
                    f'if [ -n "$packages" ]; then {upgrade} install --only-upgrade $packages || exit $?; fi; '
                )
            else:
                parts.append(f"{upgrade} {action} || exit $?; ")
            parts.append(f"echo '{SECTION} after'; {simulate} || exit $?; ")
        reboot = quote(self.values["reboot_required_file"] or DEFAULT_REBOOT_FILE)
        parts.append(f"echo '{SECTION} reboot'; if [ -e {reboot} ]; then echo yes; else echo no; fi")
        return "".join(parts)

    def evaluate(self, result: CommandResult) -> Outcome:
        """ok when everything planned was upgraded; failed when some of it is still pending."""
        if result.exit_code != 0:
            return _failed_stage(result, self._STAGES)
        found = sections(result.stdout)
        if "plan" not in found or "reboot" not in found:
            return Outcome(Status.ERROR, f"apt: unexpected output: {first_line(result.stdout)!r}")
        plan = parse_simulation(found["plan"])
        if self.values["security_only"]:
            plan = [upgrade for upgrade in plan if upgrade.security]
        reboot = found["reboot"].strip() == "yes"
        security = sum(upgrade.security for upgrade in plan)
        described = _names([upgrade.describe() for upgrade in plan])
        scope = "security updates" if self.values["security_only"] else "updates"
        reboot_text = "; reboot required" if reboot else ""
        if self.values["dry_run"]:
            summary = (
                f"dry run: would upgrade {_count(len(plan), 'package')} ({security} security): {described}"
                if plan
                else f"dry run: no {scope} pending"
            )
            metrics = {"upgraded": 0.0, "pending": float(len(plan)), "reboot_required": float(reboot)}
            return Outcome(Status.OK, summary + reboot_text, metrics)
        if "after" not in found:
            return Outcome(Status.ERROR, "apt: the upgrade did not report its result")
        still = {upgrade.name for upgrade in parse_simulation(found["after"])}
        remaining = [upgrade for upgrade in plan if upgrade.name in still]
        upgraded = [upgrade for upgrade in plan if upgrade.name not in still]
        metrics = {
            "upgraded": float(len(upgraded)),
            "security": float(sum(upgrade.security for upgrade in upgraded)),
            "remaining": float(len(remaining)),
            "reboot_required": float(reboot),
        }
        if not plan:
            return Outcome(Status.OK, f"no {scope} pending" + reboot_text, metrics)
        summary = f"upgraded {_count(len(upgraded), 'package')}: {_names([upgrade.describe() for upgrade in upgraded])}"
        if not upgraded:
            summary = "upgraded nothing"
        if remaining:
            summary += f"; still pending: {_names([upgrade.name for upgrade in remaining])}"
            return Outcome(Status.FAILED, summary + reboot_text, metrics)
        return Outcome(Status.OK, summary + reboot_text, metrics)


# dnf, zypper, apk --------------------------------------------------------------------------------------

_COUNT_PARAMS = {
    "update_lists": Param(flag, False, help="refresh the repository metadata first"),
    "warn": Param(optional_number, 1.0, help="warning at or above this many pending updates"),
    "critical": Param(optional_number, None, help="failed at or above this many pending updates"),
}
_SECURITY_PARAMS = {
    "security_warn": Param(optional_number, None, help="warning at or above this many security updates"),
    "security_critical": Param(optional_number, 1.0, help="failed at or above this many security updates"),
}


def _tool_guard(tool: str) -> str:
    return f"command -v {tool} >/dev/null 2>&1 || {{ echo '{tool}: command not found' >&2; exit 127; }}; "


def _count_outcome(values: Mapping[str, Any], pending: list[str], security: int | None, what: str) -> Outcome:
    """The Outcome of a package manager's counts: pending names, and the security count if it has one."""
    status = threshold_status(len(pending), values["warn"], values["critical"])
    metrics = {"pending": float(len(pending))}
    if security is not None:
        metrics["security"] = float(security)
        status = max(
            status, threshold_status(security, values["security_warn"], values["security_critical"]), key=_severity
        )
    if pending:
        count = f"{_count(len(pending), 'update')} pending" + (f" ({security} {what})" if security is not None else "")
        summary = f"{count}: {_names(sorted(pending))}"
    else:
        summary = "no updates pending" + (f" ({security} {what})" if security else "")
    return Outcome(status, summary, metrics)


# dnf check-update: "NAME.ARCH  [EPOCH:]VERSION-RELEASE  REPO"; dnf5 puts the same columns under an
# "Available upgrades" heading. An "Obsoleting Packages" section follows with the replaced packages.
_DNF_UPDATE = re.compile(r"^(?P<name>[^\s.][^\s]*)\.(?P<arch>[A-Za-z0-9_]+)\s+(?P<version>\S+)\s+(?P<repo>\S+)\s*$")
# dnf4 updateinfo list: "ADVISORY  Severity/Sec.  NEVRA";
# dnf5 advisory list: "ADVISORY  security  SEVERITY  NEVRA  DATE TIME".
_NEVRA_NAME = re.compile(r"^(?P<name>.+)-(?:\d+:)?[^-]+-[^-]+\.[^.]+$")


def _package_name(nevra: str) -> str:
    match = _NEVRA_NAME.match(nevra)
    return match["name"] if match else nevra


def parse_dnf_check_update(output: str) -> list[str]:
    """Package names from ``dnf check-update`` (dnf4) or ``dnf check-upgrade`` (dnf5) output."""
    names: list[str] = []
    for line in output.splitlines():
        if line.strip().lower().startswith(("obsoleting packages", "obsoleting")):
            break
        match = _DNF_UPDATE.match(line)
        if match and not line.startswith(" "):
            names.append(match["name"])
    return names


def parse_dnf_security(output: str) -> set[str]:
    """Package names with a security advisory, from ``dnf updateinfo list --security`` (dnf4 or dnf5)."""
    names: set[str] = set()
    for line in output.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[1].endswith("/Sec."):
            names.add(_package_name(fields[2]))
        elif len(fields) >= 4 and fields[1] == "security":
            names.add(_package_name(fields[3]))
    return names


class DnfUpdates(StepType):
    """``dnf check-update`` (exit 100: updates pending) and ``dnf updateinfo list --security``."""

    name = "updates.dnf"
    description = "Pending dnf updates and security advisories among them (Fedora, RHEL and clones; dnf4 and dnf5)."
    params = {**_COUNT_PARAMS, **_SECURITY_PARAMS}

    def command(self) -> str:
        """Both listings between markers; check-update's own exit code is printed, since 100 is normal."""
        cache = "--refresh" if self.values["update_lists"] else "--cacheonly"
        return (
            _tool_guard("dnf")
            + f"echo '{SECTION} check'; LC_ALL=C dnf -q {cache} check-update; echo \"{SECTION} check-exit $?\"; "
            f"echo '{SECTION} security'; LC_ALL=C dnf -q {cache} updateinfo list --security --updates 2>/dev/null"
            f" || LC_ALL=C dnf -q {cache} updateinfo list --security"
        )

    def evaluate(self, result: CommandResult) -> Outcome:
        """check-update: 0 none, 100 some, anything else an error; security: names in advisories."""
        if result.exit_code != 0:
            return command_failure(result, "dnf updateinfo" if "check-exit" in result.stdout else "dnf")
        found = sections(result.stdout)
        exit_name = next((name for name in found if name.startswith("check-exit")), "")
        if not exit_name or "security" not in found:
            return Outcome(Status.ERROR, f"dnf: unexpected output: {first_line(result.stdout)!r}")
        check_exit = exit_name.split()[-1]
        if check_exit not in ("0", "100"):
            detail = first_line(result.stderr) or first_line(found.get("check", ""))
            return Outcome(Status.ERROR, f"dnf check-update failed (exit {check_exit}): {detail}")
        pending = parse_dnf_check_update(found["check"]) if check_exit == "100" else []
        security = parse_dnf_security(found["security"])
        # An advisory can name a package that is not installed in that version; count the pending ones.
        return _count_outcome(self.values, pending, len(security & set(pending)) if pending else 0, "security")


def parse_zypper_updates(xml_text: str, kind: str) -> list[ElementTree.Element]:
    """The ``<update>`` elements of one kind (package, patch) in zypper's ``--xmlout`` output."""
    start = xml_text.find("<?xml")
    root = ElementTree.fromstring(xml_text[start if start >= 0 else 0 :].strip())
    update_list = root.find(".//update-status/update-list")
    if update_list is None:
        return []
    return [update for update in update_list.findall("update") if update.get("kind", "package") == kind]


class ZypperUpdates(StepType):
    """``zypper --xmlout list-updates`` and the needed security patches (``-t patch --category security``)."""

    name = "updates.zypper"
    description = "Pending zypper package updates and needed security patches (SUSE, openSUSE)."
    params = {**_COUNT_PARAMS, **_SECURITY_PARAMS}

    def command(self) -> str:
        """Two XML documents between markers."""
        refresh = "" if self.values["update_lists"] else "--no-refresh "
        zypper = f"LC_ALL=C zypper --non-interactive --xmlout {refresh}"
        return (
            _tool_guard("zypper") + f"echo '{SECTION} packages'; {zypper}list-updates || exit $?; "
            f"echo '{SECTION} security'; {zypper}list-updates -t patch --category security"
        )

    def evaluate(self, result: CommandResult) -> Outcome:
        """Pending: package updates; security: needed patches of category security."""
        if result.exit_code != 0:
            return command_failure(result, "zypper")
        found = sections(result.stdout)
        try:
            packages = parse_zypper_updates(found["packages"], "package")
            patches = parse_zypper_updates(found["security"], "patch")
        except (KeyError, ElementTree.ParseError) as error:
            return Outcome(Status.ERROR, f"zypper: cannot parse the XML output: {error}")
        names = [str(update.get("name")) for update in packages]
        security = [patch for patch in patches if patch.get("category", "security") == "security"]
        return _count_outcome(self.values, names, len(security), "security patches")


# apk version -l '<': "NAME-VERSION-rN  <  NEWVERSION-rM"; apk list -u:
# "NAME-NEWVERSION-rM ARCH {ORIGIN} (LICENSE) [upgradable from: NAME-VERSION-rN]".
_APK_VERSION = re.compile(r"^(?P<package>\S+)\s+<\s+(?P<new>\S+)")
_APK_LIST = re.compile(r"^\S+\s+\S+\s+\{[^}]*\}\s+\([^)]*\)\s+\[upgradable from: (?P<package>\S+)\]")
_APK_NAME = re.compile(r"^(?P<name>.+?)-\d[^-]*-r\d+$")


def parse_apk(output: str) -> list[str]:
    """Names of upgradable packages from ``apk list -u`` or ``apk version -l '<'`` output."""
    names = []
    for line in output.splitlines():
        match = _APK_LIST.match(line) or _APK_VERSION.match(line)
        if match:
            package = match["package"]
            name = _APK_NAME.match(package)
            names.append(name["name"] if name else package)
    return names


class ApkUpdates(StepType):
    """``apk list -u`` (``apk version -l '<'`` on apk-tools older than 2.9) on Alpine.

    apk has no security metadata on the host, so there is no security count.
    """

    name = "updates.apk"
    description = "Pending apk updates (Alpine); apk has no security metadata, so only the pending count."
    params = dict(_COUNT_PARAMS)

    def command(self) -> str:
        """The upgradable packages, in whichever format this apk has."""
        update = "apk update -q >/dev/null || exit $?; " if self.values["update_lists"] else ""
        return (
            _tool_guard("apk")
            + update
            + "if apk list --help >/dev/null 2>&1; then apk list -u; else apk version -l '<'; fi"
        )

    def evaluate(self, result: CommandResult) -> Outcome:
        """Pending count against warn/critical."""
        if result.exit_code != 0:
            return command_failure(result, "apk")
        return _count_outcome(self.values, parse_apk(result.stdout), None, "")
