"""The rule form: one rule of the applied rule file as form fields, the form back into a
rule file, and the rule file's problems (``schemas.rule_file.load_rules``, the check the
CLI and the HTTP API run) as messages next to the fields they are about.

Saving rewrites the rule file as YAML with the edited rule in place; the other rules,
subscriptions, silences and inhibitions keep their values (comments in the file are not
kept).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

import yaml
from shiftright_server.schemas.alerts import Rule
from shiftright_server.schemas.rule_file import RuleFileError, load_rules

KINDS: Final = ("threshold", "change", "anomaly", "absence", "error_group")
MEASURED: Final = ("measure", "window", "aggregate")
#: The fields each kind has on the form, beyond name, description, scope, for, severity.
KIND_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "threshold": (*MEASURED, "op", "threshold", "resolve_threshold"),
    "change": (*MEASURED, "compare_to", "percent", "direction", "min_volume"),
    "anomaly": (*MEASURED, "direction", "sensitivity", "min_volume"),
    "absence": ("after", "min_volume"),
    "error_group": ("transitions", "resolve_after"),
}
_SPECIFIC: Final = {f for names in KIND_FIELDS.values() for f in names} | {"kind"}
COMMON: Final = ("name", "description", "for", "severity")
SCOPE: Final = ("app", "env", "source", "key")
TRANSITIONS: Final = ("new", "new_in_env", "regressed", "spiking", "unignored")
_RULE_FIELD = re.compile(r"^rules\[(\d+)\](?: \([^)]*\))?\.?(.*)$")


@dataclass
class RuleForm:
    """The form's values (strings, as typed) and its messages by field."""

    values: dict[str, Any]
    original: str = ""  # the name of the rule being edited ('' = a new rule)
    version: int = 0  # the rule file version the form was opened on
    problems: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)  # problems about no field here

    @property
    def kind(self) -> str:
        kind = str(self.values.get("kind") or "threshold")
        return kind if kind in KINDS else "threshold"


def blank(kind: str, app: str = "", env: str = "") -> RuleForm:
    values: dict[str, Any] = {"kind": kind if kind in KINDS else "threshold"}
    values |= {"app": app, "env": env or "prod", "source": "usage", "severity": "warning"}
    values |= {"measure": "count", "window": "1m", "aggregate": "avg", "op": ">"}
    values["transitions"] = ["new", "regressed", "spiking"]
    return RuleForm(values)


def from_rule(mapping: dict[str, Any], version: int) -> RuleForm:
    """A rule mapping of the applied file as form values."""
    scope = mapping.get("scope") or {}
    filters = scope.get("filters") or {}
    values: dict[str, Any] = {
        k: _text(v) for k, v in mapping.items() if k not in ("scope", "transitions")
    }
    values |= {k: _text(scope.get(k, "")) for k in ("app", "env", "source")}
    values["key"] = _text(filters.get("key", ""))
    values["transitions"] = list(mapping.get("transitions") or [])
    return RuleForm(values, original=str(mapping.get("name", "")), version=version)


def parse_form(form: dict[str, Any], transitions: list[str]) -> RuleForm:
    """The posted form (``transitions`` are the checked boxes)."""
    values: dict[str, Any] = {k: str(v).strip() for k, v in form.items() if isinstance(v, str)}
    values["transitions"] = [t for t in transitions if t in TRANSITIONS]
    original = values.pop("original", "")
    try:
        version = int(values.pop("version", "0") or 0)
    except ValueError:
        version = 0
    return RuleForm(values, original=original, version=version)


def rule_file_data(text: str) -> dict[str, Any]:
    data = yaml.safe_load(text) if text.strip() else None
    return data if isinstance(data, dict) else {}


def rule_mapping(data: dict[str, Any], name: str) -> dict[str, Any] | None:
    for rule in data.get("rules") or []:
        if isinstance(rule, dict) and rule.get("name") == name:
            return rule
    return None


def merged(form: RuleForm, old: dict[str, Any] | None) -> dict[str, Any]:
    """The rule mapping the form makes: the old rule's fields the form does not show
    (labels, annotations, other filters ...) kept, empty fields left to their defaults."""
    rule = {k: v for k, v in (old or {}).items() if k not in _SPECIFIC and k not in COMMON}
    scope = dict((old or {}).get("scope") or {})
    v = form.values
    rule = {"name": v.get("name", ""), "kind": form.kind, **rule}
    for name in ("description", "for", "severity"):
        if v.get(name):
            rule[name] = _scalar(v[name]) if name == "for" else v[name]
        else:
            rule.pop(name, None)
    filters = {k: x for k, x in (scope.get("filters") or {}).items() if k != "key"}
    if v.get("key"):
        filters["key"] = v["key"]
    scope |= {k: v.get(k, "") for k in ("app", "env")}
    scope["source"] = v.get("source") or "usage"
    scope["filters"] = filters
    rule["scope"] = {k: x for k, x in scope.items() if x != "" and x != {}}
    for name in KIND_FIELDS[form.kind]:
        if name == "transitions":
            rule[name] = list(v.get("transitions") or [])
        elif v.get(name):
            rule[name] = _scalar(v[name])
    return rule


def new_text(current: str, form: RuleForm) -> tuple[str, int]:
    """The rule file with the form's rule in place of the one edited (or added at the
    end); and the index of that rule in ``rules``."""
    data = rule_file_data(current)
    rules = [r for r in (data.get("rules") or [])]
    old = rule_mapping(data, form.original) if form.original else None
    rule = merged(form, old)
    if old is not None:
        index = rules.index(old)
        rules[index] = rule
    else:
        index = len(rules)
        rules.append(rule)
    data = {"version": 1, **data, "rules": rules}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True), index


def check(form: RuleForm, text: str, index: int) -> Rule | None:
    """The form's rule when the new file is valid; else None with its problems set on
    the form by field."""
    try:
        rules = load_rules(text, "dashboard")
    except RuleFileError as exc:
        for problem in exc.problems:
            _place(form, problem.field, problem.message, index)
        return None
    return rules.rules[index]


def _place(form: RuleForm, where: str, message: str, index: int) -> None:
    found = _RULE_FIELD.match(where)
    if found is None or int(found.group(1)) != index:
        name = str(form.values.get("name", ""))
        if "duplicate rule" in message and name and name in message:
            form.problems.setdefault("name", []).append(f"a rule named {name} exists already")
        else:
            form.general.append(f"{where}: {message}")
        return
    path = found.group(2) or "kind"
    name = _form_field(path)
    form.problems.setdefault(name, []).append(message.removeprefix("Value error, "))


def _form_field(path: str) -> str:
    """``scope.app`` → app, ``scope.filters.key`` → key, ``threshold`` → threshold."""
    parts = path.split(".")
    if parts[0] == "scope":
        rest = parts[1:] or ["app"]
        return "key" if rest[0] == "filters" else rest[0]
    if parts[0] == "transitions":
        return "transitions"
    return parts[0]


def _scalar(text: str) -> Any:
    """A number typed in a field as a YAML number (``10`` not ``'10'``); else the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
