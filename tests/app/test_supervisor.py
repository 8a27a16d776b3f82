import signal

from app.settings import Settings
from app.supervisor import _why, worker_argv


def test_why_names_signals_including_unnamed_ones():
    assert _why(-signal.SIGKILL) == "killed by SIGKILL"
    assert _why(-35) == "killed by signal 35"
    assert _why(70) == "exited with code 70"


def test_workers_get_the_bootstrap_and_config_dir_of_up(tmp_path):
    s = Settings.from_env({}, bootstrap="k:1", config_dir=str(tmp_path))
    argv = worker_argv(s, "core", 6070)
    assert argv[1:4] == ["-m", "app.cli", "worker"]
    assert argv[argv.index("--bootstrap") + 1] == "k:1" and argv[argv.index("--config-dir") + 1] == str(tmp_path)
    assert argv[argv.index("--web-port") + 1] == "6070"
