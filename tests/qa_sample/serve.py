"""The shop's API as a deployed preprod: ``python -m tests.qa_sample.serve PORT EVENTS``
serves it with uvicorn; the SDK (env ``preprod``) appends its events to EVENTS."""

from __future__ import annotations

import sys
from pathlib import Path

import shiftright
import uvicorn

from tests.qa_sample.shop import api, init_sdk


def main() -> None:
    port, events = int(sys.argv[1]), Path(sys.argv[2])
    init_sdk("preprod", "2.0.0", events)
    try:
        uvicorn.run(api(), host="127.0.0.1", port=port, log_level="warning")
    finally:
        shiftright.close(5)


if __name__ == "__main__":
    main()
