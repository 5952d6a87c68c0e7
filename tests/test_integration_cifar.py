"""On the real CIFAR-10 copy (extracted by .ci/run); skipped only when it is absent."""
import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, real_cifar_dir
from test_models import TutorialNet

DATA = real_cifar_dir()
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(DATA is None, reason="the offline CIFAR-10 copy is not extracted in ./data")]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "core", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=900)


@pytest.fixture(scope="module")
def tutorial_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cifar") / "tutorial"
    out = cli("train", "--preset", "tutorial", "--data-dir", DATA, "--run-dir", run_dir, "--no-download")
    assert out.returncode == 0, out.stderr
    return run_dir, out.stdout


def test_tutorial_preset_reaches_the_tutorials_accuracy(tutorial_run):
    run_dir, stdout = tutorial_run
    lines = stdout.splitlines()
    # the tutorial's twelve loss lines, in its format
    loss_lines = [l for l in lines if l.startswith("[")]
    assert [l[:10] for l in loss_lines] == [f"[{e}, {s:5d}]" for e in (1, 2) for s in range(2000, 12001, 2000)]
    assert 1.1 < float(loss_lines[-1].split()[-1]) < 1.6
    assert "Finished Training" in lines
    headline = [l for l in lines if l.startswith("Accuracy of the network on the 10000 test images:")]
    assert len(headline) == 1
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.50 <= metrics["accuracy"] <= 0.57
    assert headline[0].endswith(f"{100 * metrics['correct'] // 10000} %")
    assert [l.split(" is ")[0] for l in lines if l.startswith("Accuracy for class:")] == [
        f"Accuracy for class: {c:5s}" for c in ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse",
                                                   "ship", "truck")]


def test_saved_model_loads_into_the_tutorials_own_class_with_the_same_accuracy(tutorial_run):
    run_dir, _ = tutorial_run
    net = TutorialNet()
    net.load_state_dict(torch.load(run_dir / "model.pth", weights_only=True))
    from core.data import DataConfig, load_dataset, normalizer
    test = load_dataset(DataConfig(data_dir=str(DATA), download=False)).test
    with torch.no_grad():
        predicted = torch.cat([net(normalizer(DataConfig(), "cpu")(x)).argmax(1) for x in test.images.split(500)])
    correct = int((predicted == test.labels).sum())
    assert correct == json.loads((run_dir / "metrics.json").read_text())["correct"]
    out = cli("evaluate", run_dir, "--data-dir", DATA, "--no-download")
    assert out.stdout.splitlines()[0] == f"Accuracy of the network on the 10000 test images: {100 * correct // 10000} %"


def test_two_processes_reach_the_same_accuracy_band(tmp_path):
    """The tutorial preset under torchrun with 2 CPU processes: same global batch, same band."""
    run_dir = tmp_path / "ddp"
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                          "-m", "core", "train", "--preset", "tutorial", "--data-dir", str(DATA), "--run-dir",
                          str(run_dir), "--no-download", "--no-progress"], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    assert 0.50 <= metrics["accuracy"] <= 0.57


def test_fast_preset_beats_the_tutorials_accuracy_in_one_epoch(tmp_path):
    run_dir = tmp_path / "fast"
    out = cli("train", "--preset", "fast", "--data-dir", DATA, "--run-dir", run_dir, "--no-download")
    assert out.returncode == 0, out.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and metrics["accuracy"] >= 0.53
    # evaluating the saved run again applies the same test-time augmentation (flip) and agrees
    again = cli("evaluate", run_dir, "--data-dir", DATA, "--no-download", "--json")
    assert json.loads(again.stdout)["correct"] == metrics["correct"]
