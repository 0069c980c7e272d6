"""maint.yml: finds, loads and validates the project's configuration.

One schema drives validation, ``maint config show`` and the README: every option has a type, a
default, a description and an example. Validation reports every error with its path and line
(``maint.yml:12: At 'tickets.open_after': ...``), not only the first.

The file is optional: without it every option has its default (tickets kept in the store only).
``$MAINT_CONFIG`` names another file; otherwise ``maint.yml`` in the project directory is used.

The modules: ``schema`` (every option), ``values`` (the checks of single values), ``validation``
(checking loaded YAML against the schema), ``tickets`` and ``windows`` (those sections beyond the
schema), ``model`` (the validated Config) and ``loading`` (finding and loading the file).
"""

from __future__ import annotations

from maint.config.loading import FILE_NAME, config_path, load
from maint.config.model import BackendConfig, Config, replace
from maint.config.schema import (
    ESCALATION_RULE,
    OVERRIDE,
    PROBLEM_STATUSES,
    QUIET_RULE,
    ROUTE,
    SCHEMA,
    SEVERITIES,
    TIERS,
    WINDOW,
    Field,
    Items,
    Section,
    describe,
)
from maint.config.validation import ConfigError

__all__ = [
    "ESCALATION_RULE",
    "FILE_NAME",
    "OVERRIDE",
    "PROBLEM_STATUSES",
    "QUIET_RULE",
    "ROUTE",
    "SCHEMA",
    "SEVERITIES",
    "TIERS",
    "WINDOW",
    "BackendConfig",
    "Config",
    "ConfigError",
    "Field",
    "Items",
    "Section",
    "config_path",
    "describe",
    "load",
    "replace",
]
