"""maint: preventive maintenance for server fleets over SSH."""

from maint.tasks import task

__version__ = "0.1.0"
__all__ = ["__version__", "task"]
