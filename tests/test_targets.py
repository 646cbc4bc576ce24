"""Several projects in one exporter, the newer Notebook API, /probe and reloads."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import responses
import yaml
from conftest import fixture_bytes
from exporter_process import exporter_process
from pydantic import SecretStr

from exporter.config.settings import Settings
from exporter.config.targets_file import ConfigError, load_config
from exporter.modelarts.auth.aksk import AkSkProvider
from exporter.modelarts.client import ModelArtsClient
from exporter.modelarts.notebooks import parse_notebooks_page
from exporter.modelarts.statuses import KNOWN_STATUSES, NOTEBOOKS_ONLY_STATUSES
from exporter.simulator import DEMO_AK, DEMO_SK, Fault, Fleet, Simulator

BASE = "https://modelarts.cn-north-4.myhuaweicloud.com"
PROJECT_A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
PROJECT_B = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"


# -- the newer Notebook API ------------------------------------------------------------


def test_the_vendor_notebooks_example_parses():
    page = parse_notebooks_page(fixture_bytes("notebooks-v2-list.json"))
    assert (page.total_count, page.pages, page.invalid) == (2, 1, 0)
    first = page.instances[0]
    assert (first.id, first.status, first.name) == (
        "f9937afa-ca78-45b6-bc12-7ecf42553c48",
        "CREATING",
        "notebook_5ee4bf0e",
    )
    assert first.flavor == "modelarts.vm.cpu.free" and first.flavor_type == "CPU"
    assert first.image == "notebook2.0-mul-kernel-cpu-cp36"
    assert first.auto_stop is True
    assert first.stop_timestamp is None  # not running: no stop time yet


def test_lease_of_a_running_notebook_gives_its_stop_time_and_fail_reason_its_error():
    doc = json.loads(fixture_bytes("notebooks-v2-list.json"))
    doc["data"][0]["status"] = "RUNNING"
    doc["data"][1]["status"] = "ERROR"
    doc["data"][1]["fail_reason"] = "image pull failed"
    doc["data"][1]["pool"] = {"id": "pool-1", "name": "team-a"}
    doc["data"][1]["user"] = {"id": "u1", "name": "li.wei", "domain": "acme"}
    running, failed = parse_notebooks_page(json.dumps(doc).encode()).instances
    # The lease's duration is in milliseconds: 3,600,000 is an hour.
    assert running.stop_timestamp == pytest.approx(1638841805.439 + 3600)
    assert failed.error == "image pull failed"
    assert (failed.pool_id, failed.pool_name, failed.user_name) == ("pool-1", "team-a", "li.wei")


def test_known_statuses_cover_both_apis():
    assert set(NOTEBOOKS_ONLY_STATUSES) <= set(KNOWN_STATUSES)
    assert {"CREATE_QUEUING", "RESIZE_FAILED", "FROZEN", "SNAPSHOTTING"} <= set(KNOWN_STATUSES)


def notebooks(*ids: str, pages: int = 1, total: int | None = None) -> dict[str, object]:
    data = [{"id": i, "status": "RUNNING", "name": i} for i in ids]
    return {"current": 0, "data": data, "pages": pages, "size": 50, "total": total or len(ids)}


def client(api: str) -> ModelArtsClient:
    auth = AkSkProvider(SecretStr("AK"), SecretStr("SK"))
    return ModelArtsClient(BASE, "p1", auth, api=api, page_size=0)  # type: ignore[arg-type]


@responses.activate
def test_both_apis_count_each_notebook_once():
    responses.get(
        f"{BASE}/v1/p1/demanager/instances",
        json={
            "total_count": 2,
            "instances": [
                {"id": "DE-x", "status": "START_QUEUING", "queuing_info": {"rank": 2}},
                {"id": "DE-y", "status": "RUNNING"},
            ],
        },
    )
    responses.get(f"{BASE}/v1/p1/notebooks", json=notebooks("x", "z"))
    listing = client("both").list_instances()
    by_id = {i.id: i for i in listing.instances}
    assert sorted(by_id) == ["DE-x", "DE-y", "z"]
    assert by_id["DE-x"].status == "START_QUEUING"  # the older API's record, with its queue


@responses.activate
def test_notebooks_pages_are_numbered_and_fifty_long():
    url = f"{BASE}/v1/p1/notebooks"
    ids = [f"n{i}" for i in range(120)]
    for page in range(3):
        chunk = ids[page * 50 : (page + 1) * 50]
        responses.get(
            url,
            match=[responses.matchers.query_param_matcher({"offset": str(page), "limit": "50"})],
            json=notebooks(*chunk, pages=3, total=120),
        )
    listing = client("notebooks").list_instances()
    assert len(listing.instances) == 120 and len(responses.calls) == 3


# -- the targets file ------------------------------------------------------------------


def write(tmp_path: Path, doc: object) -> str:
    path = tmp_path / "targets.yml"
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return str(path)


def defaults() -> Settings:
    return Settings.model_validate({"demo": True})


def test_a_good_file_gives_one_settings_per_target(tmp_path, monkeypatch):
    monkeypatch.setenv("A_SK", "secret-a")
    (tmp_path / "ak").write_text("AK-A\n")
    path = write(
        tmp_path,
        {
            "targets": [
                {
                    "name": "a",
                    "region": "cn-north-4",
                    "project_id": PROJECT_A,
                    "api": "both",
                    "auth": {"ak": {"file": str(tmp_path / "ak")}, "sk": {"env": "A_SK"}},
                    "cache_ttl": 60,
                },
                {
                    "name": "b",
                    "region": "cn-east-3",
                    "project_id": PROJECT_B,
                    "auth": {"mode": "ecs"},
                },
            ]
        },
    )
    targets = load_config(path, defaults())
    a, b = targets["a"], targets["b"]
    assert (a.api, a.cache_ttl, a.effective_auth_mode) == ("both", 60, "aksk")
    assert a.ak is not None and a.ak.get_secret_value() == "AK-A"
    assert a.sk is not None and a.sk.get_secret_value() == "secret-a"
    assert b.modelarts_endpoint == "https://modelarts.cn-east-3.myhuaweicloud.com"
    assert (b.effective_auth_mode, b.cache_ttl) == ("ecs", 30)


def test_every_problem_is_listed_with_its_path(tmp_path):
    path = write(
        tmp_path,
        {
            "targets": [
                {"name": "a", "project_id": PROJECT_A, "regoin": "cn-north-4"},
                {"name": "bad name!", "project_id": ""},
                {"name": "c", "project_id": PROJECT_B, "cache_ttl": -1},
            ]
        },
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, defaults())
    text = "\n".join(caught.value.problems)
    assert "targets[0].regoin: Extra inputs are not permitted" in text
    assert "targets[1].name" in text and "targets[1].project_id" in text
    assert "targets[2].cache_ttl" in text


def test_inline_secrets_are_refused_unless_allowed(tmp_path):
    target = {"name": "a", "region": "r", "project_id": PROJECT_A, "auth": {"ak": "AK", "sk": "SK"}}
    with pytest.raises(ConfigError, match=r"targets\[0\].auth.ak: inline secret refused"):
        load_config(write(tmp_path, {"targets": [target]}), defaults())
    allowed = load_config(
        write(tmp_path, {"allow_inline_secrets": True, "targets": [target]}), defaults()
    )
    assert allowed["a"].sk is not None and allowed["a"].sk.get_secret_value() == "SK"


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ("targets: [", "not valid YAML"),
        ({"targets": []}, "targets: List should have at least 1 item"),
        (
            {
                "targets": [
                    {"name": "a", "project_id": PROJECT_A, "region": "r"},
                    {"name": "a", "project_id": PROJECT_B, "region": "r"},
                ]
            },
            "unique: a",
        ),
        (
            {
                "targets": [
                    {
                        "name": "a",
                        "project_id": PROJECT_A,
                        "region": "r",
                        "auth": {"sk": {"env": "NOT_SET_ANYWHERE"}},
                    }
                ]
            },
            "NOT_SET_ANYWHERE is not set",
        ),
        (
            {"targets": [{"name": "a", "project_id": PROJECT_A, "auth": {"mode": "ecs"}}]},
            "targets[0].region",
        ),
    ],
)
def test_bad_files(tmp_path, doc, problem):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, doc), defaults())
    assert problem in str(caught.value)


def test_config_check_exits_0_or_2_listing_problems(tmp_path):
    good = write(
        tmp_path,
        {
            "targets": [
                {"name": "a", "region": "r", "project_id": PROJECT_A, "auth": {"mode": "ecs"}}
            ]
        },
    )
    run = [sys.executable, "-m", "exporter", "--config.check", "--config.file"]
    ok = subprocess.run([*run, good], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and "OK, 1 target(s): a" in ok.stdout
    bad = write(tmp_path, {"targets": [{"name": "a", "project_id": PROJECT_A, "x": 1, "y": 2}]})
    result = subprocess.run([*run, bad], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "targets[0].x" in result.stderr and "targets[0].y" in result.stderr


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
    assert ids_a == {r["id"] for r in a.fleet.records()}
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
    assert len(m.label_values("modelarts_notebook_instance_info", "id")) == 15
    assert (missing[0], unknown[0]) == (400, 404)


def test_reload_adds_a_target_and_keeps_the_others_data(two_projects, tmp_path, metric_values):
    a, b = two_projects
    path = write(tmp_path, {"targets": [target("a", a)]})
    with exporter_process("--config.file", path, "--cache-ttl", "600", env=ENV) as exporter:
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
