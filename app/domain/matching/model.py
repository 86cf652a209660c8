"""The fitted Fellegi-Sunter weights of the comparison levels, read from the model file.

The weight of a level is log2(m / u): m the share of true pairs at that level, u the
share of random pairs. Both are fitted from data by ops/fit_identity_model.py (u from
random pairs, m and the prior by EM over blocked pairs) and kept in a JSON file
(data/identity_model.json beside this module) that the agent loads at start-up; scoring
needs no splink. Exact levels of names, streets and cities are term-frequency adjusted:
"smith" = "smith" is weaker evidence than "zaoui" = "zaoui" (weight log2(m / tf(value))
instead of log2(m / u)). ``IdentityModel.table()`` lists every comparison's levels with
their fitted m, u and weight: the table of named levels and weights in one place.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from realgeeks_sync.app.domain.matching.comparisons import COMPARISONS, Comparison

__all__ = [
    "DEFAULT_MODEL_PATH",
    "MODEL_SCHEMA",
    "IdentityModel",
    "LevelWeight",
    "ModelFileError",
    "default_model",
]

DEFAULT_MODEL_PATH = Path(__file__).with_name("data") / "identity_model.json"
MODEL_SCHEMA = "identity_model.v1"


class ModelFileError(ValueError):
    """The identity model file is missing, unreadable or lacks a level the code needs."""


class LevelWeight(NamedTuple):
    """One row of the model's table: a comparison's level with its fitted m, u and bits."""

    comparison: str
    level: str
    m: float
    u: float
    bits: float


@dataclass(frozen=True)
class _Weights:
    """Fitted weights of one comparison: m, u and bits per level, term frequencies."""

    bits: Mapping[str, float]
    m_exact: float
    tf: Mapping[str, float] = field(default_factory=dict)
    tf_floor: float = 0.0
    mu: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def exact_bits(self, value: str) -> float:
        """log2(m / tf(value)) for an exact agreement on this value."""
        frequency = max(self.tf.get(value, self.tf_floor), self.tf_floor)
        if frequency <= 0.0:
            return self.bits["exact"]
        return math.log2(self.m_exact / frequency)


@dataclass(frozen=True)
class IdentityModel:
    """Fitted m/u weights per comparison level and the prior, read from the model file."""

    prior_bits: float
    weights: Mapping[str, _Weights]
    meta: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IdentityModel:
        """Read a model document (as written by ops/fit_identity_model.py).

        Raises:
            ModelFileError: wrong schema, or a comparison or level the code needs is missing.
        """
        if not isinstance(data, Mapping) or data.get("schema") != MODEL_SCHEMA:
            raise ModelFileError(f"not an {MODEL_SCHEMA} document")
        fitted = data.get("comparisons")
        if not isinstance(fitted, Mapping):
            raise ModelFileError("model has no comparisons")
        weights: dict[str, _Weights] = {}
        for comparison in COMPARISONS:
            entry = fitted.get(comparison.name)
            if not isinstance(entry, Mapping) or not isinstance(entry.get("levels"), Mapping):
                raise ModelFileError(f"model lacks comparison {comparison.name}")
            bits: dict[str, float] = {}
            mu: dict[str, tuple[float, float]] = {}
            for level in comparison.levels:
                fitted_level = entry["levels"].get(level)
                try:
                    m, u = float(fitted_level["m"]), float(fitted_level["u"])
                except (TypeError, KeyError, ValueError) as exc:
                    raise ModelFileError(f"{comparison.name}.{level}: no m and u") from exc
                if not (0.0 < m <= 1.0 and 0.0 < u <= 1.0):
                    raise ModelFileError(f"{comparison.name}.{level}: m and u must be in (0, 1]")
                bits[level] = math.log2(m / u)
                mu[level] = (m, u)
            tf = entry.get("tf") if comparison.term_frequency else None
            weights[comparison.name] = _Weights(
                bits=bits,
                m_exact=float(entry["levels"]["exact"]["m"]),
                tf={str(k): float(v) for k, v in tf.items()} if isinstance(tf, Mapping) else {},
                tf_floor=float(entry.get("tf_floor", 0.0)) if isinstance(tf, Mapping) else 0.0,
                mu=mu,
            )
        try:
            prior = float(data["prior_bits"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError("model has no prior_bits") from exc
        meta = data.get("fitted")
        meta = meta if isinstance(meta, Mapping) else {}
        return cls(prior_bits=prior, weights=weights, meta=meta)

    @classmethod
    def load(cls, path: Path) -> IdentityModel:
        """Read a model file.

        Raises:
            ModelFileError: the file cannot be read or is not a model.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelFileError(f"cannot read identity model {path}: {exc}") from exc
        return cls.from_json(data)

    def bits(self, comparison: Comparison, level: str | None, value: str | None = None) -> float:
        """Weight in bits of one comparison's level (0 for null); tf-adjusted when exact."""
        if level is None:
            return 0.0
        weights = self.weights[comparison.name]
        if level == "exact" and comparison.term_frequency and value is not None:
            return weights.exact_bits(value)
        return weights.bits[level]

    def table(self) -> list[LevelWeight]:
        """Every comparison's levels, best first, with their fitted m, u and weight."""
        rows: list[LevelWeight] = []
        for comparison in COMPARISONS:
            weights = self.weights[comparison.name]
            for level in comparison.levels:
                m, u = weights.mu[level]
                rows.append(LevelWeight(comparison.name, level, m, u, weights.bits[level]))
        return rows


@lru_cache(maxsize=4)
def default_model(path: Path = DEFAULT_MODEL_PATH) -> IdentityModel:
    """The model file shipped with the code (or another path), read once per process.

    Raises:
        ModelFileError: the file cannot be read or is not a model.
    """
    return IdentityModel.load(path)
