"""The HTTP server: one thread holds the connections, a bounded pool of threads answers.

A thread per connection lets anyone who can reach the port exhaust the process: a client
that sends half a request and waits holds a thread (and its stack) for ever. Here:

- **One loop thread** (`selectors`) accepts connections, shakes hands for TLS and reads
  each request head without blocking. A connection costs a socket and a small buffer
  until its head is complete, never a thread; TLS state is made only once the client
  sends its first bytes.
- **A deadline per connection**: the whole head (TLS handshake included) must arrive
  within `read_timeout` of connecting, however slowly it trickles in; then the
  connection is closed. Connections answer one request each (HTTP/1.0, as wsgiref
  answers), so there is no idle keep-alive connection to time out besides.
- **A bounded pool**: a complete request goes to one of `max_requests` worker threads
  (more wait in turn); `/-/healthy` and `/-/ready` go to a reserve of their own
  (`probe_workers`), so the kubelet's probes answer whatever the scrapes are doing. In a
  worker, reads and writes that stall for `read_timeout` end the connection.
- **A bound on connections**: beyond `max_connections`, the oldest connection still
  sending its head is closed to admit the new one (a real client sends its head at once;
  a slow or idle one is the likely oldest); when every connection is already answering
  or waiting for a worker, the new one gets a fast `503` instead.
- **A prompt stop**: `stop()` closes the listening socket and every connection still
  sending its head at once, lets the requests being answered finish for `shutdown_grace`
  seconds, then cuts their sockets. Workers are daemon threads: a worker stuck in the
  application never holds up the process's exit.

`ConnectionStats` (connection_stats.py) counts what happens, for the self-metrics.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from exporter.http.connection_stats import ConnectionStats
from exporter.http.workers import (
    PLAIN,
    TLS_HANDSHAKE,
    TLS_NEW,
    Connection,
    Pool,
    RequestHandler,
    head_complete,
    request_path,
)

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

MAX_HEAD_BYTES = 64 * 1024  # request line and headers together
_RECV_SIZE = 16 * 1024
_ACCEPT_BATCH = 64  # connections accepted per wake-up, so that reading is never starved
_BACKLOG = 512
_WARN_EVERY = 60.0  # seconds between two warnings of the same kind
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)

_BUSY = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 22\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    b"Too many connections.\n"
)
_TOO_LARGE = (
    b"HTTP/1.0 431 Request Header Fields Too Large\r\nContent-Type: text/plain; "
    b"charset=utf-8\r\nContent-Length: 25\r\nConnection: close\r\n\r\n"
    b"Request head over 64 KiB\n"
)


@dataclass(frozen=True)
class Limits:
    """How long a client may take, and how many are served at once."""

    read_timeout: float = 10.0
    max_connections: int = 1024
    max_requests: int = 128
    probe_workers: int = 2
    shutdown_grace: float = 3.0


def raise_descriptor_limit(wanted: int) -> None:
    """Raise the soft limit of open files to `wanted` (at most the hard limit), so the
    connection bound is what limits connections, not EMFILE."""
    try:
        import resource
    except ImportError:  # not on Unix
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# -- the server --------------------------------------------------------------------------


class ConnectionServer:
    """Serves `app` on host:port (over TLS with `tls`); `serve_forever()` in a thread of
    its own, `stop()` from another."""

    def __init__(
        self,
        host: str,
        port: int,
        app: WSGIApp,
        *,
        tls: ssl.SSLContext | None = None,
        limits: Limits | None = None,
        stats: ConnectionStats | None = None,
        probe_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.tls = tls
        self.limits = limits = limits or Limits()
        self.stats = stats or ConnectionStats()
        self._probe_paths = frozenset(p.encode() for p in probe_paths)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind((host, port))
            self._listener.listen(_BACKLOG)
            self._listener.setblocking(False)
        except OSError:
            self._listener.close()
            raise
        self.server_address = self._listener.getsockname()
        # What wsgiref's handler reads of its server (WSGIServer.setup_environ).
        self.base_environ = {
            "SERVER_NAME": host,
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PORT": str(self.server_address[1]),
            "REMOTE_HOST": "",
            "CONTENT_LENGTH": "",
            "SCRIPT_NAME": "",
        }
        raise_descriptor_limit(limits.max_connections + 256)
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._pending: collections.OrderedDict[int, Connection] = collections.OrderedDict()
        self._answering: set[Connection] = set()
        self._lock = threading.Lock()
        self._started = threading.Event()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._accept_paused_until = 0.0
        self._loop_closed = False
        self._warned: dict[str, float] = {}
        self._workers = Pool("http-worker", limits.max_requests, self._serve)
        self._probes = Pool("http-probe", limits.probe_workers, self._serve)

    def get_app(self) -> WSGIApp:
        return self.app

    # -- the loop thread -------------------------------------------------------------

    def serve_forever(self) -> None:
        self._started.set()
        if self._stopping.is_set():
            self._close_loop()
            self._stopped.set()
            return
        selector = self._selector
        selector.register(self._listener, selectors.EVENT_READ, "listener")
        selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            while not self._stopping.is_set():
                for key, _ in selector.select(self._next_timeout()):
                    if key.data == "listener":
                        self._accept()
                    elif key.data == "wake":
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(4096)
                    else:
                        conn: Connection = key.data
                        # (not one closed by an earlier event of this batch)
                        if self._pending.get(conn.fd) is conn:
                            self._on_ready(conn)
                self._expire()
                self._resume_accepting()
        except Exception:  # a bug: stop listening rather than hold connections unanswered
            log.exception("the HTTP server loop failed")
            raise
        finally:
            self._close_loop()
            self._stopped.set()

    def _next_timeout(self) -> float | None:
        times = []
        if self._pending:
            times.append(next(iter(self._pending.values())).deadline)
        if self._accept_paused_until:
            times.append(self._accept_paused_until)
        if not times:
            return None
        return max(0.0, min(times) - time.monotonic())

    def _accept(self) -> None:
        for _ in range(_ACCEPT_BATCH):
            try:
                sock, address = self._listener.accept()
            except BlockingIOError:
                return
            except OSError as err:
                if err.errno in _OUT_OF_DESCRIPTORS:
                    self._warn("descriptors", "cannot accept a connection: %s", err.strerror)
                    if not self._evict_oldest():
                        self._pause_accepting(0.1)
                    return
                continue  # the client gave up before we took it (ECONNABORTED, ...)
            if self.stats.open >= self.limits.max_connections and not self._evict_oldest():
                self._refuse(sock, "busy", _BUSY if self.tls is None else b"")
                continue
            sock.setblocking(False)
            deadline = time.monotonic() + self.limits.read_timeout
            conn = Connection(sock, address, deadline, self.tls is not None)
            self._pending[conn.fd] = conn
            self._selector.register(conn.fd, selectors.EVENT_READ, conn)
            self.stats.opened()

    def _evict_oldest(self) -> bool:
        """Close the oldest connection still sending its head, to admit a new one."""
        if not self._pending:
            return False
        self._warn(
            "limit",
            "%d connections open (--web.max-connections): closing the oldest of those "
            "still sending their request to admit new ones",
            self.limits.max_connections,
        )
        _, conn = self._pending.popitem(last=False)
        self._drop(conn, "limit")
        return True

    def _refuse(self, sock: socket.socket, reason: str, answer: bytes) -> None:
        self._warn("busy", "every connection is answering or waiting for a worker: 503")
        with contextlib.suppress(OSError):
            sock.setblocking(False)
            if answer:
                sock.send(answer)
        with contextlib.suppress(OSError):
            sock.close()
        self.stats.refused(reason)

    def _pause_accepting(self, seconds: float) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(self._listener)
        self._accept_paused_until = time.monotonic() + seconds

    def _resume_accepting(self) -> None:
        if self._accept_paused_until and time.monotonic() >= self._accept_paused_until:
            self._accept_paused_until = 0.0
            self._selector.register(self._listener, selectors.EVENT_READ, "listener")

    def _expire(self) -> None:
        """Close the connections whose head is late; all have the same timeout, so the
        oldest are first."""
        now = time.monotonic()
        while self._pending:
            conn = next(iter(self._pending.values()))
            if conn.deadline > now:
                return
            del self._pending[conn.fd]
            log.debug("closing %s: no complete request within the read timeout", conn.address)
            self._drop(conn, "timeout")

    def _on_ready(self, conn: Connection) -> None:
        try:
            outcome = self._read(conn)
        except (OSError, ValueError) as err:  # resets; ssl.SSLError is an OSError
            log.debug("connection from %s: %s", conn.address, err)
            outcome = "closed"
        except Exception:  # a bug, but one connection's only
            log.exception("reading a request from %s", conn.address)
            outcome = "closed"
        if outcome == "wait":
            return
        del self._pending[conn.fd]
        if outcome == "complete":
            self._dispatch(conn)
        elif outcome == "too_large":
            with contextlib.suppress(OSError, ValueError):
                conn.sock.send(_TOO_LARGE)
            self._drop(conn, "too_large")
        else:
            self._drop(conn, "")

    def _read(self, conn: Connection) -> str:
        """Go as far as the socket allows: "wait", "complete", "too_large" or "closed"."""
        if conn.state == TLS_NEW:  # the TLS state is made once the client says something
            assert self.tls is not None
            conn.sock = self.tls.wrap_socket(
                conn.sock, server_side=True, do_handshake_on_connect=False
            )
            conn.state = TLS_HANDSHAKE
        sock = conn.sock
        try:
            if conn.state == TLS_HANDSHAKE:
                assert isinstance(sock, ssl.SSLSocket)
                sock.do_handshake()
                conn.state = PLAIN
            while True:
                data = sock.recv(_RECV_SIZE)
                if not data:
                    return "closed"
                start = max(0, len(conn.head) - 3)
                conn.head += data
                if head_complete(conn.head, start):
                    return "complete"
                if len(conn.head) > MAX_HEAD_BYTES:
                    return "too_large"
        except (BlockingIOError, ssl.SSLWantReadError):
            self._want(conn, selectors.EVENT_READ)
        except ssl.SSLWantWriteError:
            self._want(conn, selectors.EVENT_WRITE)
        return "wait"

    def _want(self, conn: Connection, events: int) -> None:
        if conn.events != events:
            conn.events = events
            self._selector.modify(conn.fd, events, conn)

    def _drop(self, conn: Connection, reason: str) -> None:
        """Close a connection of the loop (already out of `_pending`)."""
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.fd)
        conn.close()
        self.stats.closed(reason)

    def _dispatch(self, conn: Connection) -> None:
        self._selector.unregister(conn.fd)
        try:
            conn.sock.settimeout(self.limits.read_timeout)  # blocking, within the timeout
        except OSError:
            conn.close()
            self.stats.closed()
            return
        pool = self._probes if request_path(conn.head) in self._probe_paths else self._workers
        pool.submit(conn)

    def _close_loop(self) -> None:
        with self._lock:
            if self._loop_closed:
                return
            self._loop_closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        while self._pending:
            _, conn = self._pending.popitem(last=False)
            self._drop(conn, "")
        self._selector.close()

    def _warn(self, kind: str, message: str, *args: Any) -> None:
        """At most one warning of a kind a minute: an attack must not flood the log."""
        now = time.monotonic()
        if now - self._warned.get(kind, -_WARN_EVERY) >= _WARN_EVERY:
            self._warned[kind] = now
            log.warning(message, *args)

    # -- the workers -----------------------------------------------------------------

    def _serve(self, conn: Connection) -> None:
        with self._lock:
            self._answering.add(conn)
        self.stats.answer(1)
        try:
            if not self._stopping.is_set() or time.monotonic() < self._cut_at:
                RequestHandler(conn, conn.address, self)  # type: ignore[arg-type]
        except Exception as err:  # a reset, a timeout: the client is gone
            log.debug("answering %s: %s", conn.address, err)
        finally:
            with contextlib.suppress(OSError, ValueError):
                socket.socket.shutdown(conn.sock, socket.SHUT_WR)
            conn.close()
            with self._lock:
                self._answering.discard(conn)
            self.stats.answer(-1)
            self.stats.closed()

    _cut_at = float("inf")

    # -- stopping --------------------------------------------------------------------

    def stop(self) -> None:
        """Stop accepting, close what has not sent a whole request, give the requests
        being answered `shutdown_grace` seconds, then cut them."""
        self._cut_at = time.monotonic() + self.limits.shutdown_grace
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._started.is_set():
            self._stopped.wait(1.0)
        else:  # never served: nothing but the listening socket to close
            self._close_loop()
        for pool in (self._workers, self._probes):
            pool.close()
        while time.monotonic() < self._cut_at:
            if not self._workers.busy() and not self._probes.busy():
                break
            time.sleep(0.02)
        # Past the grace: cut every connection still in hand, so that workers blocked on
        # a socket return at once.
        for pool in (self._workers, self._probes):
            for conn in pool.drain():
                conn.cut()
                conn.close()
                self.stats.closed()
        with self._lock:
            answering = list(self._answering)
        for conn in answering:
            conn.cut()
        deadline = time.monotonic() + 0.5
        self._workers.join(deadline)
        self._probes.join(deadline)
        for sock in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                sock.close()


__all__ = ["MAX_HEAD_BYTES", "ConnectionServer", "Limits", "raise_descriptor_limit"]
