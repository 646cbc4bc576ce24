"""The flavors listing, the gateway's checks (X-Project-Id, unpublished APIs) and faults."""

from __future__ import annotations

import json
from typing import Any

import requests

from exporter.simulator import DEMO_PROJECT_ID, Fault, Fleet, Simulator
from exporter.simulator.catalog import FLAVORS
from tests.unit.simulator.conftest import call, get

KIB_PER_GIB = 1024 * 1024


# -- flavors -----------------------------------------------------------------------------


def test_the_flavors_listing_is_one_page_of_every_flavor(sim: Simulator):
    # SDK ListFlavorsRequest.limit: "每一页显示的有效规格数量，默认不限制" (no limit by
    # default); the response is ListFlavorsResponse {current, data, pages, size, total}.
    before = sim.stats.flavor_requests
    status, page = call(sim, "notebooks/flavors")
    assert status == 200 and sim.stats.flavor_requests == before + 1
    n = len(FLAVORS)
    assert (page["current"], page["pages"], page["size"], page["total"]) == (0, 1, n, n)
    assert [f["id"] for f in page["data"]] == [f.name for f in FLAVORS]  # ids are the names


def test_flavors_agree_with_the_historical_flavor_details(sim: Simulator):
    # NotebookFlavor.memory in KiB: the vendor's example lists 8388608 for "8 GB"; vcpus,
    # gpu.gpu (GPUInfo), ascend.npu (AscendInfo), free, sold_out ("true 资源不足").
    _, page = call(sim, "notebooks/flavors")
    flavors = {f["id"]: f for f in page["data"]}
    _, body = sim.list_page({"de_type": "Notebook", "show_self": "false"})
    seen = set()
    for record in json.loads(body)["instances"]:
        details, flavor = record["flavor_details"], flavors[record["flavor"]]
        params = details["params"]
        seen.add(record["flavor"])
        assert flavor["vcpus"] == params["CPU"]
        assert flavor["memory"] == int(params["memory"].removesuffix("GiB")) * KIB_PER_GIB
        assert flavor["category"] == details["type"]
        assert flavor["free"] == (details["promo_type"] == "Free")
        assert flavor["sold_out"] == (details["status"] == "soldOut")
        if "NPU" in params:
            assert (flavor["ascend"]["npu"], flavor["ascend"]["type"]) == (
                params["NPU"],
                params["npu_type"],
            )
            assert "gpu" not in flavor
        elif params["GPU"]:
            assert (flavor["gpu"]["gpu"], flavor["gpu"]["type"]) == (
                params["GPU"],
                params["gpu_type"],
            )
        else:
            assert "gpu" not in flavor and "ascend" not in flavor
    assert len(seen) >= 6


def test_the_codelab_flavor_is_free_and_feature_default(sim: Simulator):
    # NotebookFlavor.feature: "DEFAULT：CodeLab免费规格实例"; the CodeLab example notebook
    # runs modelarts.vm.cpu.free.
    _, page = call(sim, "notebooks/flavors", {"feature": "DEFAULT"})
    assert [(f["id"], f["free"]) for f in page["data"]] == [("modelarts.vm.cpu.free", True)]


def test_flavors_filter_and_page_by_record_offset(sim: Simulator):
    # ListFlavorsRequest: category CPU|GPU|ASCEND, type MANAGED|DEDICATED, offset, limit.
    _, gpus = call(sim, "notebooks/flavors", {"category": "GPU"})
    assert gpus["total"] == 4 and {f["category"] for f in gpus["data"]} == {"GPU"}
    _, pools = call(sim, "notebooks/flavors", {"type": "DEDICATED"})
    assert {f["id"] for f in pools["data"]} == {f.name for f in FLAVORS if f.pool}
    _, second = call(sim, "notebooks/flavors", {"limit": "3", "offset": "3"})
    assert [f["id"] for f in second["data"]] == [f.name for f in FLAVORS[3:6]]
    assert (second["current"], second["pages"], second["size"]) == (1, 3, 3)
    assert call(sim, "notebooks/flavors", {"category": "TPU"})[0] == 400


# -- X-Project-Id ------------------------------------------------------------------------


def test_requests_without_a_signed_x_project_id_are_counted_not_refused(sim: Simulator):
    # huaweicloudsdkcore BasicCredentials.sign_request adds X-Project-Id to every request,
    # before signing. The gateway may accept a request without it: counted, answered.
    before = sim.stats.unsigned_project_id
    assert call(sim, "notebooks/all")[0] == 200
    assert sim.stats.unsigned_project_id == before
    assert call(sim, "notebooks/all", x_project_id=None)[0] == 200
    assert sim.stats.unsigned_project_id == before + 1
    assert call(sim, "notebooks/flavors", sign_project_id=False)[0] == 200
    assert sim.stats.unsigned_project_id == before + 2
    assert call(sim, "demanager/instances", {"de_type": "Notebook"}, x_project_id=None)[0] == 200
    assert sim.stats.unsigned_project_id == before + 3


def test_an_x_project_id_of_another_project_is_refused(sim: Simulator):
    # The vendor documents no answer for a header naming another project than the path:
    # our model is the gateway's authentication error, 401 APIG.0301.
    rejected = sim.stats.rejected
    for api in ("notebooks", "notebooks/all", "notebooks/flavors"):
        status, body = call(sim, api, x_project_id="ffffffffffffffffffffffffffffffff")
        assert (status, body["error_code"]) == (401, "APIG.0301")
    assert sim.stats.rejected == rejected + 3


# -- the retired historical API ----------------------------------------------------------


def test_a_retired_historical_api_is_not_published():
    # The API gateway's error for an unpublished API: 404 APIG.0101 (its error code table).
    with Simulator(Fleet(size=5, seed=1, evolve=False), demanager=False) as retired:
        status, body = call(retired, "demanager/instances", {"de_type": "Notebook"})
        assert status == 404
        assert body["error_code"] == "APIG.0101"
        assert body["error_msg"] == (
            "The API does not exist or has not been published in the environment."
        )
        assert call(retired, "notebooks/all")[0] == 200
        assert (retired.stats.not_found, retired.stats.requests) == (1, 1)


def test_the_historical_api_keeps_its_paging_and_filters(sim: Simulator):
    # API reference modelarts_03_0111: show_self "只显示自己，默认值是True"; limit default 0,
    # every instance; offset a record offset.
    def page(**params: str) -> dict[str, Any]:
        status, doc = call(sim, "demanager/instances", {"de_type": "Notebook", **params})
        assert status == 200
        return dict(doc)

    everyone = page(show_self="false")  # limit 0 (absent): every instance
    assert everyone["total_count"] == len(everyone["instances"]) == 73
    mine = page()  # show_self defaults to true
    assert {r["user"]["name"] for r in mine["instances"]} == {"ops_dev_env"}
    second = page(show_self="false", offset="10", limit="10")
    assert second["instances"] == everyone["instances"][10:20]


# -- faults ------------------------------------------------------------------------------


def test_a_fault_can_be_aimed_at_one_path():
    with Simulator(Fleet(size=5, seed=1, evolve=False)) as sim:
        sim.inject(Fault(status=500), times=1, path="flavors")
        assert call(sim, "notebooks/all")[0] == 200
        assert call(sim, "demanager/instances", {"de_type": "Notebook"})[0] == 200
        assert call(sim, "notebooks/flavors")[0] == 500
        assert call(sim, "notebooks/flavors")[0] == 200
        sim.inject(Fault(status=503), times=None)  # every path, until cleared
        assert call(sim, "notebooks/flavors")[0] == 503
        assert call(sim, "notebooks")[0] == 503
        sim.clear()
        assert call(sim, "notebooks")[0] == 200


def test_body_faults_take_the_shape_of_the_path():
    with Simulator(Fleet(size=5, seed=1, evolve=False)) as sim:
        sim.inject(Fault(kind="malformed"), times=1, path="^notebooks/all$")
        status, body = call(sim, "notebooks/all")
        assert status == 200 and body["data"] == {"id": 42}
        sim.inject(Fault(kind="truncated"), times=1, path="flavors")
        url = f"{sim.url}/v1/{DEMO_PROJECT_ID}/notebooks/flavors"
        assert requests.get(url, timeout=5).status_code == 401  # unsigned: refused first
        assert call(sim, "notebooks/all")[0] == 200  # not a flavors request: no fault
        whole = sim.flavors_page({})[1]
        cut = get(sim, "notebooks/flavors")
        assert cut.status_code == 200 and cut.content == whole[: len(whole) // 2]
        sim.inject(Fault(kind="malformed"), times=1, path="demanager")
        _, body = call(sim, "demanager/instances", {"de_type": "Notebook"})
        assert body["instances"] == {"id": 42}


def test_the_simulators_interface_is_kept():
    sim = Simulator(Fleet(size=3, seed=1, evolve=False), security_token=None)
    try:
        assert sim.ak and sim.sk and sim.security_token is None and sim.iam_users
        assert sim.credential_lifetime > 0 and sim.url.startswith("http://127.0.0.1:")
        sim.issue_temporary_keys()
        assert len(sim.temporary_keys) == 1
        login = {
            "auth": {
                "identity": {
                    "password": {
                        "user": {
                            "name": "demo-user",
                            "password": "demo-password-0000",
                            "domain": {"name": "demo-domain"},
                        }
                    }
                },
                "scope": {"project": {"id": DEMO_PROJECT_ID}},
            }
        }
        assert sim.issue_token(json.dumps(login).encode())[0] == 201 and len(sim.tokens) == 1
        assert sim.list_page({"de_type": "Notebook", "show_self": "false"})[0] == 200
        assert sim.notebooks_page({"limit": "50"})[0] == 200
        assert sim.flavors_page({})[0] == 200
        assert len(sim.fleet.records()) == 3 and sim.fleet.records_v2()
    finally:
        sim._server.server_close()
