"""The sites file: one entry per Real Geeks site, with its own secrets, logins and dialer.

A brokerage with several Real Geeks sites (one per team or market) lists them in a TOML
file named by ``RGSYNC_SITES_FILE``::

    [sites."5ead6dd1-2cb9-4f80-80fc-5716b05c90ba"]
    name = "Honolulu team"
    realgeeks_secrets = ["..."]                 # signs this site's webhooks only
    realgeeks_api_user = "..."                  # else RGSYNC_REALGEEKS_API_USER
    realgeeks_api_password = "..."
    elevenlabs_agent_id = "agent_..."           # else RGSYNC_ELEVENLABS_AGENT_ID
    elevenlabs_phone_number_id = "phnum_..."
    elevenlabs_initiation_secrets = ["..."]     # its callers only (pre-call webhook)
    [sites."5ead6dd1-2cb9-4f80-80fc-5716b05c90ba".dialer]
    enabled = true                              # else RGSYNC_DIALER_ENABLED
    hours = "09:00-20:00"                       # inside 08:00-21:00
    days = ["mon", "tue", "wed", "thu", "fri", "sat"]
    timezone = "Pacific/Honolulu"               # the site's "today" on the dashboard
    max_concurrent_calls = 2                    # and the other dialer caps
    [sites."5ead6dd1-2cb9-4f80-80fc-5716b05c90ba".outcomes]
    tour_requested = "showing_request"          # outcome -> the site's activity type

Whatever a site leaves out comes from the environment, so environment variables alone
still serve a single site (or any number of sites sharing one set of values). With a file,
webhooks of sites it does not list are refused. ``load_sites`` checks everything and
reports every problem at once, one line each (``SitesFileError.problems``).

The pre-call webhook's bearer secrets are all or nothing: while no site lists
``elevenlabs_initiation_secrets``, RGSYNC_ELEVENLABS_INITIATION_SECRETS is accepted for every
site; once one does, each secret is accepted only for the sites that list it (a site listing
none has no pre-call webhook) and the variable must be unset, so no secret outside the file
can ask about a site's callers (``Sites.initiation_keys``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from realgeeks_sync.app.core.errors import ConfigError
from realgeeks_sync.app.core.settings import Secret, Settings

__all__ = [
    "DAYS",
    "DialerConfig",
    "SiteConfig",
    "SiteDirectory",
    "Sites",
    "SitesFileError",
    "load_sites",
    "normalize_site",
    "reload_on_sighup",
]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# The law's window (SPEC.md): a site may narrow its hours, never widen them.
EARLIEST = time(8)
LATEST = time(21)
_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
# The activities a call outcome writes, each to a Real Geeks activity type a site may rename.
OUTCOME_ACTIVITY_KINDS = ("called", "note", "opted_out", "tour_requested")

_SITE_KEYS = frozenset(
    {
        "name",
        "realgeeks_secrets",
        "realgeeks_api_user",
        "realgeeks_api_password",
        "elevenlabs_secrets",
        "elevenlabs_initiation_secrets",
        "elevenlabs_api_key",
        "elevenlabs_agent_id",
        "elevenlabs_phone_number_id",
        "dialer",
        "outcomes",
    }
)
_DIALER_INTS = {
    "max_concurrent_calls": 1,
    "max_attempts": 1,
    "max_attempts_per_day": 1,
}
_DIALER_SECONDS = {"redial_after_s": 0.0, "max_context_age_s": 1.0}
_DIALER_KEYS = frozenset({"enabled", "hours", "days", "timezone", *_DIALER_INTS, *_DIALER_SECONDS})


class SitesFileError(ConfigError):
    """The sites file cannot be read or says something that cannot work (every problem)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def normalize_site(value: str) -> str:
    """A site uuid as the service compares it: trimmed, lower case (dashes kept)."""
    return value.strip().lower()


@dataclass(frozen=True)
class DialerConfig:
    """One site's dialer: switch, hours and days, caps (values, not yet a policy)."""

    enabled: bool
    start: time = EARLIEST
    end: time = LATEST
    days: frozenset[int] = frozenset(range(7))  # Monday is 0
    timezone: str | None = None
    max_concurrent_calls: int = 2
    max_attempts: int = 3
    max_attempts_per_day: int = 2
    redial_after_s: float = 14400.0
    max_context_age_s: float = 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DialerConfig:
        """The environment's dialer (every site's when there is no file)."""
        return cls(
            enabled=settings.dialer_enabled,
            max_concurrent_calls=settings.dialer_max_concurrent_calls,
            max_attempts=settings.dialer_max_attempts,
            max_attempts_per_day=settings.dialer_max_attempts_per_day,
            redial_after_s=settings.dialer_redial_after_s,
            max_context_age_s=settings.dialer_max_context_age_s,
        )

    def hours_text(self) -> str:
        """The hours as written in the file, e.g. ``08:00-21:00``."""
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class SiteConfig:
    """Everything one site has of its own (the environment's values filled in)."""

    site_uuid: str
    name: str
    realgeeks_secrets: tuple[Secret, ...]
    realgeeks_api_user: str
    realgeeks_api_password: Secret
    elevenlabs_secrets: tuple[Secret, ...]
    # The pre-call webhook's bearer secrets that may ask about this site's callers.
    elevenlabs_initiation_secrets: tuple[Secret, ...]
    elevenlabs_api_key: Secret
    elevenlabs_agent_id: str
    elevenlabs_phone_number_id: str
    dialer: DialerConfig
    outcomes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Sites:
    """The configured sites; ``listed`` False: no file, every site gets the defaults."""

    default: SiteConfig
    by_uuid: Mapping[str, SiteConfig] = field(default_factory=dict)
    listed: bool = False
    path: Path | None = None

    def get(self, site_uuid: str) -> SiteConfig | None:
        """The site's configuration; None for a site the file does not list."""
        if not self.listed:
            return self.default
        return self.by_uuid.get(normalize_site(site_uuid))

    def config(self, site_uuid: str) -> SiteConfig:
        """The site's configuration, the environment's for an unlisted one."""
        return self.get(site_uuid) or self.default

    def known(self) -> list[str]:
        """The listed site uuids, sorted (empty without a file)."""
        return sorted(self.by_uuid)

    def realgeeks_keys(self) -> tuple[tuple[Secret, ...], tuple[frozenset[str] | None, ...]]:
        """Every Real Geeks secret once, and the sites each may sign for (None: any).

        The environment's secrets sign for every site that has none of its own (every site
        when there is no file); a site's own secrets sign for that site only.
        """
        return _keys((s.realgeeks_secrets, s.site_uuid) for s in self._all())

    def elevenlabs_keys(self) -> tuple[tuple[Secret, ...], tuple[frozenset[str] | None, ...]]:
        """Every ElevenLabs secret once, and the agent ids each may sign for (None: any).

        One ElevenLabs workspace usually serves every site: the environment's secrets sign
        for any agent; a site's own secrets (its own workspace) for its agent only.
        """
        shared = set(self.default.elevenlabs_secrets)
        secrets, owners = _keys(
            (tuple(x for x in s.elevenlabs_secrets if x not in shared), s.elevenlabs_agent_id)
            for s in self._all()
        )
        plain = tuple(x for x in self.default.elevenlabs_secrets if x not in secrets)
        return (*plain, *secrets), (*(None,) * len(plain), *owners)

    def initiation_keys(self) -> tuple[tuple[Secret, ...], tuple[frozenset[str] | None, ...]]:
        """Every pre-call webhook secret once, and the sites each may ask about (None: any).

        Without a file, or while no site lists its own, RGSYNC_ELEVENLABS_INITIATION_SECRETS
        asks about every site; once sites list their own (load_sites then refuses the
        variable), a secret asks about the sites that list it only, a site listing none
        about nobody.
        """
        if not self.listed or self.default.elevenlabs_initiation_secrets:
            plain = self.default.elevenlabs_initiation_secrets
            return plain, (None,) * len(plain)
        return _keys((s.elevenlabs_initiation_secrets, s.site_uuid) for s in self.by_uuid.values())

    def elevenlabs_agents(self) -> dict[str, Secret]:
        """Each ElevenLabs agent the sites call with, and the API key that reads its
        conversations (the first site's that names the agent); agents without a key are
        left out."""
        found: dict[str, Secret] = {}
        for site in self._all():
            if site.elevenlabs_agent_id and site.elevenlabs_api_key:
                found.setdefault(site.elevenlabs_agent_id, site.elevenlabs_api_key)
        return found

    def _all(self) -> list[SiteConfig]:
        return list(self.by_uuid.values()) if self.listed else [self.default]


def _keys(
    pairs: Iterable[tuple[tuple[Secret, ...], str]],
) -> tuple[tuple[Secret, ...], tuple[frozenset[str] | None, ...]]:
    """Secrets with the subjects (sites or agents) each signs for; shared ones sign for all."""
    owners: dict[Secret, set[str]] = {}
    for secrets, subject in pairs:
        for secret in secrets:
            owners.setdefault(secret, set()).add(subject)
    return tuple(owners), tuple(frozenset(o) for o in owners.values())


def default_site(settings: Settings) -> SiteConfig:
    """The environment's values as a site: every site's without a file."""
    return SiteConfig(
        site_uuid="*",
        name="every site",
        realgeeks_secrets=settings.realgeeks_secrets,
        realgeeks_api_user=settings.realgeeks_api_user,
        realgeeks_api_password=settings.realgeeks_api_password,
        elevenlabs_secrets=settings.elevenlabs_secrets,
        elevenlabs_initiation_secrets=settings.elevenlabs_initiation_secrets,
        elevenlabs_api_key=settings.elevenlabs_api_key,
        elevenlabs_agent_id=settings.elevenlabs_agent_id,
        elevenlabs_phone_number_id=settings.elevenlabs_phone_number_id,
        dialer=DialerConfig.from_settings(settings),
    )


def load_sites(settings: Settings, path: Path | None = None) -> Sites:
    """Read and check the sites file (``RGSYNC_SITES_FILE``), or the environment alone.

    Raises:
        SitesFileError: every problem of the file, one line each (the file unreadable,
            not TOML, an unknown key, a wrong type, hours outside 08:00-21:00, a dialer
            switched on without its ElevenLabs ids, a secret shared by two sites, per-site
            pre-call webhook secrets beside RGSYNC_ELEVENLABS_INITIATION_SECRETS...).
    """
    default = default_site(settings)
    path = path if path is not None else settings.sites_file
    if path is None:
        if not default.realgeeks_secrets:
            raise SitesFileError(
                [
                    "RGSYNC_REALGEEKS_SECRETS is required (comma-separated webhook secrets; "
                    "any one may sign (rotation)) unless RGSYNC_SITES_FILE gives each site its own"
                ]
            )
        return Sites(default)
    where = f"RGSYNC_SITES_FILE ({path})"
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SitesFileError([f"{where}: cannot read it: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise SitesFileError([f"{where}: not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise SitesFileError([f"{where}: not valid TOML: {exc}"]) from None
    problems: list[str] = []
    unknown = sorted(set(raw) - {"sites"})
    if unknown:
        problems.append(f"{where}: unknown top-level key(s) {', '.join(unknown)} (only [sites])")
    table = raw.get("sites")
    if not isinstance(table, dict) or not table:
        problems.append(f'{where}: no sites (add [sites."<site uuid>"] tables)')
        raise SitesFileError(problems)
    by_uuid: dict[str, SiteConfig] = {}
    own: dict[str, list[str]] = {}  # each site's own Real Geeks secrets, as written
    initiating: list[str] = []  # the sites listing pre-call webhook secrets of their own
    for key, entry in table.items():
        site = normalize_site(key)
        label = f"{where}: site {key}"
        if not site or not re.fullmatch(r"[0-9a-z][0-9a-z-]{0,63}", site):
            problems.append(f"{label}: not a site uuid")
            continue
        if site in by_uuid:
            problems.append(f"{label}: listed twice")
            continue
        if not isinstance(entry, dict):
            problems.append(f"{label}: must be a table")
            continue
        listed = entry.get("realgeeks_secrets")
        listed = [listed] if isinstance(listed, str) else listed
        if isinstance(listed, list):
            own[site] = [v.strip() for v in listed if isinstance(v, str) and v.strip()]
        if "elevenlabs_initiation_secrets" in entry:
            initiating.append(site)
        parsed = _site(site, entry, default, label, problems)
        if parsed is not None:
            by_uuid[site] = parsed
    _check_shared_secrets(own, settings, where, problems)
    if initiating and settings.elevenlabs_initiation_secrets:
        # Either would do; both would leave a secret outside the file asking about sites
        # that have their own (the cross-site leak per-site secrets exist to close).
        problems.append(
            f"{where}: site(s) {', '.join(sorted(initiating))} list "
            "elevenlabs_initiation_secrets, so RGSYNC_ELEVENLABS_INITIATION_SECRETS must be "
            "unset (each site accepts only its own; list a shared secret under every site "
            "that uses it)"
        )
    if problems:
        raise SitesFileError(problems)
    return Sites(default, by_uuid, listed=True, path=Path(path))


def _site(
    site: str, entry: dict[str, Any], default: SiteConfig, label: str, problems: list[str]
) -> SiteConfig | None:
    before = len(problems)
    for name in sorted(set(entry) - _SITE_KEYS):
        problems.append(f"{label}: unknown key {name!r}")

    def text(name: str, fallback: str) -> str:
        value = entry.get(name, fallback)
        if not isinstance(value, str):
            problems.append(f"{label}: {name} must be a string")
            return fallback
        return value.strip()

    def secrets(
        name: str, fallback: tuple[Secret, ...], *, at_least_one: bool = False
    ) -> tuple[Secret, ...]:
        value = entry.get(name)
        if value is None:
            return fallback
        if isinstance(value, str):
            value = [value]
        if (
            not isinstance(value, list)
            or not all(isinstance(v, str) and v.strip() for v in value)
            or (at_least_one and not value)
        ):
            kind = "a non-empty list" if at_least_one else "a list"
            problems.append(f"{label}: {name} must be {kind} of non-empty strings")
            return fallback
        return tuple(Secret(v.strip()) for v in value)

    rg_secrets = secrets("realgeeks_secrets", default.realgeeks_secrets)
    if not rg_secrets and len(problems) == before:
        problems.append(
            f"{label}: no realgeeks_secrets (and RGSYNC_REALGEEKS_SECRETS is not set): "
            "its webhooks could not be verified"
        )
    # An empty list would silently switch the site's pre-call webhook off: refused.
    initiation = secrets(
        "elevenlabs_initiation_secrets", default.elevenlabs_initiation_secrets, at_least_one=True
    )
    password = entry.get("realgeeks_api_password")
    api_key = entry.get("elevenlabs_api_key")
    dialer = _dialer(entry.get("dialer", {}), default.dialer, label, problems)
    agent = text("elevenlabs_agent_id", default.elevenlabs_agent_id)
    number = text("elevenlabs_phone_number_id", default.elevenlabs_phone_number_id)
    key = Secret(api_key.strip()) if isinstance(api_key, str) else default.elevenlabs_api_key
    if dialer is not None and dialer.enabled:
        for name, value in (
            ("elevenlabs_api_key", key.reveal()),
            ("elevenlabs_agent_id", agent),
            ("elevenlabs_phone_number_id", number),
        ):
            if not value:
                problems.append(
                    f"{label}: the dialer is on but {name} is missing "
                    f"(here or RGSYNC_{name.upper()})"
                )
    outcomes = entry.get("outcomes", {})
    if not isinstance(outcomes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in outcomes.items()
    ):
        problems.append(f"{label}: outcomes must map outcome names to non-empty strings")
        outcomes = {}
    known = ", ".join(OUTCOME_ACTIVITY_KINDS)
    for name in sorted(set(outcomes) - set(OUTCOME_ACTIVITY_KINDS)):
        problems.append(f"{label}: outcomes.{name} is not an outcome (known: {known})")
    for name, value in (("realgeeks_api_password", password), ("elevenlabs_api_key", api_key)):
        if value is not None and not isinstance(value, str):
            problems.append(f"{label}: {name} must be a string")
    user = text("realgeeks_api_user", default.realgeeks_api_user)
    if ":" in user:
        problems.append(f"{label}: realgeeks_api_user cannot contain ':' (HTTP Basic)")
    if len(problems) > before or dialer is None:
        return None
    return SiteConfig(
        site_uuid=site,
        name=text("name", site) or site,
        realgeeks_secrets=rg_secrets,
        realgeeks_api_user=user,
        realgeeks_api_password=Secret(password.strip())
        if isinstance(password, str)
        else default.realgeeks_api_password,
        elevenlabs_secrets=secrets("elevenlabs_secrets", default.elevenlabs_secrets),
        elevenlabs_initiation_secrets=initiation,
        elevenlabs_api_key=key,
        elevenlabs_agent_id=agent,
        elevenlabs_phone_number_id=number,
        dialer=dialer,
        outcomes={k: v.strip() for k, v in outcomes.items()},
    )


def _dialer(
    raw: Any, default: DialerConfig, label: str, problems: list[str]
) -> DialerConfig | None:
    label = f"{label}: dialer"
    if not isinstance(raw, dict):
        problems.append(f"{label} must be a table")
        return None
    before = len(problems)
    for name in sorted(set(raw) - _DIALER_KEYS):
        problems.append(f"{label}: unknown key {name!r}")
    values: dict[str, Any] = {}
    enabled = raw.get("enabled", default.enabled)
    if not isinstance(enabled, bool):
        problems.append(f"{label}: enabled must be true or false")
    values["enabled"] = enabled
    if "hours" in raw:
        hours = _hours(raw["hours"])
        if hours is None:
            problems.append(
                f"{label}: hours must be HH:MM-HH:MM inside 08:00-21:00, got {raw['hours']!r}"
            )
        else:
            values["start"], values["end"] = hours
    if "days" in raw:
        days = raw["days"]
        if (
            not isinstance(days, list)
            or not days
            or not all(isinstance(d, str) and d.strip().lower()[:3] in DAYS for d in days)
        ):
            problems.append(f"{label}: days must be a non-empty list of {', '.join(DAYS)}")
        else:
            values["days"] = frozenset(DAYS.index(d.strip().lower()[:3]) for d in days)
    if "timezone" in raw:
        zone = raw["timezone"]
        try:
            ZoneInfo(str(zone))
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"{label}: timezone {zone!r} is not a known IANA zone")
        else:
            values["timezone"] = str(zone)
    for name, minimum in _DIALER_INTS.items():
        if name in raw:
            value = raw[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                problems.append(f"{label}: {name} must be an integer >= {minimum}")
            else:
                values[name] = value
    for name, low in _DIALER_SECONDS.items():
        if name in raw:
            value = raw[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
                problems.append(f"{label}: {name} must be a number >= {low:g}")
            else:
                values[name] = float(value)
    if len(problems) > before:
        return None
    return DialerConfig(**{**default.__dict__, **values})


def _hours(raw: Any) -> tuple[time, time] | None:
    """``HH:MM-HH:MM`` inside the law's 08:00-21:00, start before end."""
    match = _HOURS.match(raw) if isinstance(raw, str) else None
    if match is None:
        return None
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59:
        return None
    start = time(h1, m1)
    end = LATEST if (h2, m2) == (24, 0) else time(min(h2, 23), m2)
    if start < EARLIEST or end > LATEST or start >= end:
        return None
    return start, end


def _check_shared_secrets(
    own: Mapping[str, list[str]], settings: Settings, where: str, problems: list[str]
) -> None:
    """A site's own secret that another site also lists would sign for both: refused."""
    shared = {s.reveal() for s in settings.realgeeks_secrets}
    seen: dict[str, str] = {}
    for site, secrets in own.items():
        for secret in secrets:
            if secret in shared:
                continue  # the environment's: signs for every site without its own
            other = seen.setdefault(secret, site)
            if other != site:
                problems.append(
                    f"{where}: sites {other} and {site} share a realgeeks secret; "
                    "each site needs its own"
                )


class SiteDirectory:
    """The sites in force, replaced whole on reload (SIGHUP) so readers see one version."""

    def __init__(self, settings: Settings, sites: Sites | None = None) -> None:
        self.settings = settings
        self.current = sites if sites is not None else load_sites(settings)
        self.version = 1

    def reload(self) -> list[str]:
        """Read the file again; on any problem keep the sites in force.

        Returns the problems (empty when the new file is in force).
        """
        try:
            fresh = load_sites(self.settings)
        except SitesFileError as exc:
            return exc.problems
        self.current = fresh
        self.version += 1
        return []


def reload_on_sighup(directory: SiteDirectory, log: Any, loop: Any = None) -> None:
    """Reread the sites file on SIGHUP (on ``loop``, else the running one); a bad file keeps
    the old one."""
    import asyncio
    import signal

    def reload() -> None:
        problems = directory.reload()
        for problem in problems:
            log.error("sites file not reloaded", extra={"problem": problem})
        if not problems:
            log.info(
                "sites file reloaded",
                extra={"sites": len(directory.current.by_uuid), "version": directory.version},
            )

    (loop or asyncio.get_running_loop()).add_signal_handler(signal.SIGHUP, reload)
