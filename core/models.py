"""Models by name. `Net` is the tutorial's, layer for layer, so state_dicts move both ways."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
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


class WideNet(nn.Module):
    """`Net` made to learn fast on a CPU: 'same' 5×5 convolutions of width w and 2w, each pooled and then
    batch-normalised, so high learning rates are stable and a few epochs are enough. Pooling before
    BatchNorm and ReLU runs them on a quarter of the pixels (on a CPU they cost as much as the convs)."""

    def __init__(self, width: int = 16, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 5, padding=2, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, 2 * width, 5, padding=2, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * width)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1 = nn.Linear(2 * width * 8 * 8, 128)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.pool(self.conv1(x))))
        x = F.relu(self.bn2(self.pool(self.conv2(x))))
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


class ConvGroup(nn.Module):
    """conv → pool → BN → GELU → conv → BN → GELU: one stage of FastNet."""

    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, padding="same", bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = nn.BatchNorm2d(channels_out, momentum=0.4)  # quick statistics: runs last only seconds
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, padding="same", bias=False)
        self.norm2 = nn.BatchNorm2d(channels_out, momentum=0.4)
        self.activ = nn.GELU()

    def forward(self, x):
        x = self.activ(self.norm1(self.pool(self.conv1(x))))
        return self.activ(self.norm2(self.conv2(x)))


class ResidualConvGroup(ConvGroup):
    """ConvGroup with a third conv → BN and a shortcut around the last two (airbench96's stages): deeper at the
    same resolution, and still an identity path for the gradient."""

    def __init__(self, channels_in: int, channels_out: int):
        super().__init__(channels_in, channels_out)
        self.conv3 = nn.Conv2d(channels_out, channels_out, 3, padding="same", bias=False)
        self.norm3 = nn.BatchNorm2d(channels_out, momentum=0.4)

    def forward(self, x):
        x = self.activ(self.norm1(self.pool(self.conv1(x))))
        shortcut = x
        x = self.activ(self.norm2(self.conv2(x)))
        return self.activ(self.norm3(self.conv3(x)) + shortcut)


class FastNet(nn.Module):
    """The airbench recipe's shape: a frozen 2×2 patch-whitening stem computed from the training
    images (`prepare`), three conv stages of widths w, 4w, 4w, global max-pool, a linear head
    scaled down (a fixed softmax temperature). Built for GPUs at w=64; small widths run on CPUs."""

    WHITEN_CHANNELS = 24  # 12 eigenvectors of 2×2×3 patches, each with both signs

    def __init__(self, width: int = 64, num_classes: int = 10, group: type[ConvGroup] = ConvGroup):
        super().__init__()
        self.whiten = nn.Conv2d(3, self.WHITEN_CHANNELS, 2, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)  # fixed by `prepare`; only its bias learns
        self.layer1 = group(self.WHITEN_CHANNELS, width)
        self.layer2 = group(width, 4 * width)
        self.layer3 = group(4 * width, 4 * width)
        self.head = nn.Linear(4 * width, num_classes, bias=False)
        self.scale = 1 / 9

    @torch.no_grad()
    def prepare(self, images: torch.Tensor) -> None:
        """Set the stem to whiten 2×2 patches of `images` (normalised, [N,3,H,W])."""
        patches = images.float().unfold(2, 2, 1).unfold(3, 2, 1)  # N,3,H-1,W-1,2,2
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, 12)
        patches = patches - patches.mean(0)
        covariance = patches.T @ patches / len(patches)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance.double())
        filters = (eigenvectors.T / (eigenvalues.clamp_min(0) + 5e-4).sqrt()[:, None]).float().view(12, 3, 2, 2)
        self.whiten.weight.copy_(torch.cat([filters, -filters]).to(self.whiten.weight))

    def forward(self, x):
        x = F.gelu(self.whiten(x))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.adaptive_max_pool2d(x, 1).flatten(1)
        return self.head(x) * self.scale


@dataclass(frozen=True)
class ModelSpec:
    build: Callable[..., nn.Module]  # (width, num_classes) -> module
    description: str
    # Reads (width, num_classes) back from a state_dict, for files that carry no config.
    infer: Callable[[dict], tuple[int, int]]
    cam_layer: str | None = None  # the last convolution, for Grad-CAM saliency


def _infer_net(state: dict) -> tuple[int, int]:
    return state["conv1.weight"].shape[0], state["fc3.weight"].shape[0]


def _infer_widenet(state: dict) -> tuple[int, int]:
    return state["conv1.weight"].shape[0], state["fc2.weight"].shape[0]


def _infer_fastnet(state: dict) -> tuple[int, int]:
    return state["layer1.conv1.weight"].shape[0], state["head.weight"].shape[0]


MODELS: dict[str, ModelSpec] = {
    "net": ModelSpec(Net, "The tutorial's CNN: conv 3→w→16, fc 120→84→classes (w = width, 6 in the tutorial)",
                     _infer_net, cam_layer="conv2"),
    "widenet": ModelSpec(WideNet, "Net widened and batch-normalised for CPUs: 5×5 conv w→2w with BatchNorm, "
                                  "fc 128 (w = 8 in the fast preset)", _infer_widenet, cam_layer="conv2"),
    "fastnet": ModelSpec(FastNet, "airbench-style net: frozen whitening stem, 3 conv-BN-GELU stages w→4w→4w "
                                  "(w = 16 in cpu-best; 64 in the gpu preset and the shipped model)",
                         _infer_fastnet, cam_layer="layer3"),
    "fastnet-deep": ModelSpec(partial(FastNet, group=ResidualConvGroup),
                              "fastnet with three convolutions a stage and a shortcut around the last two "
                              "(airbench96's shape; w = 128 in gpu-best)", _infer_fastnet, cam_layer="layer3"),
}


def build_model(name: str, width: int, num_classes: int) -> nn.Module:
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; choose one of {sorted(MODELS)}.")
    return MODELS[name].build(width=width, num_classes=num_classes)


def prepare_model(model: nn.Module, images: torch.Tensor) -> None:
    """Data-dependent initialisation (FastNet's whitening stem) from normalised training images; a no-op
    for models without one. Runs once before training, never on resume: the result is in the weights."""
    prepare = getattr(model, "prepare", None)
    if prepare is not None:
        prepare(images)
