"""Reading list responses: the envelope split without reading, records read one by one,
and records unchanged since the last listing not read again."""

from __future__ import annotations

import json

import pytest

from exporter.modelarts.demanager import parse_page
from exporter.modelarts.flavors import Flavor
from exporter.modelarts.notebooks import parse_notebooks_page
from exporter.modelarts.records import MalformedResponse, RecordMemo, record_digest
from tests.support.tools import fixture_bytes


def test_an_unchanged_record_is_not_read_again_and_a_changed_one_is():
    doc = json.loads(fixture_bytes("list-instances.json"))
    memo = RecordMemo()
    memo.start()
    first = parse_page(json.dumps(doc).encode(), memo).instances
    doc["instances"][1]["status"] = "STARTING"
    memo.start()
    second = parse_page(json.dumps(doc).encode(), memo).instances
    assert second[0] is first[0]  # the same object: not read again
    assert second[1] is not first[1] and second[1].status == "STARTING"
    memo.start()
    third = parse_page(json.dumps(doc).encode(), memo).instances
    assert third[1] is second[1]  # what the last listing read is what is remembered


def test_new_flavors_forget_what_the_records_became():
    # A newer-API record is joined with the flavors listing: its Instance depends on both.
    doc = json.loads(fixture_bytes("notebooks-v2-list.json"))
    body = json.dumps(doc).encode()
    memo = RecordMemo()
    before = (Flavor("modelarts.vm.cpu.2u", "CPU", cpu=2),)
    memo.start(generation=before)
    first = parse_notebooks_page(body, {f.name: f for f in before}, memo).instances
    after = (Flavor("modelarts.vm.cpu.2u", "CPU", cpu=4),)
    memo.start(generation=after)
    second = parse_notebooks_page(body, {f.name: f for f in after}, memo).instances
    assert (first[1].cpu, second[1].cpu) == (2, 4)


def test_a_flavors_listing_fetched_again_unchanged_forgets_nothing():
    # Fetched again every --flavor-cache-ttl: a new tuple, equal to the last one.
    body = fixture_bytes("notebooks-v2-list.json")
    memo = RecordMemo()
    memo.start(generation=(Flavor("modelarts.vm.cpu.2u", "CPU", cpu=2),))
    first = parse_notebooks_page(body, {}, memo).instances
    memo.start(generation=(Flavor("modelarts.vm.cpu.2u", "CPU", cpu=2),))
    second = parse_notebooks_page(body, {}, memo).instances
    assert second[0] is first[0]


def test_a_record_that_strict_json_refuses_loses_only_itself():
    body = (
        b'{"total_count": 2, "instances": ['
        b'{"id": "a", "status": "RUNNING", "creation_timestamp": NaN},'
        b'{"id": "b", "status": "RUNNING"}]}'
    )
    page = parse_page(body)
    assert [i.id for i in page.instances] == ["b"] and page.invalid == 1


@pytest.mark.parametrize(
    "body",
    [b"<html>Bad Gateway</html>", b'{"instances": {"id": 1}}', b'{"total_count": [1]}', b"[]"],
)
def test_a_body_that_is_no_list_response_is_malformed(body):
    with pytest.raises(MalformedResponse):
        parse_page(body)


def test_a_record_that_differs_only_in_remain_time_is_not_read_again():
    """The API recomputes `remain_time` (seconds until the stop or queue end) at every
    listing (vendor example list-instances.json: `auto_stop.remain_time` beside
    `stop_timestamp`): a running notebook's record changes every second without changing."""
    doc = json.loads(fixture_bytes("list-instances.json"))
    memo = RecordMemo()
    memo.start()
    first = parse_page(json.dumps(doc).encode(), memo).instances
    running = next(r for r in doc["instances"] if "remain_time" in r["spec"]["auto_stop"])
    running["spec"]["auto_stop"]["remain_time"] -= 30
    memo.start()
    second = parse_page(json.dumps(doc).encode(), memo).instances
    assert [a is b for a, b in zip(first, second, strict=True)] == [True] * len(first)


def test_a_record_whose_times_come_from_remain_time_alone_is_read_again():
    doc = json.loads(fixture_bytes("list-instances.json"))
    running = next(r for r in doc["instances"] if "remain_time" in r["spec"]["auto_stop"])
    del running["spec"]["auto_stop"]["stop_timestamp"]
    memo = RecordMemo()
    memo.start()
    before = {i.id: i for i in parse_page(json.dumps(doc).encode(), memo).instances}
    running["spec"]["auto_stop"]["remain_time"] -= 30
    memo.start()
    after = {i.id: i for i in parse_page(json.dumps(doc).encode(), memo).instances}
    old, new = before[running["id"]], after[running["id"]]
    assert new is not old and new.stop_remaining == old.stop_remaining - 30


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (b'{"x":1,"remain_time":5}', b'{"x":1,"remain_time": 4}', True),
        (
            b'{"q":{"remain_time":5},"s":{"remain_time":9}}',
            b'{"q":{"remain_time":0},"s":{"remain_time":null}}',
            True,
        ),
        (b'{"x":1,"remain_time":5}', b'{"x":2,"remain_time":5}', False),
        (b'{"name":"a\\"remain_time","x":1}', b'{"name":"a\\"remain_time","x":2}', False),
        (b'{"remain_time":5,"id":"a"}', b'{"remain_time":5,"id":"b"}', False),
    ],
)
def test_the_digest_leaves_out_remain_time_values_only(a, b, same):
    assert (record_digest(a) == record_digest(b)) is same
