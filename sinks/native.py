"""The sink's hottest column types encoded in C and NumPy, byte for byte as
clickhouse-connect encodes them.

clickhouse-connect writes a ``LowCardinality`` column's dictionary and a ``UUID`` column
(given as text) with a Python loop over the values. :func:`faster` gives a type that
writes the same Native bytes without one: the dictionary from ``dict.fromkeys`` (the
values in the order they first appear, as clickhouse-connect numbers them) and each
value's key by a dictionary lookup mapped over the column; canonical UUID texts read as
hex by NumPy. A column they cannot vouch for (a nullable one, an id not in its canonical
form, a value of another type) is written by clickhouse-connect itself, which also says
what is wrong with it. ``tests/unit/test_native.py`` holds the bytes to
clickhouse-connect's; ``tests/integration/test_warehouse_contract.py`` stores them.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
from clickhouse_connect.datatypes.base import ClickHouseType
from clickhouse_connect.datatypes.container import Map
from clickhouse_connect.datatypes.special import UUID
from clickhouse_connect.datatypes.string import String
from clickhouse_connect.driver.insert import InsertContext


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
