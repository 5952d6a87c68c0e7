"""Training as a child process, found again from its run directory."""
import os
import signal
import time

import pytest

from core.config import TrainConfig
from core.launcher import reserve_run_dir, resume_training, start_training, stop_training, wait_for
from core.run_table import row
from core.runs import EventReader, list_runs, resolve_run

QUICK = TrainConfig(epochs=2, lr=0.01, log_interval=3)
LONG = TrainConfig(epochs=500, lr=0.01, log_interval=50)


def test_launched_run_finishes_with_the_same_files_as_the_cli(tiny_tree, tmp_path):
    run = start_training(QUICK, tmp_path / "runs", data_dir=str(tiny_tree), preset="tutorial")
    assert run.path.parent == (tmp_path / "runs").resolve()
    assert wait_for(run, ("done", "failed"), 90) == "done", run.log_file.read_text()
    assert run.config()["train"] == QUICK.to_dict() and run.config()["preset"] == "tutorial"
    assert run.metrics()["total"] == 12 and run.model_file.exists()
    summary = row(run)
    assert summary["state"] == "done" and summary["epochs_done"] == 2 and summary["best_accuracy"] is not None
    assert "Finished Training" in run.log_file.read_text()


def test_stop_is_honoured_quickly_and_resume_continues(tiny_tree, tmp_path):
    run = start_training(LONG, tmp_path / "runs", data_dir=str(tiny_tree))
    assert wait_for(run, ("running",), 60) == "running"
    while not any(e["type"] == "step" for e in run.events()):
        time.sleep(0.05)
    start = time.monotonic()
    assert stop_training(run)
    assert wait_for(run, ("stopped",), 10) == "stopped"
    assert time.monotonic() - start < 2.0
    assert run.checkpoint_file.exists()
    assert not stop_training(run)  # nothing left to stop
    done_steps = max(e["global_step"] for e in run.events() if e["type"] == "step")
    checkpoint_epoch = run.load_checkpoint()["epoch"]
    resume_training(run, epochs=checkpoint_epoch + 1)
    assert wait_for(run, ("done", "failed"), 90) == "done", run.log_file.read_text()
    assert max(e["global_step"] for e in run.events() if e["type"] == "step") > done_steps


def test_killed_run_reads_as_interrupted_and_can_resume(tiny_tree, tmp_path):
    run = start_training(LONG, tmp_path / "runs", data_dir=str(tiny_tree))
    wait_for(run, ("running",), 60)
    while not run.checkpoint_file.is_file():  # what the resume needs (written whole, then renamed)
        time.sleep(0.05)
    os.kill(run.launch()["pid"], signal.SIGKILL)
    assert wait_for(run, ("interrupted",), 10) == "interrupted"
    resume_training(run, epochs=run.load_checkpoint()["epoch"] + 1)
    assert wait_for(run, ("done", "failed"), 90) == "done"


def test_failure_before_training_is_reported_with_its_reason(tmp_path):
    run = start_training(QUICK, tmp_path / "runs", data_dir=str(tmp_path / "no-data"))
    assert wait_for(run, ("failed",), 60) == "failed"
    assert "No data found" in run.failure_message()


def test_concurrent_reservations_are_distinct(tmp_path):
    paths = {reserve_run_dir(tmp_path) for _ in range(50)}
    assert len(paths) == 50


def test_a_just_reserved_directory_is_starting_until_its_grace_runs_out(tmp_path):
    run = resolve_run(tmp_path, reserve_run_dir(tmp_path).name)
    assert run.state() == "starting"  # another session looking in before the launcher records the process
    long_ago = time.time() - 60
    os.utime(run.path, (long_ago, long_ago))
    assert run.state() == "failed"


@pytest.mark.parametrize("bad", ["..", "../x", "/etc", "a/b", ".hidden", "", "x" * 101, "a\x00b"])
def test_run_ids_cannot_escape_the_runs_folder(tmp_path, bad):
    with pytest.raises(ValueError):
        resolve_run(tmp_path / "runs", bad)


def test_symlinked_run_outside_is_refused(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "runs" / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ValueError):
        resolve_run(tmp_path / "runs", "link")
    assert list_runs(tmp_path / "runs") == []


def test_event_reader_is_incremental_and_skips_torn_lines(tmp_path):
    path = tmp_path / "events.jsonl"
    reader = EventReader(path)
    assert reader.read() == []
    path.write_text('{"a": 1}\n{"b": 2')
    assert reader.read() == [{"a": 1}]  # the second line is still being written
    with open(path, "a") as f:
        f.write('}\n{"torn\n{"c": 3}\n')
    assert reader.read() == [{"a": 1}, {"b": 2}, {"c": 3}]
    offset = reader.offset
    assert reader.read() == [{"a": 1}, {"b": 2}, {"c": 3}] and reader.offset == offset
    path.write_text('{"z": 0}\n')  # replaced by a shorter file
    assert reader.read() == [{"z": 0}]


def test_rename_and_delete_stay_inside_runs_and_refuse_live_runs(tiny_tree, tmp_path):
    from core.runs import delete_run, rename_run
    root = tmp_path / "runs"
    run = start_training(QUICK, root, data_dir=str(tiny_tree))
    with pytest.raises(ValueError, match="still training"):
        rename_run(root, run.id, "new-name")
    assert wait_for(run, ("done", "failed"), 90) == "done"
    with pytest.raises(ValueError):
        rename_run(root, run.id, "../escaped")
    renamed = rename_run(root, run.id, "baseline")
    assert renamed.path == root / "baseline" and renamed.state() == "done"
    (root / "other").mkdir()
    with pytest.raises(ValueError, match="already exists"):
        rename_run(root, "baseline", "other")
    with pytest.raises(ValueError):
        delete_run(root, "..")
    delete_run(root, "baseline")
    assert not (root / "baseline").exists() and tmp_path.exists() and (root / "other").exists()


def test_a_resumed_run_reads_as_starting_until_it_reports_and_failed_if_it_dies_first(tiny_tree, tmp_path):
    run = start_training(LONG, tmp_path / "runs", data_dir=str(tiny_tree))
    assert wait_for(run, ("running",), 60) == "running"
    stop_training(run)
    assert wait_for(run, ("stopped",), 10) == "stopped"
    resume_training(run)
    assert run.state() == "starting"  # not "stopped": a second Resume is refused meanwhile
    with pytest.raises(RuntimeError, match="still running"):
        resume_training(run)
    assert wait_for(run, ("running",), 60) == "running"
    stop_training(run)
    assert wait_for(run, ("stopped",), 10) == "stopped"
    import shutil
    shutil.rmtree(tiny_tree)  # the resumed process cannot load its data and exits before reporting
    resume_training(run)
    assert wait_for(run, ("failed",), 60) == "failed"
    assert "No data found" in run.failure_message()
