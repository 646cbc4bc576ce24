"""The exporter as a process, against the simulator over real HTTP with signed requests."""

from __future__ import annotations

import gzip
import signal
import subprocess
import threading
import time

import pytest

from exporter.exposition.metrics import METRICS
from exporter.simulator import Fault, Fleet, Simulator
from tests.support.processes import env_for, exporter_process
from tests.support.simulated import exported_ids
from tests.support.tools import require_tool


def test_scrape_against_the_simulator(simulator, metric_values):
    with exporter_process("--page-size", "25", env=env_for(simulator.url)) as exporter:
        status, headers, body = exporter.get()
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    m = metric_values(body.decode())
    fleet_ids = exported_ids(simulator)  # both APIs, each notebook once
    assert m.label_values("modelarts_notebook_instance_info", "id") == fleet_ids
    assert m("modelarts_up") == 1
    assert m("modelarts_exporter_api_requests_total", code="200") >= 3  # 60 notebooks, pages of 25
    assert sum(m.all("modelarts_notebook_instances").values()) == len(fleet_ids)


def test_demo_serves_every_metric_and_passes_promtool(metric_values):
    promtool = require_tool("promtool")
    with exporter_process("--demo") as exporter:
        _, _, text = exporter.get()
        _, headers, om = exporter.get(
            headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        _, gz_headers, gz = exporter.get(headers={"Accept-Encoding": "gzip"})
        landing = exporter.get("/")
        healthy = exporter.get("/-/healthy")
    for metric in METRICS:
        assert f"# TYPE {metric.name} " in text.decode(), metric.name
    m = metric_values(text.decode())
    assert len(m.label_values("modelarts_notebook_instance_status", "status")) >= 15
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert om.endswith(b"# EOF\n")
    assert gz_headers["Content-Encoding"] == "gzip" and gzip.decompress(gz).startswith(b"# HELP")
    assert landing[0] == 200 and b'href="/metrics"' in landing[2]
    assert healthy[0] == 200
    for body in (text, om):
        result = subprocess.run(
            [promtool, "check", "metrics"], input=body, capture_output=True, timeout=30
        )
        assert b"error" not in (result.stdout + result.stderr).lower(), result.stderr


def test_twenty_concurrent_scrapes_on_a_cold_cache_list_once(metric_values):
    with (
        Simulator(Fleet(size=300, seed=3), latency=0.3) as sim,
        exporter_process("--page-size", "0", env=env_for(sim.url), ready=False) as exporter,
    ):
        exporter_ready = time.monotonic() + 10
        while time.monotonic() < exporter_ready:  # wait for the port, not for data
            try:
                exporter.get("/-/healthy")
                break
            except OSError:
                time.sleep(0.05)
        results: list[int] = []
        threads = [
            threading.Thread(target=lambda: results.append(exporter.get()[0])) for _ in range(20)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
        assert results == [200] * 20
        assert sim.stats.listings == 1  # one refresh: each list API listed once
        assert sim.stats.flavor_requests == 1


@pytest.mark.parametrize("mode", ["--refresh.background", "--no-refresh.background"])
def test_stale_data_is_served_while_the_api_fails(metric_values, mode):
    """By default a scrape after the TTL is answered at once and starts the refresh, whose
    outcome the next scrapes show; synchronously, the scrape that starts it shows it."""
    with (
        Simulator(Fleet(size=20, seed=5)) as sim,
        exporter_process("--cache-ttl", "1", mode, env=env_for(sim.url)) as exporter,
    ):
        sim.inject(Fault(status=500), times=None)
        time.sleep(1.2)
        m = until_up(exporter, metric_values, 0, first_scrape=mode != "--refresh.background")
        assert m.label_values("modelarts_notebook_instance_info", "id") == exported_ids(sim)
        assert m("modelarts_exporter_api_requests_total", code="500") >= 1
        sim.clear()
        time.sleep(1.2)
        until_up(exporter, metric_values, 1, first_scrape=mode != "--refresh.background")


def until_up(exporter, metric_values, up: float, *, first_scrape: bool, within: float = 10):
    """The metrics of the first scrape showing `modelarts_up` `up`; with `first_scrape`,
    that must be the very next scrape."""
    deadline = time.monotonic() + within
    while True:
        status, _, body = exporter.get()
        m = metric_values(body.decode())
        assert status == 200
        if m("modelarts_up") == up:
            return m
        assert not first_scrape and time.monotonic() < deadline, f"modelarts_up stays {1 - up}"
        time.sleep(0.1)


def test_bad_credentials_show_as_down_and_the_secret_stays_out_of_the_logs(metric_values):
    with Simulator(Fleet(size=5, seed=5)) as sim:
        env = env_for(
            sim.url,
            HUAWEICLOUD_SDK_SK="wrong-secret-key-1234",
            MODELARTS_EXPORTER_LOG_LEVEL="debug",
        )
        with exporter_process(env=env, ready=False) as exporter:
            time.sleep(1.0)
            m = metric_values(exporter.get()[2].decode())
            assert exporter.get("/-/ready")[0] == 503
            exporter.process.send_signal(signal.SIGTERM)
            assert exporter.process.wait(timeout=10) == 0
            logs = exporter.logs()
    assert m("modelarts_up") == 0 and m("modelarts_exporter_api_requests_total", code="401") == 1
    assert "APIG.0301" in logs and "verify aksk signature fail" in logs
    assert "wrong-secret-key-1234" not in logs


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_clean_shutdown(signum):
    with exporter_process("--demo") as exporter:
        exporter.process.send_signal(signum)
        assert exporter.process.wait(timeout=5) == 0


def test_a_fleet_slower_to_list_than_the_budget_still_gets_up(metric_values):
    """No cliff: a refresh longer than --refresh-budget goes on in the background, lands,
    and is served; later slow refreshes do not turn modelarts_up to 0 while they run."""
    flags = ("--refresh-budget", "1", "--cache-ttl", "2", "--page-size", "50")
    with (
        Simulator(Fleet(size=120, seed=4), latency=0.5) as sim,  # a refresh takes ~3 s
        exporter_process(*flags, env=env_for(sim.url), ready=False) as exporter,
    ):
        deadline = time.monotonic() + 30
        seen: list[tuple[float, float, int]] = []  # scrape time, up, notebooks
        # Until a third refresh starts: the second, as slow as the first, ran meanwhile.
        while time.monotonic() < deadline and sim.stats.listings < 3:
            started = time.monotonic()
            try:
                m = metric_values(exporter.get()[2].decode())
            except OSError:  # not listening yet
                time.sleep(0.2)
                continue
            assert time.monotonic() - started < 3  # a scrape never waits for the whole refresh
            seen.append(
                (started, m("modelarts_up"), len(m.all("modelarts_notebook_instance_info")))
            )
            time.sleep(0.25)
    ups = [up for _, up, _ in seen]
    assert 1 in ups, f"never up: {seen}"
    after = seen[ups.index(1) :]
    assert all(up == 1 and count > 0 for _, up, count in after), after
    assert sim.stats.listings >= 3  # several slow refreshes happened meanwhile
