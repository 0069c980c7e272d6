"""maint.yml: finds, loads and validates the project's configuration.

One schema drives validation, ``maint config show`` and the documentation: every option has a type, a
default, a description and an example. Validation reports every error with its path and line
(``maint.yml:12: At 'tickets.open_after': ...``), not only the first.

The file is optional: without it every option has its default (tickets kept in the store only).
``--config FILE``, ``$MAINT_CONFIG``, ``./maint.yml``, a parent directory's, the user's and the system's are
looked for in that order (:mod:`maint.config.discovery`); the file's directory is the project directory.

The modules: ``schema`` (every option), ``values`` (the checks of single values), ``validation``
(checking loaded YAML against the schema), ``tickets`` and ``windows`` (those sections beyond the
schema), ``model`` (the validated Config), ``discovery`` (which file, and where state lives) and
``loading`` (finding and loading the file).
"""

from __future__ import annotations

from maint.config.discovery import Discovered, choose, discover
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
    "Discovered",
    "Field",
    "Items",
    "Section",
    "choose",
    "config_path",
    "describe",
    "discover",
    "load",
    "replace",
]
