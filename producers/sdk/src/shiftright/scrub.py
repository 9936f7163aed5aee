"""Secrets never leave the process: values under sensitive-looking keys are replaced."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[redacted]"


class Scrubber:
    """Key-based redaction; a key matches when any marker is a substring of it
    (case-insensitive, with ``-`` and ``.`` read as ``_``)."""

    def __init__(self, markers: Iterable[str]) -> None:
        self._markers = tuple(_norm(m) for m in markers)
        self._verdicts: dict[str, bool] = {}

    def sensitive(self, key: str) -> bool:
        verdict = self._verdicts.get(key)
        if verdict is None:
            norm = _norm(key)
            verdict = any(m in norm for m in self._markers)
            if len(self._verdicts) < 10_000:
                self._verdicts[key] = verdict
        return verdict

    def mapping(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A copy with sensitive values redacted (nested mappings too)."""
        out: dict[str, Any] = {}
        for key, value in values.items():
            if self.sensitive(str(key)):
                out[key] = REDACTED
            elif isinstance(value, Mapping):
                out[key] = self.mapping(value)
            else:
                out[key] = value
        return out

    def headers(self, pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
        return {k.lower(): (REDACTED if self.sensitive(k) else v) for k, v in pairs}


def _norm(key: str) -> str:
    return key.lower().replace("-", "_").replace(".", "_")
