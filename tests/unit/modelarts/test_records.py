"""Reading list responses: the envelope split without reading, records read one by one,
and records unchanged since the last listing not read again."""

from __future__ import annotations

import json

import pytest

from exporter.modelarts.demanager import parse_page
from exporter.modelarts.flavors import Flavor
from exporter.modelarts.notebooks import parse_notebooks_page
from exporter.modelarts.records import MalformedResponse, RecordMemo
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
