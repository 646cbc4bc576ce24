"""A simulator with 84 notebooks in the newer API's default listing, and a client for it.

Requests are signed by the vendor's own signer (huaweicloudsdkcore `Signer`), never the
exporter's: the simulator is checked against the vendor, not against the code it tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

from exporter.simulator import DEMO_AK, DEMO_PROJECT_ID, DEMO_SK, Fleet, Simulator

# 73 historical notebooks, and 11 more that only the newer API lists, in workspace "0" and
# feature NOTEBOOK: the newer API's default listing holds 84.
FLEET_SIZE = 73
DEFAULT_LISTING = 84
SAME = object()  # x_project_id: the path's project


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(Fleet(size=FLEET_SIZE, seed=7, evolve=False)) as simulator:
        yield simulator


def call(
    sim: Simulator,
    api: str,
    params: dict[str, str] | None = None,
    *,
    project: str = DEMO_PROJECT_ID,
    x_project_id: object = SAME,
    sign_project_id: bool = True,
) -> tuple[int, Any]:
    """GET /v1/{project}/{api} (see `get`): status, JSON body."""
    response = get(
        sim,
        api,
        params,
        project=project,
        x_project_id=x_project_id,
        sign_project_id=sign_project_id,
    )
    return response.status_code, json.loads(response.content)


def get(
    sim: Simulator,
    api: str,
    params: dict[str, str] | None = None,
    *,
    project: str = DEMO_PROJECT_ID,
    x_project_id: object = SAME,
    sign_project_id: bool = True,
) -> requests.Response:
    """GET /v1/{project}/{api}, AK/SK-signed as the vendor's SDK signs.

    `x_project_id`: the header's value (SAME: the path's project; None: no header), signed
    unless `sign_project_id` is false (then it is added after signing).
    """
    header = project if x_project_id is SAME else x_project_id
    headers = {"Host": urlsplit(sim.url).netloc, "Content-Type": "application/json"}
    if header is not None and sign_project_id:
        headers["X-Project-Id"] = str(header)
    request = SdkRequest(
        method="GET",
        schema="http",
        host=sim.url,
        resource_path=f"/v1/{project}/{api}",
        query_params=sorted((params or {}).items()),
        header_params=headers,
        body="",
    )
    signed = Signer(BasicCredentials(ak=DEMO_AK, sk=DEMO_SK)).sign(request)
    sent = dict(signed.header_params)
    if header is not None and not sign_project_id:
        sent["X-Project-Id"] = str(header)
    return requests.get(f"{sim.url}{signed.uri}", headers=sent, timeout=10)


def listing(sim: Simulator, api: str, **params: str) -> list[dict[str, Any]]:
    """Every record of a newer-API list, in pages of 50 by record offset."""
    records: list[dict[str, Any]] = []
    while True:
        status, page = call(sim, api, {**params, "limit": "50", "offset": str(len(records))})
        assert status == 200, page
        records += page["data"]
        if len(page["data"]) < 50:
            return records
