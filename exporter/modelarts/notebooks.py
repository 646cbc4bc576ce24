"""The newer Notebook API (`GET /v1/{project_id}/notebooks[/all]`), read into `Instance`.

Field names, types and units are the vendor SDK's (`huaweicloudsdkmodelarts.v1.model`:
`NotebookResp`, `Lease`, `NotebookCustomSpecRep`, `Image`, `Pool`, `UserResponse`);
tests/unit/modelarts/test_vendor_models.py fails when a field read here is not one of
them. `NotebookResp` has no top-level times: `lease.create_at` is the creation time and
`lease.update_at` the last update (UTC ms). A `TIMING` lease stops the notebook at
`create_at + duration` (ms); an `IDLE` lease stops it when idle, at no known time.
A custom spec (`flavor` "custom.flavor.spec.code") is described by `custom_spec`; other
flavors by the flavors listing (`flavors.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from typing import Any

import msgspec
from pydantic import TypeAdapter

from exporter.modelarts.flavors import Flavor, flavor_type
from exporter.modelarts.instance import REASON_LENGTH, Instance
from exporter.modelarts.records import (
    Model,
    MsTimestamp,
    Number,
    Page,
    RecordMemo,
    RequiredText,
    Text,
    parse_records,
    read_count,
)

PAGE_SIZE = 50  # the API accepts 10, 20 or 50 (SDK ListNotebooksRequest.limit)
CUSTOM_FLAVOR = "custom.flavor.spec.code"
MIB = 1024.0**2
NO_FLAVORS: Mapping[str, Flavor] = {}


class Lease(Model):
    create_at: MsTimestamp = None
    update_at: MsTimestamp = None
    duration: Number = None  # milliseconds, counted from create_at
    enable: bool | None = None
    type: Text = ""  # TIMING | IDLE


class Image(Model):
    name: Text = ""  # without the tag
    tag: Text = ""  # absent from the vendor's list example: then the tag of swr_path
    swr_path: Text = ""  # registry/namespace/name:tag

    def reference(self) -> str:
        """`name:tag`, the form the historical API's image label has."""
        tag = self.tag
        if not tag and ":" in self.swr_path.rsplit("/", 1)[-1]:
            tag = self.swr_path.rsplit(":", 1)[1]
        return f"{self.name}:{tag}" if self.name and tag else self.name


class NamedRef(Model):
    id: Text = ""
    name: Text = ""


class CustomSpec(Model):
    cpu: Number = None  # cores
    memory: Number = None  # MiB (at least 513, SDK NotebookCustomSpecRep.memory)
    gpu: Number = None  # cards
    gpu_type: Text = ""
    category: Text = ""  # CPU | GPU


class Notebook(Model):
    id: RequiredText
    status: RequiredText
    name: Text = ""
    flavor: Text = ""
    feature: Text = ""  # NOTEBOOK (billed) | DEFAULT (the free CodeLab instance)
    lease: Lease | None = None
    fail_reason: Text = ""
    pool: NamedRef | None = None
    user: NamedRef | None = None
    image: Image | None = None
    workspace_id: Text = ""
    custom_spec: CustomSpec | None = None

    def to_instance(self, flavors: Mapping[str, Flavor] = NO_FLAVORS) -> Instance:
        lease = self.lease or Lease()
        pool = self.pool or NamedRef()
        spec = self.custom_spec or CustomSpec()
        listed = flavors.get(self.flavor) or Flavor(self.flavor)
        custom = self.custom_spec is not None
        return Instance(
            id=self.id,
            status=self.status,
            name=self.name,
            flavor=self.flavor,
            flavor_type=flavor_type(spec.category, listed.flavor_type, name=self.flavor),
            pool_id=pool.id,
            pool_name=pool.name,
            pool_type="USER_DEFINED" if pool.id else "",
            workspace_id=self.workspace_id,
            user_name=self.user.name if self.user else "",
            image=self.image.reference() if self.image else "",
            created=lease.create_at,
            updated=lease.update_at,
            auto_stop=lease.enable,
            auto_stop_type=lease.type if lease.enable else "",
            stop_timestamp=_stop_time(self.status, lease),
            # The newer API gives a reason in words, never a code.
            error="" if self.fail_reason else None,
            reason=self.fail_reason[:REASON_LENGTH],
            flavor_sale=""
            if listed.sold_out is None
            else ("soldOut" if listed.sold_out else "onSale"),
            cpu=spec.cpu if custom else listed.cpu,
            memory=(None if spec.memory is None else spec.memory * MIB)
            if custom
            else listed.memory,
            gpu=(spec.gpu or None) if custom else listed.gpu,
            npu=None if custom else listed.npu,
            accelerator=spec.gpu_type if custom else listed.accelerator,
        )


def _stop_time(status: str, lease: Lease) -> float | None:
    """A running notebook's timed stop: `create_at + duration` (SDK `Lease.duration`)."""
    if status != "RUNNING" or not lease.enable or lease.type == "IDLE":
        return None
    if lease.create_at is None or not lease.duration:
        return None
    return lease.create_at + lease.duration / 1000


def same_notebook(instance_id: str) -> str:
    """The key under which both APIs' records of one notebook would meet (docs/targets.md:
    the vendor does not say whether one notebook is listed by both; two different ones never
    share a UUID, so this never merges two notebooks)."""
    return instance_id.removeprefix("DE-")


class _Envelope(msgspec.Struct):
    data: list[msgspec.Raw] | None = None
    total: Any = None
    pages: Any = None


_NOTEBOOK = TypeAdapter(Notebook)


class _Id(msgspec.Struct):
    id: Any = None


def _key(record: bytes) -> str | None:
    """A record's `same_notebook` key, from its id alone: a few microseconds, where
    reading the whole record takes a hundred."""
    try:
        found = msgspec.json.decode(record, type=_Id).id
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return same_notebook(found) if isinstance(found, str) else None


def parse_notebooks_page(
    body: bytes,
    flavors: Mapping[str, Flavor] = NO_FLAVORS,
    memo: RecordMemo | None = None,
    listed: Container[str] = (),
) -> Page:
    """One `/notebooks` list response, as Instances, their flavors looked up in `flavors`
    (a `memo` must be started anew when they change); notebooks whose `same_notebook` key
    is in `listed` (the historical list had them) are left out."""
    convert: Callable[[Notebook], Instance] = lambda n: n.to_instance(flavors)  # noqa: E731
    page, instances, invalid, left_out = parse_records(
        body, _Envelope, "data", _NOTEBOOK, convert, memo, listed, _key
    )
    return Page(read_count(page.total), instances, invalid, read_count(page.pages), left_out)
