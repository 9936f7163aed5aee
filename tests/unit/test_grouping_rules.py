"""Grouping rules as code: what a rule does to grouping, how versions keep history
stable, and errors that say which line and field of the file is wrong."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from shiftright_server.schemas.events import ErrorEvent, Frame
from shiftright_server.streams.grouping import GroupBook, Grouper, Rules, RulesError, grouped_error

T0 = datetime(2026, 3, 4, 14, tzinfo=UTC)


def error(
    type_: str, module: str, function: str, message: str = "boom", app: str = "shop"
) -> ErrorEvent:
    frames = [
        Frame(module="shop.api.handlers", function="dispatch", lineno=40),
        Frame(module=module, function=function, lineno=12),
    ]
    return ErrorEvent(
        app=app, env="prod", ts=T0, exception_type=type_, exception_message=message, frames=frames
    )


PG = error(
    "psycopg.OperationalError", "shop.db.orders", "fetch_order", "server closed the connection"
)
PG_OTHER = error(
    "psycopg.OperationalError", "shop.db.carts", "save_cart", "server closed the connection"
)
KEY = error("KeyError", "shop.cart.service", "get_line_item", "'SKU-1'")
RULES = """\
version: 3
rules:
  - name: database-unreachable
    match:
      type: ^psycopg\\.OperationalError$
      message: server closed
    fingerprint: database-unreachable
  - match: {type: ^KeyError$, module: ^shop\\.cart\\., app: ^shop$}
    merge_into: 00000000000000aa
"""


def rules(text: str = RULES) -> Rules:
    return Rules.parse(text, source="grouping.yaml")


def test_a_fingerprint_rule_puts_different_stacks_in_one_group_and_says_so() -> None:
    plain = Grouper()
    assert plain.assign(PG).group_id != plain.assign(PG_OTHER).group_id
    ruled = Grouper(rules())
    a, b = ruled.assign(PG), ruled.assign(PG_OTHER)
    assert a.group_id == b.group_id
    assert (a.basis, a.rule, a.rules_version) == ("rule", "database-unreachable", 3)


def test_a_merge_rule_redirects_into_an_existing_group_and_remembers_where_from() -> None:
    own = Grouper().assign(KEY).group_id
    a = Grouper(rules()).assign(KEY)
    assert a.group_id == "00000000000000aa" and a.merged_from == own
    book = GroupBook()
    book.apply(grouped_error(KEY, a, None, None))
    assert book.take_rows()[0].merged_from == [own]


def test_every_match_field_must_hold() -> None:
    ruled = Grouper(rules())
    assert ruled.assign(error("KeyError", "shop.orders", "load")).rule == ""  # module differs
    assert ruled.assign(error("KeyError", "shop.cart.x", "f", app="admin")).rule == ""  # app
    timeout = error("psycopg.OperationalError", "shop.db.orders", "f", "timeout expired")
    assert ruled.assign(timeout).rule == ""  # message differs


def test_changing_rules_never_rekeys_groups_made_before() -> None:
    v1 = Grouper(Rules.parse("version: 1\nrules: []\n"))
    book = GroupBook()
    before = v1.assign(PG)
    book.apply(grouped_error(PG, before, None, None))
    v2 = Grouper(rules())
    after_event = PG.model_copy(update={"ts": T0 + timedelta(hours=1)})
    after = v2.assign(after_event)
    book.apply(grouped_error(after_event, after, None, None))
    rows = {r.group_id: r for r in book.take_rows()}
    assert rows[before.group_id].count == 1 and rows[before.group_id].rules_version == 1
    assert rows[after.group_id].count == 1 and rows[after.group_id].rules_version == 3
    assert before.rules_version == 1 and after.rules_version == 3
    assert v1.assign(PG) == before  # the old rules still give the old answer


def test_rules_load_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "grouping.yaml"
    path.write_text(RULES)
    loaded = Rules.load(path)
    assert loaded.version == 3 and [r.name for r in loaded.rules] == [
        "database-unreachable",
        "rules[1]",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "version: 1\nrules:\n  - match: {type: [unclosed\n",
            r"grouping\.yaml line \d+: not valid YAML",
        ),
        ("rules: []\n", r"line 1: version: missing"),
        ("version: one\n", r"line 1: version: must be a non-negative integer"),
        ("version: 1\nrule: []\n", r"line 2: the file\.rule: unknown field"),
        ("version: 1\nrules: {}\n", r"line 2: rules: must be a list"),
        (
            "version: 1\nrules:\n  - match:\n      type: KeyError\n      modul: x\n    fingerprint: f\n",
            r"line 5: rules\[0\]\.match\.modul: unknown field; expected one of app, message, module, type",
        ),
        (
            "version: 1\nrules:\n  - fingerprint: f\n    match:\n      message: '(unclosed'\n",
            r"line 5: rules\[0\]\.match\.message: bad regular expression",
        ),
        (
            "version: 1\nrules:\n  - match: {type: X}\n",
            r"line 3: rules\[0\]: give exactly one of fingerprint or merge_into",
        ),
        (
            "version: 1\nrules:\n  - match: {type: X}\n    fingerprint: a\n    merge_into: b\n",
            r"line 3: rules\[0\]: give exactly one",
        ),
        (
            "version: 1\nrules:\n  - match: {type: X}\n    merge_into: not-an-id\n",
            r"line 4: rules\[0\]\.merge_into: not a group id",
        ),
        ("version: 1\nrules:\n  - fingerprint: f\n", r"line 3: rules\[0\]\.match: missing"),
        (
            "version: 1\nrules:\n  - match: {}\n    fingerprint: f\n",
            r"rules\[0\]\.match: needs at least one",
        ),
    ],
)
def test_a_bad_rules_file_names_the_line_and_the_field(text: str, message: str) -> None:
    with pytest.raises(RulesError, match=message):
        Rules.parse(textwrap.dedent(text), source="grouping.yaml")


def test_the_documented_example_is_a_valid_rules_file() -> None:
    import shiftright_server.streams.grouping.rules as module

    doc = module.__doc__ or ""
    example = textwrap.dedent(doc.split("::\n\n", 1)[1].split("\n\n", 1)[0])
    parsed = Rules.parse(example)
    assert parsed.version == 3 and [bool(r.fingerprint) for r in parsed.rules] == [True, False]
