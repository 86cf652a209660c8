"""docker-compose.yml (and its host-network variant), the Dockerfile, Prometheus config, alert
rules and the Grafana dashboard.

Structure is checked here without Docker. Metric names in every PromQL expression must be
ones the worker exports (app/core/metrics.py). With promtool installed (ops/prometheus install)
the Prometheus config, the rules and every dashboard expression are also checked by
Prometheus' own parser, and the main alerts are unit-tested with `promtool test rules`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from ops.testkit.support import ROOT
from realgeeks_sync.app.core.metrics import METRIC_NAMES, Metrics

COMPOSE = ROOT / "docker-compose.yml"
HOST_COMPOSE = ROOT / "docker-compose.host.yml"
DOCKERFILE = ROOT / "ops" / "Dockerfile"
KAFKA_IMAGE = ROOT / "ops" / "images" / "kafka"
PROMETHEUS_IMAGE = ROOT / "ops" / "images" / "prometheus"
SITES_EXAMPLE = ROOT / "sites.example.toml"
MONITORING = ROOT / "ops" / "monitoring"
PROMETHEUS_YML = MONITORING / "prometheus.yml"
ALERTS_YML = MONITORING / "alerts.yml"
GRAFANA = MONITORING / "grafana"
DATASOURCE_YML = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS_YML = GRAFANA / "provisioning" / "dashboards" / "dashboards.yml"
DASHBOARD = GRAFANA / "dashboards" / "realgeeks-sync.json"

METRIC_RE = re.compile(r"realgeeks_[a-z_]+")
HISTOGRAM_SUFFIX = re.compile(r"_(bucket|sum|count)$")

# ---------------------------------------------------------------------------------------------
# YAML: PyYAML when installed, else a small parser for the block subset these files use
# (mappings, sequences, quoted/plain scalars, flow lists, comments). Anything beyond that
# subset (anchors, block scalars, multi-document) raises instead of being misread.


def load_yaml(path: Path) -> Any:
    return load_yaml_text(path.read_text())


def load_yaml_text(text: str) -> Any:
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        return parse_yaml_subset(text)
    return yaml.safe_load(text)


def _strip_comment(line: str) -> str:
    quote: str | None = None
    i = -1
    while i + 1 < len(line):
        i += 1
        ch = line[i]
        if quote:
            if ch == quote == "'" and line[i + 1 : i + 2] == "'":
                i += 1  # '' is an escaped quote inside a single-quoted scalar
            elif ch == quote:
                quote = None
        elif ch in "'\"" and (i == 0 or line[i - 1] in " [,:-"):
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def _split_flow(inner: str) -> list[str]:
    items, buf, quote = [], "", None
    for ch in inner:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == ",":
            items.append(buf.strip())
            buf = ""
            continue
        buf += ch
    if buf.strip():
        items.append(buf.strip())
    return items


def _scalar(raw: str) -> Any:
    s = raw.strip()
    if s.startswith("'"):
        if not s.endswith("'") or len(s) < 2:
            raise ValueError(f"unterminated quoted scalar: {s}")
        return s[1:-1].replace("''", "'")
    if s.startswith('"'):
        return json.loads(s)
    if s.startswith("["):
        if not s.endswith("]"):
            raise ValueError(f"multi-line flow sequences are not supported: {s}")
        return [_scalar(x) for x in _split_flow(s[1:-1])]
    if s == "{}":
        return {}
    if s[:1] in {"{", "|", ">", "&", "*", "!"}:
        raise ValueError(f"YAML construct outside the supported subset: {s}")
    if s in {"", "~", "null"}:
        return None
    if s in {"true", "false"}:
        return s == "true"
    if re.fullmatch(r"-?\d+", s):
        return int(s)
    return s


_KEY = re.compile(r"""^('(?:[^']|'')*'|"[^"]*"|[^'"\[{][^:]*?)\s*:(?:\s+|$)(.*)$""")


def parse_yaml_subset(text: str) -> Any:
    lines: list[tuple[int, str]] = []
    for raw in text.splitlines():
        if raw.strip() in {"---", "..."}:
            continue
        line = _strip_comment(raw)
        if line.strip():
            if "\t" in line[: len(line) - len(line.lstrip())]:
                raise ValueError("tabs in indentation")
            lines.append((len(line) - len(line.lstrip()), line.strip()))

    def block(i: int, indent: int) -> tuple[Any, int]:
        if lines[i][1] == "-" or lines[i][1].startswith("- "):
            return seq(i, indent)
        return mapping(i, indent)

    def seq(i: int, indent: int) -> tuple[list[Any], int]:
        items: list[Any] = []
        while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("-"):
            content = lines[i][1]
            rest = content[1:].lstrip()
            if not rest:
                if i + 1 < len(lines) and lines[i + 1][0] > indent:
                    value, i = block(i + 1, lines[i + 1][0])
                else:
                    value, i = None, i + 1
                items.append(value)
            elif rest[0] not in "'\"[{" and _KEY.match(rest):
                inner = indent + len(content) - len(rest)
                lines[i] = (inner, rest)
                value, i = mapping(i, inner)
                items.append(value)
            else:
                items.append(_scalar(rest))
                i += 1
        return items, i

    def mapping(i: int, indent: int) -> tuple[dict[str, Any], int]:
        out: dict[str, Any] = {}
        while i < len(lines) and lines[i][0] == indent:
            m = _KEY.match(lines[i][1])
            if not m:
                raise ValueError(f"expected 'key: value' at: {lines[i][1]}")
            key = _scalar(m.group(1))
            if key in out:
                raise ValueError(f"duplicate key {key!r}")
            rest = m.group(2).strip()
            if rest:
                out[key], i = _scalar(rest), i + 1
            elif i + 1 < len(lines) and lines[i + 1][0] > indent:
                out[key], i = block(i + 1, lines[i + 1][0])
            elif i + 1 < len(lines) and lines[i + 1][0] == indent and lines[i + 1][1][:1] == "-":
                out[key], i = seq(i + 1, indent)
            else:
                out[key], i = None, i + 1
        if i < len(lines) and lines[i][0] > indent:
            raise ValueError(f"bad indentation at: {lines[i][1]}")
        return out, i

    if not lines:
        return None
    value, end = block(0, lines[0][0])
    if end != len(lines):
        raise ValueError(f"unparsed YAML from: {lines[end][1]}")
    return value


def test_yaml_subset_parser_reads_what_it_claims() -> None:
    doc = parse_yaml_subset(
        "a: 1  # comment\n"
        "b:\n"
        "  - x\n"
        "  - k: 'it''s # not a comment'\n"
        '    j: "q: \\"r\\""\n'
        "c: [one, 'two', 3]\n"
        "d:\n"
        "- e\n"
        "f: ${X:?set it}\n"
    )
    assert doc == {
        "a": 1,
        "b": ["x", {"k": "it's # not a comment", "j": 'q: "r"'}],
        "c": ["one", "two", 3],
        "d": ["e"],
        "f": "${X:?set it}",
    }
    with pytest.raises(ValueError):
        parse_yaml_subset("a: |\n  text\n")


# ---------------------------------------------------------------------------------------------
# metric names


def exported_series() -> set[str]:
    """Exact series names the worker exposes: counters _total, histograms _bucket/_sum/_count."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + s for s in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


def metric_names(expr: str) -> set[str]:
    return set(METRIC_RE.findall(expr))


def assert_exported(expr: str, where: str) -> None:
    names = metric_names(expr)
    assert names, f"{where}: no realgeeks_ metric in {expr!r}"
    for name in names:
        assert HISTOGRAM_SUFFIX.sub("", name) in METRIC_NAMES or name in METRIC_NAMES, (
            f"{where}: {name} is not exported (app.metrics.METRIC_NAMES)"
        )
        assert name in exported_series(), f"{where}: {name} is not a series the worker exposes"


def test_exported_series_match_metric_names() -> None:
    stripped = {HISTOGRAM_SUFFIX.sub("", n) for n in exported_series()}
    assert stripped == set(METRIC_NAMES)


# ---------------------------------------------------------------------------------------------
# docker-compose.yml and ops/Dockerfile


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = load_yaml(COMPOSE)
    assert isinstance(doc, dict)
    return doc


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _unset(value: str) -> str:
    """A value as compose reads it with every variable unset (${X:-default} -> default)."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """container path -> source (host path or volume name), variables unset."""
    out = {}
    for spec in service.get("volumes", []):
        if isinstance(spec, dict):  # long syntax
            out[spec["target"]] = _unset(spec["source"])
            continue
        source, target = spec.split(":")[:2]
        out[target] = source
    return out


def _healthcheck(service: dict[str, Any]) -> str:
    """The service's healthcheck command as one string ("" when it has none)."""
    test = (service.get("healthcheck") or {}).get("test", "")
    return " ".join(test) if isinstance(test, list) else str(test)


def compose_text(path: Path) -> str:
    """A compose file's text, its merge tags (!reset, !override) dropped: the values they
    tag are what the service has."""
    return re.sub(r"(:[ \t]+)!(?:reset|override)\b[ \t]*", r"\1", path.read_text())


def load_compose(path: Path) -> dict[str, Any]:
    doc = load_yaml_text(compose_text(path))
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def host_compose() -> dict[str, Any]:
    return load_compose(HOST_COMPOSE)


def _published(service: dict[str, Any]) -> set[str]:
    return {str(p) for p in service.get("ports", [])}


def test_compose_services_and_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"kafka", "worker", "ingress", "prometheus", "grafana"}
    for name in ("worker", "ingress"):
        depends = services[name]["depends_on"]
        assert "kafka" in depends
        if isinstance(depends, dict):
            assert depends["kafka"]["condition"] == "service_healthy"
    assert {"worker", "ingress"} <= set(services["prometheus"]["depends_on"])
    assert "prometheus" in services["grafana"]["depends_on"]
    for name, service in services.items():
        assert "image" in service or "build" in service, name
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for target, source in _mounts(service).items():
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: {source} (for {target}) is missing"
            else:
                assert source in declared, f"{name}: named volume {source} is not declared"


def test_compose_kafka_is_kraft_single_node_reachable_as_kafka_9092(
    compose: dict[str, Any],
) -> None:
    kafka = compose["services"]["kafka"]
    # apache/kafka, or the image ops/docker builds from Maven Central with the same version.
    assert kafka["image"] == "${RGSYNC_KAFKA_IMAGE:-apache/kafka:4.1.1}"
    for pom in ("ops/kafka-pom.xml", "ops/images/kafka/pom.xml"):
        assert "<kafka.version>4.1.1</kafka.version>" in (ROOT / pom).read_text(), pom
    env = _env(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "PLAINTEXT://:9092" in env["KAFKA_LISTENERS"].split(",")
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"]), "KRaft needs a base64 uuid"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert _mounts(kafka)[env["KAFKA_LOG_DIRS"]] == "kafka-data"
    assert "healthcheck" in kafka


def test_compose_worker(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    build = worker["build"]
    assert (ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    env = _env(worker)
    assert env["RGSYNC_KAFKA_URL"] == "kafka://kafka:9092"
    assert env["RGSYNC_REALGEEKS_SECRETS"] == "${RGSYNC_REALGEEKS_SECRETS:?set it}"
    assert "${RGSYNC_PUBLISH_ADDRESS:-127.0.0.1}:6066:6066" in _published(worker)
    assert env.get("RGSYNC_WEB_PORT", "6066") == "6066"
    assert _mounts(worker)[env["RGSYNC_DATA_DIR"]] == "worker-data"
    assert "/health" in " ".join(worker["healthcheck"]["test"])
    assert worker["command"] == ["realgeeks-sync", "worker"]


def test_compose_ingress_runs_the_worker_image_with_its_secrets(compose: dict[str, Any]) -> None:
    ingress, worker = compose["services"]["ingress"], compose["services"]["worker"]
    assert ingress["image"] == worker["image"] and ingress["build"] == worker["build"]
    assert ingress["command"] == ["realgeeks-sync", "ingress"]
    env, worker_env = _env(ingress), _env(worker)
    for name in ("RGSYNC_KAFKA_URL", "RGSYNC_REALGEEKS_SECRETS", "RGSYNC_ELEVENLABS_SECRETS"):
        assert env[name] == worker_env[name], name
    assert env["RGSYNC_INGRESS_PORT"] == "6067"
    assert "${RGSYNC_PUBLISH_ADDRESS:-127.0.0.1}:6067:6067" in _published(ingress)
    check = " ".join(ingress["healthcheck"]["test"])
    assert "http://127.0.0.1:%s/health" in check and "RGSYNC_INGRESS_PORT" in check


def test_compose_prometheus_and_grafana_mount_the_monitoring_files(
    compose: dict[str, Any],
) -> None:
    prom = compose["services"]["prometheus"]
    assert prom["image"] == "${RGSYNC_PROMETHEUS_IMAGE:-prom/prometheus:v3.5.0}"
    mounts = _mounts(prom)
    assert mounts["/etc/prometheus/prometheus.yml"] == "./ops/monitoring/prometheus.yml"
    assert mounts["/etc/prometheus/alerts.yml"] == "./ops/monitoring/alerts.yml"
    assert "127.0.0.1:9090:9090" in _published(prom)

    grafana = compose["services"]["grafana"]
    assert grafana["image"].startswith("grafana/grafana")
    mounts = _mounts(grafana)
    assert mounts["/etc/grafana/provisioning"] == "./ops/monitoring/grafana/provisioning"
    dashboards_target = next(
        t for t, s in mounts.items() if s == "./ops/monitoring/grafana/dashboards"
    )
    provider = load_yaml(PROVIDERS_YML)["providers"][0]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == dashboards_target
    assert "127.0.0.1:3000:3000" in _published(grafana)


def test_compose_is_safe_by_default(compose: dict[str, Any]) -> None:
    """Issue 10: loopback-only ports, Kafka not on every interface, no default Grafana
    password, no Prometheus lifecycle API."""
    services = compose["services"]
    for name, service in services.items():
        for spec in _published(service):
            assert spec.startswith(("127.0.0.1:", "${RGSYNC_PUBLISH_ADDRESS:-127.0.0.1}:")), (
                name,
                spec,
            )
    assert _published(services["kafka"]) == {"127.0.0.1:29092:29092"}
    assert "--web.enable-lifecycle" not in services["prometheus"]["command"]
    grafana = services["grafana"]
    assert grafana["profiles"] == ["grafana"]
    assert _env(grafana)["GF_SECURITY_ADMIN_PASSWORD"] == "${GRAFANA_ADMIN_PASSWORD:-}"
    assert '[ -n "$$GF_SECURITY_ADMIN_PASSWORD" ] || {' in grafana["entrypoint"][-1]
    # /ui/ and /tables/* stay off until the user sets a token: no default one.
    assert _env(services["worker"])["RGSYNC_ADMIN_TOKEN"] == "${RGSYNC_ADMIN_TOKEN:-}"


def test_compose_files_read_the_same_without_pyyaml(host_compose: dict[str, Any]) -> None:
    """The fallback parser reads both compose files as PyYAML does (where it is installed)."""
    pytest.importorskip("yaml")
    assert parse_yaml_subset(COMPOSE.read_text()) == load_yaml(COMPOSE)
    assert parse_yaml_subset(compose_text(HOST_COMPOSE)) == host_compose


def test_compose_every_service_but_grafana_has_a_healthcheck(
    compose: dict[str, Any], host_compose: dict[str, Any]
) -> None:
    """`compose up --wait` and depends_on conditions wait on them. Grafana (a profile, no
    image built or run here) is left without one rather than with an untested one."""
    services = compose["services"]
    for name, service in services.items():
        if name != "grafana":
            assert _healthcheck(service), f"{name} has no healthcheck"
    # The host variant moves ports: a check that names a port must follow it.
    host = host_compose["services"]
    kafka = _healthcheck(host["kafka"])
    assert "--bootstrap-server 127.0.0.1:${RGSYNC_COMPOSE_KAFKA_PORT:-19092}" in kafka
    prometheus = _healthcheck(host["prometheus"])
    listen = next(a for a in host["prometheus"]["command"] if a.startswith("--web.listen-address="))
    assert f"http://{listen.split('=', 1)[1]} " in f"{prometheus} "


def test_compose_kafka_scripts_in_healthchecks_have_their_absolute_path(
    compose: dict[str, Any], host_compose: dict[str, Any]
) -> None:
    """apache/kafka does not put /opt/kafka/bin on PATH (only ops/images/kafka does): a bare
    kafka-*.sh never runs there and Kafka never turns healthy."""
    dockerfile = (KAFKA_IMAGE / "Dockerfile").read_text()
    assert re.search(r"^COPY bin /opt/kafka/bin$", dockerfile, re.M)
    for path, doc in ((COMPOSE, compose), (HOST_COMPOSE, host_compose)):
        found = 0
        for name, service in doc["services"].items():
            for prefix, script in re.findall(r"(\S*?)(kafka-[a-z-]+\.sh)", _healthcheck(service)):
                found += 1
                assert prefix == "/opt/kafka/bin/", f"{path.name}: {name} runs {prefix}{script}"
                assert (KAFKA_IMAGE / "bin" / script).is_file(), f"ops/images/kafka lacks {script}"
        assert found, f"{path.name}: no Kafka healthcheck"


def test_compose_prometheus_healthcheck_uses_what_both_images_have(
    compose: dict[str, Any],
) -> None:
    """promtool ships in prom/prometheus and in Debian's prometheus package (the image of
    ops/images/prometheus); Debian's 2.42 has no `check ready`, and neither image has curl:
    a query, which Prometheus answers 503 until it is ready."""
    prom = compose["services"]["prometheus"]
    test = prom["healthcheck"]["test"]
    assert test[:4] == ["CMD", "promtool", "query", "instant"]
    assert test[4] == "http://127.0.0.1:9090" and "127.0.0.1:9090:9090" in _published(prom)
    dockerfile = (PROMETHEUS_IMAGE / "Dockerfile").read_text()
    assert re.search(r"apt-get install .*\bprometheus\b", dockerfile)


SITES_TARGET = "/etc/realgeeks-sync/sites.toml"


def test_compose_passes_an_optional_sites_file_to_the_worker_and_the_ingress(
    compose: dict[str, Any],
) -> None:
    """RGSYNC_SITES_FILE names a host file, mounted read-only; unset, the services get no
    RGSYNC_SITES_FILE and the mount falls back to the example (so `up` works without one)."""
    for name in ("worker", "ingress"):
        service = compose["services"][name]
        assert _env(service)["RGSYNC_SITES_FILE"] == f"${{RGSYNC_SITES_FILE:+{SITES_TARGET}}}"
        (mount,) = [
            v for v in service["volumes"] if isinstance(v, dict) and v["target"] == SITES_TARGET
        ]
        # Long syntax: a missing file is an error, where the short one makes a directory.
        assert mount == {
            "type": "bind",
            "source": "${RGSYNC_SITES_FILE:-./sites.example.toml}",
            "target": SITES_TARGET,
            "read_only": True,
        }, name
    assert "/sites.toml" in (ROOT / ".gitignore").read_text().splitlines()
    assert "sites.toml" in (ROOT / ".dockerignore").read_text().splitlines()


def test_sites_example_is_a_valid_sites_file() -> None:
    from realgeeks_sync.app.core.settings import Settings
    from realgeeks_sync.app.core.sites import load_sites

    settings = Settings.from_env(
        {"RGSYNC_REALGEEKS_SECRETS": "s", "RGSYNC_SITES_FILE": str(SITES_EXAMPLE)}
    )
    sites = load_sites(settings)
    assert sites.listed and sites.known()
    assert not any(s.dialer.enabled for s in sites.by_uuid.values())


def test_compose_gives_the_admin_token_to_the_worker_only(compose: dict[str, Any]) -> None:
    """The worker serves /ui/ and /tables/*; the ingress serves neither, so it has no use
    for the token."""
    services = compose["services"]
    assert _env(services["worker"])["RGSYNC_ADMIN_TOKEN"] == "${RGSYNC_ADMIN_TOKEN:-}"
    assert "RGSYNC_ADMIN_TOKEN" not in _env(services["ingress"])


def test_service_image_cache_key_covers_everything_the_dockerfile_copies() -> None:
    """ops/docker rebuilds the service image when its inputs' hash changes: every COPY
    source of ops/Dockerfile must be among them."""
    copied = set()
    for line in re.findall(r"^COPY (.+)$", DOCKERFILE.read_text(), re.M):
        for source in line.split()[:-1]:
            matches = [str(m.relative_to(ROOT)) for m in ROOT.glob(source)]
            copied.update(matches)
    function = re.search(
        r"^service_inputs\(\) \{\n.*?^\}\n", (ROOT / "ops" / "docker").read_text(), re.M | re.S
    )
    assert function, "ops/docker has no service_inputs()"
    inputs = subprocess.run(
        ["bash", "-c", f"{function.group(0)}\nservice_inputs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    assert copied <= set(inputs), sorted(copied - set(inputs))
    assert set(inputs) - copied == {"ops/Dockerfile", ".dockerignore"}


def test_dockerfile_builds_the_worker() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG BASE=python:3\.11-slim-bookworm$", text, re.M)
    assert re.search(r"^FROM \$\{BASE\}$", text, re.M)
    # The lock file (with hashes) when present, else pyproject's dependencies; then the
    # project itself without dependencies.
    assert "pip install --require-hashes -r requirements.lock" in text
    assert re.search(r"pip install --no-deps \.", text)
    assert "useradd --system --uid 10001" in text and "USER rgsync" in text
    assert 'CMD ["realgeeks-sync", "worker"]' in text
    assert "EXPOSE 6066" in text
    assert "/health" in text
    for path in re.findall(r"^COPY (\S+)", text, re.M):
        assert (ROOT / path).exists(), path
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "realgeeks-sync" in scripts


# ---------------------------------------------------------------------------------------------
# Prometheus config and alert rules


def test_prometheus_scrapes_the_worker_and_the_ingress_and_loads_the_alerts() -> None:
    config = load_yaml(PROMETHEUS_YML)
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "realgeeks-sync"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job["static_configs"][0]["targets"] == ["worker:6066", "ingress:6067"]


def alert_rules() -> list[dict[str, Any]]:
    doc = load_yaml(ALERTS_YML)
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_alerts_cover_the_runbook_and_use_only_exported_metrics() -> None:
    rules = {r["alert"]: r for r in alert_rules()}
    assert {
        "RealGeeksSignatureFailureSpike",
        "RealGeeksSyncErrorRateHigh",
        "RealGeeksDeadLetterRateHigh",
        "RealGeeksDeadLettersGrowing",
        "RealGeeksSyncLagHigh",
        "RealGeeksNoWebhooks",
    } <= set(rules)
    for name, rule in rules.items():
        assert_exported(rule["expr"], name)
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"], name
    lag = rules["RealGeeksSyncLagHigh"]
    assert "realgeeks_sync_lag_seconds" in lag["expr"] and "> 300" in lag["expr"]
    assert lag["for"] == "5m"
    assert "realgeeks_signature_failures_total" in rules["RealGeeksSignatureFailureSpike"]["expr"]
    assert "realgeeks_sync_errors_total" in rules["RealGeeksSyncErrorRateHigh"]["expr"]
    assert "realgeeks_deadletters_total" in rules["RealGeeksDeadLettersGrowing"]["expr"]
    assert "realgeeks_last_webhook_timestamp_seconds" in rules["RealGeeksNoWebhooks"]["expr"]


# ---------------------------------------------------------------------------------------------
# Grafana


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def test_dashboard_panels_use_only_exported_metrics(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "realgeeks-sync"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    datasource = load_yaml(DATASOURCE_YML)["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        for target in panel["targets"]:
            assert_exported(target["expr"], f"panel {panel['title']!r}")


def test_dashboard_shows_what_operators_need(dashboard: dict[str, Any]) -> None:
    used = " ".join(expr for _, expr in dashboard_exprs(dashboard))
    for needle in (
        "rate(realgeeks_webhooks_received_total",
        "sum by (error_type) (rate(realgeeks_sync_errors_total",
        "realgeeks_sync_lag_seconds",
        "realgeeks_leads_created_total",
        "realgeeks_leads_merged_total",
        "realgeeks_deadletters_total",
        # what /ui/ shows: calls, contact rate, tours, opt-outs, speed to lead, pauses
        "realgeeks_calls_started_total",
        'realgeeks_calls_ended_total{outcome="completed"}',
        "realgeeks_tours_requested_total",
        "realgeeks_optouts_total",
        "realgeeks_speed_to_lead_seconds_bucket",
        "realgeeks_dialer_paused",
    ):
        assert needle in used, needle
    for histogram in (
        "realgeeks_api_request_duration_seconds_bucket",
        "realgeeks_webhook_ingest_seconds_bucket",
    ):
        assert any(
            expr.startswith("histogram_quantile(") and histogram in expr
            for _, expr in dashboard_exprs(dashboard)
        ), histogram


# ---------------------------------------------------------------------------------------------
# promtool


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.skip("promtool is not installed (ops/prometheus install provides it)")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def test_promtool_checks_config_and_rules() -> None:
    config = promtool("check", "config", str(PROMETHEUS_YML))
    assert config.returncode == 0, config.stdout + config.stderr
    rules = promtool("check", "rules", str(ALERTS_YML))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert f"{len(alert_rules())} rules found" in rules.stdout


def test_promtool_parses_every_dashboard_expression(
    dashboard: dict[str, Any], tmp_path: Path
) -> None:
    records = [
        {"record": f"dashboard:expr_{i}", "expr": expr.replace("$__rate_interval", "1m")}
        for i, (_, expr) in enumerate(dashboard_exprs(dashboard))
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": records}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


ALERT_TESTS = {
    "rule_files": [str(ALERTS_YML)],
    "evaluation_interval": "1m",
    "tests": [
        {
            "interval": "1m",
            "input_series": [
                {"series": "realgeeks_sync_lag_seconds", "values": "0 0 400x10"},
                {
                    "series": 'realgeeks_signature_failures_total{source="realgeeks"}',
                    "values": "0+10x10",
                },
                {
                    "series": 'realgeeks_last_webhook_timestamp_seconds{source="realgeeks"}',
                    "values": "0x130",
                },
            ],
            "alert_rule_test": [
                {"eval_time": "4m", "alertname": "RealGeeksSyncLagHigh", "exp_alerts": []},
                {
                    "eval_time": "9m",
                    "alertname": "RealGeeksSyncLagHigh",
                    "exp_alerts": [{"exp_labels": {"severity": "critical"}}],
                },
                {
                    "eval_time": "8m",
                    "alertname": "RealGeeksSignatureFailureSpike",
                    "exp_alerts": [{"exp_labels": {"severity": "warning", "source": "realgeeks"}}],
                },
                {"eval_time": "30m", "alertname": "RealGeeksNoWebhooks", "exp_alerts": []},
                {
                    "eval_time": "70m",
                    "alertname": "RealGeeksNoWebhooks",
                    "exp_alerts": [{"exp_labels": {"severity": "warning"}}],
                },
            ],
        }
    ],
}


def test_promtool_alert_unit_tests(tmp_path: Path) -> None:
    # promtool compares annotations too: expect each rule's own, templates rendered.
    rendered = {
        "{{ $labels.source }}": "realgeeks",
        "{{ $value | humanizeDuration }}": "6m 40s",
    }
    rules = {r["alert"]: r for r in alert_rules()}
    spec = json.loads(json.dumps(ALERT_TESTS))
    for case in spec["tests"][0]["alert_rule_test"]:
        for alert in case["exp_alerts"]:
            annotations = dict(rules[case["alertname"]]["annotations"])
            for template, value in rendered.items():
                annotations = {k: v.replace(template, value) for k, v in annotations.items()}
            alert["exp_annotations"] = annotations
    path = tmp_path / "alerts_test.yml"
    path.write_text(json.dumps(spec))
    result = promtool("test", "rules", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
