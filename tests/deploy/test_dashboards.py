"""The Grafana dashboard (deploy/grafana) and its provisioning by docker-compose.yml.

Every PromQL expression of the dashboard names only series the workers and the gateway export:
the series are read from their own registries (`resontinex.app.metrics.REGISTRY`, and
`GATEWAY_REGISTRY` of the gateway's process), not from a list kept here, and the expressions
are read by a small PromQL tokenizer (metric names, label matchers, grouping labels), itself
checked on known expressions and on wrong ones. The
dashboard is then checked as Grafana's file provisioning loads it, and docker-compose.yml as
mounting the provisioning files that exist in the repository.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.samples import Sample

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARD_FILE = GRAFANA_DIR / "dashboards" / "resontinex.json"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
RULES_FILE = ROOT / "deploy" / "prometheus" / "rules.yml"

GRAFANA_PROVISIONING = "/etc/grafana/provisioning"  # Grafana's default paths.provisioning
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRAFANA_BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range", "__interval_ms", "__range_s"}
# Panel types Grafana ships: the dashboard needs no plugin installed.
BUILTIN_PANELS = {"row", "timeseries", "stat", "gauge", "bargauge", "piechart", "state-timeline", "table",
                  "heatmap", "text", "status-history", "histogram"}
# Series Prometheus itself writes for every scrape target.
PROMETHEUS_SERIES = ("up", "scrape_duration_seconds", "scrape_samples_scraped")

# -- PromQL ---------------------------------------------------------------------------

AGGREGATIONS = frozenset({"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                          "bottomk", "topk", "quantile", "limitk", "limit_ratio"})
GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
KEYWORDS = frozenset({"and", "or", "unless", "offset", "bool", "atan2", "inf", "nan"})
FUNCTIONS = frozenset("""
    abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes clamp clamp_max
    clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year days_in_month deg delta deriv
    double_exponential_smoothing end exp floor histogram_avg histogram_count histogram_fraction
    histogram_quantile histogram_stddev histogram_stdvar histogram_sum hour idelta increase info irate
    label_join label_replace last_over_time ln log10 log2 mad_over_time max_over_time min_over_time minute
    month pi predict_linear present_over_time quantile_over_time rad rate resets round scalar sgn sin sinh
    sort sort_by_label sort_by_label_desc sort_desc sqrt start stddev_over_time stdvar_over_time
    sum_over_time tan tanh time timestamp vector year
""".split())
MATCH_OPS = frozenset({"=", "!=", "=~", "!~"})

_TOKEN = re.compile(r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<variable>\$\{[^}]*\}|\$\w+|\[\[\w+(?::\w+)?\]\])
  | (?P<number>(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)[a-zA-Z]*)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=,(){}\[\]@:])
""", re.X)
_CLOSING = {"(": ")", "[": "]", "{": "}"}


class PromQLError(ValueError):
    """An expression the tokenizer cannot read, or a function PromQL does not have."""


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class Selector:
    """A vector selector: its metric name and the label names of its matchers."""

    metric: str
    labels: tuple[str, ...] = ()


def tokenize(expr: str) -> list[Token]:
    """PromQL tokens, blanks and comments left out; Grafana variables are tokens of their own.

    >>> [t.text for t in tokenize('rate(x{a=~"$t"}[$__rate_interval])')]
    ['rate', '(', 'x', '{', 'a', '=~', '"$t"', '}', '[', '$__rate_interval', ']', ')']
    """
    tokens, pos = [], 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            raise PromQLError(f"cannot read {expr[pos:pos + 20]!r} in {expr!r}")
        if match.lastgroup != "space":
            tokens.append(Token(match.lastgroup or "", match.group()))
        pos = match.end()
    return tokens


def _closing(tokens: list[Token], start: int) -> int:
    """The index of the bracket that closes the one at `start`."""
    opening = tokens[start].text
    depth = 0
    for i in range(start, len(tokens)):
        if tokens[i].text == opening:
            depth += 1
        elif tokens[i].text == _CLOSING[opening]:
            depth -= 1
            if depth == 0:
                return i
    raise PromQLError(f"unclosed {opening!r}")


def _check_balanced(tokens: list[Token]) -> None:
    stack: list[str] = []
    for token in tokens:
        if token.text in _CLOSING:
            stack.append(_CLOSING[token.text])
        elif token.text in _CLOSING.values():
            if not stack or stack.pop() != token.text:
                raise PromQLError(f"unbalanced {token.text!r}")
    if stack:
        raise PromQLError(f"unclosed bracket: {stack[-1]!r} missing")


def _matcher_labels(inner: list[Token]) -> tuple[str, ...]:
    """The label names of `label op "value", ...` (the inside of a selector's braces)."""
    labels, i = [], 0
    while i < len(inner):
        part = inner[i:i + 3]
        if [t.kind for t in part] != ["ident", "op", "string"] or part[1].text not in MATCH_OPS:
            raise PromQLError(f"not a label matcher: {' '.join(t.text for t in part)}")
        labels.append(part[0].text)
        i += 3
        if i < len(inner):
            if inner[i].text != ",":
                raise PromQLError(f"expected ',' between matchers, got {inner[i].text!r}")
            i += 1
    return tuple(labels)


def selectors(expr: str) -> list[Selector]:
    """Every vector selector of `expr`: identifiers that are not functions, aggregations,
    keywords or the label lists of by/without/on/ignoring/group_left/group_right; ranges and
    subqueries (`[5m]`, `[1h:1m]`) hold durations only.

    >>> selectors('histogram_quantile(0.9, sum by (le) (rate(x_bucket{a="b"}[5m]))) / y offset 1h')
    [Selector(metric='x_bucket', labels=('a',)), Selector(metric='y', labels=())]
    """
    tokens, found, i = tokenize(expr), [], 0
    _check_balanced(tokens)
    while i < len(tokens):
        token = tokens[i]
        following = tokens[i + 1].text if i + 1 < len(tokens) else ""
        if token.text == "[":
            i = _closing(tokens, i) + 1
        elif token.kind == "ident" and token.text in GROUPING:
            i = _closing(tokens, i + 1) + 1 if following == "(" else i + 1
        elif token.kind == "ident" and token.text in AGGREGATIONS | KEYWORDS:
            i += 1
        elif token.kind == "ident" and following == "(":
            if token.text not in FUNCTIONS:
                raise PromQLError(f"{token.text}() is no PromQL function")
            i += 1
        elif token.text == "{":
            raise PromQLError("a selector without a metric name")
        elif token.kind == "ident":
            labels: tuple[str, ...] = ()
            end = i
            if following == "{":
                end = _closing(tokens, i + 1)
                labels = _matcher_labels(tokens[i + 2:end])
            found.append(Selector(token.text, labels))
            i = end + 1
        else:
            i += 1
    return found


def grouping_labels(expr: str) -> set[str]:
    """The label names listed after by/without/on/ignoring/group_left/group_right.

    >>> sorted(grouping_labels("sum by (le, agent) (x) / ignoring (agent) group_left sum(x)"))
    ['agent', 'le']
    """
    tokens, labels = tokenize(expr), set()
    for i, token in enumerate(tokens[:-1]):
        if token.kind == "ident" and token.text in GROUPING and tokens[i + 1].text == "(":
            labels |= {t.text for t in tokens[i + 2:_closing(tokens, i + 1)] if t.kind == "ident"}
    return labels


def problems(expr: str, series: Mapping[str, frozenset[str]]) -> list[str]:
    """What in `expr` matches nothing `series` (name -> label names) holds: unknown metrics,
    matchers on labels the metric lacks, groupings on labels no selected series has."""
    found: list[str] = []
    known: set[str] = set()
    for selector in selectors(expr):
        if selector.metric not in series:
            found.append(f"{selector.metric}: not exported")
            continue
        known |= series[selector.metric]
        found += [f"{selector.metric}{{{label}}}: no such label" for label in selector.labels
                  if label not in series[selector.metric]]
    found += [f"by/on ({label}): no selected series has it" for label in sorted(grouping_labels(expr) - known)]
    return found


# -- What the workers export ----------------------------------------------------------

def _probe_samples(wrapper: MetricWrapperBase) -> list[Sample]:
    """The samples a labelled metric exports once it has a child: a metric of the same class,
    name and label names in a throwaway registry, with one child (the real one is left alone)."""
    probe = type(wrapper)(wrapper._name, wrapper._documentation, wrapper._labelnames, registry=CollectorRegistry())
    probe.labels(*wrapper._labelnames)
    (family,) = probe.collect()
    return list(family.samples)


def _registries() -> dict[str, CollectorRegistry]:
    """The registries a /metrics page exports: the workers' (core, trajectory) and the gateway's,
    a process of its own with a registry of its own."""
    from resontinex.app import metrics

    return {"workers": metrics.REGISTRY, "gateway": metrics.GATEWAY_REGISTRY}


def exported_series(registries: Mapping[str, CollectorRegistry] | None = None) -> dict[str, frozenset[str]]:
    """Every sample name a /metrics page can hold (`_total`, `_created`, `_bucket`, `_sum`,
    `_count` included), with its label names (`le` on buckets): the families of app.metrics'
    registries (all of them unless named), a labelled family without children yet through
    `_probe_samples`."""
    from resontinex.app import metrics

    wrappers = {obj._name: obj for obj in vars(metrics).values() if isinstance(obj, MetricWrapperBase)}
    out: dict[str, set[str]] = {}
    for registry in (registries or _registries()).values():
        for family in registry.collect():
            samples = family.samples or _probe_samples(wrappers[family.name])
            for sample in samples:
                out.setdefault(sample.name, set()).update(sample.labels)
    return {name: frozenset(labels) for name, labels in out.items()}


def target_labels() -> frozenset[str]:
    """Labels Prometheus puts on every scraped series: job, instance, and what
    prometheus.yml adds (static target labels, relabelling targets)."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    labels = {"job", "instance"}
    for job in config["scrape_configs"]:
        for group in job.get("static_configs", []):
            labels |= set(group.get("labels", {}))
        labels |= {step["target_label"] for step in job.get("relabel_configs", []) if "target_label" in step}
    return frozenset(label for label in labels if not label.startswith("__"))


@pytest.fixture(scope="module")
def scraped() -> dict[str, frozenset[str]]:
    """The series Prometheus holds from the workers: theirs with the target labels, and its own."""
    extra = target_labels()
    series = {name: labels | extra for name, labels in exported_series().items()}
    return {**series, **dict.fromkeys(PROMETHEUS_SERIES, extra)}


# -- The dashboard --------------------------------------------------------------------

@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    return loaded


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _exprs(dashboard: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(panel title, legend format, expression) of every target."""
    return [(panel["title"], target.get("legendFormat", ""), target["expr"])
            for panel in _panels(dashboard) for target in panel.get("targets", [])]


def _variable_queries(dashboard: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(variable, metric, label) of every `label_values(metric, label)` query variable."""
    out = []
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            match = re.fullmatch(r"label_values\((\w+)(?:\{[^}]*\})?,\s*(\w+)\)", query)
            assert match, f"${variable['name']}: {query!r} is not label_values(metric, label)"
            if isinstance(variable["query"], dict):  # the query editor's fields say the same
                assert variable["query"].get("metric", match[1]) == match[1]
                assert variable["query"].get("label", match[2]) == match[2]
            out.append((variable["name"], match[1], match[2]))
    return out


def test_the_exported_series_are_read_from_the_workers_registry() -> None:
    """Suffixes as prometheus_client writes them, labels as app.metrics declares them."""
    series = exported_series()
    assert series["trust_gate_decisions_total"] == {"verb"}  # a counter with no child yet
    assert "trust_gate_decisions_created" in series and "trust_gate_decisions" not in series
    assert series["resontinex_batch_seconds_bucket"] == {"agent", "le"}
    assert series["resontinex_batch_seconds_count"] == {"agent"}
    assert series["trust_gate_score_bucket"] == {"le"}  # a BatchHistogram, collected directly
    assert series["resontinex_partitions_owned"] == frozenset()
    assert series["resontinex_dead_letters_total"] == {"topic", "code"}


def test_the_gateways_registry_is_read_too() -> None:
    """The gateway exports its own registry, apart from the workers': both are checked, and
    neither holds a name of the other (one exposition name, one meaning)."""
    registries = _registries()
    workers, gateway = (exported_series({name: registries[name]}) for name in ("workers", "gateway"))
    assert gateway["resontinex_gateway_requests_total"] == {"route", "status"}  # no child yet
    assert gateway["resontinex_gateway_request_seconds_bucket"] == {"route", "le"}
    assert gateway["resontinex_gateway_request_seconds_count"] == {"route"}
    assert gateway["resontinex_gateway_decisions_kept"] == frozenset()
    assert not set(workers) & set(gateway)
    assert exported_series() == {**workers, **gateway}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('sum by (verb) (rate(trust_gate_decisions_total[$__rate_interval]))', []),
        ("histogram_quantile(0.99, sum by (le) (rate(trust_gate_evaluation_seconds_bucket[5m])))", []),
        ("rate(resontinex_decisions_total[5m])", ["resontinex_decisions_total: not exported"]),
        ("rate(trust_gate_decisions[5m])", ["trust_gate_decisions: not exported"]),  # a counter without _total
        ("sum(rate(trust_gate_score_bucket_total[5m]))", ["trust_gate_score_bucket_total: not exported"]),
        ('trust_gate_decisions_total{verdict="abort"}', ["trust_gate_decisions_total{verdict}: no such label"]),
        ('rate(resontinex_batch_seconds_sum{le="1"}[5m])', ["resontinex_batch_seconds_sum{le}: no such label"]),
        ("sum by (verbs) (rate(trust_gate_decisions_total[5m]))", ["by/on (verbs): no selected series has it"]),
        ('max by (instance) (resontinex_circuit_open{job="resontinex-core"})', []),  # target labels
    ],
)
def test_problems_finds_wrong_names_and_labels(scraped: dict[str, frozenset[str]], expr: str,
                                               expected: list[str]) -> None:
    assert problems(expr, scraped) == expected


@pytest.mark.parametrize(
    "expr", ["rat(trust_gate_decisions_total[5m])", 'trust_gate_decisions_total{verb="a" tier="b"}',
             "sum(rate(trust_gate_decisions_total[5m])", '{__name__="trust_gate_decisions_total"}', "x ? y"],
)
def test_the_tokenizer_refuses_what_it_cannot_read(expr: str) -> None:
    with pytest.raises(PromQLError):
        selectors(expr)


def test_the_helper_accepts_every_alert_rule(scraped: dict[str, frozenset[str]]) -> None:
    """The alert rules are checked against the code by test_deploy_files.py: the tokenizer reads
    their offset, unless on (), or, abs(...) without a false alarm."""
    groups = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))["groups"]
    exprs = {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}
    assert {alert: problems(expr, scraped) for alert, expr in exprs.items()} == dict.fromkeys(exprs, [])
    assert sum(len(selectors(expr)) for expr in exprs.values()) > len(exprs)


# What Grafana puts in for its variables before a query reaches Prometheus (a sample of each).
VARIABLE_SAMPLES = {"__rate_interval": "1m", "__interval": "15s", "__range": "3h", "tenant": ".*"}


def _as_sent(expr: str) -> str:
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", lambda m: VARIABLE_SAMPLES[m[1] or m[2]], expr)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="needs promtool (apt-get install prometheus)")
def test_prometheus_parses_every_dashboard_expression(dashboard: dict[str, Any], tmp_path: Path) -> None:
    """Prometheus' own parser on every expression (variables filled in), as recording rules."""
    exprs = [_as_sent(expr) for _, _, expr in _exprs(dashboard)]
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:expr_{i}", "expr": expr}
                                                        for i, expr in enumerate(exprs)]}]}
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_every_dashboard_expression_uses_only_exported_series(dashboard: dict[str, Any],
                                                              scraped: dict[str, frozenset[str]]) -> None:
    exprs = _exprs(dashboard)
    assert len(exprs) >= 40
    assert {f"{title}: {expr}": problems(expr, scraped) for title, _, expr in exprs} == {
        f"{title}: {expr}": [] for title, _, expr in exprs}
    counters = {name for name in scraped if name.endswith("_total")}
    for title, _, expr in exprs:  # a counter is read through rate()/increase(), never as its raw total
        for selector in selectors(expr):
            if selector.metric in counters:
                assert re.search(rf"\b(rate|increase|irate)\(\s*{selector.metric}\b", expr), f"{title}: {expr}"


def test_the_dashboard_covers_every_area_of_the_issue(dashboard: dict[str, Any]) -> None:
    used = {selector.metric for _, _, expr in _exprs(dashboard) for selector in selectors(expr)}
    areas = {
        "decisions and verbs": "trust_gate_decisions_total",
        "trust tiers": "trust_gate_tiers_total",
        "alerts": "resontinex_alerts_total",
        "budget utilization": "resontinex_budget_utilization",
        "budget status": "resontinex_budget_status",
        "router Q-values": "resontinex_router_q_value",
        "arm shares": "resontinex_router_reward_count",
        "trajectory": "resontinex_trajectory_tokens_total",
        "coordination runs": "resontinex_coordination_runs_total",
        "coordination gamma": "resontinex_coordination_gamma_bucket",
        "coordination cost": "resontinex_coordination_tokens_total",
        "coordination breaker": "resontinex_coordination_breaker_state",
        "enhancement canaries": "resontinex_enhancement_canary_judgements_total",
        "dead letters": "resontinex_dead_letters_total",
        "lag": "resontinex_decision_latency_seconds_bucket",
        "gateway requests": "resontinex_gateway_requests_total",
        "gateway latency": "resontinex_gateway_request_seconds_bucket",
        "gateway decisions kept": "resontinex_gateway_decisions_kept",
    }
    assert {area: metric for area, metric in areas.items() if metric not in used} == {}


def _row(dashboard: dict[str, Any], title: str) -> list[dict[str, Any]]:
    """The panels of the row whose title starts with `title`: those after it up to the next row."""
    panels = dashboard["panels"]
    (start,) = (i for i, panel in enumerate(panels) if panel["type"] == "row" and panel["title"].startswith(title))
    inside = list(panels[start].get("panels", []))  # a collapsed row holds its panels
    for panel in panels[start + 1:]:
        if panel["type"] == "row":
            break
        inside.append(panel)
    return inside


def test_the_gateway_row(dashboard: dict[str, Any]) -> None:
    """Requests/s by route and status, p50 and p99 by route from the histogram's buckets, the
    4xx and 5xx shares, decisions kept: over API routes only (probes and scrapes answer every few
    seconds, and /health answers 503 until the gateway is ready, which is no caller's error)."""
    exprs = {(panel["title"], target["legendFormat"]): " ".join(target["expr"].split())
             for panel in _row(dashboard, "Gateway") for target in panel["targets"]}
    requests = [expr for expr in exprs.values() if "resontinex_gateway_requests_total" in expr]
    rate = "rate(resontinex_gateway_requests_total{"
    assert any(expr.startswith("sum by (route, status) (" + rate) for expr in requests), requests
    for quantile in ("0.5", "0.99"):
        assert sum(expr.startswith(f"histogram_quantile({quantile}, sum by (le, route) "
                                   "(rate(resontinex_gateway_request_seconds_bucket{") for expr in exprs.values()) == 1
    for klass in ("4..", "5.."):
        (ratio,) = (expr for expr in requests if f'status=~"{klass}"' in expr)
        numerator, denominator = ratio.split(" / ")
        assert numerator.replace(f',status=~"{klass}"', "") == denominator  # the same requests, all statuses
    assert "max by (instance) (resontinex_gateway_decisions_kept)" in exprs.values()
    api_only = 'route!~"health|live|metrics"'
    for expr in requests + [expr for expr in exprs.values() if "request_seconds" in expr]:
        assert api_only in expr or 'route="decide"' in expr, expr
    legends = {legend for _, legend in exprs}
    assert {"{{route}} {{status}}", "p50 {{route}}", "p99 {{route}}", "5xx", "4xx {{route}}"} <= legends


def test_legends_name_labels_the_expression_keeps(dashboard: dict[str, Any],
                                                  scraped: dict[str, frozenset[str]]) -> None:
    """`{{label}}` in a legend renders empty unless the label survives the expression's
    aggregation: one of its grouping labels, or (no grouping) a label of its series."""
    checked = 0
    for title, legend, expr in _exprs(dashboard):
        placeholders = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
        kept = grouping_labels(expr) or set().union(*(scraped[s.metric] for s in selectors(expr)))
        assert placeholders <= kept, f"{title}: legend {legend!r} of {expr}"
        checked += bool(placeholders)
    assert checked >= 20


def test_variables_are_defined_and_query_exported_labels(dashboard: dict[str, Any],
                                                         scraped: dict[str, frozenset[str]]) -> None:
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    queries = _variable_queries(dashboard)
    assert ("tenant", "resontinex_router_count", "tenant") in queries
    for name, metric, label in queries:
        assert label in scraped[metric], f"${name}: {metric} has no label {label}"
        assert variables[name]["datasource"] == DATASOURCE
    used = {name for _, _, expr in _exprs(dashboard) for name in re.findall(r"\$\{?(\w+)", expr)}
    assert used - GRAFANA_BUILTIN_VARIABLES <= set(variables)
    assert "tenant" in used
    # $tenant filters only where its label exists: tenant itself, or a budget scope (tenant[/workflow]).
    for title, _, expr in _exprs(dashboard):
        for match in re.finditer(r"(\w+)=~\"[^\"]*\$\{?tenant", expr):
            assert match[1] in {"tenant", "scope"}, f"{title}: {expr}"


def test_dashboard_is_valid_for_grafana_provisioning(dashboard: dict[str, Any]) -> None:
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard["uid"])
    assert dashboard["title"].strip()
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    assert dashboard.get("id") is None  # a provisioned dashboard gets its database id from Grafana
    panels = list(_panels(dashboard))
    ids = [panel["id"] for panel in panels]
    assert all(isinstance(i, int) and i > 0 for i in ids) and len(set(ids)) == len(ids)
    for panel in panels:
        assert panel["type"] in BUILTIN_PANELS, panel["title"]
        assert panel["title"].strip()
        if panel["type"] == "row":
            assert "targets" not in panel and panel["gridPos"]["w"] == 24, panel["title"]
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        targets = panel["targets"]
        assert targets, panel["title"]
        refs = [target["refId"] for target in targets]
        assert len(set(refs)) == len(refs), panel["title"]
        for target in targets:
            assert isinstance(target["expr"], str) and target["expr"].strip(), panel["title"]
            assert target.get("datasource", DATASOURCE) == DATASOURCE, panel["title"]


def test_panels_tile_the_grid_without_overlap(dashboard: dict[str, Any]) -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in _panels(dashboard):
        grid = panel["gridPos"]
        assert all(isinstance(grid[key], int) for key in ("h", "w", "x", "y")), panel["title"]
        assert grid["h"] >= 1 and 1 <= grid["w"] <= 24 and grid["x"] >= 0 and grid["y"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


# -- Provisioning in docker-compose.yml -----------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return loaded


def _binds(service: dict[str, Any]) -> dict[str, Path]:
    """A service's bind mounts: container path -> repository path."""
    out = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            out[target] = (ROOT / source).resolve()
    return out


def _in_container(binds: dict[str, Path], path: str) -> Path:
    """The repository path a container path maps to through the bind mounts."""
    for target, source in binds.items():
        if path == target or path.startswith(target.rstrip("/") + "/"):
            return source / path[len(target):].lstrip("/")
    raise AssertionError(f"{path} is not mounted")


def _provisioning(binds: dict[str, Path], kind: str) -> list[dict[str, Any]]:
    """The YAML files Grafana reads from its provisioning folder `kind` (datasources, dashboards)."""
    folder = _in_container(binds, f"{GRAFANA_PROVISIONING}/{kind}")
    files = sorted(folder.glob("*.y*ml"))
    assert files, f"no provisioning file in {folder}"
    docs = [yaml.safe_load(path.read_text(encoding="utf-8")) for path in files]
    assert all(doc["apiVersion"] == 1 for doc in docs)
    return docs


def test_compose_runs_a_pinned_grafana_with_mounts_that_exist(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    assert re.fullmatch(r"grafana/grafana-oss:11\.\d+\.\d+", grafana["image"])
    assert "profiles" not in grafana  # part of `docker compose up`
    binds = _binds(grafana)
    assert binds and all(source.exists() for source in binds.values()), binds
    assert all(volume.endswith(":ro") for volume in grafana["volumes"] if volume.startswith("."))
    assert _in_container(binds, GRAFANA_PROVISIONING) == GRAFANA_DIR / "provisioning"
    assert set(grafana["depends_on"]) == {"prometheus"}
    (port,) = grafana["ports"]
    assert port == "3000:3000"
    assert grafana["healthcheck"]["test"][-1] == "http://127.0.0.1:3000/api/health"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert _in_container(binds, home) == DASHBOARD_FILE


def test_the_datasource_is_the_compose_prometheus(compose: dict[str, Any], dashboard: dict[str, Any]) -> None:
    services = compose["services"]
    (datasource,) = (ds for doc in _provisioning(_binds(services["grafana"]), "datasources")
                     for ds in doc["datasources"])
    assert datasource["type"] == "prometheus" and datasource["access"] == "proxy"
    url = re.fullmatch(r"http://([\w-]+):(\d+)", datasource["url"])
    assert url, datasource["url"]
    host, port = url.groups()
    assert host == "prometheus" and port in {p.split(":")[-1] for p in services[host]["ports"]}
    scrape = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))["global"]["scrape_interval"]
    assert datasource["jsonData"]["timeInterval"] == scrape  # $__rate_interval spans 4 scrapes
    (variable,) = (v for v in dashboard["templating"]["list"] if v["name"] == "datasource")
    assert variable["current"]["value"] == datasource["uid"]


def test_the_dashboard_provider_loads_the_repository_dashboards(compose: dict[str, Any],
                                                                dashboard: dict[str, Any]) -> None:
    binds = _binds(compose["services"]["grafana"])
    (provider,) = (p for doc in _provisioning(binds, "dashboards") for p in doc["providers"])
    assert provider["type"] == "file" and provider["allowUiUpdates"] is False
    folder = _in_container(binds, provider["options"]["path"])
    assert folder == DASHBOARD_FILE.parent
    loaded = {path.name: json.loads(path.read_text(encoding="utf-8")) for path in folder.glob("*.json")}
    assert loaded == {DASHBOARD_FILE.name: dashboard}
    assert len({d["uid"] for d in loaded.values()}) == len(loaded)
