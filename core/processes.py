"""The training processes a run directory points at: is one alive, and asking it to stop.

Cross-platform through psutil (Linux, macOS, Windows): no /proc, no `ps` parsing.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil

CLOCK_SLACK_S = 1.0  # process start times are kept at a coarser grain than event times


def trainer_alive(pid: int, run_path: Path, seen_at: float | None = None) -> bool:
    """Is `pid` a live `python -m core` process (or torchrun around one) training `run_path`?

    `seen_at` is a time at which the trainer was known to be running (its event or the launcher's
    record): a process with that pid created later is another program that reused the pid.
    """
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:  # ended, not yet reaped by its parent
            return False
        if seen_at is not None and process.create_time() > seen_at + CLOCK_SLACK_S:
            return False
        args = _arguments(process)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's process: it may be theirs, so not declared dead
        return True
    return "core" in args and any(run_path.name in arg for arg in args)


def _arguments(process: psutil.Process, tries: int = 10) -> list[str]:
    """Its command line. A process caught in the middle of exec shows none for a few milliseconds (about one just
    launched in 300, measured), so an empty one is read again a little later; a kernel thread's stays empty."""
    args = process.cmdline()
    for _ in range(tries - 1):
        if args:
            break
        time.sleep(0.005)
        args = process.cmdline()
    return args


def ask_to_stop(pid: int) -> None:
    """SIGTERM: the trainer finishes its step, saves a checkpoint and reports `stopped`."""
    os.kill(pid, signal.SIGTERM)
