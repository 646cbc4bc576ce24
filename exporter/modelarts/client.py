"""The ModelArts list call: one pooled session, pagination, errors, a time budget.

`list_instances()` is one refresh. It never takes longer than `refresh_budget`, so the
scrape that waits for it stays under Prometheus's default 10 s scrape timeout. It sends
no request before a 429's `Retry-After` and never repeats a 401/403 (five in a row lock
the user's key for five minutes): those are raised for the cache to back off from.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Literal

import requests
from requests.adapters import HTTPAdapter

from exporter import __version__
from exporter.modelarts.auth.provider import CredentialProvider
from exporter.modelarts.demanager import parse_page
from exporter.modelarts.errors import ApiError, CredentialError, error_from_response
from exporter.modelarts.instance import Instance
from exporter.modelarts.notebooks import PAGE_SIZE as PAGE_SIZE_V2
from exporter.modelarts.notebooks import parse_notebooks_page, same_notebook
from exporter.modelarts.records import MalformedResponse, Page

log = logging.getLogger(__name__)

Api = Literal["demanager", "notebooks", "both"]

USER_AGENT = f"modelarts-exporter/{__version__}"
_RETRIED_STATUSES = frozenset({500, 502, 503, 504})
_RETRY_PAUSE = 0.2  # seconds before repeating a 5xx or a dropped connection
_MAX_429_WAITS = 2
_MAX_PAGES = 2000  # a hard stop for a server that never returns a short page
CLOCK_SKEW_WARNING = 60.0  # seconds


@dataclass(frozen=True)
class ListQuery:
    """The list call's filters; empty ones are omitted (they would be signed as `k=`)."""

    show_self: bool = False
    pool_id: str = ""
    workspace_id: str = ""

    def params(self, offset: int, limit: int) -> dict[str, str]:
        params = {"de_type": "Notebook", "show_self": str(self.show_self).lower()}
        if self.pool_id:
            params["pool_id"] = self.pool_id
        if self.workspace_id:
            params["workspace_id"] = self.workspace_id
        if limit:
            params["offset"] = str(offset)
            params["limit"] = str(limit)
        return params


@dataclass(frozen=True)
class Listing:
    instances: list[Instance]
    invalid: int


@dataclass(frozen=True)
class Telemetry:
    """What the client has to say about itself, for the exporter's own metrics."""

    requests: dict[str, int] = field(default_factory=dict)  # to ModelArts, by code
    auth_requests: dict[str, int] = field(default_factory=dict)  # to IAM or metadata
    clock_skew: float | None = None


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
    lock: threading.Lock = field(default_factory=threading.Lock)


class ModelArtsClient:
    """Lists a project's notebooks: `GET /v1/{project}/demanager/instances` (the historical
    API), `GET /v1/{project}/notebooks` (the newer one), or both."""

    def __init__(
        self,
        base_url: str,
        project_id: str,
        auth: CredentialProvider | None,
        *,
        query: ListQuery | None = None,
        api: Api = "demanager",
        page_size: int = 200,
        page_concurrency: int = 4,
        request_timeout: float = 5.0,
        refresh_budget: float = 8.0,
        max_response_bytes: int = 64 * 1024 * 1024,
        verify: bool | str = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/v1/{project_id}/demanager/instances"
        self.notebooks_url = f"{base_url.rstrip('/')}/v1/{project_id}/notebooks"
        self.api = api
        self.query = query or ListQuery()
        self.page_size = page_size
        self.page_concurrency = page_concurrency
        self.request_timeout = request_timeout
        self.refresh_budget = refresh_budget
        self.max_response_bytes = max_response_bytes
        self.requests = RequestCounter()
        self.auth = auth
        self.clock_skew: float | None = None  # the gateway's clock minus ours, from `Date`
        self._clock = clock
        self._sleep = sleep
        self.session = requests.Session()
        self.session.auth = auth
        self.session.verify = verify
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(page_concurrency, 1))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def telemetry(self) -> Telemetry:
        auth_requests = self.auth.requests_sent() if self.auth is not None else {}
        return Telemetry(self.requests.snapshot(), auth_requests, self.clock_skew)

    def list_instances(self) -> Listing:
        """One refresh: every page of the configured API(s), each notebook once."""
        refresh = _Refresh(self._clock() + self.refresh_budget)
        pages: list[Page] = []
        # Where both APIs list a notebook, the historical one's record is kept: it alone
        # tells queue rank, flavor sales and error codes.
        if self.api in ("demanager", "both"):
            pages += self._paginate(lambda n: self._demanager_page(n, refresh), self.page_size)
        if self.api in ("notebooks", "both"):
            pages += self._paginate(lambda n: self._notebooks_page(n, refresh), PAGE_SIZE_V2)
        seen: dict[str, Instance] = {}
        for page in pages:
            for instance in page.instances:
                # Instances shift between pages while we read: keep the first copy only.
                seen.setdefault(same_notebook(instance.id), instance)
        return Listing(list(seen.values()), sum(p.invalid for p in pages))

    def _paginate(self, fetch: Callable[[int], Page], size: int) -> list[Page]:
        """Pages 0, 1, ... of `size` records: the rest side by side once the first tells
        how many there are, then on while the last is full (notebooks created meanwhile)."""
        pages = [fetch(0)]
        if not size or pages[0].records < size:
            return pages
        known = min(pages[0].page_count(size), _MAX_PAGES)
        number = 1
        if known > 1:
            # In waves of `page_concurrency`, stopping at the first short page: the total
            # is only the server's word, and a wrong one must not cost thousands of requests.
            workers = min(self.page_concurrency, known - 1)
            with ThreadPoolExecutor(workers, thread_name_prefix="list-page") as pool:
                while number < known:
                    wave = list(pool.map(fetch, range(number, min(number + workers, known))))
                    pages += wave
                    number += len(wave)
                    if any(page.records < size for page in wave):
                        break
        while pages[-1].records >= size and number < _MAX_PAGES:
            pages.append(fetch(number))
            number += 1
        return pages

    def _demanager_page(self, number: int, refresh: _Refresh) -> Page:
        params = self.query.params(number * self.page_size, self.page_size)
        return self._parse(self._get(self.url, params, refresh), parse_page)

    def _notebooks_page(self, number: int, refresh: _Refresh) -> Page:
        params = {"offset": str(number), "limit": str(PAGE_SIZE_V2)}
        if self.query.pool_id:
            params["pool_id"] = self.query.pool_id
        return self._parse(self._get(self.notebooks_url, params, refresh), parse_notebooks_page)

    @staticmethod
    def _parse(body: bytes, parse: Callable[[bytes], Page]) -> Page:
        try:
            return parse(body)
        except MalformedResponse as err:
            raise ApiError(f"unreadable list response: {err}", code="malformed") from None

    def _get(self, url: str, params: dict[str, str], refresh: _Refresh) -> bytes:
        """One GET with the retry policy: 5xx and dropped connections once, 429 after waiting,
        and one renewal of the credentials per refresh."""
        attempts_5xx = waits_429 = 0
        while True:
            remaining = refresh.deadline - self._clock()
            if remaining <= 0:
                raise ApiError(
                    f"refresh budget of {self.refresh_budget:g}s exhausted", code="timeout"
                )
            try:
                return self._send(url, params, min(self.request_timeout, remaining), refresh)
            except ApiError as err:
                if self._renew_once(err, refresh):
                    continue
                pause = self._retry_pause(err, attempts_5xx, waits_429)
                if pause is None or self._clock() + pause >= refresh.deadline:
                    raise
                if err.status == 429:
                    waits_429 += 1
                else:
                    attempts_5xx += 1
                log.debug("retrying list request in %.1fs after: %s", pause, err)
                self._sleep(pause)

    def _renew_once(self, err: ApiError, refresh: _Refresh) -> bool:
        """An expired or revoked token: fetch a new one, once per refresh."""
        refused = err.is_auth and not isinstance(err, CredentialError)
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
        try:
            response = self.session.get(url, params=params, timeout=timeout, stream=True)
        except requests.Timeout:
            self.requests.add("error")
            raise ApiError(f"no answer within {timeout:.1f}s", code="timeout") from None
        except requests.exceptions.SSLError as err:
            self.requests.add("error")
            raise ApiError(f"TLS error: {_root_cause(err)}", code="tls") from None
        except requests.RequestException as err:
            self.requests.add("error")
            raise ApiError(f"connection failed: {_root_cause(err)}", code="connection") from None
        with response:
            self.requests.add(str(response.status_code))
            self._note_clock_skew(response.headers.get("Date"))
            body = self._read_body(response, refresh.deadline)
            if response.status_code != 200:
                raise error_from_response(response.status_code, body, response.headers)
            return body

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

    def _read_body(self, response: requests.Response, deadline: float) -> bytes:
        """Read at most `max_response_bytes`, and only until the deadline."""
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(chunk_size=256 * 1024):
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise ApiError(
                        f"response larger than {self.max_response_bytes} bytes", code="too_large"
                    )
                if self._clock() > deadline:
                    raise ApiError(
                        "response still arriving at the end of the budget", code="timeout"
                    )
                chunks.append(chunk)
        except requests.RequestException as err:
            raise ApiError(
                f"reading response failed: {_root_cause(err)}", code="connection"
            ) from None
        return b"".join(chunks)


def _root_cause(err: BaseException) -> str:
    """The innermost exception's message: short, and free of URLs with query strings."""
    while err.__cause__ is not None or err.__context__ is not None:
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    text = str(err).split(" (Caused by")[0]
    return f"{type(err).__name__}: {text}"[:200]
