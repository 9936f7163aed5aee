"""``python -m shiftright mark deploy|flag …``: change events from a CI pipeline.

    python -m shiftright mark deploy --app checkout --env prod --release 1.4.3
    python -m shiftright mark flag new-checkout on --app checkout --env prod

The broker comes from ``--kafka`` or ``SHIFTRIGHT_KAFKA__BOOTSTRAP`` (default
127.0.0.1:19092, the local stack), the topic prefix from ``--namespace`` or
``SHIFTRIGHT_NAMESPACE``. Exit status 0 only when the broker acknowledged the event.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from shiftright.client import Client
from shiftright.config import Config
from shiftright.transport import Transport

DEFAULT_KAFKA = "127.0.0.1:19092"


def mark(
    change_type: str,
    name: str,
    *,
    app: str,
    env: str,
    kafka: str,
    namespace: str = "",
    release: str = "",
    value: str = "",
    previous_value: str = "",
    actor: str = "",
    description: str = "",
    timeout: float = 15.0,
    transport: Callable[[Config], Transport] | None = None,
) -> bool:
    """Send one change event and wait for the broker; True when it was acknowledged."""
    config = Config(
        app=app,
        env=env,
        release=release,
        kafka=kafka,
        namespace=namespace,
        health_interval=0,
        hooks=False,
        logging_level=None,
        rate_limits={},
        transport=transport,
    )
    client = Client(config)
    client.enqueue(
        "change",
        {
            "change_type": change_type,
            "name": name,
            "value": value,
            "previous_value": previous_value,
            "actor": actor or _actor(),
            "description": description,
        },
    )
    left = client.close(timeout)
    return left == 0 and client.delivered == 1


def mark_deploy(app: str, env: str, release: str, **options: Any) -> bool:
    return mark("deploy", release, app=app, env=env, release=release, value=release, **options)


def mark_flag(name: str, state: str, app: str, env: str, **options: Any) -> bool:
    previous = {"on": "off", "off": "on"}.get(state, "")
    return mark("flag", name, app=app, env=env, value=state, previous_value=previous, **options)


def _actor() -> str:
    for var in ("GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILD_USER", "USER"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        return getpass.getuser()
    except Exception:
        return ""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m shiftright", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    mark_cmd = sub.add_parser("mark", help="emit a change event")
    kinds = mark_cmd.add_subparsers(dest="kind", required=True)
    deploy = kinds.add_parser("deploy", help="a release reached an environment")
    deploy.add_argument("--release", required=True)
    flag = kinds.add_parser("flag", help="a feature flag was switched")
    flag.add_argument("name")
    flag.add_argument("state", choices=["on", "off"])
    for cmd in (deploy, flag):
        cmd.add_argument("--app", required=True)
        cmd.add_argument("--env", required=True)
        cmd.add_argument(
            "--kafka", default=os.environ.get("SHIFTRIGHT_KAFKA__BOOTSTRAP", DEFAULT_KAFKA)
        )
        cmd.add_argument("--namespace", default=os.environ.get("SHIFTRIGHT_NAMESPACE", ""))
        cmd.add_argument("--actor", default="")
        cmd.add_argument("--description", default="")
        cmd.add_argument(
            "--timeout", type=float, default=15.0, help="seconds to wait for the broker"
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    common = {
        "kafka": args.kafka,
        "namespace": args.namespace,
        "actor": args.actor,
        "description": args.description,
        "timeout": args.timeout,
    }
    if args.kind == "deploy":
        ok = mark_deploy(args.app, args.env, args.release, **common)
        what = f"deploy of {args.release} to {args.app}/{args.env}"
    else:
        ok = mark_flag(args.name, args.state, args.app, args.env, **common)
        what = f"flag {args.name} {args.state} in {args.app}/{args.env}"
    if ok:
        print(f"marked {what}")
        return 0
    print(f"could not mark {what}: Kafka at {args.kafka} did not acknowledge it", file=sys.stderr)
    return 1
