"""The process families: read from /proc at most once a second per format."""

from __future__ import annotations

from exporter.exposition.formats import OPENMETRICS, TEXT
from exporter.exposition.process import process_lines

T = 1_800_000_000.0


def test_scrapes_within_a_second_share_one_reading_and_the_next_second_reads_again():
    first = process_lines(TEXT, T)
    assert process_lines(TEXT, T + 0.9) is first
    assert process_lines(TEXT, T + 1.0) is not first
    assert b"process_cpu_seconds_total" in first


def test_each_format_has_its_own_reading():
    text, openmetrics = process_lines(TEXT, T + 5), process_lines(OPENMETRICS, T + 5)
    assert b"# TYPE process_cpu_seconds counter" in openmetrics  # OpenMetrics family name
    assert b"# TYPE process_cpu_seconds_total counter" in text
    assert not openmetrics.endswith(b"# EOF\n")
