"""The snapshot cache of one project: TTL, single flight, stale-on-error, back-off.

A listing is served for `ttl` seconds. When it has expired, the first scrape starts a
refresh and every concurrent scrape joins that same refresh (one upstream listing, however
many scrapers). A scrape waits for it at most `wait` seconds (the refresh budget, so it
stays under Prometheus's scrape timeout); a refresh that takes longer is not thrown away:
it goes on in the background and its listing is served when it lands, while scrapes are
answered from what is there (the last good snapshot, `modelarts_up` as the last refresh
ended). Only a refresh still running after `give_up` seconds counts as failed. With
`background`, a scrape that has data to serve never waits: it starts the refresh and
answers at once (stale-while-revalidate; data age stays under TTL plus refresh time).

When a refresh fails, the last good snapshot keeps being served until it is older than
`max_staleness`, while `modelarts_up` says 0. A failed refresh is not repeated before the
next attempt time: the TTL for most errors, a 429's `Retry-After`, and an exponential
back-off for 401/403 (the gateway locks a key after five failures). Without `wait`, the
refresh runs in the scrape's own thread (tests with a fake clock).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from exporter import allocator
from exporter.config.series import SeriesOptions
from exporter.exposition.changes import Changes
from exporter.exposition.snapshot import Snapshot
from exporter.exposition.status import TargetStatus
from exporter.modelarts.client import Listing, Telemetry
from exporter.modelarts.errors import ApiError

log = logging.getLogger(__name__)

AUTH_BACKOFF_BASE = 60.0  # seconds after the first 401/403; doubles up to the cap
AUTH_BACKOFF_CAP = 900.0
RETRY_AFTER_CAP = AUTH_BACKOFF_CAP  # a gateway's Retry-After is honoured up to this


@dataclass
class _Flight:
    """One refresh under way, which every scrape that wants one joins."""

    started: float
    done: threading.Event = field(default_factory=threading.Event)
    overdue: bool = False  # counted as failed: it outlived `give_up`


class SnapshotCache:
    def __init__(
        self,
        project_id: str,
        fetch: Callable[[], Listing],
        *,
        ttl: float,
        max_staleness: float,
        telemetry: Callable[[], Telemetry] = Telemetry,
        options: SeriesOptions | None = None,
        target: tuple[str, str, str] = ("", "", ""),
        wait: float | None = None,
        give_up: float | None = None,
        background: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.project_id = project_id
        self.ttl = ttl
        self.max_staleness = max_staleness
        self._fetch = fetch
        self._telemetry = telemetry
        self._options = options or SeriesOptions()
        self._target = target  # name, region, list API: modelarts_exporter_target_info
        self._clock = clock
        self._wait = wait
        # A refresh still running after this is counted as failed (a peer that trickles
        # bytes would otherwise keep the last result, and `modelarts_up`, forever).
        self._give_up = give_up if give_up is not None else wait
        self._background = background
        self._lock = threading.Lock()  # the state below, and the single flight
        self._flight: _Flight | None = None
        self._fresh_until = float("-inf")
        self._last_good: Snapshot | None = None
        # Whatever was seen to change from one good listing to the next, since the start.
        self._changes = Changes()
        self._up = False
        self._last_success: float | None = None
        self._last_duration: float | None = None
        self._invalid_total = 0
        self._auth_failures = 0
        self._next_attempt = 0.0

    def status(self) -> TargetStatus:
        """The status to serve now; a refresh first when the listing has expired, waited
        for as long as `wait` allows."""
        flight, started_here = self._flight_to_join()
        if flight is not None:
            if self._wait is None and started_here:  # no worker: the scrape that starts it
                self._run(flight)
            elif self._wait is None:
                flight.done.wait()
            elif not flight.overdue and not (self._background and self.peek().snapshot is not None):
                flight.done.wait(self._wait)
                self._check_overdue(flight)
        return self.peek()

    def _flight_to_join(self) -> tuple[_Flight | None, bool]:
        """The refresh under way, or a new one when the listing has expired (and whether
        it is new); None when the listing is fresh or the next attempt is not due."""
        with self._lock:
            if self._flight is not None:
                return self._flight, False
            now = self._clock()
            if now < self._fresh_until or now < self._next_attempt:
                return None, False
            flight = self._flight = _Flight(started=now)
        if self._wait is not None:
            worker = threading.Thread(
                target=self._run, args=(flight,), name=f"refresh-{self.project_id}", daemon=True
            )
            worker.start()
        return flight, True

    def _run(self, flight: _Flight) -> None:
        try:
            self._refresh(flight)
        finally:
            with self._lock:
                if self._flight is flight:
                    self._flight = None
            flight.done.set()
        # What building the snapshot freed: not left resident under the next refresh's
        # peak. After the flight: no scrape waits for it.
        allocator.trim()

    def _refresh(self, flight: _Flight) -> None:
        try:
            listing = self._fetch()
        except ApiError as err:
            self._failed(flight, err)
        except Exception:  # a bug must not take the exporter down: count it, log it, go on
            log.exception("refresh failed unexpectedly project_id=%s", self.project_id)
            self._failed(flight, None)
        else:
            allocator.trim()  # the pages read are freed: the snapshot's peak starts lower
            self._succeeded(flight, listing)

    def _check_overdue(self, flight: _Flight) -> None:
        """A refresh running longer than `give_up` is counted as failed, once; its listing
        is still served if it lands."""
        if self._give_up is None or flight.done.is_set():
            return
        with self._lock:
            running = self._clock() - flight.started
            if flight.overdue or running < self._give_up:
                return
            flight.overdue = True
            self._up = False
        log.warning(
            "refresh failed project_id=%s error=%r next_attempt_in=when it ends serving=%s",
            self.project_id,
            f"refresh budget exceeded: still running after {running:.0f}s (served if it lands)",
            "last good data" if self.peek().snapshot is not None else "no instance data",
        )

    def peek(self) -> TargetStatus:
        """The status to serve now, without ever calling the API (readiness, describe)."""
        snapshot = self._last_good
        if snapshot is not None and self._clock() - snapshot.fetched_at > self.max_staleness:
            snapshot = None
        return TargetStatus(
            project_id=self.project_id,
            snapshot=snapshot,
            up=self._up,
            last_success=self._last_success,
            last_duration=self._last_duration,
            invalid_total=self._invalid_total,
            telemetry=self._telemetry(),
            target=self._target,
        )

    def _succeeded(self, flight: _Flight, listing: Listing) -> None:
        # Rendering the snapshot is most of a refresh's own cost: done before taking the
        # lock that scrapes need. Only this flight writes `_last_good` and `_changes`.
        previous = self._last_good.instances if self._last_good is not None else None
        changes = self._changes.after(previous, listing.instances, flight.started)
        snapshot = Snapshot(
            self.project_id,
            tuple(listing.instances),
            flight.started,
            self._options,
            listing.flavors,
            changes,
            previous=self._last_good,  # its unchanged notebooks' lines are copied
        )
        with self._lock:
            finished = self._clock()
            self._changes = changes
            self._last_good = snapshot
            self._fresh_until = finished + self.ttl
            self._up = True
            self._last_success = finished
            self._last_duration = finished - flight.started
            self._invalid_total += listing.invalid
            self._auth_failures = 0
            self._next_attempt = 0.0
        if listing.invalid:
            log.warning(
                "skipped unreadable instance records project_id=%s count=%d",
                self.project_id,
                listing.invalid,
            )
        log.debug(
            "refreshed project_id=%s instances=%d duration=%.3fs%s",
            self.project_id,
            len(listing.instances),
            finished - flight.started,
            " (after the refresh budget)" if flight.overdue else "",
        )

    def _failed(self, flight: _Flight, err: ApiError | None) -> None:
        with self._lock:
            now = self._clock()
            self._up = False
            self._last_duration = now - flight.started
            wait = self.ttl
            if err is not None and err.is_auth:
                self._auth_failures += 1
                wait = min(AUTH_BACKOFF_BASE * 2 ** (self._auth_failures - 1), AUTH_BACKOFF_CAP)
            elif err is not None and err.retry_after is not None:
                wait = min(max(err.retry_after, 1.0), RETRY_AFTER_CAP)
            self._next_attempt = now + wait
            stale = (
                self._last_good is not None
                and now - self._last_good.fetched_at <= self.max_staleness
            )
        if err is not None:
            log.warning(
                "refresh failed project_id=%s error=%r next_attempt_in=%.0fs serving=%s",
                self.project_id,
                str(err),
                wait,
                "last good data" if stale else "no instance data",
            )
