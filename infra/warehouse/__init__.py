"""The embedded warehouse: one process owns a chDB data directory and serves the
ClickHouse HTTP interface over it, so clickhouse-connect and curl work unchanged.

Modules: ``sql`` (statement scanning), ``codecs`` (request/response compression),
``errors`` (ClickHouse-shaped failures), ``request`` (HTTP parameters → a query
request), ``engine`` (chDB connections, pool and sessions), ``handler`` (the HTTP
exchange) and ``server`` (lifecycle). Run it with
``python -m infra.warehouse --data-dir DIR [--host H] [--port P]``.
"""
