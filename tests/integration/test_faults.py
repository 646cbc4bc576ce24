"""The fault matrix: the exporter as a process, ModelArts failing in every way we know.

One simulator and one exporter process serve the whole matrix (`--cache-ttl 1
--refresh-budget 3 --request-timeout 1`); a small TCP proxy between them makes the
faults the simulator cannot: a refused connection, a peer that trickles bytes, a
certificate that does not verify. For each fault the scrape must answer 200 within
10 s, serve the last good data while it is fresh enough, say what happened through
`modelarts_up` and `modelarts_exporter_api_requests_total{code}`, log one `refresh
failed` line naming the cause, and recover by itself once the fault ends.

The table of what was seen (fault, scrape status and time, `modelarts_up`, recovery
time) is printed at the end of the session and written to /tmp/modelarts-fault-table.txt.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from exporter.modelarts.client import Listing
from exporter.modelarts.errors import ApiError
from exporter.pipeline.cache import SnapshotCache
from exporter.simulator import Fault, Fleet, Simulator
from tests.support.certs import issue, make_ca
from tests.support.exposition import MetricValues, parse_exposition
from tests.support.processes import ExporterProcess, env_for, exporter_process

TTL = 1.0
BUDGET = 3.0
SCRAPE_BOUND = 10.0  # Prometheus's default scrape timeout
RECOVERY_BOUND = 10.0
MAX_RESPONSE_BYTES = 1_000_000
PAGE_SIZE = 25
FLEET_SIZE = 60  # three pages: 25 + 25 + 10
# The faulty pages below have the historical API's shape: the matrix reads that API alone
# (the newer API's answers go through the same client code; test_notebooks.py covers them).
EXPORTER_FLAGS = (
    # Synchronous refreshes: the scrape that starts a refresh waits for it and shows what
    # the fault did to it, so each row can say exactly that. By default the outcome shows
    # one scrape later (stale-while-revalidate; tests/integration/test_e2e.py).
    "--no-refresh.background",
    "--api",
    "demanager",
    "--cache-ttl",
    str(TTL),
    "--refresh-budget",
    str(BUDGET),
    "--refresh-timeout",  # as long as a scrape waits: a stuck refresh shows at once
    str(BUDGET),
    "--request-timeout",
    "1",
    "--max-response-bytes",
    str(MAX_RESPONSE_BYTES),
    "--page-size",
    str(PAGE_SIZE),
)
TABLE_FILE = Path("/tmp/modelarts-fault-table.txt")


# -- the fault table ----------------------------------------------------------------------


@dataclass
class Row:
    fault: str
    status: str
    seconds: float | None
    up: str
    recovery: float | None
    note: str = ""


ROWS: list[Row] = []


@pytest.fixture(scope="session", autouse=True)
def fault_table(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if not ROWS:
        return
    header = f"{'fault':<44} {'scrape':<8} {'took':>6} {'up':>3} {'recovery':>9}  note"
    lines = [header, "-" * len(header)]
    for row in ROWS:
        took = f"{row.seconds:.2f}s" if row.seconds is not None else "-"
        recovery = f"{row.recovery:.2f}s" if row.recovery is not None else "-"
        lines.append(
            f"{row.fault:<44} {row.status:<8} {took:>6} {row.up:>3} {recovery:>9}  {row.note}"
        )
    text = "\n".join(lines) + "\n"
    TABLE_FILE.write_text(text)
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\n\nfault table (also in {TABLE_FILE}):\n{text}")


# -- a TCP proxy that can refuse, trickle, and change its certificate ---------------------


class Proxy:
    """Forwards 127.0.0.1:port to the simulator; `mode` decides how.

    forward: pass bytes both ways. refuse: no listener, no connection (connection
    refused). trickle: answers arrive one byte every quarter second, so no single read
    ever times out. `tls` terminates TLS with that context in front of the simulator.
    Every change of mode drops the open connections, as a real outage would.
    """

    def __init__(self, upstream: tuple[str, int], tls: ssl.SSLContext | None = None) -> None:
        self.upstream = upstream
        self.tls = tls
        self.mode = "forward"
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def __enter__(self) -> Proxy:
        self._listen()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._close_listener()
        self.drop()

    def set_mode(self, mode: str, tls: ssl.SSLContext | None = None) -> None:
        self.mode = mode
        if tls is not None:
            self.tls = tls
        self.drop()
        if mode == "refuse":
            self._close_listener()
        elif self._listener is None:
            self._listen()

    def drop(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopped.is_set() and self._listener is listener:
            ready, _, _ = select.select([listener], [], [], 0.05)
            if not ready:
                continue
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _serve(self, client: socket.socket) -> None:
        self._track(client)
        tls = self.tls
        try:
            if tls is not None:
                client.settimeout(5)
                client = tls.wrap_socket(client, server_side=True)
                client.settimeout(None)
                self._track(client)
            upstream = socket.create_connection(self.upstream, timeout=5)
            upstream.settimeout(None)
        except OSError:
            client.close()
            return
        self._track(upstream)
        threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
        self._pump(upstream, client, True)

    def _pump(self, source: socket.socket, sink: socket.socket, answers: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if answers and self.mode == "trickle":
                    for i in range(len(data)):
                        if self.mode != "trickle":
                            sink.sendall(data[i:])
                            break
                        sink.sendall(data[i : i + 1])
                        time.sleep(0.25)
                else:
                    sink.sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


# -- the exporter's stderr, read as it comes ----------------------------------------------


class LogTail:
    def __init__(self, stream: IO[bytes]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def mark(self) -> int:
        return len(self.lines)

    def since(self, mark: int) -> list[str]:
        time.sleep(0.1)  # the line is written before the scrape answers; let the reader catch up
        return self.lines[mark:]


# -- scraping ----------------------------------------------------------------------------


@dataclass
class Scrape:
    status: int | None  # None: no answer within the bound
    seconds: float
    text: str = ""
    error: str = ""

    @property
    def metrics(self) -> MetricValues:
        return parse_exposition(self.text)

    @property
    def up(self) -> float | None:
        if self.status != 200:
            return None
        return self.metrics("modelarts_up")


def scrape(exporter: ExporterProcess, timeout: float = SCRAPE_BOUND) -> Scrape:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(exporter.url + "/metrics", timeout=timeout) as response:
            body = response.read()
            return Scrape(response.status, time.monotonic() - started, body.decode())
    except urllib.error.HTTPError as err:
        return Scrape(err.code, time.monotonic() - started, error=str(err))
    except OSError as err:
        return Scrape(None, time.monotonic() - started, error=f"{type(err).__name__}: {err}")


def wait_up(exporter: ExporterProcess, timeout: float = 20.0) -> float:
    """Seconds until a scrape says `modelarts_up 1`; raises when it never does."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        result = scrape(exporter)
        if result.up == 1:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"modelarts_up did not return to 1 within {timeout:.0f}s")


def request_counts(text: str) -> dict[str, float]:
    m = parse_exposition(text)
    return {
        dict(labels)["code"]: value
        for labels, value in m.all("modelarts_exporter_api_requests_total").items()
    }


def instance_ids(text: str) -> set[str]:
    return parse_exposition(text).label_values("modelarts_notebook_instance_info", "id")


# -- the rig: one simulator, one proxy, one exporter ----------------------------------------


@dataclass
class Rig:
    sim: Simulator
    proxy: Proxy
    exporter: ExporterProcess
    logs: LogTail
    fleet_ids: set[str]
    baseline: dict[str, int] = field(default_factory=dict)

    def page(self, offset: int, limit: int = PAGE_SIZE) -> dict[str, Any]:
        """The list page as the simulator answers it now."""
        params = {"de_type": "Notebook", "show_self": "false"}
        params.update(offset=str(offset), limit=str(limit))
        status, body = self.sim.list_page(params)
        assert status == 200
        doc: dict[str, Any] = json.loads(body)
        return doc

    def records(self) -> list[dict[str, Any]]:
        return list(self.page(0, 0)["instances"])


def process_resources(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "threads": int(fields["Threads"]),
        "fds": len(list(Path(f"/proc/{pid}/fd").iterdir())),
        "rss_kb": int(fields["VmRSS"].split()[0]),
    }


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    fleet = Fleet(size=FLEET_SIZE, seed=11, evolve=False)
    with (
        Simulator(fleet) as sim,
        Proxy(sim._server.server_address[:2]) as proxy,
        exporter_process(*EXPORTER_FLAGS, env=env_for(proxy.url)) as exporter,
    ):
        assert exporter.process.stderr is not None
        logs = LogTail(exporter.process.stderr)
        ids = {r["id"] for r in fleet.records()}
        rig = Rig(sim, proxy, exporter, logs, ids)
        wait_up(exporter)
        rig.baseline = process_resources(exporter.process.pid)
        yield rig


# -- the faults ----------------------------------------------------------------------------


def inject(fault: Fault, times: int | None = None) -> Callable[[Rig], None]:
    return lambda rig: rig.sim.inject(fault, times=times)


def inject_pages(make: Callable[[Rig], list[dict[str, Any]]]) -> Callable[[Rig], None]:
    """Answer the next requests, one each, with these bodies (the first is the first page)."""

    def start(rig: Rig) -> None:
        for doc in make(rig):
            body = json.dumps(doc).encode()
            rig.sim.inject(Fault(kind="status", status=200, body=body), times=1)

    return start


def end_fault(rig: Rig) -> None:
    rig.sim.clear()
    rig.proxy.set_mode("forward")


@dataclass(frozen=True)
class Case:
    name: str
    start: Callable[[Rig], None]
    codes: tuple[str, ...] = ()  # request codes whose counters must go up
    cause: tuple[str, ...] = ()  # what the `refresh failed` line must say
    fails: bool = True  # the refresh fails (else: odd data, served as up)
    check: Callable[[Rig, Scrape], None] | None = None  # more about the data served


def _total_count(total: int) -> Callable[[Rig], list[dict[str, Any]]]:
    def make(rig: Rig) -> list[dict[str, Any]]:
        first = rig.page(0)
        first["total_count"] = total
        return [first]

    return make


def _shifted(by: int) -> Callable[[Rig], list[dict[str, Any]]]:
    """Page 1 as now; pages 2 and 3 as after `by` notebooks were created (>0) or deleted
    (<0) at the front of the list while we paged."""

    def make(rig: Rig) -> list[dict[str, Any]]:
        records = rig.records()
        if by > 0:
            newer = [{**records[0], "id": f"DE-new-{i}", "name": f"new-{i}"} for i in range(by)]
            later = newer + records
        else:
            later = records[-by:]
        total = len(later)
        return [
            {"total_count": len(records), "instances": records[:PAGE_SIZE]},
            {"total_count": total, "instances": later[PAGE_SIZE : 2 * PAGE_SIZE]},
            {"total_count": total, "instances": later[2 * PAGE_SIZE : 3 * PAGE_SIZE]},
        ]

    return make


def _check_all_served(rig: Rig, result: Scrape) -> None:
    assert instance_ids(result.text) == rig.fleet_ids


def _check_shift_created(rig: Rig, result: Scrape) -> None:
    # Each notebook appears once: the one seen on two pages is not served twice.
    m = result.metrics
    served = m.all("modelarts_notebook_instance_info")
    ids = [dict(labels)["id"] for labels in served]
    assert len(ids) == len(set(ids))
    assert set(ids) == rig.fleet_ids  # the new one shows at the next refresh


def _check_shift_deleted(rig: Rig, result: Scrape) -> None:
    ids = instance_ids(result.text)
    records = rig.records()
    # The deleted first notebook is gone from pages 2-3, which skip one that still exists:
    # that one is missed until the next refresh; nothing is duplicated or invented.
    assert ids <= rig.fleet_ids
    assert len(ids) >= FLEET_SIZE - 2
    assert records[0]["id"] in ids


NULLS = {
    "name": None,
    "flavor": None,
    "creation_timestamp": None,
    "latest_update_timestamp": None,
    "error_code": None,
    "flavor_details": None,
    "profile": None,
    "pool": None,
    "workspace": None,
    "user": None,
    "spec": None,
    "queuing_info": None,
}
NULL_INSIDE = {
    "flavor_details": {k: None for k in ("name", "status", "type", "queuing_num")},
    "profile": {"flavor_type": None, "provision": {"spec": {"params": None}}},
    "pool": {"id": None, "name": None, "type": None},
    "workspace": {"id": None},
    "user": {"id": None, "name": None},
    "spec": {"auto_stop": {"enable": None, "stop_timestamp": None}, "failed_reasons": None},
    "queuing_info": {"rank": None, "begin_timestamp": None, "end_timestamp": None},
}


def _nulls(rig: Rig) -> list[dict[str, Any]]:
    return [
        {
            "total_count": 3,
            "instances": [
                {"id": "DE-null-1", "status": "RUNNING", **NULLS},
                {"id": "DE-null-2", "status": "CREATE_QUEUING", **NULLS, **NULL_INSIDE},
                {"id": "DE-null-3", "status": "STOPPED"},
            ],
        }
    ]


def _check_nulls(rig: Rig, result: Scrape) -> None:
    m = result.metrics
    assert instance_ids(result.text) == {"DE-null-1", "DE-null-2", "DE-null-3"}
    info = dict(next(iter(m.all("modelarts_notebook_instance_info", id="DE-null-1"))))
    assert info["name"] == "" and info["user_name"] == "" and info["flavor"] == ""
    assert m("modelarts_notebook_instance_status", id="DE-null-2") == 1
    assert m("modelarts_exporter_invalid_instances_total") == 0


def _unknown_statuses(rig: Rig) -> list[dict[str, Any]]:
    records = rig.records()[:3]
    statuses = ("HIBERNATING", "running", "")  # new, lowercase, empty (unreadable)
    return [
        {
            "total_count": 3,
            "instances": [{**r, "status": s} for r, s in zip(records, statuses, strict=True)],
        }
    ]


def _check_unknown_statuses(rig: Rig, result: Scrape) -> None:
    m = result.metrics
    assert m.label_values("modelarts_notebook_instance_status", "status") == {
        "HIBERNATING",
        "running",
    }
    counts = m.all("modelarts_notebook_instances")
    assert sum(counts.values()) == 2
    assert m("modelarts_notebook_instances", status="HIBERNATING") == 1
    assert m("modelarts_exporter_invalid_instances_total") >= 1  # the empty status


def _odd_record(change: dict[str, Any]) -> Callable[[Rig], list[dict[str, Any]]]:
    """The first page with one record changed; the others must still be served."""

    def make(rig: Rig) -> list[dict[str, Any]]:
        first = rig.page(0, 0)
        first["instances"][0] = {**first["instances"][0], **change}
        return [first]

    return make


def _check_one_skipped(rig: Rig, result: Scrape) -> None:
    assert len(instance_ids(result.text)) == FLEET_SIZE - 1


def _check_one_odd_name(rig: Rig, result: Scrape) -> None:
    assert len(instance_ids(result.text)) == FLEET_SIZE


def _too_many_requests(rig: Rig, result: Scrape) -> None:
    # 3 pages hold the fleet; a total_count of a million must not send 2,000 requests.
    assert rig.sim.stats.requests - rig.baseline["requests_before"] <= 3 + 4


def _check_absurd_total(rig: Rig, result: Scrape) -> None:
    _check_all_served(rig, result)
    _too_many_requests(rig, result)


CASES = [
    Case("500", inject(Fault(status=500)), ("500",), ("status=500",)),
    Case(
        "502 with an HTML body",
        inject(Fault(status=502, body=b"<html><body><h1>502 Bad Gateway</h1></body></html>")),
        ("502",),
        ("status=502", "Bad Gateway"),
    ),
    Case("503", inject(Fault(status=503)), ("503",), ("status=503",)),
    Case(
        "429 with Retry-After: 2",
        inject(Fault(status=429, headers={"Retry-After": "2"})),
        ("429",),
        ("status=429", "next_attempt_in=2s"),
    ),
    Case("429 without Retry-After", inject(Fault(status=429)), ("429",), ("status=429",)),
    Case(
        "connection refused",
        lambda rig: rig.proxy.set_mode("refuse"),
        ("error",),
        ("connection failed", "Connection refused"),
    ),
    Case(
        "connection hangs (no answer)",
        inject(Fault(kind="hang", delay=4.0)),
        ("error",),
        ("timeout", "no answer within"),
    ),
    Case(
        "body never ends (size cap)",
        inject(Fault(kind="endless", delay=10.0)),
        ("200",),
        ("too_large",),
    ),
    Case("truncated body", inject(Fault(kind="truncated")), ("200",), ("malformed", "not JSON")),
    Case("HTML instead of JSON", inject(Fault(kind="not_json")), ("200",), ("not JSON",)),
    Case(
        "JSON of the wrong shape",
        inject(Fault(kind="malformed")),
        ("200",),
        ("malformed", "instances"),
    ),
    Case(
        "total_count larger than the pages",
        inject_pages(_total_count(1000)),
        ("200",),
        fails=False,
        check=_check_all_served,
    ),
    Case(
        "total_count smaller than the pages",
        inject_pages(_total_count(1)),
        ("200",),
        fails=False,
        check=_check_all_served,
    ),
    Case(
        "pages shift: created while paging",
        inject_pages(_shifted(1)),
        ("200",),
        fails=False,
        check=_check_shift_created,
    ),
    Case(
        "pages shift: deleted while paging",
        inject_pages(_shifted(-1)),
        ("200",),
        fails=False,
        check=_check_shift_deleted,
    ),
    Case(
        "every optional object null",
        inject_pages(_nulls),
        ("200",),
        fails=False,
        check=_check_nulls,
    ),
    Case(
        "unknown statuses",
        inject_pages(_unknown_statuses),
        ("200",),
        fails=False,
        check=_check_unknown_statuses,
    ),
    Case(
        "total_count of a million",
        inject_pages(_total_count(1_000_000)),
        ("200",),
        fails=False,
        check=_check_absurd_total,
    ),
    Case(
        "a record with an object for a number",
        inject_pages(_odd_record({"spec": {"auto_stop": {"remain_time": {"v": 1}}}})),
        ("200",),
        fails=False,
        check=_check_one_skipped,
    ),
    Case(
        "a name with a lone surrogate",
        inject_pages(_odd_record({"name": "bad\ud800name"})),
        ("200",),
        fails=False,
        check=_check_one_odd_name,
    ),
    Case(
        "peer trickles one byte every 0.25 s",
        lambda rig: rig.proxy.set_mode("trickle"),
        ("200",),
        ("budget",),
    ),
]


@dataclass
class Seen:
    during: Scrape
    before_codes: dict[str, float]
    after_codes: dict[str, float]
    logs: list[str]
    recovery: float | None


def run_fault(rig: Rig, case: Case) -> Seen:
    """Warm, inject, scrape once, end the fault, time the recovery; record the table row."""
    wait_up(rig.exporter)
    before = scrape(rig.exporter)
    assert before.up == 1, "the exporter did not recover from the previous case"
    time.sleep(TTL + 0.1)  # the listing has expired: the next scrape refreshes
    mark = rig.logs.mark()
    rig.baseline["requests_before"] = rig.sim.stats.requests
    try:
        case.start(rig)
        during = scrape(rig.exporter)
    finally:
        end_fault(rig)
    ended = time.monotonic()
    lines = rig.logs.since(mark)
    try:
        wait_up(rig.exporter)
        recovery: float | None = time.monotonic() - ended
    except AssertionError:
        recovery = None
    after = scrape(rig.exporter)
    ROWS.append(
        Row(
            case.name,
            str(during.status) if during.status else "timeout",
            during.seconds,
            "-" if during.up is None else f"{during.up:g}",
            recovery if during.up != 1 else None,
            "" if during.status else during.error[:40],
        )
    )
    return Seen(during, request_counts(before.text), request_counts(after.text), lines, recovery)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_fault(rig: Rig, case: Case) -> None:
    seen = run_fault(rig, case)
    during = seen.during
    assert during.status == 200, during.error
    assert during.seconds < SCRAPE_BOUND
    for code in case.codes:
        assert seen.after_codes.get(code, 0) > seen.before_codes.get(code, 0), code
    assert not any("Traceback" in line for line in seen.logs), seen.logs
    if case.fails:
        # The last good data is served, marked as such.
        assert during.up == 0
        assert instance_ids(during.text) == rig.fleet_ids
        assert during.metrics("modelarts_exporter_data_age_seconds") >= TTL
        failed = [line for line in seen.logs if "refresh failed" in line]
        assert failed, seen.logs
        assert all(c in failed[0] for c in case.cause), failed[0]
        assert seen.recovery is not None and seen.recovery < RECOVERY_BOUND
    else:
        assert during.up == 1, seen.logs
        assert not any("refresh failed" in line for line in seen.logs), seen.logs
    if case.check is not None:
        case.check(rig, during)


def test_no_thread_or_descriptor_is_left_behind(rig: Rig) -> None:
    """After the whole matrix the process holds what it held before it (give or take)."""
    wait_up(rig.exporter)
    time.sleep(0.5)
    now = process_resources(rig.exporter.process.pid)
    assert now["threads"] <= rig.baseline["threads"] + 2, (rig.baseline, now)
    assert now["fds"] <= rig.baseline["fds"] + 4, (rig.baseline, now)


# -- TLS: a certificate that does not verify ----------------------------------------------


def test_tls_certificate_that_does_not_verify(rig: Rig, tmp_path: Path) -> None:
    """Warm through a proxy whose certificate the exporter trusts (REQUESTS_CA_BUNDLE),
    then switch the proxy to a self-signed one: verification stays on and fails."""
    ca = make_ca(tmp_path)
    good = issue(ca, tmp_path, "good")
    rogue = issue(None, tmp_path, "self-signed")
    contexts = {}
    for name, pair in (("good", good), ("rogue", rogue)):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pair.cert, pair.key)
        contexts[name] = context
    upstream = rig.sim._server.server_address[:2]
    with (
        Proxy(upstream, tls=contexts["good"]) as proxy,
        exporter_process(
            *EXPORTER_FLAGS, env=env_for(proxy.url, REQUESTS_CA_BUNDLE=str(ca.cert))
        ) as exporter,
    ):
        assert exporter.process.stderr is not None
        logs = LogTail(exporter.process.stderr)
        before = scrape(exporter)
        assert before.up == 1
        time.sleep(TTL + 0.1)
        mark = logs.mark()
        proxy.set_mode("forward", tls=contexts["rogue"])
        during = scrape(exporter)
        proxy.set_mode("forward", tls=contexts["good"])
        ended = time.monotonic()
        lines = logs.since(mark)
        recovery = wait_up(exporter)
        ROWS.append(
            Row(
                "TLS: self-signed certificate",
                str(during.status) if during.status else "timeout",
                during.seconds,
                "-" if during.up is None else f"{during.up:g}",
                time.monotonic() - ended,
                during.error[:40],
            )
        )
    assert during.status == 200 and during.seconds < SCRAPE_BOUND, (during.error, lines)
    assert during.up == 0
    assert instance_ids(during.text) == rig.fleet_ids
    assert request_counts(during.text)["error"] > request_counts(before.text).get("error", 0)
    failed = [line for line in lines if "refresh failed" in line]
    assert failed and "TLS error" in failed[0] and "CERTIFICATE_VERIFY_FAILED" in failed[0]
    assert recovery < RECOVERY_BOUND


# -- too old to serve ---------------------------------------------------------------------


def test_data_older_than_max_staleness_is_dropped_not_served() -> None:
    with (
        Simulator(Fleet(size=10, seed=3, evolve=False)) as sim,
        exporter_process(*EXPORTER_FLAGS, "--max-staleness", "2", env=env_for(sim.url)) as exp,
    ):
        assert scrape(exp).up == 1
        sim.inject(Fault(status=503), times=None)
        time.sleep(2.5)
        during = scrape(exp)
        ready = exp.get("/-/ready")[0]
        sim.clear()
        ended = time.monotonic()
        wait_up(exp)
        ROWS.append(
            Row(
                "503 outlasting --max-staleness 2",
                str(during.status),
                during.seconds,
                f"{during.up:g}",
                time.monotonic() - ended,
                "no instance series, /-/ready 503",
            )
        )
    assert during.status == 200 and during.up == 0
    assert instance_ids(during.text) == set()
    assert not during.metrics.has("modelarts_exporter_data_age_seconds")
    assert ready == 503


# -- fast checks of the same faults below the process ---------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_huge_retry_after_does_not_stop_refreshing_for_a_day() -> None:
    clock = FakeClock()
    calls: list[float] = []
    failing = [True]

    def fetch() -> Listing:
        calls.append(clock.now)
        if failing[0]:
            raise ApiError("Too Many Requests", status=429, retry_after=86400.0)
        return Listing([], 0)

    cache = SnapshotCache("p", fetch, ttl=30, max_staleness=300, clock=clock)
    assert not cache.status().up
    failing[0] = False
    clock.now += 900  # fifteen minutes: the longest any back-off here should last
    assert cache.status().up
