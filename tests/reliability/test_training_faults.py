"""The trainer killed, diverging, out of disk, losing its data: nothing saved is lost, every end is explained."""
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import ROOT, make_tree

from core.config import TrainConfig
from core.launcher import resume_training, start_training, wait_for
from core.runs import Run

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def assert_files_valid(run: Run):
    json.loads(run.config_file.read_text())
    for line in run.events_file.read_text().splitlines()[:-1]:
        json.loads(line)  # every complete line parses; only a torn last line may not
    checkpoint = torch.load(run.checkpoint_file, weights_only=True)
    assert set(torch.load(run.model_file, weights_only=True)) == set(checkpoint["model"])
    return checkpoint


def test_sigkill_mid_epoch_reads_interrupted_and_resume_keeps_the_whole_curve(tiny_tree, tmp_path):
    run = start_training(TrainConfig(epochs=400, lr=0.01, log_interval=50), tmp_path / "runs", data_dir=str(tiny_tree))
    assert wait_for(run, ("running",), 60) == "running"
    while sum(e["type"] == "epoch" for e in run.events()) < 3:
        time.sleep(0.05)
    os.kill(run.launch()["pid"], signal.SIGKILL)
    assert wait_for(run, ("interrupted",), 10) == "interrupted"
    checkpoint = assert_files_valid(run)
    before = [e["global_step"] for e in run.events() if e["type"] == "step"]
    resume_training(run, epochs=checkpoint["epoch"] + 2)
    assert wait_for(run, ("done", "failed"), 90) == "done", run.log_file.read_text()[-2000:]
    steps = [e["global_step"] for e in run.events() if e["type"] == "step"]
    assert steps[:len(before)] == before  # the old curve is kept, the new one continues it
    assert max(steps) == (checkpoint["epoch"] + 2) * 9
    assert [e["epoch"] for e in run.events() if e["type"] == "epoch"][-2:] == [checkpoint["epoch"] + 1,
                                                                                checkpoint["epoch"] + 2]


SLOW_SAVE = """
import sys, time, pathlib
import core.runs as runs
original, marker = runs.atomic_write, pathlib.Path(sys.argv[1])
def slow(path, write):
    def half_then_wait(f):
        write(f)
        f.flush()
        if pathlib.Path(path).name == "checkpoint.pth" and pathlib.Path(path).exists():
            marker.write_text("writing")  # the previous checkpoint exists; this one is half on disk
            time.sleep(60)
    original(path, half_then_wait)
runs.atomic_write = slow
from core.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_sigkill_mid_checkpoint_write_leaves_the_previous_checkpoint(tiny_tree, tmp_path):
    run_dir, marker = tmp_path / "run", tmp_path / "writing"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_SAVE, str(marker), "train", "--data-dir", str(tiny_tree),
                             "--run-dir", str(run_dir), "--epochs", "5", "--lr", "0.01", "--no-download"],
                            cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not marker.exists():
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    run = Run(run_dir)
    assert list(run_dir.glob(".checkpoint.pth.tmp*"))  # the half-written file, never renamed
    checkpoint = assert_files_valid(run)
    assert checkpoint["epoch"] == 1 and run.state() == "interrupted"
    out = subprocess.run([sys.executable, "-m", "core", "train", "--resume", str(run_dir)], cwd=ROOT, env=ENV,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert run.state() == "done" and not list(run_dir.glob(".*.tmp*"))


def test_diverging_run_stops_with_status_diverged_and_advice(tiny_tree, tmp_path):
    out = subprocess.run([sys.executable, "-m", "core", "train", "--data-dir", str(tiny_tree), "--run-dir",
                          str(tmp_path / "run"), "--lr", "10", "--momentum", "0.99", "--batch-size", "1",
                          "--epochs", "20", "--log-interval", "1", "--no-download"],
                         cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "loss became nan" in out.stderr and "lower the learning rate" in out.stderr
    run = Run(tmp_path / "run")
    assert run.state() == "diverged"
    assert "lower the learning rate" in [e for e in run.events() if e.get("status") == "diverged"][0]["message"]


def test_full_disk_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    run = Run(tmp_path / "run").create({"train": {}})
    run.save_checkpoint({"model": {"w": torch.ones(3)}, "epoch": 1})

    def disk_full(obj, f, *args, **kwargs):
        f.write(b"partial bytes")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        run.save_checkpoint({"model": {"w": torch.zeros(3)}, "epoch": 2})
    monkeypatch.undo()
    kept = run.load_checkpoint()
    assert kept["epoch"] == 1 and torch.equal(kept["model"]["w"], torch.ones(3))
    assert torch.equal(torch.load(run.model_file, weights_only=True)["w"], torch.ones(3))
    assert not list(run.path.glob(".*.tmp*"))


def test_full_disk_during_a_run_fails_it_with_the_reason(tiny_tree, tmp_path):
    script = ("import errno, sys, torch\n"
              "import core.runs as runs\n"
              "calls = {'n': 0}\n"
              "real = torch.save\n"
              "def save(obj, f, *a, **k):\n"
              "    calls['n'] += 'checkpoint.pth' in str(getattr(f, 'name', ''))\n"
              "    if calls['n'] > 1: raise OSError(errno.ENOSPC, 'No space left on device')\n"
              "    return real(obj, f, *a, **k)\n"
              "torch.save = save\n"
              "from core.cli import main\n"
              "sys.exit(main(sys.argv[1:]))\n")
    out = subprocess.run([sys.executable, "-c", script, "train", "--data-dir", str(tiny_tree), "--run-dir",
                          str(tmp_path / "run"), "--epochs", "3", "--lr", "0.01", "--no-download"],
                         cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "No space left on device" in out.stderr
    run = Run(tmp_path / "run")
    assert run.state() == "failed"
    assert assert_files_valid(run)["epoch"] == 1  # epoch 1's checkpoint survives epoch 2's failed save


def test_data_directory_vanishing_mid_run_ends_it_with_a_clear_error(tmp_path):
    tree = make_tree(tmp_path / "data", train_per_class=12, test_per_class=4)
    run = start_training(TrainConfig(epochs=400, lr=0.01, log_interval=50), tmp_path / "runs", data_dir=str(tree))
    assert wait_for(run, ("running",), 60) == "running"
    shutil.rmtree(tree)
    assert wait_for(run, ("failed",), 30) == "failed"
    message = [e for e in run.events() if e.get("status") == "failed"][-1]["message"]
    assert "vanished during training" in message and "resume" in message
    assert_files_valid(run)
