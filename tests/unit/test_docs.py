"""Generated documentation stays in step with the code."""

from __future__ import annotations

from pathlib import Path

from exporter.config.settings import Settings, setting_names
from exporter.docs import demo_scrape, metrics_markdown, with_sample, with_settings_table
from exporter.exposition.metrics import METRICS

ROOT = Path(__file__).resolve().parents[2]


def test_metrics_md_is_up_to_date():
    assert (ROOT / "docs" / "metrics.md").read_text() == metrics_markdown(), (
        "docs/metrics.md is stale: python -m exporter.docs"
    )


def test_every_metric_is_declared_once_and_documented():
    names = [metric.name for metric in METRICS]
    assert len(names) == len(set(names))
    text = (ROOT / "docs" / "metrics.md").read_text()
    assert all(f"`{name}`" in text for name in names)
    assert all('"' not in metric.help for metric in METRICS)  # promtool rejects \" in HELP


def test_readme_settings_table_is_up_to_date():
    readme = (ROOT / "README.md").read_text()
    assert "<!-- settings:begin -->" in readme
    assert with_settings_table(readme) == readme, "README is stale: python -m exporter.docs"
    for name in Settings.model_fields:
        assert setting_names(name)[1] in readme


def test_readme_sample_is_a_scrape_of_the_demo():
    readme = (ROOT / "README.md").read_text()
    assert "<!-- sample:begin -->" in readme
    assert with_sample(readme, demo_scrape()) == readme, "README is stale: python -m exporter.docs"
