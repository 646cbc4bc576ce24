"""Flavors: what a notebook of each flavor is given, and whether it is sold out.

The newer API lists them (`GET /v1/{project_id}/notebooks/flavors`, the SDK's
`ListFlavors` → `NotebookFlavor`); the historical one describes each notebook's flavor in
its record (`flavor_details`). Both end in `Flavor`, and both spell the type the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import msgspec
from pydantic import TypeAdapter

from exporter.modelarts.records import Model, Number, RequiredText, Text, parse_records

KIB = 1024.0
GIB = 1024.0**3


@dataclass(frozen=True, slots=True)
class Flavor:
    name: str
    flavor_type: str = ""  # CPU | GPU | Ascend
    cpu: float | None = None  # cores
    memory: float | None = None  # bytes
    gpu: float | None = None  # cards
    npu: float | None = None  # cards
    accelerator: str = ""  # T4, A100, Ascend910B
    sold_out: bool | None = None
    free: bool | None = None


# One spelling: the historical API writes `ASCEND` in flavor_details.type and `Ascend` in
# profile.flavor_type; the newer one `ASCEND` in category.
_TYPES = {"CPU": "CPU", "GPU": "GPU", "ASCEND": "Ascend", "NPU": "Ascend"}
# Flavor names that mean an Ascend NPU (`modelarts.bm.d910.xlarge.1`,
# `modelarts.bm.npu.arm.8snt9b3.d`), a GPU, or only CPUs.
_NAME_HINTS = (
    (re.compile(r"d910|snt9|snt3|ascend|npu"), "Ascend"),
    (re.compile(r"gpu|\bp100|v100|a100|t4\b"), "GPU"),
    (re.compile(r"cpu"), "CPU"),
)


def flavor_type(*declared: str, name: str = "") -> str:
    """The first type the API declares, in the one spelling; else what the name says."""
    for value in declared:
        if value:
            return _TYPES.get(value.upper(), value)
    lowered = name.lower()
    for pattern, kind in _NAME_HINTS:
        if pattern.search(lowered):
            return kind
    return ""


class _Gpu(Model):
    gpu: Number = None  # cards
    type: Text = ""


class _Ascend(Model):
    npu: Number = None  # cards
    type: Text = ""


class NotebookFlavor(Model):
    """SDK `NotebookFlavor`; only the fields the exporter reads."""

    id: Text = ""
    name: RequiredText
    category: Text = ""  # CPU | GPU | ASCEND
    vcpus: Number = None
    memory: Number = None  # KiB: the vendor's example lists 8388608 for "8 GB"
    gpu: _Gpu | None = None
    ascend: _Ascend | None = None
    sold_out: bool | None = None
    free: bool | None = None

    def to_flavor(self) -> Flavor:
        gpu, ascend = self.gpu or _Gpu(), self.ascend or _Ascend()
        return Flavor(
            name=self.id or self.name,
            flavor_type=flavor_type(self.category, name=self.id or self.name),
            cpu=self.vcpus,
            memory=None if self.memory is None else self.memory * KIB,
            gpu=gpu.gpu if gpu.gpu else None,
            npu=ascend.npu if ascend.npu else None,
            accelerator=ascend.type or gpu.type,
            sold_out=self.sold_out,
            free=self.free,
        )


class _Envelope(msgspec.Struct):
    data: list[msgspec.Raw] | None = None


_FLAVOR = TypeAdapter(NotebookFlavor)


def parse_flavors_page(body: bytes) -> tuple[list[Flavor], int]:
    """The flavors listing: the readable flavors, and how many records were skipped."""
    _, flavors, invalid, _ = parse_records(
        body, _Envelope, "data", _FLAVOR, lambda r: r.to_flavor()
    )
    return flavors, invalid


def memory_bytes(text: str) -> float | None:
    """`flavor_details.params.memory` of the historical API, such as "8GiB" or "512MiB"."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
    if not match:
        return None
    try:
        number = float(match[1])
    except ValueError:
        return None
    return number * KIB ** " KMGT".index(match[2].upper() or " ")
