"""What the GPU measurements share (benchmarks/gpu_lease.py, gpu_sweep.py and presets.py --gpu): the data loaded once
and a warm-up epoch, one run measured in the process, and the figures over several seeds.

Every function runs on a CPU too (`device="cpu"`, `n` images), so a script is checked before a lease; there a preset
runs as it would on that CPU (`for_this_device`: no bf16 where it is only emulated, ~10x slower for gpu-best).
"""
from __future__ import annotations

import statistics
from pathlib import Path

import torch

from core.config import PRESETS, TrainConfig, with_overrides
from core.data import DataConfig, Dataset, Split, load_dataset
from core.devices import choose_device, for_this_device
from core.events import EPOCH
from core.train import train

GPU_TARGET = 0.94


def subset(dataset: Dataset, n: int) -> Dataset:
    """The first `n` training and `n` test images of `dataset`: a smoke test on a CPU."""
    return Dataset(Split(dataset.train.images[:n], dataset.train.labels[:n]),
                   Split(dataset.test.images[:n], dataset.test.labels[:n]), dataset.classes, dataset.kind, dataset.root)


def prepared(data_dir: str | Path, device: str = "cuda", n: int | None = None
             ) -> tuple[torch.device, DataConfig, Dataset]:
    """(the device, the data's config, the data: all of it, or its first `n` images), after one untimed epoch of
    the gpu preset: cuDNN autotuning and CUDA start-up belong to no particular run."""
    chosen = choose_device(device)
    data_config = DataConfig(data_dir=str(data_dir), download=False)
    dataset = load_dataset(data_config)
    if n:
        dataset = subset(dataset, n)
    train(for_this_device(with_overrides(PRESETS["gpu"], epochs=1), chosen), dataset, chosen, data_config=data_config)
    return chosen, data_config, dataset


def measured(config: TrainConfig, dataset: Dataset, device: torch.device, data_config: DataConfig) -> dict:
    """Train `config` once in this process: its epochs, final test accuracy (fraction), training seconds, the
    training seconds at the first epoch that reached GPU_TARGET (None if none did), the accuracy after each
    epoch, and the peak GPU memory it took (0 on a CPU)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    epochs = []
    result = train(for_this_device(config, device), dataset, device, data_config=data_config,
                   on_event=lambda e: epochs.append(e) if e["type"] == EPOCH else None)
    reached = [e["train_seconds"] for e in epochs if e["test_accuracy"] >= GPU_TARGET]
    return {"epochs": config.epochs, "accuracy": epochs[-1]["test_accuracy"], "train_s": result.train_seconds,
            "seconds_to_94": reached[0] if reached else None,
            "curve": [round(e["test_accuracy"], 4) for e in epochs],
            "peak_gpu_mib": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else 0.0}


def summarise(runs: list[dict], images_per_epoch: int) -> dict:
    """One preset's runs (one a seed): accuracy mean and sample sd (%), training seconds, images/s, how many reached
    94 % and how soon on average (None when none did), the peak GPU memory."""
    accuracies = [100 * r["accuracy"] for r in runs]
    got_there = [r["seconds_to_94"] for r in runs if r["seconds_to_94"] is not None]
    return {"seeds": len(runs), "accuracy_mean": statistics.mean(accuracies),
            "accuracy_sd": statistics.stdev(accuracies) if len(runs) > 1 else 0.0,
            "train_s_mean": statistics.mean(r["train_s"] for r in runs),
            "images_per_s": statistics.mean(images_per_epoch * r["epochs"] / r["train_s"] for r in runs),
            "reached_94": len(got_there), "seconds_to_94_mean": statistics.mean(got_there) if got_there else None,
            "peak_gpu_mib": max(r["peak_gpu_mib"] for r in runs)}
