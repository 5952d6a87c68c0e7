"""What `python -m core train --preset fast` and `python -m core predict` spend outside their work.

Each round runs, one after the other: the fast preset through `python -m core` (which ends the process with
os._exit once everything is written) and through the same main() with the interpreter's normal exit (what
it was before), and once more without weight snapshots (`--snapshots 0`: their 24 evaluations of the first test
images are not training time); `predict` of one photo both ways; and the parts: Python with `import torch`, with
`torch._dynamo` too (torch.optim imports it on the first optimizer and every step), and their exits.

    python -m benchmarks.startup --rounds 3
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import CLI, ROOT, real_cifar_dir, run_figures, train_command

NORMAL_EXIT = "import sys; from core.cli import main; sys.exit(main())"  # the interpreter tears torch down


def timed(command: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - began


def train_round(data: Path, tmp: Path, how: list[str], *extra: str) -> tuple[float, float]:
    run_dir = tmp / f"run-{time.monotonic_ns()}"
    whole = timed(train_command(run_dir, "--preset", "fast", "--data-dir", str(data), *extra, launcher=how))
    return whole, run_figures(run_dir)["train_seconds"]


def part(code: str) -> tuple[float, float]:
    """(seconds until `code` has run, seconds of the process's exit after it)."""
    began = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport time; print(time.perf_counter())"],
                         cwd=ROOT, check=True, capture_output=True, text=True)
    ended = time.perf_counter()
    # perf_counter is CLOCK_MONOTONIC on Linux: the child's reading is comparable with ours
    inside = float(out.stdout.split()[-1])
    return inside - began, ended - inside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = real_cifar_dir()
    if data is None:
        raise SystemExit("No CIFAR-10 here: extract ../shared/data/cifar-10-python.tar.gz into ./data")
    now, before = list(CLI), [sys.executable, "-c", NORMAL_EXIT]
    photo = ["predict", str(ROOT / "models" / "default.pth"), str(ROOT / "photos" / "chelsea.jpg")]
    figures: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        train_round(data, Path(tmp), now)  # the decode cache and the page cache warm, as on a second run
        for _ in range(args.rounds):
            for name, how, extra in (("now", now, ()), ("before", before, ()),
                                     ("now, no snapshots", now, ("--snapshots", "0"))):
                whole, training = train_round(data, Path(tmp), how, *extra)
                figures.setdefault(f"fast {name}: whole", []).append(whole)
                figures.setdefault(f"fast {name}: training", []).append(training)
                figures.setdefault(f"fast {name}: whole / training", []).append(whole / training)
                if not extra:
                    figures.setdefault(f"predict {name}: whole", []).append(timed([*how, *photo]))
            for name, code in (("import torch", "import torch"),
                               ("import torch, torch._dynamo", "import torch, torch._dynamo")):
                inside, exit_s = part(code)
                figures.setdefault(f"{name}: start-up", []).append(inside)
                figures.setdefault(f"{name}: exit", []).append(exit_s)
    for name, values in figures.items():
        print(f"{name:<36} median {statistics.median(values):6.2f}  (rounds: "
              f"{', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()
