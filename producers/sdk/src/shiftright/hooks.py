"""Where unhandled exceptions surface: sys.excepthook, threading.excepthook, the asyncio
loop's exception handler and the logging module. Each hook reports, then hands over to
whatever was installed before it, and is removed again by :func:`uninstall`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

Capture = Callable[..., None]

_installed: list[Callable[[], None]] = []

LEVELS = {logging.CRITICAL: "fatal", logging.ERROR: "error", logging.WARNING: "warning"}


def install(capture: Capture, on_fatal: Callable[[], object]) -> None:
    """sys.excepthook and threading.excepthook (and the running loop's handler, if any)."""
    previous_sys = sys.excepthook

    def sys_hook(
        etype: type[BaseException], value: BaseException, tb: TracebackType | None
    ) -> None:
        if not issubclass(etype, KeyboardInterrupt):
            capture(value, handled=False, level="fatal", mechanism="excepthook")
            on_fatal()
        previous_sys(etype, value, tb)

    previous_thread = threading.excepthook

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None and not issubclass(args.exc_type, SystemExit):
            name = args.thread.name if args.thread is not None else ""
            capture(
                args.exc_value,
                handled=False,
                mechanism="threading",
                attributes={"thread.name": name},
            )
        previous_thread(args)

    sys.excepthook = sys_hook
    threading.excepthook = thread_hook

    def restore() -> None:
        if sys.excepthook is sys_hook:
            sys.excepthook = previous_sys
        if threading.excepthook is thread_hook:
            threading.excepthook = previous_thread

    _installed.append(restore)
    try:  # noqa: SIM105 - keeps the reason comment next to the except
        install_loop_handler(capture, asyncio.get_running_loop())
    except RuntimeError:
        pass  # no loop running now; the ASGI middleware installs it on the first request


_loops: set[int] = set()


def install_loop_handler(capture: Capture, loop: asyncio.AbstractEventLoop) -> None:
    """Report exceptions nobody retrieved from tasks and callbacks of ``loop``."""
    if id(loop) in _loops:
        return
    _loops.add(id(loop))
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, BaseException):
            capture(
                exc,
                handled=False,
                mechanism="asyncio",
                attributes={"asyncio.message": str(context.get("message", ""))},
            )
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)

    def restore() -> None:
        _loops.discard(id(loop))
        if loop.get_exception_handler() is handler:
            loop.set_exception_handler(previous)

    _installed.append(restore)


class LoggingHandler(logging.Handler):
    """ERROR+ records with exc_info become error events (and, optionally, those without)."""

    def __init__(
        self, capture: Capture, message: Callable[..., None] | None, level: int = logging.ERROR
    ) -> None:
        super().__init__(level)
        self._capture = capture
        self._message = message

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.name == "shiftright" or record.name.startswith("shiftright."):
                return
            level = LEVELS.get(record.levelno, "fatal" if record.levelno > 50 else "error")
            attributes = {"log.logger": record.name}
            exc = record.exc_info[1] if record.exc_info else None
            if exc is not None:
                attributes["log.message"] = record.getMessage()[:2000]
                # asyncio's default handler logs what no task retrieved: that was not handled
                unhandled = record.name == "asyncio"
                self._capture(
                    exc,
                    handled=not unhandled,
                    level=level,
                    mechanism="asyncio" if unhandled else "logging",
                    attributes=attributes,
                )
            elif self._message is not None:
                self._message(record.getMessage(), level=level, attributes=attributes)
        except Exception:
            pass  # never into the app, never into logging's own error printer


def install_logging(handler: LoggingHandler) -> None:
    root = logging.getLogger()
    root.addHandler(handler)
    _installed.append(lambda: root.removeHandler(handler))


def uninstall() -> None:
    while _installed:
        with contextlib.suppress(Exception):
            _installed.pop()()
