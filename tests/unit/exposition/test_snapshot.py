"""A snapshot made after another copies its unchanged notebooks' lines: the same bytes
as one written from scratch, for less work."""

from __future__ import annotations

import dataclasses
import gc
import random
import weakref

import pytest

from exporter.config.series import SeriesOptions
from exporter.exposition.changes import Changes
from exporter.exposition.kinds import InstanceMetric
from exporter.exposition.metrics import PER_SNAPSHOT
from exporter.exposition.snapshot import Snapshot
from exporter.modelarts.instance import Instance

PROJECT = "p1"
T0 = 1_800_000_000.0


def fleet(n: int) -> list[Instance]:
    """Notebooks of every shape the per-notebook metrics read: a stop time, auto-stop
    without one, a queue, an error, resources, odd labels."""
    out = []
    for k in range(n):
        out.append(
            Instance(
                id=f"nb-{k}",
                status=("RUNNING", "CREATE_QUEUING", "START_FAILED", "STOPPED")[k % 4],
                name=f'name "{k}"\\ \n',
                flavor=("modelarts.vm.gpu.t4", "modelarts.vm.cpu.free")[k % 2],
                user_name=f"user{k % 3}",
                created=T0 - 1000 - k,
                updated=T0 - 10 - k,
                auto_stop=k % 5 != 0,
                auto_stop_type="TIMING",
                stop_timestamp=T0 + 3600 + k if k % 3 != 2 else None,
                error="ModelArts.6404" if k % 4 == 2 else None,
                reason="image pull failed" if k % 4 == 2 else "",
                queued=k % 4 == 1,
                queue_rank=float(k) if k % 4 == 1 else None,
                queue_begin=T0 - 300 if k % 4 == 1 else None,
                queue_end=T0 + 600 if k % 4 == 1 else None,
                cpu=8.0,
                memory=32.0 * 2**30,
                gpu=1.0 if k % 2 == 0 else None,
                accelerator="T4" if k % 2 == 0 else "",
            )
        )
    return out


def render(snapshot: Snapshot) -> dict[str, bytes]:
    second = int(T0) + 60
    return {
        **snapshot.static_lines,
        **{name: c.lines(second) for name, c in snapshot.countdowns.items()},
    }


def next_listing(before: list[Instance]) -> list[Instance]:
    """The next listing: most notebooks the very same objects (as the client's record
    memo hands them back), some changed, one gone, one new, the order shuffled a little."""
    after = list(before)
    after[3] = dataclasses.replace(after[3], status="STOPPED", updated=T0 + 5)
    after[10] = dataclasses.replace(after[10], name="renamed")
    del after[7]
    after.insert(0, fleet(60)[-1])  # nb-59: new
    after[20], after[21] = after[21], after[20]
    return after


@pytest.mark.parametrize(
    "options",
    [
        SeriesOptions(),
        SeriesOptions(info_labels=frozenset({"flavor", "status"})),
        SeriesOptions(per_user=False),
    ],
    ids=["default", "info-labels", "no-per-user"],
)
def test_a_snapshot_after_another_has_the_bytes_of_one_written_from_scratch(options):
    before = fleet(40)
    first = Snapshot(PROJECT, tuple(before), T0, options)
    after = tuple(next_listing(before))
    reused = Snapshot(PROJECT, after, T0 + 30, options, previous=first)
    fresh = Snapshot(PROJECT, after, T0 + 30, options)
    assert render(reused) == render(fresh)
    assert reused.lengths == fresh.lengths
    for name, lengths in reused.lengths.items():
        assert len(lengths) == len(after) and sum(lengths) == len(reused.static_lines[name])


def test_unchanged_notebooks_are_not_written_again(monkeypatch):
    before = fleet(40)
    first = Snapshot(PROJECT, tuple(before), T0)
    written: list[tuple[str, str]] = []
    original = InstanceMetric.instance_lines

    def counting(self, instance, project_id):
        written.append((self.name, instance.id))
        return original(self, instance, project_id)

    monkeypatch.setattr(InstanceMetric, "instance_lines", counting)
    after = next_listing(before)
    Snapshot(PROJECT, tuple(after), T0 + 30, previous=first)
    # The changed and the new notebooks, in every per-notebook metric; no other.
    changed = ["nb-10", "nb-3", "nb-59"]
    assert sorted({i for _, i in written}) == changed
    per_instance = {m.name for m in PER_SNAPSHOT if isinstance(m, InstanceMetric)}
    assert {n for n, i in written if i == "nb-3"} == per_instance


def test_a_notebook_equal_but_not_the_same_object_is_written_again(monkeypatch):
    """Reuse goes by identity (what the record memo hands back), never by a guess."""
    before = fleet(5)
    first = Snapshot(PROJECT, tuple(before), T0)
    copies = tuple(dataclasses.replace(i) for i in before)
    written = []
    original = InstanceMetric.instance_lines
    monkeypatch.setattr(
        InstanceMetric,
        "instance_lines",
        lambda self, i, p: written.append(i.id) or original(self, i, p),
    )
    Snapshot(PROJECT, copies, T0, previous=first)
    assert {i.id for i in before} <= set(written)


def test_no_lines_are_copied_across_projects_or_series_options():
    before = tuple(fleet(10))
    first = Snapshot(PROJECT, before, T0)
    other_project = Snapshot("p2", before, T0, previous=first)
    assert render(other_project) == render(Snapshot("p2", before, T0))
    narrower = SeriesOptions(info_labels=frozenset({"flavor"}))
    other_options = Snapshot(PROJECT, before, T0, narrower, previous=first)
    assert render(other_options) == render(Snapshot(PROJECT, before, T0, narrower))


def test_a_snapshot_does_not_keep_its_predecessor_alive():
    before = tuple(fleet(10))
    first = Snapshot(PROJECT, before, T0)
    gone = weakref.ref(first)
    second = Snapshot(PROJECT, before, T0 + 30, previous=first)
    del first
    gc.collect()
    assert gone() is None
    assert second.static_lines


@pytest.mark.parametrize("seed", range(20))
def test_any_reordering_removal_and_change_gives_the_same_bytes(seed):
    rng = random.Random(seed)
    pool = fleet(80)
    before = rng.sample(pool[:60], rng.randint(0, 60))
    first = Snapshot(PROJECT, tuple(before), T0)
    after = [i for i in before if rng.random() < 0.8]
    after += rng.sample(pool[60:], rng.randint(0, 20))
    for k in rng.sample(range(len(after)), min(len(after), rng.randint(0, 5))):
        after[k] = dataclasses.replace(after[k], status="RUNNING", updated=T0 + k)
    if rng.random() < 0.3:
        rng.shuffle(after)
    reused = Snapshot(PROJECT, tuple(after), T0 + 15, previous=first)
    assert render(reused) == render(Snapshot(PROJECT, tuple(after), T0 + 15))


def test_a_metric_with_no_notebook_changed_shares_the_previous_bytes():
    """An unchanged fleet costs no copy: the lines are the previous snapshot's object."""
    before = tuple(fleet(30))
    first = Snapshot(PROJECT, before, T0)
    second = Snapshot(PROJECT, before, T0 + 30, previous=first)
    per_instance = [m for m in PER_SNAPSHOT if isinstance(m, InstanceMetric)]
    shared = [
        m.name for m in per_instance if second.static_lines[m.name] is first.static_lines[m.name]
    ]
    assert sorted(shared) == sorted(m.name for m in per_instance)
    assert render(second) == render(Snapshot(PROJECT, before, T0 + 30))


def test_an_unchanged_fleet_shares_its_countdowns_and_its_counts_while_they_hold():
    """The same notebooks in the same order: the countdowns and the block ends are the
    previous snapshot's; the counts too, unless the flavors or the changes differ."""
    before = tuple(fleet(30))
    first = Snapshot(PROJECT, before, T0)
    second = Snapshot(PROJECT, before, T0 + 30, previous=first)
    assert second.countdowns is first.countdowns and second.block_ends is first.block_ends
    counts = [m.name for m in PER_SNAPSHOT if not isinstance(m, InstanceMetric)]
    assert all(second.static_lines[n] is first.static_lines[n] for n in counts)
    moved = Changes(transitions={("RUNNING", "STOPPED"): 1})
    third = Snapshot(PROJECT, before, T0 + 60, changes=moved, previous=second)
    transitions = "modelarts_notebook_status_transitions_total"
    assert third.static_lines[transitions] != second.static_lines[transitions]
    assert render(third) == render(Snapshot(PROJECT, before, T0 + 60, changes=moved))
    reordered = Snapshot(PROJECT, before[::-1], T0 + 90, previous=first)
    assert reordered.countdowns is not first.countdowns
    assert render(reordered) == render(Snapshot(PROJECT, before[::-1], T0 + 90))


def test_a_change_that_shows_in_one_metric_leaves_the_others_shared():
    """A notebook read again whose lines came out the same in a metric (its stop time
    moved: only the auto-stop timestamp shows it) costs that metric no copy."""
    before = fleet(30)
    first = Snapshot(PROJECT, tuple(before), T0)
    after = list(before)
    after[4] = dataclasses.replace(after[4], stop_timestamp=T0 + 7200)
    second = Snapshot(PROJECT, tuple(after), T0 + 30, previous=first)
    moved = "modelarts_notebook_instance_auto_stop_timestamp_seconds"
    per_instance = [m.name for m in PER_SNAPSHOT if isinstance(m, InstanceMetric)]
    shared = {n for n in per_instance if second.static_lines[n] is first.static_lines[n]}
    assert shared == set(per_instance) - {moved}
    assert render(second) == render(Snapshot(PROJECT, tuple(after), T0 + 30))
