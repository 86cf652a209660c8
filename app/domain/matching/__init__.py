"""Identity resolution: an ordered list of named rules, each giving a Match or None.

    RULES = lead_id -> email -> phone -> name_address -> fuzzy

The first rule that matches decides; the cheap exact rules always all run, so a
disagreement (email says lead A, phone says lead B) is reported as a `Conflict`.
Fuzzy runs only when no exact rule matched, and only over candidates from blocking
keys (never a scan).

The household rule. Surname, street and a shared phone are household-level facts: a
couple buying together shares all three, and a family landline or email is a
real-estate commonplace. They can prove a household, never a person; the person is told
by the first name. So every rule but lead_id (and fuzzy too) is vetoed when both
records have first names that cannot be one given name: not equal, not nicknames (a
hand-written table), not a one-letter typo or an initial, and never two different names
the table knows (Mark/Mary, Donald/Ronald are two people even one letter apart).
Generational suffixes that differ (Jr/Sr) veto as well. A record without a first name
must not disagree on what is personal: its email, when it spells a first name
("mary.johnson", "mjohnson"), must fit; otherwise the surname and the email (when both
sides have one) must not differ. Vetoed matches are reported as conflicts
("name_mismatch"). When several leads share an identifier, the one whose first name
agrees best wins; a tie between people who are not compatible with each other matches
nobody ("ambiguous"); an identifier carried by `shared_cap` leads or more (an office
line, an agent's placeholder) identifies no one ("shared_identifier").

Fuzzy scoring is Fellegi-Sunter, as splink does it: each comparison of the table
`COMPARISONS` (first name, last name, house number, street, second address line, city,
postcode, phone, email) sorts a pair of values into the first of its named levels whose
test holds; the level's weight in bits was fitted from data and is read from the model
file (data/identity_model.json); the sum plus the fitted prior is a match probability,
compared with `fuzzy_threshold`. Candidates come from named blocking rules (`BLOCKING`),
each a key that survives a different typo, and never from a scan.

The modules, one job each:

    names         the nickname table, Soundex and the veto's name ranks
    profile       Profile: the features stored per lead
    features      reading features from a record's normalized fields
    blocking      BLOCKING, the named blocking rules and their keys
    probes        Probe and build_probe: a record's features and keys
    household     the household veto (names_agree, person_evidence, fuzzy_evidence)
    comparisons   COMPARISONS: the table of comparisons and their named levels
    model         the fitted weights of every level (IdentityModel, the model file)
    scoring       score_pair: the weights of the table summed into a probability
    config        MatcherConfig
    results       Match, Conflict, Resolution
    rules         RULES and resolve
"""

from realgeeks_sync.app.domain.matching.blocking import (
    BLOCKING,
    BlockingRule,
    blocking_keys,
    filing_keys_by_rule,
)
from realgeeks_sync.app.domain.matching.comparisons import (
    COMPARISONS,
    MAX_FIELD_CHARS,
    Comparison,
    Level,
    level_of,
)
from realgeeks_sync.app.domain.matching.config import MatcherConfig
from realgeeks_sync.app.domain.matching.household import (
    NameAgreement,
    fuzzy_evidence,
    merge_profiles,
    names_agree,
    person_evidence,
)
from realgeeks_sync.app.domain.matching.model import (
    DEFAULT_MODEL_PATH,
    MODEL_SCHEMA,
    IdentityModel,
    LevelWeight,
    ModelFileError,
    default_model,
)
from realgeeks_sync.app.domain.matching.names import first_name_level, is_nickname_pair, soundex
from realgeeks_sync.app.domain.matching.probes import Probe, build_probe
from realgeeks_sync.app.domain.matching.profile import Profile
from realgeeks_sync.app.domain.matching.results import Conflict, Match, Resolution
from realgeeks_sync.app.domain.matching.rules import RULES, Rule, candidate_leads, resolve
from realgeeks_sync.app.domain.matching.scoring import score_pair

__all__ = [
    "BLOCKING",
    "COMPARISONS",
    "DEFAULT_MODEL_PATH",
    "MAX_FIELD_CHARS",
    "MODEL_SCHEMA",
    "RULES",
    "BlockingRule",
    "Comparison",
    "Conflict",
    "IdentityModel",
    "Level",
    "LevelWeight",
    "Match",
    "MatcherConfig",
    "ModelFileError",
    "NameAgreement",
    "Probe",
    "Profile",
    "Resolution",
    "Rule",
    "blocking_keys",
    "build_probe",
    "candidate_leads",
    "default_model",
    "filing_keys_by_rule",
    "first_name_level",
    "fuzzy_evidence",
    "is_nickname_pair",
    "level_of",
    "merge_profiles",
    "names_agree",
    "person_evidence",
    "resolve",
    "score_pair",
    "soundex",
]
