"""Custom grouping rules as code: a versioned YAML file.

::

    version: 3                       # required integer; stored with every assignment
    rules:                           # tried in order; the first match wins
      - name: database-unreachable   # optional, shown with the assignment
        match:                       # at least one of these regular expressions (re.search)
          app: ^checkout$            # the event's app
          type: ^psycopg\\.           # the root cause's exception type
          module: ^checkout\\.db\\.    # any frame's module of the root cause
          message: server closed     # the root cause's raw message
        fingerprint: database-unreachable   # one fixed group for everything matched ...
      - match: {type: ^KeyError$, module: cart\\.service}
        merge_into: 3f2a9c0d1e4b5a68        # ... or: into an existing group (by id)

Changing rules never re-keys history: each assignment records the rules version it was
made under, and groups keep their ids; only events grouped after the change follow the
new rules. A merge is a rule, so "merge these groups" is a reviewed change to this file.
Errors (:class:`RulesError`) name the file, line and field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import yaml
from shiftright_server.streams.grouping.chain import ExceptionInfo
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MATCH_KEYS: Final = ("app", "type", "module", "message")
_RULE_KEYS: Final = frozenset({"name", "match", "fingerprint", "merge_into"})
_GROUP_ID: Final = re.compile(r"^[0-9a-f]{16}$")


class RulesError(ValueError):
    """A rules file that cannot be used; the message names file, line and field."""


@dataclass(frozen=True)
class Rule:
    name: str
    patterns: dict[str, re.Pattern[str]]
    fingerprint: str = ""
    merge_into: str = ""

    def matches(self, app: str, exc: ExceptionInfo) -> bool:
        for key, pattern in self.patterns.items():
            if key == "module":
                if not any(pattern.search(f.module) for f in exc.frames):
                    return False
            elif not pattern.search({"app": app, "type": exc.type, "message": exc.message}[key]):
                return False
        return True


@dataclass(frozen=True)
class Rules:
    version: int = 0
    rules: tuple[Rule, ...] = field(default_factory=tuple)

    def first_match(self, app: str, exc: ExceptionInfo) -> Rule | None:
        if not self.rules:  # (no generator to make for every error)
            return None
        return next((r for r in self.rules if r.matches(app, exc)), None)

    @classmethod
    def load(cls, path: str | Path) -> Rules:
        path = Path(path)
        return cls.parse(path.read_text(), source=str(path))

    @classmethod
    def parse(cls, text: str, source: str = "<rules>") -> Rules:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise RulesError(f"{source}{line}: not valid YAML: {problem}") from None
        return _Parser(source).document(root)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, node: Node | None, where: str, problem: str) -> RulesError:
        line = f" line {node.start_mark.line + 1}" if node is not None else ""
        return RulesError(f"{self.source}{line}: {where}: {problem}")

    def document(self, root: Node | None) -> Rules:
        top = self.mapping(root, "the file", {"version", "rules"})
        version_node = top.get("version")
        if version_node is None:
            raise self.fail(root, "version", "missing: give the rules an integer version")
        version = self.integer(version_node, "version")
        rules_node = top.get("rules")
        if rules_node is None:
            return Rules(version, ())
        if not isinstance(rules_node, SequenceNode):
            raise self.fail(rules_node, "rules", "must be a list of rules")
        rules = tuple(self.rule(n, f"rules[{i}]") for i, n in enumerate(rules_node.value))
        return Rules(version, rules)

    def rule(self, node: Node, where: str) -> Rule:
        fields = self.mapping(node, where, _RULE_KEYS)
        match = self.mapping(fields.get("match"), f"{where}.match", set(MATCH_KEYS), node)
        if not match:
            raise self.fail(
                node, f"{where}.match", f"needs at least one of {', '.join(MATCH_KEYS)}"
            )
        patterns = {k: self.pattern(v, f"{where}.match.{k}") for k, v in match.items()}
        fp = self.text(fields.get("fingerprint"), f"{where}.fingerprint")
        merge = self.text(fields.get("merge_into"), f"{where}.merge_into")
        if bool(fp) == bool(merge):
            raise self.fail(node, where, "give exactly one of fingerprint or merge_into")
        if merge and not _GROUP_ID.match(merge):
            raise self.fail(
                fields["merge_into"], f"{where}.merge_into", "not a group id (16 hex digits)"
            )
        name = self.text(fields.get("name"), f"{where}.name") or where
        return Rule(name, patterns, fp, merge)

    def mapping(
        self,
        node: Node | None,
        where: str,
        allowed: set[str] | frozenset[str],
        parent: Node | None = None,
    ) -> dict[str, Node]:
        if node is None:
            raise self.fail(parent, where, "missing")
        if not isinstance(node, MappingNode):
            raise self.fail(node, where, "must be a mapping (key: value)")
        out: dict[str, Node] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, ScalarNode) else "?"
            if name not in allowed:
                raise self.fail(
                    key,
                    f"{where}.{name}",
                    f"unknown field; expected one of {', '.join(sorted(allowed))}",
                )
            out[name] = value
        return out

    def text(self, node: Node | None, where: str) -> str:
        if node is None:
            return ""
        if not isinstance(node, ScalarNode) or not str(node.value).strip():
            raise self.fail(node, where, "must be a non-empty string")
        return str(node.value)

    def integer(self, node: Node, where: str) -> int:
        if not isinstance(node, ScalarNode) or not re.fullmatch(r"\d{1,9}", str(node.value)):
            raise self.fail(node, where, "must be a non-negative integer")
        return int(node.value)

    def pattern(self, node: Node, where: str) -> re.Pattern[str]:
        text = self.text(node, where)
        try:
            return re.compile(text)
        except re.error as exc:
            raise self.fail(node, where, f"bad regular expression: {exc}") from None
