"""Rule files (YAML) → :class:`schemas.alerts.RuleFile`, and the diff ``rules apply`` shows.

Every problem is reported with the file, line and field it is about, e.g.
``rules.yaml:12: rules[1] (cpu-high).threshold: Field required``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from shiftright_server.schemas.alerts import RuleFile


@dataclass(frozen=True)
class Problem:
    line: int  # 1-based
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.line}: {self.field}: {self.message}"


class RuleFileError(ValueError):
    """A rule file that cannot be applied; ``problems`` name line and field of each."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}:{p}" for p in problems))


def load_rules(text: str, source: str = "<rules>") -> RuleFile:
    """Parse and validate a rule file; :class:`RuleFileError` on any problem."""
    return load_model(text, source, RuleFile, "rules")


M = TypeVar("M", bound=BaseModel)


def load_model(text: str, source: str, model: type[M], top: str) -> M:
    """Parse YAML ``text`` into ``model``; :class:`RuleFileError` naming line and field of
    every problem (``top`` names the file's main list in the message of a bad top level)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise RuleFileError(source, [Problem(line, "(syntax)", str(exc.problem))]) from None
    except yaml.YAMLError as exc:  # e.g. a control character: a ReaderError, not "marked"
        position = getattr(exc, "position", 0) or 0
        character = getattr(exc, "character", None)
        message = str(exc).splitlines()[0]
        if isinstance(character, int):
            message = f"unacceptable character #x{character:04x}: {getattr(exc, 'reason', '')}"
        line = text.count("\n", 0, position) + 1
        raise RuleFileError(source, [Problem(line, "(syntax)", message)]) from None
    if root is None:  # an empty file: an empty mapping at line 1
        text = "{}"
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        assert root is not None, "a mapping composes to a node"
    data = yaml.SafeLoader(text).get_single_data()
    if not isinstance(data, dict):
        raise RuleFileError(source, [Problem(1, "(top)", f"expected a mapping with {top}:, …")])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(root, data, err) for err in exc.errors()]
        raise RuleFileError(source, problems) from None


def load_rules_file(path: str) -> RuleFile:
    with open(path, encoding="utf-8") as f:
        return load_rules(f.read(), path)


def _problem(root: yaml.Node, data: Any, err: Any) -> Problem:
    node, parts, value = root, [], data
    loc = list(err["loc"])
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc.append("kind")  # the discriminator itself is the field at fault
    tag = None  # pydantic names the discriminator (a rule's kind) before its fields
    for step in loc:
        if step == tag:
            tag = None
            continue
        tag = None
        child = _child(node, step)
        if child is None:
            if isinstance(step, str):
                parts.append(step)  # a missing field: named, line of its parent
            continue
        node = child
        value = value[step] if isinstance(value, dict | list) else None
        parts.append(f"[{step}]" if isinstance(step, int) else step)
        if isinstance(step, int) and isinstance(value, dict):
            tag = value.get("kind")
            if "name" in value:
                parts[-1] += f" ({value['name']})"
    field = ".".join(parts).replace(".[", "[") or "(top)"
    return Problem(node.start_mark.line + 1, field, err["msg"])


def _child(node: yaml.Node, step: Any) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode) and isinstance(step, str):
        pairs: list[tuple[yaml.Node, yaml.Node]] = node.value
        for key, val in pairs:
            if key.value == step:
                return val
    if isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
        items: list[yaml.Node] = node.value
        return items[step]
    return None


# -- diff -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    op: str  # "+" added, "-" removed, "~" changed
    what: str  # rule / subscription / silence / inhibit
    name: str
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        detail = f" ({', '.join(self.fields)})" if self.fields else ""
        return f"{self.op} {self.what} {self.name}{detail}"


def diff(old: RuleFile, new: RuleFile) -> list[Change]:
    """What applying ``new`` over ``old`` changes, rule by rule (sorted, stable)."""
    out: list[Change] = []
    out += _diff_named("rule", {r.name: r for r in old.rules}, {r.name: r for r in new.rules})
    out += _diff_named(
        "subscription",
        {s.name: s for s in old.subscriptions},
        {s.name: s for s in new.subscriptions},
    )
    out += _diff_named("silence", {s.id: s for s in old.silences}, {s.id: s for s in new.silences})
    if old.inhibit != new.inhibit:
        out.append(Change("~", "inhibit", "rules"))
    return out


def _diff_named(what: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    out = [Change("-", what, n) for n in sorted(old.keys() - new.keys())]
    out += [Change("+", what, n) for n in sorted(new.keys() - old.keys())]
    for name in sorted(old.keys() & new.keys()):
        a, b = old[name].model_dump(by_alias=True), new[name].model_dump(by_alias=True)
        changed = tuple(sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k)))
        if changed:
            out.append(Change("~", what, name, changed))
    return out
