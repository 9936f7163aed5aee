"""``shiftright import coverage .coverage``: coverage.py's per-test contexts held against
the stack frames the SDK recorded for prod errors, so "tested" can also mean "a test ran
this line". Each prod error (per app, route and in-app stack) is reported with the tests
that ran its failing line (the deepest in-app frame), failing lines no test ran first.

Contexts come from ``pytest --cov --cov-context=test`` (``node id|phase``) or coverage's
``dynamic_context = test_function``. Files are matched to frames by module: the frame's
``module`` (``shop.cart``) against the measured file's path (``…/src/shop/cart.py``),
so coverage measured on a CI machine matches frames recorded on prod hosts.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from shiftright_server.infra.cli.common import cli_settings as _settings
from shiftright_server.infra.cli.common import fail as _fail
from shiftright_server.infra.cli.common import warehouse_client as _client
from shiftright_server.schemas import qa_queries as q

#: module-like key of a measured file ("work.src.shop.cart") -> line -> tests that ran it
Covered = dict[str, dict[int, set[str]]]
out = Console()


def load(path: Path) -> Covered:
    """Per measured file, the tests that ran each line (contexts without a test skipped)."""
    try:
        from coverage import CoverageData
    except ImportError:
        _fail("coverage.py is not installed: pip install coverage")
        raise
    data = CoverageData(basename=str(path))
    data.read()
    covered: Covered = {}
    for filename in data.measured_files():
        lines = covered.setdefault(_key(filename), {})
        for lineno, contexts in data.contexts_by_lineno(filename).items():
            tests = {c.split("|", 1)[0] for c in contexts if c}
            if tests:
                lines.setdefault(lineno, set()).update(tests)
    return covered


def _key(filename: str) -> str:
    return ".".join(Path(filename).with_suffix("").parts).lstrip("./")


@dataclass(frozen=True)
class Assessed:
    app: str
    route: str
    exception_type: str
    errors: int
    failing_line: str  # module:lineno of the deepest in-app frame
    tests: list[str]  # tests that ran the failing line
    frames_run: int  # in-app frames of the stack some test ran
    frames: int


def assess(rows: list[dict[str, Any]], covered: Covered) -> list[Assessed]:
    """Each error stack against the coverage: never-run failing lines first."""
    found = [_one(row, covered) for row in rows]
    return sorted(found, key=lambda a: (bool(a.tests), -a.errors, a.route))


def _one(row: dict[str, Any], covered: Covered) -> Assessed:
    frames = [_frame(f) for f in row["app_frames"]]
    ran = [_tests(module, line, covered) for module, line in frames]
    failing = f"{frames[-1][0]}:{frames[-1][1]}" if frames else ""
    return Assessed(
        row["app"],
        row["route"],
        row["exception_type"],
        int(row["errors"]),
        failing,
        sorted(ran[-1]) if ran else [],
        sum(1 for tests in ran if tests),
        len(frames),
    )


def _frame(frame: Any) -> tuple[str, int]:
    if isinstance(frame, dict):
        return str(frame["module"]), int(frame["lineno"])
    return str(frame[0]), int(frame[3])  # (module, function, filename, lineno, in_app)


def _tests(module: str, line: int, covered: Covered) -> set[str]:
    found: set[str] = set()
    for key, lines in covered.items():
        if module and (key == module or key.endswith("." + module)):
            found |= lines.get(line, set())
    return found


def import_coverage(
    path: Annotated[Path, typer.Argument(help="A coverage.py data file with test contexts.")],
    app_name: Annotated[str, typer.Option("--app", help="Only this app.")] = "",
    env: Annotated[str, typer.Option(help="Errors of this environment.")] = "prod",
    days: Annotated[int, typer.Option(help="Errors of the last this many days.")] = 30,
    limit: Annotated[int, typer.Option(help="At most this many error stacks.")] = 200,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Which failing lines of prod errors any test ran (coverage.py per-test contexts)."""
    if not path.exists():
        _fail(f"{path}: no such coverage data file")
    covered = load(path)
    params = {"app": app_name, "env": env, "days": days, "limit": limit}
    try:
        result = _client(_settings()).query(q.ERROR_FRAMES, parameters=params)
    except Exception as exc:
        _fail(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
        return
    rows = [dict(zip(result.column_names, r, strict=True)) for r in result.result_rows]
    _print(assess(rows, covered), fmt)


def _print(found: list[Assessed], fmt: str) -> None:
    if fmt == "json":
        for a in found:
            sys.stdout.write(json.dumps(a.__dict__) + "\n")
        return
    table = Table(
        "app",
        "route",
        "exception",
        "errors",
        "failing line",
        "tests that ran it",
        "stack frames run",
        title="Prod errors against test coverage",
    )
    for a in found:
        tests = ", ".join(a.tests[:3]) + (f" (+{len(a.tests) - 3})" if len(a.tests) > 3 else "")
        table.add_row(
            escape(a.app),
            escape(a.route or "–"),
            escape(a.exception_type),
            f"{a.errors:,}",
            escape(a.failing_line or "–"),
            escape(tests) if tests else "[red]none[/]",
            f"{a.frames_run}/{a.frames}",
        )
    out.print(table)
