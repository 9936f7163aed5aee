"""``python tests/integration/spill_app.py BOOTSTRAP NAMESPACE SPILL_DIR FIRST LAST``: an app
that sends usage events numbered FIRST..LAST-1 through the SDK with the disk spill on and a
producer buffer of a few messages, then says on stdout when they are all on disk
(``spilled``) and, once the broker has them all, when they are delivered (``delivered``).
The test kills it between the two, or lets it finish."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import shiftright


def main() -> None:
    bootstrap, namespace, spill_dir, first, last = sys.argv[1:6]
    small_buffer = {"queue.buffering.max.messages": 4}  # so events spill
    quiet: dict[str, Any] = {
        "health_interval": 0,
        "hooks": False,
        "logging_level": None,
        "rate_limits": {},
    }
    shiftright.init(
        "spill-app",
        "test",
        kafka=bootstrap,
        namespace=namespace,
        **quiet,
        flush_interval=0.02,
        spill_dir=spill_dir,
        spill_after=0.5,
        producer_config=small_buffer,
    )
    numbers = range(int(first), int(last))
    for n in numbers:
        shiftright.track("spill.test", user_id=f"u{n}", value=float(n))
        if n % 20 == 0:
            time.sleep(0.01)  # traffic spread over time: many batch messages
    report("sending", lambda: shiftright.stats()["queued"] == 0)
    report("spilled", lambda: shiftright.stats()["spill"]["events"] >= len(numbers))
    report("delivered", lambda: shiftright.flush(1) == 0, deadline=120)
    shiftright.close(5)


def report(what: str, done: Callable[[], bool], deadline: float = 60) -> None:
    until = time.monotonic() + deadline
    while not done():
        if time.monotonic() > until:
            print(f"timed out {what}: {json.dumps(shiftright.stats())}", flush=True)
            sys.exit(1)
        time.sleep(0.02)
    print(what, json.dumps(shiftright.stats()), flush=True)


if __name__ == "__main__":
    main()
