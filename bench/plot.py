"""The figure, docs/performance.png: scrape latency and peak memory against fleet size.

matplotlib (`pip install -e '.[bench]'`) is imported only when a plot is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.procs import machine
from exporter import __version__


def plot(sizes: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["instances"] for r in sizes]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    series = [
        ("naive exporter (every scrape)", [r["naive"]["p50_ms"] for r in sizes], "C3", "s-"),
        ("cold scrape (cache expired)", [r["cold"]["p50_s"] * 1000 for r in sizes], "C1", "^-"),
        (
            "fetch floor (the cold scrape's pages, downloaded)",
            [r["fetch"]["median_s"] * 1000 for r in sizes],
            "C1",
            "^--",
        ),
        ("hot, text", [r["hot"]["text"]["p50_ms"] for r in sizes], "C0", "o-"),
        (
            "hot, OpenMetrics+gzip",
            [r["hot"]["openmetrics+gzip"]["p50_ms"] for r in sizes],
            "C2",
            "o-",
        ),
        (
            "hot, OpenMetrics+gzip, first of a second",
            [r["hot_new_second"]["openmetrics+gzip"]["p50_ms"] for r in sizes],
            "C2",
            "v:",
        ),
        ("limit, text", [r["limit"]["text"]["p50_ms"] for r in sizes], "C0", "o--"),
        (
            "limit, OpenMetrics+gzip",
            [r["limit"]["openmetrics+gzip"]["p50_ms"] for r in sizes],
            "C2",
            "o--",
        ),
    ]
    for label, y, color, style in series:
        left.plot(x, y, style, color=color, label=label)
    left.set(xscale="log", yscale="log", xlabel="notebook instances", ylabel="median ms")
    left.set_title("Scrape latency")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    right.plot(
        x,
        [r["rss_mb"]["peak"] for r in sizes],
        "o-",
        color="C1",
        label="exporter, peak (bursts of 50 scrapers)",
    )
    right.plot(
        x,
        [r["rss_mb"]["refreshes"]["peak"] for r in sizes],
        "o-",
        color="C2",
        label="exporter, refresh after refresh",
    )
    right.plot(
        x,
        [r["rss_mb"]["hot"]["peak"] for r in sizes],
        "o--",
        color="C0",
        label="exporter, one refresh",
    )
    right.plot(x, [r["naive"]["rss_mb"]["peak"] for r in sizes], "s-", color="C3", label="naive")
    right.set(xscale="log", yscale="log", xlabel="notebook instances", ylabel="peak RSS, MiB")
    right.set_title("Memory (VmHWM)")
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=8)
    fig.suptitle(f"modelarts-exporter {__version__}, {machine()}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
