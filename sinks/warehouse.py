"""The sink's view of the warehouse: insert a columnar batch with a deduplication token,
tell which Kafka offsets a table already holds (per topic incarnation, see
:mod:`sinks.incarnations`) and which incarnations sinks have recorded. A fake with the same
contract serves unit tests (tests/fakes.py); tests/integration/test_warehouse_contract.py
checks both."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.compression import get_compressor
from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError
from shiftright_server.sinks.errors import RejectedRowsError, RetryableWriteError
from shiftright_server.sinks.incarnations import TABLE as INCARNATIONS
from shiftright_server.sinks.incarnations import Stored
from shiftright_server.sinks.native import BlockWriter, faster

#: ClickHouse error codes that mean "this data is bad", not "try again later".
_DATA_ERROR_CODES = frozenset(
    {6, 16, 26, 27, 32, 33, 38, 41, 53, 69, 70, 72, 73, 117, 131, 190, 321, 349, 407, 691}
)


class Warehouse(Protocol):
    def insert(
        self, table: str, columns: Sequence[Sequence[Any]], names: Sequence[str], token: str
    ) -> None:
        """Insert column-oriented data; raise RetryableWriteError or RejectedRowsError."""

    def stored_offsets(self, table: str, topic: str) -> Stored:
        """Highest Kafka offset per topic id and partition of ``topic`` stored in ``table``
        (topic id ``''`` for rows stored without one)."""

    def incarnations(self) -> dict[str, dict[str, bool]]:
        """The recorded incarnations: topic -> topic id -> whether it adopts the rows
        stored without a topic id."""


class ClickHouseWarehouse:
    """:class:`Warehouse` over a clickhouse-connect client bound to our database.

    The column types of each table are read once (clickhouse-connect would otherwise ask
    the warehouse with a ``DESCRIBE TABLE`` before every insert) and read again after an
    insert fails. An insert is one Native block (:class:`sinks.native.BlockWriter`: the
    hottest types written by :mod:`sinks.native`, the rest by clickhouse-connect),
    compressed as the client compresses its inserts and sent as one body."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._writers: dict[tuple[str, tuple[str, ...]], BlockWriter] = {}

    def insert(
        self, table: str, columns: Sequence[Sequence[Any]], names: Sequence[str], token: str
    ) -> None:
        key = (table, tuple(names))
        try:
            compression = self._client.write_compression
            body = _compressed(self._writer(key).block(columns), compression)
            self._client.raw_insert(
                table,
                list(names),
                body,
                settings=_token_settings(token),
                fmt="Native",
                compression=compression,
            )
        except Exception as exc:
            self._writers.pop(key, None)
            raise classify(exc) from exc

    def _writer(self, key: tuple[str, tuple[str, ...]]) -> BlockWriter:
        writer = self._writers.get(key)
        if writer is None:
            table, names = key
            context = self._client.create_insert_context(table, column_names=list(names))
            types = [faster(t) for t in context.column_types]
            writer = self._writers[key] = BlockWriter(table, names, types)
        return writer

    def stored_offsets(self, table: str, topic: str) -> Stored:
        rows = self._rows(
            f"SELECT _topic_id, _partition, max(_offset) FROM {table} "
            "WHERE _topic = {t:String} GROUP BY _topic_id, _partition",
            {"t": topic},
        )
        stored: Stored = {}
        for topic_id, partition, offset in rows:
            stored.setdefault(str(topic_id), {})[int(partition)] = int(offset)
        return stored

    def incarnations(self) -> dict[str, dict[str, bool]]:
        rows = self._rows(
            f"SELECT topic, topic_id, max(adopts_legacy) FROM {INCARNATIONS} "
            "GROUP BY topic, topic_id"
        )
        found: dict[str, dict[str, bool]] = {}
        for topic, topic_id, adopts in rows:
            found.setdefault(str(topic), {})[str(topic_id)] = bool(adopts)
        return found

    def _rows(self, query: str, parameters: dict[str, Any] | None = None) -> Sequence[Any]:
        try:
            return self._client.query(query, parameters=parameters).result_rows
        except Exception as exc:
            raise classify(exc) from exc


def _compressed(block: bytearray, compression: str | None) -> bytes:
    """The block as clickhouse-connect compresses an insert's blocks (one frame)."""
    if not compression:
        return bytes(block)
    compressor = get_compressor(compression)
    body: bytes = bytes(compressor.compress_block(block))
    footer: bytes | None = compressor.flush()  # type: ignore[no-untyped-call]
    return body + footer if footer else body


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
