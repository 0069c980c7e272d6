"""No control sequence reaches the terminal: maint.terminal's escaping and the CLI's output stream."""

from __future__ import annotations

import io
import json
import re
import sys

import pytest

from maint.reports.spreadsheet import results_csv
from maint.reports.text import table
from maint.terminal import EscapingWriter, control, escape_controls, escaped_output, styled

# Every C0 control but tab and newline, DEL, every C1 control, and the bidi formatting characters.
CONTROLS = [chr(code) for code in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), *range(0x202A, 0x202F),
                                   *range(0x2066, 0x206A)] if chr(code) not in "\t\n"]  # fmt: skip
SEQUENCES = [
    "\x1b]0;pwned\x07",  # OSC 0: window title
    "\x1b]52;c;cm0gLXJmIH4=\x07",  # OSC 52: clipboard write
    "\x1bP+q544e\x1b\\",  # DCS request
    "\x1b[2J\x1b[H",  # CSI: clear screen, cursor home
    "\x9b31m",  # C1 CSI
    "\x1b]8;;http://evil.example/\x1b\\link\x1b]8;;\x1b\\",  # OSC 8 hyperlink
    "ok\rFAKE",  # a carriage return overwriting the line
    "\u202eexe.txt",  # right-to-left override
]
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.mark.parametrize("character", CONTROLS, ids=[f"U+{ord(c):04X}" for c in CONTROLS])
def test_every_control_character_is_shown_escaped(character: str) -> None:
    shown = escape_controls(f"a{character}b")
    assert not RAW.search(shown)
    assert shown == f"a\\u{ord(character):04x}b"


@pytest.mark.parametrize("sequence", SEQUENCES)
def test_escape_sequences_become_visible_text(sequence: str) -> None:
    shown = escape_controls(f"before {sequence} after")
    assert not RAW.search(shown)
    assert shown.startswith("before ") and shown.endswith(" after")


def test_newline_tab_crlf_and_text_stay() -> None:
    text = "line 1\tcolumn\r\nline 2 é ü 日本 \\u001b literal\n"
    assert escape_controls(text) == text
    assert escape_controls("\x1b[31mred\x1b[0m") == "\\u001b[31mred\\u001b[0m"


def test_the_output_stream_escapes_everything_but_maints_own_sequences(monkeypatch: pytest.MonkeyPatch) -> None:
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    with escaped_output():
        assert isinstance(sys.stdout, EscapingWriter)
        print("host said \x1b]0;pwned\x07 and \x9b2J")
        print("db postgresql://maint:hunter2@db.example/maint")
        styled("maint: warning: \x1b[2J", fg="yellow")
        control("\r\x1b[K", "3 results \x1b]52;c;eA==\x07")
    assert sys.stdout is out and sys.stderr is err
    assert out.getvalue() == "host said \\u001b]0;pwned\\u0007 and \\u009b2J\ndb postgresql://maint:***@db.example/maint\n"
    assert err.getvalue() == "maint: warning: \\u001b[2J\n\r\x1b[K3 results \\u001b]52;c;eA==\\u0007"


def test_json_through_the_output_stream_stays_valid_and_means_the_same() -> None:
    value = {"summary": "del \x7f c1 \x9b rlo \u202e nel \x85", "esc": "\x1b]0;t\x07"}
    for ensure_ascii in (True, False):
        buffer = io.StringIO()
        EscapingWriter(buffer).write(json.dumps(value, ensure_ascii=ensure_ascii))
        assert not RAW.search(buffer.getvalue())
        assert json.loads(buffer.getvalue()) == value


def test_tables_and_csv_show_controls_escaped_and_stay_aligned() -> None:
    rendered = table(["HOST", "SUMMARY"], [["web1", "\x1b]0;pwned\x07"], ["web2", "ok"]])
    assert "\x1b" not in rendered and "\\u001b]0;pwned\\u0007" in rendered
    lines = rendered.splitlines()
    assert lines[1].index("\\u001b") == lines[0].index("SUMMARY")
    result = {"host": "web1", "playbook": "p", "step": "s", "type": "command", "attempt": 1, "status": "failed",
              "exit_code": 1, "severity": "warning", "tier": "L1", "started": "2026-01-01T00:00:00.000Z",
              "duration": 0.1, "summary": "\x1bP+q\x1b\\ \x9b6n"}  # fmt: skip
    text = results_csv({"id": "r1", "results": [result]})
    assert "\x1b" not in text and "\x9b" not in text and "\\u001bP+q\\u001b\\ \\u009b6n" in text
