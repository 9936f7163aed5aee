"""Logging keeps working after whoever configured it has closed the stream it had then."""

from __future__ import annotations

import io
import sys

import pytest
import structlog
from shiftright_server.infra.logs import configure_logging


def test_log_lines_go_to_the_current_stderr_even_after_a_swapped_one_was_closed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    borrowed = io.StringIO()
    real, sys.stderr = sys.stderr, borrowed
    try:
        configure_logging("INFO", json=True)  # e.g. a CLI command run inside a test runner
    finally:
        sys.stderr = real
        borrowed.close()
    structlog.get_logger("t").warning("still_heard", n=1)
    assert '"event": "still_heard"' in capsys.readouterr().err
