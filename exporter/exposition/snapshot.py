"""One successful refresh: the notebooks of a project as listed at one moment.

The part of the exposition that does not depend on the clock is rendered here, once,
in the refresh thread; each scrape only fills in the countdowns (see `render.py`).

Between two refreshes most notebooks do not change, and the client hands back the very
`Instance` of the last listing for a record whose bytes did not change
(`records.RecordMemo`). So a snapshot made with `previous` copies such a notebook's lines
out of the previous snapshot's bytes instead of writing them again, a whole run of
unchanged notebooks at a time: the cost of a refresh follows what changed, not the size
of the fleet. Each per-notebook metric keeps the length of every notebook's lines
(`lengths`), which is all that copying needs. No notebook's lines depend on the fetch
time: times the API gives relative to its answer are made absolute when they are read
(`demanager.parse_page`).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import InitVar, dataclass, field
from itertools import accumulate, pairwise

from exporter.config.series import SeriesOptions
from exporter.exposition.changes import Changes
from exporter.exposition.formats import format_value, series_prefix
from exporter.exposition.kinds import (
    CountdownMetric,
    InstanceMetric,
    Line,
    Metric,
    SnapshotMetric,
)
from exporter.exposition.metrics import INFO_METRIC, PER_SECOND, PER_SNAPSHOT
from exporter.modelarts.flavors import Flavor
from exporter.modelarts.instance import Instance


@dataclass(frozen=True)
class Countdown:
    """The notebooks of one countdown metric: their lines, each with a `%d` for its value,
    and their anchors `a + b·second`, in arrays (a fleet's worth of tuples and strings
    would be several times the memory)."""

    ids: tuple[str, ...] = ()
    template: bytes = b""  # every line, its value a %d
    line_lengths: array[int] = field(default_factory=lambda: array("I"))
    a: array[float] = field(default_factory=lambda: array("d"))
    b: array[float] = field(default_factory=lambda: array("d"))
    # Each line's notebook: its position in the snapshot's instances, ascending.
    owners: array[int] = field(default_factory=lambda: array("I"))

    def values(self, second: int) -> list[int]:
        """The one countdown formula: `a + b·second` in whole seconds, never negative.
        Whole seconds: the value is the same for every scrape within a second, so one
        rendering serves them all."""
        values = [int(a + b * second) for a, b in zip(self.a, self.b, strict=True)]
        return [v if v > 0 else 0 for v in values]

    def lines(self, second: int) -> bytes:
        # One C-level formatting of every line at once: this runs every new second.
        return self.template % tuple(self.values(second))


# Notebooks per block of `Snapshot.blocks`, on average: a block's member is ~10 kB to
# ~200 kB compressed, large enough to compress well, small enough that a change costs
# one block.
BLOCK = 128


@dataclass(frozen=True, eq=False)
class Snapshot:
    project_id: str
    instances: tuple[Instance, ...]
    fetched_at: float  # Unix seconds, when the first page was requested
    options: SeriesOptions = field(default_factory=SeriesOptions)
    flavors: tuple[Flavor, ...] = ()  # the newer API's flavors listing, where there is one
    changes: Changes = field(default_factory=Changes)  # since the exporter started
    # The last snapshot of the same project, whose unchanged notebooks' lines are copied;
    # not kept (a snapshot never holds its predecessor alive).
    previous: InitVar[Snapshot | None] = None
    static_lines: dict[str, bytes] = field(init=False, repr=False)  # metric name → sample lines
    # Per-notebook metric name → the length of each notebook's lines in `static_lines`, in
    # the order of `instances`.
    lengths: dict[str, array[int]] = field(init=False, repr=False)
    countdowns: dict[str, Countdown] = field(init=False, repr=False)
    # Where `blocks` cuts: after the notebooks whose id hashes to 0 modulo BLOCK.
    block_ends: list[int] = field(init=False, repr=False)

    def __post_init__(self, previous: Snapshot | None) -> None:
        if previous is not None and (previous.project_id, previous.options) != (
            self.project_id,
            self.options,
        ):
            previous = None
        diff = _Diff(previous, self.instances)
        unchanged = diff.runs
        # Not one notebook changed (the same objects in the same order): what depends on
        # the notebooks alone is the previous snapshot's (`alike`), and what counts them
        # with the flavors and the changes too, where those are also the same (`counted`).
        alike = previous if diff.none_changed else None
        counted = (
            alike
            if alike and (alike.flavors, alike.changes) == (self.flavors, self.changes)
            else None
        )
        static: dict[str, bytes] = {}
        lengths: dict[str, array[int]] = {}
        for metric in PER_SNAPSHOT:
            if isinstance(metric, InstanceMetric) and self.exports(metric):
                static[metric.name], lengths[metric.name] = self._per_instance(
                    metric, previous, diff
                )
            elif counted is not None:
                static[metric.name] = counted.static_lines[metric.name]
            else:
                static[metric.name] = self._static(metric)
        if alike is not None:
            countdowns, ends = alike.countdowns, alike.block_ends
        else:
            old = previous.countdowns if previous is not None else {}
            countdowns = {
                m.name: self._countdown(m, old.get(m.name), unchanged) for m in PER_SECOND
            }
            ends = [n + 1 for n, i in enumerate(self.instances) if hash(i.id) % BLOCK == 0]
        object.__setattr__(self, "static_lines", static)
        object.__setattr__(self, "lengths", lengths)
        object.__setattr__(self, "countdowns", countdowns)
        object.__setattr__(self, "block_ends", ends)

    def blocks(self, name: str) -> list[memoryview]:
        """A metric's lines in blocks that end at the same notebooks whatever else
        changed, about BLOCK notebooks each (for `members.Members`); a metric that is not
        per notebook in one block."""
        lines = memoryview(self.static_lines[name])
        lengths = self.lengths.get(name)
        if lengths is None:
            return [lines]
        starts = list(accumulate(lengths, initial=0))
        cuts = [0, *(starts[end] for end in self.block_ends), len(lines)]
        return [lines[a:b] for a, b in pairwise(cuts) if b > a]

    def exports(self, metric: Metric) -> bool:
        if metric.per_user and not self.options.per_user:
            return False
        return self.options.per_instance or not metric.per_instance

    def series(self, metric: SnapshotMetric) -> Iterator[Line]:
        """The exposition lines of a clock-free metric, project_id first, as the series
        options shape them."""
        if not self.exports(metric):
            return iter(())
        return _shaped(metric.lines(self, self.project_id), self._kept_labels(metric))

    def _kept_labels(self, metric: Metric) -> tuple[int, ...] | None:
        """Positions of the info labels kept (`--metrics.info-labels`), None for all."""
        keep = self.options.info_labels
        if keep is None or metric.name != INFO_METRIC:
            return None
        return tuple(
            i
            for i, name in enumerate(metric.label_names)
            if name in ("project_id", "id") or name in keep
        )

    def _static(self, metric: SnapshotMetric) -> bytes:
        return _text(self.series(metric)).encode("utf-8")

    def _per_instance(
        self, metric: InstanceMetric, previous: Snapshot | None, diff: _Diff
    ) -> tuple[bytes, array[int]]:
        """A per-notebook metric's lines and each notebook's length; a run of unchanged
        notebooks copied from `previous` at once (a memoryview slice: no copy until the
        join), the others written. A fresh notebook whose lines in this metric are those
        it had counts as unchanged here, so that a metric no change shows in shares the
        previous bytes (a stop time moved: only that metric is written again)."""
        kept = self._kept_labels(metric)
        written = {n: _lines(metric, self.instances[n], self.project_id, kept) for n in diff.fresh}
        if previous is None or metric.name not in previous.lengths:
            every = [
                written[n] if n in written else _lines(metric, i, self.project_id, kept)
                for n, i in enumerate(self.instances)
            ]
            return b"".join(every), array("I", map(len, every))
        old_lengths = previous.lengths[metric.name]
        old = memoryview(previous.static_lines[metric.name])
        starts = list(accumulate(old_lengths, initial=0))
        runs = diff.runs
        same = {}
        for n, chunk in written.items():
            p = diff.was.get(self.instances[n].id)
            if p is not None and old[starts[p] : starts[p + 1]] == chunk:
                same[n] = p
        if same and len(same) == len(written) and diff.in_place(same):
            runs = [(0, len(old_lengths), 0)]
        elif same:
            runs = _runs([same.get(n, p) for n, p in enumerate(diff.positions)])
        if runs == [(0, len(old_lengths), 0)]:  # not one notebook's lines changed: shared
            return previous.static_lines[metric.name], old_lengths
        chunks: list[bytes | memoryview] = []
        lengths = array("I")
        for first, end, at in runs:
            if at is not None:
                chunks.append(old[starts[at] : starts[at + end - first]])
                lengths.extend(old_lengths[at : at + end - first])
                continue
            for n in range(first, end):
                chunk = written[n]
                chunks.append(chunk)
                lengths.append(len(chunk))
        return b"".join(chunks), lengths

    def _countdown(
        self, metric: CountdownMetric, previous: Countdown | None, runs: list[_Run]
    ) -> Countdown:
        """A countdown metric's lines and anchors; those of a run of unchanged notebooks
        copied from `previous` at once, as `_per_instance` copies lines."""
        if not self.exports(metric):
            return Countdown()
        names = ("project_id", *metric.labels)
        previous = previous or Countdown()
        old_starts = list(accumulate(previous.line_lengths, initial=0))
        old_template = memoryview(previous.template)
        ids: list[str] = []
        lines: list[bytes | memoryview] = []
        lengths, owners, a, b = array("I"), array("I"), array("d"), array("d")
        for first, end, was in runs:
            if was is not None:  # its notebooks' entries, in order: a slice of each array
                lo = bisect_left(previous.owners, was)
                hi = bisect_left(previous.owners, was + end - first, lo)
                ids.extend(previous.ids[lo:hi])
                lines.append(old_template[old_starts[lo] : old_starts[hi]])
                lengths.extend(previous.line_lengths[lo:hi])
                owners.extend(n - was + first for n in previous.owners[lo:hi])
                a.extend(previous.a[lo:hi])
                b.extend(previous.b[lo:hi])
                continue
            for n in range(first, end):
                instance = self.instances[n]
                anchor = metric.anchor(instance)
                if anchor is None:
                    continue
                prefix = series_prefix(metric.name, names, (self.project_id, instance.id))
                line = (prefix.replace("%", "%%") + "%d\n").encode("utf-8")
                ids.append(instance.id)
                lines.append(line)
                lengths.append(len(line))
                owners.append(n)
                a.append(anchor[0])
                b.append(anchor[1])
        return Countdown(tuple(ids), b"".join(lines), lengths, a, b, owners)


_Run = tuple[int, int, "int | None"]  # notebooks [first, end), at `was` before (None: new)


class _Diff:
    """Where each notebook of a snapshot was in the previous one, by identity
    (`positions`, in `runs`: both snapshots hold their instances, so an object found in
    both is the same); the others (`fresh`: changed or new), and where those were by their
    id (`was`). Built at the peak of a refresh's memory, next to two snapshots: where no
    notebook came or went, by walking both lists side by side, without a map of either."""

    def __init__(self, previous: Snapshot | None, instances: Sequence[Instance]) -> None:
        old = previous.instances if previous is not None else ()
        positions: list[int | None] = []
        shifted = len(old) != len(instances)
        for n, (was, now) in enumerate(zip(old, instances, strict=False)):
            if was is now:
                positions.append(n)
            else:
                positions.append(None)
                shifted = shifted or was.id != now.id
        positions += [None] * (len(instances) - len(positions))
        fresh = [n for n, position in enumerate(positions) if position is None]
        if shifted and old:  # notebooks came or went: looked up, the moved and the changed
            where = {id(i): n for n, i in enumerate(old)}
            positions = [where.get(id(i)) for i in instances]
            fresh = [n for n, position in enumerate(positions) if position is None]
            ids = {instances[n].id for n in fresh}
            self.was = {i.id: n for n, i in enumerate(old) if i.id in ids}
        else:  # a changed notebook is where it was
            self.was = {instances[n].id: n for n in fresh if n < len(old)}
        self.positions, self.fresh = positions, fresh
        self.runs = _runs(positions)
        # Every notebook found by identity at its own position, as many as before.
        self._aligned = (
            previous is not None
            and len(previous.instances) == len(positions)
            and all(at is None or at == first for first, _, at in self.runs)
        )
        # The very same notebooks, in the same order.
        self.none_changed = self._aligned and bool(positions) and not fresh

    def in_place(self, moved: dict[int, int]) -> bool:
        """Whether, with the fresh notebooks at `moved` (all of them), every notebook is
        where it was."""
        return self._aligned and all(n == at for n, at in moved.items())


def _runs(positions: Sequence[int | None]) -> list[_Run]:
    """Consecutive notebooks that were consecutive in the previous snapshot, and runs of
    notebooks to write (None)."""
    runs: list[_Run] = []
    first, was = 0, None
    for n, position in enumerate(positions):
        if n == first:
            was = position
            continue
        expected = None if was is None else was + n - first
        if position != expected or (position is None) != (was is None):
            runs.append((first, n, was))
            first, was = n, position
    if positions:
        runs.append((first, len(positions), was))
    return runs


def _lines(
    metric: InstanceMetric, instance: Instance, project_id: str, kept: tuple[int, ...] | None
) -> bytes:
    """One notebook's lines of a per-notebook metric."""
    return _text(_shaped(metric.instance_lines(instance, project_id), kept)).encode("utf-8")


def _shaped(lines: Iterator[Line], kept: tuple[int, ...] | None) -> Iterator[Line]:
    """Only the labels at `kept` (all when None)."""
    if kept is None:
        return lines
    return (
        (name, tuple(names[i] for i in kept), tuple(values[i] for i in kept), value)
        for name, names, values, value in lines
    )


def _text(lines: Iterator[Line]) -> str:
    return "".join(
        f"{series_prefix(name, names, values)}{format_value(value)}\n"
        for name, names, values, value in lines
    )
