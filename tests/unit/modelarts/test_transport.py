"""The list calls' transport against loopback servers: kept-alive connections, bodies
(chunked, gzip, deflate, capped, dripping), timeouts, TLS, proxies, and error messages
that never carry a secret."""

from __future__ import annotations

import base64
import contextlib
import gzip
import http.client
import json
import socket
import ssl
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator

import pytest

from exporter.modelarts.errors import ApiError
from exporter.modelarts.transport import CHUNK, Transport
from tests.support.canned import Canned
from tests.support.certs import Pair, issue, make_ca

PATH = "/v1/p1/notebooks/all"
FAR = float("inf")  # a deadline never reached
LIMIT = 64 * 1024 * 1024
SECRET_HEADERS = {
    "Authorization": "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;x-sdk-date, Signature=5ec7e7",
    "X-Sdk-Date": "20300101T000000Z",
    "X-Security-Token": "security-token-secret",
}
SECRET_QUERY = "offset=0&limit=50&token=query-secret"


def transport(url: str, **kw: object) -> Transport:
    kw.setdefault("max_connections", 4)
    return Transport(url, **kw)  # type: ignore[arg-type]


def get(
    t: Transport,
    url: str,
    *,
    timeout: float = 5.0,
    limit: int = LIMIT,
    deadline: float = FAR,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, http.client.HTTPMessage]:
    with t.send("GET", url, headers or {}, timeout) as response:
        return response.status, response.read(limit, deadline), response.headers


def failure(t: Transport, url: str, **kw: object) -> ApiError:
    with pytest.raises(ApiError) as caught:
        get(t, url, **kw)  # type: ignore[arg-type]
    return caught.value


# -- connections -----------------------------------------------------------------------------


def test_a_connection_is_kept_alive_and_reused(canned):
    canned.get(PATH, json={"n": 1})
    t = transport(canned.url)
    for _ in range(5):
        status, body, _ = get(t, canned.url + PATH)
        assert (status, json.loads(body)) == (200, {"n": 1})
    assert canned.connections == 1 and len(canned.requests) == 5


def test_at_most_max_connections_are_kept_and_concurrent_callers_each_get_one(canned):
    together = threading.Barrier(4, timeout=5)

    def all_at_once(request):
        together.wait()  # four requests in flight at once: four connections
        return 200, {}, "{}"

    canned.callback(PATH, all_at_once)
    t = transport(canned.url, max_connections=2)
    threads = [threading.Thread(target=get, args=(t, canned.url + PATH)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert canned.connections == 4
    canned.wait_closed(2)  # two given back beyond the pool's two: closed
    canned.replace(PATH, json={})
    for _ in range(3):
        get(t, canned.url + PATH)
    assert canned.connections == 4  # the two kept were reused
    t.close()
    canned.wait_closed(4)


def test_a_connection_the_server_closed_while_idle_does_not_fail_the_next_request(canned):
    canned.get(PATH, json={"n": 1}, close=True)  # answered as kept alive, then closed
    canned.get(PATH, json={"n": 2})
    t = transport(canned.url)
    assert json.loads(get(t, canned.url + PATH)[1]) == {"n": 1}
    canned.wait_closed(1)
    assert json.loads(get(t, canned.url + PATH)[1]) == {"n": 2}
    assert canned.connections == 2 and len(canned.requests) == 2


def test_a_new_connection_that_fails_is_an_error_not_retried(canned):
    canned.get(PATH, hang_up=True)
    err = failure(transport(canned.url), canned.url + PATH)
    assert err.code == "connection" and "RemoteDisconnected" in str(err)
    assert len(canned.requests) == 1  # the client's policy retries, after a pause


def test_a_response_not_read_to_its_end_closes_its_connection(canned):
    canned.get(PATH, body=b"x" * 5000, chunked=True, piece=1000)
    t = transport(canned.url)
    err = failure(t, canned.url + PATH, limit=1000)
    assert err.code == "too_large"
    canned.wait_closed(1)
    canned.replace(PATH, json={"n": 1})
    assert json.loads(get(t, canned.url + PATH)[1]) == {"n": 1}
    assert canned.connections == 2


def test_close_closes_the_idle_connections(canned):
    canned.get(PATH, json={})
    t = transport(canned.url)
    get(t, canned.url + PATH)
    assert canned.closed == 0
    t.close()
    canned.wait_closed(1)


def test_a_redirect_is_answered_not_followed(canned):
    canned.get(PATH, status=302, headers={"Location": canned.url + "/elsewhere"})
    status, _, headers = get(transport(canned.url), canned.url + PATH)
    assert status == 302 and headers.get("location") == canned.url + "/elsewhere"
    assert [r.path for r in canned.requests] == [PATH]


def test_headers_are_read_whatever_their_case_and_the_request_is_sent_as_given(canned):
    canned.get(PATH, json={}, headers={"x-request-id": "rid-1", "Retry-After": "3"})
    sent = {"Host": f"127.0.0.1:{canned.port}", "X-Sdk-Date": "20300101T000000Z"}
    _, _, headers = get(transport(canned.url), f"{canned.url}{PATH}?a=1&b=2", headers=sent)
    assert headers.get("X-Request-Id") == "rid-1" and headers.get("retry-after") == "3"
    request = canned.requests[0]
    assert request.target == f"{PATH}?a=1&b=2"
    assert request.headers["X-Sdk-Date"] == "20300101T000000Z"
    assert request.headers["Accept-Encoding"] == "gzip, deflate"
    assert request.headers.get_all("Host") == [f"127.0.0.1:{canned.port}"]  # not twice


# -- bodies ----------------------------------------------------------------------------------


DOC = json.dumps({"data": [{"id": f"n{i}", "status": "RUNNING"} for i in range(3000)]}).encode()


def test_a_chunked_body_is_read_whole_and_the_connection_kept(canned):
    canned.get(PATH, body=DOC, chunked=True, piece=7000)
    t = transport(canned.url)
    assert get(t, canned.url + PATH)[1] == DOC
    assert get(t, canned.url + PATH)[1] == DOC
    assert canned.connections == 1


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),  # the zlib format, as HTTP says
        ("deflate", lambda d: zlib.compress(d)[2:-4]),  # raw deflate, as some servers send
    ],
    ids=["gzip", "deflate", "raw-deflate"],
)
@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_a_compressed_body_is_decoded(canned, encoding, compress, chunked):
    compressed = compress(DOC)
    assert len(compressed) < len(DOC) // 4
    headers = {"Content-Encoding": encoding}
    canned.get(PATH, body=compressed, headers=headers, chunked=chunked, piece=1 if chunked else 0)
    t = transport(canned.url)
    assert get(t, canned.url + PATH)[1] == DOC
    assert get(t, canned.url + PATH)[1] == DOC
    assert canned.connections == 1


def test_a_gzip_body_of_several_members_is_decoded_whole(canned):
    canned.get(
        PATH,
        body=gzip.compress(DOC[:100]) + gzip.compress(DOC[100:]),
        headers={"Content-Encoding": "gzip"},
    )
    assert get(transport(canned.url), canned.url + PATH)[1] == DOC


def test_bytes_after_the_gzip_stream_are_ignored(canned):
    """As urllib3 reads it: what follows the last member and is not one is left."""
    body = gzip.compress(DOC) + b"\x00" * 16
    canned.get(PATH, body=body, headers={"Content-Encoding": "gzip"})
    assert get(transport(canned.url), canned.url + PATH)[1] == DOC


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"Content-Length": "5000"}, b"x" * 1000),
        ({"Transfer-Encoding": "chunked"}, b"3e8\r\n" + b"x" * 1000 + b"\r\n"),  # no last chunk
    ],
    ids=["length", "chunked"],
)
def test_a_body_cut_short_is_a_failed_read(canned, headers, body):
    """The server closes before the end: an error (retried once by the client), not
    part of a body, as urllib3 enforces the framing."""
    canned.get(PATH, body=body, headers=headers, close=True)
    err = failure(transport(canned.url), canned.url + PATH)
    assert err.code == "connection" and "IncompleteRead" in str(err)


def test_a_body_that_does_not_decode_is_a_failed_read(canned):
    canned.get(
        PATH, body=b"\x1f\x8b\x08\x00" + b"not gzip" * 10, headers={"Content-Encoding": "gzip"}
    )
    err = failure(transport(canned.url), canned.url + PATH)
    assert err.code == "connection" and "reading response failed: error" in str(err)


def test_an_encoding_never_asked_for_is_refused(canned):
    canned.get(PATH, body=b"\x00", headers={"Content-Encoding": "br"})
    assert failure(transport(canned.url), canned.url + PATH).code == "malformed"


def test_a_body_over_the_limit_is_refused_with_or_without_a_length(canned):
    canned.get(PATH, body=b" " * 5000)
    canned.get(PATH, body=b" " * 5000, chunked=True, piece=100)
    t = transport(canned.url)
    for _ in range(2):
        err = failure(t, canned.url + PATH, limit=1000)
        assert err.code == "too_large" and "larger than 1000 bytes" in str(err)
    assert get(t, canned.url + PATH, limit=5000)[1] == b" " * 5000  # the limit is inclusive


def test_the_limit_counts_decoded_bytes_and_bounds_what_is_decompressed(canned):
    """50 MB of zeros gzip to 50 KB: refused at 1 MB of output, never decompressed whole."""
    packer = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
    bomb = b"".join(packer.compress(bytes(1024 * 1024)) for _ in range(50)) + packer.flush()
    assert len(bomb) < 100_000
    canned.get(PATH, body=bomb, headers={"Content-Encoding": "gzip"})
    t = transport(canned.url)
    tracemalloc.start()
    try:
        err = failure(t, canned.url + PATH, limit=1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert err.code == "too_large"
    assert peak < 1024 * 1024 + 8 * CHUNK  # the limit and a few chunks, not 50 MB


# -- time ------------------------------------------------------------------------------------


def test_no_answer_within_the_timeout(canned):
    canned.get(PATH, json={}, delay=3.0)
    started = time.monotonic()
    err = failure(transport(canned.url), canned.url + PATH, timeout=0.3)
    assert err.code == "timeout" and "no answer within 0.3s" in str(err)
    assert time.monotonic() - started < 2.5


def test_a_body_that_stalls_midway_is_a_failed_read(canned):
    """Each read has the timeout: a body stopping midway fails as requests' did (a
    `connection` failure, retried once by the client)."""
    canned.get(PATH, body=b"x" * 200, piece=100, drip=3.0)
    started = time.monotonic()
    err = failure(transport(canned.url), canned.url + PATH, timeout=0.3)
    assert err.code == "connection" and "reading response failed" in str(err)
    assert time.monotonic() - started < 2.5


def test_a_body_dripping_past_the_deadline_is_stopped_there(canned):
    """Every read answers well within the timeout, but the body would take 10 s."""
    canned.get(PATH, body=b"x" * 2000, piece=10, drip=0.05)
    started = time.monotonic()
    err = failure(transport(canned.url), canned.url + PATH, deadline=started + 0.5)
    assert err.code == "timeout" and "still arriving" in str(err)
    assert time.monotonic() - started < 5


# -- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Pair]:
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca(directory)
    return {
        "ca": ca,
        "server": issue(ca, directory, "server"),
        "other-name": issue(ca, directory, "other-name", hosts=("api.example",)),
        "self-signed": issue(None, directory, "self-signed"),
    }


@contextlib.contextmanager
def tls_server(pair: Pair) -> Iterator[Canned]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pair.cert, pair.key)
    with Canned(tls=context) as server:
        server.get(PATH, json={"n": 1})
        yield server


def test_a_ca_bundle_verifies_the_server(pki):
    with tls_server(pki["server"]) as server:
        t = transport(server.url, verify=str(pki["ca"].cert))
        assert json.loads(get(t, server.url + PATH)[1]) == {"n": 1}
        get(t, server.url + PATH)
        assert server.connections == 1


@pytest.mark.parametrize(
    ("pair", "verify"),
    [("self-signed", "ca"), ("server", True), ("other-name", "ca")],
    ids=["unknown-ca", "not-in-the-default-bundle", "another-host-name"],
)
def test_a_certificate_that_does_not_verify_is_a_tls_error(pki, pair, verify):
    with tls_server(pki[pair]) as server:
        bundle = str(pki["ca"].cert) if verify == "ca" else verify
        err = failure(transport(server.url, verify=bundle), server.url + PATH)
        assert err.code == "tls" and "CERTIFICATE_VERIFY_FAILED" in str(err)
        assert server.requests == []


def test_verification_can_be_turned_off(pki):
    with tls_server(pki["self-signed"]) as server:
        assert get(transport(server.url, verify=False), server.url + PATH)[0] == 200


def test_an_unreadable_ca_bundle_is_a_tls_error_of_the_request(tmp_path):
    t = transport("https://127.0.0.1:1", verify=str(tmp_path / "missing.pem"))  # built lazily
    err = failure(t, "https://127.0.0.1:1" + PATH)
    assert err.code == "tls" and "CA certificates unreadable" in str(err)


# -- proxies -----------------------------------------------------------------------------------


class PipeProxy:
    """A proxy that records the head of each connection's first request and pipes the
    rest: CONNECT is answered 200 (or `refuse`, e.g. 407) and tunnelled to the host it
    names; anything else goes on, as sent, to `upstream`."""

    def __init__(self, upstream: tuple[str, int] | None = None, refuse: str = "") -> None:
        self.upstream = upstream
        self.refuse = refuse
        self.heads: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> PipeProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                self._sockets.append(client)
                threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            more = client.recv(65536)
            if not more:
                return
            data += more
        head = data.partition(b"\r\n\r\n")[0]
        self.heads.append(head.decode("latin-1"))
        if head.startswith(b"CONNECT "):
            if self.refuse:
                client.sendall(f"HTTP/1.1 {self.refuse}\r\nContent-Length: 0\r\n\r\n".encode())
                client.close()
                return
            host, _, port = head.split()[1].decode().rpartition(":")
            upstream = socket.create_connection((host, int(port)))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            assert self.upstream is not None
            upstream = socket.create_connection(self.upstream)
            upstream.sendall(data)
        self._sockets.append(upstream)
        threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
        self._pipe(client, upstream)

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_a_plain_http_target_is_asked_through_the_proxy_with_the_absolute_uri(canned):
    canned.get(PATH, json={"n": 1})
    with PipeProxy(upstream=("127.0.0.1", canned.port)) as proxy:
        proxy_url = proxy.url.replace("http://", "http://ops:p%40ss@")  # `@` quoted
        t = transport(canned.url, proxy=proxy_url)
        url = f"{canned.url}{PATH}?offset=0"
        assert json.loads(get(t, url)[1]) == {"n": 1}
        assert json.loads(get(t, url)[1]) == {"n": 1}
    assert [h.splitlines()[0] for h in proxy.heads] == [f"GET {url} HTTP/1.1"]  # kept alive
    assert [r.target for r in canned.requests] == [url, url]
    assert canned.requests[0].headers["Proxy-Authorization"] == basic("ops", "p@ss")
    assert canned.requests[0].headers["Host"] == f"127.0.0.1:{canned.port}"


def test_an_https_target_is_asked_through_a_connect_tunnel(pki):
    with tls_server(pki["server"]) as server, PipeProxy() as proxy:
        proxy_url = proxy.url.replace("http://", "http://ops:secret@")
        t = transport(server.url, verify=str(pki["ca"].cert), proxy=proxy_url)
        assert json.loads(get(t, server.url + PATH)[1]) == {"n": 1}
        assert json.loads(get(t, server.url + PATH)[1]) == {"n": 1}
    (head,) = proxy.heads
    assert head.startswith(f"CONNECT 127.0.0.1:{server.port} HTTP/1.")
    assert f"Proxy-Authorization: {basic('ops', 'secret')}" in head.splitlines()
    # Verified end to end, and the proxy's credentials never reach the target.
    assert [r.target for r in server.requests] == [PATH, PATH]
    assert "Proxy-Authorization" not in server.requests[0].headers


def test_a_proxy_of_another_scheme_is_refused_without_naming_its_credentials():
    t = transport("https://127.0.0.1:1", proxy="socks5://ops:proxy-secret@127.0.0.1:1080")
    err = failure(t, "https://127.0.0.1:1" + PATH)
    assert err.code == "connection" and "only http:// proxies" in str(err)
    assert "proxy-secret" not in str(err) and "ops" not in str(err)


# -- no secret in any message ------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def secrets_in(err: ApiError) -> list[str]:
    """Any part of a secret the message shows: the signature alone would be one."""
    parts = ["5ec7e7", "20300101T000000Z", "security-token", "query-secret", "proxy-secret"]
    parts.append(basic("ops", "proxy-secret").split()[1])
    return [part for part in parts if part in str(err)]


def test_no_error_message_names_the_query_or_a_header(canned, pki):
    headers = dict(SECRET_HEADERS)
    canned.get(PATH, delay=3.0)
    canned.get("/hang-up", hang_up=True)
    refused = f"http://127.0.0.1:{closed_port()}"
    errors = {
        "refused": failure(transport(refused), f"{refused}{PATH}?{SECRET_QUERY}", headers=headers),
        "timeout": failure(
            transport(canned.url),
            f"{canned.url}{PATH}?{SECRET_QUERY}",
            timeout=0.2,
            headers=headers,
        ),
        "hang-up": failure(
            transport(canned.url), f"{canned.url}/hang-up?{SECRET_QUERY}", headers=headers
        ),
        # http.client refuses a value with a line break, quoting it.
        "invalid": failure(
            transport(canned.url),
            f"{canned.url}/hang-up?{SECRET_QUERY}",
            headers={**headers, "X-Security-Token": "security-token-secret\r\nX-Evil: 1"},
        ),
    }
    with tls_server(pki["self-signed"]) as server:
        errors["tls"] = failure(
            transport(server.url, verify=str(pki["ca"].cert)),
            f"{server.url}{PATH}?{SECRET_QUERY}",
            headers=headers,
        )
    with tls_server(pki["server"]) as server, PipeProxy(refuse="407 Who Are You") as proxy:
        t = transport(server.url, proxy=proxy.url.replace("http://", "http://ops:proxy-secret@"))
        errors["proxy"] = failure(t, f"{server.url}{PATH}?{SECRET_QUERY}", headers=headers)
    codes = {name: err.code for name, err in errors.items()}
    assert codes == {
        "refused": "connection",
        "timeout": "timeout",
        "hang-up": "connection",
        "invalid": "invalid",
        "tls": "tls",
        "proxy": "connection",
    }
    assert "407" in str(errors["proxy"])
    assert {name: secrets_in(err) for name, err in errors.items()} == {name: [] for name in errors}


def test_a_secret_quoted_by_an_exception_is_masked(monkeypatch, canned):
    """Whatever an exception says, the query string and header values are masked."""

    def quoting(self, method, url, headers=None, **kw):
        raise http.client.HTTPException(f"refused {url} with {headers}")

    monkeypatch.setattr(http.client.HTTPConnection, "request", quoting)
    err = failure(
        transport(canned.url), f"{canned.url}{PATH}?{SECRET_QUERY}", headers=SECRET_HEADERS
    )
    assert err.code == "connection" and secrets_in(err) == []
    assert "refused" in str(err)


def test_an_answer_is_an_answer_whatever_its_status(canned):
    canned.get(PATH, status=503, body="busy")
    status, body, _ = get(transport(canned.url), canned.url + PATH)
    assert (status, body) == (503, b"busy")


def test_only_the_base_urls_host_is_asked(canned):
    with pytest.raises(ValueError, match="not on the transport's host"):
        transport(canned.url).send("GET", "http://elsewhere.example" + PATH, {}, 1.0)
