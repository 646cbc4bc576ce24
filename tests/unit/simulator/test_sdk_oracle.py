"""The vendor's SDK is the oracle: every key the simulator serves on the newer API is a
field of the SDK model it stands for, with the SDK's type, and every query parameter it
accepts is one the SDK's request class sends (huaweicloudsdkmodelarts.v1.model, 3.1.219)."""

from __future__ import annotations

from typing import Any

import huaweicloudsdkmodelarts.v1.model as sdk
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkmodelarts.v1 import (
    ListAllNotebooksRequest,
    ListFlavorsRequest,
    ListNotebooksRequest,
    ModelArtsClient,
)

from exporter.simulator import DEMO_AK, DEMO_PROJECT_ID, DEMO_SK, Simulator
from exporter.simulator.catalog import SECOND_WORKSPACE
from exporter.simulator.pages import FLAVORS_PARAMS, NOTEBOOKS_PARAMS
from tests.unit.simulator.conftest import call, listing

_PRIMITIVES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),  # JSON has one number type
    "bool": (bool,),
}


def conforms(value: Any, sdk_type: str, where: str, seen: set[str]) -> None:
    """`value` is what the SDK type `sdk_type` describes: its keys are the model's JSON
    names (`attribute_map` values), recursively, each with the type `openapi_types` gives."""
    assert value is not None, f"{where}: null"
    if sdk_type.startswith("list["):
        assert isinstance(value, list), f"{where}: {value!r} is not a list"
        for index, item in enumerate(value):
            conforms(item, sdk_type[5:-1], f"{where}[{index}]", seen)
        return
    if sdk_type in _PRIMITIVES:
        assert isinstance(value, _PRIMITIVES[sdk_type]), f"{where}: {value!r} is not {sdk_type}"
        assert sdk_type == "bool" or not isinstance(value, bool), f"{where}: a bool"
        return
    model = getattr(sdk, sdk_type)
    seen.add(sdk_type)
    assert isinstance(value, dict), f"{where}: {value!r} is not a {sdk_type}"
    by_json_name = {json_name: attr for attr, json_name in model.attribute_map.items()}
    for key, item in value.items():
        assert key in by_json_name, f"{where}.{key}: not a field of the SDK's {sdk_type}"
        conforms(item, model.openapi_types[by_json_name[key]], f"{where}.{key}", seen)


def every_newer_record(sim: Simulator, api: str) -> list[dict[str, Any]]:
    return [
        record
        for feature in ("NOTEBOOK", "DEFAULT")
        for workspace in ("0", SECOND_WORKSPACE)
        for record in listing(sim, api, feature=feature, workspace_id=workspace)
    ]


# The page models: SDK ListNotebooksResponse, ListAllNotebooksResponse, ListFlavorsResponse.
@pytest.mark.parametrize(
    ("api", "page_model"),
    [("notebooks", "ListNotebooksResponse"), ("notebooks/all", "ListAllNotebooksResponse")],
)
def test_every_newer_api_record_is_a_notebook_resp(sim: Simulator, api: str, page_model: str):
    seen: set[str] = set()
    status, page = call(sim, api, {"limit": "50"})
    assert status == 200
    conforms(page, page_model, api, seen)
    records = every_newer_record(sim, api)
    assert records
    for record in records:
        conforms(record, "NotebookResp", f"{api}:{record['name']}", seen)
    if api == "notebooks/all":  # every sub-model the brief names is exercised
        assert {
            "NotebookResp",
            "Lease",
            "Image",
            "Pool",
            "UserResponse",
            "Domain",
            "VolumeRes",
            "NotebookCustomSpecRep",
        } <= seen


def test_every_flavor_is_a_notebook_flavor(sim: Simulator):
    seen: set[str] = set()
    status, page = call(sim, "notebooks/flavors")
    assert status == 200
    conforms(page, "ListFlavorsResponse", "flavors", seen)
    assert {"NotebookFlavor", "GPUInfo", "AscendInfo", "BillingInfo"} <= seen


@pytest.mark.parametrize(
    ("accepted", "request_class"),
    [
        (NOTEBOOKS_PARAMS, ListNotebooksRequest),
        (NOTEBOOKS_PARAMS, ListAllNotebooksRequest),
        (FLAVORS_PARAMS, ListFlavorsRequest),
    ],
)
def test_every_accepted_parameter_is_the_sdk_requests(accepted: frozenset[str], request_class):
    assert accepted <= set(request_class.attribute_map.values())


VALID = {"offset": "0", "limit": "20", "feature": "NOTEBOOK", "workspace_id": "0"}


@pytest.mark.parametrize("api", ["notebooks", "notebooks/all", "notebooks/flavors"])
def test_the_simulator_accepts_those_parameters_and_refuses_others(sim: Simulator, api: str):
    accepted = FLAVORS_PARAMS if api.endswith("flavors") else NOTEBOOKS_PARAMS
    for name in accepted:
        value = VALID.get(name, "x")
        if api.endswith("flavors"):
            value = {"offset": "0", "limit": "5", "feature": "NOTEBOOK"}.get(name, value)
            value = {"category": "CPU", "type": "MANAGED"}.get(name, value)
        status, body = call(sim, api, {name: value})
        assert status == 200, (name, body)
    # show_self and de_type belong to the historical API only (not in any SDK request)
    for name in ("show_self", "de_type"):
        status, body = call(sim, api, {name: "false"})
        assert (status, body["error_code"]) == (400, "ModelArts.0104")


def test_the_vendor_sdk_lists_through_the_simulator(sim: Simulator):
    """The SDK's own client, signing as it does (X-Project-Id included), reads every page."""
    client = (
        ModelArtsClient.new_builder()
        .with_credentials(BasicCredentials(DEMO_AK, DEMO_SK, DEMO_PROJECT_ID))
        .with_endpoint(sim.url)
        .build()
    )
    unsigned = sim.stats.unsigned_project_id
    everything = client.list_all_notebooks(ListAllNotebooksRequest(limit=50, offset=50))
    assert everything.current == 1 and everything.size == 50 and everything.data
    codelab = client.list_notebooks(ListNotebooksRequest(feature="DEFAULT"))
    assert [nb.feature for nb in codelab.data] == ["DEFAULT"]  # the caller's one CodeLab
    flavors = client.list_flavors(ListFlavorsRequest())
    assert flavors.total == len(flavors.data) > 0
    assert sim.stats.unsigned_project_id == unsigned  # BasicCredentials signs X-Project-Id
