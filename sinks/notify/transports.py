"""How a notification leaves: e-mail over SMTP, a webhook POST (Alertmanager v4 body), a
Slack incoming-webhook POST. A transport either returns (delivered) or raises
:class:`DeliveryError`, saying whether trying again can help."""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any, Protocol

from shiftright_server.infra.settings import AlertingSettings
from shiftright_server.sinks.notify.model import ACTION, Delivery, utc_now
from shiftright_server.sinks.notify.payloads import (
    alertmanager_payload,
    email_message,
    slack_payload,
)

USER_AGENT = "shiftright-notifier/1"


class DeliveryError(Exception):
    """A failed attempt. ``permanent``: retrying cannot help (a 4xx answer, a refused
    address); ``retry_after``: the receiver asked to wait this many seconds."""

    def __init__(self, message: str, permanent: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class Transport(Protocol):
    def send(self, delivery: Delivery) -> None: ...


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 10.0


class SmtpTransport:
    """One SMTP session per message (alerts are few; a kept-open connection would be
    dropped by most servers between them). The Message-ID is derived from the
    idempotency key, so a copy resent after a crash is recognisably the same message."""

    def __init__(
        self,
        config: SmtpConfig,
        external_url: str,
        unsubscribe: Callable[[str], str | None] = lambda _: None,
    ) -> None:
        self.config, self.external_url, self.unsubscribe = config, external_url, unsubscribe

    def send(self, delivery: Delivery) -> None:
        c = self.config
        leave = self.unsubscribe(delivery.notification.subscription) or ""
        msg = email_message(delivery.notification, self.external_url, c.sender, leave)
        if not [addr for _, addr in getaddresses([delivery.notification.to]) if addr]:
            raise DeliveryError(f"no e-mail address in {delivery.notification.to!r}", True)
        try:
            with smtplib.SMTP(c.host, c.port, timeout=c.timeout) as smtp:
                if c.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if c.user:
                    smtp.login(c.user, c.password or "")
                refused = smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(
                f"recipients refused: {_refusals(exc.recipients)}",
                permanent=all(code >= 500 for code in codes),
            ) from exc
        except smtplib.SMTPResponseException as exc:
            text = (
                exc.smtp_error.decode(errors="replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            raise DeliveryError(
                f"SMTP {exc.smtp_code} {text}".strip(), permanent=exc.smtp_code >= 500
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:  # connection refused, timeout, TLS
            raise DeliveryError(f"SMTP {c.host}:{c.port}: {_describe(exc)}") from exc
        if refused:  # some recipients took it: delivered, the rest noted in the log
            raise PartialDelivery(f"recipients refused: {_refusals(refused)}")


class PartialDelivery(Exception):
    """Delivered to some recipients only; counted as delivered, with the refusals noted."""


def _refusals(refused: Mapping[str, Any]) -> str:
    out = []
    for addr, (code, text) in refused.items():
        reason = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
        out.append(f"{addr} ({code} {reason})")
    return "; ".join(out)


class HttpTransport:
    """POST a JSON body: the Alertmanager webhook v4 body for webhooks and action calls,
    the Slack message for Slack. Headers carry the idempotency key, so a receiver can
    drop a redelivery."""

    def __init__(self, external_url: str, timeout: float = 10.0, max_alerts: int = 0) -> None:
        self.external_url, self.timeout, self.max_alerts = external_url, timeout, max_alerts

    def body(self, delivery: Delivery) -> dict[str, Any]:
        n = delivery.notification
        if delivery.channel == "slack":
            return slack_payload(n, self.external_url)
        return alertmanager_payload(n, self.external_url, self.max_alerts)

    def send(self, delivery: Delivery) -> None:
        data = json.dumps(self.body(delivery), separators=(",", ":")).encode()
        request = urllib.request.Request(
            delivery.notification.to,
            data=data,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": delivery.key,
                "User-Agent": USER_AGENT,
            },
        )
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                response.read(64 * 1024)
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode(errors="replace").strip() if exc.fp else ""
            raise http_error(exc.code, str(exc.reason), detail, exc.headers) from exc
        except OSError as exc:  # URLError, timeouts, connection resets
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise DeliveryError(f"POST failed: {_describe(reason)}") from exc
        except ValueError as exc:  # not a URL urllib can send to
            raise DeliveryError(f"bad URL: {exc}", permanent=True) from exc


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a hop: urllib would re-send a POST as a bodiless GET."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def http_error(code: int, reason: str, detail: str = "", headers: Any = None) -> DeliveryError:
    """A non-2xx answer: 408, 429 and 5xx are worth retrying (after ``Retry-After`` if
    given); any other 4xx — and a 3xx, which is not followed — is permanent."""
    retryable = code in (408, 429) or code >= 500
    message = f"HTTP {code} {reason}".strip() + (f": {detail}" if detail else "")
    return DeliveryError(message, permanent=not retryable, retry_after=_retry_after(headers))


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - utc_now()).total_seconds())
    except (TypeError, ValueError):
        return None


def _describe(exc: object) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if isinstance(exc, BaseException) else str(exc)


def build_transports(
    settings: AlertingSettings, unsubscribe: Callable[[str], str | None] = lambda _: None
) -> dict[str, Transport]:
    smtp = SmtpTransport(
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            user=settings.smtp_user,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_seconds,
        ),
        settings.external_url,
        unsubscribe,
    )
    http = HttpTransport(
        settings.external_url, settings.webhook_timeout_seconds, settings.webhook_max_alerts
    )
    return {"email": smtp, "webhook": http, "slack": http, ACTION: http}
