"""Fit the identity model (m, u, prior, term frequencies) and write it as a JSON file.

Fellegi-Sunter as splink fits it, on the agent's own comparison levels
(app/domain/matching/comparisons.py) and blocking rules (app/domain/matching/blocking.py),
so the levels fitted are the levels scored online:
- u per level from random pairs of records (nearly all of them two different people);
- m per level and the prior by expectation-maximisation over the pairs the blocking
  rules produce, u held fixed; pairs the household veto rules out are left out (the
  score never sees them);
- term frequencies of first names, surnames, streets and cities for the exact levels.
No labels are read: it runs on any export. Records are compared within their own data
set only.

    .venv/bin/python ops/fit_identity_model.py                       # FEBRL1, 2, 4 + synthetic
    .venv/bin/python ops/fit_identity_model.py --export leads.csv --out var/model.json

`--export` takes a Real Geeks export (CSV with Real Geeks' column names, or JSON lines,
as `realgeeks-sync backfill` reads them); point RGSYNC_IDENTITY_MODEL at the file
written. Splink was the first choice for this step; its DuckDB string functions
(jaro_winkler, damerau_levenshtein) do not agree with rapidfuzz's on every pair, so a
model fitted there would weigh levels the agent does not compute. The EM below is the
one splink runs (fixed u, m and lambda re-estimated), on vectors the agent's code made.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realgeeks_sync.app.domain.matching import (
    COMPARISONS,
    DEFAULT_MODEL_PATH,
    MODEL_SCHEMA,
    Profile,
    build_probe,
    filing_keys_by_rule,
    fuzzy_evidence,
    level_of,
)
from realgeeks_sync.app.domain.normalize import normalize_lead

__all__ = ["comparison_vectors", "fit", "main"]

TF_KEEP = 4000  # values kept per term-frequency table (the rest get the floor)
MAX_BLOCK = 60  # a blocking key shared by more records is too common to pair on
NULL = -1


def _profiles(bodies: Iterable[dict[str, Any]]) -> list[Profile]:
    """Profiles of bodies, exactly as decide_lead builds them."""
    return [build_probe(normalize_lead(body)).profile for body in bodies]


def _blocked_pairs(profiles: Sequence[Profile]) -> dict[str, set[tuple[int, int]]]:
    """Per blocking rule, the pairs (i < j) that share one of its keys."""
    out: dict[str, set[tuple[int, int]]] = {}
    groups: dict[tuple[str, str], list[int]] = {}
    for i, profile in enumerate(profiles):
        for rule, keys in filing_keys_by_rule(profile).items():
            for key in keys:
                groups.setdefault((rule, key), []).append(i)
    for (rule, _), members in groups.items():
        pairs = out.setdefault(rule, set())
        if 1 < len(members) <= MAX_BLOCK:
            pairs.update((a, b) for n, a in enumerate(members) for b in members[n + 1 :])
    return out


def comparison_vectors(pairs: Iterable[tuple[Profile, Profile]]) -> np.ndarray:
    """Level index per comparison for each pair (NULL when a side has no value)."""
    rows: list[list[int]] = []
    for a, b in pairs:
        row = []
        for comparison in COMPARISONS:
            feature = comparison.feature
            level = level_of(comparison, getattr(a, feature), getattr(b, feature))
            row.append(NULL if level is None else comparison.levels.index(level))
        rows.append(row)
    return np.array(rows, dtype=np.int8).reshape(len(rows), len(COMPARISONS))


def _level_shares(vectors: np.ndarray, weights: np.ndarray | None = None) -> list[np.ndarray]:
    """Per comparison, the weighted share of each level among non-null pairs (smoothed)."""
    shares = []
    for c, comparison in enumerate(COMPARISONS):
        column = vectors[:, c]
        w = np.ones(len(column)) if weights is None else weights
        counts = np.array(
            [w[column == level].sum() for level in range(len(comparison.levels))], dtype=float
        )
        counts += 1e-3 * max(w.sum(), 1.0) / 1000 + 1e-9  # no level has probability 0
        shares.append(counts / counts.sum())
    return shares


# Comparisons a blocking rule's keys are made of: its pairs agree on them by
# construction, so a session on that rule does not estimate their m (as splink does).
RULE_USES = {
    "surname_postcode": ("last_name", "postcode", "city"),
    "initial_house": ("first_name", "house"),
    "street_postcode": ("house", "street", "postcode", "city"),
    "names": ("first_name", "last_name"),
    "surname_city": ("last_name", "city"),
    "first_postcode": ("first_name", "postcode", "city"),
    "street_city": ("house", "street", "city"),
    "contact": ("phone", "email"),
}


def _start_m() -> list[np.ndarray]:
    """Agreement likely, as splink's default m values."""
    m = []
    for comparison in COMPARISONS:
        start = np.array([0.9 ** (i * 3) for i in range(len(comparison.levels))], dtype=float)
        m.append(start / start.sum())
    return m


def _posterior(
    vectors: np.ndarray, m: list[np.ndarray], u: list[np.ndarray], lam: float, use: Sequence[int]
) -> np.ndarray:
    """P(match) of each pair from the comparisons in `use`."""
    log_ratio = np.full(len(vectors), math.log(lam / (1 - lam)))
    for c in use:
        column = vectors[:, c]
        present = column != NULL
        idx = column[present]
        log_ratio[present] += np.log(m[c][idx]) - np.log(u[c][idx])
    return 1.0 / (1.0 + np.exp(-np.clip(log_ratio, -700, 700)))


def _em(
    vectors: np.ndarray,
    u: list[np.ndarray],
    m: list[np.ndarray],
    use: Sequence[int],
    iterations: int,
    fit_m: bool = True,
) -> tuple[list[np.ndarray], float, np.ndarray, int]:
    """EM with u fixed: m of the comparisons in `use` (unless fit_m=False) and lambda.

    Returns (m, lambda, posteriors, iterations run).
    """
    lam, ran = 0.3, 0
    m = [x.copy() for x in m]
    posterior = np.zeros(len(vectors))
    for step in range(1, iterations + 1):
        ran = step
        posterior = _posterior(vectors, m, u, lam, use)
        change = abs(float(posterior.mean()) - lam)
        lam = min(max(float(posterior.mean()), 1e-6), 1 - 1e-6)
        if fit_m:
            shares = _level_shares(vectors, posterior)
            change = max([change, *(float(np.abs(shares[c] - m[c]).max()) for c in use)])
            for c in use:
                m[c] = shares[c]
        if change < 1e-6:
            break
    return m, lam, posterior, ran


def _term_frequencies(profiles: Sequence[Profile]) -> dict[str, tuple[dict[str, float], float]]:
    """Per tf comparison: the commonest values with their share of records, and the floor."""
    out: dict[str, tuple[dict[str, float], float]] = {}
    for comparison in COMPARISONS:
        if not comparison.term_frequency:
            continue
        counts: Counter[str] = Counter()
        for profile in profiles:
            counts.update(set(getattr(profile, comparison.feature)))
        total = sum(counts.values()) or 1
        kept = dict(counts.most_common(TF_KEEP))
        floor = min(kept.values(), default=1) / total
        # Values seen once or twice are typos as often as names: one floor for all of them.
        floor = max(floor, 2 / total)
        table = {k: round(v / total, 8) for k, v in kept.items() if v / total > floor}
        out[comparison.name] = (table, floor)
    return out


def fit(
    datasets: dict[str, list[dict[str, Any]]],
    *,
    random_pairs: int = 400_000,
    iterations: int = 60,
    seed: int = 1,
) -> dict[str, Any]:
    """The model document fitted on the given data sets (name -> created bodies)."""
    rng = random.Random(seed)
    all_profiles: list[Profile] = []
    by_rule: dict[str, list[tuple[Profile, Profile]]] = {}
    randoms: list[tuple[Profile, Profile]] = []
    total = sum(len(b) for b in datasets.values())
    for bodies in datasets.values():
        profiles = _profiles(bodies)
        all_profiles += profiles
        for rule, pairs in _blocked_pairs(profiles).items():
            kept = by_rule.setdefault(rule, [])
            for i, j in sorted(pairs):
                if fuzzy_evidence(profiles[i], profiles[j]) is not None:
                    kept.append((profiles[i], profiles[j]))
        share = max(1, random_pairs * len(profiles) // max(total, 1))
        for _ in range(share):
            i, j = rng.randrange(len(profiles)), rng.randrange(len(profiles))
            if i != j:
                randoms.append((profiles[i], profiles[j]))
    u = _level_shares(comparison_vectors(randoms))
    names = [c.name for c in COMPARISONS]
    # One EM session per blocking rule, each estimating m of the comparisons its keys
    # are not made of; a comparison's m is the posterior-weighted mean over sessions.
    sums = [np.zeros(len(c.levels)) for c in COMPARISONS]
    mass = [0.0] * len(COMPARISONS)
    ran = 0
    for rule, pairs in by_rule.items():
        if not pairs:
            continue
        use = [c for c, name in enumerate(names) if name not in RULE_USES.get(rule, ())]
        vectors = comparison_vectors(pairs)
        m_rule, _, posterior, steps = _em(vectors, u, _start_m(), use, iterations)
        ran += steps
        for c in use:
            weight = float(posterior[vectors[:, c] != NULL].sum())
            sums[c] += m_rule[c] * weight
            mass[c] += weight
    m = [s_ / w if w > 0 else start for s_, w, start in zip(sums, mass, _start_m(), strict=True)]
    # The prior: lambda over every blocked pair, with m and u fixed.
    unique = {id(a) * 1_000_003 + id(b): (a, b) for pairs in by_rule.values() for a, b in pairs}
    blocked = list(unique.values())
    _, lam, _, _ = _em(comparison_vectors(blocked), u, m, range(len(COMPARISONS)), iterations,
                       fit_m=False)  # fmt: skip
    all_pairs = sum(len(b) * (len(b) - 1) // 2 for b in datasets.values())
    lam_random = min(max(lam * len(blocked) / max(all_pairs, 1), 1e-12), 0.5)
    tf = _term_frequencies(all_profiles)
    comparisons: dict[str, Any] = {}
    for c, comparison in enumerate(COMPARISONS):
        entry: dict[str, Any] = {
            "levels": {
                level: {
                    "m": round(float(m[c][i]), 8),
                    "u": round(float(u[c][i]), 8),
                    "bits": round(math.log2(m[c][i] / u[c][i]), 3),
                }
                for i, level in enumerate(comparison.levels)
            }
        }
        if comparison.name in tf:
            table, floor = tf[comparison.name]
            entry["tf_floor"] = round(floor, 8)
            entry["tf"] = table
        comparisons[comparison.name] = entry
    return {
        "schema": MODEL_SCHEMA,
        "fitted": {
            "on": {name: len(bodies) for name, bodies in datasets.items()},
            "blocked_pairs": len(blocked),
            "random_pairs": len(randoms),
            "em_iterations": ran,
            "lambda_blocked": round(lam, 6),
            "lambda_random": float(f"{lam_random:.6g}"),
            "command": "ops/fit_identity_model.py",
        },
        # The prior is P(same person) for two records drawn at random, as in splink:
        # the matches EM finds among blocked pairs over every pair within a data set.
        "prior_bits": round(math.log2(lam_random / (1 - lam_random)), 4),
        "comparisons": comparisons,
    }


def _load(name: str, seed: int, clusters: int) -> list[dict[str, Any]]:
    """Created bodies of a named data set."""
    if name == "synthetic":
        from ops.synthetic_leads import generate

        return [lead.body for lead in generate(seed, clusters)]
    from ops.febrl import load

    return [lead.body for lead in load(name)]


def _export(path: Path) -> list[dict[str, Any]]:
    """Bodies of a Real Geeks export (CSV or JSON lines)."""
    from realgeeks_sync.app.operations.backfill import read_rows, row_to_body

    return [row_to_body(row, "export") for _, row in read_rows(path)]


def main(argv: Sequence[str] | None = None) -> int:
    """Fit and write the model; print a summary of the weights."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="febrl1,febrl2,febrl4,synthetic")
    parser.add_argument("--export", type=Path, action="append", default=[],
                        help="a Real Geeks export to fit on instead (repeatable)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--seed", type=int, default=11, help="synthetic seed (not a bench seed)")
    parser.add_argument("--clusters", type=int, default=3000)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.export:
        datasets = {str(p): _export(p) for p in args.export}
    else:
        datasets = {
            name: _load(name, args.seed, args.clusters) for name in args.datasets.split(",")
        }
    model = fit(datasets)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(model, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    fitted = model["fitted"]
    print(
        f"fitted on {fitted['on']}: {fitted['blocked_pairs']} blocked pairs, "
        f"{fitted['em_iterations']} EM iterations, prior {model['prior_bits']} bits, "
        f"{time.perf_counter() - started:.0f} s -> {args.out}"
    )
    for name, entry in model["comparisons"].items():
        bits = ", ".join(f"{lv} {v['bits']:+.1f}" for lv, v in entry["levels"].items())
        print(f"  {name}: {bits}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
