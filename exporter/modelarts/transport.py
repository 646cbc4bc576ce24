"""The list calls' HTTP: GETs to one host over kept-alive `http.client` connections.

A refresh of 50,000 notebooks sends over a thousand page requests, and requests' adapter,
urllib3's pool (a poll per reuse) and response wrapper, cookie extraction and
`iter_content` cost as much CPU per request again as `http.client` on a kept-alive
connection. `Transport` is that thin path, with what the list calls took from requests:

- Connections to the base URL's host (or its proxy) are kept alive in a LIFO pool of at
  most `max_connections` idle ones, shared by the page workers (thread-safe). A reused
  connection the server closed while idle is replaced at once, once, when it fails before
  any byte of the answer; a new connection's failure is the caller's to retry.
- `timeout` bounds the connection and each read of the socket, as requests' did: no
  answer in time is an `ApiError` of code `timeout`; a TLS failure `tls`; a header or
  URL http.client refuses to send `invalid`; any other failure `connection` (a body cut
  short of its length, undecodable or stalled midway too, as requests said it).
- A body is read in chunks, decoded (`Accept-Encoding: gzip, deflate` is sent, as
  requests sent it) and refused beyond `limit` decoded bytes (`too_large`: never more than
  `limit` plus one chunk is decompressed) or when still arriving at the deadline
  (`timeout`). A response not read to its end closes its connection.
- TLS verifies the host name against `verify`: True, the CA bundle requests would use; a
  file or a directory of CA certificates; False, nothing (one context, built at the first
  HTTPS connection: an unreadable bundle is a `tls` error of each request).
- `proxy` (an `http://` URL, credentials allowed): a plain-HTTP target is asked through it
  with the absolute URI, an HTTPS one through a CONNECT tunnel.
- Redirects are answers like any other: never followed.

No message of an `ApiError` names the query string or a header's value (signatures,
tokens, the proxy's credentials).
"""

from __future__ import annotations

import base64
import http.client
import os
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from types import TracebackType
from urllib.parse import unquote, urlsplit

import requests.utils

from exporter.modelarts.errors import ApiError

CHUNK = 256 * 1024  # bytes read (and decompressed) at a time
# What the transport adds to every request: it decodes those encodings.
_TRANSPORT_HEADERS = {"Accept-Encoding": "gzip, deflate", "Connection": "keep-alive"}
# A reused connection failing like this before any byte of the answer was closed by the
# server while idle: the request never reached it.
_STALE = (
    ConnectionResetError,  # http.client.RemoteDisconnected included
    BrokenPipeError,
    ConnectionAbortedError,
    ssl.SSLEOFError,
)
# Header values that may appear in an error message; the others are masked.
_HARMLESS_HEADERS = frozenset({"host", "user-agent", "accept", "accept-encoding", "connection"})


class Response:
    """One answer: `status`, `headers` (case-insensitive `get`) and `read()` of the body.
    Closing it (`with`) returns its connection to the pool if the body was read to the
    end, and closes it otherwise."""

    __slots__ = ("_connection", "_done", "_response", "_timeout", "_transport", "headers", "status")

    def __init__(
        self,
        transport: Transport,
        connection: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        timeout: float,
    ) -> None:
        self._transport = transport
        self._connection: http.client.HTTPConnection | None = connection
        self._response = response
        self._timeout = timeout
        self._done = False
        self.status = response.status
        self.headers = response.msg

    def read(self, limit: int, deadline: float) -> bytes:
        """The whole body, decoded: `too_large` beyond `limit` bytes, `timeout` when still
        arriving at `deadline` (of the transport's clock)."""
        response = self._response
        decoder = _decoder(self.headers.get("Content-Encoding"))
        if decoder is None and response.length is not None and response.length > limit:
            raise _too_large(limit)
        clock = self._transport.clock
        chunks: list[bytes] = []
        size = 0

        def keep(chunk: bytes) -> None:
            nonlocal size
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            if clock() > deadline:
                raise ApiError(
                    "response still arriving at the end of the refresh timeout", code="timeout"
                )
            chunks.append(chunk)

        try:
            while raw := response.read1(CHUNK):
                if decoder is None:
                    keep(raw)
                else:
                    decoder.feed(raw, keep)
            if response.length:  # closed before the end its Content-Length announced
                raise http.client.IncompleteRead(b"", response.length)
            if not response.isclosed():
                response.read()  # a length-delimited body's end: the connection is free
        except TimeoutError:
            raise ApiError(
                f"reading response failed: no data within {self._timeout:.1f}s",
                code="connection",
            ) from None
        except (OSError, http.client.HTTPException, ValueError, zlib.error) as err:
            raise ApiError(f"reading response failed: {_cause(err)}", code="connection") from None
        self._done = True
        return b"".join(chunks)

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self._done and not self._response.will_close and connection.sock is not None:
            self._transport._give_back(connection)
        else:
            self._response.close()
            connection.close()

    def __enter__(self) -> Response:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class Transport:
    """GETs to `base_url`'s host; see the module's docstring."""

    def __init__(
        self,
        base_url: str,
        *,
        max_connections: int,
        verify: bool | str = True,
        proxy: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {parts.scheme}://{parts.netloc}")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self._prefix = self.origin + "/"
        self.tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self.tls else 80)
        self.max_connections = max(max_connections, 1)
        self.verify = verify
        self.proxy = proxy
        self.clock = clock
        self._proxy_address: tuple[str, int] | None = None
        self._proxy_headers: dict[str, str] = {}
        self._unusable = ""  # why no request can be sent (an unsupported proxy)
        if proxy:
            self._use_proxy(proxy)
        self._context: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self._idle: list[http.client.HTTPConnection] = []  # LIFO: the warmest on top
        self._closed = False

    def send(self, method: str, url: str, headers: Mapping[str, str], timeout: float) -> Response:
        """Send one request without a body; its answer, whatever the status. Raises an
        `ApiError` (`timeout`, `tls`, `connection`, `invalid`) when there is none."""
        if not url.startswith(self._prefix):
            raise ValueError("the URL is not on the transport's host")
        if self._unusable:
            raise ApiError(self._unusable, code="connection")
        sent = {**_TRANSPORT_HEADERS, **headers}
        if self._proxy_address and not self.tls:
            # A plain-HTTP target through a proxy: the absolute URI, and the proxy's
            # credentials (through a tunnel they go with CONNECT, never to the target).
            target = url
            sent.update(self._proxy_headers)
        else:
            target = url[len(self.origin) :]
        try:
            connection, reused = self._take()
            try:
                response = self._exchange(connection, method, target, sent, timeout)
            except _STALE:
                if not reused:
                    raise
                connection = self._new()  # closed by the server while idle: once more
                response = self._exchange(connection, method, target, sent, timeout)
        except TimeoutError:
            raise ApiError(f"no answer within {timeout:.1f}s", code="timeout") from None
        except ssl.SSLError as err:
            raise ApiError(f"TLS error: {_cause(err, url, sent)}", code="tls") from None
        except (ValueError, http.client.InvalidURL) as err:
            # http.client quotes what it refused: a header's value, the URL. Not repeated.
            raise ApiError(
                f"request not sent: {type(err).__name__}: a header or the URL is not valid HTTP",
                code="invalid",
            ) from None
        except (OSError, http.client.HTTPException) as err:
            raise ApiError(
                f"connection failed: {_cause(err, url, sent)}", code="connection"
            ) from None
        return Response(self, connection, response, timeout)

    def close(self) -> None:
        """Close the idle connections; those in use are closed when given back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _exchange(
        self,
        connection: http.client.HTTPConnection,
        method: str,
        target: str,
        headers: dict[str, str],
        timeout: float,
    ) -> http.client.HTTPResponse:
        connection.timeout = timeout  # connecting, and each read
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        try:
            connection.request(method, target, headers=headers)
            return connection.getresponse()
        except BaseException:
            connection.close()
            raise

    def _take(self) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection (reused: True), else a new one."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self._new(), False

    def _give_back(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self.max_connections:
                self._idle.append(connection)
                return
        connection.close()

    def _new(self) -> http.client.HTTPConnection:
        host, port = self._proxy_address or (self._host, self._port)
        if not self.tls:
            return http.client.HTTPConnection(host, port)
        connection = http.client.HTTPSConnection(host, port, context=self._ssl_context())
        if self._proxy_address:
            connection.set_tunnel(self._host, self._port, headers=self._proxy_headers)
        return connection

    def _ssl_context(self) -> ssl.SSLContext:
        with self._lock:
            if self._context is None:
                self._context = _ssl_context(self.verify)
            return self._context

    def _use_proxy(self, proxy: str) -> None:
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if parts.scheme != "http" or not parts.hostname:
            # The credentials are not named: only the scheme and the host.
            self._unusable = (
                f"proxy {parts.scheme}://{parts.hostname or ''} not supported: "
                "only http:// proxies are"
            )
            return
        self._proxy_address = (parts.hostname, parts.port or 80)
        if parts.username or parts.password:
            user = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
            token = base64.b64encode(user.encode("latin-1")).decode("ascii")
            self._proxy_headers = {"Proxy-Authorization": f"Basic {token}"}


class _Decoder:
    """One `Content-Encoding`, gzip or deflate, decompressed at most a chunk at a time."""

    def __init__(self, coding: str) -> None:
        self.gzip = coding == "gzip"
        self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS if self.gzip else zlib.MAX_WBITS)
        # deflate is the zlib format, but some servers send it raw: until the first output,
        # the input is kept to start again as raw deflate (as urllib3 does).
        self._trying: bytes | None = None if self.gzip else b""
        self._ended = False
        self._later = False  # past the first gzip member

    def feed(self, data: bytes, keep: Callable[[bytes], None]) -> None:
        if self._trying is None:
            self._pump(data, keep)
            return
        self._trying += data
        try:
            produced = self._pump(data, keep)
        except zlib.error:
            data, self._trying = self._trying, None
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            self._pump(data, keep)
            return
        if produced or len(self._trying) > CHUNK:
            self._trying = None

    def _pump(self, data: bytes, keep: Callable[[bytes], None]) -> int:
        """Decompress `data`, a chunk of output at a time; how many bytes came out."""
        produced = 0
        while not self._ended:
            try:
                out = self._zlib.decompress(data, CHUNK)
            except zlib.error:
                if not self._later:
                    raise
                self._ended = True  # not a gzip member after the first: ignored (urllib3)
                break
            data = self._zlib.unconsumed_tail
            if out:
                produced += len(out)
                keep(out)
            if self._zlib.eof:
                if not self.gzip:
                    self._ended = True  # anything after the stream's end is ignored
                    break
                data = self._zlib.unused_data
                if not data:
                    break  # a member ended: another may follow in the next input
                # A gzip body may have several members, one after the other.
                self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._later = True
                continue
            if data or len(out) == CHUNK:
                continue  # more input, or more output held back by the bound
            break
        return produced


def _decoder(encoding: str | None) -> _Decoder | None:
    coding = (encoding or "").strip().lower()
    if coding in ("", "identity"):
        return None
    if coding in ("gzip", "x-gzip"):
        return _Decoder("gzip")
    if coding == "deflate":
        return _Decoder("deflate")
    # Never asked for: the body could not be read.
    raise ApiError(f"unsupported Content-Encoding {coding[:40]!r}", code="malformed")


def _ssl_context(verify: bool | str) -> ssl.SSLContext:
    """The context requests (urllib3) would use: TLS 1.2 or later, HTTP/1.1."""
    try:
        if verify is False:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            where = requests.utils.DEFAULT_CA_BUNDLE_PATH if verify is True else str(verify)
            if os.path.isdir(where):
                context = ssl.create_default_context(capath=where)
            else:
                context = ssl.create_default_context(cafile=where)
    except (OSError, ValueError) as err:
        raise ApiError(
            f"TLS error: CA certificates unreadable: {_cause(err)}", code="tls"
        ) from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    return context


def _too_large(limit: int) -> ApiError:
    return ApiError(f"response larger than {limit} bytes", code="too_large")


def _cause(err: BaseException, url: str = "", headers: Mapping[str, str] | None = None) -> str:
    """The exception's kind and message, short, without the URL's query string or any
    header value but the harmless ones (http.client may quote what it refused)."""
    text = f"{type(err).__name__}: {err}"
    secrets = [url.partition("?")[2]]
    secrets += [v for k, v in (headers or {}).items() if k.lower() not in _HARMLESS_HEADERS]
    for secret in secrets:
        if len(secret) >= 4 and secret in text:
            text = text.replace(secret, "…")
    return text[:200]
