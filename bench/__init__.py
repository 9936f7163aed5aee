"""Benchmarks: scripts that print figures and ratios; they never assert a wall-clock time.

``python -m bench.pipeline`` measures end-to-end throughput and latency of the pipeline
against a bare consumer (``bench.baseline``) on the same events.
"""
