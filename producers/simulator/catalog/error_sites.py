"""The code sites that raise, ranked most to least frequent (weights follow a Zipf law)."""

from __future__ import annotations

from dataclasses import dataclass

#: Zipf exponent: the site of rank r gets weight r ** -ZIPF_S
ZIPF_S = 1.2
#: the message of the generic error an app raises from a wrapped library's error
WRAPPER_MESSAGE = "upstream dependency failed while handling the request"


@dataclass(frozen=True)
class ErrorSiteSpec:
    """One place in an app's code that raises, and what the error looks like."""

    type: str  # the exception type as reported
    module: str  # the raising module, under the app's package
    function: str
    code: str  # the source line that raises or calls out
    message: str  # template: each {placeholder} is filled per event
    library: str = ""  # key of LIBRARIES: the frames below the app's ("": none)
    status: int = 500  # the HTTP status the request ends with
    handled: bool = False  # caught and reported at level "warning"


#: ranked most to least frequent; a site's id is ``<app>-e<rank:02d>``
ERROR_SITES: tuple[ErrorSiteSpec, ...] = (
    ErrorSiteSpec(
        type="KeyError",
        module="cart.service",
        function="get_line_item",
        code="line = cart.items[sku]",
        message="'{sku}'",
    ),
    ErrorSiteSpec(
        type="TimeoutError",
        module="clients.inventory",
        function="reserve_stock",
        code="raise TimeoutError(msg)",
        message="timed out after {ms} ms waiting for inventory.internal:{port}",
        status=504,
    ),
    ErrorSiteSpec(
        type="requests.exceptions.ConnectionError",
        module="clients.payments",
        function="authorize",
        code="resp = self.session.post(url, json=body, timeout=5)",
        message="HTTPSConnectionPool(host='payments.internal', port=443): Max retries exceeded with url: /v2/authorizations/{hex} (Caused by NewConnectionError('Failed to establish a new connection: [Errno 111] Connection refused'))",
        library="requests",
        status=502,
    ),
    ErrorSiteSpec(
        type="psycopg.OperationalError",
        module="db.orders",
        function="fetch_order",
        code="cur.execute(ORDER_BY_ID, (order_id,))",
        message='connection to server at "{ip}", port 5432 failed: server closed the connection unexpectedly',
        library="psycopg",
    ),
    ErrorSiteSpec(
        type="ValueError",
        module="api.params",
        function="parse_quantity",
        code="qty = int(raw)",
        message="invalid literal for int() with base 10: '{word}'",
    ),
    ErrorSiteSpec(
        type="AttributeError",
        module="pricing.rules",
        function="apply_discount",
        code="pct = promo.percent / 100",
        message="'NoneType' object has no attribute '{attr}'",
    ),
    ErrorSiteSpec(
        type="redis.exceptions.ConnectionError",
        module="cache.sessions",
        function="load_session",
        code="raw = self.redis.get(key)",
        message="Error 111 connecting to {ip}:6379. Connection refused.",
        library="redis",
    ),
    ErrorSiteSpec(
        type="httpx.ReadTimeout",
        module="clients.search",
        function="query",
        code="resp = await self.client.get(url)",
        message="timed out reading /v1/search?q={slug} after {ms} ms",
        library="httpx",
        status=504,
    ),
    ErrorSiteSpec(
        type="json.JSONDecodeError",
        module="clients.recommendations",
        function="parse_items",
        code="payload = json.loads(body)",
        message="Expecting value: line 1 column {n} (char {n2})",
        library="json",
        status=502,
    ),
    ErrorSiteSpec(
        type="sqlalchemy.exc.IntegrityError",
        module="db.carts",
        function="save_items",
        code="session.flush()",
        message='(psycopg.errors.UniqueViolation) duplicate key value violates unique constraint "cart_items_pkey" DETAIL: Key (cart_id, sku)=({id}, {sku}) already exists.',
        library="sqlalchemy",
    ),
    ErrorSiteSpec(
        type="OutOfStockError",
        module="inventory.reservations",
        function="reserve",
        code="raise OutOfStockError(sku, wh)",
        message="sku {sku} out of stock in warehouse {wh}",
        status=409,
        handled=True,
    ),
    ErrorSiteSpec(
        type="stripe.error.CardError",
        module="payments.gateway",
        function="capture",
        code="intent = stripe.PaymentIntent.capture(intent_id)",
        message="Your card was declined. (Request req_{hex}; decline_code={code})",
        library="stripe",
        status=402,
        handled=True,
    ),
    ErrorSiteSpec(
        type="TypeError",
        module="api.serializers",
        function="render_order",
        code="return json.dumps(order, cls=Encoder)",
        message="Object of type {cls} is not JSON serializable",
        library="json_enc",
    ),
    ErrorSiteSpec(
        type="PermissionError",
        module="storage.receipts",
        function="write_pdf",
        code='with open(path, "wb") as fh:',
        message="[Errno 13] Permission denied: '/var/lib/shop/receipts/{id}.pdf'",
    ),
    ErrorSiteSpec(
        type="botocore.exceptions.ClientError",
        module="storage.images",
        function="upload_thumbnail",
        code="self.s3.put_object(Bucket=bucket, Key=key, Body=data)",
        message="An error occurred (SlowDown) when calling the PutObject operation (reached max retries: 4): Please reduce your request rate. Key: thumbs/{hex}.jpg",
        library="botocore",
        status=503,
    ),
    ErrorSiteSpec(
        type="pydantic_core.ValidationError",
        module="api.schemas",
        function="parse_address",
        code="return Address.model_validate(body)",
        message="1 validation error for Address\nemail\n  value is not a valid email address: '{email}'",
        library="pydantic",
        status=422,
        handled=True,
    ),
    ErrorSiteSpec(
        type="IndexError",
        module="search.pagination",
        function="page_slice",
        code="return pages[page_no]",
        message="page {n} out of range (last page {n2})",
    ),
    ErrorSiteSpec(
        type="UnicodeDecodeError",
        module="imports.feed",
        function="read_row",
        code='text = raw.decode("utf-8")',
        message="'utf-8' codec can't decode byte 0x{byte} in position {n}: invalid start byte",
    ),
    ErrorSiteSpec(
        type="FileNotFoundError",
        module="views.templates",
        function="load_template",
        code="with open(template_path) as fh:",
        message="[Errno 2] No such file or directory: '/srv/shop/templates/{slug}.html'",
    ),
    ErrorSiteSpec(
        type="aiohttp.ClientResponseError",
        module="clients.pricing",
        function="fetch_prices",
        code="resp.raise_for_status()",
        message="503, message='Service Unavailable', url=URL('http://pricing.internal/v1/prices/{sku}')",
        library="aiohttp",
        status=502,
    ),
    ErrorSiteSpec(
        type="LookupError",
        module="shipping.zones",
        function="zone_for",
        code="raise LookupError(msg)",
        message="no shipping zone for postcode '{postcode}'",
    ),
    ErrorSiteSpec(
        type="RuntimeError",
        module="clients.breaker",
        function="call",
        code="raise RuntimeError(msg)",
        message="circuit breaker open for {svc} after {n} failures",
        status=503,
    ),
    ErrorSiteSpec(
        type="ssl.SSLCertVerificationError",
        module="clients.tax",
        function="quote",
        code="resp = self.session.post(url, json=basket, timeout=3)",
        message="[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired (_ssl.c:{n})",
        library="requests",
        status=502,
    ),
    ErrorSiteSpec(
        type="OSError",
        module="locks.files",
        function="acquire",
        code="fd = os.open(path, os.O_CREAT | os.O_EXCL)",
        message="[Errno 24] Too many open files: '/tmp/shop-{hex}.lock'",
    ),
    ErrorSiteSpec(
        type="AssertionError",
        module="cart.totals",
        function="verify_total",
        code="assert total == expected, msg",
        message="cart total mismatch: expected {amount} got {amount2}",
    ),
    ErrorSiteSpec(
        type="decimal.InvalidOperation",
        module="pricing.currency",
        function="round_amount",
        code="return amount.quantize(EXPONENTS[currency])",
        message="cannot quantize {amount} to {currency}",
    ),
    ErrorSiteSpec(
        type="celery.exceptions.TimeLimitExceeded",
        module="tasks.emails",
        function="send_confirmation",
        code="result.get(timeout=limit)",
        message="task send_confirmation[{hex}] exceeded time limit of {n}s",
        library="celery",
    ),
    ErrorSiteSpec(
        type="ConnectionResetError",
        module="clients.loyalty",
        function="award_points",
        code="self.sock.sendall(frame)",
        message="[Errno 104] Connection reset by peer ({ip}:{port})",
        status=502,
    ),
    ErrorSiteSpec(
        type="elasticsearch.NotFoundError",
        module="search.index",
        function="lookup",
        code="return self.es.get(index=index, id=doc_id)",
        message="NotFoundError(404, 'index_not_found_exception', 'no such index [products-{n}]')",
        library="elasticsearch",
    ),
    ErrorSiteSpec(
        type="jwt.exceptions.ExpiredSignatureError",
        module="auth.tokens",
        function="decode_token",
        code='claims = jwt.decode(token, key, algorithms=["RS256"])',
        message="Signature has expired (token of {user} issued {n}s ago)",
        library="jwt",
        status=401,
        handled=True,
    ),
)
