"""Everything that runs the system but is not domain logic, in two layers.

The bottom (configuration and clients, which ``producers``, ``streams`` and ``sinks``
use): ``settings``, ``logs``, the warehouse client (``clickhouse``), the Kafka launcher
and topic admin (``kafka``), the alerting configuration topic (``alerting_config``) and
the embedded warehouse (``warehouse``).

The top (which uses everything and which nothing else imports): the command line
(``cli``), the HTTP APIs composed into the gateway (``api``) and process supervision,
start-up and status (``ops``). ``tests/unit/test_layers.py`` holds the rules.
"""
