"""What a scrape serves for one target: its snapshot, if fresh enough, and its health."""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.exposition.snapshot import Snapshot
from exporter.modelarts.client import Telemetry


@dataclass(frozen=True)
class TargetStatus:
    project_id: str
    snapshot: Snapshot | None
    up: bool = False
    last_success: float | None = None
    last_duration: float | None = None
    invalid_total: int = 0
    telemetry: Telemetry = field(default_factory=Telemetry)
    target: tuple[str, str, str] = ("", "", "")  # name, region, list API

    @property
    def fetched_at(self) -> float | None:
        return None if self.snapshot is None else self.snapshot.fetched_at
