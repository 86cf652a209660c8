"""Real Geeks roles in their documented spelling (Buyer, Seller, Renter, ...)."""

from __future__ import annotations

from realgeeks_sync.app.domain.normalize.text import fold_key, normalize_text

__all__ = ["normalize_role"]

_ROLES: dict[str, str] = {
    "buyer": "Buyer", "seller": "Seller", "buyer and seller": "Buyer and Seller",
    "renter": "Renter", "potential seller": "Potential Seller",
}  # fmt: skip


def normalize_role(value: object) -> str | None:
    """Real Geeks role in its documented spelling; unknown roles tidied, not dropped."""
    text = normalize_text(value)
    if text is None:
        return None
    return _ROLES.get(fold_key(text), text)
