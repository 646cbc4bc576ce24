"""Where a region's services answer, resolved as the vendor's SDK resolves them."""

from __future__ import annotations

GLOBAL_IAM = "https://iam.myhuaweicloud.com"
# Regions with a regional IAM host: the vendor SDK's table (huaweicloudsdkcore.auth.endpoint;
# tests/unit/modelarts/test_vendor_models.py compares the two). Others use the global host.
IAM_REGIONS = frozenset(
    {
        "ae-ad-1",
        "af-south-1",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "cn-east-2",
        "cn-east-3",
        "cn-east-4",
        "cn-east-5",
        "cn-north-1",
        "cn-north-12",
        "cn-north-2",
        "cn-north-4",
        "cn-north-9",
        "cn-south-1",
        "cn-south-2",
        "cn-southwest-2",
        "eu-west-0",
        "la-north-2",
        "la-south-2",
        "me-east-1",
        "my-kualalumpur-1",
        "na-mexico-1",
        "ru-moscow-1",
        "sa-brazil-1",
        "tr-west-1",
    }
)


DEFAULT_STS = "https://sts.cn-north-4.myhuaweicloud.com"
# Regions with an STS host: the vendor SDK's table (huaweicloudsdkcore.auth.endpoint,
# `__STS_ENDPOINT_DICT`; compared in tests/unit/modelarts/test_vendor_models.py). Others
# use the SDK's default (StsHelper.DEFAULT_STS_ENDPOINT): STS answers in any region.
STS_REGIONS = frozenset(
    {
        "af-south-1",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "cn-east-3",
        "cn-north-4",
        "cn-south-1",
        "cn-southwest-2",
        "la-south-2",
        "sa-brazil-1",
        "tr-west-1",
    }
)


def iam_endpoint(region: str) -> str:
    """The region's IAM host where it has one, else the global one (SDK IamHelper)."""
    return f"https://iam.{region}.myhuaweicloud.com" if region in IAM_REGIONS else GLOBAL_IAM


def sts_endpoint(region: str) -> str:
    """The region's STS host where it has one, else cn-north-4's (SDK StsHelper)."""
    return f"https://sts.{region}.myhuaweicloud.com" if region in STS_REGIONS else DEFAULT_STS


def modelarts_endpoint(region: str) -> str:
    """The vendor SDK's ModelArts host: `.myhuaweicloud.cn` for ap-southeast-1 only."""
    domain = "myhuaweicloud.cn" if region == "ap-southeast-1" else "myhuaweicloud.com"
    return f"https://modelarts.{region}.{domain}"
