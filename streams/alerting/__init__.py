"""Alerting core: rules, evaluation, anomaly detection and notification planning (pure)."""
