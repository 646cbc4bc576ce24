"""The JSON each API returns: a notebook in either API, and a flavor.

Every shape follows the vendor. The historical record carries every field of the vendor's
example list (tests/fixtures/list-instances.json, from the API reference "Querying
Development Environment Instances", modelarts_03_0111); the newer API's record only fields
of the SDK's `NotebookResp` (huaweicloudsdkmodelarts.v1.model), with every field of its
example (tests/fixtures/notebooks-v2-list.json); the flavor only fields of `NotebookFlavor`.
"""

from __future__ import annotations

import uuid
from typing import Any

from exporter.simulator.catalog import (
    CUSTOM_FLAVOR,
    DOMAIN,
    ERRORS,
    POOLS,
    V2_ERRORS,
    V2_STATUS,
    Flavor,
    Notebook,
)

TARGET_DOMAIN = "https://modelarts-notebook.cn-north-4.myhuaweicloud.com"
WORK_DIR = "/home/ma-user/work"


def ms(seconds: float) -> int:
    return int(seconds * 1000)


def user_id(name: str) -> str:
    """32 lowercase hex digits, as the SDK describes `owner`."""
    return uuid.uuid5(uuid.NAMESPACE_DNS, name).hex


def demanager_record(
    nb: Notebook, now: float, queue_rank: int | None, queue_length: int
) -> dict[str, Any]:
    """The instance as `GET /v1/{project_id}/demanager/instances` returns it."""
    flavor = nb.flavor
    error = ERRORS.get(nb.status)
    record: dict[str, Any] = {
        "ai_project": {"id": "default-ai-project"},
        "creation_timestamp": str(ms(nb.created)),
        "description": "",
        "flavor": flavor.name,
        "flavor_details": _flavor_details(flavor, queue_length),
        "id": nb.id,
        "latest_update_timestamp": str(ms(nb.updated)),
        "name": nb.name,
        "profile": _profile(nb),
        "spec": {
            "annotations": {
                "target_domain": TARGET_DOMAIN,
                "url": (
                    f"{TARGET_DOMAIN}:32000/modelarts/hubv100/notebook/user/{nb.id}"
                    if nb.status == "RUNNING"
                    else ""
                ),
            },
            "auto_stop": _auto_stop(nb, now),
            "extend_params": None,
            "failed_reasons": {"code": error[0], "message": error[1]} if error else None,
            "repository": None,
            "extend_storage": None,
            "storage": {
                "location": {"path": WORK_DIR, "volume_size": nb.volume_gb, "volume_unit": "GB"},
                "type": "evs",
            },
        },
        "status": nb.status,
        "user": {"id": user_id(nb.user), "name": nb.user},
        "workspace": {"id": nb.workspace},
    }
    if flavor.pool:
        record["pool"] = {"id": flavor.pool, "name": POOLS[flavor.pool], "type": "USER_DEFINED"}
    if error:
        record["error_code"] = error[0]
    if nb.status in ("CREATE_QUEUING", "START_QUEUING") and queue_rank is not None:
        record["queuing_info"] = {
            "id": nb.id,
            "name": nb.name,
            "de_type": "Notebook",
            "flavor": flavor.name,
            "status": nb.status,
            "begin_timestamp": ms(nb.queue_begin or now),
            "end_timestamp": ms(nb.queue_end or now),
            "remain_time": max(0, int((nb.queue_end or now) - now)),
            "rank": queue_rank,
        }
    return record


def _flavor_details(flavor: Flavor, queue_length: int) -> dict[str, Any]:
    # The example gives CPU, GPU, gpu_type, memory ("64GiB"); an Ascend flavor counts NPUs
    # instead of GPUs.
    params: dict[str, Any] = {"CPU": flavor.cpu}
    if flavor.type == "ASCEND":
        params["NPU"] = flavor.cards
        params["npu_type"] = flavor.accelerator
    else:
        params["GPU"] = flavor.cards
        if flavor.cards:
            params["gpu_type"] = flavor.accelerator
    params["memory"] = f"{flavor.memory}GiB"
    details: dict[str, Any] = {
        "name": flavor.name,
        "params": params,
        "status": "soldOut" if flavor.sold_out else "onSale",
        "type": flavor.type,
        "promo_type": "Free" if flavor.free else "NoDiscount",
    }
    if flavor.free and flavor.sold_out:
        details["queuing_num"] = queue_length
        details["queue_left_time"] = 180 * queue_length
    return details


def _profile(nb: Notebook) -> dict[str, Any]:
    image = nb.image
    return {
        "de_type": "Notebook",
        "description": image.about,
        "flavor_type": nb.flavor.profile_type,
        "id": image.profile or image.name,
        "name": image.profile or image.name,
        "provision": {
            "annotations": {"category": image.category or image.name, "type": "system"},
            "spec": {
                "engine": "CCE",
                "params": {
                    "annotations": None,
                    "image_name": image.name,
                    "image_tag": image.tag,
                    "namespace": image.namespace,
                },
            },
            "type": "Docker",
        },
    }


def _auto_stop(nb: Notebook, now: float) -> dict[str, Any]:
    auto_stop: dict[str, Any] = {"duration": nb.duration, "enable": nb.auto_stop, "prompt": True}
    if nb.status == "RUNNING" and nb.auto_stop and nb.stop_at is not None:
        auto_stop["remain_time"] = max(0, int(nb.stop_at - now))
        if not nb.relative_only:
            auto_stop["stop_timestamp"] = ms(nb.stop_at)
    return auto_stop


def notebook_record(nb: Notebook) -> dict[str, Any]:
    """The notebook as `GET /v1/{project_id}/notebooks[/all]` returns it: SDK NotebookResp.

    No top-level times: NotebookResp has none; they are the lease's, in UTC ms.
    """
    status = V2_STATUS.get(nb.status, nb.status)
    image: dict[str, Any] = {
        "id": nb.image.id,
        "name": nb.image.name,
        "swr_path": nb.image.swr_path,
        "type": nb.image.kind,
    }
    if nb.image.kind == "DEDICATED":
        image["tag"] = nb.image.tag  # the example leaves it out: only saved images have it here
    record: dict[str, Any] = {
        "description": "",
        "feature": nb.feature,
        "flavor": CUSTOM_FLAVOR if nb.custom else nb.flavor.name,
        "id": nb.id.removeprefix("DE-"),
        "image": image,
        "lease": _lease(nb),
        "name": nb.name,
        "status": status,
        "token": str(uuid.uuid5(uuid.NAMESPACE_OID, nb.id)),
        "user": {
            "id": user_id(nb.user),
            "name": nb.user,
            "domain": {"id": DOMAIN[0], "name": DOMAIN[1]},
        },
        "volume": {
            "category": "EVS",
            "ownership": "MANAGED",
            "mount_path": f"{WORK_DIR}/",
            "capacity": nb.volume_gb,
        },
        "workspace_id": nb.workspace,
    }
    if nb.custom:
        spec = nb.custom
        record["custom_spec"] = {
            "gpu": spec.gpu,
            "gpu_type": spec.gpu_type,
            "cpu": spec.cpu,
            "memory": spec.memory,
            "arch": spec.arch,
            "category": spec.category,
            "resource_flavor": nb.flavor.name,
        }
    if nb.flavor.pool:
        record["pool"] = {"id": nb.flavor.pool, "name": POOLS[nb.flavor.pool]}
    error = ERRORS.get(nb.status) or V2_ERRORS.get(status)
    if error:
        record["fail_reason"] = error[1]
    return record


def _lease(nb: Notebook) -> dict[str, Any]:
    """SDK `Lease`: `duration` (ms) counts from `create_at`, the notebook's creation, so a
    TIMING lease stops at create_at + duration; an IDLE one stops when idle, at no known
    time, and its duration is the idle time allowed."""
    created = ms(nb.created)
    if nb.lease_type == "IDLE":
        duration = nb.duration * 1000
    else:
        # Running: its stop time. Otherwise the last one it had, or its first, unrun lease.
        end = nb.stop_at if nb.stop_at is not None else nb.created + nb.duration
        duration = ms(end) - created
    return {
        "create_at": created,
        "duration": duration,
        "enable": nb.auto_stop,
        "type": nb.lease_type,
        "update_at": ms(nb.updated),
    }


def flavor_record(flavor: Flavor) -> dict[str, Any]:
    """One flavor as `GET /v1/{project_id}/notebooks/flavors` returns it: SDK NotebookFlavor.

    `memory` in KiB: the vendor's example lists 8388608 for "CPU: 2 vCPUs 8 GB".
    """
    host = f"{'ARM' if flavor.arch == 'aarch64' else 'CPU'}: {flavor.cpu} vCPUs {flavor.memory} GB"
    title = host
    if flavor.cards:
        kind = "Ascend" if flavor.type == "ASCEND" else "GPU"
        title = f"{kind}: {flavor.cards}*{flavor.accelerator}({flavor.card_memory}GB) | {host}"
    record: dict[str, Any] = {
        "arch": flavor.arch,
        "billing": {"code": flavor.name, "unit_num": 1},
        "category": flavor.type,
        "description": title,
        "feature": flavor.feature,
        "free": flavor.free,
        "id": flavor.name,
        "memory": flavor.memory * 1024 * 1024,
        "name": title,
        "sold_out": flavor.sold_out,
        "storages": ["EVS", "EFS"] if flavor.pool else ["EVS"],
        "vcpus": flavor.cpu,
    }
    # GPU memory "in GB" (Terraform's notebook flavors data source); the SDK types it str.
    if flavor.type == "GPU":
        record["gpu"] = {
            "gpu": flavor.cards,
            "gpu_memory": str(flavor.card_memory),
            "type": flavor.accelerator,
        }
    elif flavor.type == "ASCEND":
        record["ascend"] = {
            "npu": flavor.cards,
            "npu_memory": str(flavor.card_memory),
            "type": flavor.accelerator,
            "chip": flavor.cards,
        }
    return record
