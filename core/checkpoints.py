"""Finding a model and its class names from a run directory or a .pth file."""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from core.data import CIFAR10_CLASSES, DataConfig, normalizer
from core.evaluate import TTA
from core.models import MODELS, load_state_dict, model_from_state_dict


@dataclass
class LoadedModel:
    model: nn.Module
    name: str  # registry name
    classes: list[str]
    path: Path
    tta: str = "none"  # the test-time augmentation it was trained to be evaluated with
    card: dict = field(default_factory=dict)  # the model card beside the file (test_accuracy, date, ...), if any

    @property
    def cam_layer(self) -> str | None:
        return MODELS[self.name].cam_layer

    def normalizer(self, device: torch.device | str = "cpu"):
        """The input normalisation the model was trained with (the tutorial's; DataConfig's)."""
        return normalizer(DataConfig(), device)


def _metadata(path: Path) -> dict:
    """classes/model from a run's config.json beside model.pth, or a model card <stem>.json (whose
    whole text is kept as `card`). A missing, malformed or odd file counts as absent."""
    for candidate in (path.parent / "config.json", path.with_suffix(".json")):
        try:
            data = json.loads(candidate.read_text())
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            continue
        if not isinstance(data, dict):
            continue
        train = data.get("train") if isinstance(data.get("train"), dict) else {}
        card = data if candidate.name != "config.json" else {}
        return {"classes": data.get("classes"), "model": train.get("model") or data.get("model"),
                "tta": train.get("tta") or data.get("tta"), "card": card}
    return {}


def load_model(target: str | Path | bytes, num_classes: int | None = None, name: str = "the upload") -> LoadedModel:
    """A run directory, a weights file or an uploaded file's bytes -> the model, on the CPU, in eval mode.

    Bare state_dicts (the tutorial's cifar_net.pth) get CIFAR-10's class names when they have
    ten outputs. Mismatches and unsafe files raise CheckpointError naming the problem.
    """
    if isinstance(target, bytes):
        path, meta = Path(name), {}
        state = load_state_dict(io.BytesIO(target), name=name)
    else:
        path = Path(target)
        if path.is_dir():
            path = path / "model.pth"
        meta = _metadata(path)
        state = load_state_dict(path)
    model, name = model_from_state_dict(state, name=meta.get("model"), num_classes=num_classes)
    outputs = MODELS[name].infer(state)[1]
    classes = meta.get("classes")
    if not classes or len(classes) != outputs:
        classes = list(CIFAR10_CLASSES) if outputs == len(CIFAR10_CLASSES) else [f"class {i}" for i in range(outputs)]
    tta = meta.get("tta") if meta.get("tta") in TTA else "none"
    # channels-last weights make every convolution run NHWC whatever the input's layout: the same
    # predictions, twice as fast for fastnet on a CPU (BENCHMARKS.md, evaluation)
    model = model.to(memory_format=torch.channels_last).eval()
    return LoadedModel(model, name, list(classes), path, tta, meta.get("card") or {})
