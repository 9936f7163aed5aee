"""The team's web dashboard: FastAPI, server-rendered Jinja2 pages, htmx 2 for live
panels and uPlot for time series, reading the warehouse through clickhouse-connect like
any analyst.

Layering: it imports ``schemas`` and the configuration/clients part of ``infra`` only;
the command line and process supervision start it (``python -m shiftright_server.dashboard``).

Pages: ``/`` overview (per app × env, ``compare=ENV``), ``/usage``, ``/errors`` and
``/errors/{group_id}`` (with resolve / ignore / unresolve), ``/alerts`` and
``/alerts/{rule}`` (read-only), ``/health``, ``/sql``; each
live panel also at ``/panels/...`` for htmx to poll. Every page, panel and action passes
one permission check (:mod:`.permissions`). Filters, range and mode live in the query
string; ``Server-Timing`` names each panel query and its time.
"""
