"""The pages each list call answers: parameters checked, the fleet filtered and paged.

- `GET /v1/{project_id}/demanager/instances` (historical): record `offset`, `limit` 0 for
  everything, `show_self`, `workspace_id`, `pool_id`, `status`, `sortby`/`order`; body
  `{"total_count", "instances"}`.
- `GET /v1/{project_id}/notebooks` and `/notebooks/all` (SDK ListNotebooks and
  ListAllNotebooks, the same parameters): record `offset`, `limit` 10, 20 or 50, `feature`
  NOTEBOOK (default) or DEFAULT, `workspace_id` (default "0"), `pool_id`, `status`, `owner`;
  body `{"current", "data", "pages", "size", "total"}` (SDK ListNotebooksResponse).
  `/notebooks/all` lists every notebook of the project ("所有已创建", all created);
  `/notebooks` the caller's own unless `owner` names another user.
- `GET /v1/{project_id}/notebooks/flavors` (SDK ListFlavors): `category`, `type`, `feature`,
  record `offset`, and no `limit` unless one is given ("默认不限制"). Without `feature`,
  every flavor, the CodeLab one included: the SDK documents NOTEBOOK as the default, but
  whether the server then leaves CodeLab flavors out is not established.

A parameter the SDK does not define, or one the simulator does not model, is refused (400)
on the newer paths, so a client that relies on it learns it here rather than in production.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

from exporter.simulator.catalog import CALLER, FLAVORS
from exporter.simulator.fleet import Fleet
from exporter.simulator.records import flavor_record

# Each is a subset of the SDK request's attributes (tests/unit/simulator checks it).
NOTEBOOKS_PARAMS = frozenset(
    {"offset", "limit", "feature", "workspace_id", "pool_id", "status", "owner", "name", "id"}
)
FLAVORS_PARAMS = frozenset({"category", "type", "feature", "offset", "limit"})
NOTEBOOK_LIMITS = (10, 20, 50)  # SDK ListNotebooksRequest.limit: 取值范围 [10,20,50]
FEATURES = ("NOTEBOOK", "DEFAULT")
CATEGORIES = ("CPU", "GPU", "ASCEND")
CLUSTER_TYPES = ("MANAGED", "DEDICATED")  # ListFlavorsRequest.type: public or dedicated pool

Answer = tuple[int, bytes]


def error(code: str, message: str, request_id: str | None = None) -> bytes:
    """An error document in the vendor's shape."""
    doc = {"error_code": code, "error_msg": message, "request_id": request_id or uuid.uuid4().hex}
    return json.dumps(doc).encode()


def _invalid(message: str) -> Answer:
    return 400, error("ModelArts.0104", message)


class Pages:
    """The list calls' answers over one fleet, each filtered listing encoded once while the
    fleet stands still."""

    def __init__(self, fleet: Fleet, clock: Callable[[], float]) -> None:
        self.fleet = fleet
        self.clock = clock
        self._lock = threading.Lock()
        self._cache: dict[tuple[Any, ...], list[bytes]] = {}
        self._encoded_at: dict[int, float] = {}  # id of a cached listing → when encoded
        self._flavors = [
            (f, json.dumps(flavor_record(f), separators=(",", ":")).encode()) for f in FLAVORS
        ]

    # -- historical ------------------------------------------------------------------------

    def demanager(self, params: dict[str, str]) -> Answer:
        if params.get("de_type") != "Notebook":
            return _invalid("de_type must be Notebook.")
        try:
            offset = int(params.get("offset", "0"))
            limit = int(params.get("limit", "0"))
        except ValueError:
            return _invalid("offset and limit must be integers.")
        if offset < 0 or limit < 0:
            return _invalid("offset and limit must not be negative.")
        records = self._demanager_records(params)
        chosen = records[offset : offset + limit] if limit else records[offset:]
        # The records were encoded when the fleet last changed; their clocks have moved on.
        elapsed = int(self.clock() - self._encoded_at.get(id(records), self.clock()))
        if elapsed > 0:
            chosen = [_tick(record, elapsed) for record in chosen]
        body = b'{"total_count":%d,"instances":[%s]}' % (len(records), b",".join(chosen))
        return 200, body

    def _demanager_records(self, params: dict[str, str]) -> list[bytes]:
        key, cached = self._cached("demanager", params)
        if cached is not None:
            return cached
        records = self.fleet.records(self.clock())
        if params.get("show_self", "true") != "false":
            records = [r for r in records if r["user"]["name"] == CALLER]
        for name, path in (("status", ("status",)), ("pool_id", ("pool", "id"))):
            if params.get(name):
                records = [r for r in records if _dig(r, path) == params[name]]
        records = [r for r in records if r["workspace"]["id"] == params.get("workspace_id", "0")]
        sort_key = params.get("sortby", "name")
        records.sort(
            key=lambda r: (
                int(r["creation_timestamp"]) if sort_key == "creation_timestamp" else r["name"]
            ),
            reverse=params.get("order") == "desc",
        )
        return self._store(key, records)

    # -- newer -----------------------------------------------------------------------------

    def notebooks(self, params: dict[str, str], *, every_user: bool) -> Answer:
        """`/notebooks/all` (`every_user`) or `/notebooks`."""
        unknown = sorted(set(params) - NOTEBOOKS_PARAMS)
        if unknown:
            return _invalid(f"Unsupported query parameter: {', '.join(unknown)}.")
        try:
            offset = int(params.get("offset", "0"))
            limit = int(params.get("limit", "10"))
        except ValueError:
            return _invalid("offset and limit must be integers.")
        if offset < 0:
            return _invalid("offset must not be negative.")
        if limit not in NOTEBOOK_LIMITS:
            return _invalid("limit must be 10, 20 or 50.")
        if params.get("feature", "NOTEBOOK") not in FEATURES:
            return _invalid("feature must be NOTEBOOK or DEFAULT.")
        records = self._notebook_records(params, every_user)
        total = len(records)
        body = b'{"current":%d,"data":[%s],"pages":%d,"size":%d,"total":%d}' % (
            offset // limit,
            b",".join(records[offset : offset + limit]),
            -(-total // limit),
            limit,
            total,
        )
        return 200, body

    def _notebook_records(self, params: dict[str, str], every_user: bool) -> list[bytes]:
        # An empty value is taken as none: the default applies.
        filters = {k: v for k, v in params.items() if k not in ("offset", "limit") and v}
        filters.setdefault("feature", "NOTEBOOK")
        filters.setdefault("workspace_id", "0")
        if not every_user and not filters.get("owner"):
            filters["user"] = CALLER  # the caller's own
        key, cached = self._cached("notebooks", filters)
        if cached is not None:
            return cached
        exact = {
            "feature": ("feature",),
            "workspace_id": ("workspace_id",),
            "pool_id": ("pool", "id"),
            "status": ("status",),
            "owner": ("user", "id"),
            "user": ("user", "name"),
            "id": ("id",),
        }
        records = self.fleet.records_v2(self.clock())
        for name, value in filters.items():
            if name == "name":  # "模糊匹配": a fuzzy match
                records = [r for r in records if value.lower() in r["name"].lower()]
            elif name in exact:
                records = [r for r in records if _dig(r, exact[name]) == value]
        return self._store(key, sorted(records, key=lambda r: r["name"]))

    # -- flavors ---------------------------------------------------------------------------

    def flavors(self, params: dict[str, str]) -> Answer:
        unknown = sorted(set(params) - FLAVORS_PARAMS)
        if unknown:
            return _invalid(f"Unsupported query parameter: {', '.join(unknown)}.")
        try:
            offset = int(params.get("offset", "0"))
            limit = int(params["limit"]) if params.get("limit") else None
        except ValueError:
            return _invalid("offset and limit must be integers.")
        if offset < 0 or (limit is not None and limit <= 0):
            return _invalid("offset must not be negative, limit must be positive.")
        for name, allowed in (
            ("category", CATEGORIES),
            ("type", CLUSTER_TYPES),
            ("feature", FEATURES),
        ):
            if params.get(name) and params[name] not in allowed:
                return _invalid(f"{name} must be one of {', '.join(allowed)}.")
        chosen = [
            encoded
            for flavor, encoded in self._flavors
            if params.get("category", flavor.type) == flavor.type
            and params.get("feature", flavor.feature) == flavor.feature
            and params.get("type", "DEDICATED" if flavor.pool else "MANAGED")
            == ("DEDICATED" if flavor.pool else "MANAGED")
        ]
        total = len(chosen)
        page = chosen[offset : offset + limit] if limit else chosen[offset:]
        body = b'{"current":%d,"data":[%s],"pages":%d,"size":%d,"total":%d}' % (
            offset // limit if limit else 0,
            b",".join(page),
            -(-total // limit) if limit else 1,
            limit or len(page),
            total,
        )
        return 200, body

    # -- the cache -------------------------------------------------------------------------

    def _cached(
        self, api: str, filters: dict[str, str]
    ) -> tuple[tuple[Any, ...], list[bytes] | None]:
        now = self.clock()
        self.fleet.advance(now)
        moment = int(now) if self.fleet.evolve else 0
        relevant = sorted((k, v) for k, v in filters.items() if k not in ("offset", "limit"))
        key = (api, self.fleet.version, moment, *relevant)
        with self._lock:
            return key, self._cache.get(key)

    def _store(self, key: tuple[Any, ...], records: list[dict[str, Any]]) -> list[bytes]:
        encoded = [json.dumps(r, separators=(",", ":")).encode() for r in records]
        with self._lock:
            if len(self._cache) > 16:
                self._cache.clear()
                self._encoded_at.clear()
            self._cache[key] = encoded
            self._encoded_at[id(encoded)] = self.clock()
        return encoded


_REMAIN_TIME = re.compile(rb'"remain_time":(\d+)')


def _tick(record: bytes, seconds: int) -> bytes:
    """A historical record `seconds` later: its `remain_time`s (until the stop, until the
    queue's end) are recomputed at every listing, as the API does, even while the fleet
    stands still; they never go below 0."""
    return _REMAIN_TIME.sub(lambda m: b'"remain_time":%d' % max(0, int(m[1]) - seconds), record)


def _dig(record: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = record
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value
