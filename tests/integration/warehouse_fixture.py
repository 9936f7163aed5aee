"""Start and stop the embedded warehouse as a subprocess, for integration suites."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]
START_DEADLINE_S = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pinged(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
            return bool(response.status == 200 and response.read() == b"Ok.\n")
    except (urllib.error.URLError, OSError):
        return False


def start_warehouse(data_dir: Path, port: int) -> tuple[subprocess.Popen[bytes], str]:
    """Run ``python -m infra.warehouse`` and wait for /ping; raise if it never answers."""
    url = f"http://127.0.0.1:{port}"
    log_path = Path(data_dir).parent / f"warehouse-{port}.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shiftright_server.infra.warehouse",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
        ],
        cwd=_REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    log.close()
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if _pinged(url):
            return proc, url
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    stop_warehouse(proc)
    output = log_path.read_text(errors="replace")[-4000:]
    raise RuntimeError(f"warehouse did not answer /ping at {url}; its output:\n{output}")


def stop_warehouse(proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    """SIGTERM, then wait; kill only if it does not exit in time."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)


def discard_warehouse(proc: subprocess.Popen[bytes]) -> None:
    """Kill a warehouse whose data is thrown away with it (nothing to shut down cleanly)."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(30)
