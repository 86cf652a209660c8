"""Dedup quality of the real matcher on labeled synthetic leads: pairwise P, R, F1.

Every generated record goes through `decide_lead` (IdentityIndex over in-memory dicts)
as a `created` message with its own Real Geeks id; two records are predicted the same
person when they end up in the same canonical lead.

    .venv/bin/python ops/bench_dedup.py [--seed N --clusters N --threshold T --errors N]

Prints one summary line and a machine-readable line starting with "RESULT ".
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.leads import decide_lead
from app.matching import MatcherConfig
from ops.synthetic_leads import LabeledLead, generate
from tables.identity import IdentityIndex

__all__ = ["pairwise_scores", "run"]

SITE = "5ead6dd1-2cb9-4f80-80fc-5716b05c90ba"


def _pairs(counts: Counter[Any]) -> int:
    """Number of unordered pairs inside groups of the given sizes."""
    return sum(n * (n - 1) // 2 for n in counts.values())


def pairwise_scores(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    """Pairwise precision, recall and F1 of a predicted clustering against the truth."""
    true_pairs = _pairs(Counter(truth))
    predicted_pairs = _pairs(Counter(predicted))
    both = _pairs(Counter(zip(truth, predicted, strict=True)))
    precision = both / predicted_pairs if predicted_pairs else 1.0
    recall = both / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "true_pairs": true_pairs,
        "predicted_pairs": predicted_pairs,
        "correct_pairs": both,
    }


def run(records: Sequence[LabeledLead], config: MatcherConfig) -> tuple[list[str], Counter[str]]:
    """Feed records through decide_lead; the canonical lead of each and the rules used."""
    index = IdentityIndex(index_store={}, lead_store={})
    predicted: list[str] = []
    rules: Counter[str] = Counter()
    for i, record in enumerate(records):
        decision = decide_lead(
            index,
            site_uuid=SITE,
            action="created",
            body=record.body,
            source_timestamp=f"2024-01-01T00:00:{i % 60:02d}.{i:09d}Z",
            message_id=f"bench-{i}",
            now="2024-06-01T00:00:00Z",
            config=config,
        )
        predicted.append(decision.lead_id)
        rules[decision.match.rule if decision.match else "new"] += 1
    return predicted, rules


def _errors(records: Sequence[LabeledLead], predicted: Sequence[str]) -> dict[str, Counter[str]]:
    """Which scenarios the wrong merges and the missed merges come from."""
    by_entity: dict[str, set[str]] = {}
    by_lead: dict[str, set[str]] = {}
    for record, lead in zip(records, predicted, strict=True):
        by_entity.setdefault(record.entity, set()).add(lead)
        by_lead.setdefault(lead, set()).add(record.entity)
    false_merge: Counter[str] = Counter()
    missed: Counter[str] = Counter()
    for record, lead in zip(records, predicted, strict=True):
        if len(by_lead[lead]) > 1:
            false_merge[record.kind.split(":")[0]] += 1
        if len(by_entity[record.entity]) > 1 and not record.kind.endswith(":original"):
            missed[record.kind.split(":", 1)[1]] += 1
    return {"false_merge_records": false_merge, "split_records": missed}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the summary and RESULT lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--clusters", type=int, default=3000)
    parser.add_argument("--threshold", type=float, default=None, help="fuzzy threshold")
    parser.add_argument("--errors", type=int, default=0, help="show the N commonest errors")
    args = parser.parse_args(argv)

    config = MatcherConfig()
    if args.threshold is not None:
        config = replace(config, fuzzy_threshold=args.threshold)
    records = generate(args.seed, args.clusters)
    started = time.perf_counter()
    predicted, rules = run(records, config)
    elapsed = time.perf_counter() - started
    scores = pairwise_scores([r.entity for r in records], predicted)
    result = {
        "seed": args.seed,
        "clusters": args.clusters,
        "records": len(records),
        "entities": len({r.entity for r in records}),
        "fuzzy_threshold": config.fuzzy_threshold,
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()},
        "rules": dict(sorted(rules.items())),
        "us_per_record": round(elapsed / max(len(records), 1) * 1e6, 1),
    }
    print(
        f"dedup: {len(records)} records, {result['entities']} people, threshold "
        f"{config.fuzzy_threshold}: precision {scores['precision']:.4f} recall "
        f"{scores['recall']:.4f} F1 {scores['f1']:.4f}"
    )
    if args.errors:
        for name, counter in _errors(records, predicted).items():
            print(f"  {name}: {counter.most_common(args.errors)}")
    print("RESULT " + json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
