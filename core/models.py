"""Models by name. `Net` is the tutorial's, layer for layer, so state_dicts move both ways."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    """The tutorial's network. `width` is its exercise (conv1 out = conv2 in); default 6."""

    def __init__(self, width: int = 6, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(width, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)  # flatten all dimensions except batch
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the problem."""


@dataclass(frozen=True)
class ModelSpec:
    build: Callable[..., nn.Module]  # (width, num_classes) -> module
    description: str
    # Reads (width, num_classes) back from a state_dict, for files that carry no config.
    infer: Callable[[dict], tuple[int, int]]
    cam_layer: str | None = None  # the last convolution, for Grad-CAM saliency


def _infer_net(state: dict) -> tuple[int, int]:
    return state["conv1.weight"].shape[0], state["fc3.weight"].shape[0]


MODELS: dict[str, ModelSpec] = {
    "net": ModelSpec(Net, "The tutorial's CNN: conv 3→w→16, fc 120→84→classes (w = width, 6 in the tutorial)",
                     _infer_net, cam_layer="conv2"),
}


def build_model(name: str, width: int, num_classes: int) -> nn.Module:
    if name not in MODELS:
        raise CheckpointError(f"Unknown model {name!r}; choose one of {sorted(MODELS)}.")
    return MODELS[name].build(width=width, num_classes=num_classes)


def load_state_dict(path, name: str | None = None) -> dict:
    """A plain tensor state_dict from `path` (or a file object), with unrestricted pickle refused (weights_only)."""
    path_name = name or str(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path_name} does not exist.") from None
    except Exception as exc:  # UnpicklingError for code-carrying pickles, RuntimeError for junk
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path_name} is not a plain PyTorch weights file and was not loaded "
                              f"(only tensors are accepted): {reason}") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # a checkpoint.pth: take its weights
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path_name} holds no state_dict (a dict of tensors).")
    return state


def model_from_state_dict(state: dict, name: str | None = None, num_classes: int | None = None) -> tuple[nn.Module, str]:
    """Build the registered model whose shapes match `state` and load it; (model, name).

    `name` and `num_classes`, when given, must match; a mismatch is named in the error.
    """
    names = [name] if name else list(MODELS)
    problems = []
    for candidate in names:
        spec = MODELS.get(candidate)
        if spec is None:
            raise CheckpointError(f"Unknown model {candidate!r}; choose one of {sorted(MODELS)}.")
        try:
            width, classes = spec.infer(state)
        except (KeyError, IndexError, AttributeError):
            problems.append(f"not a {candidate!r} checkpoint (its layers are named differently)")
            continue
        if num_classes is not None and classes != num_classes:
            raise CheckpointError(f"The checkpoint predicts {classes} classes but the data has {num_classes}; "
                                  "pick a model trained on this dataset.")
        model = spec.build(width=width, num_classes=classes)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            problems.append(f"does not fit {candidate!r}: {str(exc).splitlines()[0]}")
            continue
        return model, candidate
    raise CheckpointError("The checkpoint matches no known architecture: " + "; ".join(problems))
