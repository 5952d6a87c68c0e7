"""The run directory: the one place a training process and the dashboard meet.

    config.json      the exact configuration (and data source) the run was started with
    events.jsonl     append-only, one JSON object per line, flushed as written
    model.pth        plain state_dict
    checkpoint.pth   everything needed to resume
    metrics.json     final evaluation
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

from core.models import CheckpointError

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def atomic_write(path: Path, write) -> None:
    """Call `write(file)` on a temporary file beside `path`, fsync, then rename over `path`."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_json(path: Path, data) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(data, indent=2).encode()))


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

    def events(self) -> list[dict]:
        """All complete events; a line still being written (no newline yet) is left for next time."""
        try:
            text = self.events_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        events = []
        for line in text.split("\n")[:-1]:
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn line from a killed writer is skipped, not fatal
        return events

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

    def status(self) -> str | None:
        """The last status the run reported, or None before it reported any."""
        for event in reversed(self.events()):
            if event.get("type") == "status":
                return event["status"]
        return None
