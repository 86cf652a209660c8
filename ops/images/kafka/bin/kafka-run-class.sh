#!/usr/bin/env bash
# kafka-run-class.sh CLASS [ARGS...]: run a Kafka class on /opt/kafka/libs. Honors the
# variables of Kafka's own script: KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS, KAFKA_OPTS,
# KAFKA_LOG4J_OPTS (tools log warnings to stderr by default).
set -euo pipefail
home=/opt/kafka
heap="${KAFKA_HEAP_OPTS:--Xmx256m}"
perf="${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true}"
log4j="${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=$home/config/tools-log4j2.yaml}"
# shellcheck disable=SC2086
exec java $heap $perf ${KAFKA_OPTS:-} $log4j -cp "$home/libs/*" "$@"
