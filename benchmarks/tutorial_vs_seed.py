"""The tutorial's own code against our `tutorial` preset, same data, same machine, one invocation.

    python -m benchmarks.tutorial_vs_seed [--data-dir data] [--seed-script ../shared/bench/seed_tutorial.py]

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

from benchmarks.common import ROOT, train_command
from core.data import find_source

TRAIN_IMAGES = 50_000  # per epoch: the benchmarks run on CIFAR-10's training set


def machine() -> str:
    import torch

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    cpu = names[0] if names else platform.processor()
    return f"{os.cpu_count()} cores ({cpu}), torch {torch.__version__}, Python {platform.python_version()}"


def run_measured(command: list[str], cwd, env=None) -> tuple[str, float]:
    """Run `command` to completion; its stdout and its peak resident memory in MiB (the largest of it
    and the children it waited for, e.g. DataLoader workers), from the kernel's own accounting."""
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{text[-2000:]}")
    return text, usage.ru_maxrss / 1024


def run_seed(script: Path, data_dir: Path, epochs: int) -> dict:
    with tempfile.TemporaryDirectory() as cwd:  # it writes ./cifar_net.pth
        stdout, peak = run_measured([sys.executable, str(script), str(data_dir), str(epochs)], cwd=cwd)
    m = re.search(r"RESULT load_s=([\d.]+) train_s=([\d.]+) train_eval_s=([\d.]+) acc=([\d.]+)", stdout)
    return {"train_s": float(m[2]), "accuracy": float(m[4]), "load_s": float(m[1]), "peak_mib": peak,
            "images": TRAIN_IMAGES * epochs}


def run_ours(data_dir: Path, extra: list[str], preset: str = "tutorial") -> dict:
    """`python -m core train --preset PRESET` as a user types it, in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        start = time.perf_counter()
        _, peak = run_measured(train_command(run_dir, "--preset", preset, "--data-dir", str(data_dir), *extra),
                               cwd=ROOT, env=env)
        wall = time.perf_counter() - start
        metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"train_s": metrics["train_seconds"], "accuracy": 100 * metrics["accuracy"], "wall_s": wall,
            "peak_mib": peak, "images": TRAIN_IMAGES * metrics["epochs"]}


def fill_cache(data_dir: Path) -> None:
    """Decode the tree into our cache outside any timed run (the seed script's decode is untimed too)."""
    decode = f"from core.data import *; load_dataset(DataConfig(data_dir={str(data_dir)!r}, download=False))"
    subprocess.run([sys.executable, "-c", decode], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT / "data"))
    parser.add_argument("--seed-script", default=str(ROOT.parent / "shared" / "bench" / "seed_tutorial.py"))
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    data_dir, script = Path(args.data_dir), Path(args.seed_script)
    if find_source(data_dir) is None or not script.is_file():
        sys.exit(f"error: needs CIFAR-10 at {data_dir} (the original: "
                 f"tar -xzf ../shared/data/cifar-10-python.tar.gz -C data) and the seed script at {script}")

    fill_cache(data_dir)
    print(f"machine: {machine()}")
    print(f"data: {data_dir}, {args.epochs} epochs, batch 4, SGD(lr=0.001, momentum=0.9)", flush=True)
    seed = run_seed(script, data_dir, args.epochs)
    print(f"tutorial's code : train {seed['train_s']:6.1f} s  accuracy {seed['accuracy']:.2f} %", flush=True)
    ours = run_ours(data_dir, ["--epochs", str(args.epochs)])
    print(f"tutorial preset : train {ours['train_s']:6.1f} s  accuracy {ours['accuracy']:.2f} %  "
          f"(whole command {ours['wall_s']:.1f} s, start-up, cached load and evaluation included)")
    print(f"speed ratio (training time, tutorial's code / ours): {seed['train_s'] / ours['train_s']:.2f}x")


if __name__ == "__main__":
    main()
