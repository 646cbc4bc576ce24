"""`SDK-HMAC-SHA256` signing: the published test vectors, a cross-check against the
vendor's own signer, the `requests` auth class, and a round trip through the simulator's
verifier."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, urlencode, urlsplit

import pytest
import requests
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from exporter.modelarts.auth.signer import AkSkAuth, canonical_query, canonical_uri, sign
from exporter.simulator import Fleet, Simulator
from exporter.simulator.api import DEMO_AK, DEMO_PROJECT_ID, DEMO_SK

ANY_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc)  # ignored when X-Sdk-Date is given
_AUTH = re.compile(
    r"SDK-HMAC-SHA256 Access=(?P<ak>[^,]+), SignedHeaders=(?P<signed>[^,]+), "
    r"Signature=(?P<sig>[0-9a-f]{64})"
)


def parse_authorization(value: str) -> dict[str, str]:
    match = _AUTH.fullmatch(value)
    assert match, value
    return match.groupdict()


# -- 1. the published test vectors ------------------------------------------------------

VECTOR_A = dict(
    method="GET",
    url=(
        "https://service.region.example.com/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs"
        "?limit=2&marker=13551d6b-755d-4757-b956-536f674975c0"
    ),
    headers={
        "Content-Type": "application/json",
        "Host": "service.region.example.com",
        "X-Sdk-Date": "20191115T033655Z",
    },
    body=b"",
    ak="QTWAOYTTINDUT2QVKYUC",
    sk="MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc",
)
_B_URL = "https://service.endpoint.myhuaweicloud.com/resources?size=1"
_B_HEADERS = {"X-Sdk-Date": "20200608T023900Z"}
VECTOR_B = dict(
    method="GET", url=_B_URL, headers=_B_HEADERS, body=b"", ak="AccessKey", sk="SecretKey"
)
VECTOR_C = dict(
    method="POST",
    url=_B_URL,
    headers=_B_HEADERS,
    body=b'{"name":"test","id":1}',
    ak="AccessKey",
    sk="SecretKey",
)


@pytest.mark.parametrize(
    ("vector", "signed_headers", "canonical_sha256", "expected"),
    [
        pytest.param(
            VECTOR_A,
            "content-type;host;x-sdk-date",
            "b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a",
            "7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe",
            id="A-vpcs-get",
        ),
        pytest.param(
            VECTOR_B,
            "host;x-sdk-date",
            None,
            "cfb4171acec81de07d50e53d57eb77edd537414d66ddb1d7d780f128e12cd842",
            id="B-get-empty-body",
        ),
        pytest.param(
            VECTOR_C,
            "host;x-sdk-date",
            None,
            "436b1ac0a1ae03705934bb70ef2f2e09f7bfed2117d731a38235053199323a1f",
            id="C-post-json-body",
        ),
    ],
)
def test_published_vectors(
    vector: dict, signed_headers: str, canonical_sha256: str | None, expected: str
) -> None:
    signed = sign(now=ANY_TIME, **vector)
    auth = parse_authorization(signed.headers["Authorization"])
    assert auth == {"ak": vector["ak"], "signed": signed_headers, "sig": expected}
    if canonical_sha256 is not None:
        assert hashlib.sha256(signed.canonical.encode()).hexdigest() == canonical_sha256
    # the caller's headers are kept as given; Host is filled in from the URL when absent
    host = urlsplit(vector["url"]).netloc
    assert signed.headers["Host" if "Host" in signed.headers else "host"] == host
    assert signed.headers["X-Sdk-Date"] == vector["headers"]["X-Sdk-Date"]


def test_vector_a_canonical_request_text() -> None:
    signed = sign(now=ANY_TIME, **VECTOR_A)
    assert signed.canonical == (
        "GET\n"
        "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs/\n"
        "limit=2&marker=13551d6b-755d-4757-b956-536f674975c0\n"
        "content-type:application/json\n"
        "host:service.region.example.com\n"
        "x-sdk-date:20191115T033655Z\n"
        "\n"
        "content-type;host;x-sdk-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert signed.url == VECTOR_A["url"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("", "/"),
        ("/", "/"),
        ("/v1/p/x", "/v1/p/x/"),
        ("/v1/p/x/", "/v1/p/x/"),
        ("/a b/c+d/~e=f", "/a%20b/c%2Bd/~e%3Df/"),
        ("/a%20b/%7Ee", "/a%20b/~e/"),  # decoded first, then re-encoded canonically
        ("/caf%C3%A9/日本", "/caf%C3%A9/%E6%97%A5%E6%9C%AC/"),
        ("/A-Za_z0.9~", "/A-Za_z0.9~/"),
    ],
)
def test_canonical_uri(path: str, expected: str) -> None:
    assert canonical_uri(path) == expected


def test_canonical_query_sorts_by_key_then_value_and_encodes() -> None:
    pairs = [("b", "2"), ("a", "z y"), ("a", "x/y"), ("c", ""), ("é", "&=")]
    assert canonical_query(pairs) == "a=x%2Fy&a=z%20y&b=2&c=&%C3%A9=%26%3D"


# -- 2. cross-check against the vendor's reference signer -------------------------------

HOST = "svc.region.example.com"
SDK_DATE = "20240501T120000Z"

_segment_chars = st.one_of(
    st.sampled_from(list(" %+~=&?#;:@!$'()*,/-._")),
    st.characters(codec="utf-8", exclude_categories=("Cs",)),
)
segments = st.text(_segment_chars, min_size=0, max_size=8)
# a raw (unencoded) path as a careless caller might write it: no `?`/`#`, no controls
_raw_chars = st.one_of(
    st.sampled_from(list(" %+~=&;:@!$'()*,-._")),
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="?#/"),
)
raw_segments = st.text(_raw_chars, min_size=0, max_size=8)

_query_chars = st.one_of(
    st.sampled_from(list(" /&=+%?#~;,")),
    st.characters(codec="utf-8", exclude_categories=("Cs",)),
)
query_text = st.text(_query_chars, max_size=8)
# a small pool of keys as well, so that repeated keys occur often
query_keys = st.one_of(st.sampled_from(["limit", "offset", "name", "a b", "é"]), query_text)
query_pairs = st.lists(st.tuples(query_keys, query_text), max_size=6)

json_bodies = st.one_of(
    st.just(""),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=6,
    ).map(lambda value: json.dumps(value, ensure_ascii=False)),
)
keys = st.text(
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
    min_size=1,
    max_size=40,
)


@st.composite
def requests_to_sign(draw: st.DrawFn, raw_path: bool = False) -> dict:
    method = draw(st.sampled_from(["GET", "POST", "DELETE", "PUT"]))
    if raw_path:
        path = "/" + "/".join(draw(st.lists(raw_segments, min_size=1, max_size=4)))
    else:
        parts = draw(st.lists(segments, min_size=1, max_size=4))
        path = "/" + "/".join(quote(part, safe="") for part in parts)
    headers = {"Host": HOST, "X-Sdk-Date": SDK_DATE}
    if draw(st.booleans()):
        headers["Content-Type"] = draw(
            st.sampled_from(["application/json", "application/json;charset=UTF-8"])
        )
    if draw(st.booleans()):
        name = draw(st.sampled_from(["X-Project-Id", "x-project-id", "X-Domain-Id"]))
        headers[name] = draw(st.sampled_from(["  0a1b2c  ", "p1", "with inner  space"]))
    return {
        "method": method,
        "path": path,
        "query": draw(query_pairs),
        "headers": headers,
        "body": draw(json_bodies),
        "ak": draw(keys),
        "sk": draw(keys),
        "token": draw(st.none() | keys),
    }


def vendor_authorization(req: dict) -> str:
    headers = dict(req["headers"])
    if req["token"] is not None:  # what BasicCredentials.sign_request does for temporary keys
        headers["X-Security-Token"] = req["token"]
    request = SdkRequest(
        method=req["method"],
        schema="https",
        host=HOST,
        resource_path=req["path"],
        query_params=list(req["query"]),
        header_params=headers,
        body=req["body"],
    )
    signed = Signer(BasicCredentials(ak=req["ak"], sk=req["sk"])).sign(request)
    return signed.header_params["Authorization"]


def our_signing(req: dict):
    query = urlencode(req["query"], quote_via=quote)
    url = f"https://{HOST}{req['path']}" + (f"?{query}" if query else "")
    return sign(
        req["method"],
        url,
        req["headers"],
        req["body"].encode("utf-8"),
        req["ak"],
        req["sk"],
        ANY_TIME,
        req["token"],
    )


@settings(max_examples=400, deadline=None)
@given(requests_to_sign())
def test_matches_vendor_signer(req: dict) -> None:
    ours = our_signing(req)
    assert ours.headers["Authorization"] == vendor_authorization(req)


@settings(max_examples=300, deadline=None)
@given(requests_to_sign(raw_path=True))
def test_matches_vendor_signer_on_unencoded_paths(req: dict) -> None:
    """A path given as typed (spaces, unicode, stray `%`): both decode, then encode."""
    ours = our_signing(req)
    assert ours.headers["Authorization"] == vendor_authorization(req)


@settings(max_examples=100, deadline=None)
@given(requests_to_sign())
def test_sent_query_is_the_vendors_canonical_query(req: dict) -> None:
    """The URL we send carries exactly the query the vendor would send (and signs)."""
    request = SdkRequest(resource_path=req["path"], query_params=list(req["query"]))
    Signer.process_request_uri(request)
    sent = urlsplit(our_signing(req).url)
    assert sent.path + (f"?{sent.query}" if sent.query else "") == request.uri


# -- 3. AkSkAuth on real requests ---------------------------------------------------------

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
BASE = "https://modelarts.cn-north-4.myhuaweicloud.com"
LIST_PATH = f"/v1/{DEMO_PROJECT_ID}/demanager/instances"


def prepare(
    auth: AkSkAuth, method: str = "GET", base: str = BASE, **kwargs
) -> requests.PreparedRequest:
    """Prepared the way a Session does it, with User-Agent, Accept and friends."""
    with requests.Session() as session:
        return session.prepare_request(
            requests.Request(method, base + LIST_PATH, auth=auth, **kwargs)
        )


def test_auth_adds_date_host_and_authorization() -> None:
    auth = AkSkAuth(ak=SecretStr("AK1"), sk=SecretStr("SK1"), clock=lambda: NOW)
    prepared = prepare(auth, params={"de_type": "Notebook", "limit": "50"})
    assert prepared.headers["X-Sdk-Date"] == "20240501T120000Z"
    assert prepared.headers["Host"] == "modelarts.cn-north-4.myhuaweicloud.com"
    parsed = parse_authorization(prepared.headers["Authorization"])
    assert parsed["ak"] == "AK1"
    # transport headers (User-Agent, Accept, Accept-Encoding, Connection) are not signed
    assert {"User-Agent", "Accept", "Accept-Encoding", "Connection"} <= set(prepared.headers)
    assert parsed["signed"] == "host;x-sdk-date"
    expected = sign(
        "GET",
        f"{BASE}{LIST_PATH}?de_type=Notebook&limit=50",
        {},
        b"",
        "AK1",
        "SK1",
        NOW,
    )
    assert prepared.headers["Authorization"] == expected.headers["Authorization"]


def test_auth_converts_the_clock_to_utc() -> None:
    beijing = timezone(timedelta(hours=8))
    auth = AkSkAuth(
        ak=SecretStr("AK1"),
        sk=SecretStr("SK1"),
        clock=lambda: datetime(2024, 5, 1, 20, 0, 0, tzinfo=beijing),
    )
    assert prepare(auth).headers["X-Sdk-Date"] == "20240501T120000Z"


def test_auth_signs_a_json_body_but_not_its_length() -> None:
    auth = AkSkAuth(ak=SecretStr("AK1"), sk=SecretStr("SK1"), clock=lambda: NOW)
    prepared = prepare(auth, method="POST", json={"name": "test", "id": 1})
    assert "Content-Length" in prepared.headers
    assert parse_authorization(prepared.headers["Authorization"])["signed"] == (
        "content-type;host;x-sdk-date"
    )
    body = prepared.body if isinstance(prepared.body, bytes) else prepared.body.encode()
    expected = sign(
        "POST",
        BASE + LIST_PATH,
        {"Content-Type": "application/json"},
        body,
        "AK1",
        "SK1",
        NOW,
    )
    assert prepared.headers["Authorization"] == expected.headers["Authorization"]


def test_auth_with_temporary_credentials_signs_the_security_token() -> None:
    auth = AkSkAuth(
        ak=SecretStr("TEMPAK"),
        sk=SecretStr("TEMPSK"),
        security_token=SecretStr("sts-token-value"),
        clock=lambda: NOW,
    )
    prepared = prepare(auth)
    assert prepared.headers["X-Security-Token"] == "sts-token-value"
    signed = parse_authorization(prepared.headers["Authorization"])["signed"].split(";")
    assert "x-security-token" in signed
    assert signed == sorted(signed)


def test_auth_rewrites_the_query_to_the_canonical_form() -> None:
    auth = AkSkAuth(ak=SecretStr("AK1"), sk=SecretStr("SK1"), clock=lambda: NOW)
    prepared = prepare(
        auth, params=[("sortby", "name"), ("name", "my notebook"), ("de_type", "Notebook")]
    )
    assert prepared.url is not None
    query = urlsplit(prepared.url).query
    assert query == "de_type=Notebook&name=my%20notebook&sortby=name"
    assert urlsplit(prepared.url).path == LIST_PATH


def test_auth_repr_hides_the_secrets() -> None:
    auth = AkSkAuth(
        ak=SecretStr("VISIBLEAKVALUE000001"),
        sk=SecretStr("the-secret-key-value"),
        security_token=SecretStr("the-security-token-value"),
        clock=lambda: NOW,
    )
    for text in (repr(auth), str(auth), f"{auth}", f"{auth!r}"):
        assert "the-secret-key-value" not in text
        assert "the-security-token-value" not in text
        assert "VISIBLEAKVALUE000001" not in text
        assert "**********" in text
    assert repr(auth) == "AkSkAuth(ak=SecretStr('**********'), temporary=True)"


# -- 4. round trip through the simulator's verifier --------------------------------------

SIM_NOW = NOW.timestamp()
SIM_BASE = "http://127.0.0.1:8443"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """Constructed for `authenticate` only: its socket is bound but never served."""
    simulator = Simulator(Fleet(size=1, seed=7, clock=lambda: SIM_NOW), clock=lambda: SIM_NOW)
    try:
        yield simulator
    finally:
        simulator._server.server_close()


@pytest.fixture
def temp_sim() -> Iterator[Simulator]:
    simulator = Simulator(
        Fleet(size=1, seed=7, clock=lambda: SIM_NOW),
        ak="TEMPAK",
        sk="TEMPSK",
        security_token="sts-token-value",
        clock=lambda: SIM_NOW,
    )
    try:
        yield simulator
    finally:
        simulator._server.server_close()


def demo_auth(
    ak: str = DEMO_AK,
    sk: str = DEMO_SK,
    token: str | None = None,
    at: datetime = NOW,
) -> AkSkAuth:
    return AkSkAuth(
        ak=SecretStr(ak),
        sk=SecretStr(sk),
        security_token=SecretStr(token) if token is not None else None,
        clock=lambda: at,
    )


def as_received(prepared: requests.PreparedRequest) -> tuple[str, str, dict[str, str], bytes]:
    """What the simulator's handler passes to `authenticate`: method, raw path, headers, body."""
    assert prepared.url is not None and prepared.method is not None
    parts = urlsplit(prepared.url)
    raw_path = parts.path + (f"?{parts.query}" if parts.query else "")
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    return prepared.method, raw_path, dict(prepared.headers), body


LIST_PARAMS = {"de_type": "Notebook", "limit": "50", "offset": "0", "name": "my nb/ü"}


def test_simulator_accepts_a_request_signed_by_the_auth(sim: Simulator) -> None:
    prepared = prepare(demo_auth(), base=SIM_BASE, params=LIST_PARAMS)
    assert sim.authenticate(*as_received(prepared)) is None


def test_simulator_accepts_a_signed_body(sim: Simulator) -> None:
    prepared = prepare(demo_auth(), method="POST", base=SIM_BASE, json={"name": "ü x"})
    assert sim.authenticate(*as_received(prepared)) is None


@pytest.mark.parametrize("skew", [timedelta(minutes=-14), timedelta(minutes=14)])
def test_simulator_accepts_a_date_within_the_allowed_skew(sim: Simulator, skew: timedelta) -> None:
    prepared = prepare(demo_auth(at=NOW + skew), base=SIM_BASE, params=LIST_PARAMS)
    assert sim.authenticate(*as_received(prepared)) is None


def test_simulator_accepts_temporary_credentials(temp_sim: Simulator) -> None:
    auth = demo_auth(ak="TEMPAK", sk="TEMPSK", token="sts-token-value")
    prepared = prepare(auth, base=SIM_BASE, params=LIST_PARAMS)
    assert temp_sim.authenticate(*as_received(prepared)) is None


def _rejected(problem: tuple[int, str, str] | None, reason: str) -> None:
    assert problem is not None
    status, code, message = problem
    assert (status, code) == (401, "APIG.0301")
    assert reason in message


def test_simulator_rejects_a_tampered_signature(sim: Simulator) -> None:
    method, path, headers, body = as_received(
        prepare(demo_auth(), base=SIM_BASE, params=LIST_PARAMS)
    )
    sig = parse_authorization(headers["Authorization"])["sig"]
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    headers["Authorization"] = headers["Authorization"].replace(sig, flipped)
    _rejected(sim.authenticate(method, path, headers, body), "signature fail")


def test_simulator_rejects_a_tampered_query(sim: Simulator) -> None:
    method, path, headers, body = as_received(
        prepare(demo_auth(), base=SIM_BASE, params=LIST_PARAMS)
    )
    assert "limit=50" in path
    tampered = path.replace("limit=50", "limit=51")
    _rejected(sim.authenticate(method, tampered, headers, body), "signature fail")


def test_simulator_rejects_a_tampered_body(sim: Simulator) -> None:
    method, path, headers, body = as_received(
        prepare(demo_auth(), method="POST", base=SIM_BASE, json={"id": 1})
    )
    _rejected(sim.authenticate(method, path, headers, body + b" "), "signature fail")


def test_simulator_rejects_a_tampered_signed_header(sim: Simulator) -> None:
    method, path, headers, body = as_received(
        prepare(demo_auth(), base=SIM_BASE, params=LIST_PARAMS)
    )
    headers["Host"] = "127.0.0.1:9999"
    _rejected(sim.authenticate(method, path, headers, body), "signature fail")


@pytest.mark.parametrize("skew", [timedelta(minutes=-16), timedelta(minutes=16)])
def test_simulator_rejects_a_date_16_minutes_off(sim: Simulator, skew: timedelta) -> None:
    prepared = prepare(demo_auth(at=NOW + skew), base=SIM_BASE, params=LIST_PARAMS)
    _rejected(sim.authenticate(*as_received(prepared)), "expired")


def test_simulator_rejects_an_unknown_ak(sim: Simulator) -> None:
    prepared = prepare(demo_auth(ak="UNKNOWNAK00000000000"), base=SIM_BASE, params=LIST_PARAMS)
    _rejected(sim.authenticate(*as_received(prepared)), "ak not exist")


def test_simulator_rejects_the_right_ak_with_a_wrong_sk(sim: Simulator) -> None:
    prepared = prepare(demo_auth(sk="not-the-demo-secret"), base=SIM_BASE, params=LIST_PARAMS)
    _rejected(sim.authenticate(*as_received(prepared)), "signature fail")


def test_simulator_rejects_a_wrong_security_token(temp_sim: Simulator) -> None:
    auth = demo_auth(ak="TEMPAK", sk="TEMPSK", token="some-other-token")
    prepared = prepare(auth, base=SIM_BASE, params=LIST_PARAMS)
    _rejected(temp_sim.authenticate(*as_received(prepared)), "security token")


def test_simulator_rejects_a_missing_authorization(sim: Simulator) -> None:
    method, path, headers, body = as_received(
        prepare(demo_auth(), base=SIM_BASE, params=LIST_PARAMS)
    )
    del headers["Authorization"]
    _rejected(sim.authenticate(method, path, headers, body), "Authorization header missing")
