"""The public functions. Each one is a no-op before :func:`init` and never raises."""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable, Mapping
from typing import Any

from shiftright import hooks, stack
from shiftright.client import Client, after_fork_in_child
from shiftright.config import Config, from_environment
from shiftright.context import current
from shiftright.flags import runtime as flag_runtime
from shiftright.health import HealthCollector

_client: Client | None = None
_SEEN = "__shiftright_captured__"


def init(
    app: str, env: str, release: str = "", kafka: str = "127.0.0.1:9092", **options: Any
) -> Client:
    """Start the SDK: ``shiftright.init(app="checkout", env="prod", release="1.4.2",
    kafka="broker:9092")``. Options are the fields of :class:`shiftright.Config`.
    Calling it again replaces the previous client (after flushing it). The disk spill's
    options can also come from ``SHIFTRIGHT_SPILL_DIR``, ``SHIFTRIGHT_SPILL_MAX_BYTES`` and
    ``SHIFTRIGHT_SPILL_AFTER``."""
    global _client
    options = {**from_environment(os.environ), **options}
    config = Config(app=app, env=env, release=release, kafka=kafka, **options)
    if _client is not None:
        close()
    client = Client(config)
    if config.health_interval > 0:
        client.on_start(lambda c: HealthCollector(c).start())
    if config.hooks:
        hooks.install(_capture, lambda: client.flush(config.shutdown_timeout))
    if config.logging_level is not None:
        message = _message if config.log_messages else None
        hooks.install_logging(hooks.LoggingHandler(_capture, message, config.logging_level))
    _client = client
    return client


def get_client() -> Client | None:
    return _client


def track(
    name: str,
    user_id: Any = None,
    customer_id: Any = None,
    duration_ms: float | None = None,
    value: float | None = None,
    **attributes: Any,
) -> None:
    """A usage event: ``track("checkout.submit", user_id=u.id, duration_ms=42, plan="pro")``."""
    client = _client
    if client is None:
        return
    try:  # noqa: SIM105 - free on the hot path, unlike contextlib.suppress
        client.enqueue(
            "usage",
            {
                "name": name,
                "user_id": user_id,
                "customer_id": customer_id,
                "duration_ms": duration_ms,
                "value": value,
                "attributes": attributes,
            },
        )
    except Exception:
        pass


def request(
    route: str, method: str, status_code: int, duration_ms: float, **attributes: Any
) -> None:
    """A usage event for one served request (what the middleware sends)."""
    client = _client
    if client is None:
        return
    try:  # noqa: SIM105 - free on the hot path, unlike contextlib.suppress
        client.enqueue(
            "usage",
            {
                "name": f"{method} {route or '<unmatched>'}",
                "route": route,
                "method": method,
                "status_code": status_code,
                "duration_ms": duration_ms,
                "attributes": attributes,
            },
        )
    except Exception:
        pass


def gauge(name: str, value: float) -> None:
    """A value sent with the next health snapshot as ``app.<name>``: ``gauge("sessions.open", 318)``."""
    client = _client
    if client is not None:
        client.gauges[_gauge_name(name)] = value


def register_gauge(name: str, callback: Callable[[], float]) -> None:
    """``callback()`` is read on the health thread at every snapshot (errors are ignored)."""
    client = _client
    if client is not None:
        client.gauge_callbacks[_gauge_name(name)] = callback


def _gauge_name(name: str) -> str:
    return name if name.startswith(("app.", "system.", "process.")) else f"app.{name}"


def capture_exception(
    error: BaseException | None = None, level: str = "error", **attributes: Any
) -> None:
    """An error event for ``error`` (default: the exception being handled), handled=True."""
    if error is None:
        import sys

        error = sys.exc_info()[1]
        if error is None:
            return
    _capture(error, handled=True, level=level, attributes=attributes)


def capture_message(message: str, level: str = "info", **attributes: Any) -> None:
    """An error event without an exception (type ``Message``), with the caller's stack."""
    _message(message, level=level, attributes=attributes)


def change(
    change_type: str,
    name: str,
    value: str = "",
    previous_value: str = "",
    actor: str = "",
    description: str = "",
) -> None:
    """A change event: ``change("flag", "new-checkout", "on", previous_value="off")``."""
    client = _client
    if client is None:
        return
    try:  # noqa: SIM105 - free on the hot path, unlike contextlib.suppress
        client.enqueue(
            "change",
            {
                "change_type": change_type,
                "name": name,
                "value": value,
                "previous_value": previous_value,
                "actor": actor,
                "description": description,
            },
        )
    except Exception:
        pass


def flag(name: str, default: Any = False, **context: Any) -> Any:
    """The value of a flag for the current scope's user and customer, evaluated here
    (no I/O): ``if shiftright.flag("new-checkout", False): ...``. ``default`` is returned
    when the flag is off, unknown, of another type, or before the flags are known;
    ``user_id=``, ``customer_id=`` and attributes evaluate for someone else."""
    client = _client
    if client is None:
        return default
    try:
        store = flag_runtime.store_of(client)
        if context:
            value, variant, reason, error = store.evaluate(name, *_who(context))
        else:
            scope = current.get()
            value, variant, reason, error = store.evaluate(
                name, scope.user_id, scope.customer_id, scope.attributes
            )
        if error:
            return default
        flag_runtime.record(name, variant)
        if reason == "DISABLED" or not _same_type(value, default):
            return default
        return value
    except Exception:
        return default


def _who(context: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
    scope = current.get()
    user = context.pop("user_id", None)
    customer = context.pop("customer_id", None)
    attributes = dict(scope.attributes, **{k: str(v) for k, v in context.items()})
    return (
        scope.user_id if user is None else str(user),
        scope.customer_id if customer is None else str(customer),
        attributes,
    )


def _same_type(value: Any, default: Any) -> bool:
    if default is None or type(value) is type(default):
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return False
    return isinstance(default, int | float) and isinstance(value, int | float)


def flush(timeout: float = 2.0) -> int:
    """Wait up to ``timeout`` s for delivery; return how many events are not yet delivered."""
    client = _client
    if client is None:
        return 0
    try:
        return client.flush(timeout)
    except Exception:
        return 0


def close(timeout: float | None = None) -> int:
    """Flush, stop the SDK's threads and remove its hooks; returns events left undelivered."""
    global _client
    client, _client = _client, None
    hooks.uninstall()
    flag_runtime.stop()
    if client is None:
        return 0
    try:
        return client.close(timeout)
    except Exception:
        return 0


def stats() -> dict[str, Any]:
    """Counters: queued, sent, in_flight, delivered, failed by Kafka error, dropped by reason."""
    client = _client
    return client.stats() if client is not None else {}


def _capture(
    error: BaseException,
    handled: bool = True,
    level: str = "error",
    mechanism: str = "",
    attributes: Mapping[str, Any] | None = None,
    route: str = "",
) -> None:
    client = _client
    if client is None:
        return
    try:
        if getattr(error, _SEEN, False):
            return
        try:  # noqa: SIM105 - keeps the reason comment next to the except
            setattr(error, _SEEN, True)
        except Exception:
            pass  # some C exceptions refuse attributes; they may be reported twice
        fields: dict[str, Any] = {
            "raw": stack.from_exception(error),
            "handled": handled,
            "level": level,
            "route": route,
        }
        if attributes or mechanism:
            fields["attributes"] = dict(
                attributes or {}, **({"mechanism": mechanism} if mechanism else {})
            )
        client.enqueue("error", fields)
    except Exception:
        pass


def _message(
    message: str, level: str = "info", attributes: Mapping[str, Any] | None = None
) -> None:
    client = _client
    if client is None:
        return
    try:
        raw = stack.RawError("Message", str(message)[: stack.MAX_MESSAGE], stack.from_stack(2), [])
        client.enqueue(
            "error",
            {"raw": raw, "handled": True, "level": level, "attributes": dict(attributes or {})},
        )
    except Exception:
        pass


def _at_exit() -> None:
    if _client is not None:
        close()


atexit.register(_at_exit)
os.register_at_fork(after_in_child=after_fork_in_child)
