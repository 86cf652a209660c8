"""What operators use: HTTP routes (health, metrics, inspection), admin authentication, and
the commands behind the CLI (backfill, dead letters, do-not-call)."""
