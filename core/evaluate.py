"""Evaluation as a pure function: a model and a split in, numbers out."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.data import TUTORIAL_NAMES, Split
from core.views import private_view


@dataclass(frozen=True)
class EvalResult:
    correct: int
    total: int
    confusion: torch.Tensor  # [C,C] int64; rows: ground truth, columns: prediction
    predictions: torch.Tensor  # [N] int64
    probabilities: torch.Tensor  # [N,C] float32 softmax
    logits: torch.Tensor | None = None  # [N,C] float32, averaged over the test-time views (softmax gives the above)

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.total, 1)

    @property
    def per_class_accuracy(self) -> list[float]:
        """Fraction right per true class; NaN for a class with no test images."""
        counts = self.confusion.sum(1)
        return [(self.confusion[c, c] / counts[c]).item() if counts[c] else float("nan")
                for c in range(len(counts))]

    def to_dict(self, classes: tuple[str, ...] | list[str]) -> dict:
        """What metrics.json holds (no per-image arrays); `per_class` has the classes with test images."""
        return {"accuracy": self.accuracy, "correct": self.correct, "total": self.total,
                "classes": list(classes),
                "per_class": {c: a for c, a in zip(classes, self.per_class_accuracy) if a == a},  # NaN: no images
                "confusion": self.confusion.tolist()}


TTA = ("none", "flip", "flip-translate")
VIEWS = {"none": 1, "flip": 2, "flip-translate": 6}  # images through the model per input image


def _shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """`x` moved by one pixel (dy, dx in -1..1), the uncovered edge filled by reflection."""
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    h, w = x.shape[-2:]
    return padded[..., 1 - dy:1 - dy + h, 1 - dx:1 - dx + w]


def tta_logits(model: nn.Module, inputs: torch.Tensor, tta: str = "none") -> torch.Tensor:
    """Logits averaged over test-time views of `inputs`: the image alone ("none"), with its mirror
    ("flip"), or both of those also shifted one pixel up-left and down-right ("flip-translate"),
    the unshifted views weighing as much as the shifted ones together. All views go through the model
    as one batch: for a single photo, one call instead of six."""
    if tta not in TTA:
        raise ValueError(f"unknown test-time augmentation {tta!r}; choose one of {list(TTA)}")
    if tta == "none":
        return model(inputs)
    views = [inputs, inputs.flip(3)]
    if tta == "flip-translate":
        views += [_shift(v, *s) for s in ((-1, -1), (1, 1)) for v in (inputs, inputs.flip(3))]
    logits = model(torch.cat(views)).view(len(views), len(inputs), -1)
    plain = logits[:2].mean(0)
    return plain if tta == "flip" else (plain + logits[2:].mean(0)) / 2


@torch.inference_mode()
def logits_of(model: nn.Module, images: torch.Tensor, normalize: Callable[[torch.Tensor], torch.Tensor],
              tta: str = "none", batch_size: int = 1000) -> torch.Tensor:
    """[N, classes] float logits of uint8 `images` (on the model's device), averaged over the views `tta`,
    `batch_size` images' views at a time, on a private eval-mode view (the caller's model, shared or training,
    is never switched)."""
    model = private_view(model)
    per_call = max(1, batch_size // VIEWS.get(tta, 1))  # the views of a batch go through the model together
    return torch.cat([tta_logits(model, normalize(batch), tta).float() for batch in images.split(per_call)])


@torch.inference_mode()
def evaluate(model: nn.Module, split: Split, normalize: Callable[[torch.Tensor], torch.Tensor],
             batch_size: int = 1000, num_classes: int | None = None, tta: str = "none") -> EvalResult:
    """Predictions, probabilities and confusion matrix of `model` on `split` (already on its device),
    with test-time augmentation `tta` (see `tta_logits`)."""
    logits = logits_of(model, split.images, normalize, tta, batch_size)
    return from_logits(logits, split.labels, num_classes or logits.shape[1])


def from_logits(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> EvalResult:
    """Everything `evaluate` reports, from the logits (averaged over the views) and the true labels."""
    probabilities = torch.softmax(logits, 1)
    predictions = probabilities.argmax(1)
    confusion = torch.bincount(labels * num_classes + predictions, minlength=num_classes ** 2)
    return EvalResult(correct=int((predictions == labels).sum()), total=len(labels),
                      confusion=confusion.view(num_classes, num_classes).cpu(),
                      predictions=predictions.cpu(), probabilities=probabilities.cpu(), logits=logits.cpu())


def tutorial_lines(result: EvalResult, classes) -> list[str]:
    """The tutorial's own closing lines, character for character."""
    lines = [f"Accuracy of the network on the {result.total} test images: {100 * result.correct // result.total} %"]
    for name, accuracy in zip(classes, result.per_class_accuracy):
        lines.append(f"Accuracy for class: {TUTORIAL_NAMES.get(name, name):5s} is {100 * accuracy:.1f} %")
    return lines
