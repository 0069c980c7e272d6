"""The ``tickets`` section beyond its schema: each backend against its class's own options, the
backends the routes name, and the per-check overrides.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from maint.config.model import BackendConfig
from maint.config.schema import OVERRIDE
from maint.config.validation import _raw, _validate, _where
from maint.secrets import is_reference
from maint.yamlfile import LineDict


def _backends(raw: Mapping[str, Any], data: Any, source: str, errors: list[str]) -> dict[str, BackendConfig]:
    """Validate each backend's type and options against the backend class's own option schema."""
    from maint import registry

    section = _raw(data, "tickets", "backends")
    backends: dict[str, BackendConfig] = {}
    for name, options in raw.items():
        path = f"tickets.backends.{name}"
        line = section.line_of(name) if isinstance(section, LineDict) else None
        if name == "local":
            errors.append(f"{_where(source, line, path)}: 'local' is the store itself; choose another name")
            continue
        if not isinstance(options, dict) or not isinstance(options.get("type"), str):
            known = ", ".join(registry.names(registry.TICKET_BACKENDS))
            errors.append(f"{_where(source, line, path)}: needs 'type' (one of {known})")
            continue
        kind = options["type"]
        backend_class = registry.load(registry.TICKET_BACKENDS, kind)
        if backend_class is None:
            known = ", ".join(registry.names(registry.TICKET_BACKENDS))
            errors.append(f"{_where(source, line, path + '.type')}: unknown backend type '{kind}' (known: {known})")
            continue
        schema: Mapping[str, Any] = backend_class.options
        for key, value in options.items():
            key_line = options.line_of(key) if isinstance(options, LineDict) else line
            if key == "type":
                continue
            option = schema.get(key)
            if option is None:
                close = difflib.get_close_matches(key, list(schema), n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"{kind} options: {', '.join(schema)}"
                errors.append(f"{_where(source, key_line, f'{path}.{key}')}: unknown option ({hint})")
            elif option.secret and not is_reference(value):
                errors.append(
                    f"{_where(source, key_line, f'{path}.{key}')}: give a reference (env:NAME or file:PATH), "
                    "never the secret itself"
                )
            elif not option.secret and value is not None and not isinstance(value, option.type):
                errors.append(f"{_where(source, key_line, f'{path}.{key}')}: expected {_type_name(option.type)}, "
                              f"got {value!r}")  # fmt: skip
        # Options that are valid one by one but not together (the backend class says which).
        check_options = getattr(backend_class, "check_options", None)
        for key, problem in check_options(options) if check_options is not None else []:
            key_line = options.line_of(key) if isinstance(options, LineDict) else line
            errors.append(f"{_where(source, key_line, f'{path}.{key}')}: {problem}")
        for key, option in schema.items():
            if option.required and key not in options:
                errors.append(f"{_where(source, line, path)}: '{key}' is required ({option.help})")
        backends[name] = BackendConfig(name, kind, {key: value for key, value in options.items() if key != "type"})
    return backends


def missing_libraries(backends: Mapping[str, BackendConfig]) -> list[str]:
    """One line per configured backend whose client library is not installed, naming the backend, the library and
    the pip extra that installs it (the backend class's ``libraries``, :class:`maint.tickets.backends.Library`)."""
    from maint import registry

    problems: list[str] = []
    for name, backend in backends.items():
        backend_class = registry.load(registry.TICKET_BACKENDS, backend.type)
        for library in getattr(backend_class, "libraries", ()):
            if not _importable(library.module):
                problems.append(f"tickets.backends.{name}: the {backend.type} backend needs the '{library.name}' "
                                f"library: pip install 'maint[{library.extra}]'")  # fmt: skip
    return problems


def _importable(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (a None in sys.modules blocks the import)."""
    import importlib.util
    import sys

    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {"str": "text", "int": "a whole number", "float": "a number", "bool": "true or false",
             "list": "a list", "dict": "a mapping"}  # fmt: skip
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k.__name__, k.__name__) for k in kinds)


def _check_routes(
    tickets: Mapping[str, Any], backends: Mapping[str, Any], data: Any, source: str, errors: list[str]
) -> None:
    raw_routes = _raw(data, "tickets", "routing")
    for index, route in enumerate(tickets["routing"]):
        raw_route = raw_routes[index] if isinstance(raw_routes, list) and index < len(raw_routes) else None
        route_line = raw_route.line if isinstance(raw_route, LineDict) else None
        backends_line = raw_route.line_of("backends") if isinstance(raw_route, LineDict) else None
        for name in route.get("backends", []):
            if name != "local" and name not in backends:
                known = ", ".join(["local", *backends])
                errors.append(f"{_where(source, backends_line, f'tickets.routing[{index}].backends')}: "
                              f"unknown backend '{name}' (defined: {known})")  # fmt: skip
        if "backends" not in route:
            errors.append(f"{_where(source, route_line, f'tickets.routing[{index}]')}: needs 'backends'")
    raw_overrides = _raw(data, "tickets", "overrides")
    for pattern, values in tickets["overrides"].items():
        line = raw_overrides.line_of(pattern) if isinstance(raw_overrides, LineDict) else None
        if not isinstance(values, dict):
            errors.append(f"{_where(source, line, f'tickets.overrides.{pattern}')}: "
                          "expected {tier: L1|L2|L3, severity: ...}")  # fmt: skip
            continue
        checked: list[str] = []
        _validate(OVERRIDE, values, f"tickets.overrides.{pattern}.", source, checked)
        errors.extend(checked)
