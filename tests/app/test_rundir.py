import os
import subprocess
import sys

from resontinex.app.rundir import fresh_run_dir, remove_stale


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_state_of_a_killed_up_is_removed_and_a_living_ones_is_kept(tmp_path):
    dead = tmp_path / f"run-{_dead_pid()}-aa"
    living = tmp_path / f"run-{os.getppid()}-bb"
    persistent = tmp_path / "core-6066"  # a worker's state on a configured Kafka
    for path in (dead, living, persistent):
        (path / "v1").mkdir(parents=True)
    with fresh_run_dir(tmp_path, "cc") as mine:
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([living.name, persistent.name, mine.name])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([living.name, persistent.name])
    assert remove_stale(tmp_path) == []
