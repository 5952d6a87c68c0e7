"""A model leaving this tool: one file that another program loads with its own runtime, no code of ours needed.

The exported module takes a float32 batch [N, 3, 32, 32] of RGB values in 0–1 (a picture's pixels / 255, at 32×32)
and returns the logits [N, classes]: the input normalisation is inside it. The file records the classes, the model's
fitted temperature (softmax(logits / T) are its calibrated probabilities) and the views it is served with here
(the export is a single view: without flip averaging its answers can differ from Classify's on a few images).

    TorchScript  torch.jit.load(path, _extra_files={"cifar10lab.json": ""}): the metadata in that entry
    ONNX         onnxruntime.InferenceSession(path): input "images", output "logits"; the metadata in the
                 model's metadata_props (session.get_modelmeta().custom_metadata_map["cifar10lab"])
"""
from __future__ import annotations

import importlib.util
import io
import json
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from core.data import DataConfig
from core.files import atomic_write
from core.views import private_view

FORMATS = ("torchscript", "onnx")
SUFFIXES = {"torchscript": ".pt", "onnx": ".onnx"}
ONNX_META = "cifar10lab"  # the ONNX metadata key holding the metadata's JSON
META = f"{ONNX_META}.json"  # the TorchScript entry holding it
INPUT, OUTPUT = "images", "logits"


class ExportError(ValueError):
    """An export that cannot be made or a file that is not one of ours; the message says what to do."""


class Standalone(nn.Module):
    """The network with its input normalisation: float [N,3,32,32] in 0–1 -> logits."""

    def __init__(self, model: nn.Module, data: DataConfig = DataConfig()):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(data.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(data.std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model((images - self.mean) / self.std)


def metadata(loaded) -> dict:
    return {"classes": list(loaded.classes), "model": loaded.name, "input": "float32 [N, 3, 32, 32], RGB in 0-1",
            "output": "logits [N, classes]", "temperature": float(loaded.temperature), "served_views": loaded.tta}


def standalone(loaded) -> Standalone:
    """The loaded model (shared by the dashboard's sessions) on a private view, so nothing is set on it."""
    return Standalone(private_view(loaded.model)).eval()


@contextmanager
def _no_deprecation():
    """torch 2.14 calls TorchScript deprecated (a FutureWarning on trace, save and load); it is still what
    LibTorch's C++ and Java runtimes load."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _example() -> torch.Tensor:
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def torchscript_bytes(loaded) -> bytes:
    buffer = io.BytesIO()
    with _no_deprecation():
        traced = torch.jit.trace(standalone(loaded), _example())
        torch.jit.save(traced, buffer, _extra_files={META: json.dumps(metadata(loaded))})
    return buffer.getvalue()


def missing(fmt: str) -> str | None:
    """Why `fmt` cannot be exported on this installation (a package it needs is absent), or None."""
    needs = {"torchscript": (), "onnx": ("onnx", "onnxscript", "onnxruntime")}[fmt]
    absent = [name for name in needs if importlib.util.find_spec(name) is None]
    return (f"{fmt} export needs the {' and '.join(absent)} package{'s' if len(absent) > 1 else ''}: "
            "pip install -r requirements.txt (or export as torchscript)") if absent else None


def onnx_bytes(loaded) -> bytes:
    why = missing("onnx")
    if why:
        raise ExportError(why)
    import onnx
    batch = torch.export.Dim("batch", min=1, max=65536)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(standalone(loaded), (_example(),), dynamo=True, input_names=[INPUT],
                                    output_names=[OUTPUT], dynamic_shapes={"images": {0: batch}}, verbose=False)
    proto = program.model_proto
    onnx.helper.set_model_props(proto, {ONNX_META: json.dumps(metadata(loaded))})
    return proto.SerializeToString()


def export_bytes(loaded, fmt: str) -> bytes:
    """The exported file's bytes (for a download), in `fmt` (one of FORMATS)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return torchscript_bytes(loaded) if fmt == "torchscript" else onnx_bytes(loaded)


def export(loaded, fmt: str, path: str | Path) -> Path:
    """Write the export to `path`, whole or not at all."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ExportError(f"cannot write {path}: the folder {path.parent} does not exist")
    data = export_bytes(loaded, fmt)
    atomic_write(path, lambda f: f.write(data))
    return path


def load_exported(path: str | Path):
    """(run, metadata) for an exported file, by its own runtime: run(float32 [N,3,32,32] array in 0-1) -> logits
    as a numpy array. How a program that has never seen this project uses it (and how the tests check it)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    if path.suffix == ".onnx":
        import onnxruntime

        try:
            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own exception classes (InvalidProtobuf, Fail, …)
            raise ExportError(f"{path} is not an ONNX model ({str(exc).splitlines()[0][:200]})") from None
        meta = json.loads(session.get_modelmeta().custom_metadata_map.get(ONNX_META, "{}"))
        return (lambda images: session.run([OUTPUT], {INPUT: np.asarray(images, dtype=np.float32)})[0]), meta
    extra = {META: ""}
    try:
        with _no_deprecation():
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except RuntimeError as exc:
        raise ExportError(f"{path} is not a TorchScript export ({str(exc).splitlines()[0]})") from None

    def run(images) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.as_tensor(np.asarray(images, dtype=np.float32))).numpy()

    return run, json.loads(extra[META] or "{}")


def check_export(loaded, path: str | Path, images: torch.Tensor | None = None) -> float:
    """The largest difference between the exported file's logits, by its own runtime, and the model's own on
    `images` (float [N,3,32,32] in 0-1; default: 64 random ones); ExportError when the file gives other answers."""
    images = torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(1)) if images is None else images
    run, _ = load_exported(path)
    with torch.inference_mode():
        expected = standalone(loaded)(images).float().numpy()
    exported = run(images.numpy())
    if exported.shape != expected.shape:
        raise ExportError(f"{path} answers with shape {exported.shape}, the model with {expected.shape}")
    difference = float(np.abs(exported - expected).max())
    if not difference < 1e-3 * max(1.0, float(np.abs(expected).max())):
        raise ExportError(f"{path} gives other logits than the model (by up to {difference:.3g}); please report this")
    return difference
