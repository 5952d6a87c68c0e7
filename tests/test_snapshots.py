import json

import pytest
import torch
from conftest import ROOT

from core import snapshots
from core.config import TrainConfig
from core.data import DataConfig, Split
from core.evaluate import evaluate
from core.models import build_model
from core.runs import Run
from core.train import train
from core.transforms import normalizer

TINY = TrainConfig(epochs=3, batch_size=4, lr=0.01, log_interval=3)  # 9 steps an epoch on the tiny tree


def test_steps_run_from_the_initial_weights_to_the_end_log_spaced():
    steps = snapshots.steps_for(1410, 6)
    assert steps == [0, 4, 18, 78, 331, 1410]
    ratios = [b / a for a, b in zip(steps[1:], steps[2:])]
    assert max(ratios) / min(ratios) < 1.1  # a constant ratio: log-spaced
    assert snapshots.steps_for(3, 24) == [0, 1, 2, 3]  # fewer when the run has fewer steps
    assert snapshots.steps_for(100, 0) == [] and snapshots.steps_for(100, 2) == [0, 100]


def test_the_count_is_bounded_by_size():
    small, wide = build_model("net", 6, 10), build_model("fastnet", 64, 10)
    assert snapshots.count_for(small, 24) == 24 and snapshots.count_for(small, 0) == 0
    count = snapshots.count_for(wide, 24)
    assert count == 6 and count * snapshots.half_size(wide) <= snapshots.BUDGET_BYTES
    assert snapshots.count_for(small, 1) == 1
    huge = build_model("fastnet-deep", 128, 10)  # gpu-best's: two snapshots alone would pass the budget
    assert 2 * snapshots.half_size(huge) > snapshots.BUDGET_BYTES and snapshots.count_for(huge, 24) == 0


def test_a_run_keeps_snapshots_without_changing_its_training(dataset):
    saved, without = [], []
    result = train(TINY, dataset, torch.device("cpu"), save_checkpoint=saved.append)
    plain = train(TrainConfig(**{**TINY.to_dict(), "snapshots": 0}), dataset, torch.device("cpu"),
                  save_checkpoint=without.append)
    assert "snapshots" not in without[-1]
    final = result.model.state_dict()
    assert all(torch.equal(final[k], plain.model.state_dict()[k]) for k in final)

    kept = snapshots.Snapshots.from_dict(saved[-1]["snapshots"])
    assert kept.steps == snapshots.steps_for(27, 24) and kept.steps_per_epoch == 9
    assert all(v.dtype == torch.float16 for w in kept.weights for v in w.values() if v.is_floating_point())
    # the last one is the trained model, in half precision, scored on the first test images
    last = kept.state_dict(-1, final)
    assert all(torch.allclose(last[k].float(), final[k].float(), atol=1e-2, rtol=1e-2) for k in final)
    n = snapshots.SNAPSHOT_TEST_IMAGES
    model = build_model("net", 6, 3)
    model.load_state_dict(last)
    scored = evaluate(model, Split(dataset.test.images[:n], dataset.test.labels[:n]), normalizer(DataConfig(), "cpu"))
    assert kept.accuracy[-1] == pytest.approx(scored.accuracy, abs=1 / len(dataset.test))
    # the first is the initial weights: far from the trained ones
    first = kept.state_dict(0, final)
    assert not torch.allclose(first["conv1.weight"], final["conv1.weight"], atol=1e-2)
    assert kept.epoch(0) == 0 and kept.epoch(len(kept.steps) - 1) == 3


def test_a_resumed_run_keeps_the_same_snapshots(dataset):
    full = []
    train(TINY, dataset, torch.device("cpu"), save_checkpoint=full.append)
    calls = {"n": 0}

    def stop_after_13_steps():
        calls["n"] += 1
        return calls["n"] > 13

    saved = []
    train(TINY, dataset, torch.device("cpu"), should_stop=stop_after_13_steps, save_checkpoint=saved.append)
    train(TINY, dataset, torch.device("cpu"), resume=saved[-1], save_checkpoint=saved.append)
    a, b = (snapshots.Snapshots.from_dict(c[-1]["snapshots"]) for c in (full, saved))
    assert a.steps == b.steps and a.accuracy == b.accuracy
    assert all(torch.equal(x[k], y[k]) for x, y in zip(a.weights, b.weights) for k in x)


def test_the_run_directory_holds_them_and_a_bad_file_is_named(dataset, tmp_path):
    run = Run(tmp_path / "run").create({"train": TINY.to_dict()})
    train(TINY, dataset, torch.device("cpu"), save_checkpoint=run.save_checkpoint)
    assert snapshots.file_for(run.model_file) == run.snapshots_file
    back = snapshots.load(run.snapshots_file)
    assert back.steps[0] == 0 and back.steps[-1] == 27
    assert snapshots.file_for(tmp_path / "models" / "default.pth") == tmp_path / "models" / "default.snapshots.pt"
    assert snapshots.load(tmp_path / "none.pt") is None
    (tmp_path / "bad.pt").write_bytes(b"not a file of tensors")
    with pytest.raises(snapshots.SnapshotError, match="not a snapshots file"):
        snapshots.load(tmp_path / "bad.pt")
    torch.save({"steps_per_epoch": 9, "steps": [0, 1], "accuracy": [0.1], "weights": [{}]}, tmp_path / "short.pt")
    with pytest.raises(snapshots.SnapshotError, match="not a complete"):
        snapshots.load(tmp_path / "short.pt")


def test_a_file_says_how_many_test_images_scored_it_and_an_older_one_was_scored_on_2000():
    kept = snapshots.Snapshots(9, [0], [0.1], [{"w": torch.zeros(2)}])
    data = kept.to_dict()
    assert data["test_images"] == snapshots.SNAPSHOT_TEST_IMAGES
    assert snapshots.Snapshots.from_dict(data).test_images == snapshots.SNAPSHOT_TEST_IMAGES
    del data["test_images"]  # what runs trained before the count changed wrote
    assert snapshots.Snapshots.from_dict(data).test_images == 2000


def test_the_shipped_model_carries_its_own_learning_replay():
    models = ROOT / "models"
    card = json.loads((models / "default.json").read_text())
    kept = snapshots.load(snapshots.file_for(models / "default.pth"))
    assert kept.steps[0] == 0 and kept.steps[-1] == card["epochs"] * kept.steps_per_epoch and len(kept.steps) >= 4
    assert kept.accuracy[0] < 0.2 and abs(kept.accuracy[-1] - card["test_accuracy"]) < 0.02  # random to trained
