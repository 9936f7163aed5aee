"""Layers import one way, checked on every module's imports (function-level ones too):

    schemas  →  infra: configuration and clients  →  producers | streams | sinks | dashboard  →  CLI and ops

=============================  =====================================================
package                        may import (of shiftright_server)
=============================  =====================================================
schemas                        schemas
infra (configuration, clients)  schemas, infra (configuration, clients)
producers                      schemas, infra (configuration, clients), producers
streams                        schemas, infra (configuration, clients), streams
sinks                          schemas, infra (configuration, clients), sinks
dashboard                      schemas, infra (configuration, clients), dashboard
infra.cli, infra.api, infra.ops  anything
producers/sdk (``shiftright``)  nothing: the SDK is its own distribution
=============================  =====================================================

The top of ``infra`` (the command line, the HTTP service the gateway process serves and
process supervision) composes the rest; nothing below imports it. And nothing anywhere
imports a project folder by its bare name (``import streams``): installed, the folders
exist only under ``shiftright_server``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UMBRELLA = "shiftright_server"
FOLDERS = ("schemas", "producers", "streams", "sinks", "dashboard", "infra")
SDK = Path("producers", "sdk")
TOP = ("infra.cli", "infra.api", "infra.ops")
CLIENTS = "infra (configuration and clients)"

#: Each layer and the layers it may import; the top may import anything.
ALLOWED: dict[str, tuple[str, ...]] = {
    "schemas": ("schemas",),
    CLIENTS: ("schemas", CLIENTS),
    "producers": ("schemas", CLIENTS, "producers"),
    "streams": ("schemas", CLIENTS, "streams"),
    "sinks": ("schemas", CLIENTS, "sinks"),
    "dashboard": ("schemas", CLIENTS, "dashboard"),
}


@dataclass(frozen=True)
class Broken:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def layer(module: str) -> str:
    """The layer of a module named below ``shiftright_server`` (``streams.app`` …)."""
    if any(module == top or module.startswith(top + ".") for top in TOP):
        return "top"
    first = module.split(".")[0]
    return CLIENTS if first == "infra" else first


def module_name(path: Path) -> str:
    """``streams/alerting/service.py`` -> ``streams.alerting.service``."""
    parts = list(path.with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, package: str) -> Iterator[tuple[int, str]]:
    """(line, absolute module) of every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import mod`` imports pkg.mod when mod is a module: check both
            yield node.lineno, base
            for alias in node.names:
                if alias.name != "*":
                    yield node.lineno, f"{base}.{alias.name}"


def check_layers(root: Path) -> list[Broken]:
    """Every import that breaks a rule, in the project folders under ``root``."""
    broken: list[Broken] = []
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root)
            if rel.is_relative_to(SDK):
                broken += _check_sdk(path, rel)
            else:
                broken += _check_server(path, rel)
    return broken


def check_bare(root: Path, folders: tuple[str, ...]) -> list[Broken]:
    """Imports of a project folder by its bare name (``from streams.app import …``)."""
    broken: list[Broken] = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root)
            for line, name in imports(path, _package(rel)):
                if name.split(".")[0] in FOLDERS:
                    broken.append(Broken(rel, line, f"imports {name!r}: write {UMBRELLA}.{name}"))
    return broken


def _package(rel: Path) -> str:
    name = module_name(rel)
    return name if rel.name == "__init__.py" else name.rpartition(".")[0]


def _check_server(path: Path, rel: Path) -> list[Broken]:
    own = layer(module_name(rel))
    broken: list[Broken] = []
    for line, name in imports(path, f"{UMBRELLA}.{_package(rel)}"):
        if broken and broken[-1].line == line:
            continue  # one finding per import statement
        if name.split(".")[0] in FOLDERS:
            broken.append(Broken(rel, line, f"imports {name!r}: write {UMBRELLA}.{name}"))
            continue
        if not name.startswith(UMBRELLA + "."):
            continue
        target = layer(name.removeprefix(UMBRELLA + "."))
        if own != "top" and target not in ALLOWED[own]:
            may = ", ".join(ALLOWED[own])
            broken.append(
                Broken(rel, line, f"{own} may not import {name} ({target}); {own} imports {may}")
            )
    return broken


def _check_sdk(path: Path, rel: Path) -> list[Broken]:
    """The SDK's sources, tests and examples; under ``src`` the import names start."""
    inside = rel.relative_to(SDK / "src") if rel.is_relative_to(SDK / "src") else rel
    broken = []
    for line, name in imports(path, _package(inside)):
        if name == UMBRELLA or name.startswith(UMBRELLA + ".") or name.split(".")[0] in FOLDERS:
            broken.append(
                Broken(rel, line, f"the SDK may not import {name}: it is its own distribution")
            )
    return broken


# -- the project ---------------------------------------------------------------------------
def test_every_module_imports_only_the_layers_below_it() -> None:
    broken = check_layers(ROOT)
    assert not broken, "imports against the layer order:\n" + "\n".join(map(str, broken))


def test_no_module_imports_a_project_folder_by_its_bare_name() -> None:
    broken = check_bare(ROOT, ("tests", "bench"))
    assert not broken, "bare project imports:\n" + "\n".join(map(str, broken))


def test_every_installed_folder_has_a_rule() -> None:
    setup = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    mapped = next(
        ast.literal_eval(node.value)
        for node in ast.walk(setup)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "FOLDERS" for t in node.targets)
    )
    assert set(mapped) == set(FOLDERS), "give each folder setup.py installs a layer here"


# -- the check itself, on a small tree -----------------------------------------------------
def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "streams/step.py",
            "def f():\n    from shiftright_server.sinks.router import x\n",
            "streams/step.py:2: streams may not import shiftright_server.sinks.router (sinks)",
        ),
        (
            "sinks/notify/plan.py",
            "import shiftright_server.streams.alerting\n",
            "sinks/notify/plan.py:1: sinks may not import shiftright_server.streams.alerting",
        ),
        (
            "producers/gateway/app.py",
            "from shiftright_server.infra import cli\n",
            "producers/gateway/app.py:1: producers may not import shiftright_server.infra.cli (top)",
        ),
        (
            "infra/settings.py",
            "from shiftright_server.infra.ops.status import collect\n",
            "infra/settings.py:1: infra (configuration and clients) may not import "
            "shiftright_server.infra.ops.status (top)",
        ),
        (
            "schemas/topics.py",
            "from shiftright_server.infra.settings import Settings\n",
            "schemas/topics.py:1: schemas may not import shiftright_server.infra.settings",
        ),
        (
            "streams/app.py",
            "from streams.processor import step\n",
            "streams/app.py:1: imports 'streams.processor': write shiftright_server.streams",
        ),
        (
            "sinks/batch.py",
            "from ..streams import processor\n",
            "sinks/batch.py:1: sinks may not import shiftright_server.streams (streams)",
        ),
        (
            "producers/sdk/src/shiftright/client.py",
            "from shiftright_server.schemas import topics\n",
            "producers/sdk/src/shiftright/client.py:1: the SDK may not import shiftright_server",
        ),
    ],
)
def test_the_check_names_file_line_and_rule(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    broken = check_layers(_tree(tmp_path, {name: text}))
    assert any(str(b).startswith(expected) for b in broken), broken


def test_the_check_lets_each_layer_import_those_below_and_the_top_import_all(
    tmp_path: Path,
) -> None:
    root = _tree(
        tmp_path,
        {
            "infra/kafka/topics.py": "from shiftright_server.schemas import topics\n",
            "streams/app.py": "from shiftright_server.infra.alerting_config import C\n",
            "sinks/notify/service.py": "from . import notifier\n",
            "infra/cli/root.py": "from shiftright_server.streams.app import a\n"
            "from shiftright_server.producers.emitter import E\n",
            "infra/api/gateway.py": "from shiftright_server.producers.gateway import server\n",
        },
    )
    assert check_layers(root) == []


def test_bare_imports_in_tests_and_benchmarks_are_found(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"bench/run.py": "def f():\n    import infra.settings\n"})
    assert [str(b) for b in check_bare(root, ("bench",))] == [
        "bench/run.py:2: imports 'infra.settings': write shiftright_server.infra.settings"
    ]
