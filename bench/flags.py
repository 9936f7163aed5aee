"""App-thread cost of a flag evaluation in the shiftright SDK, next to OpenFeature's own
in-memory provider, in one run.

    python -m bench.flags [--n 50000] [--rounds 5]

Timed the way ``bench.sdk_overhead`` times captures: only the call the app makes, one
call per sample, rounds interleaved so machine noise hits every row alike. The flags
come from the flag file of the unit tests (a toggle, a flag with a user list, attributes
and a 20/80 split, a ticket flag with a member), fed to the SDK in process: evaluation
is local, so no broker is involved. Rows:

- ``shiftright.flag`` on a toggle, a user-list hit, a split for a returning user (its
  bucket remembered), a split for a new user every call (a MurmurHash3 per call), a
  ticket flag, inside a request scope (each evaluation is recorded for the scope's events);
- the same toggle through the OpenFeature API with our provider, and with
  ``InMemoryProvider`` (OpenFeature's reference provider: a dict look-up);
- the new user's bucket alone, two ways in the same run: MurmurHash3 of the whole CBOR
  ``[flag, key]`` (``bucket``, the reference) and with the flag's part hashed once
  (``FlagBuckets``, what the SDK evaluates with).

A benchmark prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import logging
from collections.abc import Callable
from typing import Any

from bench.sdk_overhead import measure, pct

Op = Callable[[int], object]


def setup() -> dict[str, tuple[Op, None]]:
    import shiftright
    from openfeature import api
    from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider
    from shiftright.flags.evaluate import Snapshot
    from shiftright.flags.provider import ShiftrightProvider
    from shiftright_server.schemas.flag_file import load_flags

    from tests.unit.flags.test_flag_file import GOOD

    logging.getLogger("shiftright").setLevel(logging.CRITICAL)
    flags = [f.model_dump(mode="json") for f in load_flags(GOOD).flags]
    snapshot = Snapshot(
        app="checkout", flags=flags, members={"bulk-export|prod": frozenset({"acme"})}
    )

    class Feed:
        def __init__(self, store: Any, config: Any) -> None:
            self.store = store

        def start(self) -> Feed:
            self.store.replace(snapshot, "server")
            return self

        def stop(self) -> None:
            pass

    shiftright.init(
        app="checkout", env="prod", kafka="127.0.0.1:9", health_interval=0, flags_feed=Feed
    )
    shiftright.flag("new-checkout")  # starts the store
    scope = shiftright.scope(user_id="u-1", customer_id="acme")
    scope.__enter__()  # every evaluation below runs in one request scope
    ours = api.get_client("shiftright")
    api.set_provider(ShiftrightProvider(), "shiftright")
    memory = api.get_client("memory")
    api.set_provider(
        InMemoryProvider({"new-checkout": InMemoryFlag("on", {"on": True, "off": False})}),
        "memory",
    )
    from shiftright.flags.murmur import FlagBuckets, bucket

    layout = FlagBuckets("layout")
    return {
        "shiftright.flag (toggle)": (lambda n: shiftright.flag("new-checkout", False), None),
        "shiftright.flag (user list hit)": (lambda n: shiftright.flag("layout", "v1"), None),
        "shiftright.flag (split, returning user)": (
            lambda n: shiftright.flag("layout", "v1", user_id="u-77"),
            None,
        ),
        "shiftright.flag (split, new user)": (
            lambda n: shiftright.flag("layout", "v1", user_id=f"new-{n}"),
            None,
        ),
        "shiftright.flag (ticket flag)": (lambda n: shiftright.flag("bulk-export", False), None),
        "openfeature + ShiftrightProvider": (
            lambda n: ours.get_boolean_value("new-checkout", False),
            None,
        ),
        "openfeature + InMemoryProvider": (
            lambda n: memory.get_boolean_value("new-checkout", False),
            None,
        ),
        "bucket, whole hash (reference)": (lambda n: bucket("layout", f"new-{n}"), None),
        "bucket, flag prefix hashed once": (lambda n: layout.bucket(f"new-{n}"), None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="calls per row per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    ops = setup()
    samples: dict[str, list[int]] = {name: [] for name in ops}
    for op, prepare in ops.values():
        measure(op, prepare, 500)
    for round_ in range(args.rounds):
        for name, (op, prepare) in ops.items():
            gc.collect()
            offset = round_ * args.n  # new users stay new across rounds
            samples[name].extend(measure(_shifted(op, offset), prepare, args.n))
    print(f"{'call':<42}{'calls':>9}{'p50 µs':>9}{'p90 µs':>9}{'p99 µs':>9}")
    for name, values in samples.items():
        print(
            f"{name:<42}{len(values):>9}{pct(values, 0.5):>9.2f}"
            f"{pct(values, 0.9):>9.2f}{pct(values, 0.99):>9.2f}"
        )
    ratio = pct(samples["openfeature + ShiftrightProvider"], 0.5) / pct(
        samples["openfeature + InMemoryProvider"], 0.5
    )
    print(f"\nOpenFeature call, ShiftrightProvider / InMemoryProvider (p50): {ratio:.2f}")


def _shifted(op: Op, offset: int) -> Op:
    return lambda n: op(n + offset)


if __name__ == "__main__":
    main()
