"""Writing files so that no reader ever sees half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` with ``mode`` through a temporary file in the same
    directory and a rename; nothing is left behind on failure. Raises OSError."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            os.fchmod(descriptor, mode)
            view = memoryview(payload)
            while view:
                view = view[os.write(descriptor, view) :]
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def private_directory(path: Path) -> Path:
    """Create ``path`` and its missing parents owner-only (0700, whatever the umask); returns ``path``.

    Directories that already exist keep their mode: a user's own directory is not maint's to change.
    Raises OSError (e.g. NotADirectoryError when a parent is a file).
    """
    missing: list[Path] = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:  # another maint process made it first, with the same mode
            continue
        os.chmod(directory, 0o700)  # mkdir's mode is filtered through the umask
    return path


def open_private(path: Path, flags: int = os.O_RDWR) -> int:
    """Open ``path`` with ``flags``, creating it owner-only (0600, whatever the umask) if it does not
    exist; an existing file keeps its mode. Returns the descriptor. Raises OSError."""
    try:
        descriptor = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return os.open(path, flags)
    os.fchmod(descriptor, 0o600)
    return descriptor
