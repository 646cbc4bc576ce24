"""The report in words and numbers: the targets, the cost per instance, the tables.

`table` is what `python -m bench` prints, `markdown` the results block of
docs/performance.md (written by `update_doc`), with the Helm `resources` that `sizing`
derives from the measurements; `targets` and `growth` go into bench/results.json too.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.plan import VARIANTS

SIZES = (1_000, 10_000, 50_000)  # the sizes of a full run
MIB = 1024 * 1024  # the figures are in MiB (VmHWM), the RSS target in MB
E2E_SLOW_TEST = (
    "tests/integration/test_e2e.py::test_a_fleet_slower_to_list_than_the_budget_still_gets_up"
)


def targets(
    sizes: list[dict[str, Any]], many: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The targets of issue #17 ("Scale"), each met, NOT MET, or not measured (its size or
    part not run), with its value."""
    by_size = {r["instances"]: r for r in sizes}
    out: list[dict[str, Any]] = []

    def add(
        name: str,
        result: dict[str, Any] | None,
        value: Callable[[dict[str, Any]], Any],
        ok: Callable[[Any], bool],
    ) -> None:
        try:
            v = value(result) if result is not None else None
        except (KeyError, TypeError):  # a part this result does not have (an older run)
            v = None
        if v is None:
            out.append({"target": name, "status": "not measured"})
            return
        out.append({"target": name, "value": v, "status": "met" if ok(v) else "NOT MET"})

    for size in sorted(set(SIZES) | set(by_size)):
        add(
            f"{_k(size)}: hot scrape <= 1.5x the limit, back-to-back, every variant",
            by_size.get(size),
            lambda r: {v: round(r["ratio_ours_over_limit"][v], 2) for v in VARIANTS},
            lambda x: max(x.values()) <= 1.5,
        )
    add(
        "10k: first scrape of a second, openmetrics+gzip <= 2x the limit"
        " (text and openmetrics for information)",
        by_size.get(10_000),
        lambda r: {
            v: round(r["ratio_new_second_over_limit"][v], 2)
            for v in ("openmetrics+gzip", "text", "openmetrics")
        },
        lambda x: x["openmetrics+gzip"] <= 2.0,
    )
    for size, part, label, limit in (
        (50_000, "cold", "unchanged fleet", 2.0),
        (50_000, "churn", "5% changed", 3.0),
        (10_000, "cold", "unchanged fleet", 0.5),
    ):
        add(
            f"{_k(size)}, {label}: cold scrape - fetch <= {limit} s"
            " [cold - fetch, cold, fetch: medians, s; failed refreshes]",
            by_size.get(size),
            lambda r, part=part: (
                round(r[part]["minus_fetch_p50_s"], 3),
                round(r[part]["p50_s"], 3),
                round(r["fetch"]["median_s"], 3),
                r[part]["failed_refreshes"],
            ),
            lambda x, limit=limit: x[0] <= limit and x[3] == 0,
        )
        if size == 50_000:
            add(
                f"{_k(size)}, {label}: exporter CPU per refresh <= {limit} s",
                by_size.get(size),
                lambda r, part=part: round(r[part]["cpu_s_per_scrape"], 2),
                lambda x, limit=limit: x <= limit,
            )
    add(
        "50k: peak RSS <= 250 MB (VmHWM, any phase, bursts of 50 included) [MB, MiB]",
        by_size.get(50_000),
        lambda r: (round(r["rss_mb"]["peak"] * MIB / 1e6, 1), round(r["rss_mb"]["peak"], 1)),
        lambda x: x[0] <= 250,
    )
    label = f"{many['targets']}x{_k(many['instances'])}" if many else "20x5k"
    add(
        f"{label} in one process: every scrape < 2 s after the first refresh"
        " [max, p95 s; scrapes; of them >= 2 s or failed]",
        many,
        lambda m: (
            round(m["scrapes"]["max_ms"] / 1000, 2),
            round(m["scrapes"]["p95_ms"] / 1000, 2),
            m["scrapes"]["n"],
            m["scrapes"]["over_2s"] + m["failures"],
        ),
        lambda x: x[0] < 2.0 and x[3] == 0,
    )
    add(
        f"{label}: the slow target does not delay the others: their data age"
        " <= TTL + interval + their refresh (x2 with --refresh.background) + 1 s, always up"
        " [max age, limit s; up]",
        many,
        lambda m: (
            round(m["fast"]["max_age_s"], 1),
            round(m["fast"]["age_limit_s"], 1),
            m["fast"]["always_up"],
        ),
        lambda x: x[0] <= x[1] and x[2],
    )
    add(
        f"a refresh longer than the budget still gets modelarts_up 1 (the {label} run's"
        f" slow target; also {E2E_SLOW_TEST}) [refresh, budget s; up]",
        many,
        lambda m: (
            (round(m["slow"]["max_refresh_s"], 1), m["refresh_budget_s"], m["slow"]["always_up"])
            if m["slow"]["refresh_over_budget"]
            else None  # the slow target was not slower than the budget: not measured
        ),
        lambda x: x[2],
    )
    add(
        "every size: exactly 1 upstream listing per TTL window, 50 scrapers",
        {"sizes": sizes} if sizes else None,
        lambda d: {r["instances"]: r["concurrency"]["listings_per_window"] for r in d["sizes"]},
        lambda _: all(r["concurrency"]["exactly_one_per_window"] for r in sizes),
    )
    add(
        "10k: naive >= 20x slower than ours (text)",
        by_size.get(10_000),
        lambda r: round(r["ratio_naive_over_ours"], 1),
        lambda x: x >= 20,
    )
    return out


def _k(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else f"{n:,}"


def growth(sizes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Marginal cost per instance between consecutive sizes."""
    out = []
    for small, big in itertools.pairwise(sizes):
        added = big["instances"] - small["instances"]

        def per(get: Callable[[dict[str, Any]], float], b: dict[str, Any] = big) -> float:
            return (get(b) - get(small)) / added  # noqa: B023

        out.append(
            {
                "from": small["instances"],
                "to": big["instances"],
                "rss_kb_per_instance": per(lambda r: r["rss_mb"]["peak"]) * 1024,
                "body_bytes_per_instance": per(lambda r: r["body_bytes"]["text"]),
                "hot_cpu_us_per_instance": {
                    v: per(lambda r, v=v: r["hot"][v]["cpu_ms_per_scrape"]) * 1000 for v in VARIANTS
                },
                "new_second_cpu_us_per_instance": {
                    v: per(lambda r, v=v: r["hot_new_second"][v]["cpu_ms_per_scrape"]) * 1000
                    for v in VARIANTS
                },
                "cold_ms_per_instance": per(lambda r: r["cold"]["p50_s"]) * 1000,
                "naive_ms_per_instance": per(lambda r: r["naive"]["p50_ms"]),
            }
        )
    return out


def table(sizes: list[dict[str, Any]]) -> str:
    lines = [
        "Hot scrape, warm cache: median / p95 latency in ms, CPU ms per scrape;"
        " 'new s': each scrape the first of a new second",
        f"{'instances':>9}  {'variant':<16} {'body':>8}  {'ours':>15}  {'ours new s':>10}"
        f"  {'limit':>15}  {'ours/limit':>10}  {'new s/limit':>11}"
        f"  {'CPU ours':>8}  {'new s':>6}  {'limit':>6}",
    ]
    for r in sizes:
        for v in VARIANTS:
            o, n, f = r["hot"][v], r["hot_new_second"][v], r["limit"][v]
            lines.append(
                f"{r['instances']:>9,}  {v:<16} {_mb(r['body_bytes'][v]):>8}"
                f"  {o['p50_ms']:7.2f} /{o['p95_ms']:6.2f}  {n['p50_ms']:10.2f}"
                f"  {f['p50_ms']:7.2f} /{f['p95_ms']:6.2f}"
                f"  {r['ratio_ours_over_limit'][v]:>9.2f}x"
                f"  {r['ratio_new_second_over_limit'][v]:>10.2f}x"
                f"  {o['cpu_ms_per_scrape']:8.2f}  {n['cpu_ms_per_scrape']:6.1f}"
                f"  {f['cpu_ms_per_scrape']:6.2f}"
            )
    lines += ["", *refresh_table(sizes)]
    lines += [
        "",
        "Naive exporter, bursts of concurrent scrapers, peak RSS (MiB)",
        f"{'instances':>9}  {'naive s':>8}"
        f"  {'naive/ours':>10}  {'listings/windows':>19} {'failed':>6}"
        f" {'burst p50/max s':>15} {'>10s':>4}"
        f"  {'hot':>5} {'refresh':>7} {'bursts':>6} {'naive':>6}",
    ]
    for r in sizes:
        n, k, m = r["naive"], r["concurrency"], r["rss_mb"]
        per_window = f"{k['listings']}/{k['attempts_seen']} ({k['bursts']}x{k['scrapers']})"
        lines.append(
            f"{r['instances']:>9,}"
            f"  {n['p50_ms'] / 1000:8.3f}  {r['ratio_naive_over_ours']:>9.0f}x"
            f"  {per_window:>19} {k['failed_refreshes']:>6}"
            f" {k['p50_ms'] / 1000:7.2f}/{k['max_ms'] / 1000:<7.2f}"
            f" {k['over_10s'] + k['failures']:>4}  {m['hot']['peak']:>5.0f}"
            f" {m['refreshes']['peak']:>7.0f} {m['bursts']['peak']:>6.0f}"
            f" {n['rss_mb']['peak']:>6.0f}"
        )
    return "\n".join(lines)


def refresh_table(sizes: list[dict[str, Any]]) -> list[str]:
    """Fetch floor, cold scrapes and their CPU, the fleet unchanged and churned."""
    share = next((r["churn"]["share"] for r in sizes if "churn" in r), 0.05)
    changed = f"{share:.0%} changed"
    lines = [
        "Refresh: fetch = the cold scrape's pages downloaded, nothing parsed (median s);"
        " cold = first scrape after the TTL (median / max s), minus fetch, exporter CPU s"
        f" per refresh; unchanged fleet and {changed}",
        f"{'instances':>9}  {'fetch':>6} {'requests':>8} {'MB':>6}"
        f"  {'cold':>6} {'max':>6} {'-fetch':>6} {'CPU':>5}"
        f"  {changed + ' cold':>14} {'max':>6} {'-fetch':>6} {'CPU':>5}",
    ]
    for r in sizes:
        f, c, h = r["fetch"], r["cold"], r["churn"]
        lines.append(
            f"{r['instances']:>9,}  {f['median_s']:6.3f} {f['requests']:>8} {f['bytes'] / 1e6:6.1f}"
            f"  {c['p50_s']:6.3f} {c['max_s']:6.3f} {c['minus_fetch_p50_s']:6.3f}"
            f" {c['cpu_s_per_scrape']:5.2f}"
            f"  {h['p50_s']:14.3f} {h['max_s']:6.3f} {h['minus_fetch_p50_s']:6.3f}"
            f" {h['cpu_s_per_scrape']:5.2f}"
        )
    return lines


def many_table(m: dict[str, Any]) -> list[str]:
    """The many-targets run, in words and figures."""
    s, p, f, w = m["scrapes"], m["probes"], m["fast"], m["slow"]
    args = " ".join(m["exporter_args"]) or "defaults"
    cpu = m["cpu"]
    return [
        f"{m['targets']} targets of {m['instances']:,} notebooks in one exporter ({args};"
        f" --cache-ttl {m['ttl_s']:g}, --refresh-budget {m['refresh_budget_s']:g}),"
        f" {m['slow_targets']} slow ({m['slow_latency_s'] * 1000:.0f} ms a request),"
        f" /metrics every {m['interval_s']:g} s for {m['seconds']:.0f} s",
        f"  first refresh landed {m['first_refresh']['fast_s']:.1f} s after start for every"
        f" fast target, {m['first_refresh']['all_s']:.1f} s for all"
        f" (slowest scrape meanwhile {m['first_refresh']['max_scrape_s']:.1f} s)",
        f"  scrapes: {s['n']}, median {s['p50_ms'] / 1000:.2f} s, p95 {s['p95_ms'] / 1000:.2f} s,"
        f" max {s['max_ms'] / 1000:.2f} s, {s['over_2s']} of 2 s or more,"
        f" {m['failures']} failed; probes of {p.get('target')}: median {p['p50_ms']:.0f} ms,"
        f" max {p['max_ms']:.0f} ms",
        f"  exporter CPU: {cpu['seconds']:.1f} s = {cpu['core_share']:.0%} of a core,"
        f" {cpu['refresh_cycles']:.1f} refresh cycles,"
        f" {cpu['per_cycle_s'] or 0:.2f} s a cycle of every target; peak RSS"
        f" {m['rss_mb']['peak']:.0f} MiB; simulators {m['simulators']['core_share']:.0%}"
        f" of a core ({m['simulators']['processes']} process)",
        f"  fast targets: refresh median {f['median_refresh_s']:.2f} s, max"
        f" {f['max_refresh_s'] or 0:.2f} s; data age max {f['max_age_s'] or 0:.1f} s"
        f" (limit {f['age_limit_s']:.1f} s); always up: {f['always_up']}",
        f"  slow target: refresh {w['max_refresh_s'] or 0:.1f} s, data age max"
        f" {w['max_age_s'] or 0:.1f} s, {w['refreshes']} refreshes; always up: {w['always_up']}",
    ]


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 100_000 else f"{n / 1e3:.0f} kB"


def _ceil(value: float, step: int) -> int:
    return int(-(-value // step) * step)


def sizing(r: dict[str, Any], ttl: float = 30.0, scrapes_per_ttl: float = 4.0) -> dict[str, Any]:
    """Helm `resources` for a fleet of this size, from what was measured.

    Memory: request the peak of refresh after refresh, limit the peak under bursts of
    50 scrapers plus 25 %. CPU: twice the average of one refresh per `ttl` (the default
    --cache-ttl) and `scrapes_per_ttl` Prometheus scrapes (an HA pair every 15 s).
    """
    refresh_cpu = r["cold"]["cpu_s_per_scrape"]
    # A lone Prometheus scrape is the first of its second: nothing per-second is cached.
    scrape_cpu = r["hot_new_second"]["openmetrics+gzip"]["cpu_ms_per_scrape"] / 1000
    average_m = 1000 * (refresh_cpu + scrapes_per_ttl * scrape_cpu) / ttl
    return {
        "requests_memory_mi": _ceil(r["rss_mb"]["refreshes"]["peak"], 16),
        "limits_memory_mi": _ceil(r["rss_mb"]["peak"] * 1.25, 64),
        "average_cpu_m": average_m,
        "requests_cpu_m": max(50, _ceil(2 * average_m, 10)),
    }


def markdown(report: dict[str, Any]) -> str:
    """The results as Markdown, for docs/performance.md."""
    meta, sizes = report["meta"], report["sizes"]
    out = [
        f"Measured {meta['date'][:10]} on {meta['machine']}, Python {meta['python']}, "
        f"exporter {meta['exporter_version']} (commit {meta.get('commit') or '?'}"
        f"{', with local changes' if meta.get('exporter_modified') else ''}"
        f"{', PYTHONPATH=' + meta['pythonpath'] if meta.get('pythonpath') else ''}); "
        f"the whole run took {meta['seconds']:.0f} s"
        + (
            f" (load average {meta['loadavg_before'][0]:.2f} before,"
            f" {meta['loadavg_after'][0]:.2f} after)."
            if "loadavg_before" in meta
            else "."
        ),
        "",
        "**Hot scrape** (warm cache), median / p95 ms and CPU ms per scrape; *new second*:"
        " each scrape the first of a new second, as a lone Prometheus scrapes (median ms,"
        " CPU ms per scrape):",
        "",
        "| instances | variant | body | ours | limit | ours/limit | new second | new second/limit "
        "| CPU ours | CPU new second | CPU limit |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in sizes:
        for v in VARIANTS:
            o, n, f = r["hot"][v], r["hot_new_second"][v], r["limit"][v]
            out.append(
                f"| {r['instances']:,} | {v} | {_mb(r['body_bytes'][v])} "
                f"| {o['p50_ms']:.2f} / {o['p95_ms']:.2f} | {f['p50_ms']:.2f} / {f['p95_ms']:.2f} "
                f"| **{r['ratio_ours_over_limit'][v]:.2f}×** | {n['p50_ms']:.2f} "
                f"| **{r['ratio_new_second_over_limit'][v]:.2f}×** "
                f"| {o['cpu_ms_per_scrape']:.2f} | {n['cpu_ms_per_scrape']:.1f} "
                f"| {f['cpu_ms_per_scrape']:.2f} |"
            )
    share = next((r["churn"]["share"] for r in sizes if "churn" in r), 0.05)
    out += [
        "",
        "**Refresh**: *fetch* = the pages a refresh reads, downloaded and thrown away by"
        " `bench/fetch.py` (median s, requests, MB); *cold* = the first scrape after the"
        " cache expired (median / max s), *− fetch* its median minus the fetch floor (the"
        " exporter's own part), *CPU* the exporter's CPU seconds per refresh; with the fleet"
        f" unchanged, and each after {share:.0%} of the notebooks changed:",
        "",
        "| instances | fetch s | requests | MB | cold s | − fetch | CPU s "
        f"| {share:.0%} changed: cold s | − fetch | CPU s |",
        "|" + " ---: |" * 10,
    ]
    for r in sizes:
        f, c, h = r["fetch"], r["cold"], r["churn"]
        out.append(
            f"| {r['instances']:,} | {f['median_s']:.3f} | {f['requests']} "
            f"| {f['bytes'] / 1e6:.1f} | {c['p50_s']:.3f} / {c['max_s']:.3f} "
            f"| **{c['minus_fetch_p50_s']:.3f}** | **{c['cpu_s_per_scrape']:.2f}** "
            f"| {h['p50_s']:.3f} / {h['max_s']:.3f} | **{h['minus_fetch_p50_s']:.3f}** "
            f"| **{h['cpu_s_per_scrape']:.2f}** |"
        )
    out += [
        "",
        "**Naive exporter, bursts, memory**: naive = `bench/naive_exporter.py`, every scrape;"
        " bursts = 50 scrapers at once after the TTL (upstream listings / refresh attempts"
        " served, of which failed,"
        " scrape latency median / max s, scrapes over Prometheus's 10 s timeout or failed);"
        " peak RSS (VmHWM, MiB) with one refresh, refresh after refresh, and with the bursts.",
        "",
        "| instances | naive s | naive/ours | listings / windows | failed "
        "| burst s | > 10 s | RSS hot | RSS refreshes | RSS bursts | RSS naive |",
        "|" + " ---: |" * 11,
    ]
    for r in sizes:
        n, k, m = r["naive"], r["concurrency"], r["rss_mb"]
        out.append(
            f"| {r['instances']:,} | {n['p50_ms'] / 1000:.2f} "
            f"| **{r['ratio_naive_over_ours']:.0f}×** "
            f"| {k['listings']} / {k['attempts_seen']} ({k['bursts']}×{k['scrapers']}) "
            f"| {k['failed_refreshes']} "
            f"| {k['p50_ms'] / 1000:.2f} / {k['max_ms'] / 1000:.2f} "
            f"| {k['over_10s'] + k['failures']} | {m['hot']['peak']:.0f} "
            f"| {m['refreshes']['peak']:.0f} | {m['bursts']['peak']:.0f} "
            f"| {n['rss_mb']['peak']:.0f} |"
        )
    if report["growth"]:
        out += [
            "",
            "**Cost of each additional instance** between two measured sizes:",
            "",
            "| instances | peak RSS | exposition (text) | CPU per scrape, first of a second"
            " (text / gzip) | cold scrape | naive scrape |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for g in report["growth"]:
            cpu = g["new_second_cpu_us_per_instance"]
            out.append(
                f"| {g['from']:,} → {g['to']:,} | {g['rss_kb_per_instance']:.1f} KiB "
                f"| {g['body_bytes_per_instance']:.0f} B "
                f"| {cpu['text']:.2f} / {cpu['openmetrics+gzip']:.2f} µs "
                f"| {g['cold_ms_per_instance'] * 1000:.0f} µs "
                f"| {g['naive_ms_per_instance'] * 1000:.0f} µs |"
            )
    out += [
        "",
        "**Suggested `resources`** (see *Sizing* below for how they are derived):",
        "",
        "| instances | requests.memory | limits.memory | requests.cpu | average CPU |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in sizes:
        z = sizing(r)
        out.append(
            f"| {r['instances']:,} | {z['requests_memory_mi']}Mi | {z['limits_memory_mi']}Mi "
            f"| {z['requests_cpu_m']}m | {z['average_cpu_m']:.0f}m |"
        )
    largest = max(sizes, key=lambda r: r["instances"])
    z = sizing(largest)
    out += [
        "",
        f"As Helm values, for {largest['instances']:,} notebooks:",
        "",
        "```yaml",
        "resources:",
        "  requests:",
        f"    cpu: {z['requests_cpu_m']}m",
        f"    memory: {z['requests_memory_mi']}Mi",
        "  limits:",
        f"    memory: {z['limits_memory_mi']}Mi",
        "```",
    ]
    if report.get("many"):
        out += ["", *many_markdown(report["many"])]
    out += ["", "**Targets**:", ""]
    for t in report["targets"]:
        value = f": {t['value']}" if "value" in t else ""
        out.append(f"- {t['status']}: {t['target']}{value}")
    return "\n".join(out)


def many_markdown(m: dict[str, Any]) -> list[str]:
    """The many-targets run as Markdown."""
    s, p, f, w, cpu = m["scrapes"], m["probes"], m["fast"], m["slow"], m["cpu"]
    args = f"`{' '.join(m['exporter_args'])}`" if m["exporter_args"] else "default settings"
    return [
        f"**{m['targets']} projects of {m['instances']:,} notebooks in one process**"
        f" ({args}, `--cache-ttl {m['ttl_s']:g}`, `--refresh-budget"
        f" {m['refresh_budget_s']:g}`), {m['slow_targets']} of them slow"
        f" ({m['slow_latency_s'] * 1000:.0f} ms a request: a refresh longer than the budget);"
        f" `/metrics` (OpenMetrics + gzip) every {m['interval_s']:g} s for"
        f" {m['seconds']:.0f} s, `/probe?target={p.get('target')}` in between, after the"
        " first refresh:",
        "",
        "| figure | value |",
        "| --- | ---: |",
        "| first refresh landed, after the exporter started: every fast target / all"
        f" | {m['first_refresh']['fast_s']:.1f} s / {m['first_refresh']['all_s']:.1f} s |",
        f"| scrapes: median / p95 / max | {s['p50_ms'] / 1000:.2f} / {s['p95_ms'] / 1000:.2f}"
        f" / **{s['max_ms'] / 1000:.2f} s** |",
        f"| scrapes of 2 s or more / failed / all | {s['over_2s']} / {m['failures']} / {s['n']} |",
        f"| probes: median / max | {p['p50_ms']:.0f} / {p['max_ms']:.0f} ms |",
        f"| exporter CPU: share of a core / per refresh cycle of every target"
        f" | {cpu['core_share']:.0%} / {cpu['per_cycle_s'] or 0:.2f} s |",
        f"| peak RSS (VmHWM) | {m['rss_mb']['peak']:.0f} MiB |",
        f"| fast targets: refresh median / max | {f['median_refresh_s']:.2f} /"
        f" {f['max_refresh_s'] or 0:.2f} s |",
        f"| fast targets: data age max (limit) / always up | {f['max_age_s'] or 0:.1f} s"
        f" ({f['age_limit_s']:.1f} s) / {'yes' if f['always_up'] else 'no'} |",
        f"| slow target: refresh / data age max / always up | {w['max_refresh_s'] or 0:.1f} s"
        f" / {w['max_age_s'] or 0:.1f} s / {'yes' if w['always_up'] else 'no'} |",
        f"| simulators (another process): share of a core | {m['simulators']['core_share']:.0%} |",
    ]


def update_doc(path: Path, report: dict[str, Any]) -> bool:
    """Replace the block between the bench markers of `path`; False if there are none."""
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    text = path.read_text() if path.exists() else ""
    if begin not in text or end not in text:
        return False
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{markdown(report)}\n{end}{tail}")
    return True
