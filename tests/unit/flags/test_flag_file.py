"""Flag files: what is accepted, and what a malformed file is refused with (line, field)."""

from __future__ import annotations

import pytest
from shiftright_server.schemas.flag_file import FlagFileError, diff_flags, load_flags

GOOD = """\
version: 1
app: checkout
flags:
  - name: new-checkout
    kind: toggle
    environments: {prod: on, preprod: off}
  - name: layout
    kind: flag
    environments: {prod: on}
    variants: {classic: v1, wide: v2}
    default: classic
    targeting:
      - users: [u-1]
        variant: wide
      - attributes: {plan: [pro, enterprise]}
        variant: wide
      - percentage: {wide: 20, classic: 80}
  - name: bulk-export
    kind: ticket
    segment: {event: checkout.submit, at_least: 1000, window: 24h, leave_below: 800}
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(FlagFileError) as caught:
        load_flags(text, "flags.yaml")
    return [str(p) for p in caught.value.problems]


def test_a_good_file_reads_on_and_off_per_environment() -> None:
    flags = load_flags(GOOD)
    toggle = flags.named("new-checkout")
    assert toggle is not None and toggle.enabled("prod") and not toggle.enabled("preprod")
    ticket = flags.named("bulk-export")
    assert ticket is not None and ticket.kind == "ticket"
    assert ticket.segment.window == 86400 and ticket.segment.exit_below == 800


def test_an_unknown_variant_is_named_with_its_line_and_flag() -> None:
    bad = GOOD.replace("default: classic", "default: narrow")
    assert _problems(bad) == [
        "7: flags[1] (layout): Value error, unknown variant(s) narrow; variants: classic, wide"
    ]


def test_percentages_must_sum_to_100() -> None:
    bad = GOOD.replace("{wide: 20, classic: 80}", "{wide: 20, classic: 70}")
    (problem,) = _problems(bad)
    assert problem.startswith("17: flags[1] (layout).targeting[2]: ")
    assert "sum to 100" in problem


def test_a_hysteresis_band_upside_down_is_refused() -> None:
    bad = GOOD.replace("leave_below: 800", "leave_below: 1200")
    (problem,) = _problems(bad)
    assert problem.startswith("20: flags[2] (bulk-export).segment: ")
    assert "leave_below must be at or below at_least" in problem


def test_a_missing_field_and_a_typo_are_both_reported() -> None:
    bad = GOOD.replace("    segment: {event", "    segmnt: {event")
    problems = _problems(bad)
    assert "18: flags[2] (bulk-export).segment: Field required" in problems
    assert any(p.startswith("20: flags[2] (bulk-export).segmnt: Extra inputs") for p in problems)


def test_an_unknown_kind_points_at_the_kind() -> None:
    (problem,) = _problems(GOOD.replace("kind: toggle", "kind: switch"))
    assert problem.startswith("5: flags[0] (new-checkout).kind: ")


def test_syntax_errors_and_empty_files_say_where() -> None:
    assert _problems("app: [checkout\n") == [
        "2: (syntax): expected ',' or ']', but got '<stream end>'"
    ]
    assert _problems("") == ["1: app: Field required"]


def test_diff_names_flags_added_removed_and_changed() -> None:
    old = load_flags(GOOD)
    new = load_flags(
        GOOD.replace("{prod: on, preprod: off}", "{prod: off, preprod: off}").replace(
            "  - name: bulk-export", "  - name: bulk-import"
        )
    )
    assert [str(c) for c in diff_flags(old, new)] == [
        "- flag bulk-export",
        "+ flag bulk-import",
        "~ flag new-checkout (environments)",
    ]
