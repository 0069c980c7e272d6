"""Lab faults and healthy host state for the antivirus checks.

Healthy: every host has ``STATE_DIR/av/scan/`` with a few clean files, and the lab has one ClamAV
signature database, ``LAB_DIR/clamav-db/``, shared by all hosts. No signature download is possible
offline, so the database is a single ``.hsb`` hash signature: the SHA-256 and size of the EICAR test
string under the name ``Eicar-Test-Signature`` (clamscan reports it as
``Eicar-Test-Signature.UNOFFICIAL``). The ``virus`` fault plants the EICAR test file in the host's
scan directory.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from maint.lab import Fault, Lab, LabHost

SIGNATURE_NAME = "Eicar-Test-Signature"
DATABASE_DIR = "clamav-db"
DATABASE_FILE = "lab.hsb"
INFECTED_FILE = "eicar.com"
CLEAN_FILES = {
    "notes.txt": "Quarterly maintenance notes: nothing to see here.\n",
    "report.csv": "host,disk,load\nlab,10,0.1\n",
}

# The industry-standard antivirus test string, split so that this source file is not itself a match
# for scanners that look for the whole string.
EICAR = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + "EICAR-STANDARD-ANTIVIRUS-" + "TEST-FILE!$H+H*"


def scan_dir(host: LabHost) -> Path:
    """The directory of ``host`` that the lab's virus-scan playbook scans."""
    return host.state_dir / "av" / "scan"


def database_dir(lab: Lab) -> Path:
    """The lab's ClamAV signature database directory (one for every host)."""
    return lab.directory / DATABASE_DIR


def signature_line() -> str:
    """The ``.hsb`` line ``sha256:size:Name`` that detects the EICAR test string."""
    data = EICAR.encode("ascii")
    return f"{hashlib.sha256(data).hexdigest()}:{len(data)}:{SIGNATURE_NAME}\n"


def prepare(lab: Lab, hosts: list[LabHost]) -> None:
    """Write the lab's signature database once and give each host its clean scan directory.

    Cheap for 1000 hosts: one directory and two tiny files per host, and only where missing, so
    a ``lab up`` over an existing lab writes nothing (and keeps a planted virus, which survives a
    restart like any file).
    """
    database = database_dir(lab)
    database.mkdir(exist_ok=True)
    signatures = database / DATABASE_FILE
    line = signature_line()
    if not signatures.exists() or signatures.read_text() != line:
        signatures.write_text(line)
    for host in hosts:
        directory = scan_dir(host)
        directory.mkdir(parents=True, exist_ok=True)
        for name, content in CLEAN_FILES.items():
            path = directory / name
            if not path.exists():
                path.write_text(content)


def host_vars(lab: Lab, host: LabHost) -> dict[str, str]:
    """Inventory variables the virus-scan playbook reads: what to scan and with which database."""
    return {"av_scan_paths": str(scan_dir(host)), "clamav_database": str(database_dir(lab))}


def _plant_virus(lab: Lab, host: LabHost) -> LabHost:
    directory = scan_dir(host)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / INFECTED_FILE).write_text(EICAR)
    return host


def _remove_virus(lab: Lab, host: LabHost) -> LabHost:
    (scan_dir(host) / INFECTED_FILE).unlink(missing_ok=True)
    return host


FAULTS: dict[str, Fault] = {
    "virus": Fault(
        f"EICAR test file planted as av/scan/{INFECTED_FILE} in the state dir: av.clamav fails",
        _plant_virus,
        _remove_virus,
    ),
}
