"""The tutorial's own code against our `tutorial` preset, same data, same machine, one invocation.

    python benchmarks/tutorial_vs_seed.py [--data-dir data/cifar10-jpeg] [--seed-script ../shared/bench/seed_tutorial.py]

Prints both training times, both accuracies and the speed ratio. Our side runs the CLI a user
would type (`python -m core train --preset tutorial`), in a fresh process, after one untimed
load that fills the decode cache (the seed script decodes in its own untimed load phase too).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    import torch

    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    return f"{os.cpu_count()} cores ({cpu}), torch {torch.__version__}, Python {platform.python_version()}"


def run_seed(script: Path, data_dir: Path, epochs: int) -> dict:
    with tempfile.TemporaryDirectory() as cwd:  # it writes ./cifar_net.pth
        out = subprocess.run([sys.executable, str(script), str(data_dir), str(epochs)], cwd=cwd,
                             capture_output=True, text=True, check=True)
    m = re.search(r"RESULT load_s=([\d.]+) train_s=([\d.]+) train_eval_s=([\d.]+) acc=([\d.]+)", out.stdout)
    return {"train_s": float(m[2]), "accuracy": float(m[4]), "load_s": float(m[1])}


def run_ours(data_dir: Path, epochs: int, extra: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "core", "train", "--preset", "tutorial", "--epochs", str(epochs),
                        "--data-dir", str(data_dir), "--run-dir", str(run_dir), "--no-download", "--no-progress",
                        *extra], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - start
        metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"train_s": metrics["train_seconds"], "accuracy": 100 * metrics["accuracy"], "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT / "data" / "cifar10-jpeg"))
    parser.add_argument("--seed-script", default=str(ROOT.parent / "shared" / "bench" / "seed_tutorial.py"))
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    data_dir, script = Path(args.data_dir), Path(args.seed_script)
    if not (data_dir / "train").is_dir() or not script.is_file():
        sys.exit(f"error: needs a class-per-folder tree at {data_dir} and the seed script at {script}")

    # fill our decode cache outside the timed run (the seed script's decode is untimed too)
    subprocess.run([sys.executable, "-c", f"from core.data import *; load_dataset(DataConfig(data_dir={str(data_dir)!r}, download=False))"],
                   cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    print(f"machine: {machine()}")
    print(f"data: {data_dir}, {args.epochs} epochs, batch 4, SGD(lr=0.001, momentum=0.9)", flush=True)
    seed = run_seed(script, data_dir, args.epochs)
    print(f"tutorial's code : train {seed['train_s']:6.1f} s  accuracy {seed['accuracy']:.2f} %", flush=True)
    ours = run_ours(data_dir, args.epochs, [])
    print(f"tutorial preset : train {ours['train_s']:6.1f} s  accuracy {ours['accuracy']:.2f} %  "
          f"(whole command {ours['wall_s']:.1f} s, start-up, cached load and evaluation included)")
    print(f"speed ratio (training time, tutorial's code / ours): {seed['train_s'] / ours['train_s']:.2f}x")


if __name__ == "__main__":
    main()
