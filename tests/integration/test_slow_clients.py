"""Slow and idle clients cannot exhaust the exporter: the real process, on loopback.

A client that sends half a request and waits used to hold a thread for ever: 8,000 of
them made 8,004 threads and 261 MB of RSS, above the chart's 256Mi limit, and SIGTERM
waited for them. Here, against `python -m exporter --demo`:

- 3,000 half-sent requests open at once: a scrape still answers in under a second, the
  process grows by at most 40 MB and ~300 threads, and the server closes every one of
  them once `--web.read-timeout` is over (well within 60 s);
- with the default settings, an idle connection and a half-sent request are closed
  within 60 s (the default timeout is 10 s);
- beyond `--web.max-connections`, the oldest half-sent requests make room and scrapes
  still answer;
- with 500 half-sent requests open, SIGTERM ends the process within 5 s;
- `POST /-/reload` only with `--web.enable-lifecycle`.

Every wait has a deadline. The figures are printed at the end of each test and appended
to /tmp/modelarts-slow-clients-report.txt.
"""

from __future__ import annotations

import contextlib
import resource
import selectors
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.exposition import MetricValues, parse_exposition
from tests.support.processes import ExporterProcess, exporter_process

HALF_OPEN = 3000
SIGTERM_CLIENTS = 500
HALF_REQUEST = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow"  # no blank line
REPORT = Path("/tmp/modelarts-slow-clients-report.txt")


def report(request: pytest.FixtureRequest, title: str, lines: list[str]) -> None:
    text = f"{title}\n" + "".join(f"  {line}\n" for line in lines)
    with REPORT.open("a") as out:
        out.write(text)
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\n{text}", end="")


def need_descriptors(count: int) -> None:
    """This process holds `count` client sockets: raise its soft limit, or fail."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        if hard != resource.RLIM_INFINITY and hard < count:
            raise AssertionError(f"RLIMIT_NOFILE hard limit {hard} < {count} sockets needed")
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, hard))


def proc_status(pid: int) -> tuple[int, int]:
    """(VmRSS in kB, threads) of a process."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]), int(fields["Threads"])


def port_of(exporter: ExporterProcess) -> int:
    return int(exporter.url.rsplit(":", 1)[1])


def half_requests(port: int, count: int, payload: bytes = HALF_REQUEST) -> list[socket.socket]:
    """`count` connections, each sending `payload` and nothing more; within 60 s."""
    deadline = time.monotonic() + 60
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            assert time.monotonic() < deadline, f"only {len(socks)} connections in 60 s"
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            if payload:
                sock.sendall(payload)
            socks.append(sock)
    except BaseException:
        close_all(socks)
        raise
    return socks


def close_all(socks: list[socket.socket]) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.close()


@contextlib.contextmanager
def held(socks: list[socket.socket]) -> Iterator[list[socket.socket]]:
    try:
        yield socks
    finally:
        close_all(socks)


def timed_get(exporter: ExporterProcess, path: str = "/metrics") -> tuple[float, int, bytes]:
    started = time.monotonic()
    status, _, body = exporter.get(path)
    return time.monotonic() - started, status, body


def scrape_metrics(exporter: ExporterProcess) -> MetricValues:
    status, _, body = exporter.get()
    assert status == 200
    return parse_exposition(body.decode())


def wait_closed_by_server(socks: list[socket.socket], timeout: float) -> list[float]:
    """When (monotonic) the server closed each socket: EOF or a reset; fails past timeout."""
    closed_at: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        for i, sock in enumerate(socks):
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, i)
        while len(closed_at) < len(socks):
            left = deadline - time.monotonic()
            assert left > 0, f"{len(socks) - len(closed_at)} connections still open"
            for key, _ in selector.select(min(left, 1.0)):
                try:
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    closed_at[key.data] = time.monotonic()
                    selector.unregister(key.fileobj)
                # an answer before the close would be a bug: a half request gets none
                assert not data or data.startswith(b"HTTP/"), data[:50]
    return [closed_at[i] for i in range(len(socks))]


def test_three_thousand_half_sent_requests(request: pytest.FixtureRequest) -> None:
    need_descriptors(HALF_OPEN + 512)
    read_timeout = 20.0  # time enough to open them all and measure on a busy machine
    with exporter_process(
        "--demo", "--web.max-connections", "4096", "--web.read-timeout", str(read_timeout)
    ) as exporter:
        pid = exporter.process.pid
        for _ in range(3):  # warm: the first scrapes render and compress
            timed_get(exporter)
        rss_before, threads_before = proc_status(pid)
        opened = time.monotonic()
        with held(half_requests(port_of(exporter), HALF_OPEN)) as socks:
            opening = time.monotonic() - opened
            sent_at = time.monotonic()
            scrapes = [timed_get(exporter) for _ in range(5)]
            probes = [timed_get(exporter, "/-/healthy") for _ in range(3)]
            rss_during, threads_during = proc_status(pid)
            m = scrape_metrics(exporter)
            open_during = m("modelarts_exporter_http_connections_open")
            closed_at = wait_closed_by_server(socks, timeout=60)
        rss_after, threads_after = proc_status(pid)
        m_after = scrape_metrics(exporter)
        timed_out = m_after("modelarts_exporter_http_connections_rejected_total", reason="timeout")
        latest = max(s[0] for s in scrapes)
        close_times = sorted(t - sent_at for t in closed_at)
        report(
            request,
            f"{HALF_OPEN} half-sent requests (--demo, --web.read-timeout {read_timeout:g})",
            [
                f"opened in {opening:.2f} s; server counts {open_during:.0f} connections open",
                f"scrape latency with them open: max {latest * 1000:.1f} ms of 5, "
                f"probe max {max(p[0] for p in probes) * 1000:.1f} ms",
                f"RSS {rss_before / 1024:.1f} MiB -> {rss_during / 1024:.1f} MiB "
                f"(+{(rss_during - rss_before) / 1024:.1f} MiB), "
                f"{(rss_during - rss_before) / HALF_OPEN:.2f} kB per connection",
                f"threads {threads_before} -> {threads_during}; once they are closed "
                f"{threads_after} threads, RSS {rss_after / 1024:.1f} MiB",
                f"closed by the server {close_times[0]:.1f}-{close_times[-1]:.1f} s after "
                f"they were sent (timeout {read_timeout:g} s); rejected timeout={timed_out:.0f}",
            ],
        )
    assert all(status == 200 for _, status, _ in scrapes + probes)
    assert latest < 1.0, [round(s[0], 3) for s in scrapes]
    assert open_during >= HALF_OPEN
    assert rss_during - rss_before <= 40 * 1024, (rss_before, rss_during)
    assert threads_during <= 300 and threads_during <= threads_before + 40
    assert close_times[-1] < 60
    assert close_times[0] >= read_timeout - 5  # by the timeout, not by some other cause
    assert timed_out >= HALF_OPEN
    assert m_after("modelarts_exporter_http_connections_open") <= 2  # the scrape itself


def test_default_read_timeout_closes_idle_and_half_sent_connections(
    request: pytest.FixtureRequest,
) -> None:
    with exporter_process("--demo") as exporter:
        port = port_of(exporter)
        with held(half_requests(port, 1, b"")) as idle, held(half_requests(port, 1)) as half:
            sent = time.monotonic()
            # A trickle does not reset the deadline: one byte a second, never the blank line.
            trickle = socket.create_connection(("127.0.0.1", port), timeout=10)
            with held([trickle]):
                for byte in HALF_REQUEST[:8]:
                    trickle.sendall(bytes([byte]))
                    time.sleep(1.0)
                closed = wait_closed_by_server(idle + half + [trickle], timeout=60)
        took = [t - sent for t in closed]
        report(
            request,
            "default --web.read-timeout (10 s)",
            [
                f"idle connection closed after {took[0]:.1f} s, half-sent request after "
                f"{took[1]:.1f} s, a one-byte-a-second trickle after {took[2]:.1f} s",
            ],
        )
    assert all(5 <= t < 60 for t in took), took
    assert took[2] < 15  # the deadline runs from connecting, whatever trickles in


def test_beyond_max_connections_the_oldest_half_requests_make_room(
    request: pytest.FixtureRequest,
) -> None:
    with exporter_process("--demo", "--web.max-connections", "100") as exporter:
        with held(half_requests(port_of(exporter), 300)):
            scrapes = [timed_get(exporter) for _ in range(5)]
            m = scrape_metrics(exporter)
        report(
            request,
            "--web.max-connections 100, 300 half-sent requests",
            [
                f"scrape max {max(s[0] for s in scrapes) * 1000:.1f} ms; open "
                f"{m('modelarts_exporter_http_connections_open'):.0f}, rejected limit="
                f"{m('modelarts_exporter_http_connections_rejected_total', reason='limit'):.0f}",
            ],
        )
    assert all(status == 200 and took < 1.0 for took, status, _ in scrapes)
    assert m("modelarts_exporter_http_connections_open") <= 100
    assert m("modelarts_exporter_http_connections_rejected_total", reason="limit") >= 200


def test_sigterm_with_500_half_sent_requests(request: pytest.FixtureRequest) -> None:
    need_descriptors(SIGTERM_CLIENTS + 512)
    with exporter_process("--demo") as exporter:
        with held(half_requests(port_of(exporter), SIGTERM_CLIENTS)) as socks:
            assert timed_get(exporter)[1] == 200
            started = time.monotonic()
            exporter.process.send_signal(signal.SIGTERM)
            try:
                code = exporter.process.wait(timeout=5)
            except Exception as err:
                raise AssertionError("still running 5 s after SIGTERM") from err
            took = time.monotonic() - started
            assert len(socks) == SIGTERM_CLIENTS
        report(
            request,
            f"SIGTERM with {SIGTERM_CLIENTS} half-sent requests open",
            [f"exited with status {code} after {took:.2f} s"],
        )
    assert code == 0
    assert took < 5


def test_reload_only_with_the_lifecycle_flag() -> None:
    post = urllib.request.Request("http://x/-/reload", method="POST")

    def reload_status(exporter: ExporterProcess) -> tuple[int, bytes]:
        post.full_url = exporter.url + "/-/reload"
        try:
            with urllib.request.urlopen(post, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    with exporter_process("--demo") as exporter:
        status, body = reload_status(exporter)
        assert status == 403 and b"--web.enable-lifecycle" in body
        assert exporter.get("/-/reload")[0] == 405
    with exporter_process("--demo", "--web.enable-lifecycle") as exporter:
        status, body = reload_status(exporter)
        assert status == 400 and b"No --config.file" in body  # enabled: the demo has no file
