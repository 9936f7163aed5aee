"""The two distributions as users install them. An app installs the SDK wheel into its own
environment and uses it: nothing of the pipeline (Faust, chDB, pydantic, the server's
packages) comes along, and a broker that is not there costs the app nothing but a
counter. The server wheel installs one import name, ``shiftright_server``, so it cannot
shadow a user's ``schemas`` or ``streams``, and leaves ``import shiftright`` to the SDK,
which it declares as a dependency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.kafka_fixture import free_ports

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "producers" / "sdk"

APP = """
import importlib.util, json, time
import shiftright
shiftright.init(app="shop", env="test", release="1", kafka="127.0.0.1:{port}", health_interval=0.2)
started = time.perf_counter()
for i in range(1000):
    shiftright.track("cart.add", user_id=i, duration_ms=3.5)
try:
    1 / 0
except ZeroDivisionError:
    shiftright.capture_exception()
app_thread_ms = (time.perf_counter() - started) * 1000
left = shiftright.flush(1.0)
print(json.dumps({
    "file": shiftright.__file__, "left": left, "app_thread_ms": app_thread_ms,
    "stats": shiftright.stats(),
    "absent": [m for m in ("pydantic", "faust", "chdb", "shiftright_server", "schemas", "streams")
               if importlib.util.find_spec(m) is None],
    "typed": importlib.util.find_spec("shiftright").submodule_search_locations[0],
}))
shiftright.close(0.5)
"""


def run(*args: str | Path, cwd: Path, timeout: float = 120) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def build_wheel(project: Path, pattern: str, out: Path) -> Path:
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "-w",
        out,
        project,
        cwd=out.parent,
    )
    [wheel] = out.glob(pattern)
    return wheel


def clean_venv(folder: Path) -> Path:
    """A new virtual environment with nothing installed (not even pip: the suite's own pip
    installs into it with ``pip --python``); returns its python."""
    run(sys.executable, "-m", "venv", "--without-pip", folder, cwd=folder.parent)
    return folder / "bin" / "python"


def pip_in(python: Path, *args: str | Path, cwd: Path) -> str:
    """The suite's pip, acting on the environment of ``python``."""
    return run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "--disable-pip-version-check",
        *args,
        cwd=cwd,
    )


def top_level_names(names: list[str], dist: str) -> set[str]:
    return {n.split("/")[0] for n in names if not n.startswith(f"{dist}-")}


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both wheels, built side by side once for the module."""
    out = tmp_path_factory.mktemp("wheels")
    with ThreadPoolExecutor(2) as pool:
        server = pool.submit(build_wheel, ROOT, "shiftright_server-*.whl", out / "server")
        sdk = pool.submit(build_wheel, SDK, "shiftright_sdk-*.whl", out / "sdk")
        return {"server": server.result(), "sdk": sdk.result()}


@pytest.fixture
def sdk_wheel(wheels: dict[str, Path]) -> Path:
    return wheels["sdk"]


def test_server_wheel_installs_one_unique_import_name_and_needs_the_sdk(
    tmp_path: Path, wheels: dict[str, Path]
) -> None:
    wheel = wheels["server"]
    names = zipfile.ZipFile(wheel).namelist()
    assert top_level_names(names, "shiftright_server") == {"shiftright_server"}
    # what the server reads at run time travels with it; the SDK does not
    for data in (
        "schemas/migrations/0001_raw_events.sql",
        "infra/kafka/pom.xml",
        "infra/examples/alerts.yaml",
        "streams/app.py",
        "infra/cli/__main__.py",
    ):
        assert f"shiftright_server/{data}" in names, data
    assert not [n for n in names if "/sdk/" in n or n.startswith("shiftright/")]
    metadata = zipfile.ZipFile(wheel).read("shiftright_server-0.1.0.dist-info/METADATA").decode()
    assert "Requires-Dist: shiftright-sdk==0.1.0" in metadata.splitlines()
    entry_points = zipfile.ZipFile(wheel).read("shiftright_server-0.1.0.dist-info/entry_points.txt")
    assert b"shiftright = shiftright_server.infra.cli:main" in entry_points

    python = clean_venv(tmp_path / "venv")
    pip_in(python, "install", "--quiet", "--no-deps", wheel, wheels["sdk"], cwd=tmp_path)
    installed = json.loads(run(python, "-c", INSTALLED, cwd=tmp_path))
    assert installed == {
        "shiftright-server": ["shiftright_server"],
        "shiftright-sdk": ["shiftright"],
    }


INSTALLED = """
import json
from importlib.metadata import distribution
print(json.dumps({
    name: sorted({str(f).split("/")[0] for f in distribution(name).files
                  if ".dist-info" not in str(f) and not str(f).startswith("..")})
    for name in ("shiftright-server", "shiftright-sdk")
}))
"""


def test_wheel_installs_into_a_clean_venv_without_the_pipeline_and_works(
    tmp_path: Path, sdk_wheel: Path
) -> None:
    started, wheel = time.monotonic(), sdk_wheel
    names = zipfile.ZipFile(wheel).namelist()
    assert "shiftright/py.typed" in names
    assert {n.split("/")[0] for n in names if not n.startswith("shiftright_sdk-")} == {"shiftright"}

    venv = tmp_path / "venv"
    python = clean_venv(venv)
    pip_in(python, "install", "--quiet", wheel, cwd=tmp_path)
    installed = {
        p["name"].lower()
        for p in json.loads(pip_in(python, "list", "--format", "json", cwd=tmp_path))
    }
    assert {"shiftright-sdk", "confluent-kafka", "psutil"} <= installed
    assert not installed & {"pydantic", "faust-streaming", "chdb", "aiokafka", "shiftright"}

    [port] = free_ports(1)  # nothing listens there: the broker is unreachable
    report = json.loads(run(python, "-c", APP.replace("{port}", str(port)), cwd=tmp_path))
    assert report["file"].startswith(str(venv))
    assert report["absent"] == [
        "pydantic",
        "faust",
        "chdb",
        "shiftright_server",
        "schemas",
        "streams",
    ]
    assert report["left"] > 0 and report["stats"]["delivered"] == 0  # undelivered, and said so
    assert report["app_thread_ms"] < 1000
    assert (Path(report["typed"]) / "py.typed").exists()
    run(python, "-m", "shiftright", "mark", "deploy", "--help", cwd=tmp_path)
    print(f"installed and used the wheel in {time.monotonic() - started:.1f} s")
