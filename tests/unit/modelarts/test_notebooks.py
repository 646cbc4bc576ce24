"""The newer Notebook API: records, statuses, paging, and both APIs together."""

from __future__ import annotations

import json

import pytest
import responses
from pydantic import SecretStr

from exporter.modelarts.auth.aksk import AkSkProvider
from exporter.modelarts.client import ModelArtsClient
from exporter.modelarts.notebooks import parse_notebooks_page
from exporter.modelarts.statuses import KNOWN_STATUSES, NOTEBOOKS_ONLY_STATUSES
from tests.support.tools import fixture_bytes

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
