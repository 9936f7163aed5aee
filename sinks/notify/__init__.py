"""The notifier: alert transitions (``alerts.v1``) in, e-mails, webhooks and Slack
messages out, every delivery outcome recorded (``notifications.v1``).

``python -m shiftright_server.sinks.notify`` runs it.

* :mod:`.notifier` — the planning, pure: grouping, dedup, repeats, silences, inhibition
  (:class:`Notifier`).
* :mod:`.payloads` — what each receiver is sent: Alertmanager v4 JSON, Slack, e-mail.
* :mod:`.model` — a :class:`Delivery`: one notification or action-webhook call to make,
  with its idempotency key; redaction of targets.
* :mod:`.transports` — e-mail (smtplib), webhook (Alertmanager v4 JSON), Slack.
* :mod:`.outbox` — the SQLite file that holds the notifier's state, the consumed
  offsets, every delivery and its outcome, and outcome records not yet in Kafka.
* :mod:`.delivery` — retries with back-off, per-channel token buckets, outcomes.
* :mod:`.service` — the consumer loop that ties them together.
"""
