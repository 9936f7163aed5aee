"""The sink's hottest column types encoded in C and NumPy, byte for byte as
clickhouse-connect encodes them.

clickhouse-connect writes a ``LowCardinality`` column's dictionary and a ``UUID`` column
(given as text) with a Python loop over the values. :func:`faster` gives a type that
writes the same Native bytes without one: the dictionary from ``dict.fromkeys`` (the
values in the order they first appear, as clickhouse-connect numbers them) and each
value's key by a dictionary lookup mapped over the column; canonical UUID texts read as
hex by NumPy. A column they cannot vouch for (a nullable one, an id not in its canonical
form, a value of another type) is written by clickhouse-connect itself, which also says
what is wrong with it.

:class:`BlockWriter` writes an insert's columns as one Native block with these types,
and writes a :class:`~sinks.event_columns.Coded` column (the batch's repeated text,
kept as keys into its distinct values as it is gathered) of ``LowCardinality(String)``
or ``String`` from its keys: the dictionary and keys clickhouse-connect would make of its
values, or each distinct value's bytes joined in the keys' order.
``tests/unit/test_native.py`` holds the bytes of each column and of whole blocks to
clickhouse-connect's; ``tests/integration/test_warehouse_contract.py`` stores them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from math import log
from typing import Any, Final

import numpy as np
from clickhouse_connect.datatypes.base import ClickHouseType
from clickhouse_connect.datatypes.container import Map
from clickhouse_connect.datatypes.special import UUID
from clickhouse_connect.datatypes.string import String
from clickhouse_connect.driver.common import write_leb128, write_uint64
from clickhouse_connect.driver.insert import InsertContext
from shiftright_server.sinks.event_columns import Coded


class _String(String, registered=False):
    """``String``; as ``LowCardinality(String)``, its dictionary built in C."""

    __slots__ = ()

    def _build_lc_dictionary(
        self, column: Sequence[Any], ctx: InsertContext
    ) -> tuple[list[Any], list[int]]:
        if self.nullable:
            return super()._build_lc_dictionary(column, ctx)
        index = list(dict.fromkeys(column))
        key_of = {value: key for key, value in enumerate(index)}
        return index, list(map(key_of.__getitem__, column))


class _UUID(UUID, registered=False):
    """``UUID``; a column of canonical texts read as hex by NumPy."""

    __slots__ = ()

    def _write_column_binary(
        self, column: Sequence[Any], dest: bytearray, ctx: InsertContext
    ) -> None:
        raw = None if self.nullable else uuid_bytes(column)
        if raw is None:
            super()._write_column_binary(column, dest, ctx)
        else:
            dest += raw


_ID_LENGTH: Final = 36
_HYPHENS: Final = (8, 13, 18, 23)
_DIGITS: Final = [i for i in range(_ID_LENGTH) if i not in _HYPHENS]
#: Each byte's value as a hex digit, 255 where it is none.
_NIBBLE: Final = np.full(256, 255, np.uint8)
for _digit, _char in enumerate("0123456789abcdef"):
    _NIBBLE[ord(_char)] = _NIBBLE[ord(_char.upper())] = _digit


def uuid_bytes(column: Sequence[Any]) -> bytes | None:
    """The Native bytes of a column of canonical UUID texts (each id's two 64-bit halves,
    high first, each little-endian); None if any value is not one."""
    try:
        text = "".join(column).encode("ascii")
    except (TypeError, UnicodeEncodeError):
        return None
    count = len(column)
    if not count or len(text) != _ID_LENGTH * count:
        return None
    chars = np.frombuffer(text, np.uint8).reshape(count, _ID_LENGTH)
    if not (chars[:, _HYPHENS] == ord("-")).all():
        return None
    nibbles = _NIBBLE[chars[:, _DIGITS]]
    if nibbles.max() > 15:
        return None
    octets = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]  # the id's 16 bytes, big-endian
    return octets.reshape(count, 2, 8)[:, :, ::-1].tobytes()


def faster(ch_type: ClickHouseType) -> ClickHouseType:
    """``ch_type``, writing the same bytes faster where it can (itself where not)."""
    if type(ch_type) is String:
        return _recast(ch_type, _String)
    if type(ch_type) is UUID:
        return _recast(ch_type, _UUID)
    if type(ch_type) is Map:
        made = copy.copy(ch_type)
        made.key_type = faster(ch_type.key_type)
        made.value_type = faster(ch_type.value_type)
        return made
    return ch_type


def _recast(ch_type: ClickHouseType, kind: type[ClickHouseType]) -> ClickHouseType:
    made = copy.copy(ch_type)
    made.__class__ = kind
    return made


#: The flags of a ``LowCardinality`` column's keys: a new dictionary, with additional keys
#: (then the keys' width: 0 for UInt8, 1 for UInt16, ...), as clickhouse-connect writes them.
_LOW_CARD_FLAGS: Final = (1 << 9) | (1 << 10)
_KEY_TYPES: Final = (np.dtype("<u1"), np.dtype("<u2"), np.dtype("<u4"), np.dtype("<u8"))


class BlockWriter:
    """Writes a table's columns (of these names and types) as one Native block, each
    column as clickhouse-connect writes it. A :class:`~sinks.event_columns.Coded`
    column of a non-nullable ``String`` or ``LowCardinality(String)`` type is written
    from its keys and distinct values, without a step per value in Python: the
    dictionary and keys clickhouse-connect makes of its values, or each distinct value's
    bytes once, joined in the keys' order."""

    __slots__ = ("_head", "_types", "_coded", "_context")

    def __init__(self, table: str, names: Sequence[str], types: Sequence[ClickHouseType]) -> None:
        self._head = [
            _text(name) + _text(ch_type.insert_name)
            for name, ch_type in zip(names, types, strict=True)
        ]
        self._types = list(types)
        self._coded = [_coded_writer(t) for t in self._types]
        self._context = InsertContext(table, list(names), self._types)

    def block(self, columns: Sequence[Sequence[Any]]) -> bytearray:
        """The block; what clickhouse-connect raises where it cannot write a value."""
        out = bytearray()
        write_leb128(len(columns), out)
        write_leb128(len(columns[0]), out)
        ctx = self._context
        for head, ch_type, coded, column, name in zip(
            self._head, self._types, self._coded, columns, ctx.column_names, strict=True
        ):
            out += head
            ctx.start_column(name)
            if isinstance(column, Coded):
                if coded is not None and column.keys and coded(ch_type, column, out, ctx):
                    continue
                column = column.values()
            ch_type.write_column(column, out, ctx)
        return out


#: Writes a :class:`Coded` column (not empty) whole, prefix and data; False: nothing
#: written (its values are to be written instead).
_Coded = Callable[[ClickHouseType, Coded, bytearray, InsertContext], bool]


def _coded_writer(ch_type: ClickHouseType) -> _Coded | None:
    """How to write a :class:`Coded` column of this type without its values: None to
    write its values."""
    if ch_type.nullable or ch_type.base_type != "String":
        return None
    return _low_card if ch_type.low_card else _strings


def _strings(ch_type: ClickHouseType, column: Coded, dest: bytearray, _: InsertContext) -> bool:
    """A ``String`` column (no prefix) from its distinct values' bytes, each as
    clickhouse-connect writes it (its UTF-8 length as a varint, then its UTF-8), one
    for each key; False unless each value is text."""
    distinct = column.distinct
    if set(map(type, distinct)) != {str}:
        return False
    try:
        raw = [value.encode() for value in distinct]
    except UnicodeEncodeError:
        return False
    each = [_SHORT[len(value)] + value if len(value) < 128 else _text(value) for value in raw]
    dest += b"".join(map(each.__getitem__, column.keys))
    return True


def _low_card(ch_type: ClickHouseType, column: Coded, dest: bytearray, ctx: InsertContext) -> bool:
    """A ``LowCardinality`` column (its prefix, then its data) from its keys and
    distinct values, as clickhouse-connect writes it from the values."""
    ch_type.write_column_prefix(dest)
    distinct = column.distinct
    width = int(log(len(distinct), 2)) >> 3  # the keys' bytes, as clickhouse-connect has it
    write_uint64(_LOW_CARD_FLAGS | width, dest)
    write_uint64(len(distinct), dest)
    ch_type._write_column_binary(distinct, dest, ctx)
    write_uint64(len(column.keys), dest)
    dest += bytes(column.keys) if width == 0 else np.array(column.keys, _KEY_TYPES[width]).tobytes()
    return True


#: The varint of each length below 128: its one byte.
_SHORT: Final = [bytes((length,)) for length in range(128)]


def _text(value: str | bytes) -> bytes:
    """The text (or bytes) as Native writes a string: its length as a varint, then it."""
    raw = bytearray()
    encoded = value.encode() if isinstance(value, str) else value
    write_leb128(len(encoded), raw)
    return bytes(raw + encoded)
