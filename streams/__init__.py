"""Faust stream processors. Agents are thin loops around the pure functions in
``streams.processor`` and ``streams.rollup``; results leave only as Kafka topics."""
