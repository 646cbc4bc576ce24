"""Beyond the list: resources, users, status transitions and queue waits, on the vendor's
example (tests/fixtures/list-instances.json) and on listings that change between refreshes."""

from __future__ import annotations

import subprocess

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from exporter.config.series import SeriesOptions
from exporter.exposition.changes import QUEUE_WAIT_BUCKETS, Changes
from exporter.exposition.collector import ModelArtsCollector
from exporter.exposition.formats import OPENMETRICS, TEXT
from exporter.exposition.render import Renderer
from exporter.exposition.snapshot import Snapshot
from exporter.exposition.status import TargetStatus
from exporter.modelarts.client import Listing
from exporter.modelarts.demanager import parse_page
from exporter.modelarts.instance import Instance
from exporter.pipeline.cache import SnapshotCache
from tests.support.exposition import parse_exposition
from tests.support.tools import fixture_bytes, require_tool

PROJECT = "77b6a44cba5143ab91d13ab9a8ff44fd"
RUNNING = "DE-7d558ef8-c73d-11ea-964c-0255ac100033"
NOW = 1_800_000_000.0


def scrape(status: TargetStatus, fmt=TEXT) -> str:
    return bytes(Renderer(lambda: [status], clock=lambda: NOW).render(fmt)).decode()


def values(snapshot: Snapshot, **extra: object):
    status = TargetStatus(PROJECT, snapshot, up=True, **extra)  # type: ignore[arg-type]
    return parse_exposition(scrape(status))


def test_resources_of_the_vendor_example_from_flavor_details():
    # flavor_details.params of the example: {"CPU": 8, "GPU": 1, "gpu_type": "v100NV32",
    # "memory": "64GiB"}
    page = parse_page(fixture_bytes("list-instances.json"))
    m = values(Snapshot(PROJECT, tuple(page.instances), NOW))
    request = "modelarts_notebook_instance_resource_requests"
    assert m(request, id=RUNNING, resource="cpu", unit="core") == 8
    assert m(request, id=RUNNING, resource="gpu", unit="card") == 1
    assert m(request, id=RUNNING, resource="memory", unit="byte") == 64 * 1024**3
    assert not m.has(request, id=RUNNING, resource="npu")  # only the resources known
    total = "modelarts_notebook_resource_requests"
    assert m(total, status="RUNNING", resource="gpu", flavor="modelarts.bm.gpu.v100NV32") == 1
    info = dict(next(iter(m.all("modelarts_notebook_instance_info", id=RUNNING))))
    assert info["accelerator"] == "v100NV32"
    assert m("modelarts_notebook_user_instances", user_name="ops_dev_env", status="RUNNING") == 1


def test_aggregates_stay_with_per_instance_and_per_user_series_off():
    page = parse_page(fixture_bytes("list-instances.json"))
    options = SeriesOptions(per_instance=False, per_user=False)
    m = values(Snapshot(PROJECT, tuple(page.instances), NOW, options))
    assert not m.has("modelarts_notebook_instance_resource_requests")
    assert not m.has("modelarts_notebook_user_instances")
    assert m("modelarts_notebook_resource_requests", status="RUNNING", resource="cpu") == 8


def nb(id_: str, status: str, **kw: object) -> Instance:
    return Instance(id=id_, status=status, flavor=str(kw.pop("flavor", "f")), **kw)  # type: ignore[arg-type]


def test_transitions_between_two_listings():
    first = [nb("a", "STARTING"), nb("b", "RUNNING"), nb("gone", "STOPPED")]
    second = [nb("a", "RUNNING"), nb("b", "RUNNING"), nb("new", "CREATING")]
    changes = Changes().after(None, first, NOW)
    assert changes.transitions == {}  # the first listing after start counts nothing
    changes = changes.after(first, second, NOW + 30)
    assert changes.transitions == {
        ("STARTING", "RUNNING"): 1,
        ("absent", "CREATING"): 1,
        ("STOPPED", "absent"): 1,
    }
    third = [nb("a", "STOPPING"), nb("b", "RUNNING"), nb("new", "RUNNING")]
    assert changes.after(second, third, NOW + 60).transitions[("STARTING", "RUNNING")] == 1


def test_a_notebook_leaving_the_queue_is_observed_once():
    queued = nb("q", "CREATE_QUEUING", flavor="gpu.free", queued=True, queue_begin=NOW - 400)
    changes = Changes().after(None, [queued], NOW)
    empty = changes.queue_waits[("gpu.free", "CREATE_QUEUING")]
    assert empty.count == 0  # a queue with notebooks has its histogram from the start
    changes = changes.after([queued], [queued], NOW + 30)  # still queued: nothing yet
    assert changes.queue_waits[("gpu.free", "CREATE_QUEUING")].count == 0
    left = nb("q", "CREATING", flavor="gpu.free")
    changes = changes.after([queued], [left], NOW + 60)
    waited = changes.queue_waits[("gpu.free", "CREATE_QUEUING")]
    assert (waited.count, waited.sum) == (1, 460.0)
    assert waited.buckets == tuple(int(bound >= 460.0) for bound in QUEUE_WAIT_BUCKETS)
    again = changes.after([left], [nb("q", "RUNNING", flavor="gpu.free")], NOW + 90)
    assert again.queue_waits[("gpu.free", "CREATE_QUEUING")].count == 1  # once


class Script:
    """A fetch that returns the listings (or raises the errors) it is given, in turn."""

    def __init__(self, *steps: list[Instance] | Exception) -> None:
        self.steps = list(steps)

    def __call__(self) -> Listing:
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return Listing(step, 0)


@pytest.mark.parametrize("fmt", [TEXT, OPENMETRICS], ids=lambda f: f.name)
def test_the_cache_counts_across_refreshes_and_a_failed_one_changes_nothing(fmt):
    from exporter.modelarts.errors import ApiError

    clock = [NOW]
    queued = nb("q", "START_QUEUING", flavor="gpu.free", queued=True, queue_begin=NOW - 100)
    fetch = Script(
        [nb("a", "CREATING"), queued],
        ApiError("down", status=503),
        [nb("a", "RUNNING"), nb("q", "STARTING", flavor="gpu.free")],
    )
    cache = SnapshotCache(
        PROJECT,
        fetch,
        ttl=10,
        max_staleness=300,
        target=("research", "cn-north-4", "auto"),
        clock=lambda: clock[0],
    )
    cache.status()
    for _ in range(2):
        clock[0] += 11
        status = cache.status()
    text = bytes(Renderer(lambda: [status], clock=lambda: clock[0]).render(fmt)).decode()
    m = parse_exposition(text.removesuffix("# EOF\n"))
    transitions = "modelarts_notebook_status_transitions_total"
    assert m(transitions, **{"from": "CREATING", "to": "RUNNING"}) == 1
    assert m(transitions, **{"from": "START_QUEUING", "to": "STARTING"}) == 1
    assert len(m.all(transitions)) == 2
    wait = "modelarts_notebook_queue_wait_seconds"
    assert m(f"{wait}_count", flavor="gpu.free", queue="START_QUEUING") == 1
    assert m(f"{wait}_sum", flavor="gpu.free", queue="START_QUEUING") == 122  # 100 + 2 × 11
    assert m(f"{wait}_bucket", flavor="gpu.free", queue="START_QUEUING", le="300.0") == 1
    assert m(f"{wait}_bucket", flavor="gpu.free", queue="START_QUEUING", le="60.0") == 0
    assert m(f"{wait}_bucket", flavor="gpu.free", queue="START_QUEUING", le="+Inf") == 1
    info = "modelarts_exporter_target_info"
    assert m(info, project_id=PROJECT, target="research", region="cn-north-4", api="auto") == 1
    assert m.has("process_resident_memory_bytes") and m.has("process_start_time_seconds")
    assert "# TYPE modelarts_notebook_queue_wait_seconds histogram" in text


@pytest.mark.parametrize("fmt", [TEXT, OPENMETRICS], ids=lambda f: f.name)
def test_histogram_and_counter_as_prometheus_client_writes_them_and_promtool_accepts(fmt):
    queued = nb("q", "CREATE_QUEUING", flavor='free "gpu"', queued=True, queue_begin=NOW - 90)
    changes = Changes().after(None, [queued], NOW)
    changes = changes.after([queued], [nb("q", "RUNNING", flavor='free "gpu"')], NOW + 5)
    snapshot = Snapshot(PROJECT, (nb("q", "RUNNING"),), NOW + 5, changes=changes)
    status = TargetStatus(PROJECT, snapshot, up=True)
    renderer = Renderer(lambda: [status], clock=lambda: NOW, process_metrics=False)
    ours = bytes(renderer.render(fmt)).decode()
    generate = generate_openmetrics if fmt.openmetrics else generate_latest
    theirs = generate(ModelArtsCollector(lambda: [status], clock=lambda: NOW)).decode()

    def samples(text: str) -> dict:
        parsed = parse_exposition(text.removesuffix("# EOF\n")).samples
        return {k: v for k, v in parsed.items() if not k[0].endswith("_created")}

    assert samples(ours) == samples(theirs)
    assert (
        samples(ours)[
            (
                "modelarts_notebook_queue_wait_seconds_bucket",
                frozenset(
                    {
                        ("project_id", PROJECT),
                        ("flavor", 'free "gpu"'),
                        ("queue", "CREATE_QUEUING"),
                        ("le", "60.0"),
                    }
                ),
            )
        ]
        == 0
    )
    result = subprocess.run(
        [require_tool("promtool"), "check", "metrics"],
        input=ours.encode(),
        capture_output=True,
        timeout=30,
    )
    assert b"error" not in result.stderr.lower() + result.stdout.lower(), result.stderr
