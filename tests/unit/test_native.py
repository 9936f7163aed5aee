"""The sink's own encoders write exactly the Native bytes clickhouse-connect writes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.driver.insert import InsertContext
from shiftright_server.sinks.native import faster, uuid_bytes

IDS = [
    str(uuid.UUID(int=(i * 0x1234_5678_9ABC_DEF0_0FED_CBA9_8765_4321) % (1 << 128)))
    for i in range(300)
]
COLUMNS: dict[str, list[Any]] = {
    "UUID": IDS + [IDS[0].upper()],
    "LowCardinality(String)": ["a", "b", "a", "caf\u00e9", "", "b"] * 50
    + [f"v{i}" for i in range(300)],
    "String": ["x", "", "caf\u00e9 \U0001f600", "y" * 300],
    "Map(LowCardinality(String), String)": [{"k": "v", "j": ""}, {}, {"k": "w"}],
    "Map(LowCardinality(String), LowCardinality(String))": [{"f": "on"}, {}, {"g": "off"}],
    "Map(LowCardinality(String), Float64)": [{"cpu": 0.5}, {"mem": 1.0, "cpu": 2.0}],
    "LowCardinality(Nullable(String))": ["a", None, "a"],
}


def written(type_name: str, column: list[Any], fast: bool) -> bytes:
    ch_type = get_from_name(type_name)
    if fast:
        ch_type = faster(ch_type)
    ctx = InsertContext("t", ["c"], [ch_type], [column], column_oriented=True)
    ctx.start_column("c")
    out = bytearray()
    ch_type.write_column(column, out, ctx)
    return bytes(out)


@pytest.mark.parametrize("type_name", sorted(COLUMNS))
def test_each_column_is_written_as_clickhouse_connect_writes_it(type_name: str) -> None:
    column = COLUMNS[type_name]
    assert written(type_name, column, fast=True) == written(type_name, column, fast=False)


def test_ids_not_in_the_canonical_form_are_left_to_clickhouse_connect() -> None:
    for odd in (IDS[0].replace("-", ""), "", IDS[0][:-1] + "g", f"{IDS[0][:8]}+{IDS[0][9:]}"):
        assert uuid_bytes([IDS[1], odd]) is None
    assert uuid_bytes([uuid.UUID(IDS[0])]) is None
    column: list[Any] = [IDS[1], IDS[2].replace("-", ""), ""]
    assert written("UUID", column, fast=True) == written("UUID", column, fast=False)


BAD: list[tuple[str, list[Any]]] = [
    ("LowCardinality(String)", ["a", None]),
    ("LowCardinality(String)", ["a", 3]),
    ("LowCardinality(String)", ["a", ["b"]]),
    ("UUID", [IDS[0], "not-an-id"]),
    ("UUID", [3, IDS[0]]),
    ("Map(LowCardinality(String), String)", [{"a": 1}]),
]


@pytest.mark.parametrize(("type_name", "column"), BAD)
def test_a_value_clickhouse_connect_refuses_is_refused_alike(
    type_name: str, column: list[Any]
) -> None:
    refusals = []
    for fast in (True, False):
        with pytest.raises(Exception) as refused:  # noqa: PT011  # whatever it raises, alike
            written(type_name, column, fast)
        refusals.append((type(refused.value), str(refused.value)))
    assert refusals[0] == refusals[1]
