"""Values in command templates are never read as code by the shell, whatever quotes the author wrote.

A generated corpus: every quoting context a playbook author may write around ``{{ p }}`` times payloads
that try to break out of it, rendered as maint renders a step's command and run by real shells (dash,
Debian's /bin/sh, and bash, /bin/sh elsewhere). No payload may run, and where the context hands the
value over as one piece, it must arrive byte for byte.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import pytest

from maint import playbooks
from maint.errors import BadInput
from maint.templating import RenderError, compile_template, render, unsafe_placement

SHELLS = [shell for shell in ("/bin/dash", "/bin/bash") if shutil.which(shell)]

# context name -> (template, how the value arrives: "exact", "stripped" (a command substitution drops
# trailing newlines), or "any" (split into words: only safety is checked))
CONTEXTS = {
    "bare": ("printf '%s' {{ p }}", "exact"),
    "double": ('printf \'%s\' "{{ p }}"', "exact"),
    "single": ("printf '%s' '{{ p }}'", "exact"),
    "double in text": ('printf \'%s\' "value: {{ p }} end"', "value: {} end"),
    "single in text": ("printf '%s' 'value: {{ p }} end'", "value: {} end"),
    "nested double in single": ("printf '%s' '\"{{ p }}\"'", '"{}"'),
    "nested single in double": ("printf '%s' \"'{{ p }}'\"", "'{}'"),
    "command substitution": ("printf '%s' \"$(printf '%s' {{ p }})\"", "stripped"),
    "quoted in command substitution": ("printf '%s' \"$(printf '%s' \"{{ p }}\")\"", "stripped"),
    "single in command substitution": ("x=$(printf '%s' '{{ p }}'); printf '%s' \"$x\"", "stripped"),
    "backticks": ("x=`printf '%s' {{ p }}`; printf '%s' \"$x\"", "stripped"),
    "backticks in double": ("printf '%s' \"`printf '%s' {{ p }}`\"", "any"),
    "parameter default, double": ("printf '%s' \"${MAINT_UNSET:-{{ p }}}\"", "exact"),
    "parameter default, bare": ("printf '%s' ${MAINT_UNSET:-{{ p }}}", "any"),
    "here-document": ("cat <<EOF\n{{ p }}\nEOF", "{}\n"),
    "here-document, tabs": ("cat <<-EOF\n\t{{ p }}\n\tEOF", "{}\n"),
    "here-document, text around": ("cat <<EOF\nbefore {{ p }} after\nEOF", "before {} after\n"),
    "argument of sh -c": ("sh -c 'printf \"%s\" \"$1\"' sh {{ p }}", "exact"),
    "two placeholders": ("printf '%s|%s' \"{{ p }}\" '{{ p }}'", "{}|{}"),
    "comment": ("printf ok # {{ p }}", "ok"),
    "assignment": ("v={{ p }}; printf '%s' \"$v\"", "exact"),
    "double, escaped quote before": ('printf \'%s\' "\\"{{ p }}"', '"{}'),
}

# Payloads: each tries to leave its quotes and run `touch MARKER`.
PAYLOADS = [
    "$(touch {marker})",
    "`touch {marker}`",
    "';touch {marker};'",
    '";touch {marker};"',
    "\\\";touch {marker};#",
    "'\"$(touch {marker})\"'",
    "a\nEOF\ntouch {marker}\nEOF",
    "x\n\tEOF\ntouch {marker}",
    "${{IFS}}$(touch {marker})",
    "a[$(touch {marker})]",
    "$((1+1))$(touch {marker})",
    "'\\'';touch {marker};'",
    "}}; touch {marker}; {{",
    "* ? [a-z] ~ &; touch {marker} |",
    "\\\\\\\\`touch {marker}`",
    "ünïcødé ‮ $(touch {marker})",
    "",
    "-n",
    "plain-value_1.2:3,4@5%6+7=8/9",
]


def run_shell(shell: str, command: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([shell, "-c", command], cwd=cwd, capture_output=True, timeout=10, check=False)


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(("context", "payload"), list(itertools.product(CONTEXTS, PAYLOADS)))
def test_no_payload_runs_in_any_quoting_context(tmp_path: Path, shell: str, context: str, payload: str) -> None:
    marker = tmp_path / "pwned"
    value = payload.format(marker=marker)
    template, arrives = CONTEXTS[context]
    command = render(compile_template(template, shell=True), {"p": value})
    completed = run_shell(shell, command, tmp_path)
    assert not marker.exists(), f"{context}: the payload ran: {command!r}"
    output = completed.stdout.decode("utf-8", "replace")
    if arrives == "exact":
        assert output == value, command
    elif arrives == "stripped":
        assert output == value.rstrip("\n"), command
    elif arrives != "any":
        assert output == arrives.format(*[value] * arrives.count("{}")), command


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ('sh -c "echo {{ p }}"', "'sh -c'"),
        ("bash -c '{{ p }}'", "'bash -c'"),
        ("sudo -u postgres sh -ec 'echo {{ p }}'", "'sh -c'"),
        ("su -c \"echo {{ p }}\" root", "'su -c'"),
        ('eval "echo {{ p }}"', "'eval'"),
        ("ssh backup.example {{ p }}", "'ssh"),
        ("echo {{ p }} | sh", "'sh' reading a pipe"),
        ("printf '%s' \"{{ p }}\" | sudo bash", "'bash' reading a pipe"),
        ("sh <<EOF\necho {{ p }}\nEOF", "a here-document read by 'sh'"),
        ("cat <<'EOF'\n{{ p }}\nEOF", "quoted here-document"),
        ('sh -c "x=$(echo {{ p }})"', "'sh -c'"),
    ],
)
def test_values_handed_to_another_shell_are_refused(template: str, reason: str) -> None:
    found = unsafe_placement(template)
    assert found is not None and reason in found[1]
    with pytest.raises(RenderError, match="placeholder"):
        render(compile_template(template, shell=True), {"p": "x"})


@pytest.mark.parametrize(
    "template", ["echo $(( {{ p }} + 1 ))", "[[ {{ p }} -eq 1 ]] && echo one", "(( {{ p }} > 2 )) && echo big"]
)
def test_arithmetic_takes_whole_numbers_only(tmp_path: Path, template: str) -> None:
    compiled = compile_template(template, shell=True)
    assert unsafe_placement(template) is None  # judged on the value, when it is known
    with pytest.raises(RenderError, match="arithmetic"):
        render(compiled, {"p": "a[$(touch pwned)]"})
    assert "3" in render(compiled, {"p": "3"})


def test_arguments_after_an_inline_script_are_data(tmp_path: Path) -> None:
    command = render(compile_template("sh -c 'printf \"%s\" \"$1\"' sh {{ p }}", shell=True), {"p": "$(id)"})
    assert run_shell("/bin/sh", command, tmp_path).stdout == b"$(id)"


def test_inert_values_are_written_in_place() -> None:
    command = render(compile_template("awk -v warn={{ w }} -f {{ path }} '{{ name }}'", shell=True),
                     {"w": 2, "path": "/etc/x.awk", "name": "a b"})  # fmt: skip
    assert command == "__maint_v2='a b'\nawk -v warn=2 -f /etc/x.awk ''\"${__maint_v2}\"''"


def test_raw_values_are_trusted_text(tmp_path: Path) -> None:
    command = render(compile_template("printf '%s' {{ flags | raw }}", shell=True), {"flags": "a; printf b"})
    assert run_shell("/bin/sh", command, tmp_path).stdout == b"ab"


def test_unsafe_placement_is_bad_input_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "book.yml"
    path.write_text("steps:\n  - id: a\n    type: command\n    command: |\n      true\n      sh -c \"echo {{ p }}\"\n")
    with pytest.raises(BadInput) as caught:
        playbooks.load(path, tmp_path)
    assert str(caught.value).startswith(f"{path}:6: step 'a': 'command': a placeholder inside code run by 'sh -c'")
