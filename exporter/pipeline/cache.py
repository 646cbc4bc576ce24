"""The snapshot cache of one project: TTL, single flight, stale-on-error, back-off.

A listing is served for `ttl` seconds. When it has expired, the first scrape refreshes
it and every concurrent scrape waits for that same refresh (one upstream listing, however
many scrapers). When a refresh fails, the last good snapshot keeps being served until it
is older than `max_staleness`, while `modelarts_up` says 0. A failed refresh is not
repeated before the next attempt time: the TTL for most errors, a 429's `Retry-After`,
and an exponential back-off for 401/403 (the gateway locks a key after five failures).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from cachetools import TTLCache

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
        fetch_timeout: float | None = None,
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
        # The longest a scrape waits for a refresh; the client's budget is checked only
        # between reads, and a peer that trickles bytes would hold every scrape.
        self._fetch_timeout = fetch_timeout
        self._straggler: threading.Thread | None = None  # a refresh given up on
        self._fresh: TTLCache[str, Snapshot] = TTLCache(maxsize=1, ttl=ttl, timer=clock)
        self._refresh_lock = threading.Lock()  # the single flight
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
        """The status to serve now, refreshing first when the listing has expired."""
        if self._expired():
            with self._refresh_lock:
                if self._expired():  # another scrape may have refreshed while we waited
                    self._refresh()
        return self.peek()

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

    def _expired(self) -> bool:
        return "listing" not in self._fresh and self._clock() >= self._next_attempt

    def _fetch_bounded(self) -> Listing:
        """`fetch()`, given up on after `fetch_timeout` (it then ends in the background)."""
        if self._fetch_timeout is None:
            return self._fetch()
        if self._straggler is not None and self._straggler.is_alive():
            raise ApiError("the previous refresh is still running", code="timeout")
        outcome: list[Listing | Exception] = []

        def run() -> None:
            try:
                outcome.append(self._fetch())
            except Exception as err:
                outcome.append(err)

        worker = threading.Thread(target=run, name=f"refresh-{self.project_id}", daemon=True)
        worker.start()
        worker.join(self._fetch_timeout)
        if worker.is_alive():
            self._straggler = worker
            raise ApiError(
                f"refresh budget exceeded: still running after {self._fetch_timeout:g}s",
                code="timeout",
            )
        result = outcome[0]
        if isinstance(result, Exception):
            raise result
        return result

    def _refresh(self) -> None:
        started = self._clock()
        try:
            listing = self._fetch_bounded()
        except ApiError as err:
            self._failed(started, err)
            return
        except Exception:  # a bug must not take the exporter down: count it, log it, go on
            log.exception("refresh failed unexpectedly project_id=%s", self.project_id)
            self._failed(started, None)
            return
        finished = self._clock()
        previous = self._last_good.instances if self._last_good is not None else None
        self._changes = self._changes.after(previous, listing.instances, started)
        snapshot = Snapshot(
            self.project_id,
            tuple(listing.instances),
            started,
            self._options,
            listing.flavors,
            self._changes,
        )
        self._fresh["listing"] = snapshot
        self._last_good = snapshot
        self._up = True
        self._last_success = finished
        self._last_duration = finished - started
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
            "refreshed project_id=%s instances=%d duration=%.3fs",
            self.project_id,
            len(listing.instances),
            self._last_duration,
        )

    def _failed(self, started: float, err: ApiError | None) -> None:
        now = self._clock()
        self._up = False
        self._last_duration = now - started
        wait = self.ttl
        if err is not None and err.is_auth:
            self._auth_failures += 1
            wait = min(AUTH_BACKOFF_BASE * 2 ** (self._auth_failures - 1), AUTH_BACKOFF_CAP)
        elif err is not None and err.retry_after is not None:
            wait = min(max(err.retry_after, 1.0), RETRY_AFTER_CAP)
        self._next_attempt = now + wait
        if err is not None:
            stale = (
                self._last_good is not None
                and now - self._last_good.fetched_at <= self.max_staleness
            )
            log.warning(
                "refresh failed project_id=%s error=%r next_attempt_in=%.0fs serving=%s",
                self.project_id,
                str(err),
                wait,
                "last good data" if stale else "no instance data",
            )
