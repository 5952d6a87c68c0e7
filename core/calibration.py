"""Honest confidence: temperature scaling (Guo et al., 2017) and the calibration error it is judged by.

A network trained to low loss is usually over-confident: of the images it calls 90 % sure, fewer than
90 % are right. Dividing its logits by one temperature T > 1, fitted on held-out images, fixes most of
that without changing a single prediction (the arg-max is the same for any T > 0).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def log_probabilities(probabilities: torch.Tensor) -> torch.Tensor:
    """Logits up to a per-image constant, which softmax ignores: what temperature scaling needs when
    only (test-time-augmented, averaged) probabilities were kept."""
    return probabilities.double().clamp(min=1e-12).log()


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, steps: int = 100) -> float:
    """The T > 0 minimising the cross-entropy of softmax(logits / T) on these images (1.0 if there are none)."""
    if len(labels) == 0:
        return 1.0
    logits, labels = logits.detach().double().cpu(), labels.cpu()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)  # T = exp(log_t) stays positive
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss
    optimizer.step(closure)
    return float(log_t.detach().exp())


def scaled(probabilities: torch.Tensor, temperature: float) -> torch.Tensor:
    """The probabilities with the temperature applied (the identity at T = 1)."""
    if temperature == 1.0:
        return probabilities
    return torch.softmax(log_probabilities(probabilities) / temperature, dim=1).to(probabilities.dtype)


@dataclass(frozen=True)
class Reliability:
    """Per confidence bin: how sure the model was on average, how often it was right, how many images."""
    confidence: list[float]
    accuracy: list[float]
    count: list[int]

    @property
    def ece(self) -> float:
        """Expected calibration error: the images' mean |confidence − accuracy| over the bins."""
        total = sum(self.count)
        return sum(n * abs(c - a) for c, a, n in zip(self.confidence, self.accuracy, self.count)) / total \
            if total else 0.0


def calibration_figures(validation, validation_labels: torch.Tensor, test, test_labels: torch.Tensor) -> dict:
    """The temperature fitted on the validation images (two EvalResults' probabilities), and what it does
    to the test set's expected calibration error: the figures a run's metrics.json records."""
    temperature = fit_temperature(log_probabilities(validation.probabilities), validation_labels)
    return {"temperature": temperature,
            "test_ece": reliability(test.probabilities, test_labels).ece,
            "test_ece_calibrated": reliability(scaled(test.probabilities, temperature), test_labels).ece}


def reliability(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> Reliability:
    """Bin the images by their top probability into `bins` equal-width bins (empty bins are dropped)."""
    confidence, predicted = probabilities.float().cpu().max(dim=1)
    right = (predicted == labels.cpu()).float()
    which = (confidence * bins).long().clamp(max=bins - 1)  # a confidence of exactly 1 joins the top bin
    rows = [(confidence[which == b].mean().item(), right[which == b].mean().item(), int((which == b).sum()))
            for b in range(bins) if (which == b).any()]
    return Reliability(*(list(column) for column in zip(*rows))) if rows else Reliability([], [], [])
