"""The newer Notebook API as the vendor defines it: records, lease, flavors, paging, sources.

Sources cited per test: the vendor SDK's models (`huaweicloudsdkmodelarts.v1.model`), its
published example response (tests/fixtures/notebooks-v2-list.json) and the vendor's
Terraform provider (`data_source_huaweicloud_modelarts_notebooks.go`, which pages with
`limit=50` and `offset += len(data)`).
"""

from __future__ import annotations

import json
import logging

import pytest
from pydantic import SecretStr

from exporter.modelarts.auth.aksk import AkSkProvider
from exporter.modelarts.client import ListQuery, ModelArtsClient
from exporter.modelarts.errors import ApiError
from exporter.modelarts.flavors import Flavor, flavor_type, parse_flavors_page
from exporter.modelarts.notebooks import Notebook, parse_notebooks_page
from exporter.modelarts.statuses import KNOWN_STATUSES, NOTEBOOKS_ONLY_STATUSES
from tests.support.canned import Canned
from tests.support.tools import fixture_bytes

# Paths of the API, served by the `canned` fixture (a loopback server).
ALL = "/v1/p1/notebooks/all"
OWN = "/v1/p1/notebooks"
FLAVORS = "/v1/p1/notebooks/flavors"
HISTORICAL = "/v1/p1/demanager/instances"


def example() -> dict:
    return json.loads(fixture_bytes("notebooks-v2-list.json"))


def parse(doc: dict, flavors: dict[str, Flavor] | None = None):
    return parse_notebooks_page(json.dumps(doc).encode(), flavors or {}).instances


# -- records -----------------------------------------------------------------------------


def test_the_vendor_example_parses_with_times_from_the_lease():
    page = parse_notebooks_page(fixture_bytes("notebooks-v2-list.json"))
    assert (page.total_count, page.pages, page.invalid) == (2, 1, 0)
    first = page.instances[0]
    assert (first.id, first.status, first.name) == (
        "f9937afa-ca78-45b6-bc12-7ecf42553c48",
        "CREATING",
        "notebook_5ee4bf0e",
    )
    # SDK Lease.create_at: "实例创建的时间，UTC毫秒"; NotebookResp has no top-level time.
    assert first.created == pytest.approx(1638841805.439)
    assert first.updated == pytest.approx(1638841805.439)
    # SDK Image.name has no tag; the example's tag is in swr_path after the last ':'.
    assert first.image == "notebook2.0-mul-kernel-cpu-cp36:3.3.2-release_v1"
    assert first.flavor == "modelarts.vm.cpu.free" and first.flavor_type == "CPU"
    assert first.auto_stop is True and first.stop_timestamp is None  # not running yet


def test_a_timing_lease_stops_at_create_at_plus_duration():
    # SDK Lease.duration: counted from create_at; milliseconds (SDK LeaseReq, the example).
    doc = example()
    doc["data"][0].update(status="RUNNING", lease={**doc["data"][0]["lease"], "type": "TIMING"})
    doc["data"][0]["lease"]["update_at"] = 1638845000000  # a later update moves nothing
    running = parse(doc)[0]
    assert running.stop_timestamp == pytest.approx(1638841805.439 + 3600)
    assert (running.auto_stop, running.auto_stop_type) == (True, "TIMING")


def test_an_idle_lease_has_auto_stop_on_but_no_stop_time():
    # SDK Lease.type: "TIMING：自动停止。 IDLE：空闲停止。" (idle stop: no time to count to)
    doc = example()
    doc["data"][0].update(status="RUNNING", lease={**doc["data"][0]["lease"], "type": "IDLE"})
    idle = parse(doc)[0]
    assert (idle.auto_stop, idle.auto_stop_type, idle.stop_timestamp) == (True, "IDLE", None)


def test_fail_reason_is_a_bounded_reason_not_an_error_code():
    doc = example()
    doc["data"][1].update(status="ERROR", fail_reason="image pull failed: " + "x" * 300)
    doc["data"][1]["pool"] = {"id": "pool-1", "name": "team-a"}
    doc["data"][1]["user"] = {"id": "u1", "name": "li.wei", "domain": {"id": "d", "name": "acme"}}
    ok, failed = parse(doc)
    assert ok.error is None and ok.reason == ""
    assert failed.error == "" and failed.reason.startswith("image pull failed")
    assert len(failed.reason) == 100
    assert (failed.pool_id, failed.pool_name, failed.user_name) == ("pool-1", "team-a", "li.wei")


def test_a_custom_spec_gives_type_and_resources():
    # SDK NotebookResp.flavor: "custom.flavor.spec.code" for a custom spec, described by
    # NotebookCustomSpecRep {gpu, gpu_type, cpu, memory, category}.
    doc = example()
    doc["data"][0]["flavor"] = "custom.flavor.spec.code"
    doc["data"][0]["custom_spec"] = {
        "gpu": 1,
        "gpu_type": "T4",
        "cpu": 8,
        "memory": 32768,
        "category": "GPU",
    }
    custom = parse(doc)[0]
    assert (custom.flavor_type, custom.cpu, custom.gpu, custom.accelerator) == ("GPU", 8, 1, "T4")
    assert custom.memory == 32768 * 1024**2


def test_the_flavors_listing_gives_type_resources_and_sales():
    # SDK NotebookFlavor {category, vcpus, memory, gpu{gpu,type}, ascend{npu,type}, sold_out}
    body = json.dumps(
        {
            "current": 0,
            "data": [
                {
                    "id": "modelarts.bm.npu.arm.8snt9b3.d",
                    "name": "Ascend: 8*Snt9b3",
                    "category": "ASCEND",
                    "vcpus": 192,
                    "memory": 1572864 * 1024,
                    "ascend": {"npu": 8, "type": "Ascend910B"},
                    "sold_out": True,
                    "free": False,
                },
                {"id": "bad", "name": "no numbers", "vcpus": "many"},
            ],
            "pages": 1,
            "size": 2,
            "total": 2,
        }
    ).encode()
    flavors, invalid = parse_flavors_page(body)
    assert invalid == 1
    (npu,) = flavors
    assert (npu.name, npu.flavor_type, npu.cpu, npu.npu, npu.accelerator) == (
        "modelarts.bm.npu.arm.8snt9b3.d",
        "Ascend",
        192,
        8,
        "Ascend910B",
    )
    assert npu.memory == 1536 * 1024**3  # KiB in the listing (the vendor's example: 8388608 = 8 GB)
    doc = example()
    doc["data"][0]["flavor"] = npu.name
    listed = parse(doc, {npu.name: npu})[0]
    assert (listed.flavor_type, listed.npu, listed.flavor_sale) == ("Ascend", 8, "soldOut")


@pytest.mark.parametrize(
    ("declared", "name", "expected"),
    [
        (("ASCEND",), "", "Ascend"),  # NotebookFlavor.category; flavor_details.type
        (("Ascend",), "", "Ascend"),  # profile.flavor_type of the historical API
        ((), "modelarts.bm.d910.xlarge.1", "Ascend"),
        ((), "modelarts.bm.npu.arm.8snt9b3.d", "Ascend"),
        ((), "modelarts.vm.gpu.t4", "GPU"),
        ((), "modelarts.vm.cpu.2u", "CPU"),
        (("", "GPU"), "modelarts.vm.cpu.2u", "GPU"),  # what the API declares wins
        ((), "custom.flavor.spec.code", ""),
    ],
)
def test_flavor_type_has_one_spelling(declared, name, expected):
    assert flavor_type(*declared, name=name) == expected


def test_known_statuses_cover_both_apis():
    assert set(NOTEBOOKS_ONLY_STATUSES) <= set(KNOWN_STATUSES)
    assert {"CREATE_QUEUING", "RESIZE_FAILED", "FROZEN", "SNAPSHOTTING"} <= set(KNOWN_STATUSES)


# -- the listing -------------------------------------------------------------------------


def notebooks(*ids: str, total: int | None = None) -> dict[str, object]:
    data = [{"id": i, "status": "RUNNING", "name": i} for i in ids]
    total = len(ids) if total is None else total
    return {"current": 0, "data": data, "pages": -(-total // 50), "size": 50, "total": total}


def client(canned: Canned, api: str = "notebooks", **query: object) -> ModelArtsClient:
    auth = AkSkProvider(SecretStr("AK"), SecretStr("SK"))
    return ModelArtsClient(canned.url, "p1", auth, api=api, page_size=0, query=ListQuery(**query))  # type: ignore[arg-type]


def calls(canned: Canned, path: str) -> int:
    """Requests the server got for `path`."""
    return sum(r.path == path for r in canned.requests)


def serve(canned: Canned, path: str, ids_by_feature: dict[str, list[str]]) -> None:
    """A list endpoint that pages by record offset, 50 at most, per feature."""

    def answer(request):
        params = request.params
        ids = ids_by_feature.get(params.get("feature", "NOTEBOOK"), [])
        offset, limit = int(params["offset"]), int(params["limit"])
        return 200, {}, json.dumps(notebooks(*ids[offset : offset + limit], total=len(ids)))

    canned.callback(path, answer)


def test_every_notebook_of_the_project_by_record_offsets_both_features(canned):
    # SDK ListNotebooksRequest.offset: "分页记录的起始位置偏移量" (a record offset); limit 10,
    # 20 or 50; feature NOTEBOOK (default) or DEFAULT (CodeLab); ListAllNotebooks: "所有已创建".
    canned.get(FLAVORS, json={"data": []})
    serve(canned, ALL, {"NOTEBOOK": [f"n{i}" for i in range(84)], "DEFAULT": ["codelab"]})
    listing = client(canned).list_instances()
    assert len(listing.instances) == 85
    lists = [r.params for r in canned.requests if r.path == ALL]
    assert [(p["feature"], p["offset"], p["limit"]) for p in lists] == [
        ("NOTEBOOK", "0", "50"),
        ("NOTEBOOK", "50", "50"),
        ("DEFAULT", "0", "50"),
    ]


def test_show_self_lists_the_callers_own_and_filters_are_sent(canned):
    canned.get(FLAVORS, json={"data": []})
    serve(canned, OWN, {"NOTEBOOK": ["mine"]})
    client(canned, show_self=True, workspace_id="ws-1", pool_id="pool-1").list_instances()
    sent = [r.params for r in canned.requests if r.path.endswith("/notebooks")]
    assert sent and all(p["workspace_id"] == "ws-1" and p["pool_id"] == "pool-1" for p in sent)
    assert all("owner" not in p and "show_self" not in p for p in sent)  # not the SDK's


def test_flavors_are_listed_once_per_ttl_and_a_failure_keeps_the_last_good_list(canned, caplog):
    clock = [1000.0]
    flavor = {"id": "modelarts.vm.gpu.t4", "name": "t4", "category": "GPU", "sold_out": False}
    canned.get(FLAVORS, json={"data": [flavor]})
    canned.get(FLAVORS, status=500, json={"error_code": "ModelArts.0001", "error_msg": "x"})
    serve(canned, ALL, {"NOTEBOOK": ["a"]})
    auth = AkSkProvider(SecretStr("AK"), SecretStr("SK"))
    c = ModelArtsClient(
        canned.url, "p1", auth, api="notebooks", flavor_ttl=600, clock=lambda: clock[0]
    )
    assert [f.name for f in c.list_instances().flavors] == ["modelarts.vm.gpu.t4"]
    clock[0] += 300
    c.list_instances()
    assert calls(canned, FLAVORS) == 1
    clock[0] += 400  # past the TTL: listed again, and it fails (a 5xx is retried once)
    listing = c.list_instances()
    assert [i.id for i in listing.instances] == ["a"]  # instances are not blanked
    assert [f.name for f in listing.flavors] == ["modelarts.vm.gpu.t4"]  # the last good one
    assert c.telemetry().flavor_failures == 1
    assert "flavors listing failed, keeping the last good one (1 flavors)" in caplog.text


def test_auto_treats_a_missing_historical_api_as_an_empty_source_said_once(canned, caplog):
    caplog.set_level(logging.INFO)
    # The API gateway's answer for an API not published: 404 APIG.0101.
    canned.get(HISTORICAL, status=404, json={"error_code": "APIG.0101", "error_msg": "no"})
    canned.get(FLAVORS, json={"data": []})
    serve(canned, ALL, {"NOTEBOOK": ["a"]})
    c = client(canned, "auto")
    assert [i.id for i in c.list_instances().instances] == ["a"]
    assert [i.id for i in c.list_instances().instances] == ["a"]
    assert calls(canned, HISTORICAL) == 1  # not asked again
    assert caplog.text.count("historical list API is not offered here") == 1


def test_both_insists_on_the_historical_api(canned):
    canned.get(HISTORICAL, status=404, json={"error_code": "APIG.0101", "error_msg": "no"})
    with pytest.raises(ApiError, match=r"APIG\.0101"):
        client(canned, "both").list_instances()


def test_both_apis_count_each_notebook_once_keeping_the_historical_record(canned):
    canned.get(
        HISTORICAL,
        json={
            "total_count": 2,
            "instances": [
                {"id": "DE-x", "status": "START_QUEUING", "queuing_info": {"rank": 2}},
                {"id": "DE-y", "status": "RUNNING"},
            ],
        },
    )
    canned.get(FLAVORS, json={"data": []})
    serve(canned, ALL, {"NOTEBOOK": ["x", "z"]})
    by_id = {i.id: i for i in client(canned, "auto").list_instances().instances}
    assert sorted(by_id) == ["DE-x", "DE-y", "z"]
    assert by_id["DE-x"].status == "START_QUEUING"  # the older API's record, with its queue


def test_the_newer_lists_records_of_historical_notebooks_are_left_out_unread(canned, monkeypatch):
    """Both lists have the fleet: the newer one's records of the historical notebooks are
    neither read nor kept, and paging goes on past pages made only of them."""
    historical = [{"id": f"DE-n{i}", "status": "RUNNING"} for i in range(60)]
    canned.get(HISTORICAL, json={"total_count": 60, "instances": historical})
    canned.get(FLAVORS, json={"data": []})
    serve(canned, ALL, {"NOTEBOOK": [f"n{i}" for i in range(60)] + ["only-newer"]})
    read: list[str] = []
    original = Notebook.to_instance
    monkeypatch.setattr(
        Notebook, "to_instance", lambda self, f=None: read.append(self.id) or original(self, f)
    )
    c = client(canned, "auto")
    listing = c.list_instances()
    assert len(listing.instances) == 61 and "only-newer" in {i.id for i in listing.instances}
    assert read == ["only-newer"]
    assert calls(canned, ALL) == 3  # 50 + 11, DEFAULT


def test_a_record_left_out_is_read_once_the_historical_list_no_longer_has_it(canned):
    lists = [
        [{"id": "DE-a", "status": "RUNNING"}, {"id": "DE-b", "status": "RUNNING"}],
        [{"id": "DE-a", "status": "RUNNING"}],  # b dropped out of the historical list
    ]
    for instances in lists:
        canned.get(HISTORICAL, json={"total_count": len(instances), "instances": instances})
    canned.get(FLAVORS, json={"data": []})
    serve(canned, ALL, {"NOTEBOOK": ["a", "b"]})
    c = client(canned, "auto")
    assert sorted(i.id for i in c.list_instances().instances) == ["DE-a", "DE-b"]
    assert sorted(i.id for i in c.list_instances().instances) == ["DE-a", "b"]


def test_a_403_names_the_permission_and_ends_the_refresh(canned):
    canned.get(FLAVORS, json={"data": []})
    canned.get(ALL, status=403, json={"error_code": "ModelArts.0203", "error_msg": "denied"})
    with pytest.raises(ApiError, match="modelarts:notebook:listAllNotebooks") as raised:
        client(canned).list_instances()
    assert raised.value.status == 403
    assert calls(canned, ALL) == 1  # no second feature


def test_an_auth_failure_on_flavors_ends_the_refresh(canned):
    canned.get(FLAVORS, status=401, json={"error_code": "APIG.0301", "error_msg": "bad"})
    serve(canned, ALL, {"NOTEBOOK": ["a"]})
    with pytest.raises(ApiError, match=r"APIG\.0301"):
        client(canned).list_instances()
    assert [r.path for r in canned.requests] == [FLAVORS]


def test_a_retry_after_holds_for_every_call(canned):
    clock = [1000.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    canned.get(FLAVORS, status=429, headers={"Retry-After": "3"}, json={"error_code": "APIG.0308"})
    serve(canned, ALL, {"NOTEBOOK": ["a"]})
    auth = AkSkProvider(SecretStr("AK"), SecretStr("SK"))
    c = ModelArtsClient(
        canned.url,
        "p1",
        auth,
        api="notebooks",
        clock=lambda: clock[0],
        sleep=sleep,
        refresh_timeout=30,
    )
    times: list[float] = []
    canned.reset()
    original = c._prepare  # every request is prepared once, just before it is sent

    def timed(*args, **kwargs):
        times.append(clock[0])
        return original(*args, **kwargs)

    c._prepare = timed  # type: ignore[method-assign]
    c.list_instances()
    # The flavors call was throttled three times (waiting twice, then given up on): the
    # list call that follows it waits for the last Retry-After too.
    first_list = next(t for t, r in zip(times, canned.requests, strict=True) if r.path == ALL)
    flavor_calls = [t for t, r in zip(times, canned.requests, strict=True) if r.path == FLAVORS]
    assert len(flavor_calls) == 3 and first_list >= flavor_calls[-1] + 3
