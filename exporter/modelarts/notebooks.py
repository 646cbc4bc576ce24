"""The newer Notebook API (`GET /v1/{project_id}/notebooks`), mapped onto `Instance`.

The vendor files `demanager` under historical APIs; notebooks created through the new
API appear only here. Each record is normalised into the same `Instance` the rest of
the exporter reads: `lease` becomes auto-stop, `fail_reason` the error, `image`, `pool`
and `user` the info labels. Ids are the same notebook's in both APIs once the `DE-`
prefix of the older one is set aside, which is how `api: both` counts each notebook once
(keeping the older API's record, the only one with queue and flavor-sales details).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, TypeAdapter

from exporter.modelarts.instance import Instance
from exporter.modelarts.records import (
    Model,
    MsTimestamp,
    Number,
    Page,
    RequiredText,
    Text,
    count,
    parse_records,
)

PAGE_SIZE = 50  # the API accepts 10, 20 or 50


class Lease(Model):
    create_at: MsTimestamp = None
    update_at: MsTimestamp = None
    duration: Number = None  # milliseconds
    enable: bool | None = None


class Image(Model):
    id: Text = ""
    name: Text = ""
    swr_path: Text = ""


class V2Pool(Model):
    id: Text = ""
    name: Text = ""


class V2User(Model):
    id: Text = ""
    name: Text = ""


class Notebook(Model):
    id: RequiredText
    status: RequiredText
    name: Text = ""
    flavor: Text = ""
    create_at: MsTimestamp = None
    update_at: MsTimestamp = None
    lease: Lease | None = None
    fail_reason: Text = ""
    pool: V2Pool | None = None
    user: V2User | None = None
    image: Image | None = None
    workspace_id: Text = ""

    def to_instance(self) -> Instance:
        lease = self.lease or Lease()
        started = lease.update_at or lease.create_at
        duration = lease.duration / 1000 if lease.duration is not None else None
        running = self.status == "RUNNING" and started is not None and duration
        pool = self.pool or V2Pool()
        return Instance(
            id=self.id,
            status=self.status,
            name=self.name,
            flavor=self.flavor,
            flavor_type=flavor_type(self.flavor),
            pool_id=pool.id,
            pool_name=pool.name,
            pool_type="USER_DEFINED" if pool.id else "",
            workspace_id=self.workspace_id,
            user_name=self.user.name if self.user else "",
            image=self.image.name if self.image else "",
            created=self.create_at,
            updated=self.update_at,
            auto_stop=lease.enable,
            stop_timestamp=started + duration if running and started and duration else None,
            # The newer API gives a reason in words, no code: the words are the label value.
            error=self.fail_reason[:100] or None,
        )


def flavor_type(flavor: str) -> str:
    """The newer API does not say; the flavor name does (`modelarts.vm.gpu.t4`)."""
    name = flavor.lower()
    for marker, kind in (("ascend", "Ascend"), ("gpu", "GPU"), ("cpu", "CPU")):
        if marker in name:
            return kind
    return ""


def same_notebook(instance_id: str) -> str:
    """The key under which both APIs' records of one notebook meet."""
    return instance_id.removeprefix("DE-")


class _FastPage(Model):
    total: Annotated[int | None, BeforeValidator(count)] = None
    pages: Annotated[int | None, BeforeValidator(count)] = None
    data: list[Notebook] | None = None


class _RawPage(Model):
    total: Annotated[int | None, BeforeValidator(count)] = None
    pages: Annotated[int | None, BeforeValidator(count)] = None
    data: list[Any] | None = None


_NOTEBOOK = TypeAdapter(Notebook)


def parse_notebooks_page(body: bytes) -> Page:
    """One `/notebooks` list response, as Instances."""
    page, instances, invalid = parse_records(body, _FastPage, _RawPage, "data", _NOTEBOOK)
    return Page(getattr(page, "total", None), instances, invalid, getattr(page, "pages", None))
