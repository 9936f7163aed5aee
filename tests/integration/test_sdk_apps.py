"""Example apps instrumented with the SDK, driven over real HTTP, through the real pipeline
(Kafka → stream worker + sink → ClickHouse): route templates, statuses, exception types and
users as an analyst queries them; a broker outage the app does not feel."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import shiftright
from shiftright_server.infra.clickhouse import get_client
from shiftright_server.infra.kafka.launcher import KafkaLauncher
from shiftright_server.infra.kafka.topics import create_topics
from shiftright_server.infra.settings import Settings

from tests.integration.conftest import scalar, sql_on, wait_for
from tests.integration.pipeline import Pipeline
from tests.integration.warehouse_fixture import free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "producers" / "sdk" / "examples"
APPS = "app IN ('shop-api', 'catalog')"  # the apps of the example-app test


@pytest.fixture(scope="module")
def examples() -> Iterator[Any]:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import fastapi_app
        import flask_app

        yield fastapi_app, flask_app
    finally:
        sys.path.remove(str(EXAMPLES))


@contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """uvicorn on a free loopback port, in a thread."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """werkzeug's threaded server on a free loopback port."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


def client_for(base: str) -> httpx.Client:
    """A fresh connection per request: uvicorn closes a kept-alive connection after a
    handler raised, racing the client's next request on it."""
    return httpx.Client(base_url=base, limits=httpx.Limits(max_keepalive_connections=0))


def init_sdk(app: str, settings: Settings, **options: Any) -> None:
    shiftright.init(
        app=app,
        env="preprod",
        release="1.0.0",
        kafka=settings.kafka.bootstrap_servers,
        namespace=settings.namespace,
        **options,
    )


def health_delivered(at_least: int) -> None:
    """Wait until the SDK's health thread has had ``at_least`` snapshots delivered."""
    wait_for(
        lambda: shiftright.stats()["delivered_by_kind"].get("health", 0) >= at_least,
        20,
        lambda: f"{at_least} health snapshot(s) delivered: {shiftright.stats()}",
        0.05,
    )


def rows(client: Any, query: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in client.query(query).result_rows]


@pytest.fixture(scope="module")
def pipeline(module_settings: Settings) -> Iterator[Pipeline]:
    """The stream worker and the sink of the module's namespace. The tests that share it
    send as apps of their own and query those apps only."""
    running = Pipeline(module_settings)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def test_fastapi_and_flask_apps_end_as_rows_in_clickhouse(
    module_settings: Settings, pipeline: Pipeline, examples: Any
) -> None:
    settings, sql = module_settings, sql_on(module_settings)
    fastapi_app, flask_app = examples
    try:
        init_sdk("shop-api", settings, health_interval=1.0)
        with serve_asgi(fastapi_app.create_app()) as base, client_for(base) as http:
            for _ in range(5):
                assert http.get("/orders/1", params={"user": "u-1"}).status_code == 200
            assert http.get("/orders/99").status_code == 404
            for order in (1, 3, 5, 2, 4):
                http.post(f"/orders/{order}/pay")
            assert http.get("/health").status_code == 200
            health_delivered(at_least=1)
        assert shiftright.close(30) == 0, shiftright.stats()

        init_sdk("catalog", settings, health_interval=0)
        with serve_wsgi(flask_app.create_app()) as base, client_for(base) as http:
            for _ in range(3):
                assert http.get("/products/sku-1").status_code == 200
            assert http.get("/products/nope").status_code == 404
            assert http.post("/products/sku-1/reserve").status_code == 200
            for _ in range(2):
                assert http.post("/products/zzz/reserve").status_code == 500
        assert shiftright.close(30) == 0

        requests = f"""SELECT app, route, method, status_code, count() FROM events_usage
                       WHERE {APPS} AND name != 'checkout.pay' GROUP BY ALL ORDER BY ALL"""
        expected = [
            ("catalog", "/products/<sku>", "GET", 200, 3),
            ("catalog", "/products/<sku>", "GET", 404, 1),
            ("catalog", "/products/<sku>/reserve", "POST", 200, 1),
            ("catalog", "/products/<sku>/reserve", "POST", 500, 2),
            ("shop-api", "/health", "GET", 200, 1),
            ("shop-api", "/orders/{order_id}", "GET", 200, 5),
            ("shop-api", "/orders/{order_id}", "GET", 404, 1),
            ("shop-api", "/orders/{order_id}/pay", "POST", 200, 3),
            ("shop-api", "/orders/{order_id}/pay", "POST", 500, 2),
        ]
        wait_for(
            lambda: sql(requests) == expected,
            90,
            lambda: f"request rows {sql(requests)}\n{pipeline.log('sink')}",
        )

        errors = f"""SELECT app, exception_type, route, handled, user_id, count()
                     FROM events_error WHERE {APPS} GROUP BY ALL ORDER BY ALL"""
        expected_errors = [
            ("catalog", "KeyError", "/products/<sku>/reserve", False, "u-flask", 2),
            ("shop-api", "fastapi_app.PaymentDeclined", "/orders/{order_id}/pay", False, "", 2),
        ]
        # each topic reaches ClickHouse in its own batches: wait for the error rows too
        wait_for(lambda: sql(errors) == expected_errors, 60, lambda: f"error rows {sql(errors)}")
        snapshots = "SELECT count() FROM events_health WHERE app = 'shop-api'"
        wait_for(lambda: sql(snapshots)[0][0] > 0, 60, "a health snapshot row")
        tracked = f"SELECT count() FROM events_usage WHERE {APPS} AND name = 'checkout.pay'"
        wait_for(lambda: sql(tracked) == [(5,)], 60, lambda: f"checkout.pay rows {sql(tracked)}")
        linked = sql(f"""SELECT count() FROM events_error AS e JOIN events_usage AS u
                         ON e.attributes['request.id'] = u.attributes['request.id']
                         WHERE u.{APPS} AND u.status_code = 500 AND u.name != 'checkout.pay'""")
        assert linked == [(4,)], "each error event shares its request's id"
        in_app = sql("""SELECT tupleElement(frames[-1], 'function'), tupleElement(frames[-1], 'in_app')
                        FROM events_error WHERE app = 'shop-api' LIMIT 1""")
        assert in_app == [("create_app.<locals>.pay", True)]
        assert sql(
            f"SELECT count(), uniqExact(user_id) FROM events_usage WHERE {APPS} AND user_id = 'u-1'"
        ) == [(5, 1)]
        health = sql("""SELECT mapContains(metrics, 'system.cpu.utilization')
                               AND metrics['system.cpu.utilization'] BETWEEN 0 AND 1,
                               metrics['process.memory.usage'] > 0
                        FROM events_health WHERE app = 'shop-api'""")
        assert health and all(row == (True, True) for row in health)
        assert sql("SELECT count() FROM dead_letters") == [(0,)]  # of every test sharing it
    finally:
        shiftright.close(1)


def test_requests_a_test_marked_reach_the_warehouse_as_test_traffic(
    module_settings: Settings, pipeline: Pipeline, examples: Any
) -> None:
    """The baggage header the pytest plugin adds, honoured by a preprod app and stored
    through Kafka, the stream worker and the sink with the test's identity."""
    from shiftright.testing import MarkedTest

    sql = sql_on(module_settings)
    mark = MarkedTest("tests/test_orders.py::test_view[1]", "run-p", "f00d")
    try:
        init_sdk("qa-marked", module_settings, health_interval=0)
        with serve_asgi(examples[0].create_app()) as base, client_for(base) as http:
            assert http.get("/orders/1", headers={"baggage": mark.baggage()}).status_code == 200
            assert http.get("/orders/2").status_code == 200
        assert shiftright.close(30) == 0, shiftright.stats()
    finally:
        shiftright.close(1)
    query = """SELECT origin, attributes['user_agent.synthetic.type'], test_id, test_run,
                      test_commit FROM events_usage
               WHERE app = 'qa-marked' AND route != '' ORDER BY origin"""
    wait_for(lambda: len(sql(query)) == 2, 60, lambda: f"marked rows {sql(query)}")
    assert sql(query) == [
        ("test", "test", "tests/test_orders.py::test_view[1]", "run-p", "f00d"),
        ("user", "", "", "", ""),
    ]


@pytest.mark.usefixtures("pipeline")
def test_mark_deploy_and_flag_from_both_clis(module_settings: Settings) -> None:
    settings, sql = module_settings, sql_on(module_settings)
    env = {
        **os.environ,
        "SHIFTRIGHT_KAFKA__BOOTSTRAP": settings.kafka.bootstrap_servers,
        "SHIFTRIGHT_NAMESPACE": settings.namespace,
    }
    sdk_cli = [
        sys.executable,
        "-m",
        "shiftright",
        "mark",
        "deploy",
        "--app",
        "checkout",
        "--env",
        "prod",
        "--release",
        "1.4.3",
        "--actor",
        "ci-bot",
    ]
    done = subprocess.run(sdk_cli, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "marked deploy of 1.4.3" in done.stdout, done.stderr
    main_cli = [
        sys.executable,
        "-m",
        "shiftright_server.infra.cli",
        "mark",
        "flag",
        "new-checkout",
        "on",
        "--app",
        "checkout",
        "--env",
        "prod",
    ]
    done = subprocess.run(main_cli, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "marked flag new-checkout on" in done.stdout, done.stderr
    query = """SELECT change_type, name, value, previous_value, actor FROM events_change
               WHERE app = 'checkout' ORDER BY change_type"""
    wait_for(lambda: len(sql(query)) == 2, 60, lambda: f"change rows: {sql(query)}")
    assert sql(query)[0] == ("deploy", "1.4.3", "1.4.3", "", "ci-bot")
    assert sql(query)[1][:4] == ("flag", "new-checkout", "on", "off")


def test_unreachable_broker_makes_mark_fail_quickly() -> None:
    from tests.integration.kafka_fixture import free_ports

    [port] = free_ports(1)
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "shiftright",
            "mark",
            "flag",
            "f",
            "off",
            "--app",
            "a",
            "--env",
            "e",
            "--kafka",
            f"127.0.0.1:{port}",
            "--timeout",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "did not acknowledge" in done.stderr
    assert time.monotonic() - started < 20


def _all_stored_once(user: str, sent: int, count: Callable[..., int]) -> None:
    wait_for(
        lambda: count(user) == sent,
        90,
        lambda: f"{user}: {count(user)} of {sent} stored, {shiftright.stats()}",
    )
    assert count(user, distinct=True) == sent, f"{user}: duplicates"


OUTAGE_S = 60.0  # longer than a broker restart or a leader election usually takes


def test_a_minute_without_the_broker_the_app_keeps_serving_and_every_event_arrives_once(
    warehouse_settings: Settings, restartable_kafka: KafkaLauncher, examples: Any
) -> None:
    """The SDK with its defaults rides out a broker that is gone for a minute: requests
    stay fast, events wait in the producer's buffer, and all of them are stored once
    when the broker is back."""
    fastapi_app, _ = examples
    launcher, settings = restartable_kafka, warehouse_settings
    own = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"bootstrap": launcher.bootstrap})}
    )
    create_topics(own)
    pipeline = Pipeline(own)
    pipeline.start("sink")
    warehouse = get_client(own.clickhouse, database=own.clickhouse.database)

    def count(user: str, distinct: bool = False) -> int:
        what = "uniqExact(event_id)" if distinct else "count()"
        query = (
            f"SELECT {what} FROM events_usage WHERE user_id = '{user}' AND name != 'checkout.pay'"
        )
        return scalar(warehouse, query)

    init_sdk("shop-api", own, health_interval=0)
    try:
        with serve_asgi(fastapi_app.create_app()) as base, client_for(base) as http:

            def timed(
                user: str, n: int | None, pause: float = 0.0, for_s: float = 0.0
            ) -> list[float]:
                took: list[float] = []
                until = time.monotonic() + for_s
                while (n is None and time.monotonic() < until) or (n is not None and len(took) < n):
                    started = time.perf_counter()
                    assert http.get("/orders/1", params={"user": user}).status_code == 200
                    took.append(time.perf_counter() - started)
                    time.sleep(pause)
                return took

            before = timed("before", 100, pause=0.03)  # paced like the outage phase
            assert shiftright.flush(30) == 0
            wait_for(lambda: count("before") == 100, 60, "events sent before the outage")

            launcher.stop()
            during = timed("during", None, pause=0.03, for_s=OUTAGE_S)
            stats = shiftright.stats()
            assert stats["delivered"] == 100 and not stats["failed"] and not stats["dropped"], stats

            launcher.launch()
            timed("after", 50)
            deadline = time.monotonic() + 90
            while shiftright.flush(5) and time.monotonic() < deadline:
                pass
            for user, sent in (("during", len(during)), ("after", 50)):
                _all_stored_once(user, sent, count)
            assert not shiftright.stats()["failed"] and not shiftright.stats()["dropped"]

        p50 = statistics.median(before), statistics.median(during)
        p99 = sorted(before)[98], sorted(during)[int(len(during) * 0.99) - 1]
        print(
            f"{len(during)} requests during a {OUTAGE_S:.0f} s outage; latency before/during:"
            f" p50 {p50[0] * 1e3:.2f}/{p50[1] * 1e3:.2f} ms,"
            f" p99 {p99[0] * 1e3:.2f}/{p99[1] * 1e3:.2f} ms; SDK counters at the outage's end: {stats}"
        )
        assert p50[1] < p50[0] * 3 + 0.005, (
            f"p50 {p50[0] * 1e3:.1f} ms before vs {p50[1] * 1e3:.1f} ms during"
        )
        assert p99[1] < max(p99[0] * 5, 0.1), (
            f"p99 {p99[0] * 1e3:.1f} ms before vs {p99[1] * 1e3:.1f} ms during"
        )
    finally:
        shiftright.close(1)
        pipeline.stop()


@pytest.mark.usefixtures("pipeline")
def test_forked_workers_deliver_through_their_own_producers(module_settings: Settings) -> None:
    """gunicorn-style pre-fork: init in the parent, events from each forked child."""
    settings, sql = module_settings, sql_on(module_settings)
    init_sdk("forked", settings, health_interval=0)
    try:
        shiftright.track("parent.started")
        assert shiftright.flush(30) == 0
        children = []
        for worker in range(2):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    for _ in range(10):
                        shiftright.track(f"worker.{worker}")
                    code = (
                        0
                        if shiftright.flush(30) == 0 and shiftright.stats()["delivered"] == 10
                        else 2
                    )
                finally:
                    os._exit(code)
            children.append(pid)
        codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
        assert codes == [0, 0], "each child delivered its 10 events itself"
        query = "SELECT name, count() FROM events_usage WHERE app = 'forked' GROUP BY name ORDER BY name"
        expected = [("parent.started", 1), ("worker.0", 10), ("worker.1", 10)]
        wait_for(lambda: sql(query) == expected, 60, lambda: f"rows {sql(query)}")
    finally:
        shiftright.close(1)
