"""Small OS-level helpers for the launcher: pid files, signals, ports and log tails."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def send_signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def runs_with_arg(pid: int, arg: str) -> bool:
    """True when ``pid`` is alive (not a zombie) and ``arg`` is one of its arguments.

    Guards against pid reuse: a stale pid file must never make us signal a stranger.
    """
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and arg.encode() in cmdline


def terminate_foreign(pid: int, arg: str, timeout: float) -> None:
    """SIGTERM a process that is not our child, wait, then SIGKILL it."""
    send_signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while runs_with_arg(pid, arg) and time.monotonic() < deadline:
        time.sleep(0.2)
    if runs_with_arg(pid, arg):
        send_signal(pid, signal.SIGKILL)


def port_bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def log_sizes(paths: Sequence[Path]) -> dict[Path, int]:
    """Current sizes, to quote later only what was written after this point."""
    return {path: path.stat().st_size if path.is_file() else 0 for path in paths}


def log_tail(marks: Mapping[Path, int], lines: int = 30) -> str:
    """The last ``lines`` of each file written since its mark (all of it if it rolled)."""
    parts = []
    for path, mark in marks.items():
        if not path.is_file():
            continue
        with path.open("rb") as handle:
            handle.seek(mark if mark <= path.stat().st_size else 0)
            text = handle.read().decode(errors="replace")
        last = "\n".join(deque(text.splitlines(), maxlen=lines)).rstrip()
        if last:
            parts.append(f"--- last lines of {path} ---\n{last}")
    return "\n".join(parts)
