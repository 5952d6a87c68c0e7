"""Snapshots of a model's weights along its training, for the learning replay.

A run keeps its weights (the averaged ones, the model it would use) at log-spaced steps from the initial
weights to the last step, in half precision, with each snapshot's accuracy on the first SNAPSHOT_TEST_IMAGES test
images. Log-spaced because a network learns most in its first steps. The file is bounded: at most
BUDGET_BYTES whatever the requested count, so a wide model keeps fewer.

    runs/<id>/snapshots.pt        beside the run's model.pth
    models/<name>.snapshots.pt    beside a shipped models/<name>.pth
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

BUDGET_BYTES = 25 * 2**20  # what a model's snapshots may take on disk (the repository carries the shipped model's)
# each snapshot's accuracy: the first 1,000 test images (CIFAR's test set is shuffled), within ~1.5 points of the whole
# set's. Not training time, but the run's: 24 evaluations of 2,000 images were a third of the fast preset's process
SNAPSHOT_TEST_IMAGES = 1000
WRITTEN_BEFORE = 2000  # what a snapshots file that does not say was scored on


class SnapshotError(ValueError):
    """A snapshots file that cannot be used; the message names the problem."""


def half_size(model: nn.Module) -> int:
    """Bytes of `model`'s state_dict in half precision (its float tensors at 2 bytes, the rest as they are)."""
    return sum(t.numel() * (2 if t.is_floating_point() else t.element_size()) for t in model.state_dict().values())


def count_for(model: nn.Module, requested: int) -> int:
    """How many snapshots `model` keeps: `requested`, or fewer where they would exceed BUDGET_BYTES; none where
    even two (the start and the end, the least a replay shows) would (a w128 fastnet-deep: 24 MB each)."""
    fits = BUDGET_BYTES // max(half_size(model), 1)
    return min(requested, fits) if requested > 0 and fits >= 2 else 0


def steps_for(total_steps: int, count: int) -> list[int]:
    """`count` optimizer steps from 0 (the initial weights) to `total_steps` (the end), log-spaced in between;
    fewer when the run has fewer steps than that."""
    if count <= 0:
        return []
    if count == 1 or total_steps == 0:
        return [total_steps]
    inner = [round(math.exp(math.log(total_steps) * k / (count - 1))) for k in range(1, count - 1)]
    return sorted({0, *inner, total_steps})


def half(state: dict) -> dict:
    """A CPU copy of `state` with float tensors in half precision."""
    return {k: (v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.detach().cpu().clone())
            for k, v in state.items()}


@dataclass
class Snapshots:
    steps_per_epoch: int
    steps: list[int] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)  # on the first `test_images` test images
    weights: list[dict] = field(default_factory=list)  # half-precision state_dicts
    test_images: int = SNAPSHOT_TEST_IMAGES

    def add(self, step: int, state: dict, accuracy: float) -> None:
        self.steps.append(step)
        self.accuracy.append(accuracy)
        self.weights.append(half(state))

    def to_dict(self) -> dict:
        """Plain tensors and numbers: loadable with weights_only=True."""
        return {"steps_per_epoch": self.steps_per_epoch, "steps": list(self.steps), "accuracy": list(self.accuracy),
                "test_images": self.test_images, "weights": list(self.weights)}

    @classmethod
    def from_dict(cls, data: dict) -> "Snapshots":
        return cls(data["steps_per_epoch"], list(data["steps"]), list(data["accuracy"]), list(data["weights"]),
                   int(data.get("test_images", WRITTEN_BEFORE)))

    def epoch(self, i: int) -> float:
        """Snapshot `i`'s place in training in epochs (0: the initial weights)."""
        return self.steps[i] / max(self.steps_per_epoch, 1)

    def state_dict(self, i: int, like: dict) -> dict:
        """Snapshot `i`'s weights in the dtypes of `like` (a model's own state_dict)."""
        return {k: v.to(like[k].dtype) for k, v in self.weights[i].items()}


def file_for(model_path: str | Path) -> Path:
    """Where the snapshots of the model in `model_path` (a run's model.pth, or a models/<name>.pth) are kept."""
    path = Path(model_path)
    return path.parent / "snapshots.pt" if path.name == "model.pth" else path.with_suffix(".snapshots.pt")


def load(path: str | Path) -> Snapshots | None:
    """The snapshots in `path`; None when there is no such file (a run from before snapshots, or without them).
    A file that is not one raises SnapshotError."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        snapshots = Snapshots.from_dict(data)
        consistent = len(snapshots.steps) == len(snapshots.accuracy) == len(snapshots.weights) > 0
    except Exception as exc:  # unpicklable, truncated, or not our layout
        raise SnapshotError(f"{path} is not a snapshots file ({type(exc).__name__}); delete it to go without "
                            "the learning replay.") from None
    if not consistent or not all(isinstance(w, dict) for w in snapshots.weights):
        raise SnapshotError(f"{path} is not a complete snapshots file; delete it to go without the learning replay.")
    return snapshots
