"""Synthetic production traffic: plain dicts in the event wire shape, fast and reproducible.

Contract:

* :meth:`Simulator.tick` returns every event whose ``ts`` falls in ``[start, start+seconds)``,
  sorted by ``ts``: usage requests (and the errors some of them raise) at ``rate`` events/s
  times :func:`diurnal_factor`, one health report per host every ``health_interval`` seconds,
  and occasional deploys and feature-flag flips.
* :meth:`Simulator.generate` returns exactly ``n`` events of one kind spread over a range.
* The same seed and the same sequence of calls give the same events, event ids included:
  an id is a valid UUIDv7 whose timestamp is the event's ``ts`` and whose random bits come
  from the seeded RNG.
* Scheduled :class:`Incident` s change the traffic while they are active and label the
  events they touch with ``attributes["sim.incident"]``; every error names its code site in
  ``attributes["sim.site"]`` so error grouping can be scored against the truth.
* Sites that call a database or a remote service (:data:`_WRAPPED_LIBS`) report the app's
  generic ``<app>.api.errors.UpstreamError`` raised ``from`` the real error, which travels
  as the root cause in ``attributes["exception.chain"]`` (JSON, nearest cause first).

The hot path builds dicts from pre-built pools (features, users, normals, status codes); no
pydantic model is constructed. :func:`run_realtime` feeds an emitter in 100 ms steps.
"""

from __future__ import annotations

import gc
import json
import math
import random
import string
import threading
import time
import zlib
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from operator import itemgetter
from typing import Any, Protocol

INCIDENT_KINDS: tuple[str, ...] = ("error-spike", "cpu-saturation", "usage-drop", "latency-jump")
EVENT_KINDS: tuple[str, ...] = ("usage", "error", "health", "change")

#: app -> env -> (release running there, host count, share of all request traffic)
TOPOLOGY: dict[str, dict[str, tuple[str, int, float]]] = {
    "checkout": {"prod": ("1.4.2", 4, 0.40), "preprod": ("1.5.0", 1, 0.04)},
    "catalog": {"prod": ("2.7.0", 3, 0.60), "preprod": ("2.8.0", 2, 0.06)},
}
_ERROR_RATE = {"prod": 0.012, "preprod": 0.03}  # share of requests that raise
_DEPLOY_EVERY_S = {"prod": 4 * 3600.0, "preprod": 3600.0}
_FLAG_FLIP_EVERY_S = 1800.0
_FLAGS = {
    "checkout": ("new-checkout-flow", "one-click-pay", "address-autocomplete"),
    "catalog": ("new-search-ranking", "reco-carousel", "lazy-images"),
}
_ACTORS = ("ci-pipeline", "alice@shop.example", "bob@shop.example", "release-bot")

# name, route, method, popularity, median ms, sigma, share of 4xx, median order value
_FEATURE_SPECS: dict[str, tuple[tuple[str, str, str, float, float, float, float, float], ...]] = {
    "checkout": (
        ("cart.view", "/cart", "GET", 30, 45, 0.45, 0.005, 0),
        ("cart.add", "/cart/items", "POST", 18, 70, 0.5, 0.02, 0),
        ("cart.update", "/cart/items/{item_id}", "PATCH", 6, 65, 0.5, 0.02, 0),
        ("cart.remove", "/cart/items/{item_id}", "DELETE", 4, 55, 0.5, 0.03, 0),
        ("checkout.start", "/checkout", "POST", 8, 120, 0.55, 0.02, 0),
        ("checkout.shipping", "/checkout/{id}/shipping", "PUT", 6, 140, 0.6, 0.04, 0),
        ("checkout.payment", "/checkout/{id}/payment", "POST", 5, 380, 0.7, 0.05, 0),
        ("checkout.submit", "/checkout/{id}/submit", "POST", 3.5, 450, 0.6, 0.03, 64),
        ("promo.apply", "/cart/promo", "POST", 2, 60, 0.5, 0.25, 0),
        ("order.history", "/orders", "GET", 3, 160, 0.6, 0.01, 0),
        ("order.view", "/orders/{id}", "GET", 2.5, 90, 0.5, 0.03, 0),
        ("auth.login", "/auth/login", "POST", 6, 210, 0.4, 0.08, 0),
        ("health.check", "/healthz", "GET", 4, 3, 0.3, 0.0, 0),
    ),
    "catalog": (
        ("product.view", "/products/{id}", "GET", 40, 35, 0.5, 0.02, 0),
        ("search.query", "/search", "GET", 22, 110, 0.7, 0.01, 0),
        ("category.browse", "/categories/{slug}", "GET", 14, 60, 0.5, 0.01, 0),
        ("home.view", "/", "GET", 12, 40, 0.4, 0.0, 0),
        ("search.suggest", "/search/suggest", "GET", 9, 18, 0.4, 0.0, 0),
        ("recommendations.get", "/recommendations", "GET", 8, 95, 0.6, 0.0, 0),
        ("product.images", "/products/{id}/images", "GET", 6, 25, 0.5, 0.02, 0),
        ("product.reviews", "/products/{id}/reviews", "GET", 5, 70, 0.5, 0.01, 0),
        ("inventory.check", "/products/{id}/stock", "GET", 4, 30, 0.5, 0.02, 0),
        ("wishlist.add", "/wishlist/items", "POST", 1.5, 50, 0.5, 0.05, 0),
        ("review.submit", "/products/{id}/reviews", "POST", 0.4, 130, 0.5, 0.1, 0),
        ("health.check", "/healthz", "GET", 3, 3, 0.3, 0.0, 0),
    ),
}
_OK_STATUS = {"GET": 200, "POST": 201, "PUT": 200, "PATCH": 200, "DELETE": 204}
_FAIL_STATUS = {
    "GET": (404, 404, 400, 403),
    "DELETE": (404, 409),
    "POST": (400, 422, 409, 401),
    "PUT": (400, 422),
    "PATCH": (400, 422, 404),
}

_SITE_PKG = "/usr/local/lib/python3.11/site-packages/"
_STDLIB = "/usr/local/lib/python3.11/"
_Lib = tuple[tuple[str, str, str, int, str], ...]
# fmt: off
# Library frames, outermost first: module, function, file, line, source line.
_LIBS: dict[str, _Lib] = {
    "": (),
    "requests": (
        ("requests.api", "post", _SITE_PKG + "requests/api.py", 115, "return request(...)"),
        ("requests.sessions", "send", _SITE_PKG + "requests/sessions.py", 703,
         "r = adapter.send(request, **kwargs)"),
        ("requests.adapters", "send", _SITE_PKG + "requests/adapters.py", 700,
         "raise ConnectionError(e, request=request)"),
    ),
    "psycopg": (
        ("psycopg.cursor", "execute", _SITE_PKG + "psycopg/cursor.py", 97,
         "raise ex.with_traceback(None)"),
    ),
    "redis": (
        ("redis.commands.core", "get", _SITE_PKG + "redis/commands/core.py", 1829,
         'return self.execute_command("GET", name)'),
        ("redis.connection", "connect", _SITE_PKG + "redis/connection.py", 363,
         "raise ConnectionError(self._error_message(e))"),
    ),
    "httpx": (
        ("httpx._client", "get", _SITE_PKG + "httpx/_client.py", 1801,
         "return await self.request("),
        ("httpx._transports.default", "handle_async_request",
         _SITE_PKG + "httpx/_transports/default.py", 393, "with map_httpcore_exceptions():"),
    ),
    "json": (
        ("json", "loads", _STDLIB + "json/__init__.py", 346, "return _default_decoder.decode(s)"),
        ("json.decoder", "raw_decode", _STDLIB + "json/decoder.py", 355,
         'raise JSONDecodeError("Expecting value", s, err.value) from None'),
    ),
    "json_enc": (
        ("json", "dumps", _STDLIB + "json/__init__.py", 238, "**kw).encode(obj)"),
        ("json.encoder", "default", _STDLIB + "json/encoder.py", 180,
         "raise TypeError(f'Object of type {o.__class__.__name__} '"),
    ),
    "sqlalchemy": (
        ("sqlalchemy.orm.session", "flush", _SITE_PKG + "sqlalchemy/orm/session.py", 4345,
         "self._flush(objects)"),
        ("sqlalchemy.engine.default", "do_execute",
         _SITE_PKG + "sqlalchemy/engine/default.py", 941, "cursor.execute(statement, parameters)"),
    ),
    "stripe": (
        ("stripe._api_requestor", "_interpret_response",
         _SITE_PKG + "stripe/_api_requestor.py", 834, "self.handle_error_response(rbody, rcode)"),
    ),
    "botocore": (
        ("botocore.client", "_api_call", _SITE_PKG + "botocore/client.py", 565,
         "return self._make_api_call(operation_name, kwargs)"),
        ("botocore.client", "_make_api_call", _SITE_PKG + "botocore/client.py", 1021,
         "raise error_class(parsed_response, operation_name)"),
    ),
    "pydantic": (
        ("pydantic.main", "model_validate", _SITE_PKG + "pydantic/main.py", 627,
         "return cls.__pydantic_validator__.validate_python("),
    ),
    "aiohttp": (
        ("aiohttp.client_reqrep", "raise_for_status", _SITE_PKG + "aiohttp/client_reqrep.py",
         1161, "raise ClientResponseError("),
    ),
    "celery": (
        ("celery.result", "get", _SITE_PKG + "celery/result.py", 251,
         "return self.backend.wait_for_pending("),
        ("celery.backends.base", "wait_for_pending", _SITE_PKG + "celery/backends/base.py", 755,
         "meta = self.wait_for("),
    ),
    "elasticsearch": (
        ("elasticsearch._sync.client._base", "perform_request",
         _SITE_PKG + "elasticsearch/_sync/client/_base.py", 271,
         "raise HTTP_EXCEPTIONS.get(meta.status, ApiError)("),
    ),
    "jwt": (
        ("jwt.api_jwt", "decode", _SITE_PKG + "jwt/api_jwt.py", 210,
         "decoded = self.decode_complete("),
        ("jwt.api_jwt", "_validate_exp", _SITE_PKG + "jwt/api_jwt.py", 363,
         'raise ExpiredSignatureError("Signature has expired")'),
    ),
}
_FRAMEWORK: _Lib = (
    ("starlette.routing", "handle", _SITE_PKG + "starlette/routing.py", 288,
     "await self.app(scope, receive, send)"),
    ("fastapi.routing", "app", _SITE_PKG + "fastapi/routing.py", 301,
     "raw_response = await run_endpoint_function("),
)

# Ranked most to least frequent (Zipf weights follow the rank).
# type, module, function, raising source line, message template, library chain, status, handled
_SITE_SPECS: tuple[tuple[str, str, str, str, str, str, int, bool], ...] = (
    ("KeyError", "cart.service", "get_line_item", "line = cart.items[sku]", "'{sku}'", "",
     500, False),
    ("TimeoutError", "clients.inventory", "reserve_stock", "raise TimeoutError(msg)",
     "timed out after {ms} ms waiting for inventory.internal:{port}", "", 504, False),
    ("requests.exceptions.ConnectionError", "clients.payments", "authorize",
     "resp = self.session.post(url, json=body, timeout=5)",
     "HTTPSConnectionPool(host='payments.internal', port=443): Max retries exceeded with url: "
     "/v2/authorizations/{hex} (Caused by NewConnectionError('Failed to establish a new "
     "connection: [Errno 111] Connection refused'))", "requests", 502, False),
    ("psycopg.OperationalError", "db.orders", "fetch_order",
     "cur.execute(ORDER_BY_ID, (order_id,))",
     'connection to server at "{ip}", port 5432 failed: server closed the connection '
     "unexpectedly", "psycopg", 500, False),
    ("ValueError", "api.params", "parse_quantity", "qty = int(raw)",
     "invalid literal for int() with base 10: '{word}'", "", 500, False),
    ("AttributeError", "pricing.rules", "apply_discount", "pct = promo.percent / 100",
     "'NoneType' object has no attribute '{attr}'", "", 500, False),
    ("redis.exceptions.ConnectionError", "cache.sessions", "load_session",
     "raw = self.redis.get(key)", "Error 111 connecting to {ip}:6379. Connection refused.",
     "redis", 500, False),
    ("httpx.ReadTimeout", "clients.search", "query", "resp = await self.client.get(url)",
     "timed out reading /v1/search?q={slug} after {ms} ms", "httpx", 504, False),
    ("json.JSONDecodeError", "clients.recommendations", "parse_items",
     "payload = json.loads(body)", "Expecting value: line 1 column {n} (char {n2})", "json",
     502, False),
    ("sqlalchemy.exc.IntegrityError", "db.carts", "save_items", "session.flush()",
     '(psycopg.errors.UniqueViolation) duplicate key value violates unique constraint '
     '"cart_items_pkey" DETAIL: Key (cart_id, sku)=({id}, {sku}) already exists.',
     "sqlalchemy", 500, False),
    ("OutOfStockError", "inventory.reservations", "reserve", "raise OutOfStockError(sku, wh)",
     "sku {sku} out of stock in warehouse {wh}", "", 409, True),
    ("stripe.error.CardError", "payments.gateway", "capture",
     "intent = stripe.PaymentIntent.capture(intent_id)",
     "Your card was declined. (Request req_{hex}; decline_code={code})", "stripe", 402, True),
    ("TypeError", "api.serializers", "render_order", "return json.dumps(order, cls=Encoder)",
     "Object of type {cls} is not JSON serializable", "json_enc", 500, False),
    ("PermissionError", "storage.receipts", "write_pdf", 'with open(path, "wb") as fh:',
     "[Errno 13] Permission denied: '/var/lib/shop/receipts/{id}.pdf'", "", 500, False),
    ("botocore.exceptions.ClientError", "storage.images", "upload_thumbnail",
     "self.s3.put_object(Bucket=bucket, Key=key, Body=data)",
     "An error occurred (SlowDown) when calling the PutObject operation (reached max retries: "
     "4): Please reduce your request rate. Key: thumbs/{hex}.jpg", "botocore", 503, False),
    ("pydantic_core.ValidationError", "api.schemas", "parse_address",
     "return Address.model_validate(body)",
     "1 validation error for Address\nemail\n  value is not a valid email address: '{email}'",
     "pydantic", 422, True),
    ("IndexError", "search.pagination", "page_slice", "return pages[page_no]",
     "page {n} out of range (last page {n2})", "", 500, False),
    ("UnicodeDecodeError", "imports.feed", "read_row", 'text = raw.decode("utf-8")',
     "'utf-8' codec can't decode byte 0x{byte} in position {n}: invalid start byte", "",
     500, False),
    ("FileNotFoundError", "views.templates", "load_template", "with open(template_path) as fh:",
     "[Errno 2] No such file or directory: '/srv/shop/templates/{slug}.html'", "", 500, False),
    ("aiohttp.ClientResponseError", "clients.pricing", "fetch_prices", "resp.raise_for_status()",
     "503, message='Service Unavailable', url=URL('http://pricing.internal/v1/prices/{sku}')",
     "aiohttp", 502, False),
    ("LookupError", "shipping.zones", "zone_for", "raise LookupError(msg)",
     "no shipping zone for postcode '{postcode}'", "", 500, False),
    ("RuntimeError", "clients.breaker", "call", "raise RuntimeError(msg)",
     "circuit breaker open for {svc} after {n} failures", "", 503, False),
    ("ssl.SSLCertVerificationError", "clients.tax", "quote",
     "resp = self.session.post(url, json=basket, timeout=3)",
     "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired "
     "(_ssl.c:{n})", "requests", 502, False),
    ("OSError", "locks.files", "acquire", "fd = os.open(path, os.O_CREAT | os.O_EXCL)",
     "[Errno 24] Too many open files: '/tmp/shop-{hex}.lock'", "", 500, False),
    ("AssertionError", "cart.totals", "verify_total", "assert total == expected, msg",
     "cart total mismatch: expected {amount} got {amount2}", "", 500, False),
    ("decimal.InvalidOperation", "pricing.currency", "round_amount",
     "return amount.quantize(EXPONENTS[currency])", "cannot quantize {amount} to {currency}",
     "", 500, False),
    ("celery.exceptions.TimeLimitExceeded", "tasks.emails", "send_confirmation",
     "result.get(timeout=limit)", "task send_confirmation[{hex}] exceeded time limit of {n}s",
     "celery", 500, False),
    ("ConnectionResetError", "clients.loyalty", "award_points", "self.sock.sendall(frame)",
     "[Errno 104] Connection reset by peer ({ip}:{port})", "", 502, False),
    ("elasticsearch.NotFoundError", "search.index", "lookup",
     "return self.es.get(index=index, id=doc_id)",
     "NotFoundError(404, 'index_not_found_exception', 'no such index [products-{n}]')",
     "elasticsearch", 500, False),
    ("jwt.exceptions.ExpiredSignatureError", "auth.tokens", "decode_token",
     'claims = jwt.decode(token, key, algorithms=["RS256"])',
     "Signature has expired (token of {user} issued {n}s ago)", "jwt", 401, True),
)
# fmt: on

_ZIPF_S = 1.2
# Sites whose error the app re-raises as one generic UpstreamError (a chained exception).
_WRAPPED_LIBS = frozenset({"requests", "psycopg", "sqlalchemy", "botocore"})
_WRAPPER_MESSAGE = "upstream dependency failed while handling the request"
_DEFAULT_TARGET = {
    "error-spike": {"checkout": "checkout-e09", "catalog": "catalog-e09"},
    "usage-drop": {"checkout": "cart.add", "catalog": "search.query"},
    "latency-jump": {"checkout": "cart.view", "catalog": "product.view"},
}

_WORDS = ("abc", "NaN", "two", "1e9", "null", "--", "12a", "∞")
_NAMES = ("ann", "bo", "chen", "dara", "eli", "femi")
_DOMAINS = ("example.com", "mail.example", "shop.test", "example")  # the last one is invalid
_SLUGS = ("promo-banner", "gift-card", "holiday-sale", "landing-b", "outdoor", "kids-shoes")
_FILLERS: dict[str, Callable[[random.Random], str]] = {
    "sku": lambda r: f"SKU-{r.randrange(10000, 99999)}",
    "ms": lambda r: str(r.choice((500, 1000, 2000, 3000, 5000, 10000))),
    "port": lambda r: str(r.randrange(8000, 8100)),
    "hex": lambda r: f"{r.getrandbits(48):012x}",
    "ip": lambda r: f"10.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}",
    "word": lambda r: r.choice(_WORDS),
    "attr": lambda r: r.choice(("percent", "amount", "currency", "code")),
    "slug": lambda r: r.choice(_SLUGS),
    "n": lambda r: str(r.randrange(1, 5000)),
    "n2": lambda r: str(r.randrange(1, 5000)),
    "id": lambda r: str(r.randrange(100000, 999999)),
    "wh": lambda r: r.choice(("AMS1", "FRA2", "DUB1", "LON3")),
    "code": lambda r: r.choice(("insufficient_funds", "do_not_honor", "expired_card", "fraud")),
    "cls": lambda r: r.choice(("Decimal", "datetime", "UUID", "set")),
    "email": lambda r: f"{r.choice(_NAMES)}{r.randrange(100)}@{r.choice(_DOMAINS)}",
    "byte": lambda r: f"{r.randrange(128, 256):02x}",
    "postcode": lambda r: str(r.randrange(10000, 99999)),
    "svc": lambda r: r.choice(("inventory", "payments", "pricing", "search")),
    "amount": lambda r: f"{r.lognormvariate(3.5, 0.8):.2f}",
    "amount2": lambda r: f"{r.lognormvariate(3.5, 0.8):.2f}",
    "currency": lambda r: r.choice(("EUR", "USD", "GBP", "JPY", "CHF")),
    "user": lambda r: f"user-{r.randrange(5000):04d}",
}

N_USERS = 5000
N_CUSTOMERS = 200
_POOL_BITS = 12  # weighted pools of 4096 entries, indexed by getrandbits
_NORMAL_BITS = 16
_SLOT_BITS = 6  # host/instance pools: 64 entries
_MS_SUFFIX = [f"{i:03d}Z" for i in range(1000)]
# UUIDv7 text is cut from cached pieces: formatting a 128-bit int per event costs more.
_HEX_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}
_UUID_LOW = [f"{i:04x}-7" for i in range(1 << 16)]  # ms bits 0..15, then the version digit
_TS_KEY = itemgetter("ts")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE_MS = 60_000


@dataclass(frozen=True)
class Incident:
    """A scheduled disturbance in event time; ``target`` is a feature, site id or host."""

    kind: str
    start: datetime
    duration: timedelta
    app: str = "checkout"
    env: str = "prod"
    target: str | None = None


class DictEmitter(Protocol):
    def emit_dict(self, event: dict[str, Any]) -> bool: ...

    def emit_many(self, events: Iterable[dict[str, Any]]) -> int: ...


def diurnal_factor(ts: datetime) -> float:
    """Traffic multiplier for the hour of ``ts`` (UTC): peak 15:00, trough 03:00, weekend dip."""
    return _diurnal(_ms(ts))


def _diurnal(ms: int) -> float:
    hour = (ms % 86_400_000) / 3_600_000
    factor = 0.35 + 1.4 * (1 - math.cos(2 * math.pi * (hour - 3) / 24)) / 2
    weekday = (ms // 86_400_000 + 3) % 7  # 1970-01-01 was a Thursday
    return factor * 0.65 if weekday >= 5 else factor


def _flat(ms: int) -> float:
    """The diurnal factor with the clock taken out: every hour is an average hour."""
    return 1.0


def _ms(ts: datetime) -> int:
    """``ts`` as whole epoch milliseconds, rounded up (naive datetimes count as UTC)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return -(-((ts - _EPOCH) // timedelta(microseconds=1)) // 1000)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cycle collector while a batch is built.

    Each event is a fresh, acyclic dict; a batch of 10^5 of them triggers repeated
    collections that free nothing and cost up to half the generation time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _weighted_pool(items: Sequence[Any], weights: Sequence[float], bits: int) -> list[Any]:
    """2**bits entries, each item repeated in proportion to its weight (stratified)."""
    cum = list(accumulate(weights))
    size = 1 << bits
    step = cum[-1] / size
    pool, j = [], 0
    for i in range(size):
        while cum[j] <= (i + 0.5) * step:
            j += 1
        pool.append(items[j])
    return pool


@dataclass(frozen=True)
class _Feature:
    name: str
    route: str
    method: str
    weight: float
    mu: float
    sigma: float
    statuses: tuple[int, ...]  # 128 entries
    value_median: float
    synthetic: bool


@dataclass(frozen=True)
class _Site:
    id: str
    type: str
    weight: float
    template: str
    fields: tuple[str, ...]
    frames: tuple[tuple[str, str, str, int, str, bool], ...]  # module, fn, file, line, code, app
    status: int
    handled: bool
    wrapped: bool = False  # reported as UpstreamError raised from this site's error


def _features(app: str) -> tuple[_Feature, ...]:
    out = []
    for name, route, method, weight, median, sigma, p_fail, value in _FEATURE_SPECS[app]:
        fails = _FAIL_STATUS[method]
        n_fail = round(p_fail * 128)
        statuses = tuple(fails[i % len(fails)] for i in range(n_fail))
        statuses += (_OK_STATUS[method],) * (128 - n_fail)
        synthetic = name == "health.check"
        out.append(
            _Feature(
                name, route, method, weight, math.log(median), sigma, statuses, value, synthetic
            )
        )
    return tuple(out)


def _sites(app: str) -> tuple[_Site, ...]:
    out = []
    for rank, (etype, mod, fn, code, tmpl, lib, status, handled) in enumerate(_SITE_SPECS, 1):
        site_id = f"{app}-e{rank:02d}"
        shape = zlib.crc32(site_id.encode())
        path = f"/srv/{app}/{app}/"
        frames = [(*f, False) for f in _FRAMEWORK[-(1 + shape % 2) :]]
        frames.append(
            (
                f"{app}.api.handlers",
                "dispatch",
                path + "api/handlers.py",
                42,
                "return await endpoint(request, **params)",
                True,
            )
        )
        if shape & 4:
            frames.append(
                (
                    f"{app}.services.workflow",
                    "run_step",
                    path + "services/workflow.py",
                    117,
                    "return step.run(ctx)",
                    True,
                )
            )
        frames.append(
            (f"{app}.{mod}", fn, path + mod.replace(".", "/") + ".py", 20 + shape % 300, code, True)
        )
        frames.extend((*f, False) for f in _LIBS[lib])
        fields = tuple(f for _, f, _, _ in string.Formatter().parse(tmpl) if f)
        out.append(
            _Site(
                site_id,
                etype,
                rank**-_ZIPF_S,
                tmpl,
                fields,
                tuple(frames),
                status,
                handled,
                lib in _WRAPPED_LIBS,
            )
        )
    return tuple(out)


def _line_shift(filename: str, release: str) -> int:
    """How far a file's lines moved in a release: stable per (file, release), often zero."""
    h = zlib.crc32(f"{filename}@{release}".encode())
    return 0 if h % 3 == 0 else h % 9 - 2


def _bump(release: str) -> str:
    major, minor, patch = release.split(".")
    return f"{major}.{minor}.{int(patch) + 1}"


class _Host:
    """One machine: its worker instances and the bounded random walks behind its metrics."""

    def __init__(self, env: _Env, index: int, rng: random.Random) -> None:
        self.env = env
        self.name = f"{env.app}-{env.env}-{index}"
        self.instances = (f"{self.name}/w1", f"{self.name}/w2")
        self.cores = rng.choice((4, 8))
        self.phase_ms = 0
        self.cpu_noise = 0.0
        self.mem = rng.uniform(0.4, 0.6)
        self.fs = rng.uniform(0.3, 0.6)
        self.rss = rng.uniform(3e8, 6e8)
        self.fd_noise = rng.uniform(0, 20)
        self.threads = float(rng.randint(24, 40))
        self.sess_noise = 0.0


class _Env:
    """One app in one environment: what it runs, where, and how often it fails."""

    def __init__(self, app: str, env: str, rng: random.Random) -> None:
        release, n_hosts, share = TOPOLOGY[app][env]
        self.app, self.env, self.release, self.share = app, env, release, share
        self.latest = release  # highest release ever deployed; a rollback goes below it
        self.p_err = _ERROR_RATE[env]
        self.features = _features(app)
        self.sites = _sites(app)
        self.flags = {name: rng.random() < 0.5 for name in _FLAGS[app]}
        self.hosts = [_Host(self, i, rng) for i in range(1, n_hosts + 1)]


@dataclass(frozen=True)
class _Active:
    index: int
    incident: Incident
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class _EnvRegime:
    """One env's traffic tables while a given set of incidents is active."""

    env: _Env
    features: list[tuple[_Feature, float, str | None]]  # pool: feature, latency x, incident
    slots: list[tuple[_Host, str, float, str | None]]  # host, instance, latency x, incident
    sites: list[tuple[_Site, str | None]]  # pool
    p_err: float


@dataclass(frozen=True)
class _Regime:
    envs: list[_EnvRegime]  # pool weighted by request traffic
    error_envs: list[_EnvRegime]  # pool weighted by error traffic
    volume: float  # request traffic relative to no incident


def _resolve_target(kind: str, app: str, env: str, target: str | None) -> str:
    """The incident's target, defaulted and checked; ValueError naming what is wrong."""
    if kind not in INCIDENT_KINDS:
        raise ValueError(f"unknown incident kind {kind!r}; expected one of {INCIDENT_KINDS}")
    if app not in TOPOLOGY:
        raise ValueError(f"unknown app {app!r}; expected one of {tuple(TOPOLOGY)}")
    if env not in TOPOLOGY[app]:
        raise ValueError(f"unknown env {env!r} for {app}; expected one of {tuple(TOPOLOGY[app])}")
    if kind == "cpu-saturation":
        choices = [f"{app}-{env}-{i}" for i in range(1, TOPOLOGY[app][env][1] + 1)]
        target = target or choices[0]
    elif kind == "error-spike":
        by_type = {s.type: s.id for s in _sites(app)}
        target = by_type.get(target or "", target) or _DEFAULT_TARGET[kind][app]
        choices = list(by_type.values())
    else:
        choices = [f[0] for f in _FEATURE_SPECS[app]]
        target = target or _DEFAULT_TARGET[kind][app]
    if target not in choices:
        raise ValueError(f"unknown {kind} target {target!r} for {app}/{env}; one of {choices}")
    return target


def _parse_span(text: str, what: str, signed: bool) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    unit = next((u for u in ("ms", "s", "m", "h") if text.endswith(u)), "")
    try:
        value = float(text[: len(text) - len(unit)]) * units.get(unit, 1.0)
    except ValueError:
        raise ValueError(f"bad {what} {text!r}: expected a number with unit ms/s/m/h") from None
    if not math.isfinite(value):
        raise ValueError(f"bad {what} {text!r}: must be finite")
    if not signed and (value <= 0 or text[:1] == "+"):
        raise ValueError(f"bad {what} {text!r}: must be a positive span without sign")
    return value


def parse_incident(text: str, now: datetime) -> Incident:
    """Parse ``KIND@START/DURATION[:APP[/ENV[/TARGET]]]``, e.g. ``error-spike@+60s/120s``.

    START is an offset from ``now`` (``+60s``, ``-5m``, ``0``); spans take ms, s, m or h.
    """
    text = text.strip()
    kind, at, rest = text.partition("@")
    if not at:
        raise ValueError(f"bad incident {text!r}: expected KIND@START/DURATION[:APP/ENV/TARGET]")
    if kind not in INCIDENT_KINDS:
        raise ValueError(f"unknown incident kind {kind!r}; expected one of {INCIDENT_KINDS}")
    timing, _, scope = rest.partition(":")
    start, slash, length = timing.partition("/")
    if not slash:
        raise ValueError(f"bad incident {text!r}: missing /DURATION after the start offset")
    offset = _parse_span(start, "start offset", signed=True)
    duration = _parse_span(length, "duration", signed=False)
    parts = scope.split("/", 2) if scope else []
    app = parts[0] if parts else "checkout"
    env = parts[1] if len(parts) > 1 else "prod"
    target = _resolve_target(kind, app, env, parts[2] if len(parts) > 2 else None)
    return Incident(
        kind, now + timedelta(seconds=offset), timedelta(seconds=duration), app, env, target
    )


class Simulator:
    """Seeded generator of usage, error, health and change events (see module docstring).

    ``rate`` is the mean request rate; the diurnal factor puts weekday 15:00 at 1.75x it and
    03:00 at 0.35x; ``diurnal=False`` keeps the rate flat at ``rate`` at every hour (tests and
    load runs whose volume must not depend on the clock). With ``origin="user"`` health-check requests are marked ``synthetic``;
    any other origin (e.g. ``"test"``) marks every event, so simulated traffic can be told
    apart from real traffic downstream.
    """

    def __init__(
        self,
        seed: int = 7,
        rate: float = 1000.0,
        health_interval: float = 10.0,
        incidents: Sequence[Incident] = (),
        origin: str = "user",
        diurnal: bool = True,
    ) -> None:
        if rate < 0 or not math.isfinite(rate):
            raise ValueError(f"rate must be a finite number >= 0, got {rate!r}")
        if not health_interval > 0:
            raise ValueError(f"health_interval must be > 0 seconds, got {health_interval!r}")
        if origin not in ("user", "test", "synthetic"):
            raise ValueError(f"origin must be user, test or synthetic, got {origin!r}")
        self.rate, self.origin = rate, origin
        self._shape: Callable[[int], float] = _diurnal if diurnal else _flat
        self._rng = rng = random.Random(seed)
        self._envs = [_Env(app, env, rng) for app in TOPOLOGY for env in TOPOLOGY[app]]
        self._hosts = [h for e in self._envs for h in e.hosts]
        self._interval_ms = max(1, round(health_interval * 1000))
        for i, host in enumerate(self._hosts):
            host.phase_ms = self._interval_ms * i // len(self._hosts)
        self._incidents = [self._activate(i, inc) for i, inc in enumerate(incidents)]
        self._users = [f"user-{i:04d}" for i in range(N_USERS)]
        self._user_pool = _weighted_pool(
            range(N_USERS), [(i + 5) ** -1.05 for i in range(N_USERS)], 16
        )
        tenants = _weighted_pool(
            range(N_CUSTOMERS), [(i + 2) ** -0.9 for i in range(N_CUSTOMERS)], 12
        )
        self._customer_of = [f"cust-{tenants[rng.getrandbits(12)]:03d}" for _ in range(N_USERS)]
        self._session_end = [0] * N_USERS
        self._session_id = [""] * N_USERS
        self._normals = [rng.gauss(0.0, 1.0) for _ in range(1 << _NORMAL_BITS)]
        self._regimes: dict[tuple[int, ...], _Regime] = {}
        self._traces: dict[tuple[str, str], tuple[tuple[dict[str, Any], ...], str]] = {}
        self._rollback: dict[int, str] = {}
        self._carry = 0.0
        self._sec = -1
        self._sec_text = ""

    def _activate(self, index: int, inc: Incident) -> _Active:
        target = _resolve_target(inc.kind, inc.app, inc.env, inc.target)
        start = _ms(inc.start)
        return _Active(
            index,
            replace(inc, target=target),
            start,
            start + max(0, round(inc.duration.total_seconds() * 1000)),
        )

    # -- public API ---------------------------------------------------------------------------

    def tick(self, start: datetime, seconds: float) -> list[dict[str, Any]]:
        """Every event with ``ts`` in ``[start, start+seconds)``, sorted by ``ts``."""
        lo, hi = _ms(start), _ms(start + timedelta(seconds=seconds))
        out: list[dict[str, Any]] = []
        if hi <= lo:
            return out
        changes = self._draw_changes(lo, hi)
        extra = [t for t, _, _ in changes]
        extra.extend(range(lo - lo % _MINUTE_MS + _MINUTE_MS, hi, _MINUTE_MS))  # diurnal steps
        with _gc_paused():
            for a, b in self._pieces(lo, hi, extra):
                self._incident_edges(a, out)
                while changes and changes[0][0] == a:
                    _, env, change_type = changes.pop(0)
                    self._change(a, env, change_type, out)
                self._traffic(a, b, out)
                self._health_between(a, b, out)
            out.sort(key=_TS_KEY)
        return out

    def generate(self, kind: str, n: int, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Exactly ``n`` events of ``kind`` with ``ts`` spread uniformly over ``[start, end)``."""
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {kind!r}; expected one of {EVENT_KINDS}")
        lo, hi = _ms(start), _ms(end)
        if n < 0 or (n and hi <= lo):
            raise ValueError(f"need n >= 0 and start < end (ms precision), got {n}, {start}, {end}")
        times = self._spread(lo, hi, n) if n else []
        out: list[dict[str, Any]] = []
        r = self._rng.random
        with _gc_paused():
            if kind in ("usage", "error"):
                for a, b in self._pieces(lo, hi, ()):
                    batch = times[bisect_left(times, a) : bisect_left(times, b)]
                    if not batch:
                        continue
                    if kind == "usage":
                        self._requests(batch, self._regime(a), out, with_errors=False)
                    else:
                        self._errors(batch, self._regime(a), out)
            elif kind == "health":
                for ms in times:
                    self._health(ms, self._hosts[int(r() * len(self._hosts))], out)
            else:
                for ms in times:
                    env = self._envs[int(r() * len(self._envs))]
                    self._change(ms, env, "deploy" if r() < 0.25 else "flag", out)
        return out

    def _pieces(self, lo: int, hi: int, extra: Sequence[int]) -> list[tuple[int, int]]:
        """``[lo, hi)`` cut at incident edges and ``extra`` times, as consecutive intervals."""
        cuts = {lo, hi, *extra}
        cuts.update(t for a in self._incidents for t in (a.start_ms, a.end_ms) if lo < t < hi)
        edges = sorted(cuts)
        return list(zip(edges, edges[1:], strict=False))

    # -- time and ids -------------------------------------------------------------------------

    def _ts(self, ms: int) -> str:
        sec = ms // 1000
        if sec != self._sec:
            self._sec = sec
            self._sec_text = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        return self._sec_text + _MS_SUFFIX[ms % 1000]

    def _event_id(self, ms: int) -> str:
        h = self._rng.randbytes(10).hex()
        return (
            f"{ms >> 16:08x}-{_UUID_LOW[ms & 0xFFFF]}{h[:3]}-{_HEX_VARIANT[h[3]]}{h[4:7]}-{h[7:19]}"
        )

    # -- incidents ----------------------------------------------------------------------------

    def _regime(self, ms: int) -> _Regime:
        key = tuple(a.index for a in self._incidents if a.start_ms <= ms < a.end_ms)
        regime = self._regimes.get(key)
        if regime is None:
            regime = self._regimes[key] = self._build_regime([self._incidents[i] for i in key])
        return regime

    def _build_regime(self, active: list[_Active]) -> _Regime:
        env_regimes, volumes = [], []
        for env in self._envs:
            mine = [
                a.incident for a in active if (a.incident.app, a.incident.env) == (env.app, env.env)
            ]
            er, volume = self._env_regime(env, mine)
            env_regimes.append(er)
            volumes.append(env.share * volume)
        errors = [v * er.p_err for v, er in zip(volumes, env_regimes, strict=True)]
        return _Regime(
            envs=_weighted_pool(env_regimes, volumes, _POOL_BITS),
            error_envs=_weighted_pool(env_regimes, errors, _POOL_BITS),
            volume=sum(volumes) / sum(e.share for e in self._envs),
        )

    def _env_regime(self, env: _Env, incidents: list[Incident]) -> tuple[_EnvRegime, float]:
        feats = env.features
        fweight = [f.weight for f in feats]
        flat: list[float] = [1.0] * len(feats)
        ftag: list[str | None] = [None] * len(feats)
        sweight = [s.weight for s in env.sites]
        stag: list[str | None] = [None] * len(env.sites)
        saturated = {i.target for i in incidents if i.kind == "cpu-saturation"}
        for inc in incidents:
            if inc.kind == "error-spike":
                i = next(k for k, s in enumerate(env.sites) if s.id == inc.target)
                sweight[i] *= 30
                stag[i] = inc.kind
            elif inc.kind != "cpu-saturation":  # saturation acts per host, below
                i = next(k for k, f in enumerate(feats) if f.name == inc.target)
                if inc.kind == "usage-drop":
                    fweight[i] *= 0.002
                else:
                    flat[i] *= 5.0
                ftag[i] = inc.kind
        base_sites = sum(s.weight for s in env.sites)
        regime = _EnvRegime(
            env=env,
            features=_weighted_pool(list(zip(feats, flat, ftag, strict=True)), fweight, _POOL_BITS),
            slots=_weighted_pool(
                [
                    (h, inst, 3.0, "cpu-saturation")
                    if h.name in saturated
                    else (h, inst, 1.0, None)
                    for h in env.hosts
                    for inst in h.instances
                ],
                [1.0] * sum(len(h.instances) for h in env.hosts),
                _SLOT_BITS,
            ),
            sites=_weighted_pool(list(zip(env.sites, stag, strict=True)), sweight, _POOL_BITS),
            p_err=env.p_err * sum(sweight) / base_sites,
        )
        return regime, sum(fweight) / sum(f.weight for f in feats)

    def _incident_edges(self, ms: int, out: list[dict[str, Any]]) -> None:
        """A usage drop starts with a bad deploy and ends with its rollback."""
        for act in self._incidents:
            if act.incident.kind != "usage-drop" or ms not in (act.start_ms, act.end_ms):
                continue
            env = next(
                e for e in self._envs if (e.app, e.env) == (act.incident.app, act.incident.env)
            )
            if ms == act.start_ms:
                self._rollback[act.index] = env.release
                self._deploy(ms, env, _bump(env.latest), out, "usage-drop", "deploy")
            elif act.index in self._rollback:
                self._deploy(ms, env, self._rollback.pop(act.index), out, "usage-drop", "rollback")

    # -- usage and errors ---------------------------------------------------------------------

    def _traffic(self, lo: int, hi: int, out: list[dict[str, Any]]) -> None:
        regime = self._regime(lo)
        mid = (lo + hi) // 2
        expected = self.rate * self._shape(mid) * regime.volume * (hi - lo) / 1000 + self._carry
        n = int(expected)
        self._carry = expected - n
        if n:
            self._requests(self._spread(lo, hi, n), regime, out, True)

    def _spread(self, lo: int, hi: int, n: int) -> list[int]:
        """``n`` sorted uniform times in ``[lo, hi)``: one per equal slice, so no sort needed."""
        r, step = self._rng.random, (hi - lo) / n
        times = [lo + int((i + r()) * step) for i in range(n)]
        for i in range(n - 1, -1, -1):  # float rounding can land the last ones on hi
            if times[i] < hi:
                break
            times[i] = hi - 1
        return times

    def _requests(
        self, times: list[int], regime: _Regime, out: list[dict[str, Any]], with_errors: bool
    ) -> None:
        """One usage event per time (plus an error event when a request fails)."""
        rng = self._rng
        r, bits = rng.random, rng.getrandbits
        exp = math.exp
        normals, user_pool, users = self._normals, self._user_pool, self._users
        customer_of, sess_end, sess_id = self._customer_of, self._session_end, self._session_id
        envs, origin, user_origin = regime.envs, self.origin, self.origin
        synthetic_origin = "synthetic" if origin == "user" else origin
        append, variant, low, suffix = out.append, _HEX_VARIANT, _UUID_LOW, _MS_SUFFIX
        hexes, k = rng.randbytes(10 * len(times)).hex(), 0
        sec, sec_text, high, high_text = -1, "", -1, ""
        for ms in times:
            if ms // 1000 != sec:
                sec_text, sec = self._ts(ms)[:-4], ms // 1000
            if ms >> 16 != high:
                high = ms >> 16
                high_text = f"{high:08x}-"
            er = envs[bits(_POOL_BITS)]
            env = er.env
            feat, flat, ftag = er.features[bits(_POOL_BITS)]
            host, inst, hlat, htag = er.slots[bits(_SLOT_BITS)]
            if feat.synthetic:
                uid = cid = sid = ""
                origin = synthetic_origin
            else:
                u = user_pool[bits(16)]
                uid, cid = users[u], customer_of[u]
                if ms >= sess_end[u] or ms < sess_end[u] - 5_000_000:
                    sess_end[u] = ms + 300_000 + bits(22)
                    sess_id[u] = f"{bits(64):016x}"
                sid = sess_id[u]
                origin = user_origin
            dur = exp(feat.mu + feat.sigma * normals[bits(_NORMAL_BITS)]) * flat * hlat
            tag = ftag or htag
            status = feat.statuses[bits(7)]
            failed = r() < er.p_err
            if failed:
                site, stag = er.sites[bits(_POOL_BITS)]
                status = site.status
            h = hexes[k : k + 20]
            k += 20
            event = {
                "event_id": f"{high_text}{low[ms & 0xFFFF]}{h[:3]}-{variant[h[3]]}{h[4:7]}-{h[7:19]}",
                "kind": "usage",
                "ts": sec_text + suffix[ms % 1000],
                "app": env.app,
                "env": env.env,
                "release": env.release,
                "host": host.name,
                "instance": inst,
                "session_id": sid,
                "user_id": uid,
                "customer_id": cid,
                "origin": origin,
                "attributes": {"sim.incident": tag} if tag else {},
                "name": feat.name,
                "route": feat.route,
                "method": feat.method,
                "status_code": status,
                "duration_ms": int(dur * 100 + 0.5) / 100,
            }
            if feat.value_median and status < 400:
                event["value"] = round(feat.value_median * exp(0.8 * normals[bits(16)]), 2)
            append(event)
            if failed and with_errors:
                context = (host.name, inst, sid, uid, cid, origin, feat.route)
                append(self._error_event(ms, env, site, stag or htag, context))

    def _errors(self, times: list[int], regime: _Regime, out: list[dict[str, Any]]) -> None:
        rng = self._rng
        for ms in times:
            er = regime.error_envs[rng.getrandbits(_POOL_BITS)]
            site, stag = er.sites[rng.getrandbits(_POOL_BITS)]
            host, inst, _, htag = er.slots[rng.getrandbits(_SLOT_BITS)]
            feat = er.features[rng.getrandbits(_POOL_BITS)][0]
            u = self._user_pool[rng.getrandbits(16)]
            sid = self._session_id[u] or f"{rng.getrandbits(64):016x}"
            context = (
                host.name,
                inst,
                sid,
                self._users[u],
                self._customer_of[u],
                self.origin,
                feat.route,
            )
            out.append(self._error_event(ms, er.env, site, stag or htag, context))

    def _error_event(
        self, ms: int, env: _Env, site: _Site, tag: str | None, context: tuple[str, ...]
    ) -> dict[str, Any]:
        host, inst, sid, uid, cid, origin, route = context
        frames, prefix = self._trace(site, env.release)
        rng = self._rng
        message = site.template.format_map({f: _FILLERS[f](rng) for f in site.fields})
        attributes = {"sim.site": site.id}
        if tag:
            attributes["sim.incident"] = tag
        etype, text = site.type, f"{prefix}{site.type}: {message}"
        if site.wrapped:
            etype, frames, text = self._wrap(site, env, message, frames, text, attributes)
            message = _WRAPPER_MESSAGE
        return {
            "event_id": self._event_id(ms),
            "kind": "error",
            "ts": self._ts(ms),
            "app": env.app,
            "env": env.env,
            "release": env.release,
            "host": host,
            "instance": inst,
            "session_id": sid,
            "user_id": uid,
            "customer_id": cid,
            "origin": origin,
            "attributes": attributes,
            "exception_type": etype,
            "exception_message": message,
            "stacktrace": text,
            "frames": [dict(f) for f in frames],
            "handled": site.handled,
            "level": "warning" if site.handled else "error",
            "route": route,
        }

    def _wrap(
        self,
        site: _Site,
        env: _Env,
        message: str,
        frames: tuple[dict[str, Any], ...],
        text: str,
        attributes: dict[str, str],
    ) -> tuple[str, tuple[dict[str, Any], ...], str]:
        """The app's UpstreamError raised from the site's error: type, frames, traceback."""
        wrapper = f"{env.app}.api.errors.UpstreamError"
        cause = {"type": site.type, "message": message, "frames": frames, "relation": "cause"}
        attributes["exception.chain"] = json.dumps([cause], separators=(",", ":"))
        # Re-raised in the handler (the first in-app frame), so the outer stack ends there.
        outer = frames[: next(i for i, f in enumerate(frames) if f["in_app"]) + 1]
        lines = "".join(
            f'  File "{f["filename"]}", line {f["lineno"]}, in {f["function"]}\n    '
            + ("raise UpstreamError(MESSAGE) from exc" if f["in_app"] else "...")
            + "\n"
            for f in outer
        )
        text = (
            f"{text}\n\nThe above exception was the direct cause of the following exception:"
            f"\n\nTraceback (most recent call last):\n{lines}{wrapper}: {_WRAPPER_MESSAGE}"
        )
        return wrapper, outer, text

    def _trace(self, site: _Site, release: str) -> tuple[tuple[dict[str, Any], ...], str]:
        """Frames and traceback text of a site as built in ``release`` (lines shift a little)."""
        cached = self._traces.get((site.id, release))
        if cached is None:
            frames, lines = [], ["Traceback (most recent call last):\n"]
            for module, fn, filename, line, code, in_app in site.frames:
                lineno = line + _line_shift(filename, release) if in_app else line
                frames.append(
                    {
                        "module": module,
                        "function": fn,
                        "filename": filename,
                        "lineno": lineno,
                        "in_app": in_app,
                    }
                )
                lines.append(f'  File "{filename}", line {lineno}, in {fn}\n    {code}\n')
            cached = self._traces[(site.id, release)] = (tuple(frames), "".join(lines))
        return cached

    # -- health -------------------------------------------------------------------------------

    def _health_between(self, lo: int, hi: int, out: list[dict[str, Any]]) -> None:
        step = self._interval_ms
        for host in self._hosts:
            ms = host.phase_ms + -(-(lo - host.phase_ms) // step) * step
            while ms < hi:
                self._health(ms, host, out)
                ms += step

    def _health(self, ms: int, host: _Host, out: list[dict[str, Any]]) -> None:
        rng = self._rng
        load = self._shape(ms) / 1.75  # 0.13 (weekend night) .. 1 (weekday 15:00)
        rps = self.rate * host.env.share * self._shape(ms) / len(host.env.hosts)
        host.cpu_noise = _walk(rng, host.cpu_noise, 0.02, -0.1, 0.1)
        host.mem = _walk(rng, host.mem, 0.005, 0.35, 0.8)
        host.fs = host.fs + rng.uniform(0, 2e-5) if host.fs < 0.92 else 0.55  # log cleanup
        host.rss = _walk(rng, host.rss + 2e5, 4e6, 2.5e8, 1.6e9)  # a slow leak, then restarts
        host.fd_noise = _walk(rng, host.fd_noise, 2.0, 0.0, 40.0)
        host.threads = _walk(rng, host.threads, 1.0, 16.0, 64.0)
        host.sess_noise = _walk(rng, host.sess_noise, 0.03, -0.2, 0.2)
        cpu = min(0.92, max(0.02, 0.05 + 0.55 * load + host.cpu_noise))
        load_avg = cpu * host.cores * rng.uniform(0.85, 1.1)
        threads = host.threads
        tag = self._saturation(host, ms)
        if tag:
            cpu = rng.uniform(0.95, 1.0)
            load_avg = host.cores * rng.uniform(1.8, 3.0)
            threads, rps = threads + 16, rps * 0.85
        metrics = {
            "system.cpu.utilization": round(cpu, 4),
            "system.memory.utilization": round(host.mem + 0.05 * load, 4),
            "system.filesystem.utilization": round(host.fs, 5),
            "system.cpu.load_average.1m": round(load_avg, 2),
            "process.memory.usage": float(round(host.rss)),
            "process.open_file_descriptor.count": float(round(40 + 0.4 * rps + host.fd_noise)),
            "process.thread.count": float(round(threads)),
            "app.sessions.open": float(round(rps * 25 * (1 + host.sess_noise))),
            "app.throughput.requests_per_second": round(rps * rng.uniform(0.9, 1.1), 2),
        }
        env = host.env
        out.append(
            {
                "event_id": self._event_id(ms),
                "kind": "health",
                "ts": self._ts(ms),
                "app": env.app,
                "env": env.env,
                "release": env.release,
                "host": host.name,
                "instance": host.instances[0],
                "origin": self.origin,
                "attributes": {"sim.incident": tag} if tag else {},
                "metrics": metrics,
            }
        )

    def _saturation(self, host: _Host, ms: int) -> str | None:
        for act in self._incidents:
            inc = act.incident
            hit = inc.kind == "cpu-saturation" and inc.target == host.name
            if hit and act.start_ms <= ms < act.end_ms:
                return inc.kind
        return None

    # -- changes ------------------------------------------------------------------------------

    def _draw_changes(self, lo: int, hi: int) -> list[tuple[int, _Env, str]]:
        """Deploys and flag flips falling in ``[lo, hi)``: Poisson counts, uniform times."""
        out = []
        seconds = (hi - lo) / 1000
        for env in self._envs:
            for change_type, every in (
                ("deploy", _DEPLOY_EVERY_S[env.env]),
                ("flag", _FLAG_FLIP_EVERY_S),
            ):
                for _ in range(_poisson(self._rng, seconds / every)):
                    out.append((lo + int(self._rng.random() * (hi - lo)), env, change_type))
        out.sort(key=itemgetter(0))
        return out

    def _change(self, ms: int, env: _Env, change_type: str, out: list[dict[str, Any]]) -> None:
        if change_type == "deploy":
            self._deploy(ms, env, _bump(env.latest), out, None, "deploy")
            return
        flag = self._rng.choice(sorted(env.flags))
        before = env.flags[flag]
        env.flags[flag] = not before
        actor = self._rng.choice(_ACTORS)
        out.append(
            self._change_event(
                ms,
                env,
                "flag",
                flag,
                ("off", "on")[not before],
                ("off", "on")[before],
                actor,
                f"{actor} flipped {flag}",
                None,
            )
        )

    def _deploy(
        self,
        ms: int,
        env: _Env,
        release: str,
        out: list[dict[str, Any]],
        tag: str | None,
        verb: str,
    ) -> None:
        before, env.release = env.release, release
        if verb != "rollback":
            env.latest = release
        note = f"{verb} {env.app} {before} -> {release} to {env.env}"
        out.append(
            self._change_event(
                ms, env, "deploy", release, release, before, "ci-pipeline", note, tag
            )
        )

    def _change_event(
        self,
        ms: int,
        env: _Env,
        change_type: str,
        name: str,
        value: str,
        previous: str,
        actor: str,
        description: str,
        tag: str | None,
    ) -> dict[str, Any]:
        return {
            "event_id": self._event_id(ms),
            "kind": "change",
            "ts": self._ts(ms),
            "app": env.app,
            "env": env.env,
            "release": env.release,
            "origin": self.origin,
            "attributes": {"sim.incident": tag} if tag else {},
            "change_type": change_type,
            "name": name,
            "value": value,
            "previous_value": previous,
            "actor": actor,
            "description": description,
        }


def _walk(rng: random.Random, x: float, step: float, lo: float, hi: float) -> float:
    """One step of a random walk reflected into ``[lo, hi]``."""
    x += rng.gauss(0.0, step)
    if x < lo:
        x = 2 * lo - x
    if x > hi:
        x = 2 * hi - x
    return min(hi, max(lo, x))


def _poisson(rng: random.Random, lam: float) -> int:
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def run_realtime(
    emitter: DictEmitter,
    simulator: Simulator,
    *,
    duration: float | None,
    stop: threading.Event | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Emit the simulator's traffic as it happens, in 100 ms steps; return how many were accepted.

    Each step covers event time from the previous step's end to now, so steps that run late
    lose nothing. Stops after ``duration`` seconds (None: never) or when ``stop`` is set;
    waits on ``stop`` between steps rather than spinning. Flushing is the caller's job.
    """
    stop = stop or threading.Event()
    began = time.monotonic()
    deadline = None if duration is None else began + duration
    last = datetime.now(UTC) - timedelta(seconds=0.1)
    next_step, sent = began, 0
    while not stop.is_set():
        now = datetime.now(UTC)
        sent += emitter.emit_many(simulator.tick(last, (now - last).total_seconds()))
        last = now
        if on_progress is not None:
            on_progress(sent)
        clock = time.monotonic()
        if deadline is not None and clock >= deadline:
            break
        next_step = max(next_step + 0.1, clock)
        wake = next_step if deadline is None else min(next_step, deadline)
        stop.wait(max(0.0, wake - clock))
    return sent
