"""The learning replay: one picture through a model's snapshots (core/snapshots.py), from its random initial weights
to the trained model, as numbers a page draws (a slider's frames) or the CLI prints.

Every frame is computed at once: the snapshots of a model are few (at most 24; 6 for the shipped w64 network), a
frame costs one forward and one backward pass, and then moving a slider only shows a frame already there. The
snapshot weights go into a private copy of the model, never into the shared loaded one.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from core import anatomy
from core.interpret import predict, saliency, top_k
from core.snapshots import Snapshots


@dataclass(frozen=True)
class Frame:
    step: int  # optimizer steps taken (0: the initial weights)
    epoch: float  # the same, in epochs
    accuracy: float  # the snapshot's accuracy on the first `test_images` test images
    test_images: int
    probabilities: list[float]  # the picture's, per class (softmax; snapshots have no fitted temperature)
    top: int  # its most likely class
    heat: np.ndarray  # [32,32] Grad-CAM map in [0,1] for `top`
    filters: torch.Tensor  # the first layer's filters as [out,3,k,k] uint8 pictures (core.anatomy.first_filters)

    def top_k(self, classes: list[str], k: int = 3) -> list[tuple[str, float]]:
        return top_k(self.probabilities, classes, k)


def replay(loaded, snapshots: Snapshots, image: torch.Tensor) -> list[Frame]:
    """The frames of one [3,32,32] uint8 `image` under each snapshot of `loaded` (a core.checkpoints.LoadedModel),
    with the model's own test-time views."""
    model = copy.deepcopy(loaded.model)  # private: the loaded model is shared by every session
    own = model.state_dict()
    normalize, frames = loaded.normalizer(), []
    for i, step in enumerate(snapshots.steps):
        try:
            model.load_state_dict(snapshots.state_dict(i, own))
        except (RuntimeError, KeyError) as exc:
            raise ValueError(f"snapshot {i} does not fit this model ({str(exc).splitlines()[0]}): the snapshots "
                             "belong to another network") from None
        prediction = predict(model, image.unsqueeze(0), normalize, tta=loaded.tta)[0]
        heat = saliency(model, image, normalize, target=prediction.top, layer=loaded.cam_layer)
        frames.append(Frame(step, snapshots.epoch(i), snapshots.accuracy[i], snapshots.test_images,
                            prediction.probabilities, prediction.top, heat, anatomy.first_filters(model)))
    return frames


def replay_lines(frames: list[Frame], classes: list[str]) -> list[str]:
    """What `python -m core predict --replay` prints: the top class and its probability at each snapshot."""
    lines = []
    for frame in frames:
        (name, p), = frame.top_k(classes, 1)
        lines.append(f"step {frame.step:>6} (epoch {frame.epoch:5.2f}, test accuracy {100 * frame.accuracy:5.1f} %): "
                     f"{name} {100 * p:.1f} %")
    return lines
