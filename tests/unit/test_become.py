"""maint.become: Ansible's become settings and precedence, and the command that starts an escalated shell."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from maint.become import DEFAULT_TIMEOUT, Become, BecomeError, Keywords, settings
from maint.errors import BadInput
from maint.playbooks import load as load_playbook


def test_nothing_asks_for_become_then_none() -> None:
    assert settings({}) is None
    assert settings({"ansible_become_user": "postgres"}) is None  # a user alone does not escalate, as in Ansible
    assert settings({}, step=Keywords(become=False), command_line=Keywords(become=True)) is None


def test_ansible_defaults_and_boolean_words() -> None:
    become = settings({"ansible_become": "yes"})
    assert become == Become("sudo", "root", "-H -S -n", "")
    assert become is not None and become.timeout == DEFAULT_TIMEOUT and become.password is None
    assert settings({"ansible_become": "False"}) is None
    assert settings({"ansible_become": "on"}, step=Keywords(become=False)) is not None  # variables win


def test_precedence_command_line_then_playbook_then_step_then_variables() -> None:
    cli = Keywords(True, "cli-user", "su", "-l")
    play = Keywords(None, "play-user", None, None)
    step = Keywords(None, None, "doas", None)
    become = settings({}, step, play, cli)
    assert become is not None and (become.method, become.user, become.flags) == ("doas", "play-user", "-l")
    become = settings({"ansible_become_user": "var-user", "ansible_become_flags": ""}, step, play, cli)
    assert become is not None and (become.method, become.user, become.flags) == ("doas", "var-user", "")


def test_password_sources_later_variable_wins_and_references_resolve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    monkeypatch.setenv("PW", "from-env")
    on = {"ansible_become": True}
    assert settings(on, asked_password="typed").password == "typed"  # type: ignore[union-attr]
    assert settings({**on, "ansible_become_password": "a"}, asked_password="typed").password == "a"  # type: ignore[union-attr]
    both = {**on, "ansible_become_password": "a", "ansible_become_pass": f"file:{secret}"}
    assert settings(both).password == "from-file"  # type: ignore[union-attr]
    assert settings({**on, "ansible_become_pass": "{{ lookup('env', 'PW') }}"}).password == "from-env"  # type: ignore[union-attr]
    assert settings({**on, "ansible_become_pass": f'{{{{lookup("file","{secret}")}}}}'}).password == "from-file"  # type: ignore[union-attr]
    with pytest.raises(BecomeError, match="template maint does not evaluate"):
        settings({**on, "ansible_become_pass": "{{ lookup('pipe', 'cat /etc/shadow') }}"})
    with pytest.raises(BecomeError, match="NOPE") as caught:
        settings({**on, "ansible_become_pass": "env:NOPE"})
    assert "from-env" not in str(caught.value)


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"ansible_become_method": "pbrun"}, "ansible_become_method=pbrun"),
        ({"ansible_become_method": "runas"}, "run the step as an Ansible step"),
        ({"ansible_become_user": "-oops"}, "is not a user name"),
        ({"ansible_become_user": "a b"}, "is not a user name"),
        ({"ansible_become_flags": "-H 'unbalanced"}, "cannot be split"),
        ({"maint_become_timeout": "soon"}, "maint_become_timeout"),
    ],
)
def test_settings_maint_cannot_use_are_errors(variables: dict[str, str], message: str) -> None:
    with pytest.raises(BecomeError, match=message):
        settings({"ansible_become": True, **variables})


def test_commands_quote_every_value_and_follow_each_method() -> None:
    sudo = Become("sudo", "root", "-H -S -n", password="pw")
    command = sudo.command("TOKEN", "[maint become 1] password: ")
    words = shlex.split(command)
    assert words[:8] == ["sudo", "-H", "-S", "-p", "[maint become 1] password: ", "-u", "root", "/bin/sh"]
    assert "-n" not in words  # with a password sudo must be allowed to ask
    assert shlex.split(Become("sudo", "root", "-H").command("T", "p"))[:3] == ["sudo", "-H", "-S"]  # -S added
    doas = shlex.split(Become("doas", "backup", "").command("T", "p"))
    assert doas[:4] == ["doas", "-n", "-u", "backup"]
    su = shlex.split(Become("su", "backup", "-l", executable="/bin/su").command("T", "p", terminal=True))
    assert su[:4] == ["/bin/su", "-l", "backup", "-c"] and su[4].endswith("/bin/sh -s 2>/dev/null; fi")
    hostile = Become("sudo", "x;touch${IFS}/tmp/maint-pwned", "-H '$(touch /tmp/maint-pwned)'")
    words = shlex.split(hostile.command("T", "p"))
    assert "x;touch${IFS}/tmp/maint-pwned" in words and "$(touch /tmp/maint-pwned)" in words


def test_the_command_runs_the_shell_after_the_token_in_a_real_sh(tmp_path: Path) -> None:
    # With "sudo" replaced by env (which runs the rest), the command as the host's sh reads it: token twice, then a
    # shell reading stdin, leading its own process group.
    command = Become("sudo", "root", "", executable="/usr/bin/env").command("TOKEN-1", "p")
    command = command.replace("-S -p p -u root ", "")
    result = subprocess.run(
        ["/bin/sh", "-c", command], input="echo $(( 6 * 7 )); ps -o pgid= -p $$; echo $$\n", capture_output=True,
        text=True, timeout=10, check=True,
    )  # fmt: skip
    lines = result.stdout.split()
    assert lines[0] == "TOKEN-1" and result.stderr == "TOKEN-1\n"
    assert lines[1] == "42" and lines[2] == lines[3]  # pgid == pid: the escalated shell leads its group


def test_su_prompt_is_recognised_in_several_languages_and_configurable() -> None:
    pattern = Become("su", "backup").prompt_pattern()
    for prompt in ("Password: ", "Mot de passe : ", "Passwort:", "\u5bc6\u7801\uff1a", "password:"):
        assert pattern.search(prompt), prompt
    assert not pattern.search("Password changed\n")
    custom = settings({"ansible_become": True, "ansible_become_method": "su", "ansible_su_prompt_l10n": "Kennwort"})
    assert custom is not None and custom.prompt_pattern().search("Kennwort: ")
    assert not custom.prompt_pattern().search("Password: ")


def test_playbook_and_step_keywords_are_checked_when_the_playbook_loads(tmp_path: Path) -> None:
    book = tmp_path / "book.yml"
    book.write_text(
        "become: true\nbecome_user: backup\nsteps:\n  - id: a\n    type: command\n    command: id\n"
        "    become: false\n  - id: b\n    type: command\n    command: id\n    become_method: su\n"
    )
    loaded = load_playbook(str(book), tmp_path)
    assert loaded.become == Keywords(True, "backup")
    assert [step.become for step in loaded.steps] == [Keywords(False), Keywords(method="su")]
    book.write_text("steps:\n  - id: a\n    type: command\n    command: id\n    become_method: pbrun\n")
    with pytest.raises(BadInput) as caught:
        load_playbook(str(book), tmp_path)
    assert caught.value.line == 5 and "pbrun" in str(caught.value)
    book.write_text("become: sometimes\nsteps:\n  - id: a\n    type: command\n    command: id\n")
    with pytest.raises(BadInput, match="'become' must be true or false"):
        load_playbook(str(book), tmp_path)


def test_recorded_keywords_round_trip() -> None:
    keywords = Keywords(True, "backup", "su")
    assert keywords.recorded() == {"become": True, "become_user": "backup", "become_method": "su"}
    assert Keywords.from_record(keywords.recorded()) == keywords
    assert Keywords.from_record(None) == Keywords() and Keywords().recorded() == {}


def test_ansible_steps_get_the_command_line_options_and_the_asked_password_at_the_prompt() -> None:
    from maint.executors.ansible import become_cmdline

    assert become_cmdline(None, None) == []
    assert become_cmdline(Keywords(True, "backup", "su"), "pw") == [
        "--become", "--become-user", "backup", "--become-method", "su", "--ask-become-pass",
    ]  # fmt: skip
    assert become_cmdline(Keywords(False), None) == []  # become: false adds nothing: ansible's default is off
