"""Lab faults and healthy host state for the backup checks: stale-backup, corrupt-backup.

Healthy state (``prepare``): every host has a restic repository ``STATE/backup/restic`` holding a
recent snapshot of ``STATE/backup/data`` (three small files), readable with the password in
``LAB/backup-password`` (mode 0600, the same for every host). The inventory gives each host
``restic_repository``, ``backup_password_file`` and ``backup_paths``.

Cost: ``restic init`` spends about 3 s calibrating and deriving keys, so it runs once per lab directory,
not per host. Its key would cost every later restic command half a second of CPU (scrypt with the
parameters calibrated for a real secret): the lab's password is a throwaway, so the template's key is
sealed again with cheap parameters (:func:`cheapen_key`) and each check's restic call costs milliseconds.
``LAB/backup-template/`` keeps an initialised empty repository, a ``fresh`` one (taken again when
older than an hour) and, once the fault is first used, a ``stale`` one whose only snapshot is
dated 2020-01-01. A host's repository is the fresh template's files hard-linked into the host's
directory (a dozen links; restic never rewrites a file in place, it only adds and deletes them),
and the empty ``data/xx`` directories restic creates are left out: restic makes them when needed.

The faults replace what the check reads:

- ``stale-backup``: the host's repository becomes a copy of the stale template;
- ``corrupt-backup``: every pack file under ``data/`` gets bytes overwritten (as a new file, so the
  links to the template stay intact): ``restic check`` fails with a ciphertext verification error.

Undoing either puts a fresh copy back. Without restic on the machine the repositories are skipped.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

from maint.errors import LabError
from maint.lab import Fault, Lab, LabHost

PASSWORD_FILE = "backup-password"
TEMPLATE_DIR = "backup-template"
FRESH_FOR = 3600.0
STALE_TIME = "2020-01-01 00:00:00"
DAMAGE = b"MAINT-LAB-CORRUPT-BACKUP"
BACKUP_FAULTS = ("stale-backup", "corrupt-backup")
SAMPLE_FILES = {
    "README": "Sample data backed up by the maint lab.\n",
    "reports/2026-01.csv": "month,tickets\n2026-01,42\n",
    "reports/2026-02.csv": "month,tickets\n2026-02,37\n",
}


def password_file(lab: Lab) -> Path:
    """The lab's backup password file (``LAB/backup-password``)."""
    return lab.directory / PASSWORD_FILE


def repository(host: LabHost) -> Path:
    """The host's restic repository."""
    return host.state_dir / "backup" / "restic"


def data_dir(host: LabHost) -> Path:
    """The directory the host's backups are taken of."""
    return host.state_dir / "backup" / "data"


def host_vars(lab: Lab, host: LabHost) -> dict[str, str]:
    """Inventory variables: where the host's repository, data and password are (no spaces)."""
    return {
        "restic_repository": str(repository(host)),
        "backup_password_file": str(password_file(lab)),
        "backup_paths": str(data_dir(host)),
        # The path in the template's snapshot (taken of a relative "data"); see _templates.
        "backup_restore_test": "/data/README",
    }


def prepare(lab: Lab, hosts: list[LabHost]) -> None:
    """Write the password and each host's data; give every host without a backup fault a fresh repository."""
    _password(lab)
    for host in hosts:
        _write_sample(data_dir(host))
    if shutil.which("restic") is None:
        return
    fresh = _templates(lab)["fresh"]
    for host in hosts:
        if not set(host.faults) & set(BACKUP_FAULTS):
            _install(fresh, repository(host))


def _password(lab: Lab) -> str:
    path = password_file(lab)
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as stream:
            stream.write(secrets.token_urlsafe(24) + "\n")
    return path.read_text().rstrip("\n")


def _write_sample(directory: Path) -> None:
    for name, content in SAMPLE_FILES.items():
        path = directory / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)


def _restic(lab: Lab, *args: str) -> None:
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(lab.home),
        "RESTIC_PASSWORD": _password(lab),
    }
    done = subprocess.run(
        ["restic", "--no-cache", "--quiet", *args],
        env=environment,
        cwd=lab.directory / TEMPLATE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise LabError(f"cannot build the lab's backup template: restic {args[2]}: {detail}")


def _templates(lab: Lab, wanted: tuple[str, ...] = ("fresh",)) -> dict[str, Path]:
    """The template repositories (empty and those ``wanted``), made or refreshed as needed.

    The stale one is only made when the stale-backup fault first needs it: ``lab up`` pays for
    ``restic init`` and one backup, once per lab directory.
    """
    base = lab.directory / TEMPLATE_DIR
    base.mkdir(mode=0o700, exist_ok=True)
    paths = {name: base / name for name in ("empty", "fresh", "stale")}
    data = base / "data"
    _write_sample(data)
    if not (paths["empty"] / "config").exists():
        shutil.rmtree(paths["empty"], ignore_errors=True)
        _restic(lab, "-r", str(paths["empty"]), "init")
        cheapen_key(paths["empty"], password_file(lab).read_bytes().rstrip(b"\n"))
    for name, extra in (("fresh", ()), ("stale", ("--time", STALE_TIME))):
        if name not in wanted:
            continue
        stamp = paths[name] / ".maint-made"
        expired = name == "fresh" and (not stamp.exists() or time.time() - stamp.stat().st_mtime > FRESH_FOR)
        if stamp.exists() and not expired:
            continue
        building = base / f"{name}.new"
        shutil.rmtree(building, ignore_errors=True)
        _install(paths["empty"], building)
        # A relative path: restic keeps "data" at the snapshot's root, as for any backup of a .../data.
        _restic(lab, "-r", str(building), "backup", *extra, data.name)
        (building / ".maint-made").touch()
        shutil.rmtree(paths[name], ignore_errors=True)
        building.rename(paths[name])
    return paths


# scrypt's cost for the lab's key: N=2^10, r=8 (1 MiB, about a millisecond); restic's own calibration
# chooses about 2^15 and p up to 7 for half a second.
CHEAP_SCRYPT = {"N": 1024, "r": 8, "p": 1}


def cheapen_key(repository: Path, password: bytes) -> None:
    """Seal the master key of ``repository`` (its one key file) again under ``password`` with cheap scrypt
    parameters, in restic's key format: scrypt(password, salt) gives 32 bytes of AES-256-CTR key and a
    Poly1305-AES MAC key (k, r); ``data`` is IV || ciphertext || MAC of the master key's JSON. The file is
    renamed to the SHA-256 of its new content, as restic names key files. For the lab's throwaway
    repositories only: a real repository keeps the key restic calibrated."""
    (key_file,) = (repository / "keys").iterdir()
    key = json.loads(key_file.read_text())
    derived = hashlib.scrypt(password, salt=base64.b64decode(key["salt"]), n=key["N"], r=key["r"], p=key["p"],
                             maxmem=2**31 - 1, dklen=64)  # fmt: skip
    master = _restic_open(derived, base64.b64decode(key["data"]))
    salt = os.urandom(64)
    cheap = hashlib.scrypt(password, salt=salt, n=CHEAP_SCRYPT["N"], r=CHEAP_SCRYPT["r"], p=CHEAP_SCRYPT["p"], dklen=64)
    sealed = _restic_seal(cheap, master)
    key.update(CHEAP_SCRYPT, salt=base64.b64encode(salt).decode(), data=base64.b64encode(sealed).decode())
    content = json.dumps(key).encode()
    replacement = key_file.with_name(hashlib.sha256(content).hexdigest())
    replacement.write_bytes(content)
    replacement.chmod(0o400)
    key_file.unlink()


def _restic_mac(derived: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.poly1305 import Poly1305

    # Poly1305-AES: the one-time key is r || AES_k(nonce)
    encryptor = Cipher(algorithms.AES(derived[32:48]), modes.ECB()).encryptor()
    return Poly1305.generate_tag(derived[48:64] + encryptor.update(iv) + encryptor.finalize(), ciphertext)


def _restic_open(derived: bytes, data: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    iv, ciphertext, tag = data[:16], data[16:-16], data[-16:]
    if _restic_mac(derived, iv, ciphertext) != tag:
        raise LabError("cannot read the lab's restic key: wrong password or damaged key file")
    decryptor = Cipher(algorithms.AES(derived[:32]), modes.CTR(iv)).decryptor()
    return decryptor.update(ciphertext) + decryptor.finalize()


def _restic_seal(derived: bytes, plain: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    iv = os.urandom(16)
    encryptor = Cipher(algorithms.AES(derived[:32]), modes.CTR(iv)).encryptor()
    ciphertext = encryptor.update(plain) + encryptor.finalize()
    return iv + ciphertext + _restic_mac(derived, iv, ciphertext)


def _install(template: Path, target: Path) -> None:
    """Replace ``target`` with hard links to the files of ``template`` (copies across filesystems)."""
    if target.exists():
        shutil.rmtree(target)
    for directory, _, files in os.walk(template):
        relative = Path(directory).relative_to(template)
        if files or relative.name in ("", "locks", "snapshots", "index", "keys", "data"):
            (target / relative).mkdir(mode=0o700, parents=True, exist_ok=True)
        for name in files:
            if name == ".maint-made":
                continue
            source, destination = Path(directory, name), target / relative / name
            try:
                os.link(source, destination)
            except OSError:
                shutil.copy2(source, destination)


def _stale(lab: Lab, host: LabHost) -> LabHost:
    _require_restic()
    _install(_templates(lab, ("stale",))["stale"], repository(host))
    return host


def _corrupt(lab: Lab, host: LabHost) -> LabHost:
    _require_restic()
    packs = [path for path in (repository(host) / "data").rglob("*") if path.is_file()]
    if not packs:
        raise LabError(f"{host.name} has no restic pack files to damage", hint=f"maint lab fix {host.name}")
    for pack in packs:
        content = bytearray(pack.read_bytes())
        damage = DAMAGE[: max(0, min(len(DAMAGE), len(content) - 8))]
        content[8 : 8 + len(damage)] = damage
        # A new file renamed over the old one: the template it was linked to stays whole.
        damaged = pack.with_name(pack.name + ".damaged")
        damaged.write_bytes(bytes(content))
        damaged.chmod(0o400)
        damaged.replace(pack)
    return host


def _restore(lab: Lab, host: LabHost) -> LabHost:
    if shutil.which("restic") is not None:
        _install(_templates(lab)["fresh"], repository(host))
    else:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(repository(host))
    return host


def _require_restic() -> None:
    if shutil.which("restic") is None:
        raise LabError("restic is not installed on this machine", hint="apt-get install restic")


FAULTS: dict[str, Fault] = {
    "stale-backup": Fault("the restic repository's only snapshot is from 2020-01-01", _stale, _restore),
    "corrupt-backup": Fault("the restic repository's pack files are damaged (restic check fails)", _corrupt, _restore),
}
