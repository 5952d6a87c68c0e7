"""The run directory: the one place a training process and the dashboard meet.

    config.json      the exact configuration (and data source) the run was started with
    events.jsonl     append-only, one JSON object per line, flushed as written
    model.pth        plain state_dict
    checkpoint.pth   everything needed to resume
    metrics.json     final evaluation
    snapshots.pt     the weights along training, for the learning replay (core/snapshots.py)
    train.log        the process's own output

Replaced files are written to a temporary file and renamed, so a crash never leaves half a
file; nothing here is loaded with unrestricted pickle.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path

import torch

from core.checkpoints import CheckpointError
from core.events import ACTIVE_STATES, FINAL_STATES, last_status
from core.files import atomic_write, atomic_write_json
from core.processes import trainer_alive

RESERVED_GRACE_S = 10.0  # an empty run directory younger than this is still being started
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def check_run_id(run_id: str) -> str:
    """A run id is a plain folder name: no separators, no '..', nothing hidden."""
    if not isinstance(run_id, str) or not RUN_ID.match(run_id) or ".." in run_id:
        raise ValueError(f"{run_id!r} is not a valid run name: use letters, digits, '.', '_' and '-' "
                         "(at most 100, not starting with '.').")
    return run_id


class Run:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._events = None

    config_file = property(lambda self: self.path / "config.json")
    events_file = property(lambda self: self.path / "events.jsonl")
    model_file = property(lambda self: self.path / "model.pth")
    checkpoint_file = property(lambda self: self.path / "checkpoint.pth")
    metrics_file = property(lambda self: self.path / "metrics.json")
    snapshots_file = property(lambda self: self.path / "snapshots.pt")
    log_file = property(lambda self: self.path / "train.log")

    @property
    def id(self) -> str:
        return self.path.name

    # ---- writing (the training process, rank 0) ----
    def create(self, config: dict) -> "Run":
        if self.config_file.exists():
            raise FileExistsError(f"{self.path} already holds a run; resume it with --resume {self.path} "
                                  "or choose another --run-dir.")
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.config_file, config)
        return self

    def append_event(self, event: dict) -> None:
        if self._events is None:
            self._events = open(self.events_file, "a", encoding="utf-8")
        self._events.write(json.dumps({"time": time.time(), **event}) + "\n")
        self._events.flush()

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
            self._events = None

    def save_checkpoint(self, checkpoint: dict) -> None:
        """checkpoint.pth for resuming, and model.pth (its weights alone) for everything else."""
        atomic_write(self.checkpoint_file, lambda f: torch.save(checkpoint, f))
        atomic_write(self.model_file, lambda f: torch.save(checkpoint["model"], f))
        if "snapshots" in checkpoint:
            atomic_write(self.snapshots_file, lambda f: torch.save(checkpoint["snapshots"], f))

    def remove_temporaries(self) -> None:
        """Temporary files a killed writer left behind (the files they were replacing are intact)."""
        for tmp in self.path.glob(".*.tmp*"):
            tmp.unlink(missing_ok=True)

    def write_metrics(self, metrics: dict) -> None:
        atomic_write_json(self.metrics_file, metrics)

    def log(self, line: str) -> None:
        with open(self.log_file, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    # ---- reading (the CLI on resume, the dashboard) ----
    def config(self) -> dict:
        try:
            return json.loads(self.config_file.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.path} is not a run directory (no config.json).") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValueError(f"{self.config_file} is damaged (not valid JSON); this run cannot be resumed.") from None

    def events(self) -> list[dict]:
        return EventReader(self.events_file).read()

    def metrics(self) -> dict | None:
        try:
            return json.loads(self.metrics_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def load_checkpoint(self) -> dict:
        if not self.checkpoint_file.is_file():
            raise CheckpointError(f"{self.path} has no checkpoint.pth to resume from.")
        try:
            return torch.load(self.checkpoint_file, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"{self.checkpoint_file} could not be loaded as a plain checkpoint: {exc}") from None

    def launch(self) -> dict:
        """What the dashboard's launcher recorded (pid, command), or {} for a CLI run."""
        try:
            return json.loads((self.path / LAUNCH_FILE).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def state(self, events: list[dict] | None = None) -> str:
        """running | starting | done | stopped | failed | diverged | interrupted.

        A run whose process vanished without a final status (killed, machine rebooted) is
        `interrupted`; its last checkpoint can be resumed. A run relaunched (resumed) after its
        last status is `starting` until the new process reports, or `failed` if it died first.
        An empty directory is `starting` for RESERVED_GRACE_S after it was reserved, then `failed`.
        """
        events = self.events() if events is None else events
        status = last_status(events)
        launch = self.launch()
        if launch.get("time", 0) > status.get("time", 0) and status:
            return "starting" if trainer_alive(launch["pid"], self.path, launch["time"]) else "failed"
        if status.get("status") in FINAL_STATES:
            return status["status"]
        reporter = status if status.get("pid") else launch  # the trainer once it reports, else the launcher's record
        pid, seen_at = reporter.get("pid"), reporter.get("time")
        alive = bool(pid) and trainer_alive(pid, self.path, seen_at)
        if status.get("status") == "running":
            return "running" if alive else "interrupted"
        if alive or (not launch and not events and self._just_reserved()):
            return "starting"
        return "interrupted" if self.checkpoint_file.exists() else "failed"

    def _just_reserved(self) -> bool:
        # Between reserving the directory and recording the process (or its first event) there is
        # a moment with nothing to go on; other sessions must not read that as a failed run.
        try:
            return time.time() - self.path.stat().st_mtime < RESERVED_GRACE_S
        except OSError:
            return False

    def failure_message(self) -> str:
        """The last line the process wrote, for runs that died before reporting a status."""
        try:
            lines = [line for line in self.log_file.read_text(errors="replace").splitlines() if line.strip()]
        except FileNotFoundError:
            return "the training process ended before writing anything"
        return lines[-1] if lines else "the training process ended before writing anything"


LAUNCH_FILE = "launch.json"


class EventReader:
    """Reads events.jsonl incrementally: each call parses only what was appended since the last.

    A line still being written (no newline yet) waits for the next call; a torn line left by a
    killed writer is skipped.
    """

    def __init__(self, path: Path):
        self.path, self.offset, self.events, self._partial = Path(path), 0, [], b""

    def read(self) -> list[dict]:
        try:
            with open(self.path, "rb") as f:
                if os.fstat(f.fileno()).st_size < self.offset:  # replaced or truncated: start over
                    self.offset, self.events, self._partial = 0, [], b""
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return self.events
        self.offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            try:
                self.events.append(json.loads(line))
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
        return self.events


def list_runs(root: Path) -> list[Run]:
    """Run directories under `root`, newest first."""
    if not root.is_dir():
        return []
    def started(run: Run) -> float:
        for f in (run.config_file, run.path / LAUNCH_FILE, run.path):  # written once, at the start
            try:
                return f.stat().st_mtime
            except FileNotFoundError:
                continue
        return 0.0

    runs = [Run(p) for p in root.iterdir() if p.is_dir() and not p.is_symlink() and RUN_ID.match(p.name)]
    return sorted(runs, key=started, reverse=True)


def resolve_run(root: Path, run_id: str) -> Run:
    """The run `run_id` under `root`; ids that would leave `root` (.., /, symlinks out) are refused."""
    check_run_id(run_id)
    path = (root / run_id)
    if path.is_symlink() or not path.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"{run_id!r} is not a run inside {root}.")
    return Run(path)


def log_tail(run: Run, lines: int = 30) -> list[str]:
    """The last lines of train.log, read from its end (the file can be long)."""
    try:
        with open(run.log_file, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 16384))
            return f.read().decode(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return []


def _idle_run(root: Path, run_id: str) -> Run:
    run = resolve_run(root, run_id)
    if not run.path.is_dir():
        raise ValueError(f"There is no run {run_id!r}.")
    if run.state() in ACTIVE_STATES:
        raise ValueError(f"{run_id} is still training; stop it first.")
    return run


def rename_run(root: Path, run_id: str, new_id: str) -> Run:
    run = _idle_run(root, run_id)
    target = resolve_run(root, new_id)
    if target.path.exists():
        raise ValueError(f"A run named {new_id!r} already exists; choose another name.")
    os.rename(run.path, target.path)
    return target


def delete_run(root: Path, run_id: str) -> None:
    import shutil

    shutil.rmtree(_idle_run(root, run_id).path)
