"""Predicting a client's next scrape, and running its job ahead of it, at a fake time."""

from __future__ import annotations

import threading
import time

import pytest

from exporter.exposition.ahead import CLIENTS, LEAD, Ahead


class Jobs:
    """A job that records the seconds it was run for."""

    def __init__(self) -> None:
        self.seconds: list[int] = []

    def __call__(self, second: int) -> None:
        self.seconds.append(second)


def scheduler() -> Ahead:
    """Without a thread: never reads its clock, `run_due` is given the time."""
    return Ahead(clock=lambda: pytest.fail("the clock was read"), thread=False)


def test_the_next_scrape_is_the_last_interval_after_the_last_one():
    ahead, job = scheduler(), Jobs()
    assert ahead.scraped("10.0.0.1", 100.3, job) is None  # nothing to go by yet
    assert ahead.scraped("10.0.0.1", 115.3, job) == pytest.approx(130.3)
    assert ahead.pending() == {"10.0.0.1": (pytest.approx(130.3 - LEAD), (130,))}
    assert ahead.run_due(130.2 - LEAD) == pytest.approx(130.3 - LEAD) and job.seconds == []
    assert ahead.run_due(130.3 - LEAD) is None
    assert job.seconds == [130] and ahead.pending() == {}
    ahead.run_due(1000.0)
    assert job.seconds == [130]  # once


@pytest.mark.parametrize(
    ("at", "seconds"),
    [(100.02, (130, 129)), (100.97, (130, 131)), (100.5, (130,))],
    ids=["just-after", "just-before", "mid-second"],
)
def test_near_a_boundary_the_neighbouring_second_is_made_too(at, seconds):
    ahead = scheduler()
    ahead.scraped("host", at, Jobs())
    ahead.scraped("host", at + 15, Jobs())
    assert ahead.pending()["host"][1] == seconds


@pytest.mark.parametrize("interval", [0.5, 0.0, -3.0, 3600.5, 86400.0])
def test_intervals_out_of_bounds_schedule_nothing(interval):
    ahead = scheduler()
    ahead.scraped("host", 1000.0, Jobs())
    assert ahead.scraped("host", 1000.0 + interval, Jobs()) is None
    assert ahead.pending() == {}


@pytest.mark.parametrize("interval", [1.0, 0.95, 60.0, 3600.0])
def test_intervals_in_bounds_schedule(interval):
    ahead = scheduler()
    ahead.scraped("host", 1000.0, Jobs())
    assert ahead.scraped("host", 1000.0 + interval, Jobs()) == pytest.approx(1000 + 2 * interval)


def test_clients_are_bounded_the_least_recently_seen_forgotten():
    ahead, job = scheduler(), Jobs()
    ahead.scraped("first", 0.0, job)
    ahead.scraped("first", 15.0, job)  # scheduled, then forgotten with its client
    for n in range(10 * CLIENTS):
        ahead.scraped(f"10.0.{n // 256}.{n % 256}", 15.0 + n / 1000, job)
        assert ahead.clients() <= CLIENTS
    assert ahead.clients() == CLIENTS
    assert "first" not in ahead.pending()
    assert ahead.run_due(1e9) is None and job.seconds == []


def test_a_client_seen_again_is_kept_before_the_others():
    ahead = Ahead(thread=False, clients=2)
    ahead.scraped("a", 0.0, Jobs())
    ahead.scraped("b", 1.0, Jobs())
    ahead.scraped("a", 2.0, Jobs())  # now the most recent
    ahead.scraped("c", 3.0, Jobs())  # forgets b
    assert ahead.scraped("a", 4.0, Jobs()) is not None  # a's history survived
    assert ahead.scraped("b", 5.0, Jobs()) is None  # b starts over


def test_a_new_prediction_replaces_the_pending_one_and_the_heap_stays_bounded():
    ahead, job = Ahead(thread=False, clients=4), Jobs()
    for n in range(1000):
        ahead.scraped("host", 1000.5 + 2 * n, job)
    assert len(ahead.pending()) == 1
    assert len(ahead._heap) <= 2 * 4 + 1
    ahead.run_due(1e9)
    assert job.seconds == [1000 + 2 * 999 + 2]  # only the last prediction ran


def test_a_failing_job_is_logged_and_the_others_still_run(caplog):
    ahead, good = scheduler(), Jobs()

    def bad(second: int) -> None:
        raise RuntimeError("boom")

    for client, job in (("bad", bad), ("good", good)):
        ahead.scraped(client, 0.5, job)
        ahead.scraped(client, 10.5, job)
    ahead.run_due(100.0)
    assert good.seconds == [20]
    assert "rendering ahead of a scrape failed" in caplog.text


def test_the_thread_runs_a_due_job_and_stops_on_close():
    done = threading.Event()
    ahead = Ahead(lead=3600.0)  # the real clock: whatever the prediction, it is due now
    try:
        now = time.time()
        ahead.scraped("host", now - 10, lambda second: done.set())
        ahead.scraped("host", now, lambda second: done.set())
        assert done.wait(timeout=30)
    finally:
        ahead.close()
    assert ahead._thread is not None and not ahead._thread.is_alive()
