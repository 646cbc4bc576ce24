"""The fetch floor: the pages one refresh reads, downloaded and thrown away.

    python -m bench.fetch --endpoint URL [--repeat 3] [--page-size 200] [--flavors]

Downloads exactly the pages the exporter reads in one refresh with `--api auto`: the
historical `/v1/{project}/demanager/instances` in pages of `--page-size`, then the newer
`/v1/{project}/notebooks/all` in pages of 50 for each feature (NOTEBOOK, DEFAULT), with the
exporter's own parameters (`ListQuery`), headers and signer (`AkSkProvider`), and its
paging: the first page, then the rest in waves of `--page-concurrency` (4) pages at once,
on while the last page is full. The client is as lean as it gets: `http.client`, one
kept-alive connection per thread (as the exporter's pool keeps them between refreshes),
every body read in 256 KiB chunks and discarded; nothing is parsed but the first page's
total (a regular expression on its first or last bytes). The flavors listing is left out
unless `--flavors`: the exporter keeps it for `--flavor-cache-ttl` (10 minutes), so a cold
scrape does not read it.

It prints one JSON line: the seconds of each download, the bytes and requests of one.
It runs as a process of its own, as the exporter does, so that it does not share a GIL
with the simulator in the benchmark's process; `fetch_floor` runs it for the benchmark.
The cold scrape minus this time is the exporter's own part of a refresh.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

if __package__ in (None, ""):  # `python bench/fetch.py`: make the repository importable
    sys.path.append(str(Path(__file__).resolve().parent.parent))

import requests
from pydantic import SecretStr
from requests.structures import CaseInsensitiveDict
from requests.utils import default_headers

from exporter.modelarts.auth.aksk import AkSkProvider
from exporter.modelarts.client import FEATURES, USER_AGENT, ListQuery
from exporter.modelarts.notebooks import PAGE_SIZE as PAGE_SIZE_V2
from exporter.simulator import DEMO_AK, DEMO_PROJECT_ID, DEMO_SK

CHUNK = 256 * 1024  # as the exporter reads a body (exporter/modelarts/transport.py)
MAX_PAGES = 2000  # the exporter's hard stop
TOTAL_COUNT = re.compile(rb'"total_count":\s*(\d+)')  # historical: at the start
TOTAL = re.compile(rb'"total":\s*(\d+)\s*}\s*$')  # newer: at the end


class Downloader:
    """One exporter-like session against one project; `once()` is one refresh's pages."""

    def __init__(
        self,
        endpoint: str,
        project_id: str = DEMO_PROJECT_ID,
        ak: str = DEMO_AK,
        sk: str = DEMO_SK,
        *,
        page_size: int = 200,
        page_concurrency: int = 4,
        flavors: bool = False,
        timeout: float = 30.0,
    ) -> None:
        base = f"{endpoint.rstrip('/')}/v1/{project_id}"
        self.historical_url = f"{base}/demanager/instances"
        self.notebooks_url = f"{base}/notebooks/all"  # show_self false, as by default
        self.flavors_url = f"{base}/notebooks/flavors" if flavors else ""
        self.query = ListQuery()
        self.page_size = page_size
        self.page_concurrency = page_concurrency
        self.timeout = timeout
        self.auth = AkSkProvider(SecretStr(ak), SecretStr(sk), project_id=project_id)
        # The headers the exporter's session sends (requests' defaults, its own on top).
        self.headers = default_headers()
        self.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        self.address = urlsplit(endpoint)
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self.bytes = 0
        self.requests = 0

    def close(self) -> None:
        for connection in self._connections:
            connection.close()

    def once(self) -> None:
        """The pages of one refresh, in the exporter's order."""
        if self.page_size:
            self._paginate(
                lambda n: self.query.params(n * self.page_size, self.page_size),
                self.historical_url,
                self.page_size,
                TOTAL_COUNT,
            )
        else:  # --page-size 0: everything in one response
            self._get(self.historical_url, self.query.params(0, 0))
        if self.flavors_url:
            self._get(self.flavors_url, {})
        for feature in FEATURES:

            def params(number: int, feature: str = feature) -> dict[str, str]:
                return self.query.notebooks_params(number * PAGE_SIZE_V2, feature)

            self._paginate(params, self.notebooks_url, PAGE_SIZE_V2, TOTAL)

    def _paginate(
        self,
        params: Callable[[int], dict[str, str]],
        url: str,
        size: int,
        total_pattern: re.Pattern[bytes],
    ) -> None:
        """As ModelArtsClient._paginate: page 0, then waves of `page_concurrency` pages
        once the first page tells the total, stopping at a short page, on while full."""
        head, tail = self._get(url, params(0))
        found = total_pattern.search(head) or total_pattern.search(tail)
        if found is None:
            raise RuntimeError(f"no total in the first page of {url}: {head[:200]!r}")
        total = int(found.group(1))

        def records(number: int) -> int:  # the fleet stands still: the total tells
            return max(0, min(size, total - number * size))

        def fetch(number: int) -> int:
            self._get(url, params(number))
            return records(number)

        if records(0) < size:
            return
        known = min(-(-total // size), MAX_PAGES)
        number = 1
        last = records(0)
        if known > 1:
            workers = min(self.page_concurrency, known - 1)
            with ThreadPoolExecutor(workers, thread_name_prefix="fetch-page") as pool:
                while number < known:
                    wave = list(pool.map(fetch, range(number, min(number + workers, known))))
                    number += len(wave)
                    last = wave[-1]
                    if any(n < size for n in wave):
                        break
        while last >= size and number < MAX_PAGES:
            last = fetch(number)
            number += 1

    def _connection(self, fresh: bool = False) -> http.client.HTTPConnection:
        """This thread's kept-alive connection (a new one when `fresh`)."""
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None or fresh:
            if connection is not None:
                connection.close()
            kind = (
                http.client.HTTPSConnection
                if self.address.scheme == "https"
                else http.client.HTTPConnection
            )
            connection = kind(self.address.netloc, timeout=self.timeout)
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def _get(self, url: str, params: dict[str, str]) -> tuple[bytes, bytes]:
        """One signed GET, its body read and discarded: its first and last bytes."""
        request = requests.PreparedRequest()
        request.method = "GET"
        request.url = f"{url}?{urlencode(params)}" if params else url
        request.headers = CaseInsensitiveDict(self.headers)
        request.body = None
        self.auth(request)
        parts = urlsplit(request.url)
        target = f"{parts.path}?{parts.query}" if parts.query else parts.path
        for attempt in (1, 2):  # a kept-alive connection the server closed: once more
            connection = self._connection(fresh=attempt == 2)
            try:
                connection.request("GET", target, headers=dict(request.headers))
                response = connection.getresponse()
                head = tail = b""
                size = 0
                while chunk := response.read(CHUNK):
                    if not head:
                        head = chunk[:256]
                    tail = (tail + chunk)[-256:]
                    size += len(chunk)
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if attempt == 2:
                    raise
        with self._lock:
            self.bytes += size
            self.requests += 1
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status} from {url}: {head[:200]!r}")
        return head, tail


def main(argv: list[str] | None = None) -> int:
    description = __doc__.split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bench.fetch", description=description)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--project-id", default=DEMO_PROJECT_ID)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--page-size", type=int, default=200)
    parser.add_argument("--page-concurrency", type=int, default=4)
    parser.add_argument("--flavors", action="store_true", help="list the flavors too")
    args = parser.parse_args(argv)
    downloader = Downloader(
        args.endpoint,
        args.project_id,
        page_size=args.page_size,
        page_concurrency=args.page_concurrency,
        flavors=args.flavors,
    )
    seconds = []
    try:
        for _ in range(args.repeat):
            downloader.bytes = downloader.requests = 0
            started = time.perf_counter()
            downloader.once()
            seconds.append(time.perf_counter() - started)
    finally:
        downloader.close()
    print(
        json.dumps({"seconds": seconds, "bytes": downloader.bytes, "requests": downloader.requests})
    )
    return 0


def fetch_floor(
    sim_url: str,
    repeat: int = 3,
    *,
    page_size: int = 200,
    page_concurrency: int = 4,
    flavors: bool = False,
    timeout: float = 300.0,
) -> dict[str, Any]:
    """`python -m bench.fetch` as a child process: its downloads' seconds, median, bytes."""
    from bench.procs import child_env

    args = [sys.executable, "-m", "bench.fetch", "--endpoint", sim_url, "--repeat", str(repeat)]
    args += ["--page-size", str(page_size), "--page-concurrency", str(page_concurrency)]
    args += ["--flavors"] if flavors else []
    with tempfile.TemporaryDirectory(prefix="modelarts-bench-fetch-") as cwd:
        done = subprocess.run(
            args, cwd=cwd, env=child_env(), capture_output=True, timeout=timeout, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(f"bench.fetch failed:\n{done.stderr.decode(errors='replace')[-2000:]}")
    out: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    out["median_s"] = statistics.median(out["seconds"])
    return out


if __name__ == "__main__":
    raise SystemExit(main())
