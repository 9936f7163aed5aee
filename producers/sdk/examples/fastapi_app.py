"""An example FastAPI app instrumented with the shiftright SDK.

Run it:  SHIFTRIGHT_KAFKA=127.0.0.1:19092 uvicorn fastapi_app:app   (from this folder)
"""

from __future__ import annotations

import os

import shiftright
from fastapi import FastAPI, HTTPException
from shiftright.asgi import ShiftrightMiddleware

ORDERS = {1: {"id": 1, "total": 19.99}, 2: {"id": 2, "total": 5.0}}


class PaymentDeclined(Exception):
    """A domain error the app does not handle: it becomes a 500 and an error event."""


def create_app() -> FastAPI:
    app = FastAPI(title="shop (shiftright example)")
    app.add_middleware(ShiftrightMiddleware)

    @app.get("/orders/{order_id}")
    async def get_order(order_id: int, user: str = "") -> dict[str, float]:
        if user:
            shiftright.set_user(user, customer_id="acme")
        if order_id not in ORDERS:
            raise HTTPException(status_code=404, detail="no such order")
        return ORDERS[order_id]

    @app.post("/orders/{order_id}/pay")
    def pay(order_id: int) -> dict[str, str]:
        shiftright.track("checkout.pay", order=order_id)
        if order_id % 2 == 0:
            raise PaymentDeclined(f"card declined for order {order_id}")
        return {"status": "paid"}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> FastAPI:
    shiftright.init(
        app="shop-api",
        env=os.environ.get("SHIFTRIGHT_ENV", "dev"),
        release="1.0.0",
        kafka=os.environ.get("SHIFTRIGHT_KAFKA", "127.0.0.1:19092"),
    )
    return create_app()


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(main(), port=8000)
