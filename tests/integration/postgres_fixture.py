"""A throwaway PostgreSQL server for the import tests: ``initdb`` + ``pg_ctl`` from the
Debian package ``postgresql`` (``.ci/run`` installs it), in a temp dir, on a free port,
trust auth on loopback only. PostgreSQL refuses to run as root, so under root the
server runs as the package's ``postgres`` user. When it cannot start, the test fails.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.integration.warehouse_fixture import free_port


@dataclass
class Postgres:
    base: Path
    bindir: Path
    port: int
    run_as: list[str]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://shiftright@127.0.0.1:{self.port}/postgres"

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.base / "data"), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _bindir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not versions:
        raise RuntimeError(
            "PostgreSQL is not installed: the import tests need initdb and pg_ctl "
            "(Debian: apt-get install postgresql)"
        )
    return Path(versions[-1]).parent


def start_postgres() -> Postgres:
    bindir = _bindir()
    # Not under pytest's tmp dir: its parents are private to root, and the server may
    # run as another user.
    base = Path(tempfile.mkdtemp(prefix="shiftright-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(base, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    pg = Postgres(base, bindir, free_port(), run_as)
    init = subprocess.run(
        [
            *run_as,
            str(bindir / "initdb"),
            "-D",
            str(base / "data"),
            "-U",
            "shiftright",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if init.returncode != 0:
        raise RuntimeError(f"initdb failed:\n{init.stdout}\n{init.stderr}")
    options = (
        f"-p {pg.port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off"
    )
    started = pg.ctl("-o", options, "-l", str(base / "server.log"), "-w", "-t", "60", "start")
    if started.returncode != 0:
        log = (base / "server.log").read_text() if (base / "server.log").exists() else ""
        raise RuntimeError(f"pg_ctl start failed:\n{started.stdout}\n{started.stderr}\n{log}")
    return pg


def stop_postgres(pg: Postgres) -> None:
    try:
        pg.ctl("-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(pg.base, ignore_errors=True)
