"""The notifier as its tests run it: a real SMTP server (aiosmtpd) that requires AUTH, and
``python -m shiftright_server.sinks.notify`` as a process whose JSON log lines the tests
read (``notify_config`` says which subscriptions it routes by)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from typing import Any

from shiftright_server.infra.settings import AlertingSettings, Settings, to_env

from tests.integration.conftest import wait_for
from tests.integration.warehouse_fixture import free_port

DASH = "http://dash.example:8080"
SMTP_USER, SMTP_PASSWORD = "alerts", "s3cret-pw"


class Mailbox:
    """aiosmtpd on 127.0.0.1 that requires AUTH (over plain text: a test server)."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.messages: list[Message] = []
        self.logins: list[str] = []
        mailbox = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                mailbox.messages.append(message_from_bytes(envelope.content))
                return "250 OK"

        def authenticate(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> Any:
            ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
                SMTP_USER.encode(),
                SMTP_PASSWORD.encode(),
            )
            if ok:
                mailbox.logins.append(data.login.decode())
            return AuthResult(success=ok)

        self.port = free_port()
        self.controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            authenticator=authenticate,
            auth_require_tls=False,
            auth_required=True,
        )
        self.controller.start()

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]

    def to(self, address: str) -> list[Message]:
        """The messages addressed to ``address``."""
        return [m for m in list(self.messages) if m["To"] == address]

    def stop(self) -> None:
        self.controller.stop()


class NotifierProcess:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.log_path = settings.resolved_state_dir() / "logs" / "notifier.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, **to_env(self.settings), "SHIFTRIGHT_LOG_JSON": "true"}
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "shiftright_server.sinks.notify"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill9(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, self.log()
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def events(self, name: str) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                if doc.get("event") == name:
                    out.append(doc)
        return out

    def log(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-40:])


def text(mail: Message) -> str:
    """A message's plain-text body."""
    for part in mail.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes), payload
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError(f"no text/plain part in {mail['Subject']}")


def notifier_settings(settings: Settings, mailbox: Mailbox | None, **extra: Any) -> Settings:
    alerting = AlertingSettings(
        smtp_host="127.0.0.1",
        smtp_port=mailbox.port if mailbox else 1,
        smtp_from="shiftright@example.com",
        smtp_user=SMTP_USER,
        smtp_password=SMTP_PASSWORD,
        external_url=DASH,
        retry_initial_seconds=0.2,
        retry_max_seconds=1.0,
    )
    alerting = alerting.model_copy(update=extra)
    return settings.model_copy(update={"alerting": alerting})


@contextlib.contextmanager
def running(settings: Settings) -> Iterator[NotifierProcess]:
    proc = NotifierProcess(settings)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def wait_configured(proc: NotifierProcess, **want: int) -> None:
    """Until the notifier logs a configuration with these counts (subscriptions=…)."""
    wait_for(
        lambda: any(
            all(e.get(k) == v for k, v in want.items()) for e in proc.events("notify_config")
        ),
        60,
        lambda: f"notify_config {want}:\n{proc.log()}",
        interval=0.1,
    )
