"""The email ticket backend against a real SMTP server (aiosmtpd on loopback, tests/helpers/smtp_server.py)."""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from smtp_server import SMTPServer

from maint.tickets.backends import BackendRejected, BackendUnavailable, TicketMessage
from maint.tickets.backends.email import EmailBackend

USER = "maint"
PASSWORD = "correct-horse-battery"
SENDER = "maint <maint@example.org>"


def message(action: str = "open", event_id: int = 101, **changes: Any) -> TicketMessage:
    """A ticket action for web1/disk.usage, ticket 7, with ``changes`` applied."""
    base = TicketMessage(
        action=action,
        key="web1/disk.usage",
        ticket_id=7,
        event_id=event_id,
        host="web1",
        check="disk.usage",
        tier="L2",
        severity="critical",
        status="open",
        subject="disk.usage failing on web1",
        body="/var is 97% full (limit 90%).",
        run_id="run-20240101-0300",
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SMTPServer]:
    """A plain SMTP server for the module."""
    with SMTPServer(tmp_path_factory.mktemp("smtp-plain")) as server:
        yield server


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SMTPServer]:
    """An SMTP server that requires STARTTLS (self-signed certificate) and AUTH."""
    with SMTPServer(tmp_path_factory.mktemp("smtp-secure"), tls="starttls", user=USER, password=PASSWORD) as server:
        yield server


@pytest.fixture
def smtp(plain: SMTPServer) -> SMTPServer:
    """The plain server with an empty mail log and no refused recipients."""
    plain.clear()
    plain.refuse.clear()
    plain.defer.clear()
    return plain


def backend(server: SMTPServer, timeout: float = 5.0, **options: Any) -> EmailBackend:
    """An email backend for ``server`` with ``options`` on top of host, port, from and to."""
    settings: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "from": SENDER,
        "to": ["ops@example.org"],
        "queues": {"L3": ["oncall@example.org"], "dba": "dba@example.org, Backup Team <backup@example.org>"},
    }
    settings.update(options)
    return EmailBackend("mail", settings, timeout)


def test_entry_point_loads_the_backend() -> None:
    (entry,) = entry_points(group="maint.ticket_backends", name="email")
    assert entry.load() is EmailBackend
    assert EmailBackend.options["password"].secret
    assert {"host", "from", "to"} <= {name for name, option in EmailBackend.options.items() if option.required}


def test_open_comment_escalate_resolve_thread_under_the_opening_mail(smtp: SMTPServer) -> None:
    mail = backend(smtp)
    assert mail.find("web1/disk.usage") is None

    ref = mail.open(message())
    mail.comment(ref, message("comment", 102, body="Still 97% full.", occurrences=2))
    mail.escalate(ref, message("escalate", 103, tier="L3", status="escalated", body="No change in 2 hours."))
    mail.resolve(ref, message("resolve", 104, tier="L3", status="resolved", body="/var is 40% full."))

    opening, comment, escalation, resolution = smtp.wait_for(4)
    assert ref == opening.message["Message-ID"]
    assert ref.startswith("<maint.7.") and ref.endswith("@example.org>")
    assert opening.message["Subject"] == "[maint L2] disk.usage failing on web1"
    assert opening.message["In-Reply-To"] is None
    assert opening.mail_from == "maint@example.org"
    assert opening.rcpt_tos == ["ops@example.org"]
    assert opening.text().rstrip().endswith("maint-event-101")
    assert "/var is 97% full (limit 90%)." in opening.text()
    for received in (comment, escalation, resolution):
        assert received.message["In-Reply-To"] == ref
        assert received.message["References"] == ref
        assert received.message["Message-ID"] != ref
        assert received.message["Subject"].startswith("Re: [maint ")
    assert comment.message["Subject"] == "Re: [maint L2] disk.usage failing on web1"
    assert escalation.message["Subject"] == "Re: [maint L3] disk.usage failing on web1"
    assert escalation.rcpt_tos == ["ops@example.org", "oncall@example.org"]
    assert [mail.message["X-Maint-Event"] for mail in (opening, comment, escalation, resolution)] == [
        "maint-event-101",
        "maint-event-102",
        "maint-event-103",
        "maint-event-104",
    ]
    for received in (opening, comment, escalation, resolution):
        assert received.message["X-Maint-Key"] == "web1/disk.usage"
        assert received.message["X-Maint-Severity"] == "critical"
        assert received.message["Auto-Submitted"] == "auto-generated"
        assert received.text().rstrip().endswith(received.message["X-Maint-Event"])
    assert escalation.message["X-Maint-Tier"] == "L3"
    assert resolution.message["X-Maint-Status"] == "resolved"
    assert "/var is 40% full." in resolution.text()
    assert not mail.delivered(ref, message("resolve", 104))


def test_a_resent_action_carries_the_same_message_id(smtp: SMTPServer) -> None:
    mail = backend(smtp)
    first = mail.open(message())
    again = mail.open(message())
    mail.comment(first, message("comment", 102))
    mail.comment(first, message("comment", 102))

    received = smtp.wait_for(4)
    assert first == again
    assert received[0].message["Message-ID"] == received[1].message["Message-ID"] == first
    assert received[2].message["Message-ID"] == received[3].message["Message-ID"]
    other_ticket = backend(smtp).thread_id(message(ticket_id=8))
    assert other_ticket != first


def test_a_reference_that_is_no_message_id_still_threads(smtp: SMTPServer) -> None:
    mail = backend(smtp)
    mail.comment("imported-42", message("comment", 102))

    (received,) = smtp.wait_for(1)
    assert received.message["In-Reply-To"] == mail.thread_id(message())


def test_the_routing_queue_adds_addresses_or_names_a_queue(smtp: SMTPServer) -> None:
    mail = backend(smtp)
    mail.open(message(queue="storage@example.org"))
    mail.open(message(queue="dba"))

    by_address, by_name = smtp.wait_for(2)
    assert by_address.rcpt_tos == ["ops@example.org", "storage@example.org"]
    assert by_name.rcpt_tos == ["ops@example.org", "dba@example.org", "backup@example.org"]
    assert "Backup Team <backup@example.org>" in by_name.message["To"]
    with pytest.raises(BackendRejected, match="queue 'storage' is neither an address nor a name in queues"):
        mail.open(message(queue="storage"))


def test_starttls_and_auth_with_the_test_ca(secure: SMTPServer) -> None:
    secure.clear()
    mail = backend(secure, tls="starttls", user=USER, password=PASSWORD, cafile=str(secure.cafile))

    ref = mail.open(message())

    (received,) = secure.wait_for(1)
    assert received.message["Message-ID"] == ref
    assert received.tls
    assert received.authenticated_as == USER


def test_starttls_shorthand_and_unverified_tls(secure: SMTPServer) -> None:
    secure.clear()
    backend(secure, starttls=True, user=USER, password=PASSWORD, verify_tls=False).open(message())

    (received,) = secure.wait_for(1)
    assert received.tls


def test_wrong_password_is_rejected_without_showing_it(secure: SMTPServer) -> None:
    secure.clear()
    wrong = "wrong-" + PASSWORD
    mail = backend(secure, tls="starttls", user=USER, password=wrong, cafile=str(secure.cafile))

    with pytest.raises(BackendRejected) as caught:
        mail.open(message())

    text = str(caught.value)
    assert "535" in text and "check user and password" in text and f"'{USER}'" in text
    assert wrong not in text and PASSWORD not in text
    assert not secure.messages


def test_untrusted_certificate_is_rejected_with_a_hint(secure: SMTPServer) -> None:
    mail = backend(secure, tls="starttls", user=USER, password=PASSWORD)

    with pytest.raises(BackendRejected, match=r"not trusted.*set cafile"):
        mail.open(message())


def test_auth_without_tls_is_rejected_with_a_hint(secure: SMTPServer) -> None:
    mail = backend(secure, user=USER, password=PASSWORD)

    with pytest.raises(BackendRejected, match="does not offer AUTH before STARTTLS: set tls: starttls"):
        mail.open(message())


def test_implicit_tls(tmp_path: Path) -> None:
    with SMTPServer(tmp_path, tls="implicit") as server:
        backend(server, tls="implicit", cafile=str(server.cafile)).open(message())

        (received,) = server.wait_for(1)
        assert received.tls
        assert received.message["X-Maint-Event"] == "maint-event-101"
    assert EmailBackend("m", {"tls": "implicit"}, 1.0).port == 465
    assert EmailBackend("m", {}, 1.0).port == 25


def test_refused_recipient_is_rejected_and_a_deferred_one_is_retried(smtp: SMTPServer) -> None:
    smtp.refuse.add("ops@example.org")
    with pytest.raises(BackendRejected, match=r"refused the recipients: ops@example.org \(550 .*check to and queues"):
        backend(smtp).open(message())

    smtp.refuse.clear()
    smtp.defer.add("ops@example.org")
    with pytest.raises(BackendUnavailable, match=r"deferred the recipients: ops@example.org \(451"):
        backend(smtp).open(message())
    assert not smtp.messages


def test_one_refused_recipient_of_several_does_not_fail_the_action(smtp: SMTPServer) -> None:
    smtp.refuse.add("oncall@example.org")

    backend(smtp).escalate("<maint.7.x@example.org>", message("escalate", 103, tier="L3"))

    (received,) = smtp.wait_for(1)
    assert received.rcpt_tos == ["ops@example.org"]


def test_server_down_is_unavailable_fast(tmp_path: Path) -> None:
    server = SMTPServer(tmp_path).start()
    server.stop()
    mail = backend(server, timeout=0.5)

    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match=r"cannot reach 127.0.0.1:\d+: Connection refused"):
        mail.open(message())
    assert time.monotonic() - started < 0.5

    with server:
        mail.open(message())
        assert len(server.wait_for(1)) == 1


def test_a_server_that_never_answers_is_unavailable_after_the_timeout() -> None:
    with socket.socket() as silent:
        # Listening without accepting: the connection opens, the greeting never comes.
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        mail = EmailBackend("mail", {"host": "127.0.0.1", "port": port, "from": SENDER, "to": "ops@example.org"}, 0.5)

        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match=r"no answer from 127.0.0.1:\d+ within 0.5s"):
            mail.open(message())
        assert time.monotonic() - started < 2.0


def test_missing_settings_are_rejected_before_connecting() -> None:
    with pytest.raises(BackendRejected, match="host, from and to must all be set"):
        EmailBackend("mail", {"from": SENDER}, 1.0).open(message())
    with pytest.raises(BackendRejected, match="user and password go together"):
        EmailBackend("mail", {"host": "127.0.0.1", "from": SENDER, "to": "a@b.c", "user": "x"}, 1.0).open(message())
