"""``python -m bench.pipeline``: sustained end-to-end throughput, events produced → rows
queryable in ClickHouse, for the full pipeline and for a bare consumer on the same events.

    .venv/bin/python -m bench.pipeline [--events 300000] [--rate 20000] [--seconds 30]
    .venv/bin/python -m bench.pipeline --quick
    .venv/bin/python -m bench.pipeline --kafka HOST:PORT --clickhouse http://HOST:8123

Without ``--kafka``/``--clickhouse`` it starts a broker and the embedded warehouse on free
ports in a temporary state dir (the integration fixtures' functions) and removes them after.
Each system gets its own namespace (topics ``<ns>.events.*.v1``, database ``<ns>``):

1. *raw*: ``python -m bench.raw_baseline``, the strongest floor: message bytes joined and
   parsed by ClickHouse (``FORMAT JSONEachRow``), no per-event Python work at all;
2. *baseline*: ``python -m bench.baseline`` (json.loads → columnar insert, nothing else);
3. *per-event*: the full pipeline with the hot path off (``SINK__EVENT_ROWS=models``,
   ``STREAMS__ROLLUP_COLUMNS`` false): every event through the models, one at a time;
4. *full*: the stream worker and the sink, started like ``shiftright up`` starts them
   (``--workers N`` and ``--sinks M`` start that many of each).

``--only raw,full`` runs a subset (in that order).

For each, two phases on the same pre-serialized events:

- **drain**: ``--events`` events are preloaded into the raw topics, then the consumers
  start; the clock runs until all of them are countable in the four ``events_*`` tables.
  For the full pipeline the phase (and its CPU figures) then runs on until the stream
  workers have committed the drain too, so the live phase starts on a system at rest.
- **live**: a producer process sends at ``--rate`` for ``--seconds``, with ~10 probe events
  a second (``name = bench.probe.<n>``) whose send time it records; the driver polls for
  them every ~100 ms (event → queryable latency) and, after the producer stops, for the
  time until every row is queryable (catch-up).

A sampler thread records peak RSS and CPU time of every process involved, also as µs of
CPU per event of each phase. Figures go to tables (with ratios of the full pipeline to
each other system, and the load average) and to
``bench/results/pipeline-<timestamp>.json``. Nothing is asserted.

Modules: ``events`` and ``producer`` generate and send the load; ``services`` and
``systems`` set up the broker, the warehouse and the systems under test; ``monitor``,
``phases`` and ``live`` measure; ``report`` prints the tables; ``cli`` runs it all.
"""

from bench.pipeline.context import RESULTS, PhaseFailed
from bench.pipeline.events import KINDS, Record, generate
from bench.pipeline.producer import preload
from bench.pipeline.services import start_services

__all__ = ["KINDS", "RESULTS", "PhaseFailed", "Record", "generate", "preload", "start_services"]
