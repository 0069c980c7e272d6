"""The validated configuration and the ticket backends it defines."""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from maint.windows import Window


@dataclass(frozen=True)
class BackendConfig:
    """One external ticketing system from maint.yml (options not yet resolved: secrets are references)."""

    name: str
    type: str
    options: Mapping[str, Any]


@dataclass(frozen=True)
class Config:
    """The validated configuration; ``data`` holds every option with defaults applied."""

    data: Mapping[str, Any]
    path: Path | None = None
    backends: Mapping[str, BackendConfig] = field(default_factory=dict)
    windows: Mapping[str, Window] = field(default_factory=dict)

    @property
    def tickets(self) -> Mapping[str, Any]:
        """The ``tickets`` section."""
        return dict(self.data["tickets"])

    @property
    def require_reason(self) -> bool:
        """Whether manual runs need ``--reason`` (``audit.require_reason``)."""
        return bool(self.data["audit"]["require_reason"])

    @property
    def signing_key(self) -> Path | None:
        """The SSH key that signs the ledger (``audit.signing_key``, relative to maint.yml), or None."""
        value = self.data["audit"].get("signing_key")
        if not value:
            return None
        path = Path(str(value)).expanduser()
        if not path.is_absolute() and self.path is not None:
            path = self.path.parent / path
        return path

    @property
    def inventory_timeout(self) -> float:
        """Seconds one call of a dynamic inventory script may take (``inventory_timeout``)."""
        return float(self.data["inventory_timeout"])

    @property
    def store(self) -> str | None:
        """The store URL, when maint.yml sets one."""
        value = self.data.get("store")
        return str(value) if value else None

    @property
    def store_busy_timeout(self) -> float:
        """Seconds a store write waits for a lock (``store_busy_timeout``)."""
        return float(self.data["store_busy_timeout"])

    def override(self, check: str, step_type: str) -> Mapping[str, str]:
        """The tier/severity override for a check (its id first, then its type), or {}."""
        overrides: Mapping[str, Any] = self.tickets["overrides"]
        for name in (check, step_type):
            for pattern, values in overrides.items():
                if fnmatch.fnmatchcase(name, pattern):
                    return dict(values)
        return {}


def replace(config: Config, **tickets: Any) -> Config:
    """A copy of ``config`` with ``tickets`` options changed (for tests and the CLI)."""
    data = dict(config.data)
    data["tickets"] = {**config.tickets, **tickets}
    return dataclasses.replace(config, data=data)
