"""An example Flask app instrumented with the shiftright SDK.

Run it:  SHIFTRIGHT_KAFKA=127.0.0.1:19092 python flask_app.py   (from this folder)
"""

from __future__ import annotations

import os

import shiftright
from flask import Flask, abort
from shiftright.wsgi import instrument_flask

PRODUCTS = {"sku-1": {"name": "kettle", "stock": 3}}


def create_app() -> Flask:
    app = Flask("catalog")

    @app.get("/products/<sku>")
    def product(sku: str) -> dict[str, object]:
        if sku not in PRODUCTS:
            abort(404)
        return PRODUCTS[sku]

    @app.post("/products/<sku>/reserve")
    def reserve(sku: str) -> dict[str, object]:
        shiftright.set_user("u-flask")
        stock = PRODUCTS[sku]["stock"]  # KeyError for unknown SKUs: a 500 and an error event
        return {"sku": sku, "stock": stock}

    return instrument_flask(app)


def main() -> Flask:
    shiftright.init(
        app="catalog",
        env=os.environ.get("SHIFTRIGHT_ENV", "dev"),
        release="2.0.0",
        kafka=os.environ.get("SHIFTRIGHT_KAFKA", "127.0.0.1:19092"),
    )
    return create_app()


if __name__ == "__main__":
    main().run(port=5000)
