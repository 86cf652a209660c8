"""Hypothesis strategies shared by the tests."""

from __future__ import annotations

from typing import Any, Literal

from hypothesis import strategies as st

__all__ = ["json_values"]

Floats = Literal["finite", "no_nan", "any", "none"]


def json_values(
    *,
    text: int | None,
    keys: int | None,
    items: int,
    entries: int,
    leaves: int,
    floats: Floats = "no_nan",
) -> st.SearchStrategy[Any]:
    """Any JSON value, nested: what a webhook body may hold in any field.

    ``text``, ``keys``: the longest string value and object key (None: any length);
    ``items``, ``entries``: the most items of a list and entries of an object; ``leaves``:
    the most scalars in all; ``floats``: "finite", "no_nan" (infinities, which json.dumps
    writes as ``Infinity``), "any" (NaN too) or "none" (no floats at all).
    """
    scalars = st.none() | st.booleans() | st.integers()
    if floats == "finite":
        scalars = scalars | st.floats(allow_nan=False, allow_infinity=False)
    elif floats == "no_nan":
        scalars = scalars | st.floats(allow_nan=False)
    elif floats == "any":
        scalars = scalars | st.floats()
    return st.recursive(
        scalars | st.text(max_size=text),
        lambda inner: (
            st.lists(inner, max_size=items)
            | st.dictionaries(st.text(max_size=keys), inner, max_size=entries)
        ),
        max_leaves=leaves,
    )
