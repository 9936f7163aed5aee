"""The HTTP service the gateway process serves: the ingest gateway's own application with
the alerting API (``alerting``) and the flags API (``flags``) mounted beside it
(``gateway``)."""
