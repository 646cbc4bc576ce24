"""Reading list responses: the envelope split without reading, records read one by one,
and records unchanged since the last listing not read again."""

from __future__ import annotations

import json
import sys

import pytest

from exporter.modelarts.demanager import parse_page
from exporter.modelarts.flavors import Flavor
from exporter.modelarts.notebooks import parse_notebooks_page
from exporter.modelarts.records import (
    TICK_TOLERANCE,
    MalformedResponse,
    RecordMemo,
    record_digest,
)
from tests.support.tools import fixture_bytes

T = 1_800_000_000.0  # when the API answered


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


def test_a_record_whose_remain_time_ticks_with_the_clock_is_not_read_again():
    """The API recomputes `remain_time` (seconds until the stop or queue end) at every
    listing (vendor example list-instances.json: `auto_stop.remain_time` beside
    `stop_timestamp`): a running notebook's record changes every second without changing."""
    doc = json.loads(fixture_bytes("list-instances.json"))
    memo = RecordMemo()
    memo.start()
    first = parse_page(json.dumps(doc).encode(), memo, now=T).instances
    running = next(r for r in doc["instances"] if "remain_time" in r["spec"]["auto_stop"])
    running["spec"]["auto_stop"]["remain_time"] -= 30
    memo.start()
    second = parse_page(json.dumps(doc).encode(), memo, now=T + 30).instances
    assert [a is b for a, b in zip(first, second, strict=True)] == [True] * len(first)


def listing_with_remain_time_only() -> tuple[dict, dict]:
    doc = json.loads(fixture_bytes("list-instances.json"))
    running = next(r for r in doc["instances"] if "remain_time" in r["spec"]["auto_stop"])
    del running["spec"]["auto_stop"]["stop_timestamp"]
    return doc, running["spec"]["auto_stop"]


def first_instance(doc: dict, memo: RecordMemo, now: float):
    memo.start()
    return parse_page(json.dumps(doc).encode(), memo, now=now).instances[0]


@pytest.mark.parametrize(
    ("elapsed", "remain"), [(30, 3420), (31, 3420), (30, 3421), (30, 3418), (30, 3423), (28, 3417)]
)
def test_a_time_known_from_remain_time_alone_is_kept_while_it_points_at_the_same_time(
    elapsed, remain
):
    """Without a stop_timestamp the stop time is the answer's time plus remain_time: the
    record is taken for the same while that stays within TICK_TOLERANCE, and read again
    (a new stop time) when it moved further: its auto-stop was changed."""
    doc, auto_stop = listing_with_remain_time_only()
    memo = RecordMemo()
    before = first_instance(doc, memo, T)
    assert before.stop_timestamp == T + 3450
    auto_stop["remain_time"] = remain
    after = first_instance(doc, memo, T + elapsed)
    kept = abs(elapsed + remain - 3450) <= TICK_TOLERANCE
    assert (after is before) is kept
    assert after.stop_timestamp == (T + 3450 if kept else T + elapsed + remain)
    auto_stop["remain_time"] = remain - 30
    assert first_instance(doc, memo, T + elapsed + 30) is after  # a listing later, the same


def test_small_moves_of_a_time_add_up_and_are_read_in_the_end():
    """Compared with the time the record was read with, not the last listing's: a time
    that keeps moving a little is read again once it moved more than the tolerance."""
    doc, auto_stop = listing_with_remain_time_only()
    memo = RecordMemo()
    first = first_instance(doc, memo, T)
    auto_stop["remain_time"] = 3450 - 30 + 1.5
    assert first_instance(doc, memo, T + 30) is first
    auto_stop["remain_time"] = 3450 - 60 + 3
    third = first_instance(doc, memo, T + 60)
    assert third is not first and third.stop_timestamp == T + 3453


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


def tick(doc: dict, seconds: int) -> None:
    for record in doc["instances"]:
        if "remain_time" in record["spec"]["auto_stop"]:
            record["spec"]["auto_stop"]["remain_time"] -= seconds


def test_an_unchanged_page_is_taken_whole_and_its_records_stay_known():
    doc = json.loads(fixture_bytes("list-instances.json"))
    memo = RecordMemo()
    memo.start()
    first = parse_page(json.dumps(doc).encode(), memo, now=T).instances
    for later in (30, 60):  # the page again, remain_time ticking with the clock
        tick(doc, 30)
        memo.start()
        page = parse_page(json.dumps(doc).encode(), memo, now=T + later)
        assert [a is b for a, b in zip(first, page.instances, strict=True)] == [True, True]
    # Its records are still known one by one: a page where one changed reads that one.
    doc["instances"][1]["status"] = "STARTING"
    tick(doc, 30)
    memo.start()
    again = parse_page(json.dumps(doc).encode(), memo, now=T + 90).instances
    assert again[0] is first[0] and again[1].status == "STARTING"


def test_the_memo_keeps_nothing_of_a_page_body():
    """Records are views of their body (msgspec.Raw): kept, they would keep it whole."""
    body = fixture_bytes("list-instances.json")
    before = sys.getrefcount(body)
    memo = RecordMemo()
    memo.start()
    parse_page(body, memo, now=T)
    assert sys.getrefcount(body) == before
