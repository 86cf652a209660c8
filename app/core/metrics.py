"""Prometheus metrics: one registry per worker, exposed at /metrics.

Each worker serves its own registry on its own port, so several workers on one machine
never mix their figures; Prometheus sums them by job.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from realgeeks_sync.app.core.gc_tuning import GcPauses

__all__ = ["METRICS_CONTENT_TYPE", "METRIC_NAMES", "Metrics"]

# Prometheus text exposition format, served by the worker and the ingress.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Every metric the service exports (names are part of the contract, SPEC.md)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.webhooks_received = Counter(
            "realgeeks_webhooks_received",
            "Webhooks accepted and acknowledged by Kafka",
            ["source", "action"],
            registry=r,
        )
        self.webhooks_rejected = Counter(
            "realgeeks_webhooks_rejected",
            "Webhooks refused at the ingress, by HTTP status",
            ["source", "status"],
            registry=r,
        )
        self.signature_failures = Counter(
            "realgeeks_signature_failures",
            "Webhooks with a missing or wrong signature",
            ["source"],
            registry=r,
        )
        self.unknown_sites = Counter(
            "realgeeks_unknown_sites",
            "Signed Real Geeks webhooks refused because the sites file does not list their site",
            registry=r,
        )
        self.webhooks_processed = Counter(
            "realgeeks_webhooks_processed",
            "Raw webhooks processed by the agents",
            ["source", "action"],
            registry=r,
        )
        self.webhooks_failed = Counter(
            "realgeeks_webhooks_failed",
            "Raw webhooks that went to the dead-letter topic",
            ["source"],
            registry=r,
        )
        self.webhooks_ignored = Counter(
            "realgeeks_webhooks_ignored",
            "Webhooks with an unknown action or type, kept but ignored",
            ["source", "action"],
            registry=r,
        )
        self.duplicate_messages = Counter(
            "realgeeks_duplicate_messages",
            "Redelivered message ids dropped by idempotency",
            ["source"],
            registry=r,
        )
        self.stale_updates = Counter(
            "realgeeks_stale_updates",
            "Updates older than the last applied one, ignored",
            registry=r,
        )
        self.future_timestamps = Counter(
            "realgeeks_future_timestamps",
            "Webhook timestamps later than receipt plus the allowed skew, replaced by receipt",
            ["source"],
            registry=r,
        )
        self.leads_created = Counter("realgeeks_leads_created", "New canonical leads", registry=r)
        self.leads_updated = Counter("realgeeks_leads_updated", "Lead updates applied", registry=r)
        self.leads_merged = Counter(
            "realgeeks_leads_merged",
            "Leads merged into an existing canonical lead",
            ["rule"],
            registry=r,
        )
        self.activities_logged = Counter(
            "realgeeks_activities_logged", "Activities written to Real Geeks", ["type"], registry=r
        )
        self.activities_failed = Counter(
            "realgeeks_activities_failed",
            "Activities that could not be written to Real Geeks",
            ["error_type"],
            registry=r,
        )
        self.calls_requested = Counter(
            "realgeeks_calls_requested", "Outbound AI call requests sent", registry=r
        )
        self.calls_started = Counter(
            "realgeeks_calls_started", "Outbound AI calls ElevenLabs placed", registry=r
        )
        self.calls_deferred = Counter(
            "realgeeks_calls_deferred", "Leads not called now, by reason", ["reason"], registry=r
        )
        self.calls_skipped = Counter(
            "realgeeks_calls_skipped",
            "Leads the dialer will not call, by reason",
            ["reason"],
            registry=r,
        )
        self.calls_refused = Counter(
            "realgeeks_calls_refused",
            "Call requests answered in a way that proves no call was made, by cause",
            ["cause"],
            registry=r,
        )
        self.calls_uncertain = Counter(
            "realgeeks_calls_uncertain",
            "Call requests whose outcome is unknown (never retried), by cause",
            ["cause"],
            registry=r,
        )
        self.optouts = Counter(
            "realgeeks_optouts",
            "Opt-outs newly recorded by the dialer, by source",
            ["source"],
            registry=r,
        )
        self.initiation_requests = Counter(
            "realgeeks_initiation_requests",
            "Pre-call webhooks of inbound calls, by result (known, chosen among several "
            "leads, unknown, not_ready, unauthorized, wrong_site: another site's secret, "
            "bad_request, disabled)",
            ["result"],
            registry=r,
        )
        self.initiation_seconds = Histogram(
            "realgeeks_initiation_seconds",
            "Time to answer a pre-call webhook",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.outcomes_reconciled = Counter(
            "realgeeks_outcomes_reconciled",
            "Call outcomes whose webhook never arrived, recovered from the conversation history",
            registry=r,
        )
        self.lead_updates_written = Counter(
            "realgeeks_lead_updates_written",
            "Lead-field updates (PATCH) written to Real Geeks",
            registry=r,
        )
        self.operator_actions = Counter(
            "realgeeks_operator_actions",
            "Operator actions applied by the dialer (pause, resume, call_now, never_call, "
            "call_now_refused_<why>; pause_all and resume_all once per partition)",
            ["action"],
            registry=r,
        )
        self.speed_to_lead = Histogram(
            "realgeeks_speed_to_lead_seconds",
            "Time from a new lead's webhook to its first AI call request",
            buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0),
            registry=r,
        )
        self.calls_ended = Counter(
            "realgeeks_calls_ended",
            "AI calls (placed, or a lead calling) whose outcome arrived, by outcome "
            "(completed: the lead was reached)",
            ["outcome"],
            registry=r,
        )
        self.tours_requested = Counter(
            "realgeeks_tours_requested",
            "Tours (viewings) leads asked for on an AI call",
            registry=r,
        )
        self.dialer_paused = Gauge(
            "realgeeks_dialer_paused",
            "1 while an operator has paused the site's dialer, or every site "
            "(sites this worker holds)",
            ["site"],
            registry=r,
        )
        self.ui_logins = Counter(
            "realgeeks_ui_logins",
            "Logins to the /ui/ pages, accepted or refused (a wrong token)",
            ["result"],
            registry=r,
        )
        self.deadletters = Counter(
            "realgeeks_deadletters",
            "Records written to the dead-letter topic",
            ["topic", "error_type"],
            registry=r,
        )
        self.sync_errors = Counter(
            "realgeeks_sync_errors",
            "Errors by type, anywhere in the pipeline",
            ["error_type"],
            registry=r,
        )
        self.ingest_seconds = Histogram(
            "realgeeks_webhook_ingest_seconds",
            "Time from request to Kafka acknowledgement at the ingress",
            ["source"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.processing_seconds = Histogram(
            "realgeeks_webhook_processing_seconds",
            "Time an agent spends on one raw webhook, outputs acknowledged",
            ["source"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.api_request_seconds = Histogram(
            "realgeeks_api_request_duration_seconds",
            "Outbound API request duration",
            ["api", "operation", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.sync_lag = Gauge(
            "realgeeks_sync_lag_seconds",
            "Age of the oldest received but unprocessed webhook (0 when caught up)",
            registry=r,
        )
        self.consumer_lag = Gauge(
            "realgeeks_consumer_lag_messages",
            "Messages behind the end of the raw topics",
            ["topic"],
            registry=r,
        )
        self.rocksdb_memory = Gauge(
            "realgeeks_rocksdb_memory_bytes",
            "Bytes in the tables' shared RocksDB cache (blocks, index/filters, memtables)",
            registry=r,
        )
        self.last_webhook = Gauge(
            "realgeeks_last_webhook_timestamp_seconds",
            "Unix time of the last accepted webhook",
            ["source"],
            registry=r,
        )
        # Served from this registry; timed only once the process installs it (a worker or
        # an ingress, not every Metrics a test builds).
        self.gc_pauses = GcPauses()
        r.register(self.gc_pauses)

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)


METRIC_NAMES = (
    "realgeeks_webhooks_received_total",
    "realgeeks_webhooks_rejected_total",
    "realgeeks_signature_failures_total",
    "realgeeks_unknown_sites_total",
    "realgeeks_webhooks_processed_total",
    "realgeeks_webhooks_failed_total",
    "realgeeks_webhooks_ignored_total",
    "realgeeks_duplicate_messages_total",
    "realgeeks_stale_updates_total",
    "realgeeks_future_timestamps_total",
    "realgeeks_leads_created_total",
    "realgeeks_leads_updated_total",
    "realgeeks_leads_merged_total",
    "realgeeks_activities_logged_total",
    "realgeeks_activities_failed_total",
    "realgeeks_calls_requested_total",
    "realgeeks_calls_started_total",
    "realgeeks_calls_deferred_total",
    "realgeeks_calls_skipped_total",
    "realgeeks_calls_refused_total",
    "realgeeks_calls_uncertain_total",
    "realgeeks_optouts_total",
    "realgeeks_initiation_requests_total",
    "realgeeks_initiation_seconds",
    "realgeeks_outcomes_reconciled_total",
    "realgeeks_lead_updates_written_total",
    "realgeeks_operator_actions_total",
    "realgeeks_calls_ended_total",
    "realgeeks_tours_requested_total",
    "realgeeks_dialer_paused",
    "realgeeks_ui_logins_total",
    "realgeeks_speed_to_lead_seconds",
    "realgeeks_deadletters_total",
    "realgeeks_sync_errors_total",
    "realgeeks_webhook_ingest_seconds",
    "realgeeks_webhook_processing_seconds",
    "realgeeks_api_request_duration_seconds",
    "realgeeks_sync_lag_seconds",
    "realgeeks_consumer_lag_messages",
    "realgeeks_last_webhook_timestamp_seconds",
    "realgeeks_rocksdb_memory_bytes",
    "realgeeks_gc_pause_seconds",
    "realgeeks_gc_frozen_objects",
)
