"""``python -m bench.dashboard``: how fast the dashboard is over a large warehouse.

1. *data*: ``--usage`` usage events and ``--errors`` errors over the last ``--days`` are
   generated inside the embedded warehouse (``INSERT … SELECT`` from ``numbers()``,
   :mod:`bench.dashboard_data`; the minutely views fill as in production), plus one health
   snapshot per host and minute.
2. *panels and pages*: the dashboard runs as its own process; every page is asked for
   ``--repeat`` times and its ``Server-Timing`` header gives the page's server time and
   each panel query's time: p50 / p95. Twice: first with each page's queries one after
   another (``dashboard.queries_beside`` 0: each panel query's own time), then with the
   dashboard's defaults (a page's independent queries side by side: its server time). Baseline in the same run: ``SELECT 1`` through the
   same client (the round trip every query pays) and the overview's latency read from the
   raw usage table (how it was read before the minutely view's quantile state).
3. *browser*: each page's time to ready in headless Chromium (navigation until its charts
   are drawn, or its tables for pages without charts).
4. *polling*: ``--clients`` clients poll the overview panel every 2 s for ``--poll-for``
   seconds: the dashboard's and the warehouse's CPU (share of one core). With
   ``--ingest-rate N``, meanwhile a broker, the stream worker and the sink ingest N events/s
   into the same database (:mod:`bench.dashboard_ingest`): stored/s against produced/s,
   the lag when the producer stopped, the catch-up and every process's CPU. ``--cache``:
   the polling runs with the dashboard's panel cache off, then on (``both``, the same-run
   baseline), or once; the pages and the browser rounds run with it off. ``--also-idle``:
   each polls without ingest before it polls with it.

``--repeat 0`` / ``--loads 0`` skip the server-side and browser rounds; ``--only`` runs
some of the rounds (``pages``, ``browser``, ``polling``). Prints figures; asserts nothing.
Before any round, the bench waits (``--settle``, at most 600 s by default, printed) until
the warehouse's background merges have ended: no merge running and the parts count
unchanged for 10 s, so the rounds time the queries, not the load's merges beside them.
Starts the embedded warehouse in a temp dir, or with ``--keep DIR`` in ``DIR``: the first
run loads the data there, later runs with the same ``DIR`` (and the same ``--usage``,
``--errors``, ``--days``) skip the load and apply the migrations added since, so their new
tables fill from the kept ones. The kept data ends when it was loaded: a later run's ranges
end later, over fewer events (the bench prints the data's age).

    .venv/bin/python -m bench.dashboard [--usage 50000000] [--errors 1000000] [--days 7]
        [--ingest-rate 20000] [--keep /var/tmp/bench-dashboard] [--only pages,browser]
        [--settle 600]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from shiftright_server.infra.clickhouse import apply_schema, get_client
from shiftright_server.infra.settings import ClickHouseSettings, DashboardSettings, Settings

from bench import dashboard_ingest
from bench.dashboard_load import (
    DB,
    cpu_seconds,
    folder,
    kept,
    load,
    load_data,
    settle,
    shape,
    table_rows,
)
from tests.integration.dashboard_stack import CHROMIUM
from tests.integration.warehouse_fixture import free_port, start_warehouse, stop_warehouse

RAW_FEATURES = """SELECT app, env, name, count() AS uses, uniqExact(user_id), quantiles(0.5, 0.9, 0.99)(duration_ms)
FROM events_usage WHERE ts >= now() - INTERVAL 1 DAY
GROUP BY app, env, name ORDER BY uses DESC LIMIT 50"""
RAW_LATENCY = """SELECT app, env, toStartOfInterval(ts, toIntervalSecond(600)) AS t,
       quantiles(0.5, 0.95)(duration_ms) AS q
FROM events_usage
WHERE ts >= now() - INTERVAL 1 DAY AND duration_ms IS NOT NULL
GROUP BY app, env, t"""


def pages(group: str) -> dict[str, tuple[str, str]]:
    """name → (path, what shows it is ready in the browser)."""
    return {
        "overview 24h": ("/?range=24h", "canvas"),
        "overview 1h": ("/?range=1h", "canvas"),
        "overview 7d": ("/?range=7d", "canvas"),
        "overview compare": ("/?range=24h&app=checkout&env=prod&compare=preprod", "canvas"),
        "usage 24h": ("/usage?range=24h", "tr[data-feature]"),
        "usage 7d": ("/usage?range=7d", "tr[data-feature]"),
        "usage 24h release": ("/usage?range=24h&release=2.9", "tr[data-feature]"),
        "errors 24h": ("/errors?range=24h", "tr[data-group-id]"),
        "group 24h": (f"/errors/{group}?range=24h", "canvas"),
        "health 24h": ("/health?range=24h&app=checkout", "canvas"),
        "alerts 24h": ("/alerts?range=24h", "#alerts"),
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timings(header: str) -> tuple[float, list[tuple[str, float]]]:
    """The page's server time and each panel query's, from ``Server-Timing``."""
    total, panels = 0.0, []
    for part in header.split(","):
        name, _, rest = part.strip().partition(";dur=")
        dur = float(rest.split(";")[0])  # ";desc=hit": an answer from the panel cache
        if name == "app":
            total = dur
        elif name.startswith("q-"):
            panels.append((name[2:], dur))
    return total, panels


def session_cookie(settings: Settings) -> str:
    """A signed-in viewer's session cookie (the pages need one), in the dashboard's store."""
    from shiftright_server.infra.access.identity import open_identity

    identity = open_identity(settings)
    try:
        user, _ = identity.accounts.add(f"bench-{time.time_ns()}@example.com", "viewer")
        return identity.sign(identity.sessions.start(user, "bench").id, "session")
    finally:
        identity.close()


def serve(
    settings: Settings, port: int, log: Path, cache_seconds: float, beside: int | None = None
) -> subprocess.Popen[bytes]:
    """The dashboard as its own process; ``cache_seconds`` 0 turns its panel cache off,
    ``beside`` 0 makes each page read its panels one after another."""
    env = {
        **os.environ,
        "SHIFTRIGHT_STATE_DIR": str(settings.state_dir),
        "SHIFTRIGHT_CLICKHOUSE__URL": settings.clickhouse.http_url,
        "SHIFTRIGHT_CLICKHOUSE__DATABASE": DB,
        "SHIFTRIGHT_DASHBOARD__PORT": str(port),
        "SHIFTRIGHT_DASHBOARD__CACHE_SECONDS": str(cache_seconds),
        "SHIFTRIGHT_LOG_LEVEL": "WARNING",
        **({} if beside is None else {"SHIFTRIGHT_DASHBOARD__QUERIES_BESIDE": str(beside)}),
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shiftright_server.dashboard"], env=env, stdout=out, stderr=out
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/static/dashboard.css").status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the dashboard did not start: {log.read_text()[-2000:]}")


def server_side(
    base: str, cookies: dict[str, str], shown: dict[str, tuple[str, str]], repeat: int
) -> None:
    print(f"\npages and panels, {repeat} requests each (ms, server side) {load()}:")
    print(f"  {'page':<18} {'p50':>7} {'p95':>7}   slowest panel query p95")
    panels: dict[str, list[float]] = {}
    with httpx.Client(base_url=base, cookies=cookies, timeout=120) as http:
        for name, (path, _) in shown.items():
            took: list[float] = []
            page_panels: dict[str, list[float]] = {}
            for _ in range(repeat):
                response = http.get(path)
                response.raise_for_status()
                total, queries = timings(response.headers["server-timing"])
                took.append(total)
                for panel, ms in queries:
                    page_panels.setdefault(panel, []).append(ms)
                    panels.setdefault(panel, []).append(ms)
            worst = max(page_panels.items(), key=lambda kv: pct(kv[1], 0.95), default=("", [0.0]))
            print(
                f"  {name:<18} {pct(took, 0.5):7.1f} {pct(took, 0.95):7.1f}   "
                f"{worst[0]} {pct(worst[1], 0.95):.1f}"
            )
    print("\npanel queries over every page above (ms):")
    print(f"  {'panel':<26} {'n':>4} {'p50':>7} {'p95':>7}")
    for panel, values in sorted(panels.items(), key=lambda kv: -pct(kv[1], 0.95)):
        flag = "" if pct(values, 0.95) < 100 else "   over the 100 ms goal"
        print(
            f"  {panel:<26} {len(values):4d} {pct(values, 0.5):7.1f} {pct(values, 0.95):7.1f}{flag}"
        )


def baseline(settings: Settings, repeat: int) -> None:
    client = get_client(settings.clickhouse, database=DB)
    try:
        for name, sql in (
            ("SELECT 1", "SELECT 1"),
            ("latency, raw table 24h", RAW_LATENCY),
            ("features, raw table 24h", RAW_FEATURES),
        ):
            took = []
            for _ in range(repeat):
                began = time.perf_counter()
                client.query(sql)
                took.append((time.perf_counter() - began) * 1000)
            print(f"  baseline {name:<24} p50 {pct(took, 0.5):7.1f}  p95 {pct(took, 0.95):7.1f}")
    finally:
        client.close()


def browser(
    base: str, cookies: dict[str, str], shown: dict[str, tuple[str, str]], runs: int
) -> None:
    from playwright.sync_api import sync_playwright

    print(f"\ntime to ready in headless Chromium, {runs} loads each (ms) {load()}:")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            context = chromium.new_context(viewport={"width": 1400, "height": 900})
            context.add_cookies([{"name": k, "value": v, "url": base} for k, v in cookies.items()])
            page = context.new_page()
            page.goto(base + "/static/dashboard.css")  # connection and first launch out
            for name, (path, ready) in shown.items():
                took = []
                for _ in range(runs):
                    began = time.perf_counter()
                    page.goto(base + path, wait_until="domcontentloaded")
                    page.wait_for_selector(ready, state="attached", timeout=60_000)
                    took.append((time.perf_counter() - began) * 1000)
                flag = "" if pct(took, 0.95) < 1500 else "   over the 1.5 s goal"
                print(f"  {name:<18} p50 {pct(took, 0.5):7.0f}  p95 {pct(took, 0.95):7.0f}{flag}")
        finally:
            chromium.close()


def polling(
    base: str, cookies: dict[str, str], clients: int, seconds: float, pids: dict[str, int]
) -> None:
    stop = threading.Event()
    answered: list[float] = []

    def client() -> None:
        with httpx.Client(base_url=base, cookies=cookies, timeout=60) as http:
            while not stop.is_set():
                began = time.perf_counter()
                http.get("/panels/overview?range=1h")
                answered.append((time.perf_counter() - began) * 1000)
                stop.wait(max(0.0, 2.0 - (time.perf_counter() - began)))

    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    began = time.monotonic()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(60)
    wall = time.monotonic() - began
    print(
        f"\n{clients} clients polling the overview panel (1 h) every 2 s for {wall:.0f} s {load()}:"
    )
    print(
        f"  {len(answered)} answers, p50 {pct(answered, 0.5):.0f} ms, p95 {pct(answered, 0.95):.0f} ms"
    )
    for name, pid in pids.items():
        share = (cpu_seconds(pid) - before[name]) / wall
        print(f"  {name} CPU: {100 * share:.0f} % of one core")
    cache = httpx.get(f"{base}/api/panel-cache", cookies=cookies, timeout=30).json()
    if cache["enabled"]:
        counted = ("hits", "misses", "coalesced", "failures", "evictions", "entries")
        print(f"  panel cache: {', '.join(f'{k} {cache[k]:,}' for k in counted)}")


def ingesting(
    settings: Settings,
    args: Any,
    base: str,
    cookies: dict[str, str],
    pids: dict[str, int],
    tmp: Path,
) -> None:
    rate, seconds = args.ingest_rate, args.poll_for
    print(
        f"\nstarting a broker, the stream worker and the sink; {rate * seconds:,.0f} events to send"
    )
    url = settings.clickhouse.http_url
    seed = time.time_ns() % 2**32  # new event ids each round, also on a kept warehouse
    root = Path(tempfile.mkdtemp(prefix="ingest-", dir=tmp))  # and a fresh broker
    began = time.monotonic()
    with dashboard_ingest.pipeline(url, DB, rate, seconds, root, seed) as ingest:
        print(f"  ready and warmed up in {time.monotonic() - began:.0f} s {load()}")
        pids.update(ingest.pids)

        def during() -> None:
            pids.update(ingest.pids)  # the producer, started just before
            polling(base, cookies, args.clients, seconds, pids)

        figures = dashboard_ingest.run(ingest, rate, seconds, during)
    shutil.rmtree(root, ignore_errors=True)  # the round's broker and events
    print(f"  ingest at {rate:,.0f} events/s meanwhile {load()}:")
    for name, value in figures.items():
        print(f"    {name}: {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--usage", type=int, default=50_000_000)
    parser.add_argument("--errors", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--poll-for", type=float, default=30.0)
    parser.add_argument("--ingest-rate", type=float, default=0.0, help="events/s while polling")
    parser.add_argument(
        "--also-idle", action="store_true", help="with --ingest-rate, poll without it first"
    )
    parser.add_argument(
        "--cache",
        choices=("both", "on", "off"),
        default="both",
        help="poll with the dashboard's panel cache off, on, or off then on (the pages and "
        "the browser rounds run with it off: they measure the queries)",
    )
    parser.add_argument(
        "--keep", metavar="DIR", help="load the data into DIR once; later runs reuse it"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=600.0,
        metavar="S",
        help="before timing, wait at most S seconds for the warehouse's merges to end (0: no wait)",
    )
    parser.add_argument(
        "--only",
        default=",".join(ROUNDS),
        help=f"the rounds to run, of {','.join(ROUNDS)} (the data is always loaded or kept)",
    )
    args = parser.parse_args()
    print(f"bench.dashboard on {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    with folder(args.keep) as tmp:
        end = kept(tmp, shape(args)) if args.keep else None  # before the warehouse starts
        proc, url = start_warehouse(tmp / "warehouse", free_port())
        try:
            settings = Settings(
                state_dir=tmp / "state", clickhouse=ClickHouseSettings(url=url, database=DB)
            )
            began = time.perf_counter()
            apply_schema(settings)
            print(f"  migrations applied in {time.perf_counter() - began:.1f} s")
            run(settings, args, proc.pid, tmp, end)
        finally:
            stop_warehouse(proc)


ROUNDS = ("pages", "browser", "polling")


def run(settings: Settings, args: Any, warehouse_pid: int, tmp: Path, end: datetime | None) -> None:
    client = get_client(settings.clickhouse, database=DB, send_receive_timeout=3600)
    load_data(client, args, warehouse_pid, tmp, end)
    [(group,)] = client.query(
        "SELECT group_id FROM error_groups ORDER BY count DESC LIMIT 1"
    ).result_rows
    print(f"  rows: {', '.join(f'{t} {n:,}' for t, n in table_rows(client))}")
    if args.settle:
        settle(client, args.settle)
    client.close()
    cookies = {"sr_session": session_cookie(settings)}
    rounds = set(args.only.split(","))
    repeat = args.repeat if "pages" in rounds else 0
    loads = args.loads if "browser" in rounds else 0
    shown = pages(group)
    if repeat:
        with serving(settings, tmp, 0.0, beside=0) as (base, _):
            print(f"\nbaseline (same run, same client library, ms) {load()}:")
            baseline(settings, repeat)
            print("\n== each page's queries one after another: every panel query alone")
            server_side(base, cookies, shown, repeat)
    if repeat or loads:
        with serving(settings, tmp, 0.0) as (base, _):
            if repeat:
                print("\n== the dashboard's defaults: a page's independent queries side by side")
                server_side(base, cookies, shown, repeat)
            if loads:
                browser(base, cookies, shown, loads)
    if "polling" not in rounds:
        return
    cached = DashboardSettings().cache_seconds
    for cache_seconds in {"both": (0.0, cached), "on": (cached,), "off": (0.0,)}[args.cache]:
        with serving(settings, tmp, cache_seconds) as (base, pid):
            state = f"on ({cache_seconds:g} s)" if cache_seconds else "off"
            print(f"\n== polling with the dashboard's panel cache {state}")
            pids = {"dashboard": pid, "warehouse": warehouse_pid}
            if not args.ingest_rate or args.also_idle:
                polling(base, cookies, args.clients, args.poll_for, pids)
            if args.ingest_rate:
                ingesting(settings, args, base, cookies, pids, tmp)


@contextlib.contextmanager
def serving(
    settings: Settings, tmp: Path, cache_seconds: float, beside: int | None = None
) -> Iterator[tuple[str, int]]:
    """The dashboard's base URL and pid while it runs."""
    port = free_port()
    dashboard = serve(settings, port, tmp / f"dashboard-{port}.log", cache_seconds, beside)
    try:
        yield f"http://127.0.0.1:{port}", dashboard.pid
    finally:
        dashboard.terminate()
        dashboard.wait(20)


if __name__ == "__main__":
    main()
