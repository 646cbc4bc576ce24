"""The historical list API (`GET /v1/{project_id}/demanager/instances`), read into `Instance`.

Only the fields the exporter reads are declared; everything else is ignored.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from pydantic import TypeAdapter

from exporter.modelarts.flavors import flavor_type, memory_bytes
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
    seconds_after,
)


class AutoStop(Model):
    enable: bool | None = None
    duration: Number = None
    stop_timestamp: MsTimestamp = None
    remain_time: Number = None


class FailedReasons(Model):
    code: Text = ""
    message: Text = ""


class Spec(Model):
    auto_stop: AutoStop | None = None
    failed_reasons: FailedReasons | None = None


class FlavorParams(Model):
    """`flavor_details.params`: what a notebook of the flavor is given."""

    CPU: Number = None  # cores
    GPU: Number = None  # cards
    NPU: Number = None  # cards
    memory: Text = ""  # "64GiB"
    gpu_type: Text = ""  # "v100NV32"
    npu_type: Text = ""


class FlavorDetails(Model):
    name: Text = ""
    params: FlavorParams | None = None
    status: Text = ""  # onSale | soldOut
    type: Text = ""  # CPU | GPU | ASCEND
    promo_type: Text = ""  # Free | NoDiscount
    queuing_num: Number = None
    queue_left_time: Number = None


class ProvisionParams(Model):
    image_name: Text = ""
    image_tag: Text = ""


class ProvisionSpec(Model):
    params: ProvisionParams | None = None


class Provision(Model):
    spec: ProvisionSpec | None = None


class Profile(Model):
    flavor_type: Text = ""
    provision: Provision | None = None


class Pool(Model):
    id: Text = ""
    name: Text = ""
    type: Text = ""


class Ref(Model):
    id: Text = ""
    name: Text = ""


class QueuingInfo(Model):
    status: Text = ""
    rank: Number = None
    begin_timestamp: MsTimestamp = None
    end_timestamp: MsTimestamp = None
    remain_time: Number = None


class InstanceRecord(Model):
    """One record of the list. `id` and `status` are required: without them it means nothing."""

    id: RequiredText
    status: RequiredText
    name: Text = ""
    flavor: Text = ""
    creation_timestamp: MsTimestamp = None
    latest_update_timestamp: MsTimestamp = None
    error_code: Text = ""
    flavor_details: FlavorDetails | None = None
    profile: Profile | None = None
    pool: Pool | None = None
    workspace: Ref | None = None
    user: Ref | None = None
    spec: Spec | None = None
    queuing_info: QueuingInfo | None = None

    def to_instance(self, now: float) -> Instance:
        """`now`: when the API answered, the time its `remain_time` values count from."""
        details = self.flavor_details or FlavorDetails()
        profile = self.profile or Profile()
        provision = profile.provision.spec if profile.provision else None
        params = (provision.params if provision else None) or ProvisionParams()
        image = params.image_name
        if image and params.image_tag:
            image = f"{image}:{params.image_tag}"
        spec = self.spec or Spec()
        auto_stop = spec.auto_stop or AutoStop()
        queue = self.queuing_info or QueuingInfo()
        pool = self.pool or Pool()
        sizes = details.params or FlavorParams()
        flavor = self.flavor or details.name
        reasons = spec.failed_reasons or FailedReasons()
        return Instance(
            id=self.id,
            status=self.status,
            name=self.name,
            flavor=flavor,
            flavor_type=flavor_type(profile.flavor_type, details.type, name=flavor),
            pool_id=pool.id,
            pool_name=pool.name,
            pool_type=pool.type,
            workspace_id=self.workspace.id if self.workspace else "",
            user_name=self.user.name if self.user else "",
            image=image,
            created=self.creation_timestamp,
            updated=self.latest_update_timestamp,
            auto_stop=auto_stop.enable,
            auto_stop_type="TIMING" if auto_stop.enable else "",
            stop_timestamp=_when(auto_stop.stop_timestamp, auto_stop.remain_time, now),
            error=self._error(spec.failed_reasons),
            reason=reasons.message[:REASON_LENGTH],
            flavor_sale=details.status,
            flavor_queue_length=details.queuing_num,
            flavor_queue_left=details.queue_left_time,
            queued=self.queuing_info is not None,
            queue_rank=queue.rank,
            queue_begin=queue.begin_timestamp,
            queue_end=_when(queue.end_timestamp, queue.remain_time, now),
            cpu=sizes.CPU,
            memory=memory_bytes(sizes.memory) if sizes.memory else None,
            gpu=sizes.GPU or None,
            npu=sizes.NPU or None,
            accelerator=sizes.npu_type or sizes.gpu_type,
        )

    def _error(self, reasons: FailedReasons | None) -> str | None:
        """The error code the instance reports; "" for a reason without a code."""
        if self.error_code:
            return self.error_code
        if reasons and (reasons.code or reasons.message):
            return reasons.code
        return None


class _Envelope(msgspec.Struct):
    instances: list[msgspec.Raw] | None = None
    total_count: Any = None


_INSTANCE = TypeAdapter(InstanceRecord)


def _when(timestamp: float | None, remaining: float | None, now: float) -> float | None:
    """A time the record gives, or else as `remain_time` seconds from `now`."""
    return timestamp if timestamp is not None else seconds_after(now, remaining)


def parse_page(body: bytes, memo: RecordMemo | None = None, now: float | None = None) -> Page:
    """One `demanager/instances` list response, answered at `now` (Unix seconds; by
    default when it is parsed, just after it arrived)."""
    answered = time.time() if now is None else now
    page, instances, invalid, _ = parse_records(
        body,
        _Envelope,
        "instances",
        _INSTANCE,
        lambda record: record.to_instance(answered),
        memo,
        now=answered,
    )
    return Page(read_count(page.total_count), instances, invalid)
