"""The sink's view of the warehouse: insert a columnar batch with a
deduplication token, and tell which Kafka offsets a table already holds. A fake with the same contract serves
unit tests (tests/fakes.py); tests/integration/test_warehouse_contract.py checks both."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError
from shiftright_server.sinks.errors import RejectedRowsError, RetryableWriteError

#: ClickHouse error codes that mean "this data is bad", not "try again later".
_DATA_ERROR_CODES = frozenset(
    {6, 16, 26, 27, 32, 33, 38, 41, 53, 69, 70, 72, 73, 117, 131, 190, 321, 349, 407, 691}
)


class Warehouse(Protocol):
    def insert(
        self, table: str, columns: Sequence[Sequence[Any]], names: Sequence[str], token: str
    ) -> None:
        """Insert column-oriented data; raise RetryableWriteError or RejectedRowsError."""

    def stored_offsets(self, table: str, topic: str) -> dict[int, int]:
        """Highest Kafka offset per partition of ``topic`` stored in ``table``."""


class ClickHouseWarehouse:
    """:class:`Warehouse` over a clickhouse-connect client bound to our database."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def insert(
        self, table: str, columns: Sequence[Sequence[Any]], names: Sequence[str], token: str
    ) -> None:
        try:
            self._client.insert(
                table,
                columns,
                column_names=list(names),
                column_oriented=True,
                settings=_token_settings(token),
            )
        except Exception as exc:
            raise classify(exc) from exc

    def stored_offsets(self, table: str, topic: str) -> dict[int, int]:
        try:
            rows = self._client.query(
                f"SELECT _partition, max(_offset) FROM {table} WHERE _topic = {{t:String}} "
                "GROUP BY _partition",
                parameters={"t": topic},
            ).result_rows
        except Exception as exc:
            raise classify(exc) from exc
        return {int(p): int(o) for p, o in rows}


def _token_settings(token: str) -> dict[str, Any]:
    return {
        "insert_deduplication_token": token,
        "deduplicate_blocks_in_dependent_materialized_views": 1,
    }


def classify(exc: BaseException) -> RetryableWriteError | RejectedRowsError:
    """Map a client exception onto the sink's error tree."""
    if isinstance(exc, DataError):
        # clickhouse-connect could not encode a value for its column: the row is bad.
        return RejectedRowsError(str(exc))
    if isinstance(exc, DatabaseError) and not isinstance(exc, OperationalError):
        code = error_code(str(exc))
        if code in _DATA_ERROR_CODES:
            return RejectedRowsError(str(exc))
    if isinstance(exc, (TypeError, ValueError, OverflowError)):
        # clickhouse-connect refuses to encode a value client-side: the row is bad.
        return RejectedRowsError(f"{type(exc).__name__}: {exc}")
    return RetryableWriteError(f"{type(exc).__name__}: {exc}")


def error_code(message: str) -> int | None:
    """The ClickHouse error code in an exception message (``Code: 53. DB::Exception``)."""
    marker = message.find("Code: ")
    if marker < 0:
        return None
    digits = ""
    for ch in message[marker + 6 :]:
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else None
