"""A model leaving the tool (core/export.py): the exported file, loaded by its own runtime (TorchScript's,
onnxruntime), answers as the model does, for the tutorial's Net and the shipped fastnet; bad requests say why."""
import json

import numpy as np
import pytest
import torch
from conftest import ROOT, real_cifar_dir

from core.checkpoints import load_model
from core.cli import main
from core.data import DataConfig, Split, load_dataset
from core.evaluate import evaluate
from core.export import ExportError, check_export, export, export_bytes, load_exported
from core.models import Net

DATA = real_cifar_dir()
needs_cifar = pytest.mark.skipif(DATA is None, reason="the original CIFAR-10 is not extracted in ./data")


@pytest.fixture(scope="module")
def test_images() -> Split:
    """500 of CIFAR-10's test images (uint8) and their labels."""
    test = load_dataset(DataConfig(data_dir=str(DATA), download=False)).test
    return Split(test.images[:500], test.labels[:500])


@pytest.fixture
def tutorial_net(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "cifar_net.pth"
    torch.save(Net().state_dict(), path)  # the tutorial's own file: a bare state_dict
    return load_model(path)


def same_answers(loaded, path, split: Split):
    """The exported file's predictions on `split` are evaluate()'s (one view, as the export serves)."""
    run, meta = load_exported(path)
    exported = run((split.images.float() / 255).numpy())
    expected = evaluate(loaded.model, split, loaded.normalizer(), tta="none")
    np.testing.assert_allclose(exported, expected.logits.numpy(), atol=1e-4, rtol=1e-4)
    assert (exported.argmax(1) == expected.predictions.numpy()).all()
    assert meta["classes"] == loaded.classes and meta["temperature"] == loaded.temperature
    return run


@needs_cifar
@pytest.mark.parametrize("fmt, suffix", [("torchscript", ".pt"), ("onnx", ".onnx")])
def test_the_tutorials_net_round_trips(tutorial_net, test_images, tmp_path, fmt, suffix):
    same_answers(tutorial_net, export(tutorial_net, fmt, tmp_path / f"net{suffix}"), test_images)


@needs_cifar
@pytest.mark.parametrize("fmt, suffix", [("torchscript", ".pt"), ("onnx", ".onnx")])
def test_the_shipped_fastnet_round_trips_and_takes_any_batch(test_images, tmp_path, fmt, suffix):
    loaded = load_model(ROOT / "models" / "default.pth")
    assert loaded.name == "fastnet"
    run = same_answers(loaded, export(loaded, fmt, tmp_path / f"default{suffix}"), test_images)
    for n in (1, 7):  # the batch dimension is free (ONNX: a dynamic axis), not the traced example's 2
        assert run(np.random.rand(n, 3, 32, 32).astype(np.float32)).shape == (n, 10)
    assert not loaded.model.training  # the shared loaded model is left as it was


def test_bad_requests_say_what_to_do(tutorial_net, tmp_path):
    with pytest.raises(ExportError, match="unknown format 'tflite'; choose one of torchscript, onnx"):
        export_bytes(tutorial_net, "tflite")
    with pytest.raises(ExportError, match="the folder .*missing does not exist"):
        export(tutorial_net, "torchscript", tmp_path / "missing" / "net.pt")
    for name in ("notes.pt", "notes.onnx"):
        (tmp_path / name).write_text("not a model")
        with pytest.raises(ExportError, match=f"{name} is not an? (TorchScript export|ONNX model)"):
            load_exported(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        load_exported(tmp_path / "absent.pt")


def test_a_failed_export_writes_nothing(tutorial_net, tmp_path, monkeypatch):
    path = tmp_path / "net.pt"
    export(tutorial_net, "torchscript", path)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("the exporter broke")

    monkeypatch.setattr(torch.jit, "trace", broken)
    with pytest.raises(RuntimeError):
        export(tutorial_net, "torchscript", path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["cifar_net.pth", "net.pt"]


def test_check_export_catches_a_file_that_answers_otherwise(tutorial_net, tmp_path):
    path = export(tutorial_net, "torchscript", tmp_path / "net.pt")
    assert check_export(tutorial_net, path) < 1e-5
    other = load_model(tmp_path / "cifar_net.pth")
    with torch.no_grad():
        other.model.fc3.bias += 1.0
    with pytest.raises(ExportError, match="gives other logits than the model"):
        check_export(other, path)


def test_cli_export(tutorial_net, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "cifar_net.pth"]) == 0  # torchscript, named after the model
    said = capsys.readouterr().out
    assert said.startswith("wrote cifar_net.pt (") and "logits over 10 classes (airplane," in said
    assert main(["export", "cifar_net.pth", "-o", "net.onnx"]) == 0  # the suffix chooses the format
    _, meta = load_exported(tmp_path / "net.onnx")
    assert meta["model"] == "net" and json.loads(json.dumps(meta)) == meta
    assert main(["export", "cifar_net.pth", "-o", "net.onnx", "--format", "torchscript"]) == 1
    assert "a torchscript export is a .pt file" in capsys.readouterr().err
    assert main(["export", "absent.pth"]) == 1
    assert "absent.pth does not exist" in capsys.readouterr().err
