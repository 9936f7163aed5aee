"""What the gateway answers when it does not accept a request.

::

    GatewayError                 an HTTP answer other than 2xx, with a reason for the metrics
    ├── Rejected                 4xx: the client must change the request (do not retry as is)
    │     400 malformed body · 401 no/unknown/revoked key · 403 event for another app/env
    │     404/405 · 413 too large · 415 unsupported media type · 422 invalid events
    └── Overloaded               retry later, after Retry-After seconds
          ├── Backpressure       429: Kafka's queue (our bound on unacknowledged events) is full
          └── KafkaUnavailable   503: the broker is unreachable or did not acknowledge in time
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem in a request body, located by ``path`` (e.g. ``[3].frames[0].lineno``)."""

    path: str
    reason: str
    message: str
    index: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "index": self.index,
            "reason": self.reason,
            "message": self.message,
        }


@dataclass(eq=False)
class GatewayError(Exception):
    status: int
    reason: str
    message: str
    errors: list[FieldError] = field(default_factory=list)
    retry_after: int | None = None

    def __str__(self) -> str:
        return f"{self.status} {self.reason}: {self.message}"

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.reason, "message": self.message}
        if self.errors:
            out["errors"] = [e.as_json() for e in self.errors]
        return out

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


class Rejected(GatewayError):
    pass


class Overloaded(GatewayError):
    pass


class Backpressure(Overloaded):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(429, "backpressure", message, retry_after=retry_after)


class KafkaUnavailable(Overloaded):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(503, "kafka_unavailable", message, retry_after=retry_after)
