"""A checkpoint made by the tutorial's own code loads here and evaluates to what that code printed: in the CLI and
on the Evaluate page. (On the real files: tests/test_integration_cifar.py checks that our decode is torchvision's
CIFAR10, which the tutorial's code reads.)"""
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, open_app
from PIL import Image

SEED = ROOT.parent / "shared" / "bench" / "seed_tutorial.py"
CIFAR = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
pytestmark = pytest.mark.skipif(not SEED.exists(), reason="the tutorial's code (../shared/bench/seed_tutorial.py) "
                                                          "is absent")


@pytest.fixture(scope="module")
def seed_checkpoint(tmp_path_factory):
    """A ten-class tree, cifar_net.pth as the tutorial's code saves it after 3 epochs on it, and what it printed."""
    tmp = tmp_path_factory.mktemp("seed")
    rng = np.random.default_rng(0)
    for split, n in (("train", 20), ("test", 13)):  # 130 test images: the accuracy is not a round number
        for c, name in enumerate(CIFAR):
            folder = tmp / "tree" / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (32, 32, 3))
                pixels[..., c % 3] = (pixels[..., c % 3] + 60 * (c // 3)) % 256
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")
    seed = subprocess.run([sys.executable, str(SEED), str(tmp / "tree"), "3"], cwd=tmp, capture_output=True,
                          text=True, timeout=300)
    assert seed.returncode == 0, seed.stderr
    printed = int(re.search(r"Accuracy of the network on the \d+ test images: (\d+) %", seed.stdout)[1])
    exact = float(re.search(r"acc=([\d.]+)", seed.stdout)[1])
    return tmp / "tree", tmp / "cifar_net.pth", printed, exact


def test_tutorial_checkpoint_evaluates_to_the_tutorials_printed_accuracy(seed_checkpoint):
    tree, path, printed, exact = seed_checkpoint
    ours = subprocess.run([sys.executable, "-m", "core", "evaluate", str(path), "--data-dir", str(tree),
                           "--no-download", "--json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert ours.returncode == 0, ours.stderr
    metrics = json.loads(ours.stdout)
    assert 100 * metrics["correct"] // metrics["total"] == printed
    assert 100 * metrics["accuracy"] == pytest.approx(exact, abs=0.01)


def test_the_tutorials_own_checkpoint_scores_what_its_code_printed_on_the_evaluate_page(seed_checkpoint,
                                                                                        monkeypatch, tmp_path):
    tree, path, _, exact = seed_checkpoint
    monkeypatch.setenv("CIFAR_DATA", str(tree))
    monkeypatch.setenv("CIFAR_RUNS", str(tmp_path / "runs"))
    at = open_app("dashboard/evaluate_page.py")
    at.radio[0].set_value("Upload a .pth file").run()
    at.file_uploader[0].set_value(("cifar_net.pth", path.read_bytes(), "application/octet-stream"))
    at.run(timeout=120)
    assert not at.exception and not at.error
    assert at.metric[0].value == f"{exact:.2f} %"
