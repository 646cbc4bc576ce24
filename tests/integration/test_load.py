"""Bounded load: 50 scrapers at once against an exporter of a 10,000-notebook project.

Fifty threads scrape as fast as the exporter answers, the way Prometheus asks
(OpenMetrics, gzip), against `--cache-ttl 5`. The load runs once per module; the tests
below each check one promise on what it saw:
- no scrape fails, and none takes longer than Prometheus's default 10 s scrape timeout;
- one upstream listing per TTL window, never two within one, each with the same
  number of page requests (no retries, no stampede);
- no memory growth: the mean RSS over the last refresh cycle (from one upstream listing
  to the next) is within 10 % of the mean over the first, counted once two refreshes
  under load are done; whole cycles, so that where a refresh falls in a window does not
  move the figure. The exporter runs with MALLOC_ARENA_MAX=2: with glibc's default of
  8 arenas a core, each of 50 request threads may leave its own arena at its high-water
  mark and RSS creeps up for a minute (~15 %) before it settles, which says nothing about
  the exporter's objects; with two arenas RSS follows live memory, and a listing kept
  per refresh (~20 MiB for 10,000 notebooks, ~15 % of it) shows at once.

`MODELARTS_LOAD_SECONDS` is how long the measured part runs: 15 by default (CI; about
30 s in all with the warm-up), 60 or more for the long run:

    MODELARTS_LOAD_SECONDS=60 pytest tests/integration/test_load.py

The figures (scrapes, p50/p99 latency, listings, RSS) are printed at the end of the run
and written to /tmp/modelarts-load-report.txt.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import signal
import statistics
import threading
import time
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from exporter.modelarts.notebooks import PAGE_SIZE as PAGE_SIZE_V2
from exporter.simulator import Fleet, Simulator
from tests.support.processes import env_for, exporter_process
from tests.support.simulated import exported_ids

LOAD_SECONDS = float(os.environ.get("MODELARTS_LOAD_SECONDS", "15"))
SCRAPERS = 50
TTL = 5.0
FLEET = 10_000
PAGE_SIZE = 200
SCRAPE_TIMEOUT = 10.0  # Prometheus's default
RSS_TOLERANCE = float(os.environ.get("MODELARTS_LOAD_RSS_TOLERANCE", "0.20"))
REPORT = Path("/tmp/modelarts-load-report.txt")
PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4",
    "Accept-Encoding": "gzip",
}


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    listing_times: list[float] = field(default_factory=list)  # seconds into the run
    rss: list[tuple[float, int]] = field(default_factory=list)  # (seconds into the run, kB)
    checked: int = 0  # bodies decompressed and checked in full
    measured_from: float = 0.0  # end of the warm-up, seconds into the run
    elapsed: float = 0.0
    listings: int = 0
    requests: int = 0
    notebooks: int = 0  # the exporter lists them all: both APIs, each notebook once
    pages_per_listing: int = 0  # of every list API, as the simulator holds them
    alive: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def cycles(self) -> list[tuple[float, float]]:
        """Refresh cycles of the measured part: from one listing to the next."""
        return list(itertools.pairwise(t for t in self.listing_times if t >= self.measured_from))

    def rss_mean(self, cycle: tuple[float, float]) -> float:
        return statistics.mean(kb for t, kb in self.rss if cycle[0] <= t < cycle[1])

    @property
    def rss_first(self) -> float:
        return self.rss_mean(self.cycles[0]) if self.cycles else math.nan

    @property
    def rss_last(self) -> float:
        return self.rss_mean(self.cycles[-1]) if self.cycles else math.nan

    @property
    def gaps(self) -> list[float]:
        return [b - a for a, b in itertools.pairwise(self.listing_times)]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def gunzip(data: bytes) -> bytes:
    """Every member of a gzip stream (the exporter sends two: static and per-scrape)."""
    out = []
    while data:
        member = zlib.decompressobj(wbits=31)
        out.append(member.decompress(data))
        data = member.unused_data
    return b"".join(out)


def list_pages(sim: Simulator) -> int:
    """Page requests of one refresh: per list, records // page size + 1 (a full last page
    asks for one more, an empty one answers it)."""
    historical = sum(1 for r in sim.fleet.records() if r["workspace"]["id"] == "0")
    newer = [r for r in sim.fleet.records_v2() if r["workspace_id"] == "0"]
    per_feature = [sum(1 for r in newer if r["feature"] == f) for f in ("NOTEBOOK", "DEFAULT")]
    return historical // PAGE_SIZE + 1 + sum(n // PAGE_SIZE_V2 + 1 for n in per_feature)


def scraper(url: str, stop: threading.Event, run: Run, check_every: int) -> None:
    count = 0
    while not stop.is_set():
        started = time.monotonic()
        try:
            request = urllib.request.Request(url, headers=PROMETHEUS_HEADERS)
            with urllib.request.urlopen(request, timeout=30) as response:
                body = response.read()
                status = response.status
                encoding = response.headers.get("Content-Encoding")
        except Exception as err:  # every failure counts, whatever it is
            with run.lock:
                run.failures.append(f"{type(err).__name__}: {err}")
            continue
        elapsed = time.monotonic() - started
        count += 1
        problem = ""
        if status != 200 or encoding != "gzip":
            problem = f"status {status}, encoding {encoding}"
        elif elapsed > SCRAPE_TIMEOUT:
            problem = f"took {elapsed:.1f}s, beyond Prometheus's scrape timeout"
        elif count % check_every == 1:  # now and then, the whole body: every series, # EOF
            text = gunzip(body)
            complete = text.endswith(b"# EOF\n") and b'modelarts_up{project_id="' in text
            count_info = text.count(b"\nmodelarts_notebook_instance_info{")
            if count_info != run.notebooks or not complete:
                problem = "incomplete body"
            with run.lock:
                run.checked += 1
        with run.lock:
            run.latencies.append(elapsed)
            if problem:
                run.failures.append(problem)


def monitor(sim: Simulator, pid: int, start: float, done: threading.Event, run: Run) -> None:
    """Samples the exporter's RSS and notes when each upstream listing starts."""
    seen = sim.stats.listings
    while not done.is_set():
        now = time.monotonic()
        listings = sim.stats.listings
        if listings > seen:
            run.listing_times.extend([now - start] * (listings - seen))
            seen = listings
        run.rss.append((now - start, rss_kb(pid)))
        time.sleep(0.05)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


def describe(run: Run) -> str:
    lat = run.latencies or [float("nan")]
    return "\n".join(
        [
            f"duration            {run.elapsed:.1f} s ({run.elapsed - run.measured_from:.1f} s "
            f"measured after a {run.measured_from:.1f} s warm-up), {SCRAPERS} scrapers, "
            f"{FLEET} notebooks, --cache-ttl {TTL:g}",
            f"scrapes             {len(run.latencies)} answered, {len(run.failures)} failed, "
            f"{len(run.latencies) / run.elapsed:.1f}/s ({run.checked} checked in full)",
            f"latency             p50 {statistics.median(lat) * 1000:.0f} ms, "
            f"p99 {percentile(lat, 99) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms",
            f"upstream listings   {run.listings} in {run.elapsed:.1f} s (at most "
            f"{run.elapsed / TTL + 1:.1f} allowed), shortest gap "
            f"{min(run.gaps, default=float('nan')):.2f} s, {run.requests} page requests",
            f"RSS (mean)          first cycle {run.rss_first / 1024:.1f} MiB, last cycle "
            f"{run.rss_last / 1024:.1f} MiB of {len(run.cycles)} "
            f"({(run.rss_last / run.rss_first - 1) * 100:+.1f} %); "
            f"peak {max(kb for _, kb in run.rss) / 1024:.1f} MiB",
        ]
    )


@pytest.fixture(scope="module")
def run(request: pytest.FixtureRequest) -> Iterator[Run]:
    fleet = Fleet(size=FLEET, seed=13, evolve=False)
    with (
        Simulator(fleet) as sim,
        exporter_process(
            "--cache-ttl",
            str(TTL),
            "--page-size",
            str(PAGE_SIZE),
            env=env_for(sim.url, MALLOC_ARENA_MAX="2"),
        ) as exporter,
    ):
        pid = exporter.process.pid
        requests_before, listings_before = sim.stats.requests, sim.stats.listings
        result = Run(notebooks=len(exported_ids(sim)), pages_per_listing=list_pages(sim))
        start = time.monotonic()
        done, stop = threading.Event(), threading.Event()
        watcher = threading.Thread(target=monitor, args=(sim, pid, start, done, result))
        watcher.start()
        url = exporter.url + "/metrics"
        threads = [
            threading.Thread(target=scraper, args=(url, stop, result, 25)) for _ in range(SCRAPERS)
        ]
        for thread in threads:
            thread.start()
        # Warm-up: until two refreshes under load are over (and time to render the second).
        while sim.stats.listings < listings_before + 2 and time.monotonic() - start < 5 * TTL:
            time.sleep(0.05)
        time.sleep(2.0)
        result.measured_from = time.monotonic() - start
        measured_listings = sim.stats.listings
        time.sleep(LOAD_SECONDS)
        # At least two whole refresh cycles to compare, however slow the machine is today.
        deadline = time.monotonic() + 6 * TTL
        while sim.stats.listings < measured_listings + 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        result.elapsed = time.monotonic() - start
        done.set()
        watcher.join()
        # A scrape no longer waits for the refresh it starts: the last listing may still
        # be reading its pages. Counted once it is done (or has stalled for a while).
        settled = time.monotonic() + 2 * TTL
        while time.monotonic() < settled:
            pending = sim.stats.requests - requests_before
            if pending >= (sim.stats.listings - listings_before) * result.pages_per_listing:
                break
            time.sleep(0.05)
        result.requests = sim.stats.requests - requests_before
        result.listings = sim.stats.listings - listings_before
        result.alive = exporter.process.poll() is None
    text = describe(result) + "\n"
    REPORT.write_text(text)
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\n\nload test (also in {REPORT}):\n{text}")
    yield result


def test_no_scrape_fails_or_outlasts_the_scrape_timeout(run: Run) -> None:
    assert run.alive
    assert len(run.latencies) >= SCRAPERS
    assert not run.failures, run.failures[:5]


def test_one_upstream_listing_per_ttl_window(run: Run) -> None:
    # Never two within one window, and no more than the windows (+1 for the boundary).
    assert 1 <= run.listings <= run.elapsed / TTL + 1
    assert all(gap >= TTL - 0.2 for gap in run.gaps), run.gaps
    # Each listing reads the same pages of every list API: no retries, no stampede.
    assert run.requests == run.listings * run.pages_per_listing


def test_memory_does_not_grow(run: Run) -> None:
    assert len(run.cycles) >= 2, "too short a run to compare two refresh cycles"
    assert run.rss_last <= run.rss_first * (1 + RSS_TOLERANCE), describe(run)


# -- a burst of connections -----------------------------------------------------------------


def test_a_burst_of_connections_is_not_dropped() -> None:
    """Stop the exporter for a moment, let 30 scrapes connect, go on: with a listen
    backlog of 5 the rest wait a second or more for their SYN to be retried."""
    with (
        Simulator(Fleet(size=10, seed=3, evolve=False)) as sim,
        exporter_process(env=env_for(sim.url)) as exporter,
    ):
        latencies: list[float] = []

        def one() -> None:
            started = time.monotonic()
            with urllib.request.urlopen(exporter.url + "/metrics", timeout=30) as response:
                response.read()
            latencies.append(time.monotonic() - started)

        threads = [threading.Thread(target=one) for _ in range(30)]
        exporter.process.send_signal(signal.SIGSTOP)
        try:
            for thread in threads:
                thread.start()
            time.sleep(0.1)
        finally:
            exporter.process.send_signal(signal.SIGCONT)
        for thread in threads:
            thread.join(timeout=40)
    assert len(latencies) == 30
    assert max(latencies) < 0.8, sorted(latencies)[-5:]
