"""The ingest gateway: HTTP JSON batches and OTLP/HTTP logs, metrics and traces into Kafka.

For apps not written in Python. A request is answered 2xx only after Kafka acknowledged
every event in it; under back-pressure it is answered 429/503 with ``Retry-After`` and
nothing is buffered beyond a fixed bound. Run it with ``shiftright gateway``.

This package imports no web framework at import time, so the CLI stays quick.
"""
