"""A loopback HTTP/1.1 server answering canned responses, recording what it was sent.

`Canned` stands in for an API on 127.0.0.1 (HTTPS with a `tls` context): answers are
queued per method and path, given in order with the last one repeated (as `responses`
does), or made by a callback from the request; an unknown path is a 404 saying so. Each
request is recorded (`requests`), each connection counted (`connections`, `closed`), so
a test sees what really went over the wire: headers, query strings, connection reuse.
An `Answer` can also be slow, chunked, dripped or followed by a silent close.

    with Canned() as api:
        api.get("/v1/p1/demanager/instances", json={"instances": []})
        ...  # a client of api.url
        assert api.requests[0].query["limit"] == ["200"]
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Request:
    """One request as the server read it."""

    method: str
    target: str  # the request line's target, as sent (an absolute URI through a proxy)
    headers: Message  # case-insensitive: `headers["X-Sdk-Date"]`, `"Host" in headers`
    url: str  # the server's URL with the target's path and query

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.url).query, keep_blank_values=True)

    @property
    def params(self) -> dict[str, str]:
        """The query's first value of each parameter."""
        return {name: values[0] for name, values in self.query.items()}


@dataclass(frozen=True)
class Answer:
    """A canned response. `chunked`: Transfer-Encoding chunked (one chunk per `piece`
    bytes); `drip`: seconds between pieces of the body; `delay`: seconds before the status
    line; `close`: the connection is closed after it without saying so beforehand;
    `hang_up`: the connection is closed instead of answering."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunked: bool = False
    piece: int = 0  # bytes per write of the body (0: all at once)
    drip: float = 0.0
    delay: float = 0.0
    close: bool = False
    hang_up: bool = False


Reply = Answer | tuple[int, dict[str, str], bytes | str]
Callback = Callable[[Request], Reply]


def answer(
    status: int = 200,
    *,
    json: Any = None,
    body: bytes | str = b"",
    headers: dict[str, str] | None = None,
    **options: Any,
) -> Answer:
    """An `Answer` from a JSON document or a body."""
    headers = dict(headers or {})
    if json is not None:
        body = jsonlib.dumps(json)
        headers.setdefault("Content-Type", "application/json")
    data = body.encode() if isinstance(body, str) else body
    return Answer(status, headers, data, **options)


class Canned:
    """See the module's docstring."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.requests: list[Request] = []
        self.connections = 0  # accepted
        self.closed = 0  # ended, by either side
        self._answers: dict[tuple[str, str], list[Answer | Callback]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        if tls is not None:
            # The handshake in the connection's thread, not the accepting one.
            self._server.socket = tls.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.port = self._server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        # A short poll: `shutdown` waits for it (the default half second, at every test).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> Canned:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # -- what to answer ---------------------------------------------------------------------

    def add(self, method: str, path: str, reply: Answer | Callback) -> None:
        """Queue `reply` for `method` `path` (a path, or a URL of this server)."""
        with self._lock:
            self._answers.setdefault((method, self._path(path)), []).append(reply)

    def get(self, path: str, status: int = 200, **kw: Any) -> None:
        """Queue a GET's answer: `json=`, `body=`, `headers=`, or `Answer` options."""
        self.add("GET", path, answer(status, **kw))

    def callback(self, path: str, reply: Callback, method: str = "GET") -> None:
        self.add(method, path, reply)

    def replace(self, path: str, status: int = 200, method: str = "GET", **kw: Any) -> None:
        """The answers of `method` `path` replaced by this one."""
        with self._lock:
            self._answers[(method, self._path(path))] = [answer(status, **kw)]

    def reset(self) -> None:
        """Forget the requests seen so far."""
        with self._lock:
            self.requests.clear()

    def wait_closed(self, count: int, timeout: float = 5.0) -> None:
        """Until `count` connections have ended (the server's side of them)."""
        end = time.monotonic() + timeout
        while self.closed < count:
            if time.monotonic() > end:
                raise AssertionError(f"{self.closed} connections closed, not {count}")
            time.sleep(0.005)

    def _path(self, path: str) -> str:
        return urlsplit(path).path if "://" in path else path

    def _next(self, request: Request) -> Answer:
        with self._lock:
            queue = self._answers.get((request.method, request.path))
            if not queue:
                return answer(404, body=f"no canned answer for {request.method} {request.path}")
            reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(reply, Answer):
            return reply
        made = reply(request)
        if isinstance(made, Answer):
            return made
        status, headers, body = made
        return answer(status, body=body, headers=headers)

    # -- the server -------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        canned = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive
            disable_nagle_algorithm = True

            def setup(self) -> None:
                with canned._lock:
                    canned.connections += 1
                super().setup()

            def finish(self) -> None:
                with contextlib.suppress(OSError):
                    super().finish()
                with canned._lock:
                    canned.closed += 1

            def handle(self) -> None:
                with contextlib.suppress(OSError):  # a client that went away, a refused TLS
                    super().handle()

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._answer()

            do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                target = urlsplit(self.path)  # an absolute URI when sent through a proxy
                local = target.path + (f"?{target.query}" if target.query else "")
                request = Request(self.command, self.path, self.headers, canned.url + local)
                with canned._lock:
                    canned.requests.append(request)
                reply = canned._next(request)
                time.sleep(reply.delay)
                if reply.hang_up:
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                elif not {"Content-Length", "Transfer-Encoding"} & set(reply.headers):
                    # Framing given by the test may lie: a body cut short.
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self._body(reply)
                if reply.close:
                    self.close_connection = True

            def _body(self, reply: Answer) -> None:
                data = reply.body
                step = reply.piece or len(data) or 1
                for start in range(0, len(data), step):
                    piece = data[start : start + step]
                    if reply.chunked:
                        piece = b"%x\r\n%s\r\n" % (len(piece), piece)
                    self.wfile.write(piece)
                    self.wfile.flush()
                    if reply.drip:
                        time.sleep(reply.drip)
                if reply.chunked:
                    self.wfile.write(b"0\r\n\r\n")

        return Handler
