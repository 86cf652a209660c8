"""Pure normalizers for Real Geeks lead fields: emails, phones, names, addresses, times.

Nothing here raises on odd input except `normalize_timestamp`, which raises
`TimestampError` for a value that is not a timestamp: webhook bodies are JSON written by
people and CRMs, so every field may hold a number, a list, null or a nested object.

The modules, one kind of field each: text (plain text, blanks, comparison keys), emails,
phones, names, addresses (street, city, state, ZIP), roles, ids (lead id, site UUID),
times (timestamps) and lead (the whole lead, field by field).
"""

from realgeeks_sync.app.domain.normalize.addresses import (
    normalize_city,
    normalize_state,
    normalize_street,
    normalize_zip,
)
from realgeeks_sync.app.domain.normalize.emails import normalize_email
from realgeeks_sync.app.domain.normalize.ids import normalize_lead_id, normalize_site_uuid
from realgeeks_sync.app.domain.normalize.lead import DROPPED_LEAD_KEYS, normalize_lead
from realgeeks_sync.app.domain.normalize.names import normalize_name
from realgeeks_sync.app.domain.normalize.phones import PhoneNumber, normalize_phone
from realgeeks_sync.app.domain.normalize.roles import normalize_role
from realgeeks_sync.app.domain.normalize.text import fold_key, is_blank, normalize_text
from realgeeks_sync.app.domain.normalize.times import (
    TimestampError,
    normalize_timestamp,
    timestamp_ns,
    timestamp_text,
)

__all__ = [
    "DROPPED_LEAD_KEYS",
    "PhoneNumber",
    "TimestampError",
    "fold_key",
    "is_blank",
    "normalize_city",
    "normalize_email",
    "normalize_lead",
    "normalize_lead_id",
    "normalize_name",
    "normalize_phone",
    "normalize_role",
    "normalize_site_uuid",
    "normalize_state",
    "normalize_street",
    "normalize_text",
    "normalize_timestamp",
    "normalize_zip",
    "timestamp_ns",
    "timestamp_text",
]
