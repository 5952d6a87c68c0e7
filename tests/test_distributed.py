"""DistributedDataParallel on CPUs (gloo), started by torchrun as a user would."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import ROOT, free_port, make_tree

from core.config import TrainConfig
from core.launcher import start_training, wait_for
from core.run_table import row
from core.runs import Run

ARGS = ["--epochs", "2", "--batch-size", "8", "--lr", "0.01", "--log-interval", "3", "--no-download", "--no-progress"]
# PYTHONFAULTHANDLER: a worker killed by a signal in native code (SIGABRT, SIGSEGV) prints every thread's
# Python stack, so a failure here says where it happened
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}


def torchrun(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", *map(str, args)], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def cli(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "core", *map(str, args)], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def weights(run_dir):
    return torch.load(run_dir / "model.pth", weights_only=True)


def assert_same(a, b, tol=1e-5):
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < tol, worst


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_tree(tmp_path_factory.mktemp("ddp") / "tree", train_per_class=16, test_per_class=4)


@pytest.fixture(scope="module")
def single(tree, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("single") / "run"
    out = cli("train", "--data-dir", tree, "--run-dir", run_dir, *ARGS)
    assert out.returncode == 0, out.stderr
    return run_dir


def test_two_processes_train_to_the_same_weights_as_one_with_the_combined_batch(tree, single, tmp_path):
    run_dir = tmp_path / "two"
    out = torchrun("--standalone", "--nproc-per-node=2", "-m", "core", "train", "--data-dir", tree, "--run-dir",
                   run_dir, *ARGS)
    assert out.returncode == 0, out.stderr[-8000:]
    assert_same(weights(single), weights(run_dir))
    run = Run(run_dir)
    assert run.config()["world_size"] == 2 and run.metrics()["world_size"] == 2
    events = run.events()
    running = [e for e in events if e.get("status") == "running"]
    assert len(running) == 1 and running[0]["world_size"] == 2  # rank 0 alone writes
    steps = [e["global_step"] for e in events if e["type"] == "step"]
    assert steps == sorted(set(steps))  # one coherent curve, no duplicates from other ranks
    assert out.stdout.count("Finished Training") == 1


def test_two_nodes_rendezvous_over_c10d_on_localhost(tree, single, tmp_path):
    port, run_dir = free_port(), tmp_path / "two-nodes"
    common = ["--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}",
              "--rdzv-id=test-job", "-m", "core", "train", "--data-dir", str(tree), "--run-dir", str(run_dir), *ARGS]
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", *common], cwd=ROOT, env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [n.communicate(timeout=180) for n in nodes]
    assert [n.returncode for n in nodes] == [0, 0], [o[1][-2000:] for o in outputs]
    assert_same(weights(single), weights(run_dir))


def test_checkpoints_move_between_one_and_two_processes(tree, single, tmp_path):
    """Stop a 2-process run, resume it in 1 process, and the other way round."""
    two = tmp_path / "two"
    out = torchrun("--standalone", "--nproc-per-node=2", "-m", "core", "train", "--data-dir", tree, "--run-dir", two,
                   *ARGS[:-4], "--epochs", "1", "--no-download")
    assert out.returncode == 0, out.stderr[-8000:]
    out = cli("train", "--resume", two, "--epochs", "2")  # 2 processes -> 1
    assert out.returncode == 0, out.stderr
    one = tmp_path / "one"
    out = cli("train", "--data-dir", tree, "--run-dir", one, *ARGS[:-4], "--epochs", "1", "--no-download")
    assert out.returncode == 0, out.stderr
    out = torchrun("--standalone", "--nproc-per-node=2", "-m", "core", "train", "--resume", one, "--epochs", "2")
    assert out.returncode == 0, out.stderr[-8000:]  # 1 process -> 2
    assert_same(weights(single), weights(two))  # `single` trained the same two epochs in one go
    assert_same(weights(single), weights(one))
    assert Run(two).state() == "done" and Run(one).state() == "done"


def _rank_pid(run_dir, rank: int) -> int | None:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        if str(run_dir) in cmd and f"RANK={rank}".encode() in env and "torch.distributed.run" not in cmd:
            return int(pid)
    return None


def test_a_killed_rank_ends_the_job_with_a_clear_error(tree, tmp_path):
    run_dir = tmp_path / "doomed"
    job = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                            "-m", "core", "train", "--data-dir", str(tree), "--run-dir", str(run_dir), "--epochs",
                            "1000", "--batch-size", "8", "--no-download", "--no-progress"],
                           cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = Run(run_dir)
    assert wait_for(run, ("running",), 90) == "running"
    while not any(e["type"] == "step" for e in run.events()):
        time.sleep(0.1)
    pid = _rank_pid(run_dir, 1)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    job.wait(timeout=60)
    assert time.monotonic() - killed < 60 and job.returncode != 0
    assert run.state() == "failed"
    message = [e for e in run.events() if e.get("status") == "failed"][-1]["message"]
    assert "2-process job broke off" in message and "died or was killed" in message


def test_dashboard_launch_of_two_processes_shows_one_coherent_curve(tree, tmp_path):
    run = start_training(TrainConfig(epochs=3, batch_size=8, lr=0.01), tmp_path / "runs", data_dir=str(tree),
                         processes=2)
    assert "torch.distributed.run" in " ".join(run.launch()["command"])
    assert wait_for(run, ("done", "failed"), 180) == "done", run.log_file.read_text()[-2000:]
    events = run.events()
    steps = [e["global_step"] for e in events if e["type"] == "step"]
    # 48 images / batch 8 = 6 steps an epoch: reported every 5 steps and at the epoch's end, each once
    assert steps == [5, 6, 11, 12, 17, 18]
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == [1, 2, 3]
    assert row(run)["state"] == "done"


def test_batch_smaller_than_the_number_of_processes_is_refused(tree, tmp_path):
    out = torchrun("--standalone", "--nproc-per-node=2", "-m", "core", "train", "--data-dir", tree, "--run-dir",
                   tmp_path / "r", "--batch-size", "1", "--no-download")
    assert out.returncode != 0 and "batch_size: must be at least the number of processes (2)" in out.stderr
