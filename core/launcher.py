"""Starting and stopping training as a child process running the CLI a user would type.

The dashboard never trains in its own process: Stop really stops, a refreshed tab or a
restarted server finds the run again in its directory, and GPU memory is freed when the
child exits.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from core.config import TrainConfig
from core.events import ACTIVE_STATES, last_status
from core.files import atomic_write_json
from core.processes import ask_to_stop
from core.runs import LAUNCH_FILE, Run, new_run_id

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def train_args(config: TrainConfig) -> list[str]:
    """CLI flags that reproduce `config` exactly (every field; tests round-trip it)."""
    args = []
    for name, value in config.to_dict().items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + flag[2:])
        else:
            args += [flag, repr(value) if isinstance(value, float) else str(value)]
    return args


def reserve_run_dir(runs_root: Path) -> Path:
    """A new, empty run directory; concurrent callers never get the same one."""
    runs_root.mkdir(parents=True, exist_ok=True)
    while True:
        path = runs_root / new_run_id()
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def _spawn(command: list[str], run_dir: Path) -> subprocess.Popen:
    # stdout carries the same lines the CLI already writes to train.log; stderr (one-line errors,
    # a crash's traceback) is appended there too, so the dashboard can show why a run failed.
    with open(run_dir / "train.log", "ab") as log:
        proc = subprocess.Popen(command, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=log, start_new_session=True,
                                env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1"})
    threading.Thread(target=proc.wait, daemon=True).start()  # reap it, or it lingers as a zombie
    atomic_write_json(run_dir / LAUNCH_FILE, {"pid": proc.pid, "command": command, "time": time.time()})
    return proc


def trainer(processes: int = 1) -> list[str]:
    """The command prefix: the CLI itself, or torchrun starting `processes` copies of it (DDP)."""
    if processes <= 1:
        return [sys.executable, "-m", "core"]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
            "-m", "core"]


def start_training(config: TrainConfig, runs_root: Path, *, data_dir: str | None = None,
                   preset: str | None = None, download: bool = False, processes: int = 1) -> Run:
    run_dir = reserve_run_dir(runs_root).resolve()
    command = [*trainer(processes), "train", "--run-dir", str(run_dir), "--no-progress", *train_args(config)]
    if preset:
        command += ["--preset", preset]
    if data_dir:
        command += ["--data-dir", str(data_dir)]
    if not download:
        command.append("--no-download")
    _spawn(command, run_dir)
    return Run(run_dir)


def resume_training(run: Run, epochs: int | None = None, processes: int | None = None) -> Run:
    """Continue from the last checkpoint, by default with as many processes as the run had."""
    if run.state() in ACTIVE_STATES:
        raise RuntimeError(f"{run.id} is still running.")
    processes = processes or run.config().get("world_size", 1)
    command = [*trainer(processes), "train", "--resume", str(run.path.resolve()), "--no-progress"]
    if epochs:
        command += ["--epochs", str(epochs)]
    _spawn(command, run.path)
    return run


def stop_training(run: Run) -> bool:
    """Ask the run's process to stop (it saves a checkpoint and reports `stopped`); False if none runs."""
    events = run.events()
    if run.state(events) not in ACTIVE_STATES:
        return False
    pid = last_status(events).get("pid") or run.launch().get("pid")
    ask_to_stop(pid)
    return True


def wait_for(run: Run, states: tuple[str, ...], timeout: float) -> str:
    """Poll until the run reaches one of `states` (for tests and benchmarks)."""
    deadline = time.monotonic() + timeout
    while True:
        state = run.state()
        if state in states or time.monotonic() > deadline:
            return state
        time.sleep(0.05)
