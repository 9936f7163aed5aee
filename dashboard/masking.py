"""Personal data hidden from share-link visitors: every answer the warehouse gives a
shared page passes :class:`MaskingReader`, which replaces user and customer ids (by
column or attribute name) and e-mail-like values anywhere in text (messages, titles,
attributes, stack traces) with a mask. Counts of users and customers stay."""

from __future__ import annotations

import re
from typing import Any

from shiftright_server.dashboard.warehouse import Reader, Result

MASK = "•••"
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
#: ``user_id=42``, ``customer: acme-7``, ``userId 42`` … in free text.
LABELLED_ID = re.compile(
    r"(?i)\b((?:user|customer|tenant|account)[_ -]?(?:id)?)(\s*[=:]\s*|\s+)(['\"]?)[\w.@+-]+\3"
)
#: Columns and attribute keys whose values identify a person or a customer.
PERSONAL = re.compile(r"(?i)(^|[._])(user|customer|tenant|account|email|e-mail)(_?id)?$|email")


def mask_text(text: str) -> str:
    text = EMAIL.sub(MASK, text)
    return LABELLED_ID.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


def mask_value(value: Any, personal: bool = False) -> Any:
    if isinstance(value, str):
        return (MASK if value else value) if personal else mask_text(value)
    if isinstance(value, dict):
        return {k: mask_value(v, personal or _personal(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        masked = [mask_value(v, personal) for v in value]
        return masked if isinstance(value, list) else tuple(masked)
    return value


def _personal(name: object) -> bool:
    return isinstance(name, str) and bool(PERSONAL.search(name))


class MaskingReader:
    """A reader whose answers carry no personal data."""

    def __init__(self, inner: Reader) -> None:
        self._inner = inner
        self.url = inner.url

    def query(
        self, sql: str, params: dict[str, Any], settings: dict[str, Any] | None = None
    ) -> Result:
        result = self._inner.query(sql, params, settings)
        personal = [_personal(c) for c in result.columns]
        rows = [
            tuple(mask_value(v, p) for v, p in zip(row, personal, strict=True))
            for row in result.rows
        ]
        return Result(result.columns, rows, result.elapsed_ms)

    def close(self) -> None:
        """The inner reader belongs to the app."""
