"""The ``email`` ticket backend: every ticket action is one mail, threaded under the opening mail."""

from __future__ import annotations

import hashlib
import logging
import socket
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from maint.secrets import mask
from maint.tickets.backends import BackendRejected, BackendUnavailable, Option, TicketMessage

if TYPE_CHECKING:
    import smtplib
    import ssl
    from email.message import EmailMessage

log = logging.getLogger(__name__)

TLS_MODES = ("none", "starttls", "implicit")


class EmailBackend:
    """Tickets as threaded mails over SMTP (smtplib), for teams whose queue is a mailbox or a mail-in helpdesk.

    Every action is one mail to ``to`` plus the addresses of the ticket's queue. The ticket's reference
    is the Message-ID of the opening mail, made from the dedup key, maint's ticket number and ``domain``,
    so a re-sent "open" carries the same Message-ID (mail clients and helpdesks drop the duplicate). Later
    mails have their own deterministic Message-ID (per event) and ``In-Reply-To``/``References`` pointing
    at the opening mail, so they thread under it. The dedup key, the event marker, the tier and the
    severity travel in ``X-Maint-Key``, ``X-Maint-Event``, ``X-Maint-Tier`` and ``X-Maint-Severity``
    headers (for mail filters), and the marker is the last line of every body.

    Queues: the routing rule's queue (``message.queue``) is a name from ``queues`` or a comma-separated
    address list; without one, the ticket's tier is looked up in ``queues``. The addresses found are added
    to ``to``, which receives every mail.

    Mail cannot be searched: ``find`` returns None and ``delivered`` returns False.
    """

    description: ClassVar[str] = "Send each ticket action as a threaded mail over SMTP."
    options: ClassVar[dict[str, Option]] = {
        "host": Option(str, "SMTP server (the relay or submission server).", required=True,
                       example="smtp.example.org"),
        "port": Option(int, "SMTP port (default 25, or 465 with tls: implicit; 587 is the usual submission port).",
                       example=587),
        "tls": Option(str, "TLS mode: none, starttls (upgrade after connecting) or implicit (TLS from the start).",
                      default="none", example="starttls"),
        "starttls": Option(bool, "Shorthand for tls: starttls.", default=False, example=True),
        "user": Option(str, "User name for SMTP AUTH (only with password).", example="maint"),
        "password": Option(str, "Password for SMTP AUTH.", secret=True, example="env:MAINT_SMTP_PASSWORD"),
        "from": Option(str, "Sender address of the mails.", required=True, example="maint <maint@example.org>"),
        "to": Option((list, str), "Recipients of every mail (a list, or comma-separated addresses).",
                     required=True, example=["ops@example.org"]),
        "queues": Option(dict, "Extra recipients per tier or queue name (address or list of addresses).",
                         default={}, example={"L2": "sysadmins@example.org", "L3": ["oncall@example.org"]}),
        "domain": Option(str, "Domain of the Message-IDs (default: the domain of 'from').", example="example.org"),
        "cafile": Option(str, "CA certificate file (PEM) that signed the server's certificate.",
                         example="/etc/ssl/certs/internal-ca.pem"),
        "verify_tls": Option(bool, "Verify the server's TLS certificate and host name.", default=True, example=True),
    }  # fmt: skip

    def __init__(self, name: str, options: Mapping[str, Any], timeout: float) -> None:
        """Keep the settings (defaults applied, addresses parsed); no network I/O happens here."""
        from email.utils import parseaddr

        self.name = name
        self.timeout = float(timeout)
        self.host = str(options.get("host") or "")
        tls = str(options.get("tls") or "none").lower()
        if options.get("starttls") and tls == "none":
            tls = "starttls"
        self.tls = tls
        default_port = 465 if tls == "implicit" else 25
        port = options.get("port")
        self.port = int(port) if isinstance(port, int) and not isinstance(port, bool) else default_port
        self.user = str(options["user"]) if options.get("user") else None
        self.password = str(options["password"]) if options.get("password") else None
        self.sender = str(options.get("from") or "")
        self.recipients = _addresses(options.get("to"))
        raw_queues = options.get("queues")
        self.queues: dict[str, list[str]] = (
            {str(queue): _addresses(value) for queue, value in raw_queues.items()}
            if isinstance(raw_queues, Mapping)
            else {}
        )
        sender_domain = parseaddr(self.sender)[1].rpartition("@")[2]
        self.domain = str(options.get("domain") or sender_domain or socket.gethostname() or "localhost")
        self.cafile = str(options["cafile"]) if options.get("cafile") else None
        verify = options.get("verify_tls")
        self.verify_tls = True if verify is None else bool(verify)

    # The protocol

    def find(self, key: str) -> str | None:
        """Always None: a mailbox cannot be asked for the open ticket of ``key``."""
        return None

    def open(self, message: TicketMessage) -> str:
        """Send the opening mail; returns its Message-ID (the ticket's reference).

        Raises BackendUnavailable when the server cannot be reached or answers 4xx, BackendRejected
        when it refuses the login, the sender or the recipients (5xx) or the settings are incomplete.
        """
        thread = self.thread_id(message)
        self._send(self._mail(message, thread, reply=False))
        return thread

    def comment(self, ref: str, message: TicketMessage) -> None:
        """Send ``message.body`` as a reply to the opening mail ``ref``; raises as :meth:`open`."""
        self._send(self._mail(message, self._thread(ref, message), reply=True))

    def escalate(self, ref: str, message: TicketMessage) -> None:
        """Send the escalation as a reply, also to the new tier's queue; raises as :meth:`open`."""
        self._send(self._mail(message, self._thread(ref, message), reply=True))

    def resolve(self, ref: str, message: TicketMessage) -> None:
        """Send the resolution note as a reply to ``ref``; raises as :meth:`open`."""
        self._send(self._mail(message, self._thread(ref, message), reply=True))

    def reopen(self, ref: str, message: TicketMessage) -> None:
        """Send the reopening note as a reply to ``ref``; raises as :meth:`open`."""
        self._send(self._mail(message, self._thread(ref, message), reply=True))

    def delivered(self, ref: str, message: TicketMessage) -> bool:
        """Always False: sent mail cannot be looked up (a re-send reuses the mail's Message-ID)."""
        return False

    # Building mails

    def thread_id(self, message: TicketMessage) -> str:
        """The Message-ID of the ticket's opening mail: the same for every send of the same ticket."""
        digest = hashlib.sha256(f"{message.key}\0{message.ticket_id}".encode()).hexdigest()[:16]
        return f"<maint.{message.ticket_id}.{digest}@{self.domain}>"

    def event_id(self, message: TicketMessage) -> str:
        """The Message-ID of a later action's mail: the same on every re-send of that action."""
        digest = hashlib.sha256(f"{message.key}\0{message.ticket_id}\0{message.event_id}".encode()).hexdigest()[:16]
        return f"<maint.{message.ticket_id}.{message.event_id}.{digest}@{self.domain}>"

    def recipients_for(self, message: TicketMessage) -> list[str]:
        """``to`` plus the queue's addresses (routing queue, else the tier's); raises BackendRejected.

        A routing queue that is neither a name in ``queues`` nor contains an address is a setting to fix.
        """
        extra: list[str] = []
        if message.queue:
            if message.queue in self.queues:
                extra = self.queues[message.queue]
            elif "@" in message.queue:
                extra = _addresses(message.queue)
            else:
                known = ", ".join(sorted(self.queues)) or "none"
                raise BackendRejected(
                    f"{self._system}: queue '{message.queue}' is neither an address nor a name in queues "
                    f"(known: {known}); add it to queues or route to an address"
                )
        else:
            extra = self.queues.get(message.tier, [])
        seen: dict[str, None] = {}
        for address in [*self.recipients, *extra]:
            seen.setdefault(address, None)
        return list(seen)

    def _thread(self, ref: str, message: TicketMessage) -> str:
        # A reference that is not a Message-ID (a ticket opened before this backend was configured)
        # still threads: the opening mail's Message-ID is computed, not stored.
        ref = ref.strip()
        if ref.startswith("<") and ref.endswith(">") and "@" in ref:
            return ref
        return self.thread_id(message)

    def _mail(self, message: TicketMessage, thread: str, *, reply: bool) -> EmailMessage:
        from email.message import EmailMessage
        from email.utils import formatdate

        recipients = self.recipients_for(message)
        mail = EmailMessage()
        title = " ".join(message.subject.split())
        subject = f"[maint {message.tier}] {title}"
        mail["Subject"] = f"Re: {subject}" if reply else subject
        mail["From"] = self.sender
        mail["To"] = ", ".join(recipients)
        mail["Date"] = formatdate(localtime=True)
        if reply:
            mail["Message-ID"] = self.event_id(message)
            mail["In-Reply-To"] = thread
            mail["References"] = thread
        else:
            mail["Message-ID"] = thread
        # Automatic mail: no out-of-office replies or auto-responder loops back to the sender.
        mail["Auto-Submitted"] = "auto-generated"
        mail["X-Auto-Response-Suppress"] = "All"
        mail["X-Maint-Key"] = message.key
        mail["X-Maint-Ticket"] = str(message.ticket_id)
        mail["X-Maint-Event"] = message.marker
        mail["X-Maint-Action"] = message.action
        mail["X-Maint-Tier"] = message.tier
        mail["X-Maint-Severity"] = message.severity
        mail["X-Maint-Status"] = message.status
        details = [
            f"maint ticket #{message.ticket_id} ({message.key}): {message.action}, status {message.status}, "
            f"tier {message.tier}, severity {message.severity}"
        ]
        if message.flapping:
            details.append(f"flapping: {message.occurrences} occurrences")
        if message.run_id:
            details.append(f"run {message.run_id}")
        body = message.body.rstrip("\n")
        mail.set_content(f"{body}\n\n-- \n" + "\n".join(details) + f"\n{message.marker}\n")
        return mail

    # Sending

    @property
    def _system(self) -> str:
        return f"email backend '{self.name}'"

    def _where(self) -> str:
        return f"{self.host}:{self.port}"

    def _tls_context(self) -> ssl.SSLContext:
        import ssl

        try:
            context = ssl.create_default_context(cafile=self.cafile)
        except (OSError, ssl.SSLError) as error:
            raise BackendRejected(f"{self._system}: cannot load cafile {self.cafile}: {error}") from None
        if not self.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _send(self, mail: EmailMessage) -> None:
        import smtplib
        import ssl

        if not self.host or not self.sender or not self.recipients:
            raise BackendRejected(f"{self._system}: host, from and to must all be set")
        if self.tls not in TLS_MODES:
            raise BackendRejected(f"{self._system}: tls is '{self.tls}'; use one of {', '.join(TLS_MODES)}")
        if (self.user is None) != (self.password is None):
            raise BackendRejected(f"{self._system}: user and password go together; set both or neither")
        context = self._tls_context() if self.tls != "none" else None
        # EHLO with the plain host name: getfqdn() may wait on DNS, and a mail must fail within the timeout.
        local_name = socket.gethostname() or "localhost"
        recipients = [address for _, address in _parsed(mail.get_all("To") or [])]
        client: smtplib.SMTP | None = None
        accepted = False
        step = "connect"
        try:
            # smtplib closes the socket itself when the connection or the greeting fails.
            if self.tls == "implicit":
                client = smtplib.SMTP_SSL(
                    self.host, self.port, local_hostname=local_name, timeout=self.timeout, context=context
                )
            else:
                client = smtplib.SMTP(self.host, self.port, local_hostname=local_name, timeout=self.timeout)
            client.ehlo()
            if self.tls == "starttls":
                step = "starttls"
                client.starttls(context=context)
                client.ehlo()
            if self.user is not None and self.password is not None:
                step = "login"
                client.login(self.user, self.password)
            step = "send"
            refused = client.send_message(mail, to_addrs=recipients)
            accepted = True
        except smtplib.SMTPNotSupportedError:
            raise BackendRejected(self._unsupported(step)) from None
        except smtplib.SMTPRecipientsRefused as error:
            raise self._refused(error.recipients) from None
        except smtplib.SMTPSenderRefused as error:
            said = self._hide(f"{error.smtp_code} {_text(error.smtp_error)}")
            if error.smtp_code < 500:
                raise BackendUnavailable(f"{self._system}: {self._where()} deferred the sender ({said})") from None
            raise BackendRejected(f"{self._system}: {self._where()} refused the sender ({said}): check from") from None
        except smtplib.SMTPResponseException as error:
            raise self._response_error(step, error.smtp_code, error.smtp_error) from None
        except ssl.SSLCertVerificationError as error:
            raise BackendRejected(
                f"{self._system}: the TLS certificate of {self._where()} is not trusted "
                f"({error.verify_message}): set cafile to the CA that signed it, or verify_tls: false"
            ) from None
        except ssl.SSLError as error:
            raise BackendRejected(
                f"{self._system}: TLS with {self._where()} failed ({error.reason or error}): "
                "check tls (starttls or implicit) and port"
            ) from None
        except smtplib.SMTPServerDisconnected as error:
            # smtplib reports a read timeout as a disconnection; say which of the two it was.
            if "timed out" in str(error):
                raise BackendUnavailable(
                    f"{self._system}: no answer from {self._where()} within {self.timeout:g}s ({step})"
                ) from None
            raise BackendUnavailable(f"{self._system}: {self._where()} closed the connection ({step})") from None
        except smtplib.SMTPException as error:
            # smtplib's own complaints, e.g. no AUTH mechanism in common with the server.
            raise BackendRejected(self._hide(f"{self._system}: {step} with {self._where()} failed: {error}")) from None
        except TimeoutError:
            raise BackendUnavailable(
                f"{self._system}: no answer from {self._where()} within {self.timeout:g}s ({step})"
            ) from None
        except OSError as error:
            reason = error.strerror or type(error).__name__
            raise BackendUnavailable(f"{self._system}: cannot reach {self._where()}: {reason}") from None
        finally:
            if client is not None and not accepted:
                client.close()
        # The mail is accepted: a failing QUIT must not make the outbox send it again.
        assert client is not None
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()
        if refused:
            log.warning(
                "%s: %s refused %s; the mail went to the other recipients",
                self._system,
                self._where(),
                ", ".join(f"{address} ({code} {_text(reply)})" for address, (code, reply) in refused.items()),
            )

    def _unsupported(self, step: str) -> str:
        if step == "starttls":
            return (
                f"{self._system}: {self._where()} does not offer STARTTLS: use tls: none or implicit, or another port"
            )
        if step == "login":
            return f"{self._system}: {self._where()} does not offer AUTH" + (
                " before STARTTLS: set tls: starttls" if self.tls == "none" else ": remove user and password"
            )
        return f"{self._system}: {self._where()} does not support a feature this mail needs ({step})"

    def _refused(self, recipients: Mapping[str, tuple[int, bytes]]) -> BackendUnavailable | BackendRejected:
        listed = ", ".join(f"{address} ({code} {_text(reply)})" for address, (code, reply) in recipients.items())
        if all(400 <= code < 500 for code, _ in recipients.values()):
            return BackendUnavailable(f"{self._system}: {self._where()} deferred the recipients: {listed}")
        return BackendRejected(
            self._hide(f"{self._system}: {self._where()} refused the recipients: {listed}; check to and queues")
        )

    def _response_error(self, step: str, code: int, reply: bytes | str) -> BackendUnavailable | BackendRejected:
        said = self._hide(f"{code} {_text(reply)}")
        if step == "login" and code in (530, 534, 535):
            return BackendRejected(
                f"{self._system}: {self._where()} refused the login of user '{self.user}' ({said}): "
                "check user and password"
            )
        if code < 500:
            return BackendUnavailable(f"{self._system}: {self._where()} answered {said} ({step}): try again later")
        if code == 530:
            hint = "the server wants STARTTLS or a login first: set tls and user/password"
        elif step == "send":
            hint = "check from, to and the server's relay rules for this client"
        else:
            hint = "check the SMTP settings"
        return BackendRejected(f"{self._system}: {self._where()} refused ({step}): {said}: {hint}")

    def _hide(self, text: str) -> str:
        # Servers sometimes echo what they got; the password must not reach a log or the store.
        if not self.password:
            return text
        import base64

        forms = [self.password, base64.b64encode(self.password.encode()).decode()]
        if self.user:
            forms.append(base64.b64encode(f"\0{self.user}\0{self.password}".encode()).decode())
        return mask(text, forms)


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())


def _parsed(values: Iterable[str]) -> list[tuple[str, str]]:
    from email.utils import getaddresses

    return [(name, address) for name, address in getaddresses([str(value) for value in values]) if address]


def _addresses(value: Any) -> list[str]:
    """The addresses in a list or a comma-separated string (display names kept), empty for anything else."""
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, list | tuple):
        items = [str(item) for item in value]
    else:
        return []
    from email.utils import formataddr

    return [formataddr((name, address)) if name else address for name, address in _parsed(items)]
