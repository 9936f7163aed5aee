"""The team's web dashboard: FastAPI, server-rendered Jinja2 pages, htmx 2 for live
panels and uPlot for time series, reading the warehouse through clickhouse-connect like
any analyst.

Layering: it imports ``schemas`` and the configuration/clients part of ``infra`` only;
the command line and process supervision start it (``python -m shiftright_server.dashboard``).

Pages: ``/`` overview, ``/errors`` and ``/errors/{group_id}``, ``/health``, ``/sql``.
Every page, panel and action passes one permission check (:mod:`.permissions`).
"""
