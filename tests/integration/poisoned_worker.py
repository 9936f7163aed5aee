"""``python -m tests.integration.poisoned_worker``: the stream worker with a fault put in
at the step interface. Each step raises on a record whose value names it
(``poison-<step name>``), as a bug in that step would; everything else is the real
worker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shiftright_server.streams import __main__ as worker
from shiftright_server.streams.alert_step import AlertStep
from shiftright_server.streams.error_steps import AttachStep, GroupStep
from shiftright_server.streams.rollup_step import RollupStep
from shiftright_server.streams.step import Output, Record

STEPS: tuple[Any, ...] = (RollupStep, AttachStep, GroupStep, AlertStep)


def poison(cls: Any) -> None:
    process = cls.process
    marker = f"poison-{cls.name}".encode()

    def raising(self: Any, records: Sequence[Record]) -> Output:
        for r in records:
            if r.value and marker in r.value:
                raise RuntimeError(f"{cls.name} cannot digest offset {r.offset}")
        out: Output = process(self, records)
        return out

    cls.process = raising


if __name__ == "__main__":
    for step in STEPS:
        poison(step)
    worker.main()
