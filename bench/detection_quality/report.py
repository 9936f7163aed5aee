"""Printing the corpus and the detectors' figures (training threshold, held-out score)."""

from __future__ import annotations

import statistics
from collections import Counter

from bench.detection_quality.corpus import Labelled
from bench.detection_quality.scoring import PROFILES, Profile, Scored, best_threshold, normalised


def corpus(series: list[Labelled]) -> None:
    families = Counter(s.family for s in series)
    windows = sum(len(s.windows) for s in series)
    points = sum(len(s.values) for s in series)
    kinds = Counter(s.kind for s in series for _ in s.windows)
    print(
        f"corpus: {len(series)} series in {len(families)} families "
        f"({', '.join(f'{f} {n}' for f, n in families.items())}), {points:,} points, "
        f"{windows} anomaly windows"
    )
    print("windows per kind: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))


def _halves(scored: list[Scored]) -> tuple[list[Scored], list[Scored]]:
    train = [s for s in scored if s.series.seed % 2 == 0]
    return train, [s for s in scored if s.series.seed % 2 == 1]


def results(scored: dict[str, list[Scored]]) -> None:
    names = list(scored)
    chosen: dict[tuple[str, str], float] = {}
    print("\nnormalised score (0 never fires, 100 perfect): held-out half (training half)")
    print(f"{'profile':10}" + "".join(f"{n:>22}" for n in names))
    for p in PROFILES:
        cells = []
        for name in names:
            train, held = _halves(scored[name])
            t = chosen[(p.name, name)] = best_threshold(p, train)
            cells.append(f"{normalised(p, held, t):6.1f} ({normalised(p, train, t):5.1f})")
        print(f"{p.name:10}" + "".join(f"{c:>22}" for c in cells))
    print(f"{'threshold':10}" + "".join(f"{chosen[('standard', n)]:>22.4g}" for n in names))
    standard = PROFILES[0]
    _per_kind(scored, chosen, standard)
    _hits(scored, chosen, standard)


def _per_kind(
    scored: dict[str, list[Scored]], chosen: dict[tuple[str, str], float], p: Profile
) -> None:
    names = list(scored)
    kinds = sorted({s.series.kind for s in next(iter(scored.values()))})
    print(f"\nper anomaly kind, held-out half, {p.name} profile (family threshold as above)")
    print(f"{'kind':16}" + "".join(f"{n:>19}" for n in names))
    for kind in kinds:
        cells = []
        for name in names:
            _, held = _halves(scored[name])
            mine = [s for s in held if s.series.kind == kind]
            t = chosen[(p.name, name)]
            if kind == "none":
                cells.append(f"fa {sum(s.alarms(t) for s in mine)}")
            else:
                cells.append(f"{normalised(p, mine, t):.1f}")
        print(f"{kind:16}" + "".join(f"{c:>19}" for c in cells))


def _hits(
    scored: dict[str, list[Scored]], chosen: dict[tuple[str, str], float], p: Profile
) -> None:
    """Precision (alarms inside a window / all alarms), recall (windows with an alarm),
    alarms per 1,000 points outside windows, detection delay from the onset."""
    print(f"\nheld-out half at the {p.name} threshold")
    print(
        f"{'detector':18} {'precision':>9} {'recall':>7} {'fa/1k':>6} {'delay p50':>10} {'p90':>8}"
    )
    for name, all_scored in scored.items():
        _, held = _halves(all_scored)
        t = chosen[(p.name, name)]
        inside = outside = found = windows = quiet_points = 0
        delays: list[float] = []
        for s in held:
            hits = (s.scores >= t).nonzero()[0]
            in_w = s.window_of[hits] >= 0
            inside += int(in_w.sum())
            outside += int((~in_w).sum())
            quiet_points += int((s.window_of < 0).sum()) - s.series.probation
            _, _, missed, first = s.counts(t)
            windows += len(first)
            found += len(first) - missed
            for onset, i in zip(s.series.onsets, first, strict=True):
                if i >= 0:
                    delays.append((s.series.ts[i] - s.series.ts[onset]) / 60_000)
        precision = inside / (inside + outside) if inside + outside else float("nan")
        delays.sort()
        p50 = f"{statistics.median(delays):.0f} min" if delays else "-"
        p90 = f"{delays[int(0.9 * (len(delays) - 1))]:.0f}" if delays else "-"
        fa = 1000 * outside / max(quiet_points, 1)
        print(f"{name:18} {precision:>9.2f} {found / windows:>7.2f} {fa:>6.2f} {p50:>10} {p90:>8}")
