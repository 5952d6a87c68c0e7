"""Weight averaging: an exponential moving average of a model, the one evaluated and saved.

Averaging the last few hundred steps' weights lands nearer the middle of the valley the optimizer
is bouncing around in; on short, high-learning-rate runs it is worth a point or more of accuracy.
Not torch's AveragedModel(use_buffers=True): the same average, 6-9x the cost per update, and weights
saved under `module.` (benchmarks/optim_averaging.py, BENCHMARKS.md).
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn


class WeightAverage:
    """`averaged` follows `model`: after each `update`, avg ← avg + (1 − d)·(model − avg).

    Every floating tensor of the state_dict is averaged, BatchNorm's running statistics included,
    so the average is a complete model. The decay ramps up as (1 + t) / (10 + t) towards `decay`,
    so the first steps (far from any minimum) are forgotten quickly.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay, self.updates = decay, 0
        self.averaged = copy.deepcopy(model).eval().requires_grad_(False)
        # state_dict() tensors share storage with the live ones, so these lists stay current.
        live = model.state_dict()
        pairs = [(live[k], v) for k, v in self.averaged.state_dict().items() if v.is_floating_point()]
        self._live, self._average = [a for a, _ in pairs], [b for _, b in pairs]

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self._average, self._live, 1 - decay)

    def load_state_dict(self, state: dict) -> None:
        self.averaged.load_state_dict(state["weights"])
        self.updates = state["updates"]


class NoAverage:
    """Stands in when averaging is off, so the loop calls `update` unconditionally."""

    def __init__(self, model: nn.Module):
        self.averaged = model

    def update(self) -> None:
        pass
