"""The HTTP service the gateway process serves: the ingest gateway's own application with
the alerting API (``alerting``) mounted beside it (``gateway``)."""
