"""What the simulated project is made of: flavors, pools, users, images, and one notebook.

Flavors carry everything both APIs say about them: the historical API's
`flavor_details` and the newer API's `NotebookFlavor` are two views of one `Flavor`, so
they can never disagree. `Notebook` is a notebook's state; `records.py` turns it into the
JSON each API returns, and `fleet.py` moves it through its life.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import NamedTuple

CALLER = "ops_dev_env"  # the user the credentials belong to (what show_self=true lists)
DOMAIN = ("a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3", "acme")  # the account: id, name
SECOND_WORKSPACE = "ws-1a2b3c4d5e6f"  # a workspace besides the default "0"
SWR = "swr.cn-north-4.myhuaweicloud.com"
CUSTOM_FLAVOR = "custom.flavor.spec.code"  # SDK NotebookResp.flavor with a custom spec


@dataclass(frozen=True)
class Flavor:
    name: str  # also the newer API's flavor id
    type: str  # flavor_details.type and NotebookFlavor.category: CPU | GPU | ASCEND
    profile_type: str  # profile.flavor_type: CPU | GPU | Ascend
    cpu: int
    cards: int  # GPUs, or NPUs for an ASCEND flavor
    free: bool = False
    sold_out: bool = False
    pool: str | None = None  # only offered in this dedicated pool
    memory: int = 8  # GiB
    accelerator: str = ""  # the GPU or NPU model: T4, A100, Ascend910B
    card_memory: int = 0  # GB per card
    arch: str = "x86_64"  # NotebookFlavor.arch spells it in lower case
    feature: str = "NOTEBOOK"  # DEFAULT: the CodeLab flavor


FLAVORS = (
    Flavor("modelarts.vm.cpu.2u", "CPU", "CPU", 2, 0, memory=8),
    Flavor("modelarts.vm.cpu.8u", "CPU", "CPU", 8, 0, memory=32),
    Flavor("modelarts.vm.cpu.free", "CPU", "CPU", 1, 0, free=True, memory=4, feature="DEFAULT"),
    Flavor(
        "modelarts.vm.gpu.free",
        "GPU",
        "GPU",
        4,
        1,
        free=True,
        sold_out=True,
        memory=16,
        accelerator="T4",
        card_memory=16,
    ),
    Flavor("modelarts.vm.gpu.t4", "GPU", "GPU", 8, 1, memory=32, accelerator="T4", card_memory=16),
    Flavor(
        "modelarts.bm.gpu.v100NV32",
        "GPU",
        "GPU",
        8,
        1,
        memory=64,
        accelerator="v100NV32",
        card_memory=32,
    ),
    Flavor(
        "modelarts.bm.gpu.a100.8",
        "GPU",
        "GPU",
        64,
        8,
        pool="pool-7f3c2a91",
        memory=512,
        accelerator="A100",
        card_memory=80,
    ),
    Flavor(
        "modelarts.bm.ascend.910b",
        "ASCEND",
        "Ascend",
        24,
        1,
        pool="pool-1b8e4d07",
        memory=192,
        accelerator="Ascend910B",
        card_memory=64,
        arch="aarch64",
    ),
)
FLAVOR_BY_NAME = {flavor.name: flavor for flavor in FLAVORS}
POOLS = {
    "pool-7f3c2a91": "vision-a100",
    "pool-1b8e4d07": "nlp-ascend-910b",
}
USERS = ("ops_dev_env", "li.wei", "zhang.min", "a.kumar", "m.garcia", "chen.jing", "o.smith")


class ImageRef(NamedTuple):
    name: str  # no tag: SDK Image.name allows no ':'
    tag: str
    profile: str = ""  # the historical API's profile id and name
    about: str = ""  # its profile description
    category: str = ""  # its profile.provision.annotations.category
    namespace: str = "atelier"  # the SWR organisation
    kind: str = "BUILD_IN"  # SDK Image.type: BUILD_IN | DEDICATED (saved by a user)

    @property
    def id(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, self.name))

    @property
    def swr_path(self) -> str:
        return f"{SWR}/{self.namespace}/{self.name}:{self.tag}"


IMAGES = (
    ImageRef(
        "mul-kernel-cpu-cp36",
        "2.0.5-B003",
        "Multi-Engine 1.0 (python3)-cpu",
        "multi engine, cpu, python 3.6 for notebook",
        "Multi-Engine 1.0 (Python3, Recommended)",
    ),
    ImageRef(
        "mul-kernel-gpu-cuda-cp36",
        "2.0.5-B003",
        "Multi-Engine 1.0 (python3)-gpu",
        "multi engine, gpu, python 3.6 for notebook",
        "Multi-Engine 1.0 (python3)",
    ),
    ImageRef(
        "pytorch2.1.0-cuda11.8-cudnn8-ubuntu20.04",
        "1.0.2",
        "PyTorch 2.1.0 (python3.9)-gpu",
        "pytorch 2.1.0, cuda 11.8, python 3.9 for notebook",
        "PyTorch 2.1.0",
    ),
    ImageRef(
        "mindspore2.2.0-cann7.0-py3.9-euler2.10",
        "7.0.1",
        "MindSpore 2.2.0 (python3.9)-ascend",
        "mindspore 2.2.0, cann 7.0, python 3.9 for notebook",
        "MindSpore 2.2.0",
    ),
)
# An image a team saved from a notebook: the newer API gives its `tag` as well.
TEAM_IMAGE = ImageRef(
    "pytorch-custom-team", "v3", "", "", "", namespace="acme-ai", kind="DEDICATED"
)
ERRORS = {
    "CREATE_FAILED": ("ModelArts.6404", "Insufficient resources in the pool."),
    "START_FAILED": ("ModelArts.6309", "Failed to pull the image."),
    "RESIZE_FAILED": ("ModelArts.6410", "The target flavor is sold out."),
    "UNAVAILABLE": ("ModelArts.6501", "The node hosting the notebook is faulty."),
}
# How the newer API names the statuses it shares with the older one in other words.
V2_STATUS = {
    "CREATE_QUEUING": "INIT",
    "START_QUEUING": "STARTING",
    "READY_TO_START": "STARTING",
    "RESTARTING": "STARTING",
    "RESIZING": "STOPPING",
    "UNAVAILABLE": "ERROR",
    "RESIZE_FAILED": "ERROR",
}
V2_ERRORS = {
    "ERROR": ("", "The notebook's container exited unexpectedly."),
    "DELETE_FAILED": ("", "Failed to release the EVS volume."),
}


@dataclass(frozen=True)
class CustomSpec:
    """SDK NotebookCustomSpecRep: a notebook sized by hand on a dedicated pool's node."""

    cpu: float
    memory: int  # the SDK gives no unit; at least 513, so MiB is assumed
    gpu: float = 0.0
    gpu_type: str = ""
    category: str = "CPU"  # CPU | GPU
    arch: str = "X86_64"  # X86_64 | AARCH64 (upper case here, as the SDK spells it)


@dataclass
class Notebook:
    id: str
    name: str
    flavor: Flavor  # with a custom spec: the flavor of the pool's nodes
    user: str
    image: ImageRef
    workspace: str
    created: float
    status: str
    updated: float
    exhibit: bool = False
    duration: int = 3600  # auto-stop after this many seconds of running (IDLE: of idling)
    auto_stop: bool = True
    stop_at: float | None = None
    queue_begin: float | None = None
    queue_end: float | None = None
    next_change: float = 0.0
    relative_only: bool = False  # report remain_time without stop_timestamp, as some pages do
    feature: str = "NOTEBOOK"  # DEFAULT: a free CodeLab notebook (newer API only)
    lease_type: str = "TIMING"  # IDLE: stops when idle, so no stop time is known
    custom: CustomSpec | None = None
    volume_gb: int = 5  # the EVS volume: the SDK's default size for EVS
