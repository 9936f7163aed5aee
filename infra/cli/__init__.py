"""The ``shiftright`` command line: thin typer adapters over the pipeline, alerting,
error analytics and the gateway. ``python -m shiftright_server.infra.cli`` runs it."""

from shiftright_server.infra.cli.root import app, main

__all__ = ["app", "main"]
