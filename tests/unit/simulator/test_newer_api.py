"""The newer list API as the vendor defines it: SDK ListNotebooksRequest and
ListAllNotebooksRequest parameters, NotebookResp records, Lease semantics."""

from __future__ import annotations

import json
import math
import re
import uuid
from collections import Counter
from typing import Any

from exporter.simulator import Fleet, Simulator
from exporter.simulator.catalog import CALLER, CUSTOM_FLAVOR, FLAVOR_BY_NAME, SECOND_WORKSPACE
from exporter.simulator.records import user_id
from tests.unit.simulator.conftest import DEFAULT_LISTING, call, listing

# SDK NotebookResp.status: "枚举类型" INIT ... FROZEN.
SDK_STATUSES = {
    "INIT",
    "CREATING",
    "STARTING",
    "STOPPING",
    "DELETING",
    "RUNNING",
    "STOPPED",
    "SNAPSHOTTING",
    "CREATE_FAILED",
    "START_FAILED",
    "DELETE_FAILED",
    "ERROR",
    "DELETED",
    "FROZEN",
}


def everything(sim: Simulator) -> list[dict[str, Any]]:
    return [
        record
        for feature in ("NOTEBOOK", "DEFAULT")
        for workspace in ("0", SECOND_WORKSPACE)
        for record in listing(sim, "notebooks/all", feature=feature, workspace_id=workspace)
    ]


# -- paging ------------------------------------------------------------------------------


def test_two_pages_of_fifty_cover_84_notebooks_in_two_requests(sim: Simulator):
    # SDK ListNotebooksRequest.offset: "分页记录的起始位置偏移量" (a record offset, default
    # 0); ListNotebooksResponse: current page, pages, size per page, total records.
    before = sim.stats.requests
    status, first = call(sim, "notebooks/all", {"limit": "50", "offset": "0"})
    status2, second = call(sim, "notebooks/all", {"limit": "50", "offset": "50"})
    assert sim.stats.requests - before == 2 and status == status2 == 200
    assert (first["current"], first["pages"], first["size"], first["total"]) == (0, 2, 50, 84)
    assert (second["current"], second["pages"], second["size"], second["total"]) == (1, 2, 50, 84)
    ids = [r["id"] for r in first["data"] + second["data"]]
    assert len(ids) == len(set(ids)) == DEFAULT_LISTING


def test_an_offset_inside_a_page_starts_at_that_record(sim: Simulator):
    _, whole = call(sim, "notebooks/all", {"limit": "50"})
    _, shifted = call(sim, "notebooks/all", {"limit": "20", "offset": "7"})
    assert [r["id"] for r in shifted["data"]] == [r["id"] for r in whole["data"][7:27]]
    assert shifted["current"] == 0 and shifted["pages"] == math.ceil(84 / 20)


def test_limit_is_10_20_or_50_and_10_by_default(sim: Simulator):
    # SDK ListNotebooksRequest.limit: "取值范围：[10,20,50]。默认取值：10。"
    status, page = call(sim, "notebooks/all")
    assert status == 200 and page["size"] == 10 and len(page["data"]) == 10
    for limit in ("10", "20", "50"):
        assert call(sim, "notebooks/all", {"limit": limit})[0] == 200
    for limit in ("0", "5", "30", "100", "x"):
        status, body = call(sim, "notebooks/all", {"limit": limit})
        assert (status, body["error_code"]) == (400, "ModelArts.0104"), limit
    assert call(sim, "notebooks/all", {"offset": "-1"})[0] == 400


# -- filters -----------------------------------------------------------------------------


def test_feature_is_notebook_by_default_and_default_lists_codelab(sim: Simulator):
    # SDK ListNotebooksRequest.feature: DEFAULT "CodeLab免费规格实例，每个用户最多只能创建一个",
    # NOTEBOOK "计费规格实例"; "默认取值：NOTEBOOK".
    billed = listing(sim, "notebooks/all")
    assert {r["feature"] for r in billed} == {"NOTEBOOK"}
    codelab = listing(sim, "notebooks/all", feature="DEFAULT")
    assert len(codelab) >= 2 and {r["feature"] for r in codelab} == {"DEFAULT"}
    assert {r["flavor"] for r in codelab} == {"modelarts.vm.cpu.free"}
    assert max(Counter(r["user"]["id"] for r in codelab).values()) == 1  # one per user
    status, body = call(sim, "notebooks/all", {"feature": "ALL"})
    assert (status, body["error_code"]) == (400, "ModelArts.0104")


def test_workspace_is_0_by_default_and_filters(sim: Simulator):
    # SDK ListNotebooksRequest.workspace_id: "未创建工作空间时默认值为“0”"; "默认取值：0".
    default = listing(sim, "notebooks/all")
    assert {r["workspace_id"] for r in default} == {"0"}
    other = listing(sim, "notebooks/all", workspace_id=SECOND_WORKSPACE)
    assert len(other) >= 2 and {r["workspace_id"] for r in other} == {SECOND_WORKSPACE}
    assert not {r["id"] for r in other} & {r["id"] for r in default}


def test_all_lists_every_users_notebooks_and_notebooks_the_callers(sim: Simulator):
    # ListAllNotebooks: "所有已创建的Notebook实例" (all created); ListNotebooks: those that
    # "满足特定条件" (meet conditions): modelled as the caller's own.
    every = listing(sim, "notebooks/all")
    mine = listing(sim, "notebooks")
    assert {r["user"]["name"] for r in mine} == {CALLER}
    assert len({r["user"]["name"] for r in every}) > 1
    assert [r for r in every if r["user"]["name"] == CALLER] == mine


def test_owner_filters_by_the_owners_user_id(sim: Simulator):
    # SDK ListNotebooksRequest.owner: "实例归属的用户ID" (32 lowercase letters and digits).
    owner = user_id("li.wei")
    assert re.fullmatch(r"[0-9a-f]{32}", owner)
    for api in ("notebooks", "notebooks/all"):
        theirs = listing(sim, api, owner=owner)
        assert theirs and {r["user"]["name"] for r in theirs} == {"li.wei"}
    everyone = listing(sim, "notebooks/all")
    assert listing(sim, "notebooks/all", owner=owner) == [
        r for r in everyone if r["user"]["id"] == owner
    ]


def test_pool_status_and_name_filter(sim: Simulator):
    # SDK ListNotebooksRequest.pool_id ("专属资源池ID"), .status (one NotebookResp status),
    # .name ("模糊匹配", a fuzzy match).
    pooled = listing(sim, "notebooks/all", pool_id="pool-7f3c2a91")
    assert pooled and {r["pool"]["id"] for r in pooled} == {"pool-7f3c2a91"}
    running = listing(sim, "notebooks/all", status="RUNNING")
    assert running and {r["status"] for r in running} == {"RUNNING"}
    named = listing(sim, "notebooks/all", name="CUSTOM")
    assert {r["name"] for r in named} == {"custom-2xa100", "custom-cpu-prep"}


# -- records -----------------------------------------------------------------------------


def test_statuses_are_the_sdks_and_every_one_is_shown(sim: Simulator):
    assert {r["status"] for r in everything(sim)} == SDK_STATUSES


def test_ids_are_uuids_and_the_historical_notebooks_are_listed_without_de(sim: Simulator):
    # SDK ListNotebooksRequest.id: "ID格式为通用唯一识别码（UUID）"; the historical ids are
    # "DE-<uuid>" (the example list). Both APIs listing one notebook is our model.
    ids = {r["id"] for r in everything(sim)}
    assert all(str(uuid.UUID(i)) == i for i in ids)
    _, body = sim.list_page({"de_type": "Notebook", "show_self": "false"})
    historical = {r["id"].removeprefix("DE-") for r in json.loads(body)["instances"]}
    assert historical < ids


def test_a_running_timing_lease_ends_at_the_stop_time(sim: Simulator):
    # SDK Lease: create_at "实例创建的时间，UTC毫秒"; duration "以创建时间为起点计算" (from
    # the creation time), so a TIMING lease stops at create_at + duration; update_at the
    # last update. The historical record of the same notebook tells its stop time.
    _, body = sim.list_page({"de_type": "Notebook", "show_self": "false"})
    old = {r["id"].removeprefix("DE-"): r for r in json.loads(body)["instances"]}
    checked = 0
    for record in everything(sim):
        lease = record["lease"]
        assert lease["update_at"] >= lease["create_at"]
        twin = old.get(record["id"])
        if twin is None:
            continue
        assert lease["create_at"] == int(twin["creation_timestamp"])
        stop = twin["spec"]["auto_stop"].get("stop_timestamp")
        if record["status"] == "RUNNING" and lease["type"] == "TIMING" and stop:
            assert lease["create_at"] + lease["duration"] == stop
            checked += 1
    assert checked >= 5


def test_newer_only_running_timing_leases_end_at_their_stop_time():
    fleet = Fleet(size=20, seed=7, evolve=False)
    records = {r["name"]: r for r in fleet.records_v2()}
    checked = 0
    for nb in fleet.newer_only:
        lease = records[nb.name]["lease"]
        if nb.status == "RUNNING" and lease["type"] == "TIMING":
            assert nb.stop_at is not None
            assert lease["create_at"] + lease["duration"] == int(nb.stop_at * 1000)
            checked += 1
    assert checked >= 2


def test_a_few_leases_are_idle(sim: Simulator):
    # SDK Lease.type: "TIMING：自动停止。 IDLE：空闲停止。" An IDLE lease stops when idle.
    idle = [r for r in everything(sim) if r["lease"]["type"] == "IDLE"]
    assert 2 <= len(idle) <= 5
    assert all(r["lease"]["enable"] for r in idle)


def test_a_custom_spec_sizes_the_notebook(sim: Simulator):
    # SDK NotebookResp.flavor: with a custom spec it is always "custom.flavor.spec.code";
    # custom_spec (NotebookCustomSpecRep) gives the size.
    records = everything(sim)
    custom = [r for r in records if "custom_spec" in r]
    assert len(custom) >= 2
    assert all(r["flavor"] == CUSTOM_FLAVOR for r in custom)
    assert all(r["flavor"] != CUSTOM_FLAVOR for r in records if "custom_spec" not in r)
    for record in custom:
        spec = record["custom_spec"]
        assert spec["cpu"] >= 0.4 and spec["memory"] >= 513  # the SDK's lower bounds
        assert spec["category"] in ("CPU", "GPU") and spec["arch"] in ("X86_64", "AARCH64")
        assert spec["resource_flavor"] in FLAVOR_BY_NAME and record["pool"]["id"]
        assert (spec["gpu"] > 0) == (spec["category"] == "GPU")


def test_the_image_name_has_no_tag(sim: Simulator):
    # SDK Image.name allows lowercase letters, digits, "-", "_" and "." only; the example's
    # swr_path ends ":3.3.2-release_v1", its tag; `tag` (SDK Image.tag) is optional.
    records = everything(sim)
    for record in records:
        image = record["image"]
        assert re.fullmatch(r"[a-z0-9._-]+", image["name"])
        path, tag = image["swr_path"].rsplit(":", 1)
        assert path.endswith(f"/{image['name']}") and tag
        assert image.get("tag", tag) == tag
    assert any("tag" in r["image"] for r in records)
    assert any("tag" not in r["image"] for r in records)


def test_failed_notebooks_say_why_and_pooled_ones_name_the_pool(sim: Simulator):
    # SDK NotebookResp.fail_reason ("实例失败原因") and .pool (Pool {id, name}).
    for record in everything(sim):
        failed = record["status"] in ("CREATE_FAILED", "START_FAILED", "DELETE_FAILED", "ERROR")
        assert ("fail_reason" in record) == failed, record["status"]
        flavor = FLAVOR_BY_NAME.get(record["flavor"])
        if flavor is not None:
            assert record.get("pool", {}).get("id") == flavor.pool
