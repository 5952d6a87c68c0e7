"""The network's anatomy: what each layer is, what it outputs and costs, its first filters, its feature maps.

Read from the model itself (forward hooks on a private view of it, core.views, for one input), so it is right for
any registered model, including the ones a user trains at another width.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn

from core.views import captured_outputs, private_view


@dataclass(frozen=True)
class Layer:
    name: str  # its attribute path in the model, e.g. "layer2.conv1"
    kind: str  # the module's class, e.g. "Conv2d"
    output_shape: tuple[int, ...]  # for one image, without the batch dimension
    parameters: int  # its own (learned or frozen) weights and biases
    mult_adds: int  # multiply-accumulates for one image (convolutions and linear layers; 0 for the rest)


def _mult_adds(module: nn.Module, output: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        return output[0].numel() * per_output
    if isinstance(module, nn.Linear):
        return output[0].numel() * module.in_features
    return 0


@torch.no_grad()
def layers(model: nn.Module, input_shape: tuple[int, int, int] = (3, 32, 32)) -> list[Layer]:
    """Every leaf module in the order the forward pass reaches it, for one input of `input_shape`."""
    found: list[Layer] = []

    def record(name: str) -> Callable:
        def hook(module, inputs, output):
            found.append(Layer(name, type(module).__name__, tuple(output.shape[1:]),
                               sum(p.numel() for p in module.parameters(recurse=False)), _mult_adds(module, output)))
        return hook
    view = private_view(model)
    for name, module in view.named_modules():
        if name and not list(module.children()):
            module.register_forward_hook(record(name))
    parameter = next(model.parameters(), None)
    view(torch.zeros(1, *input_shape, device=parameter.device if parameter is not None else "cpu"))
    return found


def convolutions(model: nn.Module) -> list[str]:
    """The names of the model's Conv2d layers, first to last."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def first_filters(model: nn.Module) -> torch.Tensor:
    """The first convolution that sees the RGB image, its filters as [out, 3, k, k] uint8 pictures, each stretched
    to the full 0–255 range (what the layer looks for, as colour patterns)."""
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d) and m.in_channels == 3), None)
    if conv is None:
        raise ValueError("the model has no convolution on the RGB image")
    weights = conv.weight.detach().float().cpu()
    low = weights.amin((1, 2, 3), keepdim=True)
    span = (weights.amax((1, 2, 3), keepdim=True) - low).clamp(min=1e-12)
    return ((weights - low) / span * 255).round().to(torch.uint8)


@torch.no_grad()
def feature_maps(model: nn.Module, image: torch.Tensor, normalize: Callable, layer: str) -> torch.Tensor:
    """`layer`'s output for one [3,32,32] uint8 image, as [C,H,W] uint8: each channel stretched to 0–255 on its own
    (bright = strongly active)."""
    view, outputs = captured_outputs(model, [layer])
    view(normalize(image.unsqueeze(0)))
    maps = outputs[layer][0].float().cpu()
    low = maps.amin((1, 2), keepdim=True)
    span = (maps.amax((1, 2), keepdim=True) - low).clamp(min=1e-12)
    return ((maps - low) / span * 255).round().to(torch.uint8)
