"""The console's arithmetic (static/prom.js) under Node: the Prometheus text of a real
registry parsed, rates between snapshots, a quantile from histogram buckets."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib.resources import files

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="needs Node.js (`apt-get install nodejs`)")
PROM_JS = str(files("resontinex.app.console").joinpath("static/prom.js"))


def _node(script: str, **inputs: object) -> object:
    program = f"const Prom = require({json.dumps(PROM_JS)}); const input = {json.dumps(inputs)};\n" \
              f"process.stdout.write(JSON.stringify(({script})));"
    done = subprocess.run([NODE, "-e", program], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_exposition_of_a_real_registry_parses() -> None:
    registry = CollectorRegistry()
    decisions = Counter("trust_gate_decisions", "Decisions by verb", ["verb"], registry=registry)
    dead = Counter("resontinex_dead_letters", "Dead letters", ["topic", "code"], registry=registry)
    decisions.labels("execute").inc(26)
    decisions.labels("review").inc(14)
    dead.labels('odd "topic"\\x', "not_json").inc()
    text = generate_latest(registry).decode()
    got = _node("{verbs: Prom.sumBy(Prom.parse(input.text), 'trust_gate_decisions_total', 'verb'),"
                " dead: Prom.sumByMany(Prom.parse(input.text), 'resontinex_dead_letters_total', ['topic', 'code']),"
                " total: Prom.total(Prom.parse(input.text), 'trust_gate_decisions_total'),"
                " missing: Prom.total(Prom.parse(input.text), 'nothing', null)}", text=text)
    assert got == {"verbs": {"execute": 26, "review": 14}, "dead": {'odd "topic"\\x\u0000not_json': 1},
                   "total": 40, "missing": None}


def test_rates_and_a_restart() -> None:
    got = _node("[Prom.rates({a: 10, b: 0}, {a: 30, b: 4}, 2), Prom.rates({a: 10}, {a: 3}, 2),"
                " Prom.rates({a: 1, b: 1}, {a: 2}, 2), Prom.rates({}, {a: 2}, 0)]")
    assert got == [{"a": 10, "b": 2}, None, None, None]


def test_a_quantile_from_bucket_deltas() -> None:
    registry = CollectorRegistry()
    h = Histogram("lat", "Latency", buckets=(0.01, 0.1, 1.0), registry=registry)
    for v in (0.005,) * 50:
        h.observe(v)
    before = generate_latest(registry).decode()
    for v in (0.05,) * 90 + (0.5,) * 10:
        h.observe(v)
    after = generate_latest(registry).decode()
    got = _node("[0.5, 0.9, 0.95, 1].map((q) => Prom.quantile(q,"
                " Prom.sumBy(Prom.parse(input.before), 'lat_bucket', 'le'),"
                " Prom.sumBy(Prom.parse(input.after), 'lat_bucket', 'le')))"
                ".concat([Prom.quantile(0.5, {}, {'+Inf': 0})])", before=before, after=after)
    assert got[0] == pytest.approx(0.01 + 0.09 * 50 / 90)  # only the 100 new observations count
    assert got[1] == pytest.approx(0.1) and got[2] == pytest.approx(0.55) and got[3] == pytest.approx(1.0)
    assert got[4] is None
