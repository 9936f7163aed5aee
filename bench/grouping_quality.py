"""Grouping quality against the simulator's ground truth (``attributes["sim.site"]``).

A corpus of simulated errors over several releases (deploys shift line numbers; messages
carry ids, numbers, e-mails; some sites report a generic wrapper raised from the real
error) is grouped and scored:

* purity: share of errors whose group's main site is their own site (100 % = no group
  mixes sites); also the number of groups that mix sites;
* completeness: share of errors whose site's main group is their own group (100 % = no
  site is split across groups); also the number of sites split.

Besides the real grouping, two ablations show what each part is worth: the stack of
the reported exception only (chains ignored), and the root cause's normalised message
only (all frames stripped). Prints figures; asserts nothing.

    python -m bench.grouping_quality [--errors 40000] [--releases 6] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from shiftright_server.producers.simulator import Simulator
from shiftright_server.schemas.events import ErrorEvent
from shiftright_server.streams.grouping import Grouper
from shiftright_server.streams.grouping.chain import CHAIN_ATTRIBUTE

START = datetime(2026, 3, 2, 9, tzinfo=UTC)


def corpus(errors: int, rounds: int, seed: int) -> list[ErrorEvent]:
    """``errors`` errors in ``rounds`` hour-long rounds, each after a burst of deploys."""
    sim = Simulator(seed=seed)
    out: list[ErrorEvent] = []
    per_round = errors // rounds
    for i in range(rounds):
        t = START + timedelta(hours=2 * i)
        if i:
            sim.generate("change", 40, t - timedelta(hours=1), t)  # ~10 deploys over 4 envs
        raw = sim.generate("error", per_round, t, t + timedelta(hours=1))
        out.extend(ErrorEvent.model_validate(e) for e in raw)
    return out


def score(pairs: Iterable[tuple[str, str]]) -> dict[str, float]:
    """Purity and completeness of (site, group) pairs."""
    by_group: dict[str, Counter[str]] = defaultdict(Counter)
    by_site: dict[str, Counter[str]] = defaultdict(Counter)
    total = 0
    for site, group in pairs:
        by_group[group][site] += 1
        by_site[site][group] += 1
        total += 1
    main_site = sum(c.most_common(1)[0][1] for c in by_group.values())
    main_group = sum(c.most_common(1)[0][1] for c in by_site.values())
    return {
        "errors": total,
        "sites": len(by_site),
        "groups": len(by_group),
        "purity": 100 * main_site / total,
        "completeness": 100 * main_group / total,
        "mixed_groups": sum(len(c) > 1 for c in by_group.values()),
        "split_sites": sum(len(c) > 1 for c in by_site.values()),
    }


def _without_chain(e: ErrorEvent) -> ErrorEvent:
    attributes = {k: v for k, v in e.attributes.items() if k != CHAIN_ATTRIBUTE}
    return e.model_copy(update={"attributes": attributes})


def _message_only(e: ErrorEvent) -> ErrorEvent:
    """No frames anywhere (the reported exception and its causes): messages decide."""
    attributes = dict(e.attributes)
    if CHAIN_ATTRIBUTE in attributes:
        chain = [{**c, "frames": []} for c in json.loads(attributes[CHAIN_ATTRIBUTE])]
        attributes[CHAIN_ATTRIBUTE] = json.dumps(chain)
    return e.model_copy(update={"frames": [], "attributes": attributes})


def run(events: list[ErrorEvent], prepare: Callable[[ErrorEvent], ErrorEvent]) -> dict[str, float]:
    grouper = Grouper()
    began = time.perf_counter()
    pairs = [(e.attributes["sim.site"], grouper.assign(prepare(e)).group_id) for e in events]
    seconds = time.perf_counter() - began
    return {**score(pairs), "per_s": len(events) / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errors", type=int, default=40_000)
    parser.add_argument("--releases", type=int, default=6, help="rounds, deploys between them")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    events = corpus(args.errors, args.releases, args.seed)
    releases = {(e.app, e.env, e.release) for e in events}
    messages = {(e.attributes["sim.site"], e.exception_message) for e in events}
    lines = {
        (e.attributes["sim.site"], tuple(f.lineno for f in e.frames if f.in_app)) for e in events
    }
    print(
        f"corpus: {len(events)} errors, {len({s for s, _ in messages})} code sites, "
        f"{len(releases)} (app, env, release) combinations, {len(messages)} distinct "
        f"(site, message) pairs, {len(lines)} distinct (site, in-app line numbers) pairs, "
        f"{sum(CHAIN_ATTRIBUTE in e.attributes for e in events)} chained"
    )
    header = f"{'grouping':<34}{'groups':>7}{'purity':>9}{'complete':>10}{'mixed':>7}{'split':>7}{'errors/s':>10}"
    print(header)
    for name, prepare in (
        ("fingerprint (root cause, in-app)", lambda e: e),
        ("ablation: chains ignored", _without_chain),
        ("ablation: message only", _message_only),
    ):
        r = run(events, prepare)
        print(
            f"{name:<34}{r['groups']:>7}{r['purity']:>8.2f}%{r['completeness']:>9.2f}%"
            f"{r['mixed_groups']:>7}{r['split_sites']:>7}{r['per_s']:>10,.0f}"
        )


if __name__ == "__main__":
    main()
