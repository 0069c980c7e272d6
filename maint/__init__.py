"""maint: preventive maintenance for server fleets over SSH."""

__version__ = "0.1.0"
