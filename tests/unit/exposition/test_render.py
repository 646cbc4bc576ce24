"""The renderer's countdown part made ahead of a predicted scrape, at a fake time: the
bytes served are those an inline rendering writes, and a miss renders inline as before."""

from __future__ import annotations

import dataclasses
import gc
import gzip
import time

import pytest

from exporter.exposition.ahead import CLIENTS, LEAD, Ahead
from exporter.exposition.formats import OPENMETRICS, TEXT, Format
from exporter.exposition.render import Body, Renderer
from exporter.exposition.snapshot import Snapshot
from exporter.exposition.status import TargetStatus
from exporter.modelarts.demanager import parse_page
from tests.support.tools import fixture_bytes

PROJECT = "77b6a44cba5143ab91d13ab9a8ff44fd"
FETCHED = 1594891000.0  # the example's auto-stop countdown reads 408 s then
START = FETCHED + 0.3


def snapshot(fetched_at: float = FETCHED) -> Snapshot:
    page = parse_page(fixture_bytes("list-instances.json"))
    return Snapshot(PROJECT, tuple(page.instances), fetched_at)


def refreshed() -> Snapshot:
    """A later listing in which the notebook with a countdown has gone."""
    page = parse_page(fixture_bytes("list-instances.json"))
    kept = tuple(i for i in page.instances if i.status != "RUNNING")
    return Snapshot(PROJECT, kept, FETCHED + 20)


class Fleet:
    """A fake clock and the status the sources return, both moved by the test."""

    def __init__(self) -> None:
        self.now = START
        self.status = self.status_of(snapshot())

    @staticmethod
    def status_of(snap: Snapshot) -> TargetStatus:
        return TargetStatus(PROJECT, snap, up=True, last_success=snap.fetched_at)

    def renderer(self) -> Renderer:
        """Predicting, its scheduler run by the test (`ahead.run_due`)."""
        return Renderer(
            self.statuses,
            clock=self.clock,
            process_metrics=False,
            ahead=Ahead(self.clock, thread=False),
        )

    def inline(self, fmt: Format) -> Body:
        """What a renderer that never predicts serves now: the reference."""
        return Renderer(self.statuses, clock=self.clock, process_metrics=False).render(fmt)

    def clock(self) -> float:
        return self.now

    def statuses(self) -> list[TargetStatus]:
        return [self.status]


def scrape(renderer: Renderer, fmt: Format, compressed: bool, client: str = "10.0.0.9") -> bytes:
    """One scrape as the HTTP server makes it: rendered, compressed if asked, then told."""
    body = renderer.render(fmt)
    served = b"".join(renderer.gzip(body)) if compressed else bytes(body)
    renderer.served(body, client, compressed)
    return served


def ahead_of(renderer: Renderer) -> Ahead:
    assert renderer._ahead is not None
    return renderer._ahead


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("fmt", [TEXT, OPENMETRICS], ids=lambda f: f.name)
def test_the_predicted_scrape_finds_its_countdowns_made_ahead(fmt, compressed):
    fleet = Fleet()
    renderer = fleet.renderer()
    scrape(renderer, fmt, compressed)
    fleet.now += 15
    scrape(renderer, fmt, compressed)
    assert renderer.inline_countdowns == 2  # two new seconds, nothing predicted yet
    ((due, seconds),) = ahead_of(renderer).pending().values()
    assert seconds == (int(START) + 30,) and due == pytest.approx(START + 30 - LEAD)

    fleet.now = due
    ahead_of(renderer).run_due(fleet.now)
    fleet.now = START + 30.004  # the next scrape, a few ms late
    body = renderer.render(fmt)
    assert renderer.inline_countdowns == 2  # found made ahead
    reference = fleet.inline(fmt)
    assert body.countdowns == reference.countdowns and bytes(body) == bytes(reference)
    assert b" 378\n" in body.countdowns  # 408 s at the fetch, 30 s later
    if compressed:
        assert body.countdowns_gzip is not None  # compressed ahead too
        members = renderer.gzip(body)
        assert members[1] is body.countdowns_gzip
        assert gzip.decompress(members[1]) == reference.countdowns
        assert gzip.decompress(b"".join(members)) == bytes(reference)
    else:
        assert body.countdowns_gzip is None  # nobody asked for gzip: not compressed


def test_a_scrape_at_another_second_renders_inline_and_right():
    fleet = Fleet()
    renderer = fleet.renderer()
    for _ in range(2):
        scrape(renderer, TEXT, True)
        fleet.now += 15
    fleet.now = START + 30 - LEAD
    ahead_of(renderer).run_due(fleet.now)  # made for START + 30
    fleet.now = START + 31.5  # the scrape came later than predicted
    body = renderer.render(TEXT)
    assert renderer.inline_countdowns == 3
    assert bytes(body) == bytes(fleet.inline(TEXT))
    assert gzip.decompress(b"".join(renderer.gzip(body))) == bytes(body)


def test_a_refresh_after_the_work_ahead_is_never_served_stale():
    fleet = Fleet()
    renderer = fleet.renderer()
    for _ in range(2):
        scrape(renderer, OPENMETRICS, True)
        fleet.now += 15
    fleet.now = START + 30 - LEAD
    ahead_of(renderer).run_due(fleet.now)
    fleet.status = fleet.status_of(refreshed())  # lands after the work ahead
    fleet.now = START + 30
    body = renderer.render(OPENMETRICS)
    assert renderer.inline_countdowns == 3  # the old snapshot's part was not used
    reference = fleet.inline(OPENMETRICS)
    assert bytes(body) == bytes(reference) and b" 378\n" not in body.countdowns
    assert gzip.decompress(b"".join(renderer.gzip(body))) == bytes(reference)


def test_a_refresh_before_the_work_ahead_is_what_it_renders():
    fleet = Fleet()
    renderer = fleet.renderer()
    for _ in range(2):
        scrape(renderer, OPENMETRICS, True)
        fleet.now += 15
    fleet.status = fleet.status_of(refreshed())  # landed between the scrapes
    fleet.now = START + 30 - LEAD
    ahead_of(renderer).run_due(fleet.now)
    fleet.now = START + 30
    body = renderer.render(OPENMETRICS)
    assert renderer.inline_countdowns == 2
    assert body.static_gzip is not None  # the new static member too was compressed ahead
    reference = fleet.inline(OPENMETRICS)
    assert bytes(body) == bytes(reference) and b" 378\n" not in body.countdowns
    assert gzip.decompress(b"".join(renderer.gzip(body))) == bytes(reference)


def test_the_current_second_stays_cached_beside_those_made_ahead():
    fleet = Fleet()
    renderer = fleet.renderer()
    for _ in range(2):
        scrape(renderer, TEXT, False)
        fleet.now += 1.0  # every second: the next is made as soon as a scrape is served
    ahead_of(renderer).run_due(fleet.now)
    first = renderer.render(TEXT)  # START + 2: made ahead
    assert renderer.inline_countdowns == 2
    fleet.now += 0.5
    assert renderer.render(TEXT).countdowns is first.countdowns  # the same second: cached
    assert renderer.inline_countdowns == 2


def test_seconds_past_are_let_go_and_the_cache_stays_small():
    fleet = Fleet()
    renderer = fleet.renderer()
    for n in range(3 * CLIENTS):  # many clients, each predicting another second
        renderer.prepare(TEXT, False, int(START) + n % 40)
    assert len(renderer._countdowns["text"].seconds) <= 4
    fleet.now += 100
    renderer.render(TEXT)
    assert list(renderer._countdowns["text"].seconds) == [int(fleet.now)]
    renderer.prepare(TEXT, True, int(fleet.now) - 1)  # already past: nothing to do
    assert list(renderer._countdowns["text"].seconds) == [int(fleet.now)]


def test_clients_are_told_apart_by_host_format_and_gzip_and_bounded():
    fleet = Fleet()
    renderer = fleet.renderer()
    for n in range(3 * CLIENTS):
        scrape(renderer, TEXT, n % 2 == 0, client=f"10.1.{n // 256}.{n % 256}")
    assert ahead_of(renderer).clients() == CLIENTS
    for fmt, compressed in [(TEXT, False), (TEXT, True), (OPENMETRICS, False)]:
        scrape(renderer, fmt, compressed, client="10.9.9.9")
    fleet.now += 10
    for fmt, compressed in [(TEXT, False), (TEXT, True), (OPENMETRICS, False)]:
        scrape(renderer, fmt, compressed, client="10.9.9.9")
    assert len(ahead_of(renderer).pending()) == 3


def test_intervals_out_of_bounds_make_nothing_ahead():
    fleet = Fleet()
    renderer = fleet.renderer()
    for step in (0.2, 0.2, 7200.0, 0.3):
        scrape(renderer, TEXT, True)
        fleet.now += step
    assert ahead_of(renderer).pending() == {}


def test_a_renderer_that_is_never_told_of_a_scrape_predicts_nothing():
    fleet = Fleet()
    renderer = Renderer(fleet.statuses, clock=fleet.clock)  # as the docs render
    for _ in range(3):
        renderer.render(TEXT)
        fleet.now += 15
    assert renderer._ahead is None


def test_a_scheduled_job_does_not_keep_its_renderer_alive():
    fleet = Fleet()
    ahead = Ahead(fleet.clock, thread=False)
    renderer = Renderer(fleet.statuses, clock=fleet.clock, ahead=ahead)
    for _ in range(2):
        scrape(renderer, TEXT, True)
        fleet.now += 15
    del renderer
    gc.collect()
    ahead.run_due(1e12)  # the job finds its renderer gone: nothing to do, no error


def test_the_real_thread_eventually_makes_the_predicted_second():
    # Real clock, real thread; a lead of an hour makes the job due as soon as predicted.
    statuses = Fleet().statuses
    ahead = Ahead(lead=3600.0)
    renderer = Renderer(statuses, process_metrics=False, ahead=ahead)
    try:
        body = renderer.render(TEXT)
        renderer.served(dataclasses.replace(body, at=body.at - 10), "10.0.0.1", True)
        renderer.served(body, "10.0.0.1", True)
        second = int(body.at + 10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with renderer._lock:
                slot = renderer._countdowns["text"].seconds.get(second)
                if slot is not None and slot.gzipped is not None:
                    break
            time.sleep(0.01)
        else:
            pytest.fail("the predicted second was not made ahead")
    finally:
        ahead.close()
    reference = Renderer(statuses, clock=lambda: second + 0.5, process_metrics=False)
    assert slot.value == reference.render(TEXT).countdowns
    assert gzip.decompress(slot.gzipped) == slot.value
