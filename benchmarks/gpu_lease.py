"""The whole GPU measurement for one lease of a GPU machine, prepared to run as one command: a warm-up epoch, 5 seeds
of the `gpu` preset, 2 of `gpu-best`, optionally one compiled `gpu` run, in one process with the data resident on
the GPU; within a time budget, so a 15-minute lease has room for a rerun.

    python -m benchmarks.gpu_lease [--out benchmarks/results/gpu-lease] [--budget-s 420] [--compile]
    python -m benchmarks.gpu_lease --device cpu --subset 500 --epochs 1 --seeds 1   # the same code on a CPU first

Writes, as it goes, `<out>/runs.jsonl` (one line a run: preset, seed, accuracy after each epoch, training seconds)
and `<out>/log.txt` (what it prints), and at the end `<out>/summary.json`: for each preset the mean ± sd accuracy
over its seeds, mean training seconds, training images/s, peak GPU memory, with the device, driver and torch.
A run is only started while the budget lasts; what was skipped is said.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import torch

from benchmarks.common import ROOT
from benchmarks.gpu import measured, prepared, summarise
from core.config import PRESETS, with_overrides

PLAN = [("gpu", 5), ("gpu-best", 2)]  # (preset, seeds), in this order


def driver() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown (no nvidia-smi)"


def device_facts(device: torch.device) -> dict:
    if device.type != "cuda":
        return {"device": str(device), "driver": "-", "torch": torch.__version__}
    return {"device": torch.cuda.get_device_name(device), "gpus": torch.cuda.device_count(), "driver": driver(),
            "cuda": torch.version.cuda, "torch": torch.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT / "data"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu-lease"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--budget-s", type=float, default=420, help="start no run after this many seconds")
    parser.add_argument("--compile", action="store_true", help="end with one torch.compile run of the gpu preset")
    parser.add_argument("--subset", type=int, help="train and test on this many images only (a smoke test)")
    parser.add_argument("--epochs", type=int, help="override every preset's epochs (a smoke test)")
    parser.add_argument("--seeds", type=int, help="at most this many seeds of each preset (a smoke test)")
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = (out / "log.txt").open("w")

    def say(line: str) -> None:
        print(line, flush=True)
        log.write(line + "\n")
        log.flush()

    start = time.perf_counter()
    device, data_config, dataset = prepared(args.data_dir, args.device, args.subset)
    facts = device_facts(device)
    say(f"{facts}, {len(dataset.train)} training images ({dataset.description})")
    say(f"warm-up epoch done at {time.perf_counter() - start:.1f} s")

    plan = [(preset, seed, {}) for preset, seeds in PLAN for seed in range(min(seeds, args.seeds or seeds))]
    if args.compile:
        plan.append(("gpu", 0, {"compile": True}))
    runs = []
    for preset, seed, changes in plan:
        name = preset + (" compiled" if changes else "")
        if time.perf_counter() - start > args.budget_s:
            say(f"budget of {args.budget_s:.0f} s spent: {name} seed {seed} not run")
            continue
        config = with_overrides(PRESETS[preset], seed=seed, epochs=args.epochs, **changes)
        r = {"preset": name, "seed": seed, **measured(config, dataset, device, data_config)}
        runs.append(r)
        with (out / "runs.jsonl").open("a") as f:
            f.write(json.dumps(r) + "\n")
        say(f"{name:14s} seed {seed}: {100 * r['accuracy']:.2f} % in {r['train_s']:.2f} s of training, "
            f"peak {r['peak_gpu_mib']:.0f} MiB, curve {r['curve']}")

    summary = {**facts, "data": dataset.description, "presets": {}}
    for name in dict.fromkeys(r["preset"] for r in runs):
        s = summary["presets"][name] = summarise([r for r in runs if r["preset"] == name], len(dataset.train))
        say(f"{name}: {s['accuracy_mean']:.2f} ± {s['accuracy_sd']:.2f} % over {s['seeds']} seeds, "
            f"{s['train_s_mean']:.2f} s of training, {s['images_per_s']:.0f} images/s, "
            f"peak GPU memory {s['peak_gpu_mib']:.0f} MiB")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    say(f"done in {time.perf_counter() - start:.0f} s; figures in {out}")


if __name__ == "__main__":
    main()
