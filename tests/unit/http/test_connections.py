"""The bounded HTTP server in-process, with short timeouts: deadlines, limits, probes'
reserve, TLS without a thread per handshake, a prompt stop, its self-metrics."""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.exposition.formats import OPENMETRICS, TEXT
from exporter.http.connection_stats import ConnectionStats
from exporter.http.connections import ConnectionServer, Limits
from tests.support.certs import issue, make_ca
from tests.support.exposition import parse_exposition
from tests.support.tools import require_tool

HALF = b"GET /metrics HTTP/1.1\r\nHost: x\r\n"  # no blank line: never complete


class App:
    """Answers `hello`; /slow waits for `release`; /big answers `big` bytes."""

    def __init__(self, big: int = 0) -> None:
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)
        self.big = big

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        if path == "/slow":
            self.entered.release()
            self.release.wait(10)
        body = b"x" * self.big if path == "/big" else b"hello\n"
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]


@contextlib.contextmanager
def serving(
    app: Any, tls: ssl.SSLContext | None = None, **limits: Any
) -> Iterator[ConnectionServer]:
    settings = {"read_timeout": 0.5, "shutdown_grace": 1.0, **limits}
    server = ConnectionServer(
        "127.0.0.1", 0, app, tls=tls, limits=Limits(**settings), probe_paths=("/-/healthy",)
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        app_release = getattr(app, "release", None)
        if app_release is not None:
            app_release.set()
        server.stop()
        thread.join(5)
        assert not thread.is_alive()


def port(server: ConnectionServer) -> int:
    return int(server.server_address[1])


def get(
    server: ConnectionServer, path: str = "/", context: ssl.SSLContext | None = None
) -> tuple[int, bytes]:
    if context is None:
        connection = http.client.HTTPConnection("127.0.0.1", port(server), timeout=5)
    else:
        connection = http.client.HTTPSConnection(
            "127.0.0.1", port(server), timeout=5, context=context
        )
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def connect(server: ConnectionServer, payload: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port(server)), timeout=5)
    if payload:
        sock.sendall(payload)
    return sock


def closed_within(sock: socket.socket, seconds: float) -> float:
    """Seconds until the server closes `sock` (EOF or reset); fails past `seconds`."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        raise AssertionError(f"still open after {seconds} s") from None
    except OSError:
        pass
    return time.monotonic() - started


def wait_for(condition: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_a_half_sent_request_is_closed_at_the_read_timeout() -> None:
    with serving(App()) as server:
        idle, half = connect(server), connect(server, HALF)
        assert closed_within(idle, 3) < 1.5
        assert closed_within(half, 3) < 1.5
        assert get(server) == (200, b"hello\n")
        wait_for(lambda: server.stats.rejected["timeout"] == 2)


def test_a_trickle_does_not_move_the_deadline() -> None:
    with serving(App(), read_timeout=1.0) as server, connect(server) as sock:
        started = time.monotonic()
        with contextlib.suppress(OSError):
            for byte in HALF:
                sock.sendall(bytes([byte]))
                time.sleep(0.1)
        closed_within(sock, 3)
        assert time.monotonic() - started < 2.0


def test_connections_cost_no_thread() -> None:
    with serving(App(), read_timeout=10.0) as server:
        before = threading.active_count()
        socks = [connect(server, HALF) for _ in range(200)]
        try:
            assert get(server) == (200, b"hello\n")
            wait_for(lambda: server.stats.open == 200)
            assert threading.active_count() <= before + 1  # one worker for the request
        finally:
            for sock in socks:
                sock.close()


def test_beyond_the_limit_the_oldest_half_request_makes_room() -> None:
    with serving(App(), read_timeout=10.0, max_connections=5) as server:
        socks = [connect(server, HALF) for _ in range(8)]
        try:
            for sock in socks[:3]:  # the oldest three
                closed_within(sock, 3)
            assert get(server) == (200, b"hello\n")  # admitted: one more made room
            assert server.stats.rejected["limit"] >= 4
            assert server.stats.open <= 5
        finally:
            for sock in socks:
                sock.close()


def test_a_503_when_every_connection_is_answering_or_waiting() -> None:
    app = App()
    with serving(app, read_timeout=5.0, max_connections=2, max_requests=1) as server:
        answering = connect(server, b"GET /slow HTTP/1.0\r\n\r\n")
        assert app.entered.acquire(timeout=5)
        waiting = connect(server, b"GET / HTTP/1.0\r\n\r\n")
        wait_for(lambda: server.stats.open == 2)
        with connect(server) as refused:
            refused.settimeout(5)
            assert refused.recv(100).startswith(b"HTTP/1.0 503 ")
        wait_for(lambda: server.stats.rejected["busy"] == 1)
        app.release.set()
        for sock in (answering, waiting):
            sock.settimeout(5)
            assert sock.makefile("rb").read().endswith(b"hello\n")
            sock.close()


def test_probes_answer_while_every_worker_is_busy() -> None:
    app = App()
    with serving(app, read_timeout=5.0, max_requests=2) as server:
        busy = [connect(server, b"GET /slow HTTP/1.0\r\n\r\n") for _ in range(4)]
        for _ in range(2):
            assert app.entered.acquire(timeout=5)
        started = time.monotonic()
        assert get(server, "/-/healthy") == (200, b"hello\n")
        assert time.monotonic() - started < 1
        app.release.set()
        for sock in busy:
            sock.close()


def test_a_request_head_over_64_kib_gets_431() -> None:
    with serving(App()) as server, connect(server) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70_000)
        sock.settimeout(5)
        assert sock.recv(100).startswith(b"HTTP/1.0 431 ")
        wait_for(lambda: server.stats.rejected["too_large"] == 1)


def test_a_client_that_stops_reading_frees_its_worker() -> None:
    with serving(App(big=32 * 1024 * 1024), read_timeout=0.5) as server:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port(server)))
        sock.sendall(b"GET /big HTTP/1.0\r\n\r\n")
        wait_for(lambda: server.stats.answering == 1)
        wait_for(lambda: server.stats.answering == 0, seconds=5)
        sock.close()
        assert server.stats.open == 0


def test_stop_is_prompt_with_half_requests_and_waits_for_an_answer_in_flight() -> None:
    app = App()
    with serving(app, read_timeout=30.0, shutdown_grace=3.0) as server:
        halves = [connect(server, HALF) for _ in range(50)]
        in_flight = connect(server, b"GET /slow HTTP/1.0\r\n\r\n")
        assert app.entered.acquire(timeout=5)
        threading.Timer(0.5, app.release.set).start()  # the answer is ready within the grace
        started = time.monotonic()
        server.stop()
        took = time.monotonic() - started
        in_flight.settimeout(5)
        assert in_flight.makefile("rb").read().endswith(b"hello\n")
        assert 0.4 < took < 2.0
        for sock in halves:
            closed_within(sock, 1)
        with pytest.raises(OSError):
            connect(server)


def test_stop_cuts_an_answer_that_outlasts_the_grace() -> None:
    app = App()
    with serving(app, read_timeout=30.0, shutdown_grace=0.5) as server:
        in_flight = connect(server, b"GET /slow HTTP/1.0\r\n\r\n")
        assert app.entered.acquire(timeout=5)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 1.5
        in_flight.close()


# -- TLS ---------------------------------------------------------------------------------


@pytest.fixture
def tls(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting it)."""
    ca = make_ca(tmp_path)
    server_pair = issue(ca, tmp_path, "server")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(server_pair.cert, server_pair.key)
    return server, ssl.create_default_context(cafile=str(ca.cert))


def half_handshake(server: ConnectionServer) -> tuple[socket.socket, ssl.SSLObject]:
    """A client that sends its ClientHello and never finishes the handshake."""
    sock = connect(server)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = ssl.create_default_context()
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
    obj = client.wrap_bio(incoming, outgoing)
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()
    sock.sendall(outgoing.read())
    return sock, obj


def test_tls_clients_that_never_finish_cost_no_thread_and_are_closed(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_context, client_context = tls
    with serving(App(), server_context, read_timeout=1.0) as server:
        before = threading.active_count()
        silent = [connect(server) for _ in range(20)]
        halves = [half_handshake(server) for _ in range(20)]
        started = time.monotonic()
        assert get(server, "/", client_context) == (200, b"hello\n")
        assert time.monotonic() - started < 1
        assert threading.active_count() <= before + 1
        for sock in silent + [s for s, _ in halves]:
            closed_within(sock, 3)
        wait_for(lambda: server.stats.rejected["timeout"] == 40)
        with pytest.raises((OSError, http.client.HTTPException)):
            get(server, "/")  # plain HTTP on the TLS port
        assert get(server, "/", client_context) == (200, b"hello\n")


def test_a_tls_request_sent_in_pieces_is_answered(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_context, client_context = tls
    with serving(App(), server_context, read_timeout=3.0) as server:
        raw = connect(server)
        with client_context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            for part in (b"GET / HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
                sock.sendall(part)
                time.sleep(0.05)
            assert sock.makefile("rb").read().endswith(b"hello\n")


# -- self-metrics ------------------------------------------------------------------------


def test_the_self_metrics_parse_and_pass_promtool() -> None:
    stats = ConnectionStats()
    stats.opened()
    stats.refused("busy")
    stats.opened()
    stats.closed("timeout")
    promtool = require_tool("promtool")
    for fmt in (TEXT, OPENMETRICS):
        text = stats.exposition(fmt) + fmt.eof
        m = parse_exposition(text.decode())
        assert m("modelarts_exporter_http_connections_open") == 1
        assert m("modelarts_exporter_http_connections_accepted_total") == 3
        assert m("modelarts_exporter_http_connections_rejected_total", reason="busy") == 1
        assert m("modelarts_exporter_http_connections_rejected_total", reason="timeout") == 1
        result = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, timeout=30
        )
        output = result.stdout + result.stderr
        # promtool reads OpenMetrics as the text format: its linter may then say a counter
        # family has no help (exit 3), as for every counter of the exporter; no error.
        assert result.returncode == 0 or (fmt.openmetrics and result.returncode == 3), output
        assert b"error" not in output.lower(), output
