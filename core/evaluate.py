"""Evaluation as a pure function: a model and a split in, numbers out."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn

from core.data import TUTORIAL_NAMES, Split


@dataclass(frozen=True)
class EvalResult:
    correct: int
    total: int
    confusion: torch.Tensor  # [C,C] int64; rows: ground truth, columns: prediction
    predictions: torch.Tensor  # [N] int64
    probabilities: torch.Tensor  # [N,C] float32 softmax

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
        """What metrics.json holds (no per-image arrays)."""
        return {"accuracy": self.accuracy, "correct": self.correct, "total": self.total,
                "classes": list(classes),
                "per_class": dict(zip(classes, self.per_class_accuracy)),
                "confusion": self.confusion.tolist()}


@torch.inference_mode()
def evaluate(model: nn.Module, split: Split, normalize: Callable[[torch.Tensor], torch.Tensor],
             batch_size: int = 1000, num_classes: int | None = None) -> EvalResult:
    """Predictions, probabilities and confusion matrix of `model` on `split` (already on its device)."""
    was_training = model.training
    model.eval()
    probabilities = torch.cat([torch.softmax(model(normalize(images)).float(), 1)
                               for images in split.images.split(batch_size)])
    model.train(was_training)
    num_classes = num_classes or probabilities.shape[1]
    predictions = probabilities.argmax(1)
    labels = split.labels
    confusion = torch.bincount(labels * num_classes + predictions, minlength=num_classes ** 2)
    return EvalResult(correct=int((predictions == labels).sum()), total=len(labels),
                      confusion=confusion.view(num_classes, num_classes).cpu(),
                      predictions=predictions.cpu(), probabilities=probabilities.cpu())


def tutorial_lines(result: EvalResult, classes) -> list[str]:
    """The tutorial's own closing lines, character for character."""
    lines = [f"Accuracy of the network on the {result.total} test images: {100 * result.correct // result.total} %"]
    for name, accuracy in zip(classes, result.per_class_accuracy):
        lines.append(f"Accuracy for class: {TUTORIAL_NAMES.get(name, name):5s} is {100 * accuracy:.1f} %")
    return lines
