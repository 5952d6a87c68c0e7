"""The validation split: training images held out (class-balanced, always the same ones) and scored each epoch."""
import json

import pytest
import torch

from core import events as ev
from core import ood
from core.charts import Series, accuracy_figure
from core.config import PRESETS, TrainConfig
from core.data import DataError, Split, first_of_each_class, holdout
from core.train import train

TINY = TrainConfig(epochs=3, batch_size=4, lr=0.01, log_interval=3, val_images=6)


def numbered_split(per_class=(12, 12, 12)) -> Split:
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(per_class)])
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(5))  # classes interleaved
    labels = labels[order]
    images = torch.arange(len(labels)).view(-1, 1, 1, 1).expand(-1, 3, 32, 32).to(torch.uint8)  # image i is i
    return Split(images.contiguous(), labels)


def ids(split: Split) -> list[int]:
    return split.images[:, 0, 0, 0].tolist()


def test_holdout_is_disjoint_class_balanced_and_always_the_same():
    split = numbered_split()
    rest, held = holdout(split, 7)
    assert len(held) == 7 and len(rest) == 29
    assert sorted(ids(rest) + ids(held)) == list(range(36))  # disjoint, nothing lost
    assert held.class_counts(3) == [3, 2, 2]  # 7 = 2 per class + 1 from the first
    for images, labels in ((rest.images, rest.labels), (held.images, held.labels)):  # labels travel with images
        assert torch.equal(split.labels[images[:, 0, 0, 0].long()], labels)
    again_rest, again_held = holdout(split, 7)
    assert ids(again_held) == ids(held) and ids(again_rest) == ids(rest)  # a resumed run trains on the same rest
    assert set(ids(holdout(split, 3)[1])) != set(ids(held))


def test_holdout_leaves_every_class_a_training_image():
    split = numbered_split((12, 3, 12))
    with pytest.raises(DataError, match="class 1 has only 3 training images.*at most 6"):
        holdout(split, 12)
    assert holdout(split, 6)[1].class_counts(3) == [2, 2, 2]


def test_the_tutorial_holds_nothing_out():
    assert PRESETS["tutorial"].val_images == 0
    with pytest.raises(ValueError, match="val_images: must be between 0 and 25000"):
        TrainConfig(val_images=-1)


def test_training_reports_validation_each_epoch(dataset):
    events = []
    result = train(TINY, dataset, torch.device("cpu"), on_event=events.append)
    assert ev.last_status(events)["train_size"] == len(dataset.train) - 6  # trained on the rest only
    epochs = ev.of_type(events, ev.EPOCH)
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert all(0 <= e["val_accuracy"] <= 1 and e["val_loss"] > 0 for e in epochs)
    assert result.validation.total == 6 and result.validation.accuracy == epochs[-1]["val_accuracy"]
    assert result.evaluation.total == len(dataset.test)  # the test set is still scored, and apart
    curves = ev.curves(events)
    assert curves["val_accuracy"] == [e["val_accuracy"] for e in epochs]
    # the temperature is fitted on the validation images and judged on the test set
    c = result.calibration
    assert c["temperature"] > 0 and 0 <= c["test_ece"] <= 1 and 0 <= c["test_ece_calibrated"] <= 1
    # and "none of the ten" is set on the same images: 95 % of them pass its threshold
    familiar = ood.familiarity(result.validation.logits, c["temperature"])
    assert c["ood_score"] == ood.SCORE and (familiar >= c["ood_threshold"]).float().mean() >= ood.KEEP - 1 / 6


def test_without_a_split_epochs_carry_no_validation(dataset):
    events = []
    result = train(TrainConfig(**{**TINY.to_dict(), "val_images": 0, "epochs": 1}), dataset, torch.device("cpu"),
                   on_event=events.append)
    assert result.validation is None and result.calibration == {}
    assert "val_accuracy" not in ev.of_type(events, ev.EPOCH)[0]
    assert ev.curves(events)["val_accuracy"] == [None]


def test_accuracy_chart_draws_validation_as_the_runs_dashed_twin():
    fig = accuracy_figure([Series("a", [1, 2], [0.5, 0.6], [0.55, 0.65]), Series("b", [1], [0.4], [None])])
    names = [t.name for t in fig.data]
    assert names == ["a", "a (validation)", "b"]  # b held nothing out: no empty validation line
    assert fig.data[1].line.dash == "dash" and fig.data[1].line.color == fig.data[0].line.color
    assert list(fig.data[1].y) == pytest.approx([55, 65])


def test_cli_prints_validation_beside_test_accuracy(tiny_tree, tmp_path):
    from test_cli import cli

    out = cli("train", "--data-dir", tiny_tree, "--run-dir", tmp_path / "run", "--epochs", "1", "--lr", "0.01",
              "--val-images", "6", "--no-download")
    assert out.returncode == 0, out.stderr
    epoch_line = next(line for line in out.stdout.splitlines() if line.startswith("Epoch 1:"))
    assert "test accuracy" in epoch_line and ", validation " in epoch_line
    assert any(line.startswith("Calibration: temperature ") for line in out.stdout.splitlines())
    flag_line = next(line for line in out.stdout.splitlines() if line.startswith("None of the "))
    assert flag_line.startswith("None of the 3: an image whose energy score is below ")  # the tree's 3 classes
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["temperature"] > 0 and "test_ece_calibrated" in metrics
    bad = cli("train", "--data-dir", tiny_tree, "--run-dir", tmp_path / "too-many", "--val-images", "36",
              "--no-download")
    assert bad.returncode != 0 and "Cannot hold out 36 validation images" in bad.stderr


def test_first_of_each_class_takes_the_same_images_in_any_order_of_classes():
    split = numbered_split((5, 2, 4))
    subset = first_of_each_class(split, 3)
    assert subset.class_counts(3) == [3, 2, 3]  # a class with fewer gives what it has
    members = [[i for i, label in zip(ids(split), split.labels.tolist()) if label == c] for c in range(3)]
    assert ids(subset) == [i for each in members for i in each[:3]]  # class by class, each in the split's order
