"""The speed presets' parts on tiny data: models, weight averaging, test-time augmentation, options."""
import copy
import json
import shutil

import pytest
import torch
import torch.nn as nn

from core.averaging import WeightAverage
from core.checkpoints import load_model, model_from_state_dict
from core.config import PRESET_DESCRIPTIONS, PRESETS, TrainConfig, with_overrides
from core.data import DataConfig, load_dataset, normalizer
from core.evaluate import TTA, _shift, evaluate, tta_logits
from core.models import MODELS, FastNet, WideNet, build_model
from core.train import param_groups, prepare_sample, train

CPU = torch.device("cpu")


@pytest.fixture
def dataset(tiny_tree, tmp_path):
    return load_dataset(DataConfig(data_dir=str(tiny_tree), download=False, cache_dir=str(tmp_path / "c")))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_learns_the_tiny_data_and_reloads_from_its_weights(name, dataset):
    config = TrainConfig(model=name, width=4, epochs=8, batch_size=8, lr=0.05, schedule="onecycle", seed=1)
    events = []
    result = train(config, dataset, CPU, on_event=events.append)
    accuracies = [e["test_accuracy"] for e in events if e["type"] == "epoch"]
    assert accuracies[-1] >= 0.8  # three tinted classes: chance is 1/3
    model, found = model_from_state_dict(result.model.state_dict())  # recognised from the shapes alone
    assert found == name and isinstance(model, type(result.model))
    x = torch.randn(3, 3, 32, 32)
    assert torch.equal(model.eval()(x), result.model.eval()(x))
    assert MODELS[name].description and dict(model.named_modules()).get(MODELS[name].cam_layer) is not None


def test_widenet_and_fastnet_shapes():
    assert WideNet(16)(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert FastNet(8, num_classes=4)(torch.zeros(2, 3, 32, 32)).shape == (2, 4)
    assert build_model("fastnet", 64, 10).layer3.conv2.out_channels == 256  # airbench's 64/256/256


def test_fastnet_stem_whitens_patches():
    torch.manual_seed(0)
    mix = torch.tensor([[1.0, 0.8, 0.6], [0.0, 0.5, 0.4], [0.0, 0.0, 0.3]])  # strongly correlated channels
    images = torch.einsum("ij,njhw->nihw", mix, torch.randn(200, 3, 32, 32))
    model = FastNet(8)
    assert not model.whiten.weight.requires_grad  # frozen: the optimizer never sees it
    model.prepare(images)
    nn.init.zeros_(model.whiten.bias)
    out = model.whiten(images)[:, :12].permute(0, 2, 3, 1).reshape(-1, 12)
    covariance = torch.cov(out.T)
    assert torch.allclose(covariance, torch.eye(12), atol=0.05)
    assert torch.equal(model.whiten.weight[12:], -model.whiten.weight[:12])


def test_prepare_runs_before_training_and_not_on_resume(dataset):
    config = TrainConfig(model="fastnet", width=4, epochs=2, batch_size=8, lr=0.05, ema=0.9)
    saved = []
    first = train(config, dataset, CPU, save_checkpoint=lambda c: saved.append(copy.deepcopy(c)))  # as if on disk
    stem = first.model.whiten.weight
    assert stem.abs().sum() > 0 and not torch.equal(stem, FastNet(4).whiten.weight)
    resumed = train(config, dataset, CPU, resume=saved[0])  # from the end of epoch 1
    assert all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(),
                                                 resumed.model.state_dict().values()))


def test_prepare_sees_every_class_of_a_class_sorted_set():
    labels = torch.arange(10).repeat_interleave(5000)  # as a folder tree loads: class by class
    assert torch.bincount(prepare_sample(labels)).tolist() == [500] * 10
    assert torch.equal(prepare_sample(labels[:300]), labels[:300])  # a small set is used whole


def test_weight_average_is_the_exponential_moving_average():
    model = nn.Linear(3, 2)
    average = WeightAverage(model, decay=0.5)
    history = [model.weight.detach().clone()]
    for step in range(1, 30):
        with torch.no_grad():
            model.weight.add_(1.0)
        average.update()
        decay = min(0.5, (1 + step) / (10 + step))
        history.append(decay * history[-1] + (1 - decay) * model.weight.detach())
    assert torch.allclose(average.averaged.weight, history[-1])
    assert not torch.equal(average.averaged.weight, model.weight)


def test_averaged_weights_are_evaluated_saved_and_resumed_exactly(dataset):
    config = TrainConfig(model="widenet", width=4, epochs=3, batch_size=8, lr=0.05, ema=0.9, seed=3)
    full = train(config, dataset, CPU)
    saved = []
    calls = {"n": 0}

    def stop_after_7():  # 5 steps an epoch: stops 2 steps into epoch 2
        calls["n"] += 1
        return calls["n"] > 7

    first = train(config, dataset, CPU, should_stop=stop_after_7, save_checkpoint=saved.append)
    assert first.status == "stopped"
    checkpoint = saved[-1]
    assert set(checkpoint) >= {"model", "training_model", "average_updates"}
    assert not all(torch.equal(checkpoint["model"][k], checkpoint["training_model"][k])
                   for k in checkpoint["model"] if checkpoint["model"][k].is_floating_point())
    resumed = train(config, dataset, CPU, resume=checkpoint)
    assert all(torch.equal(a, b) for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()))


def test_tta_views():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    assert torch.equal(_shift(x, 1, 1)[..., 1:, 1:], x[..., :-1, :-1])  # moved down-right
    assert torch.equal(_shift(x, -1, -1)[..., :-1, :-1], x[..., 1:, 1:])
    mirror_blind = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 5))  # ignores position
    for tta in TTA:
        assert torch.allclose(tta_logits(mirror_blind, x, tta), mirror_blind(x), atol=1e-5)
    left_eye = nn.Sequential(nn.Flatten(), nn.Linear(48, 5))
    assert not torch.allclose(tta_logits(left_eye, x, "flip"), left_eye(x))
    assert torch.allclose(tta_logits(left_eye, x, "flip"), (left_eye(x) + left_eye(x.flip(3))) / 2)
    with pytest.raises(ValueError, match="flip-translate"):
        tta_logits(left_eye, x, "sideways")


def test_evaluate_uses_tta_and_loaded_models_carry_it(dataset, tmp_path):
    config = TrainConfig(model="widenet", width=4, epochs=2, batch_size=8, lr=0.05, tta="flip")
    model = train(config, dataset, CPU).model
    normalize = normalizer(DataConfig(), CPU)
    plain, flipped = evaluate(model, dataset.test, normalize), evaluate(model, dataset.test, normalize, tta="flip")
    expected = torch.softmax(tta_logits(model.eval(), normalize(dataset.test.images), "flip"), 1)
    assert torch.allclose(flipped.probabilities, expected, atol=1e-6)
    assert not torch.allclose(plain.probabilities, flipped.probabilities)
    run = tmp_path / "run"
    run.mkdir()
    torch.save(model.state_dict(), run / "model.pth")
    config = {"train": {"model": "widenet", "tta": "flip"}, "classes": list(dataset.classes)}
    (run / "config.json").write_text(json.dumps(config))
    loaded = load_model(run)
    assert (loaded.name, loaded.tta) == ("widenet", "flip")


def test_weight_decay_split_and_frozen_parameters():
    model = FastNet(4)
    one = param_groups(model, TrainConfig())
    assert len(one) == 1 and all(p.requires_grad for p in one[0]["params"])
    assert all(p is not model.whiten.weight for p in one[0]["params"])
    decayed, free = param_groups(model, TrainConfig(decay_weights_only=True))
    assert all(p.dim() == 4 or p is model.head.weight for p in decayed["params"])
    assert free["weight_decay"] == 0.0 and all(p.dim() == 1 for p in free["params"])
    assert len(decayed["params"]) + len(free["params"]) == len(one[0]["params"])
    # a norm lr scale splits the rest once more: the stem's bias keeps the lr, the norms get the scale
    decayed, bias, norms = param_groups(model, TrainConfig(decay_weights_only=True, norm_lr_scale=64.0))
    assert bias["params"] == [model.whiten.bias] and (bias["lr_scale"], bias["weight_decay"]) == (1.0, 0.0)
    assert norms["lr_scale"] == 64.0 and len(norms["params"]) == 12  # 6 BatchNorms, weight and bias


def test_norm_options_reach_the_optimizer_and_frozen_scales_stay_one(dataset):
    config = TrainConfig(model="fastnet", width=4, epochs=1, batch_size=16, lr=0.05, norm_lr_scale=8.0,
                         freeze_norm_scales=True, decay_weights_only=True, weight_decay=5e-4)
    saved = []
    result = train(config, dataset, CPU, save_checkpoint=saved.append)
    groups = saved[-1]["optimizer"]["param_groups"]
    assert [g["lr"] for g in groups] == pytest.approx([0.05, 0.05, 0.4])  # constant schedule x lr_scale
    assert [g["weight_decay"] for g in groups] == [5e-4, 0.0, 0.0]
    norms = [m for m in result.model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(torch.equal(m.weight, torch.ones_like(m.weight)) for m in norms)  # frozen at 1
    assert all(m.bias.abs().sum() > 0 for m in norms)  # while the biases learned
    # a resumed run rebuilds the same three groups, loads their state and keeps the scales frozen
    again = train(TrainConfig(**{**config.to_dict(), "epochs": 2}), dataset, CPU, resume=saved[-1])
    assert again.epochs_done == 2
    assert all(torch.equal(m.weight, torch.ones_like(m.weight))
               for m in again.model.modules() if isinstance(m, nn.BatchNorm2d))


def test_every_option_switched_on_runs_on_cpu(dataset):
    """The gpu preset's path (bf16 autocast, channels_last, whitening, averaging, TTA) on a CPU."""
    config = TrainConfig(**{**PRESETS["gpu"].to_dict(), "width": 4, "epochs": 2, "batch_size": 16, "lr": 0.2,
                            "device": "cpu"})
    events = []
    result = train(config, dataset, CPU, on_event=events.append)
    assert result.status == "done"
    assert next(result.model.parameters()).dtype == torch.float32  # autocast leaves the weights alone
    assert result.model.layer1.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == [1, 2]
    assert all(e["loss"] == e["loss"] for e in events if e["type"] == "step")  # no NaN under bf16


@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                    reason="torch.compile needs a C++ compiler on a CPU")
def test_compiled_training_matches_eager_closely(dataset):
    # batch 4 divides the training images: no short last batch for the compiler to build a second graph for
    config = TrainConfig(model="widenet", width=4, epochs=1, batch_size=4, lr=0.05)
    eager = train(config, dataset, CPU).model.state_dict()
    compiled = train(TrainConfig(**{**config.to_dict(), "compile": True}), dataset, CPU).model.state_dict()
    assert set(eager) == set(compiled)  # saved without torch.compile's "_orig_mod." prefix
    assert all(torch.allclose(eager[k].float(), compiled[k].float(), atol=1e-3) for k in eager)


@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                    reason="torch.compile needs a C++ compiler on a CPU")
def test_compiled_fastnet_under_bf16_has_the_eager_gradients():
    """torch.compile's backward of a global amax under bf16 autocast gave NaN gradients at the first step
    (found on an H200 with the gpu preset; the same on CPUs); FastNet pools with max_pool instead."""
    torch.manual_seed(0)
    model, inputs, labels = FastNet(8), torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))
    model.prepare(inputs)
    compiled = torch.compile(copy.deepcopy(model))
    grads = []
    for m in (model, compiled):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = nn.functional.cross_entropy(m(inputs), labels)
        loss.backward()
        grads.append([p.grad for p in m.parameters() if p.grad is not None])
    assert all(torch.isfinite(g).all() for g in grads[1])
    # bf16 rounds differently once ops are fused (single tensors differ by 10-20 %), so compare directions
    eager, fused = (torch.cat([g.flatten() for g in gs]) for gs in grads)
    assert torch.nn.functional.cosine_similarity(eager, fused, 0) > 0.95


def test_presets_are_documented_and_valid():
    assert set(PRESETS) == {"tutorial", "fast", "cpu-best", "gpu", "gpu-best"} == set(PRESET_DESCRIPTIONS)
    assert PRESETS["gpu"].bf16 and PRESETS["gpu"].channels_last and PRESETS["gpu"].tta != "none"
    assert PRESETS["gpu"].model == "fastnet" and PRESETS["fast"].epochs == 1


def test_gpu_best_preset_trains_on_a_cpu(dataset):
    """The gpu-best recipe's code path (fastnet-deep, cutout, bf16 autocast, flip-translate views) at a tiny width."""
    config = with_overrides(PRESETS["gpu-best"], width=4, epochs=2, batch_size=8, lr=0.05, device="cpu")
    assert config.model == "fastnet-deep" and config.cutout == 12 and config.bf16
    events = []
    result = train(config, dataset, CPU, on_event=events.append)
    assert result.status == "done" and [e["epoch"] for e in events if e["type"] == "epoch"] == [1, 2]
    assert result.model.layer3.conv3.weight.shape[0] == 16  # 4w, three convolutions a stage
    assert 0 <= result.evaluation.accuracy <= 1 and torch.isfinite(result.evaluation.logits).all()


def test_gpu_lease_script_runs_its_plan_on_a_cpu(tiny_tree, tmp_path, monkeypatch):
    """benchmarks/gpu_lease.py, as a lease would run it, on the CPU and the tiny data: every preset of its plan
    trained, one line a run in runs.jsonl, the summary with the figures BENCHMARKS.md quotes."""
    import sys

    from benchmarks import gpu_lease
    out = tmp_path / "lease"
    monkeypatch.setattr(sys, "argv", ["gpu_lease", "--device", "cpu", "--data-dir", str(tiny_tree), "--out", str(out),
                                      "--subset", "24", "--epochs", "1", "--seeds", "1"])
    gpu_lease.main()
    runs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert [(r["preset"], r["seed"], r["epochs"]) for r in runs] == [("gpu", 0, 1), ("gpu-best", 0, 1)]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["presets"]) == {"gpu", "gpu-best"} and summary["device"] == "cpu"
    for figures in summary["presets"].values():
        assert {"accuracy_mean", "accuracy_sd", "train_s_mean", "images_per_s", "peak_gpu_mib"} <= set(figures)
    assert "gpu-best" in (out / "log.txt").read_text()


@pytest.mark.parametrize("native", [True, False])
def test_presets_here_drop_bf16_only_on_a_cpu_that_emulates_it(native, monkeypatch):
    from core import devices
    monkeypatch.setattr(devices, "native_bf16", lambda: native)
    for name, preset in PRESETS.items():
        here = devices.for_this_device(preset, CPU)
        assert here.bf16 == (preset.bf16 and native)
        assert here == with_overrides(preset, bf16=here.bf16)  # nothing else changes
        assert devices.for_this_device(preset, torch.device("cuda")) == preset  # GPUs have bf16
    assert devices.preset_here("fast").bf16 == native or torch.cuda.is_available()
