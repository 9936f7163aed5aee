"""``python -m shiftright_server.infra.warehouse --data-dir DIR [--host H] [--port P]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from shiftright_server.infra.logs import configure_logging
from shiftright_server.infra.warehouse.server import ExposedWithoutAccounts, serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m shiftright_server.infra.warehouse",
        description="Serve the ClickHouse HTTP interface over an embedded chDB data directory.",
    )
    parser.add_argument("--data-dir", type=Path, required=True, help="chDB data directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18123)
    parser.add_argument(
        "--accounts",
        type=Path,
        default=None,
        help="accounts file (default: accounts.json next to the data directory); without "
        "accounts the warehouse answers anyone and listens on loopback only",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    configure_logging(level=args.log_level)
    try:
        serve(args.data_dir.expanduser().resolve(), args.host, args.port, args.accounts)
    except ExposedWithoutAccounts as exc:
        parser.exit(2, f"warehouse: {exc}\n")


if __name__ == "__main__":
    main()
