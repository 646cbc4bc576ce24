"""The metric table on the vendor's examples, the renderer against the plain collector."""

from __future__ import annotations

import json
import platform
import subprocess

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

from exporter.config.series import SeriesOptions
from exporter.exposition.collector import ModelArtsCollector
from exporter.exposition.formats import OPENMETRICS, TEXT
from exporter.exposition.metrics import METRICS
from exporter.exposition.render import Renderer
from exporter.exposition.snapshot import Snapshot
from exporter.exposition.status import TargetStatus
from exporter.modelarts.client import Telemetry
from exporter.modelarts.demanager import parse_page
from exporter.modelarts.flavors import parse_flavors_page
from exporter.modelarts.instance import Instance
from exporter.modelarts.notebooks import parse_notebooks_page
from exporter.modelarts.statuses import KNOWN_STATUSES
from tests.support.exposition import parse_exposition
from tests.support.tools import fixture_bytes, require_tool

PROJECT = "77b6a44cba5143ab91d13ab9a8ff44fd"
RUNNING = "DE-7d558ef8-c73d-11ea-964c-0255ac100033"
STOPPED = "DE-7936a360-c734-11ea-a72b-0255ac100033"
NOW = 1_800_000_000.0  # long after the examples' auto-stop time


def status_of(body: bytes, fetched_at: float = NOW - 10, **extra: object) -> TargetStatus:
    page = parse_page(body, now=fetched_at)  # answered when fetched
    snapshot = Snapshot(PROJECT, tuple(page.instances), fetched_at)
    return TargetStatus(PROJECT, snapshot, up=True, last_success=fetched_at, **extra)  # type: ignore[arg-type]


def scrape(status: TargetStatus, now: float = NOW, fmt=TEXT) -> str:
    renderer = Renderer(lambda: [status], clock=lambda: now, process_metrics=False)
    return bytes(renderer.render(fmt)).decode()


@pytest.fixture
def example() -> TargetStatus:
    return status_of(fixture_bytes("list-instances.json"), telemetry=Telemetry(requests={"200": 1}))


def test_examples_instances_statuses_and_flavors(example, metric_values):
    m = metric_values(scrape(example))
    assert m("modelarts_notebook_instance_status", id=RUNNING) == 1
    assert m.label_values("modelarts_notebook_instance_status", "status") == {"RUNNING", "STOPPED"}
    assert m("modelarts_notebook_instance_status", id=STOPPED, status="STOPPED") == 1
    assert (
        m("modelarts_notebook_instances", status="RUNNING", flavor="modelarts.bm.gpu.v100NV32") == 1
    )
    assert m("modelarts_notebook_instances", status="STOPPED", flavor="modelarts.vm.cpu.2u") == 1
    info = m.all("modelarts_notebook_instance_info", id=RUNNING)
    labels = dict(next(iter(info)))
    assert labels["name"] == "notebook-c6fd"
    assert labels["flavor_type"] == "GPU"
    assert labels["user_name"] == "ops_dev_env"
    assert labels["image"] == "mul-kernel-gpu-cuda-cp36:2.0.5-B003"
    assert labels["pool_id"] == "" and labels["workspace_id"] == "0"


def test_examples_timestamps_in_seconds(example, metric_values):
    m = metric_values(scrape(example))
    assert m("modelarts_notebook_instance_created_timestamp_seconds", id=RUNNING) == 1594887749.962
    assert (
        m("modelarts_notebook_instance_auto_stop_timestamp_seconds", id=RUNNING) == 1594891408.723
    )
    assert m("modelarts_notebook_instance_auto_stop_enabled", id=RUNNING) == 1


def test_examples_remaining_time_is_zero_once_past_never_negative(example, metric_values):
    m = metric_values(scrape(example))
    assert m("modelarts_notebook_instance_auto_stop_remaining_seconds", id=RUNNING) == 0
    # The stopped instance reports neither remain_time nor stop_timestamp: no series.
    assert not m.has("modelarts_notebook_instance_auto_stop_remaining_seconds", id=STOPPED)


def test_countdown_moves_with_the_clock_without_a_refresh(metric_values):
    doc = json.loads(fixture_bytes("list-instances.json"))
    stop = 1594891408.723
    status = status_of(json.dumps(doc).encode(), fetched_at=stop - 500)
    at = {now: metric_values(scrape(status, now)) for now in (stop - 300, stop - 100)}
    name = "modelarts_notebook_instance_auto_stop_remaining_seconds"
    assert at[stop - 300](name, id=RUNNING) == pytest.approx(300, abs=1e-3)
    assert at[stop - 100](name, id=RUNNING) == pytest.approx(100, abs=1e-3)


def test_relative_remain_time_is_reduced_by_the_snapshot_age(metric_values):
    doc = json.loads(fixture_bytes("list-instances.json"))
    del doc["instances"][0]["spec"]["auto_stop"]["stop_timestamp"]  # remain_time 3450 only
    status = status_of(json.dumps(doc).encode(), fetched_at=NOW - 450)
    m = metric_values(scrape(status, NOW))
    assert m(
        "modelarts_notebook_instance_auto_stop_remaining_seconds", id=RUNNING
    ) == pytest.approx(3000)


def test_queue_metrics_from_queuing_info(metric_values):
    doc = json.loads(fixture_bytes("list-instances.json"))
    queued = doc["instances"][1]
    queued["status"] = "CREATE_QUEUING"
    queued["queuing_info"] = {
        "status": "CREATE_QUEUING",
        "rank": 3,
        "begin_timestamp": int((NOW - 120) * 1000),
        "end_timestamp": int((NOW + 600) * 1000),
        "remain_time": 600,
    }
    queued["flavor_details"].update(
        status="soldOut", promo_type="Free", queuing_num=7, queue_left_time=1800
    )
    m = metric_values(scrape(status_of(json.dumps(doc).encode()), NOW))
    assert m("modelarts_notebook_instance_queue_rank", id=STOPPED) == 3
    assert m("modelarts_notebook_instance_queue_wait_seconds", id=STOPPED) == pytest.approx(120)
    assert m("modelarts_notebook_instance_queue_remaining_seconds", id=STOPPED) == pytest.approx(
        600
    )
    assert m("modelarts_notebook_flavor_sold_out", flavor="modelarts.vm.cpu.2u") == 1
    assert m("modelarts_notebook_flavor_queue_length", flavor="modelarts.vm.cpu.2u") == 7
    assert m("modelarts_notebook_flavor_queue_left_seconds", flavor="modelarts.vm.cpu.2u") == 1800
    assert not m.has("modelarts_notebook_instance_queue_rank", id=RUNNING)


def test_every_known_status_is_present_and_unknown_ones_kept(metric_values):
    doc = json.loads(fixture_bytes("list-instances.json"))
    doc["instances"][1]["status"] = "HIBERNATING"  # a status the service may add one day
    m = metric_values(scrape(status_of(json.dumps(doc).encode())))
    by_status: dict[str, float] = {}
    for key, value in m.all("modelarts_notebook_instances").items():
        status = dict(key)["status"]
        by_status[status] = by_status.get(status, 0) + value
    assert set(KNOWN_STATUSES) <= set(by_status)
    assert by_status["HIBERNATING"] == 1 and by_status["RUNNING"] == 1
    assert sum(by_status.values()) == 2


def test_error_info_and_pools(metric_values):
    doc = json.loads(fixture_bytes("list-instances.json"))
    doc["instances"][0]["error_code"] = "ModelArts.6404"
    doc["instances"][1]["spec"]["failed_reasons"] = {"message": "image pull failed"}
    doc["instances"][1]["pool"] = {"id": "pool-1", "name": "team-a", "type": "USER_DEFINED"}
    m = metric_values(scrape(status_of(json.dumps(doc).encode())))
    assert m("modelarts_notebook_instance_error_info", id=RUNNING) == 1
    # error_code holds codes only; a reason without a code has an empty one and its words.
    assert m.label_values("modelarts_notebook_instance_error_info", "error_code") == {
        "ModelArts.6404",
        "",
    }
    assert m.label_values("modelarts_notebook_instance_error_info", "reason") == {
        "",
        "image pull failed",
    }
    assert m("modelarts_notebook_pool_info", pool_id="pool-1", pool_name="team-a") == 1
    assert m("modelarts_notebook_pool_info", pool_id="", pool_type="PUBLIC") == 1


def test_exporter_metrics(example, metric_values):
    m = metric_values(scrape(example))
    assert m("modelarts_up", project_id=PROJECT) == 1
    assert m("modelarts_exporter_data_age_seconds") == pytest.approx(10)
    assert m("modelarts_exporter_api_requests_total", code="200") == 1
    assert m("modelarts_exporter_invalid_instances_total") == 0
    assert m("modelarts_exporter_build_info") == 1
    assert m("modelarts_exporter_build_info", pythonversion=platform.python_version()) == 1
    assert {"revision", "branch", "version"} <= dict(
        next(iter(m.all("modelarts_exporter_build_info")))
    ).keys()
    assert "project_id" not in dict(next(iter(m.all("modelarts_exporter_build_info"))))


def test_no_data_still_serves_health(metric_values):
    status = TargetStatus(PROJECT, None, up=False, telemetry=Telemetry(requests={"401": 1}))
    m = metric_values(scrape(status))
    assert m("modelarts_up") == 0
    assert m("modelarts_exporter_api_requests_total", code="401") == 1
    assert not m.has("modelarts_notebook_instances")


HOSTILE = 'a "quoted" \\ back\\slash\nnew line 🚀 ünïcode'


def hostile_status() -> TargetStatus:
    doc = json.loads(fixture_bytes("list-instances.json"))
    doc["instances"][0]["name"] = HOSTILE
    doc["instances"][0]["user"]["name"] = HOSTILE
    doc["instances"][1]["flavor"] = HOSTILE
    return status_of(json.dumps(doc).encode(), telemetry=Telemetry(requests={"200": 3, "error": 1}))


def test_hostile_label_values_survive(metric_values):
    m = metric_values(scrape(hostile_status()))
    assert m.label_values("modelarts_notebook_instance_info", "name") == {HOSTILE, "notebook-b1b8"}
    assert HOSTILE in m.label_values("modelarts_notebook_instances", "flavor")


@pytest.mark.parametrize("fmt", [TEXT, OPENMETRICS], ids=lambda f: f.name)
def test_renderer_equals_prometheus_client_generators(fmt):
    """The cached fast path and prometheus_client's own writer agree, sample for sample."""
    status = hostile_status()
    ours = scrape(status, NOW, fmt)
    collector = ModelArtsCollector(lambda: [status], clock=lambda: NOW)
    if fmt.openmetrics:
        theirs = generate_openmetrics(collector).decode()
        assert ours.endswith("# EOF\n") and ours.count("# EOF") == 1

        def families(text):
            return {
                (f.name, f.type): sorted(
                    (s.name, sorted(s.labels.items()), s.value) for s in f.samples
                )
                for f in parse_om(text)
            }

        # prometheus_client adds `_created` samples to counters; we do not send them.
        theirs_families = families(theirs)
        for key, samples in theirs_families.items():
            theirs_families[key] = [s for s in samples if not s[0].endswith("_created")]
        assert families(ours) == theirs_families
    else:
        theirs = generate_latest(collector).decode()
        assert parse_exposition(ours).samples == {
            k: v
            for k, v in parse_exposition(theirs).samples.items()
            if not k[0].endswith("_created")
        }


def test_every_metric_of_the_table_is_served(example):
    text = scrape(example)
    for metric in METRICS:
        assert f"# TYPE {metric.name} {metric.type}\n" in text


@pytest.mark.parametrize("fmt", [TEXT, OPENMETRICS], ids=lambda f: f.name)
def test_promtool_accepts_hostile_exposition(fmt, tmp_path):
    promtool = require_tool("promtool")
    text = scrape(hostile_status(), NOW, fmt)
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
    )
    # promtool's linter may suggest naming changes (exit 3) but must find no error.
    assert b"error" not in result.stderr.lower() + result.stdout.lower(), result.stderr


def test_per_instance_series_can_be_turned_off(metric_values):
    page = parse_page(fixture_bytes("list-instances.json"))
    options = SeriesOptions(per_instance=False)
    snapshot = Snapshot(PROJECT, tuple(page.instances), NOW - 10, options)
    m = metric_values(scrape(TargetStatus(PROJECT, snapshot, up=True)))
    per_instance = [n for n in (metric.name for metric in METRICS) if "_instance_" in n]
    assert per_instance and not any(m.has(name) for name in per_instance)
    assert (
        m("modelarts_notebook_instances", status="RUNNING", flavor="modelarts.bm.gpu.v100NV32") == 1
    )
    assert m.has("modelarts_notebook_flavor_sold_out") and m("modelarts_up") == 1


@pytest.mark.parametrize("fmt", [TEXT, OPENMETRICS], ids=lambda f: f.name)
def test_info_labels_allowlist_keeps_id_and_the_chosen_labels(fmt, metric_values):
    page = parse_page(fixture_bytes("list-instances.json"))
    options = SeriesOptions(info_labels=frozenset({"flavor"}))
    status = TargetStatus(PROJECT, Snapshot(PROJECT, tuple(page.instances), NOW, options), up=True)
    text = scrape(status, NOW, fmt)
    info = metric_values(text.removesuffix("# EOF\n")).all("modelarts_notebook_instance_info")
    assert {frozenset(dict(k)) for k in info} == {frozenset({"project_id", "id", "flavor"})}
    collector = ModelArtsCollector(lambda: [status], clock=lambda: NOW)
    generate = generate_openmetrics if fmt.openmetrics else generate_latest
    theirs = {
        k: v
        for k, v in parse_exposition(
            generate(collector).decode().removesuffix("# EOF\n")
        ).samples.items()
        if not k[0].endswith("_created")
    }
    assert parse_exposition(text.removesuffix("# EOF\n")).samples == theirs


def test_gzip_members_decompress_to_the_body_and_are_reused():
    import gzip

    status = status_of(fixture_bytes("list-instances.json"))
    renderer = Renderer(lambda: [status], clock=lambda: NOW)
    first = renderer.render(TEXT)
    members = renderer.gzip(first)
    assert gzip.decompress(b"".join(members)) == bytes(first)
    again = renderer.render(TEXT)
    assert renderer.gzip(again)[0] is members[0]  # the static member was compressed once


def test_countdowns_are_rendered_once_per_second():
    status = status_of(fixture_bytes("list-instances.json"), fetched_at=1594891000.0)
    clock = [1594891000.2]
    renderer = Renderer(lambda: [status], clock=lambda: clock[0])
    first = renderer.render(TEXT).countdowns
    clock[0] = 1594891000.9
    assert renderer.render(TEXT).countdowns is first
    clock[0] = 1594891001.0
    later = renderer.render(TEXT).countdowns
    assert later != first and b" 408\n" in first and b" 407\n" in later


def test_the_newer_apis_example_end_to_end_with_its_flavors_listing(metric_values):
    # tests/fixtures/notebooks-v2-list.json, the vendor's published example, through the
    # parser, a snapshot and the renderer; a flavors listing as SDK NotebookFlavor defines it.
    doc = json.loads(fixture_bytes("notebooks-v2-list.json"))
    doc["data"][1].update(status="RUNNING")
    doc["data"][1]["lease"]["type"] = "IDLE"
    flavors, _ = parse_flavors_page(
        json.dumps(
            {
                "data": [
                    {
                        "id": "modelarts.vm.cpu.2u",
                        "name": "CPU: 2 vCPUs 8 GB",
                        "category": "CPU",
                        "vcpus": 2,
                        "memory": 8388608,
                        "sold_out": False,
                        "free": False,
                    },
                    {
                        "id": "modelarts.vm.cpu.free",
                        "name": "free",
                        "category": "CPU",
                        "vcpus": 1,
                        "memory": 4194304,
                        "sold_out": True,
                        "free": True,
                    },
                ]
            }
        ).encode()
    )
    page = parse_notebooks_page(json.dumps(doc).encode(), {f.name: f for f in flavors})
    snapshot = Snapshot(PROJECT, tuple(page.instances), NOW - 10, flavors=tuple(flavors))
    m = metric_values(scrape(TargetStatus(PROJECT, snapshot, up=True)))
    creating, idle = "f9937afa-ca78-45b6-bc12-7ecf42553c48", "f9937afa-4451-42db-a76b-72d624749f66"
    assert m("modelarts_notebook_instance_created_timestamp_seconds", id=creating) == 1638841805.439
    assert m("modelarts_notebook_instance_auto_stop_enabled", id=idle, type="IDLE") == 1
    assert not m.has("modelarts_notebook_instance_auto_stop_timestamp_seconds", id=idle)
    assert not m.has("modelarts_notebook_instance_auto_stop_remaining_seconds", id=idle)
    info = dict(next(iter(m.all("modelarts_notebook_instance_info", id=idle))))
    assert info["image"] == "notebook2.0-mul-kernel-cpu-cp36:3.3.2-release_v1"
    assert info["flavor_type"] == "CPU"
    assert m("modelarts_notebook_flavor_sold_out", flavor="modelarts.vm.cpu.free") == 1
    assert m("modelarts_notebook_flavor_sold_out", flavor="modelarts.vm.cpu.2u") == 0


def test_a_flavors_queue_is_not_hidden_by_a_notebook_that_does_not_report_it(metric_values):
    # Both APIs list notebooks of a free flavor; only the historical one reports its queue.
    doc = json.loads(fixture_bytes("list-instances.json"))
    doc["instances"][0]["flavor_details"].update(
        status="soldOut", promo_type="Free", queuing_num=3, queue_left_time=540
    )
    flavor = doc["instances"][0]["flavor"]
    historical = parse_page(json.dumps(doc).encode()).instances
    newer = [Instance(id="n1", status="RUNNING", flavor=flavor)]
    snapshot = Snapshot(PROJECT, (*historical, *newer), NOW)
    m = metric_values(scrape(TargetStatus(PROJECT, snapshot, up=True)))
    assert m("modelarts_notebook_flavor_queue_length", flavor=flavor) == 3
    assert m("modelarts_notebook_flavor_queue_left_seconds", flavor=flavor) == 540
