"""The sample shop: a Starlette API and a Flask reports app, both instrumented with the
SDK, and a transport that appends each event to a JSON-lines file (no Kafka needed)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import shiftright
from shiftright.asgi import ShiftrightMiddleware
from shiftright.transport import Delivery


class FileTransport:
    """Appends every message's events to a file, one JSON object per line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._pending: list[Delivery] = []

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes,
        headers: Sequence[tuple[str, bytes]],
        on_delivery: Delivery,
    ) -> None:
        with self._lock, self.path.open("ab") as out:
            out.write(value.rstrip(b"\n") + b"\n")
        self._pending.append(on_delivery)

    def poll(self, timeout: float) -> None:
        pending, self._pending = self._pending, []
        for report in pending:
            report(None)

    def partitions(self, topic: str) -> int | None:
        return 1

    def flush(self, timeout: float) -> int:
        self.poll(0)
        return 0

    def close(self) -> None:
        self.poll(0)


def init_sdk(env: str, release: str, events: Path) -> None:
    shiftright.init(
        app="qa-shop",
        env=env,
        release=release,
        kafka="file",
        transport=lambda config: FileTransport(events),
        health_interval=0,
        hooks=False,
        flush_interval=0.02,
    )


class PaymentDeclined(Exception):
    pass


def api() -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def product(request: Request) -> JSONResponse:
        return JSONResponse({"sku": request.path_params["sku"]})

    async def cart(request: Request) -> JSONResponse:
        shiftright.set_user(request.query_params.get("user", ""))
        return JSONResponse({"added": request.path_params["sku"]})

    async def checkout(request: Request) -> JSONResponse:
        if request.query_params.get("card") == "declined":
            raise PaymentDeclined("card declined")
        return JSONResponse({"paid": True})

    routes = [
        Route("/products/{sku}", product),
        Route("/cart/{sku}", cart, methods=["POST"]),
        Route("/checkout", checkout, methods=["POST"]),
    ]
    return Starlette(routes=routes, middleware=[Middleware(ShiftrightMiddleware)])


def reports() -> Any:
    from flask import Flask
    from shiftright.wsgi import instrument_flask

    app = Flask("qa_reports")

    @app.get("/reports/<name>")
    def report(name: str) -> dict[str, str]:
        return {"report": name}

    return instrument_flask(app)
