"""The snapshot cache: TTL, single flight, stale-on-error, back-off after failures."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from exporter.modelarts.client import Listing
from exporter.modelarts.errors import ApiError
from exporter.modelarts.instance import Instance
from exporter.pipeline.cache import AUTH_BACKOFF_BASE, SnapshotCache


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class Upstream:
    """A fetch function whose outcome the test sets; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.error: ApiError | None = None
        self.delay = 0.0
        self.ids = ["a", "b"]

    def __call__(self) -> Listing:
        self.calls += 1
        time.sleep(self.delay)
        if self.error:
            raise self.error
        return Listing([Instance(id=i, status="RUNNING") for i in self.ids], invalid=1)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


def make_cache(
    upstream: Upstream, clock: Clock, ttl: float = 30, max_staleness: float = 300
) -> SnapshotCache:
    return SnapshotCache("p1", upstream, ttl=ttl, max_staleness=max_staleness, clock=clock)


def ids(cache: SnapshotCache) -> list[str]:
    snapshot = cache.status().snapshot
    return [] if snapshot is None else [i.id for i in snapshot.instances]


def test_a_listing_is_served_for_the_ttl(upstream, clock):
    cache = make_cache(upstream, clock)
    assert ids(cache) == ["a", "b"]
    clock.now += 29
    upstream.ids = ["c"]
    assert ids(cache) == ["a", "b"] and upstream.calls == 1
    clock.now += 2
    assert ids(cache) == ["c"] and upstream.calls == 2


def test_concurrent_scrapes_on_a_cold_cache_share_one_refresh(upstream, clock):
    upstream.delay = 0.3
    cache = make_cache(upstream, clock)
    barrier = threading.Barrier(20)
    results: list[list[str]] = []

    def scrape() -> None:
        barrier.wait()
        results.append(ids(cache))

    threads = [threading.Thread(target=scrape) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert upstream.calls == 1
    assert results == [["a", "b"]] * 20


def test_a_failed_refresh_serves_the_last_good_data_until_too_stale(upstream, clock):
    cache = make_cache(upstream, clock, ttl=30, max_staleness=100)
    cache.status()
    upstream.error = ApiError("boom", status=500)
    clock.now += 31
    status = cache.status()
    assert status.up is False and [i.id for i in status.snapshot.instances] == ["a", "b"]
    assert status.last_success is not None and clock.now - status.snapshot.fetched_at == 31
    clock.now += 70  # 101 s old now: past the maximum staleness
    status = cache.status()
    assert status.snapshot is None and status.up is False


def test_recovery_after_a_failure(upstream, clock):
    cache = make_cache(upstream, clock)
    upstream.error = ApiError("boom", status=503)
    assert cache.status().up is False
    upstream.error = None
    clock.now += 30
    status = cache.status()
    assert status.up is True and status.snapshot is not None


def test_a_failure_is_not_retried_on_every_scrape(upstream, clock):
    upstream.error = ApiError("boom", status=500)
    cache = make_cache(upstream, clock, ttl=30)
    for _ in range(10):
        cache.status()
        clock.now += 2
    assert upstream.calls == 1  # 18 s < TTL: no new attempt
    clock.now += 12
    cache.status()
    assert upstream.calls == 2


def test_no_request_before_retry_after(upstream, clock):
    upstream.error = ApiError("throttled", status=429, retry_after=120)
    cache = make_cache(upstream, clock, ttl=30)
    cache.status()
    clock.now += 119
    cache.status()
    assert upstream.calls == 1
    clock.now += 1
    cache.status()
    assert upstream.calls == 2


def test_auth_failures_back_off_exponentially(upstream, clock):
    """Five failures in a row lock the key for five minutes: never get near that."""
    upstream.error = ApiError("verify aksk signature fail", status=401, code="APIG.0301")
    cache = make_cache(upstream, clock, ttl=15)
    attempts: list[float] = []
    start = clock.now
    while clock.now - start < 3600:  # one hour of 15 s scrapes
        before = upstream.calls
        cache.status()
        if upstream.calls > before:
            attempts.append(clock.now - start)
        clock.now += 15
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= AUTH_BACKOFF_BASE and gaps == sorted(gaps)
    in_any_five_minutes = max(sum(1 for t in attempts if s <= t < s + 300) for s in attempts)
    assert in_any_five_minutes < 5
    assert len(attempts) <= 9


def test_invalid_records_are_counted_across_refreshes(upstream, clock):
    cache = make_cache(upstream, clock)
    cache.status()
    clock.now += 30
    assert cache.status().invalid_total == 2


def test_an_unexpected_exception_is_a_failed_refresh_not_a_crash(clock):
    def broken() -> Listing:
        raise RuntimeError("bug")

    cache = SnapshotCache("p1", broken, ttl=30, max_staleness=300, clock=clock)
    assert cache.status().up is False


def test_peek_never_refreshes(upstream, clock):
    cache = make_cache(upstream, clock)
    assert cache.peek().snapshot is None and upstream.calls == 0


# -- refreshes longer than a scrape waits: no cliff -------------------------------------


class Gate:
    """A fetch that blocks until the test opens it; counts its calls."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.calls = 0
        self.opened = threading.Event()

    def __call__(self) -> Listing:
        self.calls += 1
        assert self.opened.wait(10), "the test never let the refresh finish"
        self.opened.clear()
        return Listing([Instance(id=i, status="RUNNING") for i in self.ids], invalid=0)


def wait_for(check, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_refresh_longer_than_the_wait_lands_and_is_served(clock):
    gate = Gate(["a"])
    cache = SnapshotCache("p1", gate, ttl=30, max_staleness=300, wait=0.05, give_up=60, clock=clock)
    first = cache.status()  # waits 0.05 s, then answers with what there is: nothing yet
    assert first.snapshot is None and first.up is False
    assert cache.status().snapshot is None and gate.calls == 1  # joined, not restarted
    gate.opened.set()
    wait_for(lambda: cache.peek().snapshot is not None)
    assert cache.peek().up is True
    # The next slow refresh: scrapes are served the last listing, up as it was, no flapping.
    clock.now += 31
    gate.ids = ["a", "b"]
    during = cache.status()
    assert during.up is True and [i.id for i in during.snapshot.instances] == ["a"]
    gate.opened.set()
    wait_for(lambda: [i.id for i in cache.peek().snapshot.instances] == ["a", "b"])
    assert gate.calls == 2


def test_a_refresh_past_give_up_counts_as_failed_once_and_still_lands(clock, caplog):
    gate = Gate(["a"])
    cache = SnapshotCache("p1", gate, ttl=30, max_staleness=300, wait=0.05, give_up=10, clock=clock)
    gate.opened.set()
    cache.status()
    wait_for(lambda: cache.peek().up)
    clock.now += 31
    cache.status()  # a new refresh starts and hangs
    clock.now += 11  # past give_up
    assert cache.status().up is False
    assert caplog.text.count("refresh budget exceeded: still running after 11s") == 1
    assert cache.status().up is False and gate.calls == 2  # joined, not started anew
    gate.opened.set()
    wait_for(lambda: cache.peek().up)


def test_background_refresh_answers_at_once_with_the_data_there_is(clock):
    gate = Gate(["a"])
    cache = SnapshotCache(
        "p1", gate, ttl=30, max_staleness=300, wait=5, give_up=60, background=True, clock=clock
    )
    gate.opened.set()
    assert [i.id for i in cache.status().snapshot.instances] == ["a"]  # cold: waited
    clock.now += 31
    gate.ids = ["b"]
    started = time.monotonic()
    assert [i.id for i in cache.status().snapshot.instances] == ["a"]  # stale, at once
    assert time.monotonic() - started < 1.0 and gate.calls == 2
    gate.opened.set()
    wait_for(lambda: [i.id for i in cache.peek().snapshot.instances] == ["b"])
