"""The sink's own encoders write exactly the Native bytes clickhouse-connect writes, a
column and a whole block."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.driver.insert import InsertContext
from clickhouse_connect.driver.transform import NativeTransform
from shiftright_server.sinks.event_columns import Coded
from shiftright_server.sinks.native import BlockWriter, faster, uuid_bytes

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


def clickhouse_connect_block(names: list[str], types: list[str], columns: list[Any]) -> bytes:
    """The Native block clickhouse-connect writes for these columns (one block)."""
    ch_types = [get_from_name(t) for t in types]
    plain = [list(c) for c in columns]
    ctx = InsertContext(
        "t", names, ch_types, plain, column_oriented=True, compression=None, block_size=1 << 30
    )
    body = b"".join(NativeTransform.build_insert(ctx))
    if ctx.insert_exception is not None:  # what the client raises for the insert
        raise ctx.insert_exception
    return body[body.index(b"FORMAT Native\n") + len(b"FORMAT Native\n") :]


def block_writer_block(names: list[str], types: list[str], columns: list[Any]) -> bytes:
    return bytes(BlockWriter("t", names, [faster(get_from_name(t)) for t in types]).block(columns))


WIDE = [f"w{i % 300}" for i in range(700)]  # 300 distinct: keys of two bytes
ROWS = 700


def cycle(values: list[Any]) -> list[Any]:
    return [values[i % len(values)] for i in range(ROWS)]


BLOCK: list[tuple[str, str, Any]] = [
    ("id", "UUID", cycle(IDS)),
    ("ts", "DateTime64(3, 'UTC')", [1_700_000_000_000 + i for i in range(ROWS)]),
    ("app", "LowCardinality(String)", Coded(cycle(["a", "b", "caf\u00e9", ""]))),
    ("wide", "LowCardinality(String)", Coded(WIDE)),
    ("plain_lc", "LowCardinality(String)", cycle(["x", "y"])),
    ("user", "String", Coded(cycle(["u1", "", "\U0001f600", "z" * 200, "u1"]))),
    ("text", "String", cycle(["x", "", "caf\u00e9", "y" * 300])),
    ("status", "UInt16", cycle([0, 200, 65535])),
    ("offset", "UInt64", list(range(ROWS))),
    ("duration", "Nullable(Float64)", cycle([None, 1.5, 0.0, 3])),
    ("attributes", "Map(LowCardinality(String), String)", cycle([{"k": "v", "j": ""}, {}])),
    ("flags", "Map(LowCardinality(String), LowCardinality(String))", cycle([{}, {"f": "on"}])),
    ("metrics", "Map(LowCardinality(String), Float64)", cycle([{"cpu": 0.5, "mem": 2.0}])),
    (
        "frames",
        "Array(Tuple(`module` String, `function` String, `filename` String, "
        "`lineno` UInt32, `in_app` Bool))",
        cycle([[("m", "f", "x.py", 3, True), ("", "g", "", 0, False)], []]),
    ),
    ("handled", "Bool", cycle([True, False])),
    ("topic", "LowCardinality(String)", Coded(["events.usage.v1"] * ROWS)),
]


def test_a_block_is_written_as_clickhouse_connect_writes_it() -> None:
    names, types, columns = (list(x) for x in zip(*BLOCK, strict=True))
    assert block_writer_block(names, types, columns) == clickhouse_connect_block(
        names, types, columns
    )


@pytest.mark.parametrize(
    "column",
    [
        ["a", None],  # None in a column that is not nullable
        ["a", 3],
        ["a", "\ud800"],  # not encodable as UTF-8
    ],
)
@pytest.mark.parametrize("type_name", ["String", "LowCardinality(String)"])
def test_a_coded_column_clickhouse_connect_refuses_is_refused_alike(
    type_name: str, column: list[Any]
) -> None:
    refusals = []
    for write in (block_writer_block, clickhouse_connect_block):
        given = Coded(column) if write is block_writer_block else column
        with pytest.raises(Exception) as refused:  # noqa: PT011  # whatever it raises, alike
            write(["c"], [type_name], [given])
        refusals.append((type(refused.value), str(refused.value)))
    assert refusals[0] == refusals[1]


def test_a_coded_column_reads_as_its_values() -> None:
    values = ["b", "a", "b", "c", "a"]
    coded = Coded(values)
    assert (coded.distinct, coded.keys) == (["b", "a", "c"], [0, 1, 0, 2, 1])
    assert coded == values and list(coded) == values and len(coded) == 5
    assert (coded[3], coded[1:3]) == ("c", ["a", "b"])
    coded.extend(["d", "a"])
    assert coded.values() == [*values, "d", "a"]
    upper = coded.mapped(lambda v: "x" if v in "ab" else v.upper())  # two values to one
    assert (upper.distinct, upper.values()) == (["x", "C", "D"], [*"xxxCxDx"])
    assert Coded(["x", "C", "x", "D"]).distinct == ["x", "C", "D"]  # first appearance
