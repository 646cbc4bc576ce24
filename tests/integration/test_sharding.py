"""Two replicas split one targets file by `--config.shard`: together every project, once."""

from __future__ import annotations

import signal
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
import yaml

from exporter.config.shard import shard_of
from exporter.simulator import DEMO_AK, DEMO_SK, Fleet, Simulator
from tests.support.processes import exporter_process

NAMES = ["training-beijing", "research-shanghai", "research-iam", "a", "b", "t1"]
ENV = {"SIM_AK": DEMO_AK, "SIM_SK": DEMO_SK}


@pytest.fixture
def six_projects():
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(Simulator(Fleet(size=5, seed=i), project_id=f"{i + 1:032x}"))
            for i, name in enumerate(NAMES)
        }


def write(path: Path, sims: dict[str, Simulator]) -> str:
    targets = [
        {
            "name": name,
            "project_id": sim.project_id,
            "endpoint": sim.url,
            "auth": {"ak": {"env": "SIM_AK"}, "sk": {"env": "SIM_SK"}},
        }
        for name, sim in sims.items()
    ]
    path.write_text(yaml.safe_dump({"targets": targets}))
    return str(path)


def projects(exporter, metric_values) -> set[str]:
    status, _, body = exporter.get()
    assert status == 200
    return {dict(k)["project_id"] for k in metric_values(body.decode()).all("modelarts_up")}


def test_two_shards_serve_every_project_once(six_projects, tmp_path, metric_values):
    path = write(tmp_path / "targets.yml", six_projects)
    expected = [{six_projects[n].project_id for n in NAMES if shard_of(n, 2) == i} for i in (0, 1)]
    assert all(expected)  # the names split 3 and 3
    with (
        exporter_process("--config.file", path, "--config.shard=0/2", env=ENV) as first,
        exporter_process(
            "--config.file", path, env={**ENV, "MODELARTS_EXPORTER_CONFIG_SHARD": "1/2"}
        ) as second,
    ):
        seen = [projects(first, metric_values), projects(second, metric_values)]
        assert seen == expected
        assert seen[0] | seen[1] == {sim.project_id for sim in six_projects.values()}
        assert not seen[0] & seen[1]
        # A reload re-reads the file for the same shard: shard 0 loses the target that
        # is gone, shard 1 keeps its own.
        gone = next(n for n in NAMES if shard_of(n, 2) == 0)
        write(Path(path), {n: s for n, s in six_projects.items() if n != gone})
        for exporter in (first, second):
            exporter.process.send_signal(signal.SIGHUP)
        want = [expected[0] - {six_projects[gone].project_id}, expected[1]]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            seen = [projects(first, metric_values), projects(second, metric_values)]
            if seen == want:
                break
            time.sleep(0.2)
        assert seen == want


def test_a_shard_without_targets_is_ready_and_serves_nothing(six_projects, tmp_path):
    path = write(tmp_path / "targets.yml", {"research-iam": six_projects["research-iam"]})
    assert shard_of("research-iam", 2) == 0
    with exporter_process("--config.file", path, "--config.shard=1/2", env=ENV) as exporter:
        assert exporter.get("/-/ready")[0] == 200
        status, _, body = exporter.get()
        exporter.process.send_signal(signal.SIGTERM)
        exporter.process.wait(timeout=10)
        logs = exporter.logs()
    assert status == 200 and b"modelarts_up{" not in body
    assert logs.count("shard 1/2 takes none of the 1 targets") == 1
