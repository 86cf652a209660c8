"""ops/fit_identity_model.py: the refit on a brokerage's export, and weights that make sense.

Both run on one small hand-made brokerage (24 people, two thirds of them registered twice
with the variations people make, and 11 look-alikes who are other people), so they take a
second or two.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from ops.fit_identity_model import fit, main
from realgeeks_sync.app.domain.matching import COMPARISONS, DEFAULT_MODEL_PATH, IdentityModel

FIRSTS = ("Mary", "Kimo", "Lachlan", "Ava", "Noah", "Leilani", "Oliver", "Priya", "Mateo",
          "Hannah", "Keanu", "Sofia", "Ethan", "Malia", "Lucas", "Chloe", "Kai", "Isla",
          "Henry", "Zoe", "Diego", "Nalani", "Samuel", "Grace")  # fmt: skip
LASTS = ("Jones", "Akana", "Reid", "Zilm", "Nakamura", "Kahale", "Fischer", "Patel", "Silva",
         "Brennan", "Kealoha", "Rossi", "Walsh", "Palakiko", "Moreau", "Okafor", "Lindqvist",
         "Haddad", "Kowalski", "Tanaka", "Ortega", "Mahoe", "Becker", "Novak")  # fmt: skip
# Look-alikes who must stay apart: a first name and a ZIP shared with somebody else.
OTHERS = ("Keliihananui", "Dubois", "Castillo", "Yamamoto", "Oyelaran", "Sorensen", "Kuhio",
          "Vasquez")  # fmt: skip
STREETS = ("Kapiolani Blvd", "Kalakaua Ave", "Beretania St", "King St", "Waialae Ave")
PLACES = (("Honolulu", "96813"), ("Kailua", "96734"), ("Hilo", "96720"), ("Kapolei", "96707"))
# Real Geeks' export headers (app/operations/backfill.py reads them) for each body field.
HEADERS = {"first_name": "First Name", "last_name": "Last Name", "email": "Email",
           "phone": "Phone", "street_address": "Street Address", "city": "City",
           "state": "State", "zip": "Zip"}  # fmt: skip


def _brokerage() -> list[dict[str, Any]]:
    """Created bodies of 24 people, 16 of them registered a second time, varied; and of 11
    look-alikes of them who are other people (namesakes, a first name and ZIP shared)."""
    bodies: list[dict[str, Any]] = []
    for i, (first, last) in enumerate(zip(FIRSTS, LASTS, strict=True)):
        city, zip_code = PLACES[i % len(PLACES)]
        body = {"first_name": first, "last_name": last, "email": f"{first}.{last}@mail.com",
                "phone": f"808-555-{1000 + 37 * i}", "state": "HI", "zip": zip_code,
                "street_address": f"{10 + 7 * i} {STREETS[i % len(STREETS)]}",
                "city": city}  # fmt: skip
        bodies.append(body)
        if i % 3 == 0:
            continue
        again = dict(body)
        if i % 4 == 0:  # a surname typo (two letters swapped)
            again["last_name"] = last[0] + last[2] + last[1] + last[3:]
        elif i % 4 == 1:  # no email, the phone written another way
            del again["email"]
            again["phone"] = f"(808) 555-{1000 + 37 * i}"
        elif i % 4 == 2:  # a first-name typo, a new mailbox
            again["first_name"] = first[:-1]
            again["email"] = f"{first[0]}{last}@work.com"
        else:  # a new phone, no city
            again["phone"] = f"808-777-{2000 + 53 * i}"
            del again["city"]
        bodies.append(again)
    # Other people the blocking pairs with them: no email or no phone, so nothing vetoes.
    for i, last in enumerate(OTHERS):  # person i's first name and ZIP, a phone
        city, zip_code = PLACES[i % len(PLACES)]
        bodies.append({"first_name": FIRSTS[i], "last_name": last,
                       "phone": f"808-666-{3000 + 41 * i}", "state": "HI", "zip": zip_code,
                       "street_address": f"{200 + 11 * i} {STREETS[(i + 2) % len(STREETS)]}",
                       "city": city})  # fmt: skip
    for i in (4, 9, 14):  # namesakes in person i's town, an email
        city, zip_code = PLACES[i % len(PLACES)]
        bodies.append({"first_name": FIRSTS[i], "last_name": LASTS[i],
                       "email": f"{LASTS[i]}{i}@other.net", "state": "HI", "zip": zip_code,
                       "street_address": f"{300 + 13 * i} {STREETS[(i + 3) % len(STREETS)]}",
                       "city": city})  # fmt: skip
    return bodies


def test_refit_on_an_export_writes_a_model_with_every_level(tmp_path: Path) -> None:
    """`--export CSV --out FILE`, as the README tells a brokerage to run it."""
    export = tmp_path / "leads.csv"
    bodies = _brokerage()
    with export.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(HEADERS.values()))
        writer.writeheader()
        writer.writerows({HEADERS[k]: v for k, v in body.items()} for body in bodies)
    shipped = DEFAULT_MODEL_PATH.read_bytes()
    out = tmp_path / "model" / "identity_model.json"

    assert main(["--export", str(export), "--out", str(out)]) == 0

    assert DEFAULT_MODEL_PATH.read_bytes() == shipped  # --out, not the shipped model
    model = IdentityModel.load(out)
    document = json.loads(out.read_text())
    assert document["fitted"]["on"] == {str(export): len(bodies)}  # every row read
    for comparison in COMPARISONS:
        levels = document["comparisons"][comparison.name]["levels"]
        assert list(levels) == list(comparison.levels)
        assert set(model.weights[comparison.name].bits) == set(comparison.levels)
        if comparison.term_frequency:  # names seen once or twice all get the floor
            entry = model.weights[comparison.name]
            assert entry.tf_floor > 0 and isinstance(entry.tf, dict)
    assert model.weights["city"].tf  # four cities, ten people each: frequent values
    assert len(model.table()) == sum(len(c.levels) for c in COMPARISONS)


def test_fitted_weights_make_sense() -> None:
    """Agreeing on a name, an email or a phone is evidence for one person, differing against."""
    bodies = _brokerage()
    document = fit({"brokerage": bodies}, random_pairs=20_000, iterations=60)
    for name in ("first_name", "last_name", "email", "phone"):
        levels = document["comparisons"][name]["levels"]
        exact, other = levels["exact"], levels["else"]
        assert exact["m"] > exact["u"], f"{name}.exact weighs {exact['bits']}"
        assert other["m"] < other["u"], f"{name}.else weighs {other['bits']}"
        # EM found the duplicates: three in four of them agree exactly on each of these
        # (a typo, a new mailbox or a new number makes the rest).
        assert exact["m"] > 0.5, f"{name}.exact m {exact['m']}"
    # The prior: 16 of the 1275 pairs are one person (-6.3 bits); fitted within a factor 2.
    pairs = len(bodies) * (len(bodies) - 1) // 2
    truth = math.log2(16 / (pairs - 16))
    assert abs(document["prior_bits"] - truth) < 1.0, document["prior_bits"]
