"""Images per second for 1 and N training processes (DistributedDataParallel via torchrun).

    python -m benchmarks.scaling [--data-dir data] [--batch-size 256] [--processes 1 2]

Each configuration trains one epoch of the same global batch and learning rate; throughput is
the run's own images/s (training time only). Scaling efficiency = (N-process images/s) /
(N x 1-process images/s). On CPUs the processes share the machine's cores (gloo, one thread
each); on a GPU machine pass --device cuda and one process per GPU (NCCL).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import CLI, ROOT, run_figures, train_command


def run(processes: int, args, tmp: Path) -> tuple[float, float]:
    run_dir = tmp / f"p{processes}"
    launcher = CLI if processes == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", "-m", "core"]
    threads = max(1, (os.cpu_count() or 1) // processes) if args.device == "cpu" else None
    env = {**os.environ, "PYTHONPATH": str(ROOT), **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    subprocess.run(train_command(run_dir, "--data-dir", args.data_dir, "--epochs", "1",
                                 "--batch-size", str(args.batch_size), "--lr", "0.05", "--device", args.device,
                                 "--model", args.model, *(["--threads", str(threads)] if threads else []),
                                 launcher=launcher),
                   cwd=ROOT, env=env, check=True, capture_output=True)
    figures = run_figures(run_dir)
    return figures["images_per_s"], 100 * figures["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT / "data"))
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="net")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU cores, device {args.device}, model {args.model}, "
          f"global batch {args.batch_size}, 1 epoch")
    with tempfile.TemporaryDirectory() as tmp:
        base = None
        for n in args.processes:
            speed, accuracy = run(n, args, Path(tmp))
            base = base or speed
            print(f"{n} process{'es' if n > 1 else '  '}: {speed:8.0f} images/s   accuracy {accuracy:.1f} %   "
                  f"speed-up {speed / base:.2f}x   efficiency {speed / (n * base):.0%}")


if __name__ == "__main__":
    main()
