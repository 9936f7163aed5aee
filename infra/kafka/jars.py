"""The broker's classpath, resolved once per version from Maven Central with ``mvn``.

Contract: ``resolve_jars(lib_dir, version)`` returns a folder holding every runtime jar
of ``org.apache.kafka:kafka_2.13:<version>`` plus Log4j2, or raises
:class:`JarResolutionError`. A folder is used only when its marker file exists, and it is
filled under a temporary name then renamed, so an interrupted or concurrent download never
leaves a half-filled classpath behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import structlog

POM = Path(__file__).with_name("pom.xml")
MARKER = ".complete"
_log = structlog.get_logger(__name__)


class JarResolutionError(RuntimeError):
    """Maven is missing or could not fetch the broker's jars."""


def resolve_jars(lib_dir: Path, version: str, *, timeout: float = 900.0) -> Path:
    """Return ``lib_dir`` filled with the runtime classpath of Kafka ``version``."""
    if (lib_dir / MARKER).is_file():
        return lib_dir
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JarResolutionError("mvn not found on PATH; install Maven 3.8+ to run Kafka locally")
    print(
        f"resolving Apache Kafka {version} from Maven Central (first run only)…",
        file=sys.stderr,
        flush=True,
    )
    lib_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{lib_dir.name}-", dir=lib_dir.parent))
    try:
        _copy_dependencies(mvn, staging, version, timeout)
        (staging / MARKER).write_text(version + "\n")
        _publish(staging, lib_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    jars = sum(1 for _ in lib_dir.glob("*.jar"))
    _log.info("kafka_jars_resolved", version=version, jars=jars, lib_dir=str(lib_dir))
    return lib_dir


def _copy_dependencies(mvn: str, out_dir: Path, version: str, timeout: float) -> None:
    cmd = [
        mvn,
        "-B",
        "-q",
        "-Dstyle.color=never",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={out_dir}",
        f"-Dkafka.version={version}",
    ]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        raise JarResolutionError(f"mvn did not finish within {timeout:.0f}s") from exc
    if done.returncode != 0 or not any(out_dir.glob(f"kafka_2.13-{version}.jar")):
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise JarResolutionError(
            f"mvn could not resolve org.apache.kafka:kafka_2.13:{version} "
            f"(exit {done.returncode}):\n{tail}"
        )


def _publish(staging: Path, lib_dir: Path) -> None:
    """Rename into place; if another process won the race, keep its folder."""
    if lib_dir.exists() and not (lib_dir / MARKER).is_file():
        shutil.rmtree(lib_dir, ignore_errors=True)
    try:
        os.rename(staging, lib_dir)
    except OSError:
        if not (lib_dir / MARKER).is_file():
            raise
