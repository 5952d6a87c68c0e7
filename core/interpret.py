"""What a model learned, as numbers: confusions, top losses, single-image predictions, saliency.

Pure functions over an EvalResult or a model; the Evaluate and Classify pages only draw them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from core import ood
from core.evaluate import EvalResult, tta_logits
from core.views import captured_outputs, private_view


def row_normalised(confusion: torch.Tensor) -> torch.Tensor:
    """Each true class's row as fractions of its images (rows with no images stay zero)."""
    totals = confusion.sum(1, keepdim=True).clamp(min=1)
    return confusion.double() / totals


def most_confused(confusion: torch.Tensor, classes, k: int = 10, min_count: int = 1) -> list[dict]:
    """The k largest off-diagonal cells: (actual, predicted, count, share of the actual class)."""
    shares = row_normalised(confusion)
    cells = [(int(confusion[i, j]), i, j) for i in range(len(classes)) for j in range(len(classes))
             if i != j and confusion[i, j] >= min_count]
    cells.sort(key=lambda c: (-c[0], c[1], c[2]))
    return [{"actual": classes[i], "predicted": classes[j], "count": n, "share": float(shares[i, j])}
            for n, i, j in cells[:k]]


def losses(result: EvalResult, labels: torch.Tensor) -> torch.Tensor:
    """Per-image cross-entropy from the stored probabilities."""
    p = result.probabilities[torch.arange(len(labels)), labels.cpu()].clamp(min=1e-12)
    return -p.log()


def top_losses(result: EvalResult, labels: torch.Tensor, k: int = 16) -> list[dict]:
    """The most confident mistakes first (fastai's plot_top_losses): index, label, prediction, loss, probabilities."""
    labels = labels.cpu()
    per_image = losses(result, labels)
    order = per_image.argsort(descending=True)[:k]
    return [{"index": int(i), "label": int(labels[i]), "predicted": int(result.predictions[i]),
             "loss": float(per_image[i]), "confidence": float(result.probabilities[i, result.predictions[i]]),
             "p_label": float(result.probabilities[i, labels[i]])} for i in order]


@dataclass(frozen=True)
class Prediction:
    probabilities: list[float]  # per class, summing to 1
    top: int  # index of the most likely class
    familiarity: float  # core.ood's score: higher = more like the training images
    answer: str | None = None  # core.ood.answer: one of the classes, not sure, none of them; None: no threshold

    @property
    def unfamiliar(self) -> bool | None:
        """Below the model's threshold: "none of the ten"; None: the model has no threshold."""
        return None if self.answer is None else self.answer == ood.UNFAMILIAR


@torch.inference_mode()
def predict(model: nn.Module, images: torch.Tensor, normalize: Callable, tta: str = "none",
            temperature: float = 1.0, threshold: float | None = None,
            unsure_below: float | None = None) -> list[Prediction]:
    """[B,3,32,32] uint8 -> one Prediction per image, averaged over the test-time views `tta`, with the
    model's fitted `temperature` applied (the same top class; honest probabilities) and, given the model's
    `threshold` (and `unsure_below`), whether the image looks like one of its classes, none, or is in between."""
    logits = tta_logits(private_view(model), normalize(images), tta).float().cpu()
    probabilities = torch.softmax(logits / temperature, 1)
    scores = ood.familiarity(logits, temperature)
    return [Prediction(p.tolist(), int(p.argmax()), float(s), ood.answer(float(s), threshold, unsure_below))
            for p, s in zip(probabilities, scores)]


def top_k(probabilities: list[float], classes: list[str], k: int = 3) -> list[tuple[str, float]]:
    """The k most probable classes with their probabilities, most probable first."""
    ranked = sorted(range(len(classes)), key=lambda i: -probabilities[i])[:k]
    return [(classes[i], probabilities[i]) for i in ranked]


def saliency(model: nn.Module, image: torch.Tensor, normalize: Callable, target: int | None = None,
             layer: str | None = "conv2") -> np.ndarray:
    """A [32,32] map in [0,1] of where the evidence for `target` (default: the top class) lies.

    Grad-CAM on `layer` (the last convolution) when the model has it; otherwise the input
    gradient's magnitude. Works on a single uint8 [3,32,32] image. The activations are captured on a private
    view of the model (core.views), so sessions sharing one loaded model never see each other's.
    """
    inputs = normalize(image.unsqueeze(0)).requires_grad_(True)
    has_layer = bool(layer) and layer in dict(model.named_modules())
    view, outputs = captured_outputs(model, [layer] if has_layer else [])
    with torch.enable_grad():
        logits = view(inputs)
        target = int(logits.argmax(1)) if target is None else target
        if has_layer:
            activation = outputs[layer]
            grads, = torch.autograd.grad(logits[0, target], activation)
            weights = grads.mean((2, 3), keepdim=True)
            cam = F.relu((weights * activation).sum(1, keepdim=True))
            heat = F.interpolate(cam, size=image.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
        else:
            grads, = torch.autograd.grad(logits[0, target], inputs)
            heat = grads[0].abs().amax(0)
    heat = heat.detach().cpu()
    span = float(heat.max() - heat.min())
    return ((heat - heat.min()) / span).numpy() if span > 0 else np.zeros(tuple(heat.shape), dtype=np.float32)


def overlay(image: torch.Tensor, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a [0,1] heat map (blue → red) over a [3,H,W] uint8 image; HxWx3 uint8 out."""
    stops = np.array([[0, 0, 128], [0, 128, 255], [0, 255, 128], [255, 255, 0], [255, 64, 0], [160, 0, 0]], float)
    pos = np.clip(heat, 0, 1) * (len(stops) - 1)
    low = np.floor(pos).astype(int).clip(0, len(stops) - 2)
    frac = (pos - low)[..., None]
    colours = stops[low] * (1 - frac) + stops[low + 1] * frac
    base = image.permute(1, 2, 0).cpu().numpy().astype(float)
    return np.clip(base * (1 - alpha) + colours * alpha, 0, 255).astype(np.uint8)
