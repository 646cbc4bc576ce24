"""What the server hands around: a client connection, the worker pools that answer
complete requests, and the adapters that let wsgiref answer on a socket whose request
head the server's loop has already read (see connections.py).
"""

from __future__ import annotations

import collections
import contextlib
import io
import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler

log = logging.getLogger(__name__)

_TLS_SLICE = 256 * 1024  # a TLS write must go out within read_timeout


# -- a connection ------------------------------------------------------------------------

PLAIN, TLS_NEW, TLS_HANDSHAKE = 0, 1, 2


class Connection:
    """A client connection: its socket, its deadline and the request head read so far."""

    __slots__ = ("address", "deadline", "events", "fd", "head", "sock", "state")

    def __init__(self, sock: socket.socket, address: Any, deadline: float, tls: bool) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.address = address
        self.deadline = deadline
        self.head = bytearray()
        self.state = TLS_NEW if tls else PLAIN
        self.events = selectors.EVENT_READ

    def cut(self) -> None:
        """Wake whoever blocks on this socket: reads see EOF, writes fail."""
        with contextlib.suppress(OSError, ValueError):
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.sock.close()


def head_complete(head: bytearray, start: int) -> bool:
    return head.find(b"\r\n\r\n", start) >= 0 or head.find(b"\n\n", start) >= 0


def request_path(head: bytearray) -> bytes:
    """The path of the request line, without the query; b"" when there is none."""
    words = bytes(head[: head.find(b"\n")]).split()
    return words[1].split(b"?", 1)[0] if len(words) >= 2 else b""


# -- the workers -------------------------------------------------------------------------


class Pool:
    """Up to `size` daemon threads, started as work arrives, taking connections in turn."""

    def __init__(self, name: str, size: int, serve: Callable[[Connection], None]) -> None:
        self._name = name
        self._size = size
        self._serve = serve
        self._queue: collections.deque[Connection] = collections.deque()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._active = 0
        self._closed = False

    def submit(self, conn: Connection) -> None:
        with self._cond:
            self._queue.append(conn)
            if len(self._queue) > self._idle and len(self._threads) < self._size:
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            else:
                self._cond.notify()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._idle += 1
                    self._cond.wait()
                    self._idle -= 1
                if not self._queue:
                    return
                conn = self._queue.popleft()
                self._active += 1
            try:
                self._serve(conn)
            finally:
                with self._cond:
                    self._active -= 1

    def busy(self) -> bool:
        """Some connection is queued or being answered."""
        with self._cond:
            return bool(self._queue) or self._active > 0

    def close(self) -> None:
        """No more work: threads end once the queue is empty."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def drain(self) -> list[Connection]:
        """Take what is still queued (to cut it)."""
        with self._cond:
            taken = list(self._queue)
            self._queue.clear()
            return taken

    def join(self, deadline: float) -> bool:
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)


# -- one request, answered by wsgiref ----------------------------------------------------


class HeadThenSocket(io.RawIOBase):
    """The request head already read, then the socket (a body, if the app reads one)."""

    def __init__(self, head: bytes, sock: socket.socket) -> None:
        self._head = memoryview(head)
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        return self._sock.recv_into(buffer)


class Writer(io.RawIOBase):
    """Sends all of each write, every send within the socket's timeout: a client that
    stops reading is dropped after one timeout, a slow one that keeps reading is served.
    A plain socket's send returns what fits; TLS writes all it is given, so it is given
    a slice at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._slice = _TLS_SLICE if isinstance(sock, ssl.SSLSocket) else None

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        total = len(view)
        while view:
            sent = self._sock.send(view[: self._slice] if self._slice else view)
            view = view[sent:]
        return total


class RequestHandler(WSGIRequestHandler):
    """wsgiref's handler on a connection whose head is read already; logs at debug level."""

    request: Connection

    def setup(self) -> None:
        sock = self.request.sock
        self.connection = sock
        self.rfile = io.BufferedReader(HeadThenSocket(bytes(self.request.head), sock))
        self.wfile = Writer(sock)  # type: ignore[assignment]

    def finish(self) -> None:
        pass  # the server closes the connection

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s", format % args)
