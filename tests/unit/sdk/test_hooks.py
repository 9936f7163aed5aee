"""Unhandled exceptions anywhere, and logged ones, become error events without app code."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading

import pytest
import shiftright

from tests.unit.sdk.conftest import SDK


def test_main_thread_excepthook_reports_and_still_calls_the_previous_hook(sdk: SDK) -> None:
    seen = []
    original = sys.excepthook
    sys.excepthook = lambda *args: seen.append(args[0])
    try:
        sdk.init()
        try:
            raise LookupError("no such order")
        except LookupError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
        [error] = sdk.events("error")
        assert (error["exception_type"], error["handled"], error["level"]) == (
            "LookupError",
            False,
            "fatal",
        )
        assert error["attributes"]["mechanism"] == "excepthook"
        assert seen == [LookupError]
        shiftright.close()
        assert sys.excepthook is not original and sys.excepthook.__name__ == "<lambda>"
    finally:
        sys.excepthook = original


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_exception_in_a_thread_is_reported_with_the_thread_name(sdk: SDK) -> None:
    sdk.init()

    def work() -> None:
        raise ZeroDivisionError("division by zero")

    thread = threading.Thread(target=work, name="worker-7")
    thread.start()
    thread.join()
    [error] = sdk.events("error")
    assert error["exception_type"] == "ZeroDivisionError" and not error["handled"]
    assert error["attributes"]["thread.name"] == "worker-7"
    assert error["frames"][-1]["function"].endswith("work")


def test_asyncio_task_exception_nobody_awaited_is_reported_once(sdk: SDK) -> None:
    sdk.init()

    async def fail() -> None:
        raise TimeoutError("upstream slow")

    async def main() -> None:
        shiftright.init(
            app="checkout",
            env="test",
            kafka="fake",
            transport=sdk.factory,
            health_interval=0,
            flush_interval=0.02,
        )
        task = asyncio.get_running_loop().create_task(fail())
        await asyncio.sleep(0.01)
        del task
        gc.collect()  # "Task exception was never retrieved" goes to the loop's handler

    asyncio.run(main())
    errors = sdk.events("error")
    assert [e["exception_type"] for e in errors] == ["TimeoutError"]
    assert errors[0]["attributes"]["mechanism"] == "asyncio"


def test_asyncio_task_exception_is_reported_when_init_ran_before_the_loop(sdk: SDK) -> None:
    sdk.init()  # the usual order: init at import time, asyncio.run(main()) later

    async def fail() -> None:
        raise ConnectionResetError("peer went away")

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(fail())
        await asyncio.sleep(0.01)
        del task
        gc.collect()

    asyncio.run(main())
    [error] = sdk.events("error")
    assert error["exception_type"] == "ConnectionResetError" and not error["handled"]
    assert error["attributes"]["mechanism"] == "asyncio"


def test_logged_exceptions_become_handled_errors_and_plain_error_logs_do_not(sdk: SDK) -> None:
    sdk.init()
    log = logging.getLogger("shop.payments")
    try:
        int("x")
    except ValueError:
        log.exception("could not parse amount for %s", "order-9")
    log.error("no exception here")
    log.warning("not an error", exc_info=(ValueError, ValueError("w"), None))
    [error] = sdk.events("error")
    assert error["exception_type"] == "ValueError" and error["handled"]
    assert error["attributes"]["log.logger"] == "shop.payments"
    assert error["attributes"]["log.message"] == "could not parse amount for order-9"


def test_an_exception_captured_and_then_logged_is_reported_once(sdk: SDK) -> None:
    sdk.init()
    try:
        raise RuntimeError("once")
    except RuntimeError as exc:
        shiftright.capture_exception(exc)
        logging.getLogger("app").error("failed", exc_info=True)
    assert len(sdk.events("error")) == 1


def test_log_messages_option_reports_error_logs_without_exceptions(sdk: SDK) -> None:
    sdk.init(log_messages=True)
    logging.getLogger("app").critical("disk full on %s", "/data")
    [error] = sdk.events("error")
    assert (error["exception_type"], error["exception_message"], error["level"]) == (
        "Message",
        "disk full on /data",
        "fatal",
    )


def test_close_removes_the_hooks_and_the_log_handler(sdk: SDK) -> None:
    before = (sys.excepthook, threading.excepthook, list(logging.getLogger().handlers))
    sdk.init()
    assert sys.excepthook is not before[0]
    shiftright.close()
    assert (sys.excepthook, threading.excepthook, list(logging.getLogger().handlers)) == before


def test_sdk_calls_never_raise_even_with_hostile_input(sdk: SDK) -> None:
    sdk.init()

    class Evil:
        def __str__(self) -> str:
            raise RuntimeError("no str for you")

    class EvilError(Exception):
        def __str__(self) -> str:
            raise RuntimeError("nope")

    shiftright.track(Evil(), user_id=Evil(), duration_ms="fast", odd=Evil())  # type: ignore[arg-type]  # wrong types on purpose: the SDK must not raise
    shiftright.capture_exception(EvilError())
    shiftright.capture_message(Evil())  # type: ignore[arg-type]  # wrong type on purpose
    shiftright.gauge("x", "not a number")  # type: ignore[arg-type]  # wrong type on purpose
    shiftright.change("nonsense", "x")
    shiftright.flush(2)
    stats = shiftright.stats()
    errors = sdk.transport.events("error")
    assert [
        e["exception_message"] for e in errors if e["exception_type"].endswith("EvilError")
    ] == ["<unprintable exception>"]
    assert stats["dropped"].get("bad_change_type") == 1
