"""A pre-forking server (gunicorn, uwsgi) forks after init: each child gets its own queue,
sender thread and transport, and never resends what the parent had queued."""

from __future__ import annotations

import json
import os
import threading

import shiftright

from tests.unit.sdk.conftest import SDK


def test_forked_child_sends_through_its_own_fresh_transport(sdk: SDK) -> None:
    sdk.init()
    parent_transport = sdk.transport
    parent_transport.gate.clear()  # the parent's queue still holds events at fork time
    shiftright.track("parent.stuck")
    parent_transport.produced.wait(2)
    shiftright.track("parent.queued")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it saw, then leave without running pytest's exit
        try:
            os.close(read)
            child_transport = sdk.transport
            shiftright.track("child.event")
            left = shiftright.flush(3)
            names = [e["name"] for e in child_transport.events()]
            own_instance = child_transport.events()[0]["instance"].endswith(f":{os.getpid()}")
            threads = sorted(
                t.name for t in threading.enumerate() if t.name.startswith("shiftright")
            )
            report = {
                "left": left,
                "names": names,
                "fresh": child_transport is not parent_transport,
                "threads": threads,
                "queued": shiftright.stats()["queued"],
                "own_instance": own_instance,
            }
            os.write(write, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        report = json.loads(pipe.read() or "{}")
    os.waitpid(pid, 0)
    assert report == {
        "left": 0,
        "names": ["child.event"],
        "fresh": True,
        "threads": ["shiftright-sender"],
        "queued": 0,
        "own_instance": True,
    }
    parent_transport.gate.set()
    assert shiftright.flush(3) == 0
    assert [e["name"] for e in parent_transport.events()] == ["parent.stuck", "parent.queued"]
