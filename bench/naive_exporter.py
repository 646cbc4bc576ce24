"""A naive ModelArts exporter of the usual hand-written kind: a yardstick, never to deploy.

What such exporters typically do: module-level labelled `Gauge`s; on every scrape, fetch
the whole list again (page by page, `requests` + the project's AK/SK signer), clear the
gauges and set every series in a loop; serve with prometheus_client's `start_http_server`.
It exports the same families as the real exporter, so the two do comparable work per
instance.

    HUAWEICLOUD_SDK_AK=… HUAWEICLOUD_SDK_SK=… \
        python -m bench.naive_exporter --endpoint URL --project-id ID --port 10299
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from collections import Counter
from typing import Any

import requests
from prometheus_client import CollectorRegistry, Gauge, start_http_server
from prometheus_client.registry import Collector
from pydantic import SecretStr

from exporter.modelarts.auth.signer import AkSkAuth

REGISTRY = CollectorRegistry()
PAGE_SIZE = 200


class _RefreshFirst(Collector):
    """Registered before the gauges, so each scrape refetches before they are read."""

    def __init__(self, refresh: Any) -> None:
        self.refresh = refresh

    def collect(self) -> list[Any]:
        self.refresh()
        return []


_ID = ["project_id", "id"]
INSTANCES = ["project_id", "status", "flavor", "pool_id"]
_POOL = ["project_id", "pool_id", "pool_name", "pool_type"]
INFO = [*_ID, "name", "flavor", "flavor_type", "pool_id", "workspace_id", "user_name", "image"]


def _gauges() -> dict[str, Gauge]:
    def g(name: str, labels: list[str]) -> Gauge:
        return Gauge(name, name.replace("_", " "), labels, registry=REGISTRY)

    return {
        "instances": g("modelarts_notebook_instances", INSTANCES),
        "info": g("modelarts_notebook_instance_info", INFO),
        "status": g("modelarts_notebook_instance_status", [*_ID, "status"]),
        "created": g("modelarts_notebook_instance_created_timestamp_seconds", _ID),
        "updated": g("modelarts_notebook_instance_updated_timestamp_seconds", _ID),
        "auto_stop_enabled": g("modelarts_notebook_instance_auto_stop_enabled", _ID),
        "auto_stop_at": g("modelarts_notebook_instance_auto_stop_timestamp_seconds", _ID),
        "auto_stop_left": g("modelarts_notebook_instance_auto_stop_remaining_seconds", _ID),
        "queue_rank": g("modelarts_notebook_instance_queue_rank", _ID),
        "queue_left": g("modelarts_notebook_instance_queue_remaining_seconds", _ID),
        "queue_wait": g("modelarts_notebook_instance_queue_wait_seconds", _ID),
        "error": g("modelarts_notebook_instance_error_info", [*_ID, "error_code"]),
        "sold_out": g("modelarts_notebook_flavor_sold_out", ["project_id", "flavor"]),
        "flavor_queue": g("modelarts_notebook_flavor_queue_length", ["project_id", "flavor"]),
        "flavor_left": g("modelarts_notebook_flavor_queue_left_seconds", ["project_id", "flavor"]),
        "pool": g("modelarts_notebook_pool_info", [*_POOL]),
        "up": g("modelarts_up", ["project_id"]),
    }


class NaiveExporter:
    def __init__(self, endpoint: str, project_id: str, ak: str, sk: str) -> None:
        self.url = f"{endpoint.rstrip('/')}/v1/{project_id}/demanager/instances"
        self.project = project_id
        self.session = requests.Session()
        self.session.auth = AkSkAuth(SecretStr(ak), SecretStr(sk))
        REGISTRY.register(_RefreshFirst(self.refresh))
        self.g = _gauges()

    def fetch(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        offset = 0
        while offset < 1_000_000:
            params = {"de_type": "Notebook", "show_self": "false"}
            params.update(offset=str(offset), limit=str(PAGE_SIZE))
            response = self.session.get(self.url, params=params, timeout=10)
            response.raise_for_status()
            page = response.json()
            records.extend(page["instances"])
            offset += PAGE_SIZE
            if len(page["instances"]) < PAGE_SIZE or offset >= page["total_count"]:
                break
        return records

    def refresh(self) -> None:
        g, p = self.g, self.project
        try:
            records = self.fetch()
        except (requests.RequestException, ValueError, KeyError):
            g["up"].labels(p).set(0)
            return
        now = time.time()
        for gauge in g.values():
            gauge.clear()
        g["up"].labels(p).set(1)
        counts: Counter[tuple[str, str, str]] = Counter()
        for r in records:
            i = r["id"]
            flavor = r.get("flavor") or ""
            pool = (r.get("pool") or {}).get("id") or ""
            details = r.get("flavor_details") or {}
            profile = r.get("profile") or {}
            image = profile.get("provision", {}).get("spec", {}).get("params", {})
            spec = r.get("spec") or {}
            auto_stop = spec.get("auto_stop") or {}
            counts[(r["status"], flavor, pool)] += 1
            g["info"].labels(
                p,
                i,
                r.get("name", ""),
                flavor,
                profile.get("flavor_type", ""),
                pool,
                (r.get("workspace") or {}).get("id", ""),
                (r.get("user") or {}).get("name", ""),
                f"{image.get('image_name', '')}:{image.get('image_tag', '')}",
            ).set(1)
            g["status"].labels(p, i, r["status"]).set(1)
            g["created"].labels(p, i).set(int(r["creation_timestamp"]) / 1000)
            g["updated"].labels(p, i).set(int(r["latest_update_timestamp"]) / 1000)
            g["auto_stop_enabled"].labels(p, i).set(float(bool(auto_stop.get("enable"))))
            if auto_stop.get("enable") and auto_stop.get("stop_timestamp"):
                stop = auto_stop["stop_timestamp"] / 1000
                g["auto_stop_at"].labels(p, i).set(stop)
                g["auto_stop_left"].labels(p, i).set(max(0.0, stop - now))
            queue = r.get("queuing_info")
            if queue:
                g["queue_rank"].labels(p, i).set(queue["rank"])
                g["queue_left"].labels(p, i).set(max(0.0, queue["end_timestamp"] / 1000 - now))
                g["queue_wait"].labels(p, i).set(max(0.0, now - queue["begin_timestamp"] / 1000))
            if r.get("error_code"):
                g["error"].labels(p, i, r["error_code"]).set(1)
            if details.get("status"):
                g["sold_out"].labels(p, flavor).set(float(details["status"] == "soldOut"))
            if "queuing_num" in details:
                g["flavor_queue"].labels(p, flavor).set(details["queuing_num"])
                g["flavor_left"].labels(p, flavor).set(details["queue_left_time"])
            pool_doc = r.get("pool") or {}
            pool_name, pool_type = pool_doc.get("name", "public"), pool_doc.get("type", "PUBLIC")
            g["pool"].labels(p, pool, pool_name, pool_type).set(1)
        for (status, flavor, pool), n in counts.items():
            g["instances"].labels(p, status, flavor, pool).set(n)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--project-id", required=True)
    parser.add_argument("--port", type=int, default=10299)
    args = parser.parse_args()
    NaiveExporter(
        args.endpoint,
        args.project_id,
        os.environ["HUAWEICLOUD_SDK_AK"],
        os.environ["HUAWEICLOUD_SDK_SK"],
    )
    start_http_server(args.port, addr="127.0.0.1", registry=REGISTRY)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    stopping.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
