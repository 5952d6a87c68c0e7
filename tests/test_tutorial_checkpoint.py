"""A checkpoint made by the tutorial's own code loads here and evaluates to what that code printed."""
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

SEED = ROOT.parent / "shared" / "bench" / "seed_tutorial.py"
CIFAR = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@pytest.mark.skipif(not SEED.exists(), reason="the tutorial's code (../shared/bench/seed_tutorial.py) is absent")
def test_tutorial_checkpoint_evaluates_to_the_tutorials_printed_accuracy(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 20), ("test", 13)):  # 130 test images: the accuracy is not a round number
        for c, name in enumerate(CIFAR):
            folder = tmp_path / "tree" / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (32, 32, 3))
                pixels[..., c % 3] = (pixels[..., c % 3] + 60 * (c // 3)) % 256
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")
    seed = subprocess.run([sys.executable, str(SEED), str(tmp_path / "tree"), "3"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert seed.returncode == 0, seed.stderr
    printed = re.search(r"Accuracy of the network on the \d+ test images: (\d+) %", seed.stdout)[1]
    exact = float(re.search(r"acc=([\d.]+)", seed.stdout)[1])
    ours = subprocess.run([sys.executable, "-m", "core", "evaluate", str(tmp_path / "cifar_net.pth"), "--data-dir",
                           str(tmp_path / "tree"), "--no-download", "--json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert ours.returncode == 0, ours.stderr
    import json
    metrics = json.loads(ours.stdout)
    assert 100 * metrics["correct"] // metrics["total"] == int(printed)
    assert 100 * metrics["accuracy"] == pytest.approx(exact, abs=0.01)
