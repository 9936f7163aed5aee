"""Synthetic production traffic: plain dicts in the event wire shape, fast and reproducible.

Contract:

* :meth:`Simulator.tick` returns every event whose ``ts`` falls in ``[start, start+seconds)``,
  sorted by ``ts``: usage requests (and the errors some of them raise) at ``rate`` events/s
  times :func:`diurnal_factor`, one health report per host every ``health_interval`` seconds,
  and occasional deploys and feature-flag flips.
* :meth:`Simulator.generate` returns exactly ``n`` events of one kind spread over a range.
* The same seed and the same sequence of calls give the same events, event ids included:
  an id is a valid UUIDv7 whose timestamp is the event's ``ts`` and whose random bits come
  from the seeded RNG.
* Scheduled :class:`Incident` s change the traffic while they are active and label the
  events they touch with ``attributes["sim.incident"]``; every error names its code site in
  ``attributes["sim.site"]`` so error grouping can be scored against the truth.
* Sites that call a database or a remote service (``catalog.libraries.WRAPPED_LIBRARIES``)
  report the app's generic ``<app>.api.errors.UpstreamError`` raised ``from`` the real
  error, which travels as the root cause in ``attributes["exception.chain"]`` (JSON,
  nearest cause first).

:func:`run_realtime` feeds an emitter in 100 ms steps.

Layout: :mod:`.catalog` holds the shop as typed data (apps, envs, endpoints, error sites,
library frames); the modules here are the behaviour, one job each:

=================  =========================================================================
``engine``         :class:`Simulator`: one seeded RNG, the order of its draws, tick/generate
``fleet``          the catalog made runnable: envs, hosts, endpoints, error sites
``incidents``      :class:`Incident`, its CLI syntax and defaults
``regimes``        traffic shaping: the weighted tables in force under a set of incidents
``population``     users, their tenants and sessions
``usage``          the request loop (the hot path) and the shaped request rate
``errors``         error events: exception, frames, traceback, chained causes
``placeholders``   filling the ``{placeholders}`` of error messages
``health``         health reports and the metric walks behind them
``changes``        deploys, flag flips, and the bad deploy behind a usage drop
``clock``          epoch milliseconds and the diurnal shape
``stamps``         event ids (UUIDv7) and ``ts`` text
``sampling``       weighted pools, spreads, Poisson counts, random walks
``realtime``       :func:`run_realtime`
=================  =========================================================================
"""

from shiftright_server.producers.simulator.catalog.shop import (
    N_CUSTOMERS,
    N_USERS,
    TOPOLOGY,
    Deployment,
)
from shiftright_server.producers.simulator.clock import diurnal_factor
from shiftright_server.producers.simulator.engine import EVENT_KINDS, Simulator
from shiftright_server.producers.simulator.incidents import INCIDENT_KINDS, Incident, parse_incident
from shiftright_server.producers.simulator.realtime import DictEmitter, run_realtime

__all__ = [
    "EVENT_KINDS",
    "INCIDENT_KINDS",
    "N_CUSTOMERS",
    "N_USERS",
    "TOPOLOGY",
    "Deployment",
    "DictEmitter",
    "Incident",
    "Simulator",
    "diurnal_factor",
    "parse_incident",
    "run_realtime",
]
