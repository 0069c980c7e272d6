"""A real SMTP server (aiosmtpd) on loopback for tests of the email ticket backend.

:class:`SMTPServer` listens on 127.0.0.1 on a free port and keeps every mail it accepts, parsed, in
``messages``. Optionally it requires STARTTLS (or speaks TLS from the start) with a self-signed
certificate made for the test (``cafile`` is its PEM file, for clients to trust), and AUTH LOGIN/PLAIN
with ``user``/``password``. Recipients in ``refuse`` are answered 550, those in ``defer`` 451.
``stop()`` closes the port (connection refused), ``start()`` opens it again on the same port.

Use it from a fixture::

    with SMTPServer(tmp_path, tls="starttls", user="maint", password="s3cret") as smtp:
        ... smtp.host, smtp.port, smtp.cafile, smtp.messages ...
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import threading
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ReceivedMail:
    """One accepted mail: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    authenticated_as: str | None
    tls: bool

    def text(self) -> str:
        """The plain-text body."""
        part = self.message.get_body(preferencelist=("plain",))
        return cast(EmailMessage, part).get_content() if part is not None else ""


def make_certificate(directory: Path, name: str = HOST) -> tuple[Path, Path]:
    """Write a self-signed certificate for ``name`` (an IP address or host name) and its key.

    Returns ``(certificate, key)`` PEM paths; the certificate is also the CA file a client trusts.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    try:
        alternative: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        alternative = x509.DNSName(name)
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([alternative]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    certificate_path = directory / "smtp-cert.pem"
    key_path = directory / "smtp-key.pem"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return certificate_path, key_path


class _Handler:
    """aiosmtpd handler: refuses or defers listed recipients, keeps accepted mails."""

    def __init__(self, server: SMTPServer) -> None:
        self.server = server

    async def handle_RCPT(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower() in self.server.refuse:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        if address.lower() in self.server.defer:
            return f"451 4.3.0 <{address}>: try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = message_from_bytes(content, policy=policy.default)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        tls = session.ssl is not None or self.server.tls == "implicit"
        mail = ReceivedMail(str(envelope.mail_from), list(envelope.rcpt_tos), message, login, tls)
        with self.server.lock:
            self.server.messages.append(mail)
        return "250 2.0.0 Message accepted for delivery"


class _Authenticator:
    """Accepts exactly one user name and password (LOGIN and PLAIN)."""

    def __init__(self, user: str, password: str) -> None:
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, smtp: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        good = isinstance(data, LoginPassword) and (data.login, data.password) == (self.user, self.password)
        if good:
            return AuthResult(success=True, auth_data=data)
        # handled=False: aiosmtpd then answers 535 itself.
        return AuthResult(success=False, handled=False)


class _Controller(Controller):
    """A Controller that may bind port 0: it learns the real port before its self-test connection."""

    def _trigger_server(self) -> None:
        if isinstance(self.server, asyncio.Server) and self.port == 0:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class SMTPServer:
    """A real SMTP server on 127.0.0.1 with TLS and AUTH options, a mail log and start/stop.

    ``tls`` is None (plain SMTP), ``"starttls"`` (STARTTLS offered and required before MAIL) or
    ``"implicit"`` (TLS from the first byte). With ``user`` and ``password`` set, AUTH is required.
    """

    def __init__(
        self,
        directory: Path,
        *,
        tls: str | None = None,
        user: str | None = None,
        password: str | None = None,
        port: int = 0,
    ) -> None:
        if tls not in (None, "starttls", "implicit"):
            raise ValueError(f"tls must be None, 'starttls' or 'implicit', not {tls!r}")
        if (user is None) != (password is None):
            raise ValueError("give both user and password, or neither")
        self.directory = directory
        self.tls = tls
        self.user = user
        self.password = password
        self.host = HOST
        self.port = port
        self.messages: list[ReceivedMail] = []
        self.refuse: set[str] = set()
        self.defer: set[str] = set()
        self.lock = threading.Lock()
        self.cafile: Path | None = None
        self._context: ssl.SSLContext | None = None
        self._controller: _Controller | None = None
        if tls is not None:
            certificate, key = make_certificate(directory)
            self.cafile = certificate
            self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._context.load_cert_chain(certificate, key)

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._controller is not None

    def start(self) -> SMTPServer:
        """Listen (on the same port again after a stop) and serve in a background thread."""
        if self._controller is not None:
            return self
        parameters: dict[str, Any] = {"hostname": HOST, "port": self.port, "server_hostname": "smtp.test"}
        if self.tls == "starttls":
            parameters.update(tls_context=self._context, require_starttls=True)
        elif self.tls == "implicit":
            parameters.update(ssl_context=self._context)
        if self.user is not None and self.password is not None:
            parameters.update(
                authenticator=_Authenticator(self.user, self.password),
                auth_required=True,
                # aiosmtpd knows only of STARTTLS, not of TLS from the first byte; a plain test server
                # on loopback may take AUTH in the clear.
                auth_require_tls=self.tls == "starttls",
            )
        controller = _Controller(_Handler(self), **parameters)
        controller.start()
        self.port = controller.port
        self._controller = controller
        return self

    def stop(self) -> None:
        """Close the listening socket: new connections are refused until :meth:`start`."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def clear(self) -> None:
        """Forget the mails received so far."""
        with self.lock:
            self.messages.clear()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        """The received mails once there are at least ``count`` (for senders in another process).

        Raises TimeoutError when fewer arrive within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.messages)} mail(s) arrived, expected {count}")
            time.sleep(0.05)

    def __enter__(self) -> SMTPServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
