"""For every test: the command line's tables are drawn 250 columns wide, whatever the
terminal (or none, as in pytest-xdist's workers) that runs the suite, so tests that read
them see whole cells. Set here, before the CLI modules make their consoles, and
inherited by the processes the tests start."""

from __future__ import annotations

import os

os.environ["COLUMNS"] = "250"
