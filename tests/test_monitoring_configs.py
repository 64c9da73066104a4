"""The docker deployment's Prometheus and Grafana files, checked against the code they watch.

Docker is absent here, so nothing runs in containers: the tests parse every file, follow the
compose file's mounts to files that exist, and check every metric and label a dashboard query
names against the page the local server really renders, so renaming a metric, a label, a
scrape job or the metrics path breaks a test instead of a dashboard.
"""
import json
import pathlib
import re
from typing import Dict, Iterator, List, Set, Tuple

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from ml.serving.config_protos import DEFAULT_PROMETHEUS_PATH, read_monitoring_config
from ml.serving.metrics import ServingMetrics

SERVING_CONFIG = pathlib.Path(__file__).resolve().parents[1] / "serving_config"
GRAFANA = SERVING_CONFIG / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
# Series Prometheus adds to every scrape itself, with the labels it gives them.
SCRAPE_SERIES = {"up": {"job", "instance"}}
TARGET_LABELS = {"job", "instance"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "offset", "bool"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"' r"|'(?:[^'\\]|\\.)*'")
_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SELECTOR = re.compile(rf"(?<![\w:.$])({_NAME})\s*\{{([^}}]*)\}}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def _load_yaml(name: str):
    return yaml.safe_load((SERVING_CONFIG / name).read_text(encoding="utf-8"))


def _compose() -> dict:
    return _load_yaml("docker-compose.yml")


def _dashboard(path: pathlib.Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _mounts(service: dict) -> Dict[str, Tuple[str, str]]:
    """Container path -> (source, mode) of a service's short-syntax volumes."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, mode = re.fullmatch(r"(.+?):(/[^:]*)(?::(r[ow]))?", volume).groups()
        mounts[target] = (source, mode or "rw")
    return mounts


def _flags(service: dict) -> Dict[str, str]:
    return dict(flag.lstrip("-").split("=", 1) for flag in service["command"])


def _scraped_series(page: str) -> Dict[str, Set[str]]:
    """Series name -> label names, as Prometheus stores them from one metrics page.

    prometheus_client's parser reports a counter's samples as `<name>_total` even when the page
    writes them without the suffix (as TF Serving and the local server do), so a counter sample
    is stored under the name the page actually wrote.
    """
    written = {re.match(r"[^{\s]+", line).group() for line in page.splitlines()
               if line and not line.startswith("#")}
    series: Dict[str, Set[str]] = {}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            name = sample.name
            if family.type == "counter" and name not in written:
                name = family.name
            series.setdefault(name, set()).update(sample.labels)
    assert set(series) == written, "every series on the page belongs to a parsed family"
    return series


@pytest.fixture(scope="module")
def server_series() -> Dict[str, Set[str]]:
    """What the local server renders after one request, one batch and one request-log write."""
    metrics = ServingMetrics(["risk_model"])
    metrics.record_request("risk_model", 1, "predict", "rest", "OK", 0.004)
    metrics.record_request("risk_model", 1, "predict", "grpc", "INVALID_ARGUMENT", 0.001)
    metrics.record_batch("risk_model", 1, rows=3, padded_rows=4)
    metrics.record_log_records("risk_model", "written", 2)
    return {**_scraped_series(metrics.render()), **SCRAPE_SERIES}


def _panels(dashboard: dict) -> Iterator[dict]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _queries(dashboard: dict) -> Iterator[Tuple[str, dict]]:
    """(panel title, target) of every query on the dashboard."""
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            yield panel["title"], target


def _without_strings(expr: str) -> str:
    return _STRING.sub('""', expr)


def metric_names(expr: str) -> Set[str]:
    """The metric names a PromQL expression selects (bare names and {__name__="..."})."""
    names = set(re.findall(r'__name__\s*=\s*"([^"]+)"', expr))
    bare = _GROUPING.sub(" ", _without_strings(expr))
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", bare)
    for match in re.finditer(rf"(?<![\w:.$])({_NAME})(\s*\()?", bare):
        if not match.group(2) and match.group(1) not in PROMQL_WORDS:
            names.add(match.group(1))
    return names


def selector_labels(expr: str) -> List[Tuple[str, Set[str]]]:
    """(metric name, label names its matchers use) of every `name{...}` selector."""
    return [(name, set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers)) - {"__name__"})
            for name, matchers in _SELECTOR.findall(_without_strings(expr))]


def grouping_labels(expr: str) -> Set[str]:
    return {label.strip() for group in _GROUPING.findall(expr) for label in group.split(",")
            if label.strip()}


def test_promql_helpers_find_names_and_labels():
    expr = ('histogram_quantile(0.99, sum by (le, model_name) (rate(:a:b_bucket{model_name=~"$m", '
            'status!="x{y}"}[$__rate_interval]))) / 1000 or on (job) up + {__name__=":c:d"}')
    assert metric_names(expr) == {":a:b_bucket", "up", ":c:d"}
    assert selector_labels(expr) == [(":a:b_bucket", {"model_name", "status"})]
    assert grouping_labels(expr) == {"le", "model_name", "job"}


def test_every_file_parses_and_the_dashboard_has_its_panels():
    prometheus = _load_yaml("prometheus.yml")
    assert prometheus["scrape_configs"]
    for provisioning in sorted((GRAFANA / "provisioning").rglob("*.yml")):
        assert yaml.safe_load(provisioning.read_text(encoding="utf-8"))["apiVersion"] == 1
    assert [path.name for path in DASHBOARDS] == ["serving-health.json"]
    dashboard = _dashboard(DASHBOARDS[0])
    titles = [panel["title"] for panel in _panels(dashboard)]
    for wanted in ("Up", "Requests per second", "Latency p50 / p99", "Error rate",
                   "Batch sizes p50 / p99", "Request-log records per second"):
        assert wanted in titles
    ids = [panel["id"] for panel in _panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    assert dashboard["uid"] and len(dashboard["uid"]) <= 40


def test_every_query_names_only_series_the_local_server_renders(server_series):
    for dashboard_path in DASHBOARDS:
        dashboard = _dashboard(dashboard_path)
        for title, target in _queries(dashboard):
            expr = target["expr"]
            names = metric_names(expr)
            assert names, f"{title}: no metric in {expr!r}"
            unknown = names - set(server_series)
            assert not unknown, f"{title}: {sorted(unknown)} not on the server's page"
            available = set().union(*(server_series[name] for name in names)) | TARGET_LABELS
            for name, labels in selector_labels(expr):
                assert labels <= server_series[name] | TARGET_LABELS, (
                    f"{title}: {name} has no label {sorted(labels - server_series[name])}")
            legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
            missing = (grouping_labels(expr) | legend) - available
            assert not missing, f"{title}: labels {sorted(missing)} on none of {sorted(names)}"


def test_model_variable_reads_a_label_the_server_renders(server_series):
    dashboard = _dashboard(DASHBOARDS[0])
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    query = variables["model"]["query"]
    query = query["query"] if isinstance(query, dict) else query
    metric, label = re.fullmatch(rf"label_values\(({_NAME})\s*,\s*(\w+)\)", query).groups()
    assert label in server_series[metric]
    filtered = [title for title, target in _queries(dashboard) if "$model" in target["expr"]]
    assert len(filtered) >= 5, "the model variable filters the per-model panels"


def test_latency_panel_converts_microseconds_to_milliseconds():
    metrics = ServingMetrics(["risk_model"])
    metrics.record_request("risk_model", 1, "predict", "rest", "OK", 0.004)
    recorded = metrics.registry.get_sample_value(
        ":tensorflow:serving:request_latency_sum",
        {"model_name": "risk_model", "model_version": "1", "API": "predict", "entrypoint": "rest"})
    assert recorded == pytest.approx(4000), "the server records latency in microseconds"
    latency = next(panel for panel in _panels(_dashboard(DASHBOARDS[0]))
                   if panel["title"] == "Latency p50 / p99")
    assert latency["fieldConfig"]["defaults"]["unit"] == "ms"
    quantiles = set()
    for target in latency["targets"]:
        assert re.search(r"\)\s*/\s*1000\s*$", target["expr"]), target["expr"]
        quantiles.add(float(re.match(r"histogram_quantile\(([\d.]+)", target["expr"]).group(1)))
    assert quantiles == {0.5, 0.99}


def test_up_panel_watches_exactly_the_scrape_jobs():
    jobs = {job["job_name"] for job in _load_yaml("prometheus.yml")["scrape_configs"]}
    assert jobs == {"tensorflow-serving", "etrm-serve"}
    up = next(panel for panel in _panels(_dashboard(DASHBOARDS[0])) if panel["title"] == "Up")
    (target,) = up["targets"]
    watched = re.fullmatch(r'up\{job=~"([^"]+)"\}', target["expr"]).group(1).split("|")
    assert set(watched) == jobs


def test_scrape_path_is_the_path_the_servers_serve():
    served = read_monitoring_config(SERVING_CONFIG / "monitoring.config").prometheus_config
    assert served.enable
    assert served.path == DEFAULT_PROMETHEUS_PATH
    for job in _load_yaml("prometheus.yml")["scrape_configs"]:
        assert job["metrics_path"] == served.path, job["job_name"]


def test_scrape_targets_reach_the_servers():
    compose = _compose()
    serving = compose["services"]["tensorflow-serving"]
    rest_port = _flags(serving)["rest_api_port"]
    targets = {job["job_name"]: [target for group in job["static_configs"]
                                 for target in group["targets"]]
               for job in _load_yaml("prometheus.yml")["scrape_configs"]}
    assert targets["tensorflow-serving"] == [f"tensorflow-serving:{rest_port}"]
    assert targets["etrm-serve"] == ["host.docker.internal:8501"]
    assert "host.docker.internal:host-gateway" in compose["services"]["prometheus"]["extra_hosts"]


def test_compose_mounts_existing_files_read_only_where_the_services_read_them():
    compose = _compose()
    services = compose["services"]
    named_volumes = set(compose.get("volumes") or {})
    for name in ("prometheus", "grafana"):
        for target, (source, mode) in _mounts(services[name]).items():
            if source in named_volumes:
                continue
            assert (SERVING_CONFIG / source).exists(), f"{name}: {source} is missing"
            assert mode == "ro", f"{name}: {source} is mounted {mode}"
    prometheus_mounts = _mounts(services["prometheus"])
    prometheus_flags = _flags(services["prometheus"])
    assert prometheus_mounts[prometheus_flags["config.file"]] == ("./prometheus.yml", "ro")
    assert prometheus_mounts[prometheus_flags["storage.tsdb.path"]][0] in named_volumes

    grafana_mounts = _mounts(services["grafana"])
    provisioning = pathlib.Path(grafana_mounts["/etc/grafana/provisioning"][0])
    assert (SERVING_CONFIG / provisioning).resolve() == (GRAFANA / "provisioning").resolve()
    (provider,) = yaml.safe_load(
        (GRAFANA / "provisioning/dashboards/etrm.yml").read_text())["providers"]
    dashboards_source = grafana_mounts[provider["options"]["path"]][0]
    assert (SERVING_CONFIG / dashboards_source).resolve() == (GRAFANA / "dashboards").resolve()
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    relative = pathlib.PurePosixPath(home).relative_to(provider["options"]["path"])
    assert (GRAFANA / "dashboards" / relative).is_file()
    assert grafana_mounts["/var/lib/grafana"][0] in named_volumes


def test_compose_pins_images_publishes_loopback_only_and_keeps_the_password_out():
    compose = _compose()
    for name, service in compose["services"].items():
        image, _, tag = service["image"].rpartition(":")
        assert image and re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {service['image']}"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    for name in ("prometheus", "grafana"):
        assert compose["services"][name]["profiles"] == ["monitoring"]
    grafana = compose["services"]["grafana"]
    password = grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD(:-)?\}", password), password
    assert "GF_SECURITY_ADMIN_PASSWORD" in " ".join(grafana["entrypoint"]), (
        "Grafana refuses to start with an empty password instead of falling back to admin/admin")
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"


def test_dashboard_datasource_is_the_provisioned_prometheus():
    (datasource,) = yaml.safe_load(
        (GRAFANA / "provisioning/datasources/prometheus.yml").read_text())["datasources"]
    assert datasource["type"] == "prometheus"
    host, port = re.fullmatch(r"http://([\w-]+):(\d+)", datasource["url"]).groups()
    published = _compose()["services"][host]["ports"]
    assert any(entry.endswith(f":{port}") for entry in published), published
    for dashboard_path in DASHBOARDS:
        dashboard = _dashboard(dashboard_path)
        uses = [panel.get("datasource") for panel in _panels(dashboard)]
        uses += [target.get("datasource") for _, target in _queries(dashboard)]
        uses += [variable.get("datasource") for variable in dashboard["templating"]["list"]]
        assert uses and all(use == {"type": "prometheus", "uid": datasource["uid"]}
                            for use in uses), uses
