"""The deployment examples (systemd units, Kubernetes manifest, compose file) name real
settings, modules and commands, so they keep working as the code moves."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest
import typer
import yaml
from shiftright_server.infra.cli.root import app

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "infra" / "deploy"
EXAMPLES = sorted(p for p in DEPLOY.rglob("*") if p.is_file())


def _commands(path: Path) -> list[list[str]]:
    """Every command line an example runs (ExecStart, command:, sh -c strings)."""
    text = path.read_text()
    found = [shlex.split(m[1]) for m in re.finditer(r"^ExecStart=(.+)$", text, re.M)]
    if path.suffix == ".yaml":
        found += [c for doc in yaml.safe_load_all(text) for c in _yaml_commands(doc)]
    expanded = []
    for argv in found:
        if argv[:2] == ["sh", "-c"]:
            expanded += [shlex.split(part) for part in argv[2].split("&&")]
        else:
            expanded.append(argv)
    return expanded


def _yaml_commands(node: object) -> list[list[str]]:
    if isinstance(node, dict):
        found = [node["command"]] if isinstance(node.get("command"), list) else []
        return found + [c for value in node.values() for c in _yaml_commands(value)]
    if isinstance(node, list):
        return [c for value in node for c in _yaml_commands(value)]
    return []


def test_the_examples_exist() -> None:
    names = {p.relative_to(DEPLOY).as_posix() for p in EXAMPLES}
    assert {"Dockerfile", "compose.yaml", "kubernetes/shiftright.yaml"} <= names
    assert {"systemd/shiftright-streams@.service", "systemd/shiftright-sink@.service"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_setting_an_example_names_is_a_real_one(path: Path) -> None:
    documented = set(
        re.findall(r"`(SHIFTRIGHT_\w+)`", (ROOT / "docs/configuration.md").read_text())
    )
    named = set(re.findall(r"\b(SHIFTRIGHT_[A-Z_]+[A-Z])\b", path.read_text()))
    assert named - documented == set(), f"{path.name} names settings that do not exist"


@pytest.mark.parametrize(
    "path", [p for p in EXAMPLES if p.suffix in {".service", ".yaml"}], ids=lambda p: p.name
)
def test_every_command_an_example_runs_exists(path: Path) -> None:
    commands = _commands(path)
    assert commands, f"{path.name} runs nothing"
    cli = {c.name for c in typer.main.get_command(app).commands.values()}  # type: ignore[attr-defined]  # a typer group's click command lists its subcommands
    for argv in commands:
        program = Path(argv[0]).name
        if program == "python":
            assert argv[1] == "-m" and importlib.util.find_spec(argv[2]) is not None, argv
        else:
            assert program == "shiftright" and argv[1] in cli, argv


def test_the_kubernetes_manifest_gives_each_stream_worker_a_stable_member_id() -> None:
    docs = list(yaml.safe_load_all((DEPLOY / "kubernetes/shiftright.yaml").read_text()))
    assert all({"apiVersion", "kind", "metadata"} <= set(d) for d in docs)
    workers = next(d for d in docs if d["metadata"]["name"] == "shiftright-streams")
    assert workers["kind"] == "StatefulSet"  # pod names survive restarts
    env = workers["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {
        "name": "SHIFTRIGHT_STREAMS__INSTANCE_ID",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
    } in env
