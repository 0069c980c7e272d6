"""Playbooks: YAML files with a list of steps, found by path, in the project, or built in.

A name such as ``health`` resolves to ``./playbooks/health.yml`` in the project directory first,
then to the playbook of that name shipped with maint, so a project overrides built-ins by name.

A step's ``tags`` (a list of names) let ``maint run --tags/--skip-tags`` choose steps as Ansible
chooses tasks (:func:`selected`); a step type with a ``tags`` parameter of its own (``ansible``: the
Ansible playbook's task filter) keeps it, and takes its step tags as ``step_tags``. :func:`adhoc`
builds the one-step playbook of ``maint exec`` in memory.
"""

from __future__ import annotations

import builtins
import dataclasses
import difflib
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maint import registry
from maint.become import KEYWORDS as BECOME_KEYWORDS
from maint.become import Keywords as BecomeKeywords
from maint.checks import ParamError, StepType, timeout_seconds
from maint.errors import BadInput
from maint.inventory.patterns import HINT as PATTERN_HINT
from maint.inventory.patterns import check_pattern
from maint.secrets import redact_command
from maint.templating import (
    RenderError,
    compile_expression,
    compile_template,
    evaluate,
    is_template,
    render,
    unsafe_placement,
)
from maint.yamlfile import LineDict, LineList, load_yaml_file

if TYPE_CHECKING:
    import jinja2

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "data" / "playbooks"
SEVERITIES = ("info", "warning", "critical")
TIERS = ("L1", "L2", "L3")
PLAYBOOK_KEYS = {
    "name", "description", "hosts", "timeout", "include", "steps", "serial", "max_fail_percentage", *BECOME_KEYWORDS,
}  # fmt: skip
# Keys every step has; all other keys are the step type's parameters (`name` is one, for services).
STEP_KEYS = {
    "id", "type", "severity", "tier", "timeout", "description", "runbook", "when", "remediate", "tags",
    *BECOME_KEYWORDS,
}  # fmt: skip
# The step tags of a step type that has a ``tags`` parameter of its own (ansible).
OWN_TAGS_KEY = "step_tags"
# Ansible's special tags: ``always`` runs unless skipped by name, ``never`` only when asked for by name;
# ``all`` (the default), ``tagged`` and ``untagged`` select by whether a step has tags.
ALWAYS, NEVER = "always", "never"
SPECIAL_TAGS = ("all", "tagged", "untagged")
# The playbook ``maint exec`` builds: its name in records, and its one step's id (a digest of the command
# follows, so that alert state and tickets keep each ad-hoc command apart).
ADHOC_NAME = "exec"
ADHOC_STEP = "command"
DEFAULT_STEP_TIMEOUT = 60.0
# A step's remediation is recorded under the step's id with this suffix.
REMEDIATION_SUFFIX = ".remediate"


@dataclass(frozen=True)
class Step:
    """One step of a playbook: a registered step type with its (possibly templated) parameters."""

    id: str
    type: str
    params: Mapping[str, Any]
    severity: str = "warning"
    tier: str = "L1"
    timeout: float | None = None
    description: str = ""
    runbook: str = ""
    line: int = 0
    step_class: builtins.type[StepType] = field(default=StepType, repr=False, compare=False)
    templates: Mapping[str, jinja2.Template] = field(default_factory=dict, repr=False, compare=False)
    when: str = ""
    condition: Any = field(default=None, repr=False, compare=False)
    # A task run when this check fails; the check runs again after it (attempt 2).
    remediate: Step | None = None
    become: BecomeKeywords = field(default_factory=BecomeKeywords)
    tags: tuple[str, ...] = ()

    def applies(self, variables: Mapping[str, Any]) -> bool:
        """Whether the step's ``when`` expression (a Jinja2 expression over host vars) holds.

        A step without ``when`` always applies. Raises RenderError when the expression fails
        (an undefined variable: use ``x is defined`` or ``x | default(...)``).
        """
        if self.condition is None:
            return True
        return bool(evaluate(self.condition, variables))

    def instantiate(self, variables: Mapping[str, Any]) -> StepType:
        """Render the templated parameters with a host's ``variables`` and build the step type.

        Raises RenderError (undefined variable, bad template) or ParamError (a rendered value of
        the wrong type); both are that host's error, not the run's.
        """
        values = dict(self.params)
        for name, template in self.templates.items():
            values[name] = render(template, variables)
        return self.step_class(values)


@dataclass(frozen=True)
class Playbook:
    """A loaded playbook: where it came from, its digest and its steps."""

    name: str
    path: Path
    digest: str
    steps: tuple[Step, ...]
    description: str = ""
    hosts: str = "all"
    timeout: float | None = None
    builtin: bool = False
    serial: tuple[str, ...] = ()  # batch sizes (maint.batches); () = all hosts at once
    max_fail_percentage: float | None = None
    become: BecomeKeywords = field(default_factory=BecomeKeywords)
    # For the playbook of ``maint exec``: its host pattern, command (as recorded) and whether the command is a
    # template, from which :func:`adhoc` builds it again (resume, rerun); None for a playbook file.
    adhoc: Mapping[str, Any] | None = None


def builtin_dir() -> Path:
    """The directory of the playbooks shipped with maint."""
    return BUILTIN_DIR


def resolve(reference: str, project_dir: Path) -> Path:
    """The file a playbook reference names: a path, a project playbook, or a built-in one.

    A name (``health``, ``ansible/logrotate``) or a relative path is looked up in the project's
    ``playbooks/`` first, then among the built-in playbooks; a path is also taken as it is
    (relative to the current directory) and relative to the project directory.
    """
    candidate = Path(reference)
    suffixes = ("",) if candidate.suffix in (".yml", ".yaml") else (".yml", ".yaml", "")
    places = [project_dir / "playbooks", builtin_dir()]
    if candidate.suffix in (".yml", ".yaml") or "/" in reference:
        places = [Path.cwd(), project_dir, *places]
    for directory in places:
        for suffix in suffixes:
            path = directory / f"{reference}{suffix}"
            if path.is_file():
                return path
    if candidate.suffix in (".yml", ".yaml"):
        raise BadInput(f"playbook file {reference} not found", hint="give a path or a playbook name")
    known = ", ".join(sorted(available(project_dir))) or "none"
    raise BadInput(f"no playbook named '{reference}'", hint=f"known: {known}; or give a file path")


def resolve_quietly(reference: str, project_dir: Path) -> Path | None:
    """The file ``reference`` resolves to, or None when it resolves to none."""
    try:
        return resolve(reference, project_dir)
    except BadInput:
        return None


def available(project_dir: Path) -> dict[str, Path]:
    """Every playbook found by name: built-in ones, overridden by the project's ``playbooks/``.

    Ansible playbooks under an ``ansible/`` subdirectory are named ``ansible/NAME``.
    """
    found: dict[str, Path] = {}
    for directory in (builtin_dir(), project_dir / "playbooks"):
        for folder, prefix in ((directory, ""), (directory / "ansible", "ansible/")):
            if folder.is_dir():
                for path in sorted(folder.iterdir()):
                    if path.suffix in (".yml", ".yaml") and path.is_file():
                        found[prefix + path.stem] = path
    return found


def load(reference: str, project_dir: Path | None = None, _including: tuple[Path, ...] = ()) -> Playbook:
    """Resolve and load a playbook; raises BadInput naming the file and line of any problem.

    A playbook's ``include`` list names other playbooks (resolved the same way) whose steps come
    first, each keeping its own playbook's timeout; the digest then covers every file.
    """
    project = project_dir or Path.cwd()
    path = resolve(reference, project)
    if path.resolve() in _including:
        chain = " -> ".join(str(item) for item in (*_including, path.resolve()))
        raise BadInput(f"playbooks include each other: {chain}")
    data, raw = load_yaml_file(path)
    source = str(path)
    builtin = builtin_dir().resolve() in path.resolve().parents
    if isinstance(data, LineList):
        return ansible_playbook(data, path, hashlib.sha256(raw).hexdigest(), builtin, reference)
    included: list[Playbook] = []
    if isinstance(data, LineDict) and "include" in data:
        names = data["include"]
        if not isinstance(names, LineList) or not all(isinstance(name, str) for name in names):
            raise BadInput("'include' must be a list of playbook names", source=source, line=data.line_of("include"))
        for index, name in enumerate(names):
            try:
                included.append(load(name, project, (*_including, path.resolve())))
            except BadInput as error:
                if error.source:
                    raise
                raise BadInput(error.message, source=source, line=names.item_lines[index], hint=error.hint) from None
    digest = hashlib.sha256(raw)
    for other in included:
        digest.update(other.digest.encode())
    # A task file a step names (``maintfile.py:function``) is looked up beside the playbook, then in the project.
    places = tuple(dict.fromkeys((path.parent.resolve(), project.resolve(), (project / "playbooks").resolve())))
    return parse(data, source, path, digest.hexdigest(), builtin, included, places)


def _with_sources(digest: str, steps: Sequence[Step]) -> str:
    """``digest`` extended with the content of the files the steps' code is in (:meth:`StepType.sources`: a
    Python task's file, a fabfile), so that a run records them and resume refuses a changed one; unchanged for
    a playbook whose steps name none."""
    every = [task for step in steps for task in (step, step.remediate) if task is not None]
    sources = sorted({path for step in every for path in step.step_class.sources(step.params)})
    if not sources:
        return digest
    combined = hashlib.sha256(digest.encode())
    for path in sources:
        try:
            combined.update(f"{path}\0".encode() + hashlib.sha256(path.read_bytes()).digest())
        except OSError:
            combined.update(f"{path}\0missing".encode())
    return combined.hexdigest()


def is_ansible_playbook(data: Any) -> bool:
    """Whether parsed YAML is an Ansible playbook: a list of plays (mappings with hosts or import_playbook)."""
    return isinstance(data, list) and bool(data) and all(
        isinstance(play, dict) and ("hosts" in play or "import_playbook" in play or "ansible.builtin.import_playbook"
                                    in play)
        for play in data
    )  # fmt: skip


def ansible_playbook(data: LineList, path: Path, digest: str, builtin: bool, reference: str) -> Playbook:
    """A playbook of one ``ansible`` step for an Ansible playbook file given to ``maint run`` directly."""
    if not is_ansible_playbook(data):
        raise BadInput("a playbook must be a mapping with a 'steps' list, or an Ansible playbook (a list of "
                       "plays, each with 'hosts')", source=str(path), line=data.line)  # fmt: skip
    step_class = registry.load(registry.STEP_TYPES, "ansible")
    if step_class is None:
        raise BadInput("the 'ansible' step type is not installed", source=str(path))
    name = reference[: -len(path.suffix)] if reference.endswith(path.suffix) and "/" not in reference else path.stem
    step = Step(id=path.stem, type="ansible", params={"playbook": str(path)}, step_class=step_class, line=1,
                description=f"Ansible playbook {path.name}")  # fmt: skip
    return Playbook(name=name, path=path, digest=digest, steps=(step,), description=f"Ansible playbook {path}",
                    hosts="all", builtin=builtin)  # fmt: skip


def parse(
    data: Any, source: str, path: Path, digest: str, builtin: bool = False, included: Sequence[Playbook] = (),
    places: Sequence[Path] = (),
) -> Playbook:
    """Validate parsed playbook YAML and build a Playbook (after the steps of ``included``); ``places`` are the
    directories a step's relative file name is looked up in (default: the playbook's)."""
    places = tuple(places) or (path.parent,)
    if not isinstance(data, LineDict):
        raise BadInput("a playbook must be a mapping with a 'steps' list", source=source, line=1)
    unknown = sorted(set(data) - PLAYBOOK_KEYS)
    if unknown:
        raise BadInput(
            f"unknown key '{unknown[0]}'",
            source=source,
            line=data.line_of(unknown[0]),
            hint=f"playbook keys: {', '.join(sorted(PLAYBOOK_KEYS))}",
        )
    steps_data = data.get("steps", LineList())
    if not isinstance(steps_data, LineList) or not (steps_data or included):
        raise BadInput("'steps' must be a non-empty list", source=source, line=data.line_of("steps"))
    timeout = _timeout_field(data, "timeout", source)
    steps: list[Step] = []
    seen: dict[str, int] = {}
    for other in included:
        for step in other.steps:
            if step.id in seen:
                raise BadInput(f"step id '{step.id}' of {other.name} is used twice", source=source,
                               line=data.line_of("include"))  # fmt: skip
            seen[step.id] = data.line_of("include")
            steps.append(dataclasses.replace(step, timeout=step.timeout or other.timeout))
    for index, item in enumerate(steps_data):
        line = steps_data.item_lines[index]
        step = _parse_step(item, source, line, places)
        if step.id in seen:
            raise BadInput(
                f"duplicate step id '{step.id}' (first at line {seen[step.id]})", source=source, line=line
            )
        seen[step.id] = line
        steps.append(step)
    steps = _link_remediations(steps, steps_data, source, places)
    from maint.batches import parse_percentage, parse_serial

    serial: tuple[str, ...] = ()
    max_fail: float | None = None
    try:
        if data.get("serial") is not None:
            serial = parse_serial(data["serial"])
    except ValueError as error:
        raise BadInput(str(error), source=source, line=data.line_of("serial")) from None
    try:
        if data.get("max_fail_percentage") is not None:
            max_fail = parse_percentage(data["max_fail_percentage"])
    except ValueError as error:
        raise BadInput(str(error), source=source, line=data.line_of("max_fail_percentage")) from None
    hosts = data.get("hosts", "all")
    if not isinstance(hosts, str) or not hosts.strip():
        raise BadInput("'hosts' must be a host pattern", source=source, line=data.line_of("hosts"))
    try:
        check_pattern(hosts)
    except ValueError as error:
        raise BadInput(f"'hosts': invalid host pattern {hosts!r}: {error}", source=source,
                       line=data.line_of("hosts"), hint=PATTERN_HINT) from None  # fmt: skip
    digest = _with_sources(digest, steps)
    return Playbook(
        name=str(data.get("name") or path.stem),
        path=path,
        digest=digest,
        steps=tuple(steps),
        description=str(data.get("description") or ""),
        hosts=hosts,
        timeout=timeout,
        builtin=builtin,
        serial=serial,
        max_fail_percentage=max_fail,
        become=_become_keywords(data, source),
    )


def _become_keywords(data: LineDict, source: str, step_id: str | None = None) -> BecomeKeywords:
    """The ``become*`` keywords of a playbook or step mapping; BadInput naming the line of a wrong one."""
    try:
        return BecomeKeywords.parse(data)
    except ValueError as error:
        key = next((key for key in BECOME_KEYWORDS if f"'{key}'" in str(error)), "become")
        where = f"step '{step_id}': " if step_id else ""
        raise BadInput(f"{where}{error}", source=source, line=data.line_of(key) if key in data else data.line,
                       hint="become: true|false, become_user: NAME, become_method: sudo|su|doas") from None  # fmt: skip


def _timeout_field(data: LineDict, key: str, source: str) -> float | None:
    if data.get(key) is None:
        return None
    try:
        return timeout_seconds(data[key])
    except ValueError as error:
        raise BadInput(f"'{key}': {error}", source=source, line=data.line_of(key)) from None


def _parse_step(item: Any, source: str, line: int, places: Sequence[Path] = ()) -> Step:
    if not isinstance(item, LineDict):
        raise BadInput("a step must be a mapping with 'id' and 'type'", source=source, line=line)
    step_id = item.get("id")
    if not isinstance(step_id, str) or not step_id.strip():
        raise BadInput("a step needs an 'id' (text, unique in the playbook)", source=source, line=item.line)
    type_name = item.get("type")
    if not isinstance(type_name, str):
        raise BadInput(f"step '{step_id}' needs a 'type'", source=source, line=item.line)
    step_class = registry.load(registry.STEP_TYPES, type_name)
    if step_class is None:
        names = registry.names(registry.STEP_TYPES)
        close = difflib.get_close_matches(type_name, names, n=1)
        hint = f"did you mean '{close[0]}'? see 'maint checks list'" if close else f"known types: {', '.join(names)}"
        raise BadInput(f"step '{step_id}': unknown type '{type_name}'", source=source, line=item.line_of("type"),
                       hint=hint)  # fmt: skip
    for key, allowed in (("severity", SEVERITIES), ("tier", TIERS)):
        if key in item and item[key] not in allowed:
            raise BadInput(
                f"step '{step_id}': {key} must be one of {', '.join(allowed)}",
                source=source,
                line=item.line_of(key),
            )
    # A parameter the step type declares keeps its name, also where a step key has it (ansible's `tags`).
    own = set(step_class.params)
    tags_key = OWN_TAGS_KEY if "tags" in own else "tags"
    if tags_key == "tags" and OWN_TAGS_KEY in item:
        raise BadInput(f"step '{step_id}': '{OWN_TAGS_KEY}' is for step types with a 'tags' parameter of their own "
                       "(ansible)", source=source, line=item.line_of(OWN_TAGS_KEY), hint="write 'tags'")  # fmt: skip
    params = {key: value for key, value in item.items() if key != tags_key and (key not in STEP_KEYS or key in own)}
    templates: dict[str, jinja2.Template] = {}
    static: dict[str, Any] = {}
    for key, value in params.items():
        if is_template(value):
            import jinja2

            try:
                templates[key] = compile_template(value, shell=key in step_class.shell_params)
            except jinja2.TemplateSyntaxError as error:
                raise BadInput(
                    f"step '{step_id}': template syntax error in '{key}': {error.message}",
                    source=source,
                    line=item.text_line(key) + (error.lineno - 1 if isinstance(value, str) else 0),
                ) from None
            unsafe = unsafe_placement(value) if key in step_class.shell_params else None
            if unsafe is not None:
                raise BadInput(f"step '{step_id}': '{key}': {unsafe[1]}", source=source,
                               line=item.text_line(key) + unsafe[0] - 1)  # fmt: skip
        else:
            static[key] = value
    # Validate everything that is not templated now, so a typo fails before any host is touched.
    try:
        params.update(step_class.load_params(static, templates, places))
    except ParamError as error:
        raise BadInput(f"step '{step_id}': {error}", source=source, line=_param_line(item, error)) from None
    timeout = _timeout_field(item, "timeout", source)
    when = item.get("when")
    condition = None
    if when is not None:
        if not isinstance(when, (str, bool)) or (isinstance(when, str) and not when.strip()):
            raise BadInput(f"step '{step_id}': 'when' must be a Jinja2 expression", source=source,
                           line=item.line_of("when"))  # fmt: skip
        import jinja2

        try:
            condition = compile_expression(str(when))
        except jinja2.TemplateSyntaxError as error:
            raise BadInput(
                f"step '{step_id}': bad 'when' expression: {error.message}", source=source, line=item.line_of("when")
            ) from None
    return Step(
        id=step_id,
        type=type_name,
        params=params,
        severity=str(item.get("severity", step_class.default_severity)),
        tier=str(item.get("tier", step_class.default_tier)),
        timeout=timeout,
        description=str(item.get("description") or ""),
        runbook=str(item.get("runbook") or ""),
        line=item.line,
        step_class=step_class,
        templates=templates,
        when=str(when) if when is not None else "",
        condition=condition,
        become=_become_keywords(item, source, step_id),
        tags=_tags(item, tags_key, source, step_id),
    )


def _tags(item: LineDict, key: str, source: str, step_id: str) -> tuple[str, ...]:
    """A step's tags: a list of names without commas or spaces (``--tags a,b`` splits on commas)."""
    value = item.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(tag, str) and tag.strip() and not any(c == "," or c.isspace() for c in tag) for tag in value
    ):
        raise BadInput(f"step '{step_id}': '{key}' must be a list of names (no commas or spaces)", source=source,
                       line=item.line_of(key), hint=f"{key}: [security, weekly]")  # fmt: skip
    return tuple(value)


def selected(tags: Sequence[str], only: Sequence[str] = (), skip: Sequence[str] = ()) -> bool:
    """Whether a step with ``tags`` runs under ``--tags only`` and ``--skip-tags skip``, as Ansible decides
    for a task: no ``only`` means ``all`` (every step but those tagged ``never``); a step tagged ``always`` runs
    unless ``always`` (or one of its other tags) is skipped; ``tagged``/``untagged`` match steps with or without
    tags; ``--skip-tags`` wins over ``--tags``."""
    have = set(tags) or {"untagged"}
    wanted = set(only) or {"all"}
    run = (
        ALWAYS in have
        or ("all" in wanted and NEVER not in have)
        or not have.isdisjoint(wanted)
        or ("tagged" in wanted and have != {"untagged"} and NEVER not in have)
    )
    unwanted = set(skip)
    if run and unwanted:
        if "all" in unwanted:
            run = ALWAYS in have and ALWAYS not in unwanted
        elif not have.isdisjoint(unwanted) or ("tagged" in unwanted and have != {"untagged"}):
            run = False
    return run


def select_steps(playbook: Playbook, only: Sequence[str] = (), skip: Sequence[str] = ()) -> Playbook:
    """``playbook`` with only the steps :func:`selected` keeps (its digest unchanged: the file is the same)."""
    if not only and not skip and not any(NEVER in step.tags for step in playbook.steps):
        return playbook
    steps = tuple(step for step in playbook.steps if selected(step.tags, only, skip))
    return dataclasses.replace(playbook, steps=steps)


def adhoc(hosts: str, command: str, template: bool = True) -> Playbook:
    """The playbook of ``maint exec``: one ``command`` step running ``command`` on the hosts matching ``hosts``.

    With ``template`` a ``{{ }}`` in the command is a Jinja2 template over host vars and -e vars, rendered as a
    playbook's command is (values reach the shell as data, never as code); without it the command is sent as
    written, braces included. The digest covers the pattern, the command as recorded and ``template``, so the
    recorded recipe builds the same playbook again (resume, rerun). Raises BadInput for a bad pattern or template.
    """
    import json

    source = "maint exec"
    if not command.strip():
        raise BadInput("no command given", hint="e.g. maint exec all -i inventory.ini -- uptime")
    try:
        check_pattern(hosts)
    except ValueError as error:
        raise BadInput(f"invalid host pattern {hosts!r}: {error}", hint=PATTERN_HINT) from None
    # Recorded as shown (a secret-looking assignment masked); such a command cannot be built again from the record.
    shown = redact_command(command)
    recipe: dict[str, Any] = {"hosts": hosts, "command": shown, "template": template}
    if shown != command:
        recipe["redacted"] = True
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
    step_id = f"{ADHOC_STEP}-{digest[:8]}"
    item = LineDict({"id": step_id, "type": "command", "command": command})
    item.line, item.key_lines = 1, {}
    if template:
        try:
            step = _parse_step(item, source, 1)
        except BadInput as error:
            detail = error.message.removeprefix(f"{source}:1: ").removeprefix(f"step '{step_id}': ")
            raise BadInput(f"the command: {detail}", hint=error.hint or
                           "--no-template sends the command as written, {{ }} included") from None  # fmt: skip
    else:
        step_class = registry.load(registry.STEP_TYPES, "command")
        if step_class is None:
            raise BadInput("the 'command' step type is not installed")
        step = Step(id=step_id, type="command", params={"command": command}, line=1, step_class=step_class)
    step = dataclasses.replace(step, description=f"maint exec: {command}")
    return Playbook(name=ADHOC_NAME, path=Path(f"<{source}>"), digest=digest, steps=(step,),
                    description=f"maint exec on {hosts}: {command}", hosts=hosts, adhoc=recipe)  # fmt: skip


def _link_remediations(steps: list[Step], steps_data: LineList, source: str, places: Sequence[Path]) -> list[Step]:
    """Attach each step's ``remediate`` task: an inline step mapping, or the id of another step."""
    by_id = {step.id: step for step in steps}
    items = {item.get("id"): item for item in steps_data if isinstance(item, LineDict)}
    linked = []
    for step in steps:
        item = items.get(step.id)
        if item is None or item.get("remediate") is None:
            linked.append(step)
            continue
        value = item["remediate"]
        line = item.line_of("remediate")
        if isinstance(value, str):
            task = by_id.get(value)
            if task is None or task.id == step.id:
                raise BadInput(f"step '{step.id}': 'remediate' names no other step of this playbook: '{value}'",
                               source=source, line=line, hint="give a step id or an inline task mapping")  # fmt: skip
        elif isinstance(value, LineDict):
            inline = LineDict(value)
            inline.line, inline.key_lines, inline.value_lines = value.line, value.key_lines, value.value_lines
            inline.setdefault("id", f"{step.id}-remediate")
            task = _parse_step(inline, source, line, places)
            if task.remediate is not None or "remediate" in value:
                raise BadInput(f"step '{step.id}': a remediation cannot have its own 'remediate'", source=source,
                               line=line)  # fmt: skip
        else:
            raise BadInput(f"step '{step.id}': 'remediate' must be a step id or a task mapping", source=source,
                           line=line)  # fmt: skip
        if not task.step_class.changes_host and task.type != "command":
            raise BadInput(f"step '{step.id}': remediation '{task.id}' is a check ({task.type}), not a task",
                           source=source, line=line, hint="use a task such as log.cleanup or command")  # fmt: skip
        linked.append(dataclasses.replace(step, remediate=task))
    return linked


def _param_line(item: LineDict, error: ParamError) -> int:
    message = str(error)
    for key in item:
        if f"'{key}'" in message:
            return item.line_of(key)
    return item.line


__all__ = ["Playbook", "RenderError", "Step", "adhoc", "available", "load", "resolve", "select_steps", "selected"]
