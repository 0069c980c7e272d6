"""The ledger's seals: one small adapter over ``ssh-keygen -Y`` that signs the chain's head with an SSH
key and checks such a signature against an allowed_signers file.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from maint.errors import BadInput

NAMESPACE = "maint-ledger"  # the ssh-keygen -Y namespace of maint's signatures


def signed_message(seq: int, hash_: str, run_id: str | None) -> bytes:
    """The text a signature covers: the entry's number and hash, and the run it seals."""
    return f"maint ledger\nentry {seq}\nhash {hash_}\nrun {run_id or '-'}\n".encode()


def sign(key: Path, message: bytes, timeout: float = 30.0) -> tuple[str, str]:
    """Sign ``message`` with the SSH key ``key`` (a private key file, or a public key whose private
    half is in ssh-agent); returns the armoured signature and the key's fingerprint.

    Raises BadInput when ssh-keygen is missing or refuses (names the key and ssh-keygen's reason).
    """
    try:
        signed = subprocess.run(
            ["ssh-keygen", "-q", "-Y", "sign", "-f", str(key), "-n", NAMESPACE],
            input=message, capture_output=True, timeout=timeout, check=False,
        )  # fmt: skip
        fingerprint = subprocess.run(
            ["ssh-keygen", "-l", "-f", str(key)], capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise BadInput("ssh-keygen not found", hint="install openssh-client to sign the ledger") from None
    except subprocess.TimeoutExpired:
        raise BadInput(f"signing with {key} took over {timeout:g} s", hint="is ssh-agent asking for a PIN?") from None
    if signed.returncode != 0 or b"BEGIN SSH SIGNATURE" not in signed.stdout:
        reason = _last_line(signed.stderr.decode("utf-8", "replace")) or f"exit {signed.returncode}"
        raise BadInput(f"cannot sign the ledger with {key}: {reason}", hint="check audit.signing_key in maint.yml")
    words = fingerprint.stdout.split()
    return signed.stdout.decode("ascii"), (words[1] if len(words) > 1 else "unknown")


def verify(signers: Path, signature: str, message: bytes) -> str:
    """'' when ``signature`` over ``message`` verifies against ``signers`` (an allowed_signers file),
    else ssh-keygen's reason."""
    with tempfile.TemporaryDirectory(prefix="maint-verify-") as directory:
        signature_file = Path(directory) / "ledger.sig"
        signature_file.write_text(signature, encoding="ascii")
        found = subprocess.run(
            ["ssh-keygen", "-Y", "find-principals", "-s", str(signature_file), "-f", str(signers)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        principals = [line.strip() for line in found.stdout.splitlines() if line.strip()]
        if found.returncode != 0 or not principals:
            return "its key is not in the signers file"
        checked = subprocess.run(
            ["ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", principals[0], "-n", NAMESPACE,
             "-s", str(signature_file)],
            input=message, capture_output=True, timeout=30, check=False, env={**os.environ, "LC_ALL": "C"},
        )  # fmt: skip
    if checked.returncode != 0:
        return _last_line(checked.stderr.decode("utf-8", "replace")) or "incorrect signature"
    return ""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
