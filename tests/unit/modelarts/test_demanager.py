"""The response models accept what the real API sends and skip only what is unreadable."""

from __future__ import annotations

import json

import pytest

from exporter.modelarts.demanager import InstanceRecord, parse_page
from exporter.modelarts.records import MalformedResponse
from tests.support.tools import fixture_bytes


def test_the_vendor_list_example_parses():
    page = parse_page(fixture_bytes("list-instances.json"))
    assert page.total_count == 2 and page.invalid == 0
    running, stopped = page.instances
    assert (running.status, stopped.status) == ("RUNNING", "STOPPED")
    assert running.created == 1594887749.962
    assert running.auto_stop is True and running.stop_timestamp == 1594891408.723
    assert stopped.auto_stop is True and stopped.stop_timestamp is None
    assert running.flavor_type == "GPU" and stopped.flavor == "modelarts.vm.cpu.2u"
    assert (
        running.image == "mul-kernel-gpu-cuda-cp36:2.0.5-B003"
        and running.user_name == "ops_dev_env"
    )


def test_the_vendor_detail_example_parses_as_an_instance():
    instance = InstanceRecord.model_validate_json(
        fixture_bytes("instance-detail.json")
    ).to_instance(now=1594888072.0)
    assert instance.updated == 1594888070.775
    # Both given: the timestamp wins over remain_time (3336 s from the answer).
    assert instance.stop_timestamp == 1594891408.723 and instance.workspace_id == "0"


def test_a_time_given_only_as_remain_time_counts_from_the_answer():
    """`remain_time` is seconds left when the API answered (vendor example
    list-instances.json: 3450 beside a stop_timestamp); without the timestamp the stop time
    is the answer's time plus it, fixed from then on."""
    doc = json.loads(fixture_bytes("list-instances.json"))
    running = doc["instances"][0]
    del running["spec"]["auto_stop"]["stop_timestamp"]
    running["queuing_info"] = {"status": "CREATE_QUEUING", "remain_time": 60}
    instance = parse_page(json.dumps(doc).encode(), now=1_800_000_000.0).instances[0]
    assert instance.stop_timestamp == 1_800_000_000.0 + 3450
    assert instance.queue_end == 1_800_000_000.0 + 60


def test_total_count_as_string_and_timestamps_as_numbers():
    body = {
        "total_count": "1",
        "instances": [
            {
                "id": "a",
                "status": "RUNNING",
                "creation_timestamp": 1594887749962,
                "latest_update_timestamp": "1594887749962",
                "spec": {"auto_stop": {"stop_timestamp": "1594891408723", "enable": True}},
            }
        ],
    }
    page = parse_page(json.dumps(body).encode())
    assert page.total_count == 1
    (instance,) = page.instances
    assert instance.created == instance.updated == 1594887749.962
    assert instance.stop_timestamp == 1594891408.723


def test_every_object_may_be_null_or_absent_and_extra_fields_are_ignored():
    nulls = {
        k: None
        for k in (
            "flavor_details",
            "profile",
            "pool",
            "workspace",
            "user",
            "spec",
            "queuing_info",
            "error_code",
            "name",
            "flavor",
        )
    }
    body = {
        "instances": [
            {"id": "a", "status": "STOPPED", **nulls, "brand_new_field": {"x": 1}},
            {"id": "b", "status": "RUNNING", "spec": {"auto_stop": None}},
        ]
    }
    page = parse_page(json.dumps(body).encode())
    assert [i.id for i in page.instances] == ["a", "b"] and page.invalid == 0
    a = page.instances[0]
    assert (a.name, a.flavor, a.flavor_type, a.pool_id, a.image, a.error) == (
        "",
        "",
        "",
        "",
        "",
        None,
    )


def test_unknown_status_is_kept_as_it_is():
    page = parse_page(b'{"instances":[{"id":"a","status":"HIBERNATING"}]}')
    assert page.instances[0].status == "HIBERNATING"


@pytest.mark.parametrize(
    "bad",
    [
        {"status": "RUNNING"},  # no id
        {"id": "", "status": "RUNNING"},
        {"id": "x", "status": None},
        {"id": "x", "status": "RUNNING", "creation_timestamp": "yesterday"},
        {"id": "x", "status": "RUNNING", "creation_timestamp": -5},
        {"id": "x", "status": "RUNNING", "spec": {"auto_stop": {"remain_time": "NaN"}}},
        {"id": "x", "status": "RUNNING", "queuing_info": {"rank": "first"}},
        {"id": "x", "status": "RUNNING", "user": "not an object"},
        "not even an object",
        None,
    ],
)
def test_one_unreadable_record_is_skipped_and_counted(bad):
    good = {"id": "good", "status": "RUNNING"}
    page = parse_page(
        json.dumps({"total_count": 3, "instances": [good, bad, good | {"id": "g2"}]}).encode()
    )
    assert [i.id for i in page.instances] == ["good", "g2"]
    assert page.invalid == 1


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html>Bad Gateway</html>",
        b'{"total_count": 2, "instances": [',
        b"[1, 2]",
        b'{"instances": {"id": 1}}',
        b'{"total_count": "many"}',
    ],
)
def test_a_body_that_is_no_list_response_is_malformed(body):
    with pytest.raises(MalformedResponse):
        parse_page(body)
