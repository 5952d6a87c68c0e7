import math

import pytest
import torch

from core.config import PRESETS, ConfigError, TrainConfig
from core.data import DataConfig
from core.devices import choose_device
from core.evaluate import evaluate, tutorial_lines
from core.train import lr_at, train
from core.transforms import normalizer

TINY = TrainConfig(epochs=3, batch_size=4, lr=0.01, log_interval=3)


def test_tutorial_preset_is_the_tutorial():
    t = PRESETS["tutorial"]
    assert (t.model, t.width, t.batch_size, t.lr, t.momentum, t.epochs, t.log_interval) == \
           ("net", 6, 4, 0.001, 0.9, 2, 2000)
    assert t.weight_decay == 0 and t.schedule == "constant" and not t.augment


def test_training_reduces_loss_and_reports_events(dataset):
    events = []
    result = train(TINY, dataset, torch.device("cpu"), on_event=events.append)
    steps = [e for e in events if e["type"] == "step"]
    assert result.status == "done" and result.epochs_done == 3
    assert steps[-1]["loss"] < steps[0]["loss"]
    assert events[0]["type"] == "status" and events[0]["status"] == "running" and events[0]["device"] == "CPU"
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == [1, 2, 3]
    assert all(0 <= e["test_accuracy"] <= 1 for e in events if e["type"] == "epoch")
    for key in ("epoch", "step", "loss", "lr", "images_per_s", "train_seconds", "images_seen"):
        assert key in steps[0]
    logs = [e for e in events if e["type"] == "log"]
    assert [(e["epoch"], e["step"]) for e in logs][:3] == [(1, 3), (1, 6), (1, 9)]
    # the last epoch's evaluation comes back with the result (the CLI writes it to metrics.json)
    again = evaluate(result.model, dataset.test, normalizer(DataConfig(), "cpu"))
    assert result.evaluation.accuracy == events[-1]["test_accuracy"] == again.accuracy
    assert torch.equal(result.evaluation.confusion, again.confusion)


def test_log_lines_average_the_running_loss_like_the_tutorial(dataset):
    """The printed loss is the mean of the last log_interval mini-batch losses, reset each epoch."""
    config = TrainConfig(epochs=1, batch_size=4, lr=0.01, log_interval=4)
    events = []
    train(config, dataset, torch.device("cpu"), on_event=events.append)
    # replay the tutorial's loop by hand on the same seed and batches
    from core.models import build_model
    torch.manual_seed(config.seed)
    model = build_model("net", 6, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    criterion = torch.nn.CrossEntropyLoss()
    perm = torch.randperm(36, generator=torch.Generator().manual_seed(config.seed))
    normalize = normalizer(DataConfig(), "cpu")
    expected, running = [], 0.0
    for i, idx in enumerate(perm.split(4)):
        optimizer.zero_grad()
        loss = criterion(model(normalize(dataset.train.images[idx])), dataset.train.labels[idx])
        loss.backward()
        optimizer.step()
        running += loss.item()
        if i % 4 == 3:
            expected.append(running / 4)
            running = 0.0
    got = [e["loss"] for e in events if e["type"] == "log"]
    assert got == pytest.approx(expected, rel=1e-5)


def test_same_seed_gives_the_same_run_on_cpu(dataset):
    a = train(TINY, dataset, torch.device("cpu")).model.state_dict()
    b = train(TINY, dataset, torch.device("cpu")).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = train(TrainConfig(**{**TINY.to_dict(), "seed": 1}), dataset, torch.device("cpu")).model.state_dict()
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("overrides,stopped_at", [
    ({}, (1, 4)),  # 9 steps in epoch 1, 4 into epoch 2
    ({"augment": True}, (1, 4)),
    ({"augment": True, "zoom": 0.3, "jitter": 0.5}, (1, 4)),  # the photo augmentations draw from the same generator
    ({"val_images": 6}, (1, 5)),  # 30 images left to train on: 8 steps an epoch; the same 30 on resume
    ({"augment": True, "outlier_exposure": 0.5}, (1, 4)),  # the outliers are drawn from the same generator too
])
def test_stop_then_resume_continues_exactly(dataset, overrides, stopped_at):
    config = TrainConfig(**{**TINY.to_dict(), **overrides})
    full = train(config, dataset, torch.device("cpu")).model.state_dict()

    calls = {"n": 0}

    def stop_after_13_steps():
        calls["n"] += 1
        return calls["n"] > 13

    saved = []
    first = train(config, dataset, torch.device("cpu"), should_stop=stop_after_13_steps, save_checkpoint=saved.append)
    assert first.status == "stopped" and first.epochs_done == 1
    assert (saved[-1]["epoch"], saved[-1]["step"]) == stopped_at
    events = []
    resumed = train(config, dataset, torch.device("cpu"), resume=saved[-1], on_event=events.append)
    assert resumed.status == "done"
    assert events[0]["resumed"] and (events[0]["epoch"], events[0]["step"]) == stopped_at
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == [2, 3]
    state = resumed.model.state_dict()
    assert all(torch.equal(full[k], state[k]) for k in full)


def test_checkpoints_hold_plain_data_only(dataset, tmp_path):
    saved = []
    train(TINY, dataset, torch.device("cpu"), save_checkpoint=saved.append)
    torch.save(saved[-1], tmp_path / "c.pth")
    back = torch.load(tmp_path / "c.pth", weights_only=True)
    assert back["epoch"] == 3 and back["step"] == 0 and set(back["model"]) == set(saved[-1]["model"])


def test_diverging_loss_is_reported(dataset):
    from core.train import Diverged
    with pytest.raises(Diverged, match="lower the learning rate"):
        # a normalisation that overflows to inf makes every loss NaN from the first step
        train(TrainConfig(epochs=1, log_interval=1), dataset, torch.device("cpu"),
              data_config=DataConfig(std=(1e-45, 1e-45, 1e-45)))


@pytest.mark.parametrize("field,value,fragment", [
    ("epochs", 0, "between 1 and 1000"), ("batch_size", -1, "between 1"), ("lr", 0.0, "above 0"),
    ("lr", float("nan"), "above 0"), ("momentum", 1.0, "[0, 1)"), ("schedule", "sometimes", "choose one of"),
    ("model", "resnet9000", "unknown model"), ("device", "tpu", "choose one of"), ("width", 0, "between 1"),
    ("zoom", 0.0, "between 0.1 and 1"), ("zoom", 1.5, "between 0.1 and 1"), ("jitter", -0.1, "between 0 and 0.9"),
    ("jitter", float("inf"), "between 0 and 0.9"), ("cutout", 25, "between 0 and 24"), ("epochs", "2", "must be int"),
    ("augment", 1, "must be bool"), ("epochs", True, "must be int"),
])
def test_invalid_settings_are_rejected_with_a_message(field, value, fragment):
    with pytest.raises(ConfigError) as err:
        TrainConfig(**{field: value})
    assert field in err.value.problems and fragment in err.value.problems[field]


def test_unknown_settings_are_rejected():
    with pytest.raises(ConfigError, match="unknown setting"):
        TrainConfig.from_dict({"epochs": 1, "learning_rate": 3})


def test_device_choice():
    assert choose_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert choose_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            choose_device("cuda")


def test_schedules():
    c = TrainConfig(lr=1.0, schedule="cosine")
    assert lr_at(c, 0, 100) == 1.0 and lr_at(c, 50, 100) == pytest.approx(0.5)
    assert lr_at(c, 100, 100) == pytest.approx(0)
    o = TrainConfig(lr=1.0, schedule="onecycle")
    assert lr_at(o, 0, 100) == 0 and lr_at(o, 20, 100) == pytest.approx(1) and lr_at(o, 60, 100) == pytest.approx(0.5)
    assert lr_at(TrainConfig(lr=0.3), 77, 100) == 0.3


def test_evaluate_counts_and_tutorial_lines(dataset):
    model = train(TINY, dataset, torch.device("cpu")).model
    result = evaluate(model, dataset.test, normalizer(DataConfig(), "cpu"))
    assert result.total == 12 and result.confusion.sum() == 12
    assert result.correct == int(result.confusion.diag().sum())
    assert result.probabilities.shape == (12, 3)
    assert torch.allclose(result.probabilities.sum(1), torch.ones(12))
    # per class agrees with a by-hand count, like the tutorial's loop
    for c in range(3):
        mask = dataset.test.labels == c
        assert result.per_class_accuracy[c] == pytest.approx((result.predictions[mask] == c).float().mean().item())
    lines = tutorial_lines(result, dataset.classes)
    assert lines[0] == f"Accuracy of the network on the 12 test images: {100 * result.correct // 12} %"
    assert lines[1].startswith("Accuracy for class: blue  is ") and lines[1].endswith(" %")


def test_cifar_names_print_as_the_tutorial():
    from core.evaluate import EvalResult
    conf = torch.eye(10, dtype=torch.int64) * 3
    r = EvalResult(30, 30, conf, torch.zeros(30, dtype=torch.int64), torch.zeros(30, 10))
    from core.data import CIFAR10_CLASSES
    lines = tutorial_lines(r, CIFAR10_CLASSES)
    assert lines[1] == "Accuracy for class: plane is 100.0 %" and lines[2] == "Accuracy for class: car   is 100.0 %"
    nothing = EvalResult(0, 0, torch.zeros(2, 2, dtype=torch.int64), torch.zeros(0), torch.zeros(0, 2))
    assert math.isnan(nothing.per_class_accuracy[0])
