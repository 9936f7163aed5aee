"""The embedded warehouse: one process owns a chDB data directory and serves the
ClickHouse HTTP interface over it, so clickhouse-connect (sync and async) and curl
work unchanged. ``python -m shiftright_server.infra.warehouse --data-dir DIR [--host H] [--port P]``.

Modules: ``sql`` (statement scanning), ``body`` (lazily read request bodies),
``codecs`` (request/response compression), ``errors`` (ClickHouse-shaped failures),
``request`` (HTTP parameters → a query request), ``tuning`` (the engine's
configuration file), ``engine`` (chDB connections, pool and sessions), ``execute`` (route and run one request), ``handler`` (the HTTP
exchange) and ``server`` (lifecycle, SIGTERM).

What it speaks: GET (read-only) and POST; ``query`` joined with the body by "\\n";
``database``, ``default_format``, ``query_id``; ClickHouse settings as URL parameters,
applied for one query only; ``param_*`` (chDB binds them natively) in the URL or a
multipart form; ``session_id``/``session_timeout``/``session_check``/``close_session``
(one chDB connection per session); any output format chDB produces; INSERT data in
the body, streamed into chDB as it arrives; ``Content-Encoding`` lz4 (back-to-back
frames), zstd, gzip, deflate and ``decompress=1`` request bodies; lz4/zstd/gzip/
deflate responses on ``Accept-Encoding``; ``Code: N. DB::Exception`` errors with
ClickHouse's statuses (never 429/503/504) and ``X-ClickHouse-*`` headers; ``/ping``.

Known limits: results are buffered when the client waits for the end of the query
(clickhouse-connect's ``query``) and streamed otherwise; an error in the middle of a
stream cuts the response short instead of appending the exception text; an empty
Native result carries no header block (as chDB produces it); ``compress=1``
(ClickHouse-compressed responses), external data tables, progress headers and
authentication are not implemented (credentials are accepted and ignored); native
block checksums are not verified. A materialized view's target table deduplicates
retried inserts only with its own ``non_replicated_deduplication_window``.
"""
