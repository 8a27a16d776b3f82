"""The live console at /ui in headless Chromium, against the real broker and a real core
worker under continuous traffic: it loads without a JavaScript error, its figures move,
alerts and a dead letter with its code appear as they are raised, budgets and the router
render, and it says so when the worker stops answering.

Needs Debian's `chromium` and `chromium-driver` (installed here when missing and running as
root with apt; else skipped with the reason) and `selenium` (the `test` extra). Selenium
is handed the chromedriver path, so Selenium Manager never looks for (or downloads) one.
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from resontinex.agents.gate import decision_id

from .harness import Worker, start_worker, system_tool

pytestmark = pytest.mark.integration

PASS = {"alignment_score": 0.8, "epistemic_risk": 0.3, "confidence_band": 0.2}  # 0.7681: execute
LOW = {"alignment_score": 0.65, "epistemic_risk": 0.5, "confidence_band": 0.4}  # 0.589: under the floor: review + alert
PROVIDERS = [{"provider_id": "p1", "price_usd_per_hour": 1.0, "latency_ms": 100, "reputation": 90, "capacity_available": 10.0},
             {"provider_id": "p2", "price_usd_per_hour": 2.0, "latency_ms": 50, "reputation": 80, "capacity_available": 10.0}]
TENANTS = ("acme", "globex")
WAIT_S = 20.0
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                  "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,2600")


class Traffic(threading.Thread):
    """Decision requests (a third under the trust floor), outcomes of routed ones and a cost,
    every 0.5 s until stopped; first of all one invalid record, for a dead letter."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(name="console-traffic", daemon=True)
        self.bootstrap = bootstrap
        self.halt = threading.Event()
        self.error: BaseException | None = None
        self.sent = 0

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by the test
            self.error = exc

    async def _main(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5)
        await producer.start()
        try:
            await producer.send_and_wait("decision-requests", b"{not json", key=b"acme")
            await producer.send_and_wait("costs", orjson.dumps({
                "event_id": "k-1", "tenant": "acme", "workflow": "default", "provider": "p1", "model": "m",
                "input_tokens": 100, "output_tokens": 20, "cost_usd": 7.5, "latency_ms": 300}), key=b"acme")
            executed: list[tuple[str, str]] = []  # (tenant, request id) of requests that execute
            round_ = 0
            while not self.halt.is_set():
                sent = []
                for j in range(10):
                    i, tenant = round_ * 10 + j, TENANTS[j % 2]
                    low = j % 3 == 0
                    request = {"event_id": f"r-{i}", "tenant": tenant, "signals": LOW if low else PASS,
                               "routing": {"providers": PROVIDERS}}
                    sent.append(await producer.send("decision-requests", orjson.dumps(request), key=tenant.encode()))
                    if not low:
                        executed.append((tenant, f"r-{i}"))
                if len(executed) > 14:  # outcomes of requests sent two rounds ago or earlier, decided by now
                    for tenant, request_id in executed[:7]:
                        outcome = {"event_id": f"o-{request_id}", "tenant": tenant,
                                   "decision_id": decision_id(tenant, request_id), "success": True,
                                   "actual_cost_usd": 0.2, "actual_latency_ms": 120, "actual_reputation": 90}
                        sent.append(await producer.send("outcomes", orjson.dumps(outcome), key=tenant.encode()))
                    del executed[:7]
                await asyncio.gather(*sent)
                self.sent += 10
                round_ += 1
                await asyncio.sleep(0.5)
        finally:
            await producer.stop()


def _http(port: int, path: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def _read(driver: Any, selector: str, attribute: str = "textContent") -> list[str]:
    """`attribute` of each element matching `selector`, read in the page in one step (its
    rows are redrawn on every poll: an element found over the wire may be gone by the next call)."""
    return driver.execute_script("return Array.from(document.querySelectorAll(arguments[0]), "
                                 "e => e.getAttribute(arguments[1]) ?? e[arguments[1]] ?? '')", selector, attribute)


def _wait(what: str, check: Callable[[], Any], timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"the console never showed {what} within {timeout_s:.0f} s")
        time.sleep(0.25)


def _tools() -> tuple[str, str]:
    """Chromium and chromedriver (installed where missing and possible), else a skip, before
    anything starts."""
    pytest.importorskip("selenium.webdriver", reason="needs selenium: pip install -e '.[test]'")
    chromium, why = system_tool("chromium", "chromium")
    if chromium is None:
        pytest.skip(why)
    chromedriver, why = system_tool("chromedriver", "chromium-driver")
    if chromedriver is None:
        pytest.skip(why)
    return chromium, chromedriver


def _browser(tmp_path: Path, chromium: str, chromedriver: str) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=chromedriver, log_output=str(tmp_path / "chromedriver.log"))
    return webdriver.Chrome(service=service, options=options)


def _number(driver: Any, element_id: str) -> float | None:
    value = driver.find_element("id", element_id).get_attribute("data-value")
    return float(value) if value else None


def _severe(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]


def test_the_console_shows_live_figures_alerts_and_dead_letters(broker, tmp_path) -> None:
    tools = _tools()
    worker: Worker = start_worker(broker.bootstrap, tmp_path / "w")
    traffic = Traffic(broker.bootstrap)
    driver = None
    started = time.monotonic()
    try:
        worker.wait_ready(timeout_s=90)
        ready_s = time.monotonic() - started
        port = worker.web_port
        status, content_type, body = _http(port, "/ui")
        assert (status, content_type) == (200, "text/html; charset=utf-8") and b"<title>" in body
        assert _http(port, "/ui/")[0] == 200
        assert _http(port, "/ui/static/console.js")[1] == "text/javascript; charset=utf-8"
        assert _http(port, "/ui/static/console.css")[1] == "text/css; charset=utf-8"
        assert _http(port, "/ui/static/nothing.js")[0] == 404
        assert _http(port, "/ui/recent?after=x")[0] == 400

        traffic.start()
        driver = _browser(tmp_path, *tools)
        driver.get(f"http://127.0.0.1:{port}/ui")
        browser_s = time.monotonic() - started
        assert driver.title == "resontinex — live console"

        rate = _wait("decisions/s above 0", lambda: (_number(driver, "kpi-rate") or 0) > 0 and _number(driver, "kpi-rate"))
        first = _number(driver, "kpi-total")
        time.sleep(3)
        second = _number(driver, "kpi-total")
        assert first is not None and second is not None and second > first, (first, second)

        alert = _wait("a trust_floor_violation alert", lambda: _read(
            driver, "#alerts-table tbody tr[data-kind='trust_floor_violation']"))[0]
        assert "acme" in alert or "globex" in alert
        dead = _wait("the dead letter with its code", lambda: _read(driver, "#dead-table tbody tr[data-code='not_json']"))[0]
        assert "decision-requests" in dead and "{not json" in dead
        bar = _wait("acme's budget bar", lambda: _read(driver, "#budgets-table tr[data-scope='acme'] .bar > div",
                                                        "style"))[0]
        assert bar.startswith("width: 7.5")  # 7.50 USD of the default 100 USD a day
        _wait("the router's tenants", lambda: len(driver.find_elements("css selector", "#router-body .router-tenant")) == 2)
        _wait("Q-values and arm shares", lambda: driver.find_elements("css selector", "#router-body .q-table td.best")
              and driver.find_elements("css selector", "#router-body .arms .bar"))
        _wait("the verb chart", lambda: driver.find_elements("css selector", "#chart-rate polygon[data-verb='execute']"))
        _wait("tenants' trust windows", lambda: driver.find_elements("css selector", "#trust-table tr[data-tenant='acme']"))
        assert driver.find_element("id", "conn").get_attribute("data-state") == "live", \
            (driver.find_element("id", "lost-why").get_attribute("textContent"), driver.get_log("browser"))
        assert driver.find_element("id", "updated").text != "never"

        shot = tmp_path / "console.png"
        driver.save_screenshot(str(shot))
        print(f"\nconsole screenshot: {shot} (decisions/s {rate:.1f}, totals {first:.0f} -> {second:.0f}; worker ready "
              f"at {ready_s:.1f} s, page loaded at {browser_s:.1f} s, all shown at {time.monotonic() - started:.1f} s)")
        assert _severe(driver) == []

        traffic.halt.set()
        traffic.join(10)
        assert traffic.error is None, repr(traffic.error)
        worker.kill()  # the quickest way to a worker that stops answering
        _wait("the disconnected state", lambda: driver.find_element("id", "conn").get_attribute("data-state")
              == "disconnected" and driver.find_element("id", "banner").is_displayed(), timeout_s=10)
        stopped = tmp_path / "console-disconnected.png"
        driver.save_screenshot(str(stopped))
        print(f"console screenshot, worker stopped: {stopped}")
    finally:
        traffic.halt.set()
        if driver is not None:
            driver.quit()
        traffic.join(10)
        worker.stop()
