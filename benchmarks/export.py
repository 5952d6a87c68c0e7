"""Exported models (core/export.py): the files' sizes, the time to make them, and how fast each runtime
answers the whole CIFAR-10 test set against the model in PyTorch (eager, the dashboard's own pass, one
view) in the same process, on the same threads; the predictions are compared image by image.

    python -m benchmarks.export                 # the shipped fastnet
    python -m benchmarks.export --model runs/X  # any run or .pth
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import ROOT, real_cifar_dir
from core.checkpoints import load_model
from core.data import DataConfig, load_dataset
from core.evaluate import evaluate
from core.export import FORMATS, SUFFIXES, export, load_exported


def best_of(rounds: int, work) -> float:
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "models" / "default.pth"))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = real_cifar_dir()
    if data is None:
        raise SystemExit("No CIFAR-10 here: extract ../shared/data/cifar-10-python.tar.gz into ./data")
    loaded = load_model(args.model)
    test = load_dataset(DataConfig(data_dir=str(data), download=False)).test
    batches = [(b.float() / 255).numpy() for b in test.images.split(500)]
    eager = evaluate(loaded.model, test, loaded.normalizer(), batch_size=500)
    base = best_of(args.rounds, lambda: evaluate(loaded.model, test, loaded.normalizer(), batch_size=500))
    print(f"{loaded.name} ({Path(args.model).name}), {torch.get_num_threads()} threads, 10,000 test images, "
          f"batches of 500, best of {args.rounds}")
    print("| runtime | file | export takes | test set | against PyTorch eager | same predictions |")
    print("| --- | --- | --- | --- | --- | --- |")
    size = Path(loaded.path).stat().st_size / 2**20
    print(f"| PyTorch eager (model.pth) | {size:.1f} MiB | | {base:.2f} s | 1.00× | |")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in FORMATS:
            path = Path(tmp) / f"model{SUFFIXES[fmt]}"
            began = time.perf_counter()
            export(loaded, fmt, path)
            made = time.perf_counter() - began
            run, _ = load_exported(path)
            logits = np.concatenate([run(b) for b in batches])
            seconds = best_of(args.rounds, lambda: [run(b) for b in batches])
            same = int((logits.argmax(1) == eager.predictions.numpy()).sum())
            print(f"| {fmt} | {path.stat().st_size / 2**20:.1f} MiB | {made:.1f} s | {seconds:.2f} s | "
                  f"{seconds / base:.2f}× | {same:,} of {len(logits):,} |")


if __name__ == "__main__":
    main()
