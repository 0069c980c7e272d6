"""Lab faults for the host health checks: disk-full, cert-expiring, service-down.

Healthy state (``prepare``): each host gets a TLS certificate valid for a year at
``STATE/tls/server.pem`` and a pid file ``STATE/service/sshd.pid`` that points at the host's own
running sshd. The faults break exactly what the checks read:

- ``disk-full``: lowers the host's disk thresholds (``disk_warn``/``disk_critical`` in
  ``LAB/host_vars/HOST/disk-full.yml``) below what the shared disk uses, so the root-disk check fails;
- ``cert-expiring``: replaces the certificate with one that expires in three days;
- ``service-down``: the pid file names a process that is not running.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from maint.lab import Fault, Lab, LabHost

DEAD_PID = "999999999"


def _tls_dir(lab: Lab) -> Path:
    return lab.directory / "tls"


def _certificate(path: Path, days: int, name: str) -> None:
    """Write a self-signed certificate valid for ``days`` days (PEM), with the cryptography package."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def prepare(lab: Lab, hosts: list[LabHost]) -> None:
    """Two certificates for the lab (once), a copy and a pid-file link per host (cheap per host)."""
    tls = _tls_dir(lab)
    tls.mkdir(exist_ok=True)
    valid, expiring = tls / "valid.pem", tls / "expiring.pem"
    if not valid.exists():
        _certificate(valid, 365, "maint lab")
    if not expiring.exists():
        _certificate(expiring, 3, "maint lab (expiring)")
    for host in hosts:
        (host.state_dir / "tls").mkdir(exist_ok=True)
        target = host.state_dir / "tls" / "server.pem"
        if not target.exists():
            shutil.copyfile(valid, target)
        service = host.state_dir / "service"
        service.mkdir(exist_ok=True)
        _link_pidfile(lab, host)


def _link_pidfile(lab: Lab, host: LabHost) -> None:
    link = host.state_dir / "service" / "sshd.pid"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(lab.pid_file(host.name))


def host_vars(lab: Lab, host: LabHost) -> dict[str, str]:
    """Where the health checks of a lab host look."""
    return {
        "cert_path": str(host.state_dir / "tls" / "server.pem"),
        "sshd_pidfile": str(host.state_dir / "service" / "sshd.pid"),
        # The lab's hosts share this machine's clock: no time service of their own to check.
        "time_sync_managed": "false",
    }


def _override_file(lab: Lab, host: LabHost, fault: str) -> Path:
    # host_vars/HOST/ beside the inventory: Ansible (and so maint) reads every file in it.
    return lab.directory / "host_vars" / host.name / f"{fault}.yml"


def _break_disk(lab: Lab, host: LabHost) -> LabHost:
    path = _override_file(lab, host, "disk-full")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# maint lab fault disk-full: thresholds below the disk's use\ndisk_warn: 0\ndisk_critical: 0\n")
    return host


def _fix_disk(lab: Lab, host: LabHost) -> LabHost:
    path = _override_file(lab, host, "disk-full")
    path.unlink(missing_ok=True)
    if path.parent.is_dir() and not any(path.parent.iterdir()):
        path.parent.rmdir()
    return host


def _break_cert(lab: Lab, host: LabHost) -> LabHost:
    prepare(lab, [host])
    shutil.copyfile(_tls_dir(lab) / "expiring.pem", host.state_dir / "tls" / "server.pem")
    return host


def _fix_cert(lab: Lab, host: LabHost) -> LabHost:
    prepare(lab, [host])
    shutil.copyfile(_tls_dir(lab) / "valid.pem", host.state_dir / "tls" / "server.pem")
    return host


def _break_service(lab: Lab, host: LabHost) -> LabHost:
    link = host.state_dir / "service" / "sshd.pid"
    link.parent.mkdir(exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.write_text(DEAD_PID + "\n")
    return host


def _fix_service(lab: Lab, host: LabHost) -> LabHost:
    (host.state_dir / "service").mkdir(exist_ok=True)
    _link_pidfile(lab, host)
    return host


FAULTS: dict[str, Fault] = {
    "disk-full": Fault("disk thresholds lowered below the disk's use (host_vars)", _break_disk, _fix_disk),
    "cert-expiring": Fault("TLS certificate replaced by one that expires in 3 days", _break_cert, _fix_cert),
    "service-down": Fault("sshd pid file names a process that is not running", _break_service, _fix_service),
}

__all__ = ["FAULTS", "host_vars", "prepare"]
