"""The list client against `responses`: pagination, error shapes, 429, 401, the budget."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from pydantic import SecretStr

from exporter.modelarts.auth.aksk import AkSkProvider
from exporter.modelarts.client import ListQuery, ModelArtsClient
from exporter.modelarts.errors import ApiError

BASE = "https://modelarts.cn-north-4.myhuaweicloud.com"
PROJECT = "p1"
URL = f"{BASE}/v1/{PROJECT}/demanager/instances"


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


def make_client(clock: FakeClock | None = None, **kw: object) -> ModelArtsClient:
    clock = clock or FakeClock()
    auth = AkSkProvider(SecretStr("AK"), SecretStr("SK"))
    kw.setdefault("api", "demanager")  # the historical list alone; test_notebooks.py: the rest
    return ModelArtsClient(BASE, PROJECT, auth, clock=clock, sleep=clock.sleep, **kw)  # type: ignore[arg-type]


def sent_params(call_index: int) -> dict[str, list[str]]:
    return parse_qs(urlsplit(responses.calls[call_index].request.url).query, keep_blank_values=True)


@responses.activate
def test_the_list_call_has_exactly_the_documented_parameters():
    responses.get(URL, **page(1, "a"))
    listing = make_client(page_size=0).list_instances()
    assert [i.id for i in listing.instances] == ["a"]
    assert sent_params(0) == {"de_type": ["Notebook"], "show_self": ["false"]}
    request = responses.calls[0].request
    assert request.headers["Authorization"].startswith("SDK-HMAC-SHA256 Access=AK, SignedHeaders=")
    assert "X-Sdk-Date" in request.headers


@responses.activate
def test_filters_are_sent_and_empty_ones_omitted():
    responses.get(URL, **page(0))
    make_client(query=ListQuery(show_self=True, pool_id="pool-1"), page_size=0).list_instances()
    assert sent_params(0) == {"de_type": ["Notebook"], "show_self": ["true"], "pool_id": ["pool-1"]}


@responses.activate
def test_pagination_fetches_every_page():
    for offset, ids in ((0, "ab"), (2, "cd"), (4, "e")):
        responses.get(
            URL,
            match=[
                responses.matchers.query_param_matcher(
                    {
                        "de_type": "Notebook",
                        "show_self": "false",
                        "offset": str(offset),
                        "limit": "2",
                    }
                )
            ],
            **page(5, *ids),
        )
    listing = make_client(page_size=2).list_instances()
    assert sorted(i.id for i in listing.instances) == list("abcde")
    assert len(responses.calls) == 3


@responses.activate
def test_instances_shifting_between_pages_give_no_duplicates():
    # A notebook created while we read shifts "b" onto page 2 as well: exported once.
    pages = iter([page(4, "a", "b"), page(5, "b", "c"), page(5, "d")])
    responses.add_callback(
        responses.GET, URL, callback=lambda r: (200, {}, json.dumps(next(pages)["json"]))
    )
    listing = make_client(page_size=2, page_concurrency=1).list_instances()
    assert sorted(i.id for i in listing.instances) == ["a", "b", "c", "d"]


@responses.activate
def test_instances_appearing_during_the_listing_are_read_to_the_end():
    pages = iter([page(4, "a", "b"), page(6, "c", "d"), page(6, "e", "f"), page(6)])
    responses.add_callback(
        responses.GET, URL, callback=lambda r: (200, {}, json.dumps(next(pages)["json"]))
    )
    listing = make_client(page_size=2, page_concurrency=1).list_instances()
    assert sorted(i.id for i in listing.instances) == list("abcdef")


@responses.activate
def test_a_page_size_larger_than_the_fleet_needs_one_request():
    responses.get(URL, **page(3, "a", "b", "c"))
    assert len(make_client(page_size=200).list_instances().instances) == 3
    assert len(responses.calls) == 1


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
@responses.activate
def test_error_bodies_in_all_three_shapes(body):
    responses.get(URL, status=404, json=body, headers={"X-Request-Id": "rid-1"})
    with pytest.raises(ApiError) as caught:
        make_client().list_instances()
    err = caught.value
    assert (err.status, err.code, err.request_id) == (404, "ModelArts.6309", "rid-1")
    assert "Instance not found." in str(err) and "rid-1" in str(err)


@responses.activate
def test_429_waits_for_retry_after_before_the_next_request():
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

    responses.add_callback(responses.GET, URL, callback=answer)
    listing = make_client(clock, page_size=0).list_instances()
    assert [i.id for i in listing.instances] == ["a"]
    assert times[1] - times[0] >= 3 and clock.sleeps == [3.0]


@responses.activate
def test_429_with_retry_after_beyond_the_budget_fails_and_says_when():
    responses.get(URL, status=429, headers={"Retry-After": "120"}, json={"error_code": "APIG.0308"})
    with pytest.raises(ApiError) as caught:
        make_client(refresh_timeout=8).list_instances()
    assert caught.value.retry_after == 120 and len(responses.calls) == 1


@pytest.mark.parametrize("status", [401, 403])
@responses.activate
def test_auth_failures_are_never_retried(status):
    responses.get(
        URL,
        status=status,
        json={"error_code": "APIG.0301", "error_msg": "verify aksk signature fail"},
    )
    with pytest.raises(ApiError) as caught:
        make_client().list_instances()
    assert caught.value.is_auth and caught.value.code == "APIG.0301"
    assert len(responses.calls) == 1


@responses.activate
def test_a_5xx_is_retried_once():
    responses.get(URL, status=502, body=b"<html>Bad Gateway</html>")
    responses.get(URL, **page(1, "a"))
    assert len(make_client().list_instances().instances) == 1
    responses.calls.reset()
    responses.replace(responses.GET, URL, status=503, json={"message": "busy"})
    with pytest.raises(ApiError) as caught:
        make_client().list_instances()
    assert caught.value.status == 503 and len(responses.calls) == 2


@responses.activate
def test_the_refresh_timeout_bounds_a_slow_listing():
    clock = FakeClock()

    def slow(request):
        clock.now += 3.0  # each page takes three seconds
        offset = int(parse_qs(urlsplit(request.url).query)["offset"][0])
        return (200, {}, json.dumps(page(100, f"i{offset}", f"j{offset}")["json"]))

    responses.add_callback(responses.GET, URL, callback=slow)
    with pytest.raises(ApiError, match="refresh timeout"):
        make_client(clock, page_size=2, page_concurrency=1, refresh_timeout=8).list_instances()
    assert len(responses.calls) == 3  # 0 s, 3 s, 6 s; none started after 8 s


@responses.activate
def test_a_body_over_the_size_cap_is_refused():
    responses.get(URL, body=b" " * 5000 + json.dumps(page(1, "a")["json"]).encode())
    with pytest.raises(ApiError, match="larger than 1000 bytes"):
        make_client(max_response_bytes=1000).list_instances()


@responses.activate
def test_requests_are_counted_by_code():
    responses.get(URL, status=500, json={"message": "oops"})
    responses.get(URL, **page(1, "a"))
    client = make_client()
    client.list_instances()
    assert client.requests.snapshot() == {"500": 1, "200": 1}


@responses.activate
def test_a_malformed_body_is_an_api_error_and_bad_records_are_counted():
    responses.get(URL, body=b"<html>oops</html>")
    with pytest.raises(ApiError, match="malformed"):
        make_client().list_instances()
    responses.replace(
        responses.GET, URL, json={"instances": [{"id": "a", "status": "RUNNING"}, {"id": 1}]}
    )
    listing = make_client().list_instances()
    assert [i.id for i in listing.instances] == ["a"] and listing.invalid == 1


def test_proxy_and_ca_bundle_variables_are_read_once_as_requests_reads_them(monkeypatch):
    """requests would read them per request (Session.merge_environment_settings); the
    client reads them at construction for its one host, with the same precedence."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/corporate.pem")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = make_client()
    assert client.session.trust_env is False
    assert client.session.proxies.get("https") == "http://proxy.example:3128"
    assert client.session.verify == "/etc/ssl/corporate.pem"

    monkeypatch.setenv("NO_PROXY", ".myhuaweicloud.com")
    assert make_client().session.proxies == {}
    # An explicit CA file (--ca-file) wins over the environment, as in requests.
    auth = AkSkProvider(SecretStr("AK"), SecretStr("SK"))
    assert ModelArtsClient(BASE, PROJECT, auth, verify="/mine.pem").session.verify == "/mine.pem"


@responses.activate
def test_a_redirect_is_an_error_not_followed_with_the_signature():
    """An API gateway answers, it does not redirect; following one would send the signed
    request (and a token) wherever the Location points."""
    elsewhere = "https://elsewhere.example/v1/p1/demanager/instances"
    responses.get(URL, status=302, headers={"Location": elsewhere})
    responses.get(elsewhere, **page(1, "a"))
    with pytest.raises(ApiError) as caught:
        make_client().list_instances()
    assert caught.value.status == 302
    assert [c.request.url.split("?")[0] for c in responses.calls] == [URL]


def serve_by_offset(total: int, short_at: int, size: int = 2, failing_at: int | None = None):
    """Pages of `size` by offset: full before page `short_at`, one record on it, none
    after; the envelope claims `total`; page `failing_at` answers 403."""

    def answer(request):
        offset = int(parse_qs(urlsplit(request.url).query)["offset"][0])
        number = offset // size
        if number == failing_at:
            return 403, {}, json.dumps({"error_code": "ModelArts.0203", "error_msg": "no"})
        count = size if number < short_at else 1 if number == short_at else 0
        ids = [f"n{offset + k}" for k in range(count)]
        return 200, {}, json.dumps(page(total, *ids)["json"])

    responses.add_callback(responses.GET, URL, callback=answer)


@responses.activate
def test_a_wrong_total_costs_at_most_the_workers_in_flight():
    serve_by_offset(total=2000, short_at=3)
    listing = make_client(page_size=2, page_concurrency=4).list_instances()
    assert len(listing.instances) == 7  # pages 0-2 full, page 3 one record
    # Pages 0-3, and at most 3 more taken by the other workers before page 3 came back.
    assert 4 <= len(responses.calls) <= 7


@responses.activate
def test_a_page_that_fails_fails_the_listing():
    serve_by_offset(total=20, short_at=9, failing_at=5)
    with pytest.raises(ApiError) as caught:
        make_client(page_size=2, page_concurrency=4).list_instances()
    assert caught.value.status == 403
