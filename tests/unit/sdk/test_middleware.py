"""Real Starlette, FastAPI, Flask and Django apps: one usage event per request with the
route template, and handler exceptions as error events linked to their request."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import shiftright
from shiftright.asgi import ShiftrightMiddleware

from tests.unit.sdk.conftest import SDK

NOTHING: dict[str, str] = {}  # looking a key up in it raises KeyError


def _by_kind(sdk: SDK) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return sdk.events("usage"), sdk.events("error")


def _check_request_pair(
    usage: list[dict[str, Any]], errors: list[dict[str, Any]], route: str
) -> None:
    """The failing request: a 500 usage event and an error event sharing its request id."""
    [failed] = [u for u in usage if u["status_code"] == 500]
    [error] = errors
    assert failed["route"] == error["route"] == route
    assert error["exception_type"] == "KeyError" and not error["handled"]
    assert error["attributes"]["request.id"] == failed["attributes"]["request.id"]
    assert error["frames"][-1]["function"].endswith("broken")
    assert failed["user_id"] == error["user_id"] == "u-9"
    headers = error["attributes"]
    assert headers["http.request.header.authorization"] == "[redacted]"
    assert headers["http.request.header.cookie"] == "[redacted]"
    assert headers["http.request.header.x-note"] == "kept"
    assert "s3cret" not in str(error)


SECRET_HEADERS = {"Authorization": "Bearer s3cret", "Cookie": "sid=s3cret", "X-Note": "kept"}


# -- Starlette / FastAPI ---------------------------------------------------------------------
def _starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route

    async def item(request: Any) -> JSONResponse:
        shiftright.set_user("u-1", customer_id="acme")
        return JSONResponse({"id": request.path_params["item_id"]})

    async def broken(request: Any) -> JSONResponse:
        shiftright.set_user("u-9")
        return JSONResponse(NOTHING["missing"])

    api = Mount("/api", routes=[Route("/items/{item_id:int}", item)])
    return Starlette(
        routes=[api, Route("/broken", broken)], middleware=[Middleware(ShiftrightMiddleware)]
    )


def test_starlette_reports_route_templates_statuses_and_linked_errors(sdk: SDK) -> None:
    from starlette.testclient import TestClient

    sdk.init()
    client = TestClient(_starlette_app(), raise_server_exceptions=False)
    assert client.get("/api/items/42", headers={"x-request-id": "req-1"}).status_code == 200
    assert client.get("/api/items/43").status_code == 200
    assert client.get("/nope").status_code == 404
    assert client.post("/api/items/42").status_code == 405
    assert client.get("/broken", headers=SECRET_HEADERS).status_code == 500
    usage, errors = _by_kind(sdk)
    seen = sorted((u["method"], u["route"], u["status_code"]) for u in usage)
    assert seen == [
        ("GET", "", 404),
        ("GET", "/api/items/{item_id}", 200),
        ("GET", "/api/items/{item_id}", 200),
        ("GET", "/broken", 500),
        ("POST", "/api/items/{item_id}", 405),
    ]
    first = next(u for u in usage if u["attributes"]["request.id"] == "req-1")
    assert (first["user_id"], first["customer_id"], first["name"]) == (
        "u-1",
        "acme",
        "GET /api/items/{item_id}",
    )
    assert first["duration_ms"] > 0
    _check_request_pair(usage, errors, "/broken")


def test_fastapi_reports_the_path_template_and_trace_context(sdk: SDK) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    sdk.init()
    app = FastAPI()
    app.add_middleware(ShiftrightMiddleware)

    @app.get("/orders/{order_id}")
    def order(order_id: int) -> dict[str, int]:  # a sync handler runs in a thread pool
        shiftright.set_user("u-2")
        shiftright.track("order.viewed", order=order_id)
        return {"id": order_id}

    @app.get("/broken")
    async def broken() -> None:
        shiftright.set_user("u-9")
        raise KeyError("missing")

    client = TestClient(app, raise_server_exceptions=False)
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert client.get("/orders/7", headers={"traceparent": trace}).status_code == 200
    assert client.get("/broken", headers=SECRET_HEADERS).status_code == 500
    usage, errors = _by_kind(sdk)
    request = next(u for u in usage if u["name"] == "GET /orders/{order_id}")
    tracked = next(u for u in usage if u["name"] == "order.viewed")
    assert request["route"] == "/orders/{order_id}" and request["user_id"] == "u-2"
    assert request["attributes"]["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert tracked["attributes"]["request.id"] == request["attributes"]["request.id"]
    _check_request_pair(usage, errors, "/broken")


# -- Flask -----------------------------------------------------------------------------------
def test_flask_reports_url_rules_and_linked_errors(sdk: SDK) -> None:
    from flask import Flask
    from shiftright.wsgi import instrument_flask

    sdk.init()
    app = Flask("shop")

    @app.get("/carts/<int:cart_id>")
    def cart(cart_id: int) -> dict[str, int]:
        shiftright.set_user("u-3")
        return {"id": cart_id}

    @app.get("/broken")
    def broken() -> str:
        shiftright.set_user("u-9")
        return NOTHING["missing"]

    instrument_flask(app)
    client = app.test_client()
    client.set_cookie(
        "sid", "s3cret"
    )  # werkzeug's client sends its own cookie jar, not a Cookie header
    assert client.get("/carts/5").status_code == 200
    assert client.get("/broken", headers=SECRET_HEADERS).status_code == 500
    assert client.get("/missing").status_code == 404
    usage, errors = _by_kind(sdk)
    seen = sorted((u["route"], u["status_code"], u["user_id"]) for u in usage)
    assert seen == [("", 404, ""), ("/broken", 500, "u-9"), ("/carts/<int:cart_id>", 200, "u-3")]
    _check_request_pair(usage, errors, "/broken")


# -- Django ----------------------------------------------------------------------------------
def _django_views() -> list[Any]:
    from django.http import JsonResponse
    from django.urls import path

    def invoice(request: Any, invoice_id: int) -> JsonResponse:
        shiftright.set_user("u-4")
        return JsonResponse({"id": invoice_id})

    def broken(request: Any) -> JsonResponse:
        shiftright.set_user("u-9")
        return JsonResponse(NOTHING["missing"])

    async def shipment(request: Any, shipment_id: int) -> JsonResponse:
        shiftright.set_user("u-5")
        return JsonResponse({"id": shipment_id})

    async def async_broken(request: Any) -> JsonResponse:
        shiftright.set_user("u-9")
        return JsonResponse(NOTHING["missing"])

    return [
        path("invoices/<int:invoice_id>/", invoice),
        path("broken", broken),
        path("shipments/<int:shipment_id>", shipment),
        path("async-broken", async_broken),
    ]


urlpatterns: list[Any] = []


@pytest.fixture(scope="module")
def django_client() -> Any:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            ALLOWED_HOSTS=["testserver"],
            ROOT_URLCONF=__name__,
            DATABASES={},
            INSTALLED_APPS=[],
            MIDDLEWARE=["shiftright.django.ShiftrightMiddleware"],
            SECRET_KEY="unit-test",
            LOGGING_CONFIG=None,
        )
        django.setup()
    urlpatterns[:] = _django_views()
    from django.test import Client

    return Client(raise_request_exception=False)


def test_django_reports_resolver_routes_and_linked_errors(sdk: SDK, django_client: Any) -> None:
    sdk.init()
    assert django_client.get("/invoices/12/").status_code == 200
    assert django_client.get("/broken", headers=SECRET_HEADERS).status_code == 500
    assert django_client.get("/nowhere").status_code == 404
    usage, errors = _by_kind(sdk)
    seen = sorted((u["route"], u["status_code"], u["user_id"]) for u in usage)
    assert seen == [
        ("", 404, ""),
        ("/broken", 500, "u-9"),
        ("/invoices/<int:invoice_id>/", 200, "u-4"),
    ]
    _check_request_pair(usage, errors, "/broken")


def test_django_async_views_under_asgi_report_the_same_events(sdk: SDK, django_client: Any) -> None:
    from django.test import AsyncClient

    sdk.init()
    client = AsyncClient(raise_request_exception=False)

    async def drive() -> list[int]:
        ok = await client.get("/shipments/3")
        failed = await client.get("/async-broken", headers=SECRET_HEADERS)
        return [ok.status_code, failed.status_code]

    assert asyncio.run(drive()) == [200, 500]
    usage, errors = _by_kind(sdk)
    seen = sorted((u["route"], u["status_code"], u["user_id"]) for u in usage)
    assert seen == [("/async-broken", 500, "u-9"), ("/shipments/<int:shipment_id>", 200, "u-5")]
    _check_request_pair(usage, errors, "/async-broken")


def test_middleware_passes_requests_through_when_the_sdk_is_not_initialised() -> None:
    from starlette.testclient import TestClient

    assert TestClient(_starlette_app()).get("/api/items/1").json() == {"id": 1}


def test_django_requests_served_during_a_marked_test_are_test_traffic(
    sdk: SDK, django_client: Any
) -> None:
    from shiftright import testing

    sdk.init()
    testing.activate(testing.MarkedTest("tests/test_billing.py::test_invoice", "run-1"))
    try:
        assert django_client.get("/invoices/5/").status_code == 200
        assert django_client.get("/broken").status_code == 500
    finally:
        testing.activate(None)
    events = sdk.events()
    assert {(e["kind"], e["origin"]) for e in events} == {("usage", "test"), ("error", "test")}
    assert {e["attributes"]["test.case.name"] for e in events} == {
        "tests/test_billing.py::test_invoice"
    }
