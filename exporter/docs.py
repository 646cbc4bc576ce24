"""Generated documentation: docs/metrics.md and README's settings table.

`python -m exporter.docs` rewrites both from the metric table and the settings model;
tests/test_docs.py fails when either is out of date.
"""

from __future__ import annotations

import re
from pathlib import Path

from exporter.config.settings import SECRET_FIELDS, Settings, setting_names
from exporter.exposition.metrics import METRICS
from exporter.modelarts.statuses import KNOWN_STATUSES


def metrics_markdown() -> str:
    lines = [
        "# Metrics",
        "",
        "Generated from `exporter/exposition/metrics.py` by `python -m exporter.docs`; a test",
        "fails when this file is out of date. Times are Unix seconds. Every series but",
        "`modelarts_exporter_build_info` carries `project_id`.",
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
        default = "" if field.default in (None, "") else f"`{field.default}`"
        lines.append(
            f"| {f'`{flag}`' if flag else '—'} | {envs} | {default} | {field.description} |"
        )
    return "\n".join(lines) + "\n"


SETTINGS_BLOCK = re.compile(r"(<!-- settings:begin -->\n)(.*?)(<!-- settings:end -->)", re.DOTALL)


def with_settings_table(readme: str) -> str:
    return SETTINGS_BLOCK.sub(lambda m: m[1] + settings_markdown() + m[3], readme)


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    (root / "docs" / "metrics.md").write_text(metrics_markdown())
    readme = root / "README.md"
    readme.write_text(with_settings_table(readme.read_text()))


if __name__ == "__main__":
    main()
