"""Every table of the service: its name, key, value and retention, in one catalogue.

Values are JSON objects (the "rgsync-json" codec), keys strings ("rgsync-key"; both
registered with Faust by app/streaming/table_codec.py under these names); each table
lives on the partition of the records that write it, the site's (app/streaming/
partitioning.py) for all but ``conversations`` and ``conversation_outcomes`` (the
conversation id's, like the ElevenLabs raw topic) and ``activity_outbox`` (its outbound
topics': also the site's). The changelog
topic of a table is ``<app id>-<topic prefix><name>-changelog``. This package imports
nothing from the app: the app builds its Faust tables from this list
(app/streaming/faust_app.py).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KEY_SERIALIZER", "TABLES", "VALUE_SERIALIZER", "TableSpec"]

# Named codecs, so that a change of JSON library changes no stored key's bytes.
KEY_SERIALIZER = "rgsync-key"
VALUE_SERIALIZER = "rgsync-json"


@dataclass(frozen=True)
class TableSpec:
    """One table: what its keys and values are, and how long an entry is kept."""

    name: str
    attribute: str  # of the app's Tables handle (app/streaming/pipeline.py)
    key: str
    value: str
    # Kept this many days (RocksDB ttl and a compact,delete changelog); None: until replaced.
    ttl_days: int | None = None
    # "dedup": the RGSYNC_DEDUP_RETENTION_DAYS setting decides ttl_days.
    ttl: str | None = None
    written_by: str = ""


TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        "processed_messages",
        "processed_messages",
        key="<site_uuid>|<message id> (Real Geeks) or elevenlabs|<message id>",
        value="{first_seen, done, outputs: [[topic, key, value], ...]} (agents/processing.py)",
        ttl="dedup",
        written_by="normalize_leads, map_call_outcomes",
    ),
    TableSpec(
        "identity_index",
        "identity_index",
        key="<site_uuid>|alias|email|phone|name_address|block|profile|<value> (identity.py)",
        value="the canonical lead id, or a list of candidate lead ids (blocking keys)",
        written_by="normalize_leads",
    ),
    TableSpec(
        "lead_snapshots",
        "lead_snapshots",
        key="<site_uuid>|<lead id>, and #activities / #context suffixes",
        value="the lead's fields and identifiers; its recent activities; its last call context",
        written_by="normalize_leads",
    ),
    TableSpec(
        "realgeeks_users",
        "users",
        key="<site_uuid>|<user id>",
        value="the Real Geeks user (user_updated), or {deleted: true}",
        written_by="normalize_leads",
    ),
    TableSpec(
        "do_not_call",
        "do_not_call",
        key="<site_uuid>|lead|<lead id> or <site_uuid>|phone|<E.164 number>",
        value="{source, at, reason, by, event_id} (app/domain/dialing/records.py DncEntry)",
        written_by="dial_leads",
    ),
    TableSpec(
        "dialer_leads",
        "dialer_leads",
        key="<site_uuid>:<lead id>",
        value="the dialer's LeadRecord: status, reason, numbers, variables, attempts",
        written_by="dial_leads",
    ),
    TableSpec(
        "dialer_sites",
        "dialer_sites",
        key="<site_uuid>",
        value="the dialer's SiteRecord: calls in flight, waiting leads (due, order)",
        written_by="dial_leads",
    ),
    TableSpec(
        "conversations",
        "conversations",
        key="<conversation id>",
        value="{site_uuid, lead_id, attempt_id, started_at}",
        ttl_days=30,
        written_by="record_conversations",
    ),
    TableSpec(
        "lead_stories",
        "lead_stories",
        key="<site_uuid>|<lead id> (canonical)",
        value="{entries: [{id, at, kind, title, detail}, ...]}: the last 200 things that "
        "happened to the lead (app/domain/story.py), for its page at /ui/leads/",
        ttl_days=90,
        written_by="record_stories",
    ),
    TableSpec(
        "site_days",
        "site_days",
        key="<site_uuid>|<YYYY-MM-DD> (the site's time zone, else UTC)",
        value="the day's figures: leads, calls_placed, calls_ended (placed or taken), "
        "contacts, calls_inbound, tours, optouts, deadletters (about leads, written that "
        "day), speed (up to 500 speed-to-lead samples, s)",
        ttl_days=35,
        written_by="record_stories",
    ),
    TableSpec(
        "activity_outbox",
        "activity_outbox",
        key="<activity id> or <lead update id>",
        value="{status: in_flight | failed | posted, attempts, at, error, body}",
        ttl_days=30,
        written_by="write_activities",
    ),
    TableSpec(
        "conversation_outcomes",
        "conversation_outcomes",
        key="<conversation id>",
        value="{message_id, placed, site_uuid, lead_id}: the one outcome mapped for it",
        ttl_days=30,
        written_by="map_call_outcomes",
    ),
    TableSpec(
        "lead_calls",
        "lead_calls",
        key="<site_uuid>|lead|<lead id> or <site_uuid>|phone|<E.164 number>",
        value="a lead's AI calls and opt-out, or a number's opt-out (app/domain/lead_calls.py)",
        written_by="track_lead_calls",
    ),
)
