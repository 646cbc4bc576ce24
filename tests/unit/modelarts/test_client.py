"""The list client against a loopback server's canned answers (tests/support/canned.py):
pagination, error shapes, 429, 401, the budget."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from exporter.modelarts.auth.aksk import AkSkProvider
from exporter.modelarts.client import ListQuery, ModelArtsClient
from exporter.modelarts.errors import ApiError
from tests.support.canned import Canned, Request

REMOTE = "https://modelarts.cn-north-4.myhuaweicloud.com"  # never contacted
PROJECT = "p1"
URL = f"/v1/{PROJECT}/demanager/instances"


class FakeClock:
    """A clock for the client's budget; `sleep` advances it instead of waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def instances(*ids: str) -> list[dict[str, str]]:
    return [{"id": i, "status": "RUNNING"} for i in ids]


def page(total: int, *ids: str) -> dict[str, object]:
    return {"json": {"total_count": total, "instances": instances(*ids)}}


def make_client(canned: Canned, clock: FakeClock | None = None, **kw: object) -> ModelArtsClient:
    clock = clock or FakeClock()
    auth = AkSkProvider(SecretStr("AK"), SecretStr("SK"))
    kw.setdefault("api", "demanager")  # the historical list alone; test_notebooks.py: the rest
    return ModelArtsClient(canned.url, PROJECT, auth, clock=clock, sleep=clock.sleep, **kw)  # type: ignore[arg-type]


def test_the_list_call_has_exactly_the_documented_parameters(canned):
    canned.get(URL, **page(1, "a"))
    listing = make_client(canned, page_size=0).list_instances()
    assert [i.id for i in listing.instances] == ["a"]
    assert canned.requests[0].query == {"de_type": ["Notebook"], "show_self": ["false"]}
    request = canned.requests[0]
    assert request.headers["Authorization"].startswith("SDK-HMAC-SHA256 Access=AK, SignedHeaders=")
    assert "X-Sdk-Date" in request.headers
    # The headers requests sent too; the transport decodes gzip and deflate.
    assert request.headers["User-Agent"].startswith("modelarts-exporter/")
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Accept-Encoding"] == "gzip, deflate"


def test_filters_are_sent_and_empty_ones_omitted(canned):
    canned.get(URL, **page(0))
    make_client(
        canned, query=ListQuery(show_self=True, pool_id="pool-1"), page_size=0
    ).list_instances()
    assert canned.requests[0].query == {
        "de_type": ["Notebook"],
        "show_self": ["true"],
        "pool_id": ["pool-1"],
    }


def test_pagination_fetches_every_page(canned):
    pages = {0: "ab", 2: "cd", 4: "e"}

    def by_offset(request: Request) -> tuple[int, dict[str, str], str]:
        offset = int(request.params.get("offset", -1))
        expected = {"de_type": "Notebook", "show_self": "false", "offset": str(offset)}
        if request.params != {**expected, "limit": "2"} or offset not in pages:
            return 404, {}, "unexpected parameters"
        return 200, {}, json.dumps(page(5, *pages[offset])["json"])

    canned.callback(URL, by_offset)
    listing = make_client(canned, page_size=2).list_instances()
    assert sorted(i.id for i in listing.instances) == list("abcde")
    assert len(canned.requests) == 3


def test_instances_shifting_between_pages_give_no_duplicates(canned):
    # A notebook created while we read shifts "b" onto page 2 as well: exported once.
    pages = iter([page(4, "a", "b"), page(5, "b", "c"), page(5, "d")])
    canned.callback(URL, lambda r: (200, {}, json.dumps(next(pages)["json"])))
    listing = make_client(canned, page_size=2, page_concurrency=1).list_instances()
    assert sorted(i.id for i in listing.instances) == ["a", "b", "c", "d"]


def test_instances_appearing_during_the_listing_are_read_to_the_end(canned):
    pages = iter([page(4, "a", "b"), page(6, "c", "d"), page(6, "e", "f"), page(6)])
    canned.callback(URL, lambda r: (200, {}, json.dumps(next(pages)["json"])))
    listing = make_client(canned, page_size=2, page_concurrency=1).list_instances()
    assert sorted(i.id for i in listing.instances) == list("abcdef")


def test_a_page_size_larger_than_the_fleet_needs_one_request(canned):
    canned.get(URL, **page(3, "a", "b", "c"))
    assert len(make_client(canned, page_size=200).list_instances().instances) == 3
    assert len(canned.requests) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"error_code": "ModelArts.6309", "error_msg": "Instance not found.", "request_id": "rid-1"},
        {
            "error_code": "ModelArts.6309",
            "error_message": "Instance not found.",
            "request_id": "rid-1",
        },
        {"code": "ModelArts.6309", "message": "Instance not found."},
    ],
    ids=["error_msg", "error_message", "message"],
)
def test_error_bodies_in_all_three_shapes(canned, body):
    canned.get(URL, status=404, json=body, headers={"X-Request-Id": "rid-1"})
    with pytest.raises(ApiError) as caught:
        make_client(canned).list_instances()
    err = caught.value
    assert (err.status, err.code, err.request_id) == (404, "ModelArts.6309", "rid-1")
    assert "Instance not found." in str(err) and "rid-1" in str(err)


def test_429_waits_for_retry_after_before_the_next_request(canned):
    clock = FakeClock()
    times: list[float] = []

    def answer(request):
        times.append(clock.now)
        if len(times) == 1:
            return (
                429,
                {"Retry-After": "3"},
                json.dumps({"error_code": "APIG.0308", "error_msg": "throttled"}),
            )
        return (200, {}, json.dumps(page(1, "a")["json"]))

    canned.callback(URL, answer)
    listing = make_client(canned, clock, page_size=0).list_instances()
    assert [i.id for i in listing.instances] == ["a"]
    assert times[1] - times[0] >= 3 and clock.sleeps == [3.0]


def test_429_with_retry_after_beyond_the_budget_fails_and_says_when(canned):
    canned.get(URL, status=429, headers={"Retry-After": "120"}, json={"error_code": "APIG.0308"})
    with pytest.raises(ApiError) as caught:
        make_client(canned, refresh_timeout=8).list_instances()
    assert caught.value.retry_after == 120 and len(canned.requests) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_are_never_retried(canned, status):
    canned.get(
        URL,
        status=status,
        json={"error_code": "APIG.0301", "error_msg": "verify aksk signature fail"},
    )
    with pytest.raises(ApiError) as caught:
        make_client(canned).list_instances()
    assert caught.value.is_auth and caught.value.code == "APIG.0301"
    assert len(canned.requests) == 1


def test_a_5xx_is_retried_once(canned):
    canned.get(URL, status=502, body=b"<html>Bad Gateway</html>")
    canned.get(URL, **page(1, "a"))
    assert len(make_client(canned).list_instances().instances) == 1
    canned.reset()
    canned.replace(URL, status=503, json={"message": "busy"})
    with pytest.raises(ApiError) as caught:
        make_client(canned).list_instances()
    assert caught.value.status == 503 and len(canned.requests) == 2


def test_a_dropped_connection_is_retried_once_and_counted_as_an_error(canned):
    """No answer at all (the server closes the new connection): one more try after a
    pause, as for a 5xx; each failure counts as an `error` request."""
    canned.get(URL, hang_up=True)
    clock = FakeClock()
    client = make_client(canned, clock)
    with pytest.raises(ApiError) as caught:
        client.list_instances()
    assert caught.value.code == "connection" and "connection failed" in str(caught.value)
    assert len(canned.requests) == 2 and clock.sleeps == [0.2]
    assert client.requests.snapshot() == {"error": 2}


def test_the_refresh_timeout_bounds_a_slow_listing(canned):
    clock = FakeClock()

    def slow(request):
        clock.now += 3.0  # each page takes three seconds
        offset = int(request.params["offset"])
        return (200, {}, json.dumps(page(100, f"i{offset}", f"j{offset}")["json"]))

    canned.callback(URL, slow)
    with pytest.raises(ApiError, match="refresh timeout"):
        make_client(
            canned, clock, page_size=2, page_concurrency=1, refresh_timeout=8
        ).list_instances()
    assert len(canned.requests) == 3  # 0 s, 3 s, 6 s; none started after 8 s


def test_a_body_over_the_size_cap_is_refused(canned):
    canned.get(URL, body=b" " * 5000 + json.dumps(page(1, "a")["json"]).encode())
    with pytest.raises(ApiError, match="larger than 1000 bytes"):
        make_client(canned, max_response_bytes=1000).list_instances()


def test_requests_are_counted_by_code(canned):
    canned.get(URL, status=500, json={"message": "oops"})
    canned.get(URL, **page(1, "a"))
    client = make_client(canned)
    client.list_instances()
    assert client.requests.snapshot() == {"500": 1, "200": 1}


def test_a_malformed_body_is_an_api_error_and_bad_records_are_counted(canned):
    canned.get(URL, body=b"<html>oops</html>")
    with pytest.raises(ApiError, match="malformed"):
        make_client(canned).list_instances()
    canned.replace(URL, json={"instances": [{"id": "a", "status": "RUNNING"}, {"id": 1}]})
    listing = make_client(canned).list_instances()
    assert [i.id for i in listing.instances] == ["a"] and listing.invalid == 1


def test_proxy_and_ca_bundle_variables_are_read_once_as_requests_reads_them(monkeypatch):
    """requests would read them per request (Session.merge_environment_settings); the
    client reads them at construction for its one host, with the same precedence."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/corporate.pem")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    auth = AkSkProvider(SecretStr("AK"), SecretStr("SK"))
    client = ModelArtsClient(REMOTE, PROJECT, auth)
    assert client.transport.proxy == "http://proxy.example:3128"
    assert client.transport.verify == "/etc/ssl/corporate.pem"
    monkeypatch.setenv("HTTPS_PROXY", "http://later.example:3128")  # read once: not seen
    assert client.transport.proxy == "http://proxy.example:3128"

    monkeypatch.setenv("NO_PROXY", ".myhuaweicloud.com")
    assert ModelArtsClient(REMOTE, PROJECT, auth).transport.proxy is None
    # An explicit CA file (--ca-file) wins over the environment, as in requests.
    assert (
        ModelArtsClient(REMOTE, PROJECT, auth, verify="/mine.pem").transport.verify == "/mine.pem"
    )


def test_a_redirect_is_an_error_not_followed_with_the_signature(canned):
    """An API gateway answers, it does not redirect; following one would send the signed
    request (and a token) wherever the Location points."""
    with Canned() as elsewhere:
        elsewhere.get(URL, **page(1, "a"))
        canned.get(URL, status=302, headers={"Location": elsewhere.url + URL})
        with pytest.raises(ApiError) as caught:
            make_client(canned).list_instances()
        assert caught.value.status == 302
        assert [r.path for r in canned.requests] == [URL]
        assert elsewhere.requests == []


def serve_by_offset(
    canned: Canned, total: int, short_at: int, size: int = 2, failing_at: int | None = None
):
    """Pages of `size` by offset: full before page `short_at`, one record on it, none
    after; the envelope claims `total`; page `failing_at` answers 403."""

    def answer(request):
        offset = int(request.params["offset"])
        number = offset // size
        if number == failing_at:
            return 403, {}, json.dumps({"error_code": "ModelArts.0203", "error_msg": "no"})
        count = size if number < short_at else 1 if number == short_at else 0
        ids = [f"n{offset + k}" for k in range(count)]
        return 200, {}, json.dumps(page(total, *ids)["json"])

    canned.callback(URL, answer)


def test_a_wrong_total_costs_at_most_the_workers_in_flight(canned):
    serve_by_offset(canned, total=2000, short_at=3)
    listing = make_client(canned, page_size=2, page_concurrency=4).list_instances()
    assert len(listing.instances) == 7  # pages 0-2 full, page 3 one record
    # Pages 0-3, and at most 3 more taken by the other workers before page 3 came back.
    assert 4 <= len(canned.requests) <= 7


def test_a_page_that_fails_fails_the_listing(canned):
    serve_by_offset(canned, total=20, short_at=9, failing_at=5)
    with pytest.raises(ApiError) as caught:
        make_client(canned, page_size=2, page_concurrency=4).list_instances()
    assert caught.value.status == 403
