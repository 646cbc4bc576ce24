"""The two exposition formats, written by hand because the hot path cannot afford more.

Prometheus text 0.0.4 and OpenMetrics 1.0 agree on sample lines for the gauges and
counters served here; they differ in the family name on `# HELP`/`# TYPE` lines of a
counter, in HELP escaping, and in OpenMetrics' closing `# EOF`. Tests compare this
output with prometheus_client's own generators and run `promtool check metrics` on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.utils import floatToGoString


@dataclass(frozen=True)
class Format:
    name: str
    content_type: str
    openmetrics: bool

    @property
    def eof(self) -> bytes:
        return b"# EOF\n" if self.openmetrics else b""


TEXT = Format("text", "text/plain; version=0.0.4; charset=utf-8", openmetrics=False)
OPENMETRICS = Format(
    "openmetrics", "application/openmetrics-text; version=1.0.0; charset=utf-8", openmetrics=True
)


def negotiate(accept: str | None) -> Format:
    """OpenMetrics when the client lists it in `Accept` (as Prometheus does), else text."""
    for accepted in (accept or "").split(","):
        if accepted.split(";")[0].strip() == "application/openmetrics-text":
            return OPENMETRICS
    return TEXT


def escape_label_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def series_prefix(name: str, label_names: tuple[str, ...], label_values: tuple[str, ...]) -> str:
    """`name{a="x",b="y"} ` — a sample line without its value."""
    if not label_names:
        return f"{name} "
    pairs = ",".join(
        f'{k}="{escape_label_value(v)}"' for k, v in zip(label_names, label_values, strict=True)
    )
    return f"{name}{{{pairs}}} "


def format_value(value: float) -> str:
    """Go's float formatting, as Prometheus and prometheus_client write values."""
    return str(floatToGoString(value))  # type: ignore[no-untyped-call]


def family_name(name: str, type: str) -> str:
    """OpenMetrics family name: counters drop their `_total` suffix."""
    return name.removesuffix("_total") if type == "counter" else name


def header(name: str, help: str, type: str, fmt: Format) -> str:
    """`# HELP` and `# TYPE` lines of a family in the given format."""
    help_text = help.replace("\\", r"\\").replace("\n", r"\n")
    if fmt.openmetrics:
        help_text = help_text.replace('"', r"\"")
        name = family_name(name, type)
    return f"# HELP {name} {help_text}\n# TYPE {name} {type}\n"
