"""On the original CIFAR-10 (torchvision's files, extracted into ./data by .ci/run), and one test on the
JPEG class-per-folder copy of the same images; each skipped only when its copy is absent."""
import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, open_app, real_cifar_dir, real_jpeg_dir
from test_models import TutorialNet

DATA = real_cifar_dir()
JPEG = real_jpeg_dir()
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(DATA is None, reason="the original CIFAR-10 is not extracted in ./data")]


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
    loss_lines = [line for line in lines if line.startswith("[")]
    assert [line[:10] for line in loss_lines] == [f"[{e}, {s:5d}]" for e in (1, 2) for s in range(2000, 12001, 2000)]
    assert 1.1 < float(loss_lines[-1].split()[-1]) < 1.6
    assert "Finished Training" in lines
    headline = [line for line in lines if line.startswith("Accuracy of the network on the 10000 test images:")]
    assert len(headline) == 1
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.50 <= metrics["accuracy"] <= 0.57
    assert headline[0].endswith(f"{100 * metrics['correct'] // 10000} %")
    assert [line.split(" is ")[0] for line in lines if line.startswith("Accuracy for class:")] == [
        f"Accuracy for class: {c:5s}" for c in ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse",
                                                   "ship", "truck")]


def test_saved_model_loads_into_the_tutorials_own_class_with_the_same_accuracy(tutorial_run):
    run_dir, _ = tutorial_run
    net = TutorialNet()
    net.load_state_dict(torch.load(run_dir / "model.pth", weights_only=True))
    from core.data import DataConfig, load_dataset
    from core.transforms import normalizer
    test = load_dataset(DataConfig(data_dir=str(DATA), download=False)).test
    with torch.no_grad():
        predicted = torch.cat([net(normalizer(DataConfig(), "cpu")(x)).argmax(1) for x in test.images.split(500)])
    correct = int((predicted == test.labels).sum())
    assert correct == json.loads((run_dir / "metrics.json").read_text())["correct"]
    out = cli("evaluate", run_dir, "--data-dir", DATA, "--no-download")
    assert out.stdout.splitlines()[0] == f"Accuracy of the network on the 10000 test images: {100 * correct // 10000} %"


def test_fast_preset_beats_the_tutorials_accuracy_in_one_epoch(tmp_path):
    run_dir = tmp_path / "fast"
    out = cli("train", "--preset", "fast", "--data-dir", DATA, "--run-dir", run_dir, "--no-download")
    assert out.returncode == 0, out.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and metrics["accuracy"] >= 0.63  # ~66 %, seeded; margin for bf16
    # evaluating the saved run again applies the same test-time augmentation (flip) and agrees
    again = cli("evaluate", run_dir, "--data-dir", DATA, "--no-download", "--json")
    assert json.loads(again.stdout)["correct"] == metrics["correct"]


def test_our_decode_of_the_original_files_is_torchvisions_cifar10():
    """What the tutorial's code trains and tests on (torchvision.datasets.CIFAR10, md5s checked) is what we load,
    pixel for pixel and label for label, in the same order: with tests/test_tutorial_checkpoint.py (its
    checkpoints score here what its code printed), the tutorial's figures carry over to the real files.
    benchmarks/tutorial_vs_seed.py runs the tutorial's code itself on them."""
    import torchvision

    from core.data import DataConfig, load_dataset

    ours = load_dataset(DataConfig(data_dir=str(DATA), download=False))
    for split, train in ((ours.train, True), (ours.test, False)):
        theirs = torchvision.datasets.CIFAR10(str(DATA), train=train, download=False)
        assert torch.equal(split.images, torch.from_numpy(theirs.data).permute(0, 3, 1, 2))
        assert split.labels.tolist() == theirs.targets
    assert list(ours.classes) == theirs.classes


@pytest.mark.skipif(JPEG is None, reason="the JPEG copy is not extracted in ./data/cifar10-jpeg")
def test_the_jpeg_folder_tree_is_the_same_images_compressed(tmp_path):
    """The class-per-folder path on the real tree: same classes, counts and order as the original, pixels
    within JPEG's error, and the shipped model within a few points of its accuracy on the original. Decoding
    all 60,000 files costs a minute and proves nothing more, so the loader reads a tree of links to the first
    files of each class (their real names, so the order is the tree's own)."""
    from core.checkpoints import load_model
    from core.data import IMAGE_SUFFIXES, DataConfig, first_indices, first_of_each_class, load_dataset
    from core.evaluate import evaluate
    from core.evaluations import remembered_evaluate

    original = load_dataset(DataConfig(data_dir=str(DATA), download=False))
    classes = sorted(p.name for p in (JPEG / "train").iterdir() if p.is_dir())
    assert tuple(classes) == original.classes
    per_class = {"train": 50, "test": 200}
    for split, n in per_class.items():
        listed = [sorted(f for f in (JPEG / split / c).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
                  for c in classes]
        assert [len(files) for files in listed] == getattr(original, split).class_counts(10)
        for name, files in zip(classes, listed):
            (tmp_path / split / name).mkdir(parents=True)
            for f in files[:n]:
                (tmp_path / split / name / f.name).symlink_to(f)
    jpeg = load_dataset(DataConfig(data_dir=str(tmp_path), download=False))
    assert jpeg.kind == "folder" and jpeg.classes == original.classes
    for split, n in per_class.items():
        a, b = first_of_each_class(getattr(original, split), n), getattr(jpeg, split)
        assert torch.equal(a.labels, b.labels)
        assert (a.images.float() - b.images.float()).abs().mean() < 8  # JPEG q75, 4:2:0 chroma: a few levels of 255
    loaded = load_model(ROOT / "models" / "default.pth")
    # the original's side from the evaluation that ships with the model (the same logits as evaluating afresh)
    full = remembered_evaluate(loaded.model, original.test, loaded.normalizer(), num_classes=10, tta=loaded.tta,
                               save_to=None).result
    kept = first_indices(original.test.labels, per_class["test"])
    on_original = (full.predictions[kept] == original.test.labels[kept]).float().mean().item()
    on_jpeg = evaluate(loaded.model, jpeg.test, loaded.normalizer(), tta=loaded.tta).accuracy
    assert on_original - 0.10 < on_jpeg <= on_original + 0.02


def test_the_data_page_and_overview_name_the_original_files(monkeypatch, tmp_path):
    monkeypatch.setenv("CIFAR_DATA", str(DATA))
    monkeypatch.setenv("CIFAR_RUNS", str(tmp_path / "runs"))
    overview = open_app()
    assert overview.metric[0].value == "60,000 images"
    assert "CIFAR-10, original files" in [c.value for c in overview.caption]
    data = open_app("dashboard/data_page.py")
    assert any(m.value.startswith("**Source: CIFAR-10, original files**") for m in data.markdown)


def test_the_shipped_models_evaluation_ships_with_it_and_is_its_own(monkeypatch):
    """models/evaluations/ holds the shipped model's test-set logits: found by content, equal to the card's
    accuracy, and (on a slice that costs a second) to what the model computes now; and the features of the training
    images a photo's neighbours are found among, which are this model's too."""
    from core import similarity
    from core.checkpoints import load_model
    from core.data import DataConfig, load_dataset
    from core.evaluate import tta_logits
    from core.evaluations import SHIPPED, remembered_evaluate

    loaded = load_model(ROOT / "models" / "default.pth")
    dataset = load_dataset(DataConfig(data_dir=str(DATA), download=False))
    test = dataset.test
    computed = similarity.penultimate
    monkeypatch.setattr(similarity, "penultimate", lambda *a, **k: pytest.fail("the shipped bank was not found"))
    index, bank, note = similarity.neighbour_bank(loaded.model, dataset.train, loaded.normalizer(), folders=(SHIPPED,))
    assert note == ""
    assert len(index) == len(bank) == similarity.BANK_IMAGES
    now = computed(loaded.model, dataset.train.images[index[:200]], loaded.normalizer())
    assert torch.allclose(now, bank[:200], atol=1e-2, rtol=1e-2)  # half precision, as remembered
    found = remembered_evaluate(loaded.model, test, loaded.normalizer(), num_classes=10, tta=loaded.tta,
                                save_to=None)
    assert found.source == "remembered" and found.path.parent == SHIPPED and not found.note
    assert found.result.accuracy == loaded.card["test_accuracy"]
    with torch.inference_mode():
        now = tta_logits(loaded.model, loaded.normalizer()(test.images[:500]), loaded.tta)
    assert torch.allclose(now, found.result.logits[:500], atol=1e-3)
