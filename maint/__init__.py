"""maint: preventive maintenance for server fleets over SSH."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from maint.tasks import task as task

__version__ = "0.1.0"
__all__ = ["__version__", "task"]


def __getattr__(name: str) -> Any:
    # ``maint.task`` (the decorator of Python maintenance tasks) is imported when a task file asks for it, not by
    # every maint command: maint.tasks brings inspect and importlib's machinery (~15 ms at each start).
    if name == "task":
        from maint.tasks import task

        return task
    raise AttributeError(f"module 'maint' has no attribute {name!r}")
