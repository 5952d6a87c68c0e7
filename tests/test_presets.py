"""The presets: documented, valid, each path runs on a CPU; the GPU lease script's plan."""
import json

import pytest
import torch

from core.config import PRESET_DESCRIPTIONS, PRESETS, TrainConfig, with_overrides
from core.train import train

CPU = torch.device("cpu")



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
