"""The Grafana dashboards: importable, tidy, and every query valid PromQL on real metrics."""

from __future__ import annotations

import json
import re
from itertools import combinations
from typing import Any

import promql_parser
import pytest

from exporter.exposition.metrics import METRICS
from exporter.modelarts.statuses import KNOWN_STATUSES
from tests.support.prometheus import (
    BUILTIN_INTERVALS,
    DASHBOARD_DIR,
    DASHBOARD_FILES,
    DATASOURCE,
    RATE_INTERVAL,
    ROOT,
    alert_rules,
    all_panels,
    data_panels,
    known_metric_names,
    load_dashboard,
    metric_names,
    panel_queries,
    range_selectors,
    recording_rule_names,
    substitute,
    variable_promql,
    variable_query,
    variables,
)

EXPECTED = {
    "modelarts-overview.json": "modelarts-overview",
    "modelarts-instance.json": "modelarts-instance",
    "modelarts-exporter.json": "modelarts-exporter",
    "modelarts-users.json": "modelarts-users",
}
# Panels each dashboard must have (by title): what operators asked for.
REQUIRED_PANELS = {
    "modelarts-overview": {
        "Notebooks by status",
        "Notebooks by flavor",
        "Notebooks by pool",
        "Running GPU notebooks",
        "Queued notebooks",
        "Flavor availability",
        "Queue length by flavor",
        "Notebooks auto-stopping within 15 minutes",
        "Notebooks in a transitional status",
        "Failed notebooks and error codes",
        # freshness, at the top
        "Refresh",
        "Data age",
        # accelerators
        "GPUs held",
        "NPUs held",
        "Accelerator cards queued",
        "Accelerator cards: running vs. queued",
        "Accelerator cards by pool",
        "Accelerator cards by flavor",
        "Top users by accelerator cards",
        # changes and queue waits
        "Status changes per hour",
        "Creation and start failures per hour",
        "Queue wait p50 and p90 by flavor",
    },
    "modelarts-instance": {
        "Status history",
        "Status",
        "Auto-stop countdown",
        "Stops in",
        "Queue position",
        "Waiting in queue",
        "Queue position and wait",
        "Flavor",
        "Pool",
        "User",
    },
    "modelarts-exporter": {
        "Refresh",
        "Data age",
        "Refresh duration",
        "API requests by code",
        "API error ratio",
        "Invalid records",
        "Build info",
        "Clock skew",
        "Credential requests by code",
    },
    "modelarts-users": {
        "Notebooks per user",
        "Running notebooks per user",
        "Accelerator cards held per user",
        "Accelerator cards per user and accelerator",
        "Accelerator notebooks",
    },
}
FILTER_VARIABLES = {
    "modelarts-overview": ("job", "region", "project_id", "pool_id", "flavor"),
    "modelarts-instance": ("job", "region", "project_id", "pool_id", "flavor"),
    "modelarts-exporter": ("job", "region", "project_id", "instance"),
    "modelarts-users": (
        "job",
        "region",
        "project_id",
        "pool_id",
        "flavor",
        "accelerator",
        "user_name",
    ),
}
# Series the dashboards may read besides the exporter's metrics: its process metrics
# (prometheus_client's ProcessCollector, not in METRICS), and a histogram's series.
PROCESS_METRICS = {
    "process_cpu_seconds_total",
    "process_max_fds",
    "process_open_fds",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_virtual_memory_bytes",
}


def readable_metric_names() -> frozenset[str]:
    histograms = {
        f"{m.name}_{suffix}"
        for m in METRICS
        if m.type == "histogram"
        for suffix in ("bucket", "count", "sum")
    }
    return known_metric_names() | histograms | PROCESS_METRICS


dashboards = pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.stem)


def test_the_dashboards_exist_with_distinct_uids():
    assert {p.name for p in DASHBOARD_FILES} == set(EXPECTED)
    for path in DASHBOARD_FILES:
        assert load_dashboard(path)["uid"] == EXPECTED[path.name]


@dashboards
def test_importable_without_inputs(path):
    text = path.read_text(encoding="utf-8")
    d = json.loads(text)
    assert "__inputs" not in d and "${DS_" not in text, "no import-time inputs"
    assert d["schemaVersion"] >= 36 and d["title"].startswith("ModelArts / ")
    assert d["id"] is None, "a fixed id clashes with existing dashboards on import"
    assert "modelarts" in d["tags"] and d["description"]
    assert text.endswith("\n") and text == json.dumps(d, indent=2, ensure_ascii=False) + "\n", (
        "keep the file formatted (json.dumps indent=2) so diffs stay readable"
    )


@dashboards
def test_variables(path):
    d = load_dashboard(path)
    v = variables(d)
    ds = v["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    for name in FILTER_VARIABLES[d["uid"]]:
        var = v[name]
        assert var["type"] == "query" and var["datasource"] == DATASOURCE, name
        assert var["multi"] and var["includeAll"], name
        if name == "project_id":  # All is the projects of the selected regions
            assert "allValue" not in var, "a project_id of .* would ignore the region"
        else:
            assert var["allValue"] == ".*", name
        assert var["refresh"] == 2, f"{name}: refresh on time range change"
        assert var["definition"] == variable_query(var), name
    if d["uid"] == "modelarts-instance":
        nb = v["id"]
        assert nb["type"] == "query" and not nb["multi"] and not nb["includeAll"]
        assert variable_query(nb).startswith("query_result(") and "(?<text>" in nb["regex"]
        assert "(?<value>" in nb["regex"]


@dashboards
def test_no_hard_coded_datasource(path):
    d = load_dashboard(path)
    uids = set(re.findall(r'"uid": "([^"]*)"', path.read_text()))
    assert uids <= {"${datasource}", "-- Grafana --", d["uid"]}, uids
    for panel in data_panels(d):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, (panel["title"], target["refId"])
    for var in variables(d).values():
        if var["type"] == "query":
            assert var["datasource"] == DATASOURCE, var["name"]


@dashboards
def test_panel_ids_unique_and_grid_positions_do_not_overlap(path):
    panels = list(all_panels(load_dashboard(path)))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), ids
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["y"] >= 0 and g["w"] > 0 and g["h"] > 0, p["title"]
        assert g["x"] + g["w"] <= 24, f"{p['title']} is wider than the grid"
    for a, b in combinations(panels, 2):
        ga, gb = a["gridPos"], b["gridPos"]
        overlap = (
            ga["x"] < gb["x"] + gb["w"]
            and gb["x"] < ga["x"] + ga["w"]
            and ga["y"] < gb["y"] + gb["h"]
            and gb["y"] < ga["y"] + ga["h"]
        )
        assert not overlap, f"{a['title']} overlaps {b['title']}"


@dashboards
def test_every_panel_has_title_description_and_unit(path):
    d = load_dashboard(path)
    titles = [p["title"] for p in data_panels(d)]
    assert len(titles) == len(set(titles)), "panel titles are unique"
    for panel in data_panels(d):
        assert panel["title"] and len(panel["description"]) >= 20, panel["title"]
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{panel['title']} has no unit"
    for row in all_panels(d):
        if row["type"] == "row":
            assert row["title"] and not row.get("targets")


@dashboards
def test_required_panels(path):
    d = load_dashboard(path)
    titles = {p["title"] for p in data_panels(d)}
    assert REQUIRED_PANELS[d["uid"]] <= titles, REQUIRED_PANELS[d["uid"]] - titles
    types = {p["type"] for p in data_panels(d)}
    if d["uid"] == "modelarts-instance":
        assert "state-timeline" in types


@dashboards
def test_every_query_parses_and_uses_known_metrics(path):
    d = load_dashboard(path)
    known = readable_metric_names()
    queries = panel_queries(path)
    assert queries
    for q in queries:
        expr = substitute(q.expr, d)
        try:
            used = metric_names(expr)
        except Exception as err:  # promql_parser raises its own error type
            pytest.fail(f"{q.id}: does not parse: {err}\n{expr}")
        assert used, f"{q.id} selects no metric"
        assert used <= known, f"{q.id} uses unknown metrics {used - known}"


@dashboards
def test_dashboards_do_not_need_the_recording_rules(path):
    """The dashboards work on a Prometheus that loads only the exporter's metrics."""
    d = load_dashboard(path)
    recorded = recording_rule_names()
    for q in panel_queries(path):
        assert not metric_names(substitute(q.expr, d)) & recorded, q.id


@dashboards
def test_rates_use_rate_interval(path):
    """[$__rate_interval] everywhere; [$__range] in an instant query (a table of the whole
    time range)."""
    d = load_dashboard(path)
    instant = {
        (panel["title"], t["refId"])
        for panel in data_panels(d)
        for t in panel.get("targets", [])
        if t.get("instant")
    }
    for q in panel_queries(path):
        allowed = {RATE_INTERVAL}
        if (q.panel, q.ref_id) in instant:
            allowed.add(BUILTIN_INTERVALS["__range"])
        for duration in range_selectors(substitute(q.expr, d)):
            assert duration in allowed, f"{q.id}: use [$__rate_interval], not [{duration}]"
        if re.search(r"\b(rate|irate|increase)\(", q.expr):
            assert "[$__rate_interval]" in q.expr or (q.panel, q.ref_id) in instant, q.id


@dashboards
def test_variable_queries_parse_and_use_known_metrics(path):
    d = load_dashboard(path)
    for var in variables(d).values():
        if var["type"] != "query":
            continue
        expr, label = variable_promql(substitute(variable_query(var), d))
        assert metric_names(expr) <= readable_metric_names(), var["name"]
        if label is not None:
            promql_parser.parse(expr)


@dashboards
def test_table_columns_referenced_by_overrides_exist(path):
    d = load_dashboard(path)
    for panel in data_panels(d):
        if panel["type"] != "table":
            continue
        organize = next(t for t in panel["transformations"] if t["id"] == "organize")["options"]
        columns = set(organize["renameByName"].values()) | set(organize["indexByName"])
        for override in panel["fieldConfig"]["overrides"]:
            column = override["matcher"]["options"]
            if override["matcher"]["id"] == "byName":
                assert column in columns, f"{panel['title']}: no column {column}"


def _mapped_texts(mappings: list[dict[str, Any]]) -> dict[str, str]:
    return {
        key: result.get("text", key)
        for mapping in mappings
        for key, result in mapping["options"].items()
    }


def test_status_colours_cover_every_status():
    overview = load_dashboard(DASHBOARD_DIR / "modelarts-overview.json")
    by_status = next(p for p in data_panels(overview) if p["title"] == "Notebooks by status")
    coloured = {o["matcher"]["options"] for o in by_status["fieldConfig"]["overrides"]}
    assert coloured == set(KNOWN_STATUSES)

    instance = load_dashboard(DASHBOARD_DIR / "modelarts-instance.json")
    history = next(p for p in data_panels(instance) if p["title"] == "Status history")
    texts = _mapped_texts(history["fieldConfig"]["defaults"]["mappings"])
    assert sorted(texts.values()) == sorted(KNOWN_STATUSES)
    # The numeric code of each status in the query is the one its mapping turns back.
    expr = history["targets"][0]["expr"]
    for code, status in texts.items():
        assert re.search(rf'status="{status}"\}} \* {code}\b', expr), status


def test_data_links_point_at_existing_dashboards():
    uids = set(EXPECTED.values())
    for path in DASHBOARD_FILES:
        for url in re.findall(r'"url": "(/d/[^"]+)"', path.read_text()):
            assert url.split("/")[2] in uids, url
            assert "var-id=${__data.fields.id}" in url


def test_docs_describe_every_dashboard_and_panel():
    docs = (ROOT / "docs" / "dashboards.md").read_text()
    for path in DASHBOARD_FILES:
        d = load_dashboard(path)
        assert f"## {d['title']}" in docs and path.name in docs
        for panel in all_panels(d):
            assert f"| {panel['title']} |" in docs or f"| **{panel['title']}** |" in docs, (
                f"docs/dashboards.md does not list {panel['title']} of {path.name}"
            )


@dashboards
def test_a_region_narrows_the_projects(path):
    v = variables(load_dashboard(path))
    names = list(v)
    assert names.index("job") < names.index("region") < names.index("project_id")
    assert variable_query(v["region"]) == (
        'label_values(modelarts_exporter_target_info{job=~"$job"}, region)'
    )
    project = variable_query(v["project_id"])
    assert project.startswith("label_values(modelarts_exporter_target_info{")
    assert 'region=~"$region"' in project


def test_freshness_comes_first_in_the_overview():
    """Stale data must never look normal: refresh status and data age open the dashboard,
    and counts fall back to 0 only while an exporter reports (never `vector(0)`)."""
    overview = load_dashboard(DASHBOARD_DIR / "modelarts-overview.json")
    panels = list(all_panels(overview))
    assert panels[0]["type"] == "row"
    top = [p for p in panels if p["gridPos"]["y"] == panels[0]["gridPos"]["h"]]
    assert {p["title"] for p in top} >= {"Refresh", "Data age"}
    for panel in top:
        assert panel["fieldConfig"]["defaults"]["noValue"] == "NO DATA", panel["title"]
    refresh = next(p for p in top if p["title"] == "Refresh")
    assert "modelarts_up" in refresh["targets"][0]["expr"]
    age = next(p for p in top if p["title"] == "Data age")
    assert "modelarts_exporter_last_refresh_success_timestamp_seconds" in age["targets"][0]["expr"]
    for path in DASHBOARD_FILES:
        assert "vector(0)" not in path.read_text(), f"{path.name}: fall back on modelarts_up"


def annotation_queries(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in dashboard["annotations"]["list"] if not a.get("builtIn")]


@dashboards
def test_annotations_show_the_exporters_alerts(path):
    d = load_dashboard(path)
    (annotation,) = annotation_queries(d)
    assert annotation["datasource"] == DATASOURCE and annotation["enable"]
    expr = substitute(annotation["expr"], d)
    assert metric_names(expr) == {"ALERTS"}
    selector = promql_parser.parse(expr)
    assert isinstance(selector, promql_parser.VectorSelector)
    matchers = {m.name: m for m in selector.matchers.matchers}
    assert matchers["alertstate"].value == "firing"
    pattern = re.compile(matchers["alertname"].value)
    shown = {name for name in alert_rules() if pattern.fullmatch(name)}
    assert shown, f"{path.name}: its annotations match no alert"
    assert pattern.pattern.startswith("ModelArts")
