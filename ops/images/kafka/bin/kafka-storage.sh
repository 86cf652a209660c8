#!/usr/bin/env bash
# kafka-storage.sh: format or inspect KRaft storage.
exec "$(dirname "$0")/kafka-run-class.sh" kafka.tools.StorageTool "$@"
