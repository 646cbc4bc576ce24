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


def targets(sizes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lead's targets, each met, not met, or not measured (size not run)."""
    by_size = {r["instances"]: r for r in sizes}
    out: list[dict[str, Any]] = []

    def add(name: str, size: int, value: Callable[[dict[str, Any]], Any], ok: Any) -> None:
        r = by_size.get(size)
        if r is None:
            out.append({"target": name, "status": "not measured"})
            return
        v = value(r)
        out.append({"target": name, "value": v, "status": "met" if ok(v) else "NOT MET"})

    for variant in VARIANTS:
        add(
            f"10k: hot scrape ({variant}) <= 1.5x the limit, back-to-back / first of a second",
            10_000,
            lambda r, v=variant: (
                round(r["ratio_ours_over_limit"][v], 2),
                round(r["ratio_new_second_over_limit"][v], 2),
            ),
            lambda x: max(x) <= 1.5,
        )
    add(
        "10k: naive >= 20x slower than ours (text)",
        10_000,
        lambda r: round(r["ratio_naive_over_ours"], 1),
        lambda x: x >= 20,
    )
    for size, limit, label in ((10_000, 1.0, "<= 1.0 s"), (50_000, 9.999, "< 10 s")):
        add(
            f"{size // 1000}k: cold scrape {label} (median; failed refreshes must be 0)",
            size,
            lambda r: (round(r["cold"]["p50_s"], 2), r["cold"]["failed_refreshes"]),
            lambda x, limit=limit: x[0] <= limit and x[1] == 0,
        )
    add(
        "10k: peak RSS <= 150 MiB (VmHWM, any phase, bursts of 50 included)",
        10_000,
        lambda r: round(r["rss_mb"]["peak"], 1),
        lambda x: x <= 150,
    )
    per_window = {r["instances"]: r["concurrency"]["listings_per_window"] for r in sizes}
    out.append(
        {
            "target": "every size: exactly 1 upstream listing per TTL window, 50 scrapers",
            "value": per_window,
            "status": (
                "met"
                if sizes and all(r["concurrency"]["exactly_one_per_window"] for r in sizes)
                else "NOT MET"
            ),
        }
    )
    return out


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
    lines += [
        "",
        "Cold scrape (s), naive exporter, bursts of concurrent scrapers, peak RSS (MiB)",
        f"{'instances':>9}  {'cold':>6} {'max':>6} {'CPU s':>6}  {'naive s':>8}"
        f"  {'naive/ours':>10}  {'listings/windows':>19} {'failed':>6}"
        f" {'burst p50/max s':>15} {'>10s':>4}"
        f"  {'hot':>5} {'refresh':>7} {'bursts':>6} {'naive':>6}",
    ]
    for r in sizes:
        c, n, k, m = r["cold"], r["naive"], r["concurrency"], r["rss_mb"]
        per_window = f"{k['listings']}/{k['attempts_seen']} ({k['bursts']}x{k['scrapers']})"
        lines.append(
            f"{r['instances']:>9,}  {c['p50_s']:6.2f} {c['max_s']:6.2f}"
            f" {c['cpu_s_per_scrape']:6.2f}"
            f"  {n['p50_ms'] / 1000:8.3f}  {r['ratio_naive_over_ours']:>9.0f}x"
            f"  {per_window:>19} {k['failed_refreshes']:>6}"
            f" {k['p50_ms'] / 1000:7.2f}/{k['max_ms'] / 1000:<7.2f}"
            f" {k['over_10s'] + k['failures']:>4}  {m['hot']['peak']:>5.0f}"
            f" {m['refreshes']['peak']:>7.0f} {m['bursts']['peak']:>6.0f}"
            f" {n['rss_mb']['peak']:>6.0f}"
        )
    return "\n".join(lines)


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
        f"the whole run took {meta['seconds']:.0f} s.",
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
    out += [
        "",
        "**Cold scrape, naive exporter, bursts, memory**: cold = first scrape after the cache"
        " expired (median / max s, CPU s); naive = `bench/naive_exporter.py`, every scrape;"
        " bursts = 50 scrapers at once after the TTL (upstream listings / refresh attempts"
        " served, of which failed,"
        " scrape latency median / max s, scrapes over Prometheus's 10 s timeout or failed);"
        " peak RSS (VmHWM, MiB) with one refresh, refresh after refresh, and with the bursts.",
        "",
        "| instances | cold s | CPU s | naive s | naive/ours | listings / windows | failed "
        "| burst s | > 10 s | RSS hot | RSS refreshes | RSS bursts | RSS naive |",
        "|" + " ---: |" * 13,
    ]
    for r in sizes:
        c, n, k, m = r["cold"], r["naive"], r["concurrency"], r["rss_mb"]
        out.append(
            f"| {r['instances']:,} | {c['p50_s']:.2f} / {c['max_s']:.2f} "
            f"| {c['cpu_s_per_scrape']:.2f} | {n['p50_ms'] / 1000:.2f} "
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
    out += ["", "**Targets**:", ""]
    for t in report["targets"]:
        value = f": {t['value']}" if "value" in t else ""
        out.append(f"- {t['status']}: {t['target']}{value}")
    return "\n".join(out)


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
