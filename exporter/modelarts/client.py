"""The ModelArts list calls: kept-alive connections, pagination, errors, a time budget.

`list_instances()` is one refresh: the historical list, the newer one (every notebook of
the project with `show_self` false: `/notebooks/all`, billed and CodeLab instances), and
the newer API's flavors, kept for `flavor_ttl` seconds. A refresh never takes longer than
`refresh_timeout` (how long a scrape waits for it is the cache's business). No request
leaves before a 429's `Retry-After`, whichever call it answered, and an authentication
failure ends the refresh: a 401 is answered by one
renewal of the credentials, a 403 (a missing permission) by none, and neither is
repeated (five failures in a row lock the key for five minutes); the cache backs off.
Which parameters, paths and paging: docs/targets.md, with the vendor's evidence. The
requests are signed as requests' `PreparedRequest`s and sent by transport.py's `Transport`.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Literal
from urllib.parse import urlencode

import requests
from requests.structures import CaseInsensitiveDict

from exporter import __version__
from exporter.modelarts.auth.provider import CredentialProvider
from exporter.modelarts.demanager import parse_page
from exporter.modelarts.errors import ApiError, CredentialError, error_from_response
from exporter.modelarts.flavors import Flavor, parse_flavors_page
from exporter.modelarts.instance import Instance
from exporter.modelarts.notebooks import PAGE_SIZE as PAGE_SIZE_V2
from exporter.modelarts.notebooks import parse_notebooks_page, same_notebook
from exporter.modelarts.records import MalformedResponse, Page, RecordMemo
from exporter.modelarts.transport import Transport

log = logging.getLogger(__name__)

Api = Literal["auto", "demanager", "notebooks", "both"]

USER_AGENT = f"modelarts-exporter/{__version__}"
# Besides the transport's own (Accept-Encoding, Connection), as requests sent them.
_HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json"}
_RETRIED_STATUSES = frozenset({500, 502, 503, 504})
_RETRY_PAUSE = 0.2  # seconds before repeating a 5xx or a dropped connection
_MAX_429_WAITS = 2
_MAX_PAGES = 2000  # a hard stop for a server that never returns a short page
CLOCK_SKEW_WARNING = 60.0  # seconds
# SDK ListNotebooksRequest.feature: billed instances (the default) and the free CodeLab one.
FEATURES = ("NOTEBOOK", "DEFAULT")
HISTORICAL_RECHECK = 3600.0  # seconds before asking again a region without the historical API
FLAVOR_RETRY = 60.0  # seconds before a failed flavors listing is tried again
# The permission each call needs (the vendor's permission tables; docs/targets.md).
LIST_PERMISSION = "modelarts:notebook:list"
LIST_ALL_PERMISSION = "modelarts:notebook:listAllNotebooks"


@dataclass(frozen=True)
class ListQuery:
    """The list call's filters; empty ones are omitted (they would be signed as `k=`)."""

    show_self: bool = False
    pool_id: str = ""
    workspace_id: str = ""

    def params(self, offset: int, limit: int) -> dict[str, str]:
        """The historical list's parameters (`limit` 0: every instance at once)."""
        params = {"de_type": "Notebook", "show_self": str(self.show_self).lower()}
        params.update(self._filters())
        if limit:
            params["offset"] = str(offset)
            params["limit"] = str(limit)
        return params

    def notebooks_params(self, offset: int, feature: str) -> dict[str, str]:
        """The newer list's: `offset` counts records (SDK ListNotebooksRequest.offset)."""
        params = {"offset": str(offset), "limit": str(PAGE_SIZE_V2), "feature": feature}
        params.update(self._filters())
        return params

    def _filters(self) -> dict[str, str]:
        filters = {"pool_id": self.pool_id, "workspace_id": self.workspace_id}
        return {name: value for name, value in filters.items() if value}


@dataclass(frozen=True)
class Listing:
    instances: list[Instance]
    invalid: int
    flavors: tuple[Flavor, ...] = ()  # the newer API's flavors listing, the last good one


@dataclass(frozen=True)
class Telemetry:
    """What the client has to say about itself, for the exporter's own metrics."""

    requests: dict[str, int] = field(default_factory=dict)  # to ModelArts, by code
    auth_requests: dict[str, int] = field(default_factory=dict)  # to IAM or metadata
    clock_skew: float | None = None
    flavor_failures: int = 0  # flavors listings that failed (the last good one was kept)


@dataclass
class RequestCounter:
    """Requests sent to ModelArts by HTTP status (or `error`); read by the collector."""

    _counts: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, code: str) -> None:
        with self._lock:
            self._counts[code] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


@dataclass
class _Refresh:
    """What the requests of one refresh share: the deadline and the one renewal."""

    deadline: float
    renewed: bool = False
    refused: ApiError | None = None  # an authentication failure: no more requests
    lock: threading.Lock = field(default_factory=threading.Lock)


class ModelArtsClient:
    """Lists a project's notebooks: `GET /v1/{project}/demanager/instances` (the historical
    API), `GET /v1/{project}/notebooks[/all]` (the newer one), or both (`auto`, `both`)."""

    def __init__(
        self,
        base_url: str,
        project_id: str,
        auth: CredentialProvider | None,
        *,
        query: ListQuery | None = None,
        api: Api = "auto",
        flavor_ttl: float = 600.0,
        page_size: int = 200,
        page_concurrency: int = 4,
        request_timeout: float = 5.0,
        refresh_timeout: float = 8.0,
        max_response_bytes: int = 64 * 1024 * 1024,
        verify: bool | str = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        project_url = f"{base_url.rstrip('/')}/v1/{project_id}"
        self.query = query or ListQuery()
        self.url = f"{project_url}/demanager/instances"
        # `/notebooks` lists what the caller may see of its own; `/notebooks/all` every
        # created notebook of the project (the vendor's words, docs/targets.md).
        self.notebooks_url = f"{project_url}/notebooks" + ("" if self.query.show_self else "/all")
        self.flavors_url = f"{project_url}/notebooks/flavors"
        self.api = api
        self.flavor_ttl = flavor_ttl
        self._flavors: tuple[Flavor, ...] = ()
        self._flavors_until = float("-inf")
        self._flavor_failures = 0
        self._historical_until = float("-inf")  # `auto`: the region has no historical API
        self._hold_until = float("-inf")  # a 429's Retry-After, for every call
        # Records unchanged since the last refresh are not read again (records.RecordMemo).
        self._historical_memo = RecordMemo()
        self._notebooks_memo = RecordMemo()
        self.page_size = page_size
        self.page_concurrency = page_concurrency
        self.request_timeout = request_timeout
        self.refresh_timeout = refresh_timeout
        self.max_response_bytes = max_response_bytes
        self.requests = RequestCounter()
        self.auth = auth
        self.clock_skew: float | None = None  # the gateway's clock minus ours, from `Date`
        self._clock = clock
        self._sleep = sleep
        # The proxy and CA bundle variables, read once, as requests would read them (it
        # read them again for every request: a scan of the whole environment, a sixth of
        # a refresh's CPU for 250 pages), for the one host this client talks to.
        proxy = requests.utils.select_proxy(base_url, requests.utils.get_environ_proxies(base_url))
        if verify is True:
            verify = (
                os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            )
        self.transport = Transport(
            base_url,
            max_connections=page_concurrency,
            verify=verify,
            proxy=proxy,
            clock=clock,
        )

    def close(self) -> None:
        self.transport.close()

    def telemetry(self) -> Telemetry:
        auth_requests = self.auth.requests_sent() if self.auth is not None else {}
        return Telemetry(
            self.requests.snapshot(), auth_requests, self.clock_skew, self._flavor_failures
        )

    def list_instances(self) -> Listing:
        """One refresh: every page of the configured API(s), each notebook once."""
        refresh = _Refresh(self._clock() + self.refresh_timeout)
        self._historical_memo.start()
        pages: list[Page] = []
        # Each notebook once, the first copy of it: instances shift between pages while
        # we read. Where both APIs list a notebook, the historical one's record is kept:
        # it alone tells queue rank, flavor sales and error codes.
        seen: dict[str, Instance] = {}
        if self.api in ("demanager", "both") or (
            self.api == "auto" and self._clock() >= self._historical_until
        ):
            pages += self._historical_pages(refresh)
            _keep_first(pages, seen)
        self._historical_memo.finish()
        flavors: tuple[Flavor, ...] = ()
        if self.api in ("notebooks", "both", "auto"):
            flavors = self._current_flavors(refresh)
            lookup = {flavor.name: flavor for flavor in flavors}
            # The newer list's records of notebooks the historical one had are left out
            # unread (and not kept: half the memory of a fleet that both lists).
            listed = seen.keys()  # a view: seen takes the newer pages only once all are read
            newer: list[Page] = []
            self._notebooks_memo.start(generation=flavors)  # records are joined with them
            for feature in FEATURES:
                fetch = functools.partial(
                    self._notebooks_page,
                    feature=feature,
                    flavors=lookup,
                    listed=listed,
                    refresh=refresh,
                )
                newer += self._paginate(fetch, PAGE_SIZE_V2)
            self._notebooks_memo.finish()
            _keep_first(newer, seen)
            pages += newer
        return Listing(list(seen.values()), sum(p.invalid for p in pages), flavors)

    def _historical_pages(self, refresh: _Refresh) -> list[Page]:
        try:
            return self._paginate(lambda n: self._demanager_page(n, refresh), self.page_size)
        except ApiError as err:
            if self.api != "auto" or err.status != 404:
                raise
        # The gateway's 404 (APIG.0101) for an API not published in this region: an empty
        # source, not a failure. Said once, asked again in an hour.
        if self._historical_until == float("-inf"):
            log.info("the historical list API is not offered here (404); listing the newer one")
        self._historical_until = self._clock() + HISTORICAL_RECHECK
        return []

    def _current_flavors(self, refresh: _Refresh) -> tuple[Flavor, ...]:
        """The flavors listing, fetched once per `flavor_ttl`; on failure the last good one
        (an authentication failure still ends the refresh)."""
        now = self._clock()
        if now < self._flavors_until:
            return self._flavors
        try:
            body = self._get(self.flavors_url, {}, refresh, "listing flavors")
            flavors, _ = parse_flavors_page(body)
        except MalformedResponse as err:
            failure: ApiError = ApiError(f"unreadable flavors response: {err}", code="malformed")
        except ApiError as err:
            if err.is_auth:
                raise
            failure = err
        else:
            self._flavors, self._flavors_until = tuple(flavors), now + self.flavor_ttl
            return self._flavors
        self._flavor_failures += 1
        self._flavors_until = now + min(self.flavor_ttl, FLAVOR_RETRY)
        log.warning(
            "flavors listing failed, keeping the last good one (%d flavors): %s",
            len(self._flavors),
            failure,
        )
        return self._flavors

    def _paginate(self, fetch: Callable[[int], Page], size: int) -> list[Page]:
        """Pages 0, 1, ... of `size` records: the rest side by side once the first tells
        how many there are, then on while the last is full (notebooks created meanwhile)."""
        first = fetch(0)
        if not size or first.records < size:
            return [first]
        known = min(first.page_count(size), _MAX_PAGES)
        got = {0: first}
        if known > 1:
            got.update(self._side_by_side(fetch, size, range(1, known)))
        pages = [got[n] for n in sorted(got)]
        number = max(got) + 1
        while pages[-1].records >= size and number < _MAX_PAGES:
            pages.append(fetch(number))
            number += 1
        return pages

    def _side_by_side(
        self, fetch: Callable[[int], Page], size: int, numbers: range
    ) -> dict[int, Page]:
        """`numbers` fetched by `page_concurrency` workers, each taking the next number
        when done with one (not a future per page: a refresh of 50,000 notebooks reads over
        a thousand pages, and handing each back cost more CPU than reading it). They stop
        at the first short page, as the total is only the server's word and a wrong one
        must not cost thousands of requests, or at the first failure, which is raised."""
        taking = threading.Lock()
        upcoming = iter(numbers)
        got: dict[int, Page] = {}
        failures: list[BaseException] = []
        done = threading.Event()

        def work() -> None:
            while not done.is_set():
                with taking:
                    number = next(upcoming, None)
                if number is None:
                    return
                try:
                    page = fetch(number)
                except BaseException as err:  # raised below, in the refresh thread
                    failures.append(err)
                    done.set()
                    return
                got[number] = page
                if page.records < size:
                    done.set()

        count = min(self.page_concurrency, len(numbers))
        if count <= 1:
            work()
        else:
            workers = [
                threading.Thread(target=work, name=f"list-page-{n}", daemon=True)
                for n in range(count)
            ]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        if failures:
            raise failures[0]
        return got

    def _demanager_page(self, number: int, refresh: _Refresh) -> Page:
        params = self.query.params(number * self.page_size, self.page_size)
        body = self._get(self.url, params, refresh, LIST_PERMISSION)
        return self._parse(body, lambda b: parse_page(b, self._historical_memo))

    def _notebooks_page(
        self,
        number: int,
        feature: str,
        flavors: dict[str, Flavor],
        listed: Container[str],
        refresh: _Refresh,
    ) -> Page:
        params = self.query.notebooks_params(number * PAGE_SIZE_V2, feature)
        permission = LIST_PERMISSION if self.query.show_self else LIST_ALL_PERMISSION
        body = self._get(self.notebooks_url, params, refresh, permission)
        memo = self._notebooks_memo
        return self._parse(body, lambda b: parse_notebooks_page(b, flavors, memo, listed))

    @staticmethod
    def _parse(body: bytes, parse: Callable[[bytes], Page]) -> Page:
        try:
            return parse(body)
        except MalformedResponse as err:
            raise ApiError(f"unreadable list response: {err}", code="malformed") from None

    def _get(self, url: str, params: dict[str, str], refresh: _Refresh, needs: str) -> bytes:
        """One GET with the retry policy: 5xx and dropped connections once, 429 after waiting,
        and one renewal of the credentials per refresh. `needs`: the permission it takes."""
        attempts_5xx = waits_429 = 0
        while True:
            self._wait_for_hold(refresh)
            remaining = refresh.deadline - self._clock()
            if remaining <= 0:
                raise ApiError(
                    f"refresh timeout of {self.refresh_timeout:g}s exhausted", code="timeout"
                )
            try:
                return self._send(url, params, min(self.request_timeout, remaining), refresh)
            except ApiError as err:
                if self._renew_once(err, refresh):
                    continue
                if err.status == 429:
                    self._hold_until = max(
                        self._hold_until, self._clock() + (err.retry_after or 1.0)
                    )
                pause = self._retry_pause(err, attempts_5xx, waits_429)
                if pause is None or self._clock() + pause >= refresh.deadline:
                    raise self._refused(err, refresh, needs) from None
                if err.status == 429:
                    waits_429 += 1
                else:
                    attempts_5xx += 1
                log.debug("retrying list request in %.1fs after: %s", pause, err)
                self._sleep(pause)

    def _wait_for_hold(self, refresh: _Refresh) -> None:
        """No request before an earlier answer's `Retry-After`, nor after a refusal."""
        if refresh.refused is not None:
            raise refresh.refused
        wait = self._hold_until - self._clock()
        if wait <= 0:
            return
        if self._clock() + wait >= refresh.deadline:
            raise ApiError(
                f"throttled: Retry-After holds for {wait:.0f}s more",
                status=429,
                code="throttled",
                retry_after=wait,
            )
        self._sleep(wait)

    @staticmethod
    def _refused(err: ApiError, refresh: _Refresh, needs: str) -> ApiError:
        """An authentication failure ends the refresh; a 403 names what is missing."""
        if err.status == 403 and not isinstance(err, CredentialError):
            err = err.with_hint(f"permission denied: the credentials need {needs}")
        if err.is_auth:
            refresh.refused = err
        return err

    def _renew_once(self, err: ApiError, refresh: _Refresh) -> bool:
        """An expired or revoked token (401): fetch a new one, once per refresh. A 403 is a
        missing permission: new credentials of the same user would not have it."""
        refused = err.status == 401 and not isinstance(err, CredentialError)
        with refresh.lock:
            if not refused or refresh.renewed or self.auth is None or not self.auth.renew():
                return False
            refresh.renewed = True
        log.info("credentials refused (%s); renewing them once", err)
        return True

    @staticmethod
    def _retry_pause(err: ApiError, attempts_5xx: int, waits_429: int) -> float | None:
        if err.status == 429:
            return (err.retry_after or 1.0) if waits_429 < _MAX_429_WAITS else None
        transient = err.status in _RETRIED_STATUSES or err.code == "connection"
        return _RETRY_PAUSE if transient and attempts_5xx < 1 else None

    def _send(self, url: str, params: dict[str, str], timeout: float, refresh: _Refresh) -> bytes:
        request = self._prepare(url, params)
        try:
            response = self.transport.send(
                request.method or "GET", request.url or url, request.headers, timeout
            )
        except ApiError:
            self.requests.add("error")
            raise
        with response:
            self.requests.add(str(response.status))
            self._note_clock_skew(response.headers.get("Date"))
            body = response.read(self.max_response_bytes, refresh.deadline)
            if response.status != 200:
                raise error_from_response(response.status, body, response.headers)
            return body

    def _prepare(self, url: str, params: dict[str, str]) -> requests.PreparedRequest:
        """The GET that `Session.get` would send, signed, prepared directly: the session's
        merging of settings, cookies and hooks, and its redirect handling, cost a third of
        each request's CPU, and a refresh of 50,000 notebooks sends over a thousand. An API
        gateway does not redirect: a 3xx is an error like any other non-200."""
        request = requests.PreparedRequest()
        request.method = "GET"
        request.url = f"{url}?{urlencode(params)}" if params else url
        request.headers = CaseInsensitiveDict(_HEADERS)
        request.body = None
        request.hooks = {"response": []}
        return self.auth(request) if self.auth is not None else request

    def _note_clock_skew(self, date: str | None) -> None:
        """The gateway rejects signatures 15 minutes off: say so long before that."""
        if not date:
            return
        try:
            skew = parsedate_to_datetime(date).timestamp() - time.time()
        except (TypeError, ValueError):
            return
        # `Date` has whole seconds: within a second, our clocks agree.
        skew = 0.0 if abs(skew) < 1.0 else skew
        if abs(skew) > CLOCK_SKEW_WARNING and (
            self.clock_skew is None or abs(self.clock_skew) <= CLOCK_SKEW_WARNING
        ):
            log.warning(
                "local clock is %.0fs %s the API gateway's; signatures fail beyond 900s",
                abs(skew),
                "behind" if skew > 0 else "ahead of",
            )
        self.clock_skew = skew


def _keep_first(pages: list[Page], seen: dict[str, Instance]) -> None:
    """Each notebook of `pages` not already in `seen`, by its `same_notebook` key."""
    for page in pages:
        for instance in page.instances:
            seen.setdefault(same_notebook(instance.id), instance)
