"""Finding maint.yml (:mod:`maint.config.discovery`) and loading it into a validated Config."""

from __future__ import annotations

from pathlib import Path

from maint.config.discovery import FILE_NAME, discover
from maint.config.model import Config
from maint.config.notify import _notify
from maint.config.schema import SCHEMA
from maint.config.tickets import _backends, _check_routes
from maint.config.validation import ConfigError, _defaults, _validate
from maint.config.windows import _windows
from maint.yamlfile import LineDict, load_yaml_file

__all__ = ["FILE_NAME", "config_path", "load"]


def config_path(project_dir: Path | None = None) -> Path | None:
    """The configuration file in use, found from ``project_dir`` (default: the current directory) as
    :func:`maint.config.discovery.discover` finds it; None when there is none."""
    return discover(project_dir).path


def load(project_dir: Path | None = None, path: Path | None = None) -> Config:
    """Load and validate the configuration at ``path``, else the one found from ``project_dir`` (default: the
    current directory); raises ConfigError with every problem found."""
    path = path or config_path(project_dir)
    if path is None:
        return Config(data=_defaults(SCHEMA))
    data, _ = load_yaml_file(path)
    if data is None:
        data = LineDict()
        data.key_lines = {}
    errors: list[str] = []
    source = str(path)
    checked = _validate(SCHEMA, data, "", source, errors)
    # Backends, routing and overrides are checked even when other options are wrong, so one pass
    # reports every problem; routes may name a backend that is defined but itself invalid.
    defined = checked["tickets"]["backends"]
    backends = _backends(defined, data, source, errors)
    _check_routes(checked["tickets"], defined, data, source, errors)
    windows = _windows(checked, data, source, errors)
    _notify(data, source, errors)
    if errors:
        raise ConfigError(errors, source)
    return Config(data=checked, path=path, backends=backends, windows=windows)
