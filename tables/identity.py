"""The per-site identity index: lookup keys and canonical lead snapshots.

Two stores, both plain mutable mappings (Faust tables backed by RocksDB in production,
dicts in tests):

    index_store  "<site>|alias|<lead id>"      -> canonical lead id
                 "<site>|email|<email>"         -> [lead id, ...]  (oldest first)
                 "<site>|phone|<E.164>"         -> [lead id, ...]
                 "<site>|name_address|<key>"    -> [lead id, ...]
                 "<site>|block|<blocking key>"  -> [lead id, ...]  (bounded, oldest evicted)
                 "<site>|profile|<lead id>"     -> compact match features (dict)
    lead_store   "<site>|<lead id>"             -> LeadSnapshot as JSON

Exact keys hold lists because one identifier may belong to several people: a household
shares a phone. Values are JSON (str, int, float, bool, None, list, dict). A value read
from a store is never changed in place: Faust tables persist assignments only, so every
change builds a new value and assigns it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

__all__ = [
    "EXACT_KINDS",
    "IdentityIndex",
    "KeyValueStore",
    "LeadSnapshot",
    "ReadMemo",
]

# Exact lookup kinds: identifier -> the leads that carry it.
EXACT_KINDS = frozenset({"email", "phone", "name_address"})


class KeyValueStore(Protocol):
    """What IdentityIndex needs from a store: a Faust table or a dict both fit."""

    def get(self, key: str, default: Any = None) -> Any:
        """The value for key, or default."""
        ...

    def __setitem__(self, key: str, value: Any) -> None:
        """Store value under key."""
        ...

    def __delitem__(self, key: str) -> None:
        """Remove key."""
        ...

    def __contains__(self, key: object) -> bool:
        """True when key is stored."""
        ...


def _escape(part: str) -> str:
    """Keep "|" out of key components that other components follow."""
    # Cached for site ids (a handful, asked on every key); a sender's absurdly long value
    # is escaped each time instead, so the cache stays bounded in bytes, not only entries.
    if len(part) > _CACHED_PART_CHARS:
        return _escape_text(part)
    return _escape_cached(part)


_CACHED_PART_CHARS = 64


def _escape_text(part: str) -> str:
    return part.replace("%", "%25").replace("|", "%7C")


_escape_cached = lru_cache(maxsize=4096)(_escape_text)


@lru_cache(maxsize=4096)
def _key_prefix(site: str, kind: str) -> str:
    """The start of a site's keys of one kind: asked for every index key (few sites)."""
    return f"{_escape_text(site)}|{kind}|"


_MISSING = object()  # not in the store
_UNREAD = object()  # not read yet


class ReadMemo:
    """A store wrapper that reads each key from the store once; writes go straight through.

    For one lead decision: resolution and indexing read the same identifier, blocking
    and profile keys, and each read of a RocksDB table is a lookup plus a JSON decode.
    Meant to live for one decision only (the store may change between decisions); a
    write drops its key, so the next read sees what the store holds.
    """

    def __init__(self, store: KeyValueStore, max_entries: int = 512) -> None:
        self.store = store
        self.max_entries = max_entries  # bounds memory if a caller keeps it too long
        self._values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        """The value for key (read from the store at most once), or default."""
        value = self._values.get(key, _UNREAD)
        if value is _UNREAD:
            value = self.store.get(key, _MISSING)
            if len(self._values) < self.max_entries:
                self._values[key] = value
        return default if value is _MISSING else value

    def __setitem__(self, key: str, value: Any) -> None:
        """Store value under key."""
        self._values.pop(key, None)
        self.store[key] = value

    def __delitem__(self, key: str) -> None:
        """Remove key."""
        self._values.pop(key, None)
        del self.store[key]

    def __contains__(self, key: object) -> bool:
        """True when key is stored (asks the store)."""
        return key in self.store


@dataclass(frozen=True)
class LeadSnapshot:
    """The canonical record of one person: every identifier it ever had, and its fields.

    `source_timestamps` holds, per Real Geeks lead id merged into this lead, the
    X-Lead-Router-Timestamp last applied from it (the stale-update watermark). `recent`
    keeps the decisions for the last few message ids so a replay repeats them.
    """

    lead_id: str
    source_lead_ids: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    fields: Mapping[str, Any] = field(default_factory=dict)
    source_timestamps: Mapping[str, str] = field(default_factory=dict)
    last_source_timestamp: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    recent: tuple[Mapping[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A fresh JSON-safe dict (new containers, safe to assign to a store)."""
        return {
            "lead_id": self.lead_id,
            "source_lead_ids": list(self.source_lead_ids),
            "emails": list(self.emails),
            "phones": list(self.phones),
            "fields": dict(self.fields),
            "source_timestamps": dict(self.source_timestamps),
            "last_source_timestamp": self.last_source_timestamp,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "recent": [dict(entry) for entry in self.recent],
        }

    @classmethod
    def from_json(cls, value: object) -> LeadSnapshot | None:
        """Read a stored snapshot; None when the value is not one (missing or damaged)."""
        if not isinstance(value, Mapping) or not isinstance(value.get("lead_id"), str):
            return None

        def strings(name: str) -> tuple[str, ...]:
            items = value.get(name)
            return tuple(x for x in items if isinstance(x, str)) if isinstance(items, list) else ()

        fields = value.get("fields")
        stamps = value.get("source_timestamps")
        recent = value.get("recent")
        last = value.get("last_source_timestamp")
        created = value.get("created_at")
        updated = value.get("updated_at")
        return cls(
            lead_id=value["lead_id"],
            source_lead_ids=strings("source_lead_ids"),
            emails=strings("emails"),
            phones=strings("phones"),
            # Copies: the caller may build a new snapshot from these without touching
            # the object the store handed out.
            fields=dict(fields) if isinstance(fields, Mapping) else {},
            source_timestamps=(
                {k: v for k, v in stamps.items() if isinstance(v, str)}
                if isinstance(stamps, Mapping)
                else {}
            ),
            last_source_timestamp=last if isinstance(last, str) else None,
            created_at=created if isinstance(created, str) else None,
            updated_at=updated if isinstance(updated, str) else None,
            recent=(
                tuple(dict(x) for x in recent if isinstance(x, Mapping))
                if isinstance(recent, list)
                else ()
            ),
        )


@dataclass
class IdentityIndex:
    """Lookup keys and snapshots for identity resolution, namespaced per site.

    Every lookup is a constant number of key reads; candidate lists are capped, so the
    cost of resolving one lead does not grow with the number of leads indexed.
    """

    index_store: KeyValueStore
    lead_store: KeyValueStore

    def memoized(self) -> IdentityIndex:
        """This index with index_store reads memoized (ReadMemo), for one decision only."""
        return IdentityIndex(ReadMemo(self.index_store), self.lead_store)

    # --- keys ------------------------------------------------------------------------

    @staticmethod
    def key(site: str, kind: str, value: str) -> str:
        """The index_store key for one identifier of a site."""
        if len(site) > _CACHED_PART_CHARS:
            return f"{_escape_text(site)}|{kind}|{value}"
        return _key_prefix(site, kind) + value

    @staticmethod
    def lead_key(site: str, lead_id: str) -> str:
        """The lead_store key of a canonical lead."""
        return f"{_escape(site)}|{lead_id}"

    # --- lead ids --------------------------------------------------------------------

    def canonical_id(self, site: str, lead_id: str) -> str | None:
        """The canonical lead id a (normalized) Real Geeks lead id resolves to."""
        value = self.index_store.get(self.key(site, "alias", lead_id))
        return value if isinstance(value, str) else None

    def add_alias(self, site: str, lead_id: str, canonical: str) -> bool:
        """Point a Real Geeks lead id at its canonical lead; True when anything changed.

        An alias never moves once set: the first canonical lead keeps it.
        """
        key = self.key(site, "alias", lead_id)
        if isinstance(self.index_store.get(key), str):
            return False
        self.index_store[key] = canonical
        return True

    # --- exact identifiers and blocking keys -----------------------------------------

    def leads_for(self, site: str, kind: str, value: str) -> list[str]:
        """Leads carrying an exact identifier (email, phone, name_address), oldest first."""
        return self._read_list(self.key(site, kind, value))

    def add_lead_for(self, site: str, kind: str, value: str, lead_id: str, cap: int) -> bool:
        """Record that a lead carries an identifier; at most `cap` leads per identifier."""
        return self._append_bounded(self.key(site, kind, value), lead_id, cap)

    def candidates(self, site: str, block: str) -> list[str]:
        """Leads filed under a blocking key, oldest first."""
        return self._read_list(self.key(site, "block", block))

    def add_candidate(self, site: str, block: str, lead_id: str, cap: int) -> bool:
        """File a lead under a blocking key, evicting the oldest beyond `cap`."""
        return self._append_bounded(self.key(site, "block", block), lead_id, cap)

    # --- profiles and snapshots ------------------------------------------------------

    def profile(self, site: str, lead_id: str) -> Mapping[str, Any] | None:
        """The stored match features of a lead (read-only; never mutate it)."""
        value = self.index_store.get(self.key(site, "profile", lead_id))
        return value if isinstance(value, Mapping) else None

    def put_profile(self, site: str, lead_id: str, profile: Mapping[str, Any]) -> bool:
        """Store a lead's match features when they differ from what is stored."""
        key = self.key(site, "profile", lead_id)
        if self.index_store.get(key) == profile:
            return False
        self.index_store[key] = dict(profile)
        return True

    def lead(self, site: str, lead_id: str) -> LeadSnapshot | None:
        """The canonical snapshot of a lead, or None."""
        return LeadSnapshot.from_json(self.lead_store.get(self.lead_key(site, lead_id)))

    def put_lead(self, site: str, snapshot: LeadSnapshot) -> None:
        """Store a lead snapshot (always a new value)."""
        self.lead_store[self.lead_key(site, snapshot.lead_id)] = snapshot.to_json()

    # --- helpers ---------------------------------------------------------------------

    def _read_list(self, key: str) -> list[str]:
        """A stored list of lead ids as a new list (safe to change)."""
        value = self.index_store.get(key)
        if not isinstance(value, list):
            return []
        return [x for x in value if isinstance(x, str)]

    def _append_bounded(self, key: str, lead_id: str, cap: int) -> bool:
        """Append lead_id to the list at key, dropping the oldest past cap."""
        if cap < 1:
            raise ValueError("cap must be at least 1")
        items = self._read_list(key)
        if lead_id in items:
            return False
        items.append(lead_id)
        self.index_store[key] = items[-cap:]
        return True
