"""Lab faults and healthy host state for the updates checks: a private apt world per host.

Once per lab, ``prepare`` builds three flat file repositories of dummy packages (``dpkg-deb``, no
maintainer scripts) with their ``Packages`` and ``Release`` files:

- ``LAB/apt-repo/stable``: maint-lab-tool 1.0 and maint-lab-secure 1.0;
- ``LAB/apt-repo/updates``: maint-lab-tool 1.1 (a normal update);
- ``LAB/apt-repo-security``: maint-lab-secure 1.1, from a release labelled ``Debian-Security``
  (suite ``bookworm-security``), which ships ``/var/run/reboot-required`` as a kernel update would
  make it appear.

Each host gets ``STATE/apt/`` (the ``state_dir`` of the apt step types, see
:func:`maint.checks.updates.state_dir_options`): an apt.conf that keeps /etc/apt/apt.conf.d out, a
sources.list naming the stable repository, package lists already in place (symbolic links to the
repositories' ``Packages``, named as ``apt-get update`` names them: no apt run per host), and a
dpkg database where both 1.0 versions are installed. Healthy: nothing pending. The
``pending-updates`` fault adds the updates and security repositories (1 normal + 1 security update
pending); fixing it restores the healthy state, 1.0 versions included.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from email.utils import formatdate
from pathlib import Path

from maint.errors import LabError
from maint.lab import Fault, Lab, LabHost

TOOL = "maint-lab-tool"
SECURE = "maint-lab-secure"
REBOOT_FILE = "var/run/reboot-required"
INSTALLED = {TOOL: "1.0", SECURE: "1.0"}
# repository directory (relative to the lab) -> (Release fields, packages (name, version))
REPOSITORIES: dict[str, tuple[dict[str, str], tuple[tuple[str, str], ...]]] = {
    "apt-repo/stable": (
        {"Origin": "maint lab", "Label": "maint lab", "Suite": "bookworm", "Codename": "bookworm"},
        ((TOOL, "1.0"), (SECURE, "1.0")),
    ),
    "apt-repo/updates": (
        {"Origin": "maint lab", "Label": "maint lab", "Suite": "bookworm", "Codename": "bookworm"},
        ((TOOL, "1.1"),),
    ),
    "apt-repo-security": (
        {
            "Origin": "Debian",
            "Label": "Debian-Security",
            "Suite": "bookworm-security",
            "Codename": "bookworm-security",
        },
        ((SECURE, "1.1"),),
    ),
}
HEALTHY = ("apt-repo/stable",)
PENDING = ("apt-repo/stable", "apt-repo/updates", "apt-repo-security")
# Characters apt's URItoFileName escapes (as %xx) when it names a list file after its URI.
_APT_ESCAPED = set('\\|{}[]<>"^~_=!@#$%&*')


def state_dir(host: LabHost) -> Path:
    """The host's private apt state: the ``state_dir`` of its apt steps."""
    return host.state_dir / "apt"


def reboot_file(host: LabHost) -> Path:
    """The file whose existence means the host needs a reboot (under the host's package root)."""
    return state_dir(host) / "root" / REBOOT_FILE


def _apt_conf(lab: Lab) -> Path:
    return lab.directory / "apt-repo" / "apt.conf"


def host_vars(lab: Lab, host: LabHost) -> dict[str, str]:
    """Where the updates playbooks of a lab host find its apt state and its reboot-required file."""
    return {"apt_state_dir": str(state_dir(host)), "apt_reboot_required_file": str(reboot_file(host))}


def prepare(lab: Lab, hosts: list[LabHost]) -> None:
    """Build the repositories once per lab, then a healthy apt state for each host that has none.

    A host that already has ``STATE/apt`` keeps it (a ``pending-updates`` fault survives a restart).
    Per host: three directories, two small files and three symbolic links; no process.
    """
    _build_repositories(lab)
    _write_apt_conf(lab)
    conf = _apt_conf(lab)
    for host in hosts:
        if not state_dir(host).exists():
            _write_state(lab, host, HEALTHY, conf)


def _build_repositories(lab: Lab) -> None:
    stamp = lab.directory / "apt-repo" / ".built"
    if stamp.exists():
        return
    if shutil.which("dpkg-deb") is None:
        raise LabError("dpkg-deb not found: the lab's apt repositories need it", hint="apt-get install dpkg-dev")
    (lab.directory / "apt-repo").mkdir(exist_ok=True)
    for relative, (release, packages) in REPOSITORIES.items():
        directory = lab.directory / relative
        directory.mkdir(parents=True, exist_ok=True)
        stanzas = [_build_package(directory, name, version) for name, version in packages]
        index = "\n".join(stanzas)
        (directory / "Packages").write_text(index)
        digest = hashlib.sha256(index.encode()).hexdigest()
        fields = {
            **release,
            "Date": formatdate(usegmt=True),
            "Architectures": "all amd64 arm64 i386",
            "Description": f"maint lab repository {relative}",
        }
        text = "".join(f"{key}: {value}\n" for key, value in fields.items())
        text += f"SHA256:\n {digest} {len(index.encode())} Packages\n"
        (directory / "Release").write_text(text)
    stamp.write_text("")


def _write_apt_conf(lab: Lab) -> None:
    # Written on every `lab up`: the login user (APT::Sandbox::User) changes with `lab up --user`.
    empty_parts = lab.directory / "apt-repo" / "apt.conf.d"
    empty_parts.mkdir(exist_ok=True)
    # Read through APT_CONFIG before anything else: no /etc/apt/apt.conf.d (its hooks act on the
    # machine), and the lab's private repositories may be read by the lab's user, not only by _apt.
    text = f'Dir::Etc::Parts "{empty_parts}";\nDir::Etc::Main "/dev/null";\nAPT::Sandbox::User "{lab.user}";\n'
    if not _apt_conf(lab).exists() or _apt_conf(lab).read_text() != text:
        _apt_conf(lab).write_text(text)


def _build_package(directory: Path, name: str, version: str) -> str:
    """Build NAME_VERSION_all.deb in ``directory``; return its Packages stanza."""
    filename = f"{name}_{version}_all.deb"
    control = {
        "Package": name,
        "Version": version,
        "Architecture": "all",
        "Maintainer": "maint lab <lab@localhost>",
        "Section": "misc",
        "Priority": "optional",
        "Description": "maint lab dummy package",
    }
    with tempfile.TemporaryDirectory() as build:
        root = Path(build)
        (root / "DEBIAN").mkdir()
        (root / "DEBIAN" / "control").write_text("".join(f"{key}: {value}\n" for key, value in control.items()))
        share = root / "usr" / "share" / "maint-lab"
        share.mkdir(parents=True)
        (share / f"{name}.version").write_text(f"{name} {version}\n")
        if name == SECURE and version != INSTALLED[SECURE]:
            (root / REBOOT_FILE).parent.mkdir(parents=True)
            (root / REBOOT_FILE).write_text("*** System restart required ***\n")
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(directory / filename)],
            check=True,
            capture_output=True,
        )
    data = (directory / filename).read_bytes()
    stanza = dict(control)
    stanza.pop("Description")
    stanza.update(
        {
            "Filename": f"./{filename}",
            "Size": str(len(data)),
            "SHA256": hashlib.sha256(data).hexdigest(),
            "Description": control["Description"],
        }
    )
    return "".join(f"{key}: {value}\n" for key, value in stanza.items())


def list_file_prefix(directory: Path) -> str:
    """The prefix apt gives the list files of the flat repository ``file:DIRECTORY ./``."""
    quoted = "".join(
        f"%{ord(char):02x}" if char in _APT_ESCAPED or not char.isprintable() else char for char in f"{directory}/./"
    )
    return quoted.replace("/", "_")


def _write_state(lab: Lab, host: LabHost, repositories: tuple[str, ...], conf: Path) -> None:
    """Write the host's apt state from scratch: sources and lists for ``repositories``, 1.0 installed."""
    root = state_dir(host)
    if root.exists():
        shutil.rmtree(root)
    # Only what a check needs: the upgrade task creates apt's and dpkg's working directories itself.
    for sub in ("lists", "dpkg", "preferences.d"):
        (root / sub).mkdir(parents=True)
    (root / "apt.conf").symlink_to(conf)
    status = "".join(
        f"Package: {name}\nStatus: install ok installed\nPriority: optional\nSection: misc\n"
        f"Maintainer: maint lab <lab@localhost>\nArchitecture: all\nVersion: {version}\n"
        "Description: maint lab dummy package\n\n"
        for name, version in INSTALLED.items()
    )
    (root / "dpkg" / "status").write_text(status)
    _point_at(lab, host, repositories)


def _point_at(lab: Lab, host: LabHost, repositories: tuple[str, ...]) -> None:
    """Make the host's sources.list and package lists name exactly ``repositories``."""
    root = state_dir(host)
    lists = root / "lists"
    for entry in lists.iterdir():
        if entry.name.endswith(("_Packages", "_Release")):
            entry.unlink()
    lines = []
    for relative in repositories:
        directory = lab.directory / relative
        lines.append(f"deb [trusted=yes] file:{directory} ./\n")
        prefix = list_file_prefix(directory)
        for index in ("Packages", "Release"):
            (lists / f"{prefix}{index}").symlink_to(directory / index)
    (root / "sources.list").write_text("".join(lines))


def _break_pending(lab: Lab, host: LabHost) -> LabHost:
    prepare(lab, [host])
    _point_at(lab, host, PENDING)
    return host


def _fix_pending(lab: Lab, host: LabHost) -> LabHost:
    _build_repositories(lab)
    _write_state(lab, host, HEALTHY, _apt_conf(lab))
    return host


FAULTS: dict[str, Fault] = {
    "pending-updates": Fault(
        f"apt sources gain an update of {TOOL} and a security update of {SECURE}: updates.apt fails",
        _break_pending,
        _fix_pending,
    ),
}

__all__ = ["FAULTS", "host_vars", "prepare"]
