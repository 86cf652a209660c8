"""The console command: ``realgeeks-sync worker | ingress | doctor | backfill | dlq | dnc |
reconcile``."""

from __future__ import annotations

import argparse
import sys

from realgeeks_sync.app.core.errors import ConfigError
from realgeeks_sync.app.core.logs import configure_logging
from realgeeks_sync.app.core.settings import Settings

__all__ = ["main"]


def _settings() -> Settings:
    from realgeeks_sync.app.core.sites import SitesFileError
    from realgeeks_sync.app.main import load_settings

    try:
        return load_settings()
    except SitesFileError as exc:
        for problem in exc.problems:  # one line per problem, all of them at once
            print(f"realgeeks-sync: {problem}", file=sys.stderr)
        raise SystemExit(2) from None
    except ConfigError as exc:
        print(f"realgeeks-sync: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def run_worker(settings: Settings) -> None:
    """Create the topics and the tables' changelogs, then run the Faust worker with its web
    server until stopped."""
    import asyncio

    import faust
    import uvloop

    from realgeeks_sync.app.main import build
    from realgeeks_sync.app.streaming.topics import ensure_topics

    configure_logging(settings.log_level, settings.log_format)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        ensure_topics(settings, changelogs=True)
    except ConfigError as exc:
        print(f"realgeeks-sync: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception as exc:  # noqa: BLE001 - one clear line, not a traceback
        print(f"realgeeks-sync: cannot reach Kafka at {settings.kafka_url}: {exc}", file=sys.stderr)
        raise SystemExit(3) from None
    # uvloop: the event loop's own share of a worker's CPU (every ack, fetch and request
    # passes through it) is about halved; Faust and aiokafka run on it unchanged.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    pipeline = build(settings)
    worker = faust.Worker(
        pipeline.app,
        loglevel=settings.log_level,
        quiet=True,
        redirect_stdouts=False,
        override_logging=False,
    )
    try:
        worker.execute_from_commandline()
    finally:
        pipeline.publisher.close()


def run_ingress_process(settings: Settings) -> None:
    """Run only the webhook ingress until stopped; exit 3 when Kafka cannot be reached."""
    from confluent_kafka import KafkaException

    from realgeeks_sync.app.ingress.server import run_ingress

    try:
        run_ingress(settings)
    except KafkaException as exc:  # raised at start only: later failures are 503s
        print(f"realgeeks-sync: cannot reach Kafka at {settings.kafka_url}: {exc}", file=sys.stderr)
        raise SystemExit(3) from None
    except ConfigError as exc:
        print(f"realgeeks-sync: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``realgeeks-sync`` console command."""
    parser = argparse.ArgumentParser(prog="realgeeks-sync", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("worker", help="run the stream worker and its web server")
    sub.add_parser("ingress", help="run only the webhook ingress: verify, publish to Kafka, answer")
    sub.add_parser(
        "doctor",
        help="check Kafka, each site's Real Geeks login and ElevenLabs ids, the clock; print "
        "the webhook URLs (exit 0: ready)",
    )
    backfill = sub.add_parser("backfill", help="import a Real Geeks export through the pipeline")
    backfill.add_argument("file", help="CSV with Real Geeks column names, or JSON lines")
    backfill.add_argument("--site-uuid", help="site for rows that do not name one")
    dlq = sub.add_parser("dlq", help="inspect or re-drive dead letters")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    for name in ("list", "replay"):
        cmd = dlq_sub.add_parser(name)
        cmd.add_argument("--topic", help="only dead letters of this original topic")
        cmd.add_argument("--error-type", help="only this error type")
        cmd.add_argument("--since", help="only dead letters first failed at or after (ISO 8601)")
        cmd.add_argument("--transient", action="store_true", help="only retriable ones")
    dnc = sub.add_parser("dnc", help="the do-not-call list (by number and by lead, per site)")
    dnc_sub = dnc.add_subparsers(dest="dnc_command", required=True)
    for name, text in (("add", "put numbers (or leads) on the list"), ("remove", "take them off")):
        cmd = dnc_sub.add_parser(name, help=text)
        cmd.add_argument("values", nargs="+", help="E.164 numbers, or lead ids with --lead")
        cmd.add_argument("--lead", action="store_true", help="the values are Real Geeks lead ids")
    imp = dnc_sub.add_parser("import", help="put every number of a file on the list")
    imp.add_argument("file", help="CSV with a phone column (and site_uuid), or one number a line")
    for cmd in dnc_sub.choices.values():  # add, remove, import
        cmd.add_argument("--site-uuid", help="the Real Geeks site (required unless in the file)")
        cmd.add_argument("--region", help="region for numbers without a country code")
        cmd.add_argument("--reason", help="why (kept with the entry)")
        cmd.add_argument("--by", help="who (default: the current user)")
    listing = dnc_sub.add_parser("list", help="show the list, or calls whose outcome is unknown")
    listing.add_argument("--site-uuid", help="only this site")
    listing.add_argument(
        "--uncertain", action="store_true", help="call attempts whose outcome is unknown"
    )
    reconcile = sub.add_parser(
        "reconcile", help="map call outcomes whose webhook never arrived, since a time"
    )
    reconcile.add_argument("--since", required=True, help="ISO 8601 time, or an age like 36h or 2d")
    args = parser.parse_args(argv)
    settings = _settings()
    if args.command == "worker":
        run_worker(settings)
    elif args.command == "ingress":
        run_ingress_process(settings)
    elif args.command == "doctor":
        from realgeeks_sync.app.operations.doctor import run_doctor

        raise SystemExit(run_doctor(settings))
    elif args.command == "backfill":
        from realgeeks_sync.app.operations.backfill import run_backfill

        raise SystemExit(run_backfill(settings, args.file, site_uuid=args.site_uuid))
    elif args.command == "reconcile":
        from realgeeks_sync.app.operations.reconcile import run_reconcile

        raise SystemExit(run_reconcile(settings, args.since))
    elif args.command == "dnc":
        from realgeeks_sync.app.operations.dnc import run_dnc

        raise SystemExit(run_dnc(settings, args))
    else:
        from realgeeks_sync.app.operations.dlq import run_dlq

        raise SystemExit(run_dlq(settings, args))


if __name__ == "__main__":
    main()
