"""The project id of a region, looked up in IAM as the vendor SDK does when none is given
(huaweicloudsdkcore.auth.credentials.BasicCredentials.process_auth_params):
`GET {iam}/v3/projects?name=<region>`, signed with the credentials (AK/SK or a token).
"""

from __future__ import annotations

from typing import Any

import requests

from exporter.modelarts.auth.provider import json_body, refusal
from exporter.modelarts.errors import CredentialError

PROJECTS_PATH = "/v3/projects"


class ProjectNotFound(LookupError):
    """The region has no (single) project for these credentials; `str()` is one line."""


def lookup_project_id(
    iam_url: str,
    region: str,
    auth: requests.auth.AuthBase,
    *,
    session: requests.Session | None = None,
    timeout: float = 5.0,
) -> str:
    """The id of the project named after the region. ProjectNotFound when there is none
    or several; CredentialError when IAM cannot be asked or refuses."""
    session = session or requests.Session()
    url = iam_url.rstrip("/") + PROJECTS_PATH
    try:
        response = session.get(url, params={"name": region}, auth=auth, timeout=timeout)
    except requests.RequestException as err:
        raise CredentialError(
            f"IAM (projects) unreachable: {type(err).__name__}", code="auth_unreachable"
        ) from None
    if response.status_code >= 400:
        raise refusal("IAM (projects)", response)
    doc: Any = json_body(response, "IAM (projects)")
    projects = doc.get("projects") if isinstance(doc, dict) else None
    ids = [str(p["id"]) for p in projects or [] if isinstance(p, dict) and p.get("id")]
    trace = response.headers.get("X-IAM-Trace-Id") or response.headers.get("X-Request-Id", "")
    where = f" (request_id={trace})" if trace else ""
    if not ids:
        raise ProjectNotFound(
            f"region {region} has no project these credentials can see{where}: "
            "check the region, or set the project id (--project-id / HUAWEICLOUD_SDK_PROJECT_ID)"
        )
    if len(ids) > 1:
        raise ProjectNotFound(
            f"region {region} has several projects ({', '.join(ids)}){where}: "
            "set the project id (--project-id / HUAWEICLOUD_SDK_PROJECT_ID)"
        )
    return ids[0]
