"""Generated documentation: docs/metrics.md, README's settings table and its sample lines.

`python -m exporter.docs` rewrites them from the metric table, the settings model and a
scrape of the demo fleet; tests/unit/test_docs.py fails when one is out of date.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from pydantic import SecretStr

from exporter.config.settings import SECRET_FIELDS, Settings, also_env, setting_names
from exporter.exposition.formats import TEXT
from exporter.exposition.metrics import METRICS
from exporter.exposition.render import Renderer
from exporter.exposition.snapshot import Snapshot
from exporter.exposition.status import TargetStatus
from exporter.http.connection_stats import HELP as HTTP_HELP
from exporter.http.connection_stats import SELF_METRICS
from exporter.modelarts.auth.aksk import AkSkProvider
from exporter.modelarts.client import ModelArtsClient
from exporter.modelarts.statuses import KNOWN_STATUSES
from exporter.simulator import DEMO_AK, DEMO_PROJECT_ID, DEMO_SK, Fleet, Simulator


def metrics_markdown() -> str:
    lines = [
        "# Metrics",
        "",
        "Generated from `exporter/exposition/metrics.py` by `python -m exporter.docs`; a test",
        "fails when this file is out of date. Times are Unix seconds. Every series but",
        "`modelarts_exporter_build_info` carries `project_id`. Which list API contributes",
        "what (the historical one, the newer one and its flavors listing):",
        "[targets.md](targets.md#the-two-list-apis-and-what-each-contributes).",
        "",
        "| metric | type | labels | computed | help |",
        "| --- | --- | --- | --- | --- |",
    ]
    for metric in METRICS:
        labels = ", ".join(f"`{name}`" for name in metric.label_names) or "—"
        lines.append(
            f"| `{metric.name}` | {metric.type} | {labels} | {metric.computed} | {metric.help} |"
        )
    lines += [
        "",
        "The HTTP server also serves its own counters, process-wide (no `project_id`):",
        "",
        "| metric | type | labels | help |",
        "| --- | --- | --- | --- |",
        *(
            f"| `{name}` | {kind} | {', '.join(f'`{n}`' for n in labels) or '—'} "
            f"| {HTTP_HELP[name]} |"
            for name, (kind, labels) in SELF_METRICS.items()
        ),
        "",
        "and the exporter's own process metrics, `process_*` (resident",
        "memory, CPU seconds, open file descriptors, start time), as prometheus_client's",
        "ProcessCollector writes them, without `project_id`. `modelarts_notebook_user_instances`",
        "is left out with `--no-metrics.per-user`; the per-notebook series (`id`) with",
        "`--no-metrics.per-instance`.",
        "",
        "## Changes between listings",
        "",
        "`modelarts_notebook_status_transitions_total` and `modelarts_notebook_queue_wait_seconds`",
        "come from comparing each good listing of a project with the previous good one. The",
        "first listing after the exporter starts counts nothing; a failed refresh changes",
        "nothing (the next good listing is compared with the last good one); a notebook that",
        "appears counts as (`absent`, its status), one that disappears as (its status, `absent`).",
        "A change that happens and is undone between two listings is not seen: the finer the",
        "`--cache-ttl`, the fewer are missed. A queue wait is observed when a notebook that was",
        "queuing is listed in another status: the fetch time of that listing minus the queue's",
        "begin time (historical API: `queuing_info.begin_timestamp`); buckets 60 s to 1 day.",
        "",
        "## Known statuses",
        "",
        "`modelarts_notebook_instances` always has a series for each of these, 0 included",
        "(with empty `flavor` and `pool_id` when no notebook is in it). A status the API adds",
        "later is exported under its own name as soon as a notebook is in it.",
        "",
        ", ".join(f"`{status}`" for status in KNOWN_STATUSES),
        "",
    ]
    return "\n".join(lines)


def settings_markdown() -> str:
    """The configuration table of README.md."""
    lines = ["| flag | environment | default | meaning |", "| --- | --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        flag, env = setting_names(name)
        envs = f"`{env}`, `{env}_FILE`" if name in SECRET_FIELDS else f"`{env}`"
        if also_env(name):
            envs += f" (or `{also_env(name)}`)"
        default = "" if field.default in (None, "") else f"`{field.default}`"
        lines.append(
            f"| {f'`{flag}`' if flag else '—'} | {envs} | {default} | {field.description} |"
        )
    return "\n".join(lines) + "\n"


SETTINGS_BLOCK = re.compile(r"(<!-- settings:begin -->\n)(.*?)(<!-- settings:end -->)", re.DOTALL)


def with_settings_table(readme: str) -> str:
    return SETTINGS_BLOCK.sub(lambda m: m[1] + settings_markdown() + m[3], readme)


# README's sample: the first series of each of these (name, a label it must have) in a
# scrape of the demo fleet, with ids shortened.
SAMPLE_SERIES = (
    ("modelarts_notebook_instances", 'status="RUNNING"'),
    ("modelarts_notebook_instances", 'status="CREATE_QUEUING"'),
    ("modelarts_notebook_instance_info", 'flavor_type="GPU"'),
    ("modelarts_notebook_instance_queue_rank", ""),
    ("modelarts_notebook_instance_queue_wait_seconds", ""),
    ("modelarts_notebook_instance_auto_stop_remaining_seconds", ""),
    ("modelarts_notebook_flavor_sold_out", "} 1"),
    ("modelarts_up", ""),
)
_ID = re.compile(r'((?:project_id|id)="(?:DE-)?[0-9a-f]{4})[0-9a-f-]+"')


def demo_scrape() -> str:
    """The demo fleet (default size and seed) exported at one frozen second, no faults."""
    now = float(int(time.time()))
    fleet = Fleet(seed=7, clock=lambda: now)
    with Simulator(fleet, seed=7, clock=lambda: now) as sim:
        auth = AkSkProvider(SecretStr(DEMO_AK), SecretStr(DEMO_SK))
        client = ModelArtsClient(sim.url, DEMO_PROJECT_ID, auth)
        listing = client.list_instances()
        client.close()
    snapshot = Snapshot(DEMO_PROJECT_ID, tuple(listing.instances), now)
    status = TargetStatus(DEMO_PROJECT_ID, snapshot, up=True, last_success=now)
    return bytes(Renderer(lambda: [status], clock=lambda: now).render(TEXT)).decode()


def readme_sample(scrape: str) -> str:
    lines = [line for line in scrape.splitlines() if not line.startswith("#")]
    chosen = []
    for name, must in SAMPLE_SERIES:
        line = next(ln for ln in lines if ln.startswith(name + "{") and must in ln)
        chosen.append(_ID.sub(r'\1…"', line))
    return "```\n" + "\n".join(chosen) + "\n```\n"


SAMPLE_BLOCK = re.compile(r"(<!-- sample:begin -->\n)(.*?)(<!-- sample:end -->)", re.DOTALL)


def with_sample(readme: str, scrape: str) -> str:
    return SAMPLE_BLOCK.sub(lambda m: m[1] + readme_sample(scrape) + m[3], readme)


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    (root / "docs" / "metrics.md").write_text(metrics_markdown())
    readme = root / "README.md"
    readme.write_text(with_sample(with_settings_table(readme.read_text()), demo_scrape()))


if __name__ == "__main__":
    main()
