"""The service's exception tree: one place that says what each failure means.

    RealGeeksSyncError                 base; ``status`` (HTTP) and ``retriable``
    ├── ConfigError                    bad or missing setting: start-up stops
    ├── WebhookError                   an inbound request we refuse (4xx)
    │   ├── SignatureError             401: bad/missing signature or stale timestamp
    │   ├── PayloadTooLargeError       413
    │   ├── MalformedPayloadError      400: signed but not a JSON object, no action
    │   ├── UnknownSiteError           404: a site the sites file does not list
    │   ├── WrongSiteSecretError       403: signed with another site's secret
    │   ├── RequestTimeoutError        408: the body did not arrive within the bound
    │   ├── RateLimitedError           429: one client sends too much
    │   └── IngressBusyError           503: too many unauthenticated body bytes in flight
    ├── PublishError                   503: Kafka did not acknowledge in time (retriable)
    ├── PoisonMessageError             a message no agent can process: dead-letter it
    └── ApiError                       a call to Real Geeks or ElevenLabs failed
        ├── TransientApiError          network, timeout, 5xx, 429: retry with backoff
        └── PermanentApiError          400/401/403/404/422: dead-letter at once

Agents retry what is ``retriable`` and dead-letter the rest; app/ingress/handlers.py maps
``WebhookError``/``PublishError`` to HTTP responses in one place.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "ConfigError",
    "IngressBusyError",
    "MalformedPayloadError",
    "PayloadTooLargeError",
    "PermanentApiError",
    "PoisonMessageError",
    "PublishError",
    "RateLimitedError",
    "RealGeeksSyncError",
    "RequestTimeoutError",
    "SignatureError",
    "TransientApiError",
    "UnknownSiteError",
    "WebhookError",
    "WrongSiteSecretError",
]


class RealGeeksSyncError(Exception):
    """Base of every error this service raises on purpose."""

    status: int = 500
    retriable: bool = False

    @property
    def error_type(self) -> str:
        """Stable name used in metrics labels and dead letters."""
        return type(self).__name__


class ConfigError(RealGeeksSyncError):
    """A required setting is missing or malformed."""


class WebhookError(RealGeeksSyncError):
    """An inbound webhook we refuse; the status says why."""

    status = 400


class SignatureError(WebhookError):
    """Missing, malformed or wrong signature, or a timestamp out of tolerance."""

    status = 401


class PayloadTooLargeError(WebhookError):
    """The body is larger than the configured limit."""

    status = 413


class MalformedPayloadError(WebhookError):
    """The body is signed but is not what the sender's contract promises."""

    status = 400


class UnknownSiteError(WebhookError):
    """A signed webhook for a site the sites file does not list (or naming no site)."""

    status = 404


class WrongSiteSecretError(WebhookError):
    """A webhook signed with a secret of another site than the one its body names."""

    status = 403


class RateLimitedError(WebhookError):
    """One client sends more than its share."""

    status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RequestTimeoutError(WebhookError):
    """The request body did not arrive within the read timeout."""

    status = 408


class IngressBusyError(WebhookError):
    """Too many bytes of bodies not yet authenticated are held: the sender retries later."""

    status = 503
    retriable = True

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PublishError(RealGeeksSyncError):
    """Kafka did not acknowledge a write within the bound: the sender must retry."""

    status = 503
    retriable = True


class PoisonMessageError(RealGeeksSyncError):
    """A consumed message that cannot be processed; it goes to the dead-letter topic."""


class ApiError(RealGeeksSyncError):
    """A call to an outside API failed."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        body: str | None = None,
        cause: str | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = status
        self.retry_after = retry_after
        self.body = body
        # Without an HTTP answer: "not_connected" (the request never left), "timeout" or
        # "dropped" (it may have been processed).
        self.cause = cause

    @property
    def may_have_arrived(self) -> bool:
        """True when no answer came after the request may have left (a timeout, a dropped
        connection): the server may have processed it."""
        return self.http_status is None and self.cause in ("timeout", "dropped")


class TransientApiError(ApiError):
    """Network error, timeout, 5xx or 429: worth another attempt after a backoff."""

    retriable = True


class PermanentApiError(ApiError):
    """400/401/403/404/422: retrying cannot help; dead-letter with the reason."""
