"""OTLP/HTTP (protobuf and JSON) → shiftright events.

- logs with ``exception.*`` attributes → error events (stack trace parsed into frames);
  HTTP server request logs and OTel events (``event_name``) → usage events;
- server spans → usage events, their ``exception`` span events → error events;
- metric data points → health events, one per resource and timestamp.

Resource attributes map onto the envelope (``service.name`` → app, …, see
``schemas.events.OTEL_NAMES``); every attribute that maps to no field is kept in the
event's ``attributes``, so nothing is lost. Records that map to no event are reported
back to the client in the OTLP ``partial_success`` answer and counted.
"""
