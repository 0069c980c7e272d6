"""The files a lab's client and its sshds read: keys, known_hosts, the shared sshd_config, the inventory."""

from __future__ import annotations

from pathlib import Path

from maint.files import private_directory, write_atomic
from maint.lab import users
from maint.lab.fault import fault_modules
from maint.lab.model import Lab


def _make_private_dir(directory: Path) -> None:
    # The directory holds private keys; 0700 also keeps sshd's StrictModes logic out of the picture.
    # The parents it creates (.maint/ of the default .maint/lab) are owner-only too.
    private_directory(directory)


def _new_ed25519(comment: str) -> tuple[bytes, str]:
    """A new ed25519 key: (OpenSSH private key file content, public key line)."""
    # cryptography (a paramiko dependency) makes a key in microseconds; ssh-keygen takes a process
    # start per key, which adds up over 1000 hosts.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, f"{public.decode()} {comment}"


def _key_pair(private_path: Path, comment: str) -> str:
    """Reuse the key at ``private_path`` (and its .pub) or make one; return the public key line."""
    public_path = private_path.with_name(private_path.name + ".pub")
    if private_path.exists() and public_path.exists():
        return public_path.read_text().strip()
    private, public = _new_ed25519(comment)
    write_atomic(private_path, private, 0o600)
    write_atomic(public_path, public + "\n", 0o644)
    return public


def _sshd_quote(value: str) -> str:
    # Paths are restricted to _SAFE_PATH, so double quotes are enough to keep sshd from splitting.
    return f'"{value}"'


def _login_lines(lab: Lab) -> str:
    if lab.account is None:
        return f"""\
AuthorizedKeysFile {_sshd_quote(str(lab.directory / "authorized_keys"))}
# The lab's files may sit under a world-writable directory such as /tmp.
StrictModes no
"""
    # The lab's account has the key in its own home, as on a real host; sshd reads it as that user, and
    # StrictModes checks the path up to the home, which the lab makes (see maint.lab.users).
    return f"""\
AuthorizedKeysFile .ssh/authorized_keys
AllowUsers {lab.account.name}
StrictModes yes
"""


def _sshd_config(lab: Lab) -> str:
    return f"""\
# Written by `maint lab up`; shared by every sshd of this lab. Per-host values (ListenAddress,
# PidFile, SetEnv with HOME and the host's identity) come with -o on each sshd's command line: sshd
# keeps the first value it sees for an option, and command-line options come first.
AddressFamily inet
{_login_lines(lab)}PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
HostbasedAuthentication no
UsePAM no
PermitRootLogin prohibit-password
# The default 10:30:100 drops handshakes when a run opens many connections at once.
MaxStartups 1000:30:2000
MaxSessions 100
LogLevel ERROR
PrintMotd no
PrintLastLog no
UseDNS no
X11Forwarding no
Subsystem sftp internal-sftp
"""


def _inventory(lab: Lab) -> str:
    names = [host.name for host in lab.hosts]
    half = (len(names) + 1) // 2
    groups = {
        "web": names[:half],
        "db": names[half:],
        "odd": names[0::2],
        "even": names[1::2],
        "canary": names[:1],
    }
    lines = [
        f"# Written by `maint lab up`: {len(names)} loopback sshd hosts of the lab in {lab.directory}.",
        "# Rewritten on every `maint lab up`; edit a copy.",
        "[lab]",
    ]
    modules = [module for module in fault_modules() if hasattr(module, "host_vars")]
    for host in lab.hosts:
        extra: dict[str, str] = {}
        for module in modules:
            extra.update(module.host_vars(lab, host))
        pairs = "".join(f" {key}={value}" for key, value in extra.items())
        lines.append(
            f"{host.name} ansible_host={host.address} ansible_port={host.port} maint_state_dir={host.state_dir}{pairs}"
        )
    lines += [
        "",
        "[lab:vars]",
        f"ansible_user={lab.user}",
        f"ansible_ssh_private_key_file={lab.key_file}",
        f"ansible_ssh_common_args='-o UserKnownHostsFile={lab.known_hosts} -o StrictHostKeyChecking=yes'",
        "ansible_python_interpreter=/usr/bin/python3",
    ]
    if lab.account is not None and lab.account.password_file is not None:
        # Ansible reads the file on the controller when it becomes root; the password itself stays out
        # of the inventory (and of everything that shows the inventory's variables).
        lines.append(f"ansible_become_password=\"{{{{ lookup('file', '{lab.account.password_file}') }}}}\"")
    for group, members in groups.items():
        lines += ["", f"[{group}]", *members]
    return "\n".join(lines) + "\n"


def _known_hosts_entry(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


def _write_files(lab: Lab) -> None:
    (lab.directory / "sshd").mkdir(mode=0o700, exist_ok=True)
    lab.home.mkdir(mode=0o700, exist_ok=True)
    client_public = _key_pair(lab.key_file, f"maint-lab@{lab.directory}")
    write_atomic(lab.directory / "authorized_keys", client_public + "\n", 0o600)
    if lab.account is not None:
        users.authorize(lab.account, client_public)
    known: list[str] = []
    for host in lab.hosts:
        host.state_dir.mkdir(parents=True, exist_ok=True)
        public = _key_pair(lab.host_key(host.name), host.name)
        key_type, key_data = public.split()[:2]
        known.append(f"{_known_hosts_entry(host.address, host.port)} {key_type} {key_data}")
    write_atomic(lab.known_hosts, "\n".join(known) + "\n")
    for module in fault_modules():
        if hasattr(module, "prepare"):
            module.prepare(lab, list(lab.hosts))
    write_atomic(lab.config_file, _sshd_config(lab))
    write_atomic(lab.inventory, _inventory(lab))
