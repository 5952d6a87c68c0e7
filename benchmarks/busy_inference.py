"""One-image prediction while a trainer keeps every core busy: OpenMP's default wait policy against PASSIVE.

    python -m benchmarks.busy_inference [--model models/default.pth] [--calls 30]

The dashboard classifies photos while a training run it launched holds the CPU. This starts a busy
process (a matrix-multiply loop on every core), then, in two fresh processes, times `predict` on one
image with OMP_WAIT_POLICY unset (threads spin while they wait) and with PASSIVE (what app.py sets):
median and worst of `--calls` calls, and their ratio. The policy is read when torch loads, hence
one process per setting.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.common import ROOT

PROBE = """
import json, statistics, sys, time, torch
from core.checkpoints import load_model
model = load_model(sys.argv[1])
image = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
model.predict(image)
times = []
for _ in range(int(sys.argv[2])):
    start = time.perf_counter(); model.predict(image); times.append(time.perf_counter() - start)
print(json.dumps({"median_ms": 1000 * statistics.median(times), "worst_ms": 1000 * max(times)}))
"""

BUSY = "import torch\na = torch.randn(1024, 1024)\nwhile True:\n    a @ a\n"


def probe(model: str, calls: int, policy: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = str(ROOT)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, "-c", PROBE, model, str(calls)], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "default.pth"))
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        results = {policy or "default": probe(args.model, args.calls, policy) for policy in (None, "PASSIVE")}
    finally:
        busy.kill()
    print(f"{os.cpu_count()} cores, one busy process beside; one image through {Path(args.model).name}:")
    for name, r in results.items():
        print(f"  OMP_WAIT_POLICY={name:8s} median {r['median_ms']:8.1f} ms   worst {r['worst_ms']:8.1f} ms")
    print(f"  default / PASSIVE (median): {results['default']['median_ms'] / results['PASSIVE']['median_ms']:.1f}x")


if __name__ == "__main__":
    main()
