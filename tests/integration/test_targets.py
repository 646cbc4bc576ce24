"""Several projects in one exporter process: isolation, /probe and reloads."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import yaml

from exporter.simulator import DEMO_AK, DEMO_SK, Fault, Fleet, Simulator
from tests.support.processes import exporter_process
from tests.support.simulated import exported_ids

BASE = "https://modelarts.cn-north-4.myhuaweicloud.com"
PROJECT_A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
PROJECT_B = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"


def write(tmp_path: Path, doc: object) -> str:
    path = tmp_path / "targets.yml"
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return str(path)


# -- the process with two projects -----------------------------------------------------


def target(name: str, sim: Simulator) -> dict[str, object]:
    return {
        "name": name,
        "project_id": sim.project_id,
        "endpoint": sim.url,
        "auth": {"ak": {"env": "SIM_AK"}, "sk": {"env": "SIM_SK"}},
    }


@pytest.fixture
def two_projects():
    with (
        Simulator(Fleet(size=10, seed=1), project_id=PROJECT_A) as a,
        Simulator(Fleet(size=15, seed=2), project_id=PROJECT_B) as b,
    ):
        yield a, b


ENV = {"SIM_AK": DEMO_AK, "SIM_SK": DEMO_SK}


def test_one_failing_project_leaves_the_other_untouched(two_projects, tmp_path, metric_values):
    a, b = two_projects
    b.inject(Fault(kind="hang", delay=6.0), times=None)  # b never answers in time
    path = write(tmp_path, {"targets": [target("a", a), target("b", b)]})
    args = ("--config.file", path, "--refresh-budget", "2", "--request-timeout", "1")
    with exporter_process(*args, env=ENV) as exporter:
        started = time.monotonic()
        status, _, body = exporter.get()
        elapsed = time.monotonic() - started
    m = metric_values(body.decode())
    assert status == 200 and elapsed < 5
    assert m("modelarts_up", project_id=PROJECT_A) == 1
    assert m("modelarts_up", project_id=PROJECT_B) == 0
    ids_a = m.label_values("modelarts_notebook_instance_info", "id")
    assert ids_a == exported_ids(a)
    assert m("modelarts_exporter_api_requests_total", project_id=PROJECT_B, code="error") >= 1
    print(
        f"\n[two targets] series per project: "
        f"A={sum(1 for k in m.samples if ('project_id', PROJECT_A) in k[1])} "
        f"B={sum(1 for k in m.samples if ('project_id', PROJECT_B) in k[1])}"
    )


def test_probe_returns_one_target(two_projects, tmp_path, metric_values):
    a, b = two_projects
    path = write(tmp_path, {"targets": [target("a", a), target("b", b)]})
    with exporter_process("--config.file", path, env=ENV) as exporter:
        status, _, body = exporter.get("/probe?target=b")
        missing = exporter.get("/probe")
        unknown = exporter.get("/probe?target=zzz")
    m = metric_values(body.decode())
    assert status == 200
    assert {dict(k)["project_id"] for k in m.all("modelarts_up")} == {PROJECT_B}
    assert m.label_values("modelarts_notebook_instance_info", "id") == exported_ids(b)
    # The series beyond the list API are served by /probe as by /metrics.
    assert m("modelarts_exporter_target_info", target="b", project_id=PROJECT_B) == 1
    assert m.has("modelarts_notebook_instance_resource_requests", resource="cpu")
    assert m.has("modelarts_notebook_user_instances") and m.has("process_start_time_seconds")
    assert (missing[0], unknown[0]) == (400, 404)


def test_reload_adds_a_target_and_keeps_the_others_data(two_projects, tmp_path, metric_values):
    a, b = two_projects
    path = write(tmp_path, {"targets": [target("a", a)]})
    args = ("--config.file", path, "--cache-ttl", "600", "--web.enable-lifecycle")
    with exporter_process(*args, env=ENV) as exporter:
        exporter.get()
        listings_a = a.stats.listings
        write(tmp_path, {"targets": [target("a", a), target("b", b)]})
        assert exporter.get("/-/reload")[0] == 405  # GET is not a reload
        import urllib.request

        request = urllib.request.Request(exporter.url + "/-/reload", method="POST")
        assert urllib.request.urlopen(request, timeout=10).status == 200
        m = metric_values(exporter.get()[2].decode())
        assert {dict(k)["project_id"] for k in m.all("modelarts_up")} == {PROJECT_A, PROJECT_B}
        assert a.stats.listings == listings_a  # a kept its cache: no new listing
        # A broken file is refused and the running targets stay.
        Path(path).write_text("targets: [")
        try:
            urllib.request.urlopen(request, timeout=10)
            raise AssertionError("a broken file must not reload")
        except urllib.error.HTTPError as err:
            assert err.code == 400 and b"not valid YAML" in err.read()
        # SIGHUP reloads too: back to target a alone.
        write(tmp_path, {"targets": [target("a", a)]})
        exporter.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            m = metric_values(exporter.get()[2].decode())
            if {dict(k)["project_id"] for k in m.all("modelarts_up")} == {PROJECT_A}:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("SIGHUP did not reload")
        assert exporter.process.poll() is None
