"""The projects being exported: each its own credentials, client, cache and back-off.

A scrape refreshes every target side by side, so a slow project costs the scrape its own
refresh budget at most and a failing one blanks nothing but itself. A reload keeps every
target whose settings did not change, with its cached data, and replaces the others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

from exporter.config.settings import Settings
from exporter.exposition.status import TargetStatus
from exporter.modelarts.client import ListQuery, ModelArtsClient
from exporter.pipeline.cache import SnapshotCache
from exporter.pipeline.credentials import build_provider

log = logging.getLogger(__name__)


class Target:
    """One project: credentials → client → cache."""

    def __init__(self, name: str, settings: Settings) -> None:
        self.name = name
        self.settings = settings
        self.provider = build_provider(settings)
        log.info(
            "target %s: project_id=%s region=%s auth_mode=%s%s",
            name,
            settings.project_id,
            settings.region,
            settings.effective_auth_mode,
            " (auto)" if settings.auth_mode == "auto" else "",
        )
        self.client = ModelArtsClient(
            settings.modelarts_endpoint,
            settings.project_id,
            self.provider,
            query=ListQuery(settings.show_self, settings.pool_id, settings.workspace_id),
            api=settings.api,
            flavor_ttl=settings.flavor_cache_ttl,
            page_size=settings.page_size,
            page_concurrency=settings.page_concurrency,
            request_timeout=settings.request_timeout,
            refresh_timeout=settings.refresh_timeout,
            max_response_bytes=settings.max_response_bytes,
        )
        self.cache = SnapshotCache(
            settings.project_id,
            self.client.list_instances,
            ttl=settings.cache_ttl,
            max_staleness=settings.max_staleness,
            telemetry=self.client.telemetry,
            options=settings.series_options,
            target=(name, settings.region, settings.api),
            wait=settings.refresh_budget,
            give_up=settings.refresh_timeout,
            background=settings.refresh_background,
        )

    def secrets(self) -> list[str]:
        return [*self.settings.secret_values(), *self.provider.secrets()]

    def close(self) -> None:
        self.client.close()


class TargetSet:
    def __init__(self, settings_by_name: Mapping[str, Settings]) -> None:
        self._lock = threading.Lock()
        self._targets: dict[str, Target] = {}
        self._pool: ThreadPoolExecutor | None = None
        self.replace(settings_by_name)

    def names(self) -> list[str]:
        return list(self._targets)

    def statuses(self, names: Iterable[str] | None = None) -> list[TargetStatus]:
        """Each target's status, refreshing the expired ones side by side."""
        chosen = self._chosen(names)
        pool = self._pool
        if len(chosen) <= 1 or pool is None:
            return [t.cache.status() for t in chosen]
        return list(pool.map(lambda t: t.cache.status(), chosen))

    def peek(self, names: Iterable[str] | None = None) -> list[TargetStatus]:
        """Each target's status as it is, never refreshing (what is rendered ahead)."""
        return [t.cache.peek() for t in self._chosen(names)]

    def _chosen(self, names: Iterable[str] | None) -> list[Target]:
        """The targets of `names` (all when None) that exist."""
        targets = self._targets  # one consistent set, even while a reload swaps it
        if names is None:
            return list(targets.values())
        return [targets[n] for n in names if n in targets]

    def ready(self) -> bool:
        """Some target has data fresh enough to serve; or there is no target at all (a
        shard the targets file gives none: nothing to wait for, the other shards serve)."""
        targets = self._targets
        return not targets or any(t.cache.peek().snapshot is not None for t in targets.values())

    def warm_up(self) -> None:
        threading.Thread(target=self.statuses, name="warm-up", daemon=True).start()

    def secrets(self) -> list[str]:
        return [s for t in self._targets.values() for s in t.secrets()]

    def replace(self, settings_by_name: Mapping[str, Settings]) -> None:
        """Swap in a new set of targets; unchanged ones keep their client and data."""
        with self._lock:
            old, old_pool = self._targets, self._pool
            new: dict[str, Target] = {}
            for name, settings in settings_by_name.items():
                kept = old.get(name)
                new[name] = kept if kept and kept.settings == settings else Target(name, settings)
            self._targets = new
            self._pool = (
                ThreadPoolExecutor(len(new), thread_name_prefix="refresh") if len(new) > 1 else None
            )
        if old_pool is not None:
            old_pool.shutdown(wait=False)
        for name, target in old.items():
            if new.get(name) is not target:
                target.close()
        added = sorted(set(new) - set(old))
        removed = sorted(set(old) - set(new))
        changed = sorted(n for n in set(new) & set(old) if new[n] is not old[n])
        if old:
            log.info("targets reloaded added=%s removed=%s changed=%s", added, removed, changed)

    def close(self) -> None:
        for target in self._targets.values():
            target.close()
