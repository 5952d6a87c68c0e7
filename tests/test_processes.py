"""Is a run's trainer alive: the psutil path, with a fake process table and with real processes."""
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from core import processes
from core.processes import trainer_alive

RUN = Path("runs/20261129-101010-abcd")


class FakeProcess:
    table: dict[int, dict] = {}

    def __init__(self, pid):
        if pid not in self.table:
            raise psutil.NoSuchProcess(pid)
        self.info = self.table[pid]

    def status(self):
        return self.info.get("status", psutil.STATUS_RUNNING)

    def create_time(self):
        return self.info.get("created", 1000.0)

    def cmdline(self):
        if self.info.get("denied"):
            raise psutil.AccessDenied(0)
        if self.info.get("empty_reads", 0) > 0:  # in the middle of exec: no arguments yet
            self.info["empty_reads"] -= 1
            return []
        return self.info["cmdline"]


@pytest.fixture
def table(monkeypatch):
    monkeypatch.setattr(processes.psutil, "Process", FakeProcess)
    trainer = ["python", "-m", "core", "train", "--run-dir", str(RUN)]
    FakeProcess.table = {
        10: {"cmdline": trainer},
        11: {"cmdline": ["python", "-m", "torch.distributed.run", "--nproc-per-node=2", "-m", "core", "train",
                         "--run-dir", str(RUN)]},
        12: {"cmdline": ["vim", "notes.txt"]},  # the pid now belongs to something else
        13: {"cmdline": trainer, "status": psutil.STATUS_ZOMBIE},
        14: {"cmdline": trainer, "created": 5000.0},  # started after the run's trainer was seen alive
        15: {"cmdline": ["python", "-m", "core", "train", "--run-dir", "runs/another-run"]},
        16: {"denied": True},
        17: {"cmdline": trainer, "empty_reads": 2},  # just launched: its arguments show a moment later
        18: {"cmdline": []},  # a kernel thread
    }
    return FakeProcess.table


@pytest.mark.parametrize("pid, alive", [(10, True), (11, True), (12, False), (13, False), (14, False), (15, False),
                                        (16, True), (17, True), (18, False), (99, False)])
def test_only_a_live_trainer_of_this_run_counts(table, pid, alive):
    assert trainer_alive(pid, RUN, seen_at=2000.0) is alive


def test_without_a_time_seen_a_later_start_is_not_held_against_it(table):
    assert trainer_alive(14, RUN) is True


def test_a_real_process_is_seen_alive_then_dead(tmp_path):
    run = tmp_path / "runs" / "r1"
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "core", str(run)])
    try:
        assert trainer_alive(proc.pid, run, seen_at=time.time())
        assert not trainer_alive(proc.pid, tmp_path / "runs" / "other", seen_at=time.time())
    finally:
        proc.kill()
        proc.wait()
    assert not trainer_alive(proc.pid, run)
