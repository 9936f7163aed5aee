"""The contract: event models, derived records, topic names and ClickHouse DDL.

Imports nothing else of the project, so every other package can depend on it.
"""
