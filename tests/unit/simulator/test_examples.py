"""The vendor's published example records, key path by key path, are in the simulator's:
tests/fixtures/list-instances.json (the historical list, API reference modelarts_03_0111)
and tests/fixtures/notebooks-v2-list.json (ListNotebooks' example response)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from exporter.simulator import Simulator
from exporter.simulator.catalog import SECOND_WORKSPACE
from tests.unit.simulator.conftest import listing

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string")):
        if isinstance(value, kind):
            return name
    return "array" if isinstance(value, list) else "object"


def key_paths(value: Any, prefix: str = "") -> dict[str, str]:
    """Every key path of a record ("spec.storage.location.volume_size"), with its JSON type;
    a list's items are "[]"."""
    paths: dict[str, str] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            paths[path] = json_type(item)
            paths.update(key_paths(item, path))
    elif isinstance(value, list):
        for item in value:
            paths.update(key_paths(item, f"{prefix}[]"))
    return paths


def example(name: str, field: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads((FIXTURES / name).read_text())[field]
    return records


def historical(sim: Simulator) -> list[dict[str, Any]]:
    status, body = sim.list_page({"de_type": "Notebook", "show_self": "false"})
    assert status == 200
    records: list[dict[str, Any]] = json.loads(body)["instances"]
    return records


def newer(sim: Simulator) -> list[dict[str, Any]]:
    return [
        record
        for feature in ("NOTEBOOK", "DEFAULT")
        for workspace in ("0", SECOND_WORKSPACE)
        for record in listing(sim, "notebooks/all", feature=feature, workspace_id=workspace)
    ]


# Paths the examples show in every record that some simulated records rightly lack:
# an Ascend flavor counts NPUs, not GPUs (the brief; the historical API's flavor params).
NOT_IN_EVERY_RECORD = {"flavor_details.params.GPU"}

CASES = [
    pytest.param("list-instances.json", "instances", historical, id="historical"),
    pytest.param("notebooks-v2-list.json", "data", newer, id="newer"),
]


@pytest.mark.parametrize(("fixture", "field", "served"), CASES)
def test_every_example_key_path_is_served_with_its_type(sim: Simulator, fixture, field, served):
    examples = [key_paths(record) for record in example(fixture, field)]
    ours = [key_paths(record) for record in served(sim)]
    for paths in examples:
        for path, kind in paths.items():
            types = {record[path] for record in ours if path in record}
            assert types, f"{fixture}: no simulated record has {path}"
            if kind != "null":  # a null in the example says nothing of the type
                assert types <= {kind, "null"} and kind in types, (path, kind, types)


@pytest.mark.parametrize(("fixture", "field", "served"), CASES)
def test_what_every_example_record_has_every_simulated_record_has(
    sim: Simulator, fixture, field, served
):
    examples = [set(key_paths(record)) for record in example(fixture, field)]
    always = set.intersection(*examples) - NOT_IN_EVERY_RECORD
    for record in served(sim):
        missing = always - set(key_paths(record))
        assert not missing, (record["name"], sorted(missing))


def test_ascend_flavors_count_npus_and_name_the_npu(sim: Simulator):
    # The example's params are CPU, GPU, gpu_type, memory ("64GiB"); an Ascend flavor gives
    # NPU (a count) and npu_type in place of GPU and gpu_type.
    ascend = [r for r in historical(sim) if r["flavor_details"]["type"] == "ASCEND"]
    assert ascend
    for record in ascend:
        params = record["flavor_details"]["params"]
        assert "GPU" not in params and "gpu_type" not in params
        assert isinstance(params["NPU"], int) and params["npu_type"] == "Ascend910B"
        assert params["memory"].endswith("GiB")


def test_the_newer_records_have_no_top_level_times(sim: Simulator):
    # SDK NotebookResp has no create_at/update_at: the times are the lease's (SDK Lease).
    for record in newer(sim):
        assert "create_at" not in record and "update_at" not in record
        assert {"create_at", "update_at"} <= set(record["lease"])
