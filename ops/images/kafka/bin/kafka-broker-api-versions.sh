#!/usr/bin/env bash
# kafka-broker-api-versions.sh: the healthcheck (the broker answers API requests).
export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx64m}"
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.BrokerApiVersionsCommand "$@"
