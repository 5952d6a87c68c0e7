"""What if: a picture changed on purpose, to see what the network's answer rests on.

`edited` applies the changes a person can see (a grey square over part of it, brightness, contrast, blur,
rotation); `adversarial` the change a person cannot see: noise of at most `epsilon`/255 a pixel, chosen by the
gradient to push the answer toward the most likely wrong class (FGSM: one step, Goodfellow et al. 2015; PGD: several
projected steps, Madry et al. 2018). Both take and give [3,32,32] uint8 pictures, so what is classified afterwards
is an ordinary image. Gradients run on a private view of the model (core.views): shared models are never changed.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

from core.evaluate import tta_logits
from core.views import private_view

GREY = 128


@dataclass(frozen=True)
class Edit:
    occlude_x: int = 16  # the grey square's centre, in the 32×32 picture's pixels
    occlude_y: int = 16
    occlude_size: int = 0  # its side in pixels; 0: no square
    brightness: float = 1.0  # a factor: 1 as it is, 0 black
    contrast: float = 1.0  # a factor: 1 as it is, 0 flat grey
    blur: float = 0.0  # Gaussian sigma in pixels; 0: sharp
    rotation: float = 0.0  # degrees, anticlockwise; the uncovered corners grey

    @property
    def is_identity(self) -> bool:
        return self == Edit()


def edited(image: torch.Tensor, edit: Edit) -> torch.Tensor:
    """`image` ([3,H,W] uint8) with `edit` applied: rotation, blur, brightness and contrast, then the square."""
    out = image
    if edit.rotation or edit.blur > 0 or edit.brightness != 1 or edit.contrast != 1:
        out = _adjusted(out, edit)
    if edit.occlude_size > 0:
        out = out.clone()
        half = edit.occlude_size / 2
        top, left = max(0, round(edit.occlude_y - half)), max(0, round(edit.occlude_x - half))
        out[:, top:top + edit.occlude_size, left:left + edit.occlude_size] = GREY
    return out


def _adjusted(image: torch.Tensor, edit: Edit) -> torch.Tensor:
    out = image
    if edit.rotation:
        out = TF.rotate(out, edit.rotation, interpolation=TF.InterpolationMode.BILINEAR, fill=[GREY] * 3)
    if edit.blur > 0:
        size = 2 * max(1, round(3 * edit.blur)) + 1
        out = TF.gaussian_blur(out, [size, size], [edit.blur, edit.blur])
    if edit.brightness != 1:
        out = TF.adjust_brightness(out, edit.brightness)
    if edit.contrast != 1:
        out = TF.adjust_contrast(out, edit.contrast)
    return out


def adversarial(model, image: torch.Tensor, normalize, epsilon: float, steps: int = 1, tta: str = "none",
                target: int | None = None) -> tuple[torch.Tensor, int]:
    """(`image` pushed toward `target`, the target): at most `epsilon`/255 added to or taken from each pixel value,
    `steps` gradient-sign steps (1: FGSM; more: PGD, each step 2.5·ε/steps, projected back into the ε-box). The
    target defaults to the runner-up class of the model's answer on `image` (with its test-time views `tta`)."""
    view = private_view(model)
    original = image.float().unsqueeze(0) / 255
    with torch.no_grad():
        logits = tta_logits(view, normalize(original * 255), tta)
    if target is None:
        target = int(logits[0].topk(2).indices[1])
    budget, x = epsilon / 255, original.clone()
    step = budget if steps == 1 else 2.5 * budget / steps
    labels = torch.tensor([target])
    for _ in range(steps if epsilon > 0 else 0):
        x.requires_grad_(True)
        with torch.enable_grad():
            loss = F.cross_entropy(tta_logits(view, normalize(x * 255), tta), labels)
            grad, = torch.autograd.grad(loss, x)
        # down the target's loss, then back into the box around the picture and the valid range
        x = torch.min(torch.max(x.detach() - step * grad.sign(), original - budget), original + budget).clamp(0, 1)
    return (x[0] * 255).round().to(torch.uint8), target


def amplified_difference(image: torch.Tensor, changed: torch.Tensor, gain: float | None = None) -> torch.Tensor:
    """The change between two uint8 pictures, mid-grey where none, scaled up so that the largest change reaches
    the full range (or by `gain`): noise too faint to see, made visible."""
    difference = changed.float() - image.float()
    gain = gain or 127 / max(float(difference.abs().max()), 1.0)
    return (GREY + difference * gain).clamp(0, 255).round().to(torch.uint8)
