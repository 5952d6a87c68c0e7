"""Remembered evaluations (core/evaluations.py): equal to evaluating afresh, never stale, never trusted blindly."""
import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT

from core.data import DataConfig, Split, load_dataset
from core.evaluate import evaluate
from core.evaluations import FOLDER, SHIPPED, folder_for, key, remembered_evaluate
from core.models import Net
from core.transforms import normalizer

NORMALIZE = normalizer(DataConfig(), "cpu")


@pytest.fixture
def split():
    g = torch.Generator().manual_seed(0)
    return Split(torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8, generator=g),
                 torch.randint(0, 10, (40,), generator=g))


@pytest.fixture
def model():
    torch.manual_seed(0)
    return Net().eval()


def remembered(model, split, folder, tta="flip"):
    return remembered_evaluate(model, split, NORMALIZE, num_classes=10, tta=tta, save_to=folder, shipped=())


def assert_equal_results(a, b):
    assert (a.correct, a.total) == (b.correct, b.total)
    assert torch.equal(a.confusion, b.confusion) and torch.equal(a.predictions, b.predictions)
    assert torch.equal(a.probabilities, b.probabilities) and torch.equal(a.logits, b.logits)


def test_a_remembered_evaluation_equals_a_fresh_one(model, split, tmp_path):
    first = remembered(model, split, tmp_path)
    assert first.source == "computed" and first.path.is_file() and not first.note
    second = remembered(model, split, tmp_path)
    assert second.source == "remembered" and second.path == first.path
    assert_equal_results(second.result, evaluate(model, split, NORMALIZE, num_classes=10, tta="flip"))
    assert first.path.stat().st_size < 40 * 10 * 4 + 2000  # the logits and a few fields


def test_another_model_data_or_view_never_finds_the_file(model, split, tmp_path):
    remembered(model, split, tmp_path)
    changed = Net().eval()
    changed.load_state_dict(model.state_dict())
    with torch.no_grad():
        changed.fc3.bias[0] += 1e-3
    images = split.images.clone()
    images[0, 0, 0, 0] ^= 1
    for other in (remembered(changed, split, tmp_path), remembered(model, Split(images, split.labels), tmp_path),
                  remembered(model, split, tmp_path, tta="none")):
        assert other.source == "computed"
    assert len(list(tmp_path.glob("*.pt"))) == 4
    # the same weights in another layout (as loaded models are: channels-last) or another object: the same key
    same = Net().eval()
    same.load_state_dict(model.state_dict())
    same = same.to(memory_format=torch.channels_last)
    assert key(same, split, NORMALIZE, "flip", 10) == key(model, split, NORMALIZE, "flip", 10)


class Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign", "shape", "nan", "pickle"])
def test_a_damaged_or_foreign_file_is_evaluated_again_with_a_note(damage, model, split, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = remembered(model, split, tmp_path).path
    blob = torch.load(path, weights_only=True)
    if damage == "garbage":
        path.write_bytes(b"not a torch file")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "foreign":
        torch.save({**blob, "key": "0" * 32}, path)
    elif damage == "shape":
        torch.save({**blob, "logits": blob["logits"][:5]}, path)
    elif damage == "nan":
        torch.save({**blob, "logits": blob["logits"] * float("nan")}, path)
    else:
        torch.save({**blob, "logits": Evil()}, path)
    again = remembered(model, split, tmp_path)
    assert again.source == "computed" and str(path) in again.note and "evaluated again" in again.note
    assert not (tmp_path / "pwned").exists()
    assert_equal_results(again.result, evaluate(model, split, NORMALIZE, num_classes=10, tta="flip"))
    assert remembered(model, split, tmp_path).source == "remembered"  # the bad file was replaced


def test_a_folder_that_cannot_be_written_only_costs_the_remembering(model, split, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the folder would be")
    result = remembered(model, split, blocked / "evaluations")
    assert result.source == "computed" and result.path is None and result.result.total == 40


def test_the_cli_remembers_beside_the_data_and_fresh_skips_it(tiny_tree, tmp_path):
    run_dir = tmp_path / "model.pth"
    torch.save(Net(num_classes=3).state_dict(), run_dir)  # a bare state_dict, as the tutorial saves it
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def cli(*args):
        out = subprocess.run([sys.executable, "-m", "core", *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        return out

    folder = folder_for(load_dataset(DataConfig(data_dir=str(tiny_tree), download=False)))
    assert folder == tiny_tree / ".cache" / FOLDER
    before = set(folder.glob("*.pt")) if folder.exists() else set()
    fresh = cli("evaluate", run_dir, "--data-dir", tiny_tree, "--no-download", "--json", "--fresh")
    assert (set(folder.glob("*.pt")) if folder.exists() else set()) == before
    first = cli("evaluate", run_dir, "--data-dir", tiny_tree, "--no-download", "--json")
    files = set(folder.glob("*.pt")) - before
    assert len(files) == 1
    second = cli("evaluate", run_dir, "--data-dir", tiny_tree, "--no-download", "--json")
    assert json.loads(fresh.stdout) == json.loads(first.stdout) == json.loads(second.stdout)
    files.pop().write_bytes(b"damaged")
    third = cli("evaluate", run_dir, "--data-dir", tiny_tree, "--no-download", "--json")
    assert json.loads(third.stdout) == json.loads(first.stdout) and "note: The remembered evaluation" in third.stderr


def test_the_shipped_folder_is_read_first_and_never_written(model, split, tmp_path):
    shipped, cache = tmp_path / "shipped", tmp_path / "cache"
    remembered(model, split, shipped)
    found = remembered_evaluate(model, split, NORMALIZE, num_classes=10, tta="flip", save_to=cache, shipped=(shipped,))
    assert found.source == "remembered" and found.path.parent == shipped and not cache.exists()
    assert SHIPPED == ROOT / "models" / FOLDER
