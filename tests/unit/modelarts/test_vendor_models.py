"""The vendor's SDK as the oracle: every field the parsers read, every parameter the client
sends and every endpoint it resolves is one the vendor defines.

`huaweicloudsdkmodelarts` and `huaweicloudsdkcore` are test-only dependencies: their model
classes' `openapi_types` name the fields and their types; the runtime never imports them.
"""

from __future__ import annotations

from typing import Any, get_args, get_origin

import huaweicloudsdkcore.auth.endpoint as sdk_endpoint
import pytest
import requests
import responses
from huaweicloudsdkmodelarts.v1 import model as sdk
from pydantic import BaseModel, SecretStr

from exporter.config.command_line import load_settings
from exporter.modelarts import flavors, notebooks
from exporter.modelarts.auth.aksk import AkSkProvider
from exporter.modelarts.auth.ecs import EcsAgencyProvider
from exporter.modelarts.client import ListQuery, ModelArtsClient
from exporter.modelarts.endpoints import (
    DEFAULT_STS,
    GLOBAL_IAM,
    IAM_REGIONS,
    STS_REGIONS,
    iam_endpoint,
    sts_endpoint,
)


def sdk_class(name: str) -> type:
    return getattr(sdk, name)


def check_model(ours: type[BaseModel], theirs: str, path: str = "") -> list[str]:
    """Fields of our model the SDK model does not define, or defines as another kind."""
    cls = sdk_class(theirs)
    problems = []
    for name, field in ours.model_fields.items():
        where = f"{path}{theirs}.{name}"
        if name not in cls.attribute_map:
            problems.append(f"{where}: not a field of the SDK model")
            continue
        sdk_type = cls.openapi_types[name]
        inner = next((a for a in get_args(field.annotation) if isinstance(a, type)), None)
        target = field.annotation if isinstance(field.annotation, type) else inner
        if isinstance(target, type) and issubclass(target, BaseModel):
            problems += check_model(target, sdk_type, f"{where} → ")
        elif sdk_type in ("int", "float") and not _numeric(field.annotation):
            problems.append(f"{where}: SDK type {sdk_type}, ours {field.annotation}")
    return problems


def _numeric(annotation: Any) -> bool:
    text = str(annotation)
    return "float" in text or "int" in text


# The SDK model each of our record models reads (NotebookResp's sub-models by its types).
MODELS = [
    (notebooks.Notebook, "NotebookResp"),
    (flavors.NotebookFlavor, "NotebookFlavor"),
]


@pytest.mark.parametrize(("ours", "theirs"), MODELS, ids=[t for _, t in MODELS])
def test_every_field_read_is_defined_by_the_vendor(ours, theirs):
    assert check_model(ours, theirs) == []


def test_the_check_catches_a_field_the_vendor_does_not_define():
    class Guess(BaseModel):
        create_at: float | None = None  # NotebookResp has no top-level creation time

    assert check_model(Guess, "NotebookResp") == [
        "NotebookResp.create_at: not a field of the SDK model"
    ]
    assert get_origin(list[int]) is list  # typing helpers behave as the check assumes


def test_lease_times_are_ms_and_duration_counts_from_create_at():
    docs = {
        name: getattr(sdk.Lease, name).__doc__ or "" for name in ("create_at", "duration", "type")
    }
    assert "UTC毫秒" in docs["create_at"]  # UTC milliseconds
    assert "以创建时间为起点" in docs["duration"]  # counted from the creation time
    assert "TIMING" in docs["type"] and "IDLE" in docs["type"]
    assert "毫秒" in (sdk.LeaseReq.duration.__doc__ or "")  # milliseconds


@pytest.mark.parametrize("show_self", [False, True])
def test_every_parameter_sent_is_the_sdks(canned, show_self):
    canned.get("/v1/p1/notebooks/flavors", json={"data": []})
    for path in ("notebooks", "notebooks/all"):
        canned.get(f"/v1/p1/{path}", json={"data": [], "total": 0})
    query = ListQuery(show_self=show_self, pool_id="pool-1", workspace_id="ws-1")
    auth = AkSkProvider(SecretStr("AK"), SecretStr("SK"))
    ModelArtsClient(canned.url, "p1", auth, api="notebooks", query=query).list_instances()
    request_class = {
        "/v1/p1/notebooks": "ListNotebooksRequest",
        "/v1/p1/notebooks/all": "ListAllNotebooksRequest",
        "/v1/p1/notebooks/flavors": "ListFlavorsRequest",
    }
    seen = set()
    for request in canned.requests:
        allowed = set(sdk_class(request_class[request.path]).attribute_map.values())
        assert set(request.query) <= allowed, request.path
        seen.add(request.path)
        if "limit" in request.query:  # SDK ListNotebooksRequest.limit: [10,20,50]
            assert request.query["limit"] == ["50"]
    expected = "/v1/p1/notebooks" if show_self else "/v1/p1/notebooks/all"
    assert seen == {expected, "/v1/p1/notebooks/flavors"}


# -- endpoints and signing ---------------------------------------------------------------


def test_the_iam_table_is_the_sdks():
    table = sdk_endpoint.__dict__["__IAM_ENDPOINT_DICT"]
    assert set(table) == IAM_REGIONS
    assert all(iam_endpoint(region) == url for region, url in table.items())
    assert iam_endpoint("cn-north-11") == GLOBAL_IAM == "https://iam.myhuaweicloud.com"


def test_the_sts_table_is_the_sdks():
    from huaweicloudsdkcore.auth.internal import StsHelper

    table = sdk_endpoint.__dict__["__STS_ENDPOINT_DICT"]
    assert set(table) == STS_REGIONS
    assert all(sts_endpoint(region) == url for region, url in table.items())
    assert sts_endpoint("cn-north-11") == DEFAULT_STS == StsHelper.DEFAULT_STS_ENDPOINT


def test_the_sts_endpoint_follows_the_sdks_order(monkeypatch):
    for name in ("MODELARTS_EXPORTER_STS_ENDPOINT", "HUAWEICLOUD_SDK_STS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)

    def resolved(region: str) -> str:
        return load_settings({"demo": True, "region": region}).sts_base_url

    assert resolved("cn-east-3") == "https://sts.cn-east-3.myhuaweicloud.com"
    assert resolved("cn-north-11") == DEFAULT_STS
    monkeypatch.setenv("HUAWEICLOUD_SDK_STS_ENDPOINT", "https://sts.example.test")
    assert resolved("cn-east-3") == "https://sts.example.test"  # the SDK's (StsHelper)
    monkeypatch.setenv("MODELARTS_EXPORTER_STS_ENDPOINT", "https://sts.ours.test")
    assert resolved("cn-east-3") == "https://sts.ours.test"


def test_the_iam_endpoint_follows_the_sdks_order(monkeypatch):
    for name in ("MODELARTS_EXPORTER_IAM_ENDPOINT", "HUAWEICLOUD_SDK_IAM_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)

    def resolved() -> str:
        return load_settings({"demo": True, "region": "cn-north-11"}).iam_base_url

    assert resolved() == GLOBAL_IAM  # a region the SDK's table lacks
    monkeypatch.setenv("HUAWEICLOUD_SDK_IAM_ENDPOINT", "https://iam.example.test")
    assert resolved() == "https://iam.example.test"  # the SDK's variable (IamHelper)
    monkeypatch.setenv("MODELARTS_EXPORTER_IAM_ENDPOINT", "https://iam.ours.test")
    assert resolved() == "https://iam.ours.test"  # ours, named in the contract, first


def test_aksk_requests_carry_a_signed_x_project_id(canned):
    # SDK BasicCredentials.sign_request adds X-Project-Id to every request, then signs.
    canned.get("/v1/p1/demanager/instances", json={"instances": []})
    auth = AkSkProvider(SecretStr("AK"), SecretStr("SK"), project_id="p1")
    ModelArtsClient(canned.url, "p1", auth, api="demanager").list_instances()
    headers = canned.requests[0].headers
    assert headers["X-Project-Id"] == "p1"
    signed = headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert "x-project-id" in signed


@responses.activate
def test_temporary_keys_sign_x_project_id_and_the_security_token(canned):
    metadata = "http://127.0.0.1:1/openstack/latest/securitykey"  # mocked, never contacted
    credential = {
        "access": "TMPAK",
        "secret": "tmp-secret",
        "securitytoken": "tmp-token",
        "expires_at": "2099-01-01T00:00:00.000000Z",
    }
    responses.get(metadata, json={"credential": credential})  # the provider's own session
    canned.get("/v1/p1/demanager/instances", json={"instances": []})
    auth = EcsAgencyProvider(
        metadata, session=requests.Session(), clock=lambda: 1_800_000_000.0, project_id="p1"
    )
    ModelArtsClient(canned.url, "p1", auth, api="demanager").list_instances()
    headers = canned.requests[-1].headers
    signed = headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"x-project-id", "x-security-token"} <= set(signed)
    assert headers["X-Project-Id"] == "p1"
