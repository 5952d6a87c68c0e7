"""Several sessions at once, half-made runs, and paths that try to leave the project's folders."""
import os
import threading
import time

import pytest
import torch
from conftest import open_app

from core.config import TrainConfig
from core.launcher import start_training, stop_training, wait_for
from core.models import Net
from core.runs import list_runs, rename_run

LONG = TrainConfig(epochs=500, lr=0.01, log_interval=50)


@pytest.fixture
def env(env, monkeypatch):
    """conftest's env, with a models folder of its own (these tests put files there)."""
    monkeypatch.setenv("CIFAR_MODELS", str(env / "models"))
    return env


def test_two_runs_started_at_once_get_two_directories_and_stopping_one_spares_the_other(env, tiny_tree):
    barrier, runs = threading.Barrier(2), []

    def press():
        barrier.wait()
        runs.append(start_training(LONG, env / "runs", data_dir=str(tiny_tree)))

    threads = [threading.Thread(target=press) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(runs) == 2 and runs[0].path != runs[1].path
    assert {r.state() for r in runs} <= {"starting", "running"}
    assert sorted(r.id for r in list_runs(env / "runs")) == sorted(r.id for r in runs)
    for run in runs:
        assert wait_for(run, ("running",), 60) == "running"
    stop_training(runs[0])
    assert wait_for(runs[0], ("stopped",), 10) == "stopped"
    assert runs[1].state() == "running"
    stop_training(runs[1])
    assert wait_for(runs[1], ("stopped",), 10) == "stopped"


def test_two_sessions_each_follow_the_run_they_started(env):
    # AppTest swaps a process-wide Runtime and config for each script run, so two sessions cannot
    # run scripts at the same instant in one test process; the presses are sequential here and the
    # simultaneous start is the test above.
    sessions, started = [open_app("dashboard/train_page.py") for _ in range(2)], []
    for at in sessions:
        next(n for n in at.number_input if n.label == "Epochs").set_value(500)
        next(b for b in at.button if b.label == "Start training").click().run()
        assert not at.exception and not at.error
        new = [r.id for r in list_runs(env / "runs") if r.id not in started]
        assert len(new) == 1
        started += new
    assert [at.session_state["active_run"] for at in sessions] == started
    for at in sessions:
        assert f"Run {at.session_state['active_run']}" in [h.value for h in at.subheader]
    for run in list_runs(env / "runs"):
        assert wait_for(run, ("running",), 60) == "running"
        stop_training(run)
        assert wait_for(run, ("stopped",), 10) == "stopped"


def test_runs_page_shows_half_made_runs_without_breaking(env):
    root = env / "runs"
    (root / "reserved-only").mkdir(parents=True)  # a run directory reserved, its process never started
    (root / "config-only").mkdir()
    (root / "config-only" / "config.json").write_text('{"train": {"model": "net"}, "classes": ["a"]}')
    for name in ("reserved-only", "config-only"):  # reserved a minute ago, and nothing started since
        os.utime(root / name, (time.time() - 60, time.time() - 60))
    (root / "torn").mkdir()
    (root / "torn" / "config.json").write_text("{not json")
    (root / "torn" / "events.jsonl").write_text('{"type": "status", "status": "running", "pid": 1}\n{"type": "st')
    at = open_app("dashboard/runs_page.py")
    states = dict(zip(at.dataframe[0].value["name"], at.dataframe[0].value["state"]))
    assert states == {"reserved-only": "failed", "config-only": "failed", "torn": "interrupted"}
    for page in ("overview", "train_page", "evaluate_page", "classify_page"):
        assert not open_app(f"dashboard/{page}.py").exception


@pytest.mark.parametrize("name", ["../escape", "/etc", "/tmp/x", "a/../../b", "..", ".", "run\nname", "~"])
def test_renames_cannot_leave_runs(env, finished_run, name):
    root, run = env / "runs", finished_run
    with pytest.raises(ValueError):
        rename_run(root, run.id, name)
    assert run.path.is_dir() and [r.id for r in list_runs(root)] == [run.id]


def test_symlinks_out_of_runs_and_models_are_not_offered(env, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    torch.save(Net().state_dict(), outside / "secret.pth")
    (env / "runs").mkdir()
    (env / "runs" / "sneaky").symlink_to(outside)
    (env / "models").mkdir()
    (env / "models" / "sneaky.pth").symlink_to(outside / "secret.pth")
    torch.save(Net().state_dict(), env / "models" / "mine.pth")
    at = open_app("dashboard/evaluate_page.py")
    options = at.selectbox[0].options if at.selectbox else []
    assert "File models/mine.pth" in options
    assert not any("sneaky" in o for o in options)
    assert list_runs(env / "runs") == []
