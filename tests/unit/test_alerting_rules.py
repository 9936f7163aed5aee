"""Rule files: what a team keeps in git is checked before it is applied, and the diff
``rules apply`` shows."""

from __future__ import annotations

import pytest
from shiftright_server.schemas.alerts import AbsenceRule, Matcher, ThresholdRule
from shiftright_server.schemas.rule_file import RuleFileError, diff, load_rules

GOOD = """\
rules:
  - name: checkout-cpu
    kind: threshold
    scope: {app: checkout, env: prod, source: health}
    measure: avg:system.cpu.utilization
    threshold: 0.9
    resolve_threshold: 0.75
    for: 2m
    severity: critical
    annotations: {summary: "CPU {value} on {host}"}
  - name: checkout-silent
    kind: absence
    scope: {app: checkout, per_key: false}
    after: 90s
subscriptions:
  - name: oncall
    channel: webhook
    to: http://127.0.0.1:9/hook
    matchers: ['app="checkout"', "severity>=warning"]
    send_resolved: false
silences:
  - id: maint
    matchers: ["alertname=checkout-cpu"]
    starts_at: 2026-11-26T20:00:00Z
    ends_at: 2026-11-26T22:00:00Z
    created_by: alice@shop.example
    comment: planned maintenance
"""


def problems(text: str) -> list[str]:
    with pytest.raises(RuleFileError) as caught:
        load_rules(text, "team.yaml")
    return str(caught.value).splitlines()


def test_a_good_file_loads_with_durations_in_seconds() -> None:
    loaded = load_rules(GOOD)
    cpu, silent = loaded.rules
    assert isinstance(cpu, ThresholdRule) and cpu.for_ == 120.0 and cpu.resolve_threshold == 0.75
    assert isinstance(silent, AbsenceRule) and silent.after == 90.0
    assert loaded.subscriptions[0].send_resolved is False
    assert loaded.silences[0].created_by == "alice@shop.example"


def test_a_missing_field_is_named_with_the_line_of_its_rule() -> None:
    text = GOOD.replace("    threshold: 0.9\n", "")
    assert problems(text) == ["team.yaml:2: rules[0] (checkout-cpu).threshold: Field required"]


def test_a_bad_value_names_its_own_line_and_field() -> None:
    text = GOOD.replace("after: 90s", "after: 90x")
    (line,) = problems(text)
    assert line.startswith("team.yaml:14: rules[1] (checkout-silent).after: ")
    assert "bad duration '90x'" in line


def test_every_problem_is_reported_not_just_the_first() -> None:
    text = GOOD.replace("channel: webhook", "channel: pager").replace(
        "kind: absence", "kind: absent"
    )
    found = problems(text)
    assert any(p.startswith("team.yaml:12: rules[1] (checkout-silent).kind: ") for p in found)
    assert any(p.startswith("team.yaml:17: subscriptions[0] (oncall).channel:") for p in found)


def test_unknown_fields_and_inverted_hysteresis_are_rejected() -> None:
    typo = problems(GOOD.replace("    for: 2m\n", "    for: 2m\n    treshold: 3\n"))
    assert typo == ["team.yaml:9: rules[0] (checkout-cpu).treshold: Extra inputs are not permitted"]
    inverted = problems(GOOD.replace("resolve_threshold: 0.75", "resolve_threshold: 0.95"))
    assert inverted[0].startswith("team.yaml:2: rules[0] (checkout-cpu): ")
    assert "resolve_threshold must be at or below the threshold" in inverted[0]


def test_yaml_syntax_errors_name_the_line() -> None:
    (line,) = problems("rules:\n  - name: x\n    scope: {app: [\n")
    assert line.startswith("team.yaml:4: (syntax): ")


def test_duplicate_rule_names_are_rejected() -> None:
    text = GOOD.replace("name: checkout-silent", "name: checkout-cpu")
    assert "duplicate rule name(s): checkout-cpu" in problems(text)[0]


def test_diff_lists_added_removed_and_changed_fields() -> None:
    old = load_rules(GOOD)
    new_text = GOOD.replace("threshold: 0.9", "threshold: 0.95").replace(
        "name: checkout-silent", "name: checkout-quiet"
    )
    changes = [str(c) for c in diff(old, load_rules(new_text))]
    assert changes == [
        "- rule checkout-silent",
        "+ rule checkout-quiet",
        "~ rule checkout-cpu (threshold)",
    ]
    assert diff(old, load_rules(GOOD)) == []


def test_matchers_cover_equality_regex_and_severity_rank() -> None:
    labels = {"app": "checkout", "severity": "critical"}
    assert Matcher.model_validate('app="checkout"').matches(labels)
    assert Matcher.model_validate("app=~check.*").matches(labels)
    assert not Matcher.model_validate("app!~check.*").matches(labels)
    assert Matcher.model_validate("severity>=warning").matches(labels)
    assert not Matcher.model_validate("severity>=warning").matches({"severity": "info"})
