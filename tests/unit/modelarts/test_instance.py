"""An Instance shares what repeats across a fleet: a snapshot holds every notebook."""

from __future__ import annotations

from exporter.modelarts.instance import Instance


def test_repeated_strings_and_sizes_are_one_object_each():
    a, b = (
        Instance(id=f"nb-{k}", status="".join(["RUN", "NING"]), cpu=float("8"), memory=2.0**35)
        for k in range(2)
    )
    assert a.status is b.status and a.cpu is b.cpu and a.memory is b.memory
    assert a.id is not b.id


def test_a_nan_size_is_kept_as_it_is():
    nan = float("nan")
    assert Instance(id="a", status="RUNNING", gpu=nan).gpu is nan
