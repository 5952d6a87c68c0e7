"""Training settings and the named presets.

Each field of `TrainConfig` carries its label, help text and valid values (`setting(...)`), and
everything else is derived from that one place: the validation (`TrainConfig.problems`), the CLI's
flags (core/cli.py) and the Train page's form (dashboard/train_page.py). Adding a setting is one
`setting(...)` line here, plus its use in the loop.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Callable

from core.evaluate import TTA
from core.models import MODELS

SCHEDULES = ("constant", "cosine", "onecycle")
DEVICES = ("auto", "cpu", "cuda", "mps")


class ConfigError(ValueError):
    """Invalid training settings; `problems` maps each field to what is wrong with it."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


def setting(default: Any, label: str, help: str, *, valid: Callable[[Any], bool] | None = None,
            message: str = "", choices: tuple[str, ...] | None = None, advanced: bool = False,
            step: float | None = None, format: str | None = None):
    """A field with what every surface needs to show and check it: `label` (the form's), `help` (the
    flag's and the form's), `valid`/`message` (or `choices`), `advanced` (the form's expander),
    and, for floats, the form's `step` and `format`."""
    if choices is not None and valid is None:
        valid, message = (lambda value: value in choices), message or f"choose one of {list(choices)}"
    return field(default=default, metadata=dict(label=label, help=help, valid=valid, message=message,
                                                choices=choices, advanced=advanced, step=step, format=format))


def _finite_in(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Callable[[float], bool]:
    return lambda v: math.isfinite(v) and (low < v if low_open else low <= v) and (v < high if high_open else v <= high)


@dataclass(frozen=True)
class TrainConfig:
    model: str = setting("net", "Model", "the network", choices=tuple(MODELS),
                         message=f"unknown model; choose one of {sorted(MODELS)}")
    width: int = setting(6, "Width", "channels of the first layer: for net, conv1's outputs = conv2's inputs (the "
                         "tutorial's exercise); widenet and fastnet widen from it; 1–512",
                         valid=lambda v: 1 <= v <= 512, message="must be between 1 and 512")
    epochs: int = setting(2, "Epochs", "passes over the training set, 1–1000",
                          valid=lambda v: 1 <= v <= 1000, message="must be between 1 and 1000")
    batch_size: int = setting(4, "Batch size", "images per step (global under DDP), 1–65536",
                              valid=lambda v: 1 <= v <= 65536, message="must be between 1 and 65536")
    lr: float = setting(0.001, "Learning rate", "the peak learning rate; above 0, at most 10",
                        valid=_finite_in(0, 10, low_open=True), message="must be above 0 and at most 10",
                        step=0.001, format="%.5f")
    momentum: float = setting(0.9, "Momentum", "SGD momentum, 0 ≤ momentum < 1", valid=_finite_in(0, 1, high_open=True),
                              message="must be in [0, 1)", step=0.05, format="%.3f")
    weight_decay: float = setting(0.0, "Weight decay", "L2 penalty in SGD, 0–1", valid=_finite_in(0, 1),
                                  message="must be in [0, 1]", step=0.0001, format="%.5f")
    schedule: str = setting("constant", "LR schedule", "how the learning rate moves over the run",
                            choices=SCHEDULES)
    augment: bool = setting(False, "Augment (random crop + horizontal flip)",
                            "random translation (see translate) and horizontal flips, batched on the device")
    device: str = setting("auto", "Device", "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps",
                          valid=lambda v: v in DEVICES or v.startswith("cuda:"),
                          message=f"choose one of {list(DEVICES)}", choices=DEVICES)
    seed: int = setting(0, "Seed", "same seed, same run (on a CPU)", valid=lambda v: 0 <= v < 2**63,
                        message="must be a non-negative integer")
    log_interval: int = setting(2000, "Log every", "mini-batches per printed running loss (the tutorial: 2000)",
                                valid=lambda v: 1 <= v <= 10**9, message="must be at least 1", advanced=True)
    threads: int = setting(0, "CPU threads", "CPU threads; 0: one for batches of 8 or fewer on a CPU, else torch "
                           "decides", valid=lambda v: 0 <= v <= 1024,
                           message="must be between 0 (automatic) and 1024", advanced=True)
    # Beyond the tutorial: every default keeps the tutorial's behaviour.
    nesterov: bool = setting(False, "Nesterov momentum", "Nesterov momentum (needs a momentum above 0)",
                             advanced=True)
    label_smoothing: float = setting(0.0, "Label smoothing", "label smoothing of the loss, 0 ≤ smoothing < 1",
                                     valid=_finite_in(0, 1, high_open=True), message="must be in [0, 1)",
                                     advanced=True, step=0.05, format="%.2f")
    decay_weights_only: bool = setting(False, "Decay weights only", "weight decay on conv/linear weights only, "
                                       "not on biases or norm layers", advanced=True)
    ema: float = setting(0.0, "Weight averaging (EMA decay)", "decay of a moving average of the weights that is "
                         "evaluated and saved (e.g. 0.99); 0 turns it off", valid=_finite_in(0, 1, high_open=True),
                         message="must be in [0, 1) (0 turns averaging off)", advanced=True, step=0.01, format="%.3f")
    tta: str = setting("none", "Test-time augmentation", "average the predictions over mirrored (and shifted) "
                       "copies when evaluating", choices=TTA, advanced=True)
    channels_last: bool = setting(False, "Channels-last layout", "NHWC memory layout: faster convolutions on CPUs "
                                  "and GPUs", advanced=True)
    bf16: bool = setting(False, "bf16 autocast", "bfloat16 autocast; pays off on GPUs and on CPUs with native bf16 "
                         "(AVX-512 BF16, AMX)", advanced=True)
    compile: bool = setting(False, "torch.compile", "compile the model first: tens of seconds, counted as training "
                            "time", advanced=True)
    translate: int = setting(4, "Translate (pixels)", "with augment: random shift of up to this many pixels, 0–8",
                             valid=lambda v: 0 <= v <= 8, message="must be between 0 and 8 pixels", advanced=True)
    zoom: float = setting(1.0, "Zoom crops (min. area)", "random-resized crops: each training image becomes a random "
                          "window of at least this share of its area (aspect 3:4–4:3) scaled back up, the close-ups "
                          "photos bring; 1: off; 0.1–1", valid=_finite_in(0.1, 1),
                          message="must be between 0.1 and 1 (1 turns it off)", advanced=True, step=0.05, format="%.2f")
    jitter: float = setting(0.0, "Colour jitter", "random brightness, contrast and saturation, each by its own factor "
                            "in [1 − jitter, 1 + jitter], as a phone's exposure varies; 0: off; 0–0.9",
                            valid=_finite_in(0, 0.9), message="must be between 0 and 0.9 (0 turns it off)",
                            advanced=True, step=0.05, format="%.2f")
    cutout: int = setting(0, "Cutout (pixels)", "a random square of this side blanked in each training image "
                          "(airbench96: 12); 0: off; 0–24", valid=lambda v: 0 <= v <= 24,
                          message="must be between 0 and 24 pixels (0 turns it off)", advanced=True)
    outlier_exposure: float = setting(0.0, "Outlier exposure (weight)", "each batch also gets an eighth as many "
                                      "images that are none of the classes (photo crops, textures, noise: "
                                      "core/outliers.py), and this weight times the cross-entropy from the uniform "
                                      "distribution to their prediction joins the loss (Hendrycks et al. 2019: 0.5); "
                                      "0: off; 0–5", valid=_finite_in(0, 5),
                                      message="must be between 0 and 5 (0 turns it off)", advanced=True, step=0.1,
                                      format="%.2f")
    norm_lr_scale: float = setting(1.0, "Norm lr scale", "learning-rate multiplier for BatchNorm scales and biases "
                                   "(airbench uses 64); above 0", valid=_finite_in(0, 1000, low_open=True),
                                   message="must be above 0 and at most 1000", advanced=True, step=1.0, format="%.1f")
    freeze_norm_scales: bool = setting(False, "Freeze norm scales", "BatchNorm scales stay 1; only their biases learn",
                                       advanced=True)
    snapshots: int = setting(24, "Weight snapshots", "copies of the weights kept along training for the learning "
                             "replay, log-spaced from the initial weights to the end, in half precision, at most "
                             "25 MB in all (a wide model keeps fewer; one too large for two, none); 0: none; 0–64",
                             valid=lambda v: 0 <= v <= 64,
                             message="must be between 0 (none) and 64", advanced=True)
    val_images: int = setting(0, "Validation images", "training images held out to validate after each epoch: the "
                              "same class-balanced slice for every run with this number, so settings can be chosen "
                              "without the test set; 0: none (the tutorial); 0–25000",
                              valid=lambda v: 0 <= v <= 25_000, message="must be between 0 and 25000", advanced=True)

    def __post_init__(self):
        problems = self.problems()
        if problems:
            raise ConfigError(problems)

    def problems(self) -> dict[str, str]:
        p = {}
        for f in fields(self):  # the types are part of the contract: "2" is not 2
            value, kind = getattr(self, f.name), {"int": int, "float": (int, float), "str": str, "bool": bool}[f.type]
            if isinstance(value, bool) and f.type != "bool" or not isinstance(value, kind):
                p[f.name] = f"must be {f.type}, got {value!r}"
        if p:
            return p
        for f in fields(self):
            valid = f.metadata["valid"]
            if valid is not None and not valid(getattr(self, f.name)):
                p[f.name] = f.metadata["message"]
        if self.nesterov and self.momentum == 0:  # the one rule across two fields
            p["nesterov"] = "needs a momentum above 0"
        return p

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError({k: "unknown setting" for k in unknown})
        return cls(**values)


def with_overrides(config: TrainConfig, **overrides) -> TrainConfig:
    """`config` with the given non-None fields replaced (validated like any config)."""
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})


# What the speed presets share: Nesterov SGD on a one-cycle schedule with label smoothing, weight
# decay on weights only, channels-last convolutions (faster on CPUs too) and flip test-time views.
_SPEED = dict(schedule="onecycle", momentum=0.9, nesterov=True, label_smoothing=0.1, weight_decay=5e-4,
              decay_weights_only=True, channels_last=True, tta="flip", log_interval=100)
# bf16 autocast halves the CPU presets' time on CPUs with native bf16 (AVX-512 BF16, AMX); where a CPU only
# emulates it (slower than fp32) the CLI and the Train form drop a preset's bf16 and say so
# (core.devices.for_this_device; --bf16 forces it). Figures: BENCHMARKS.md.

# The tutorial, exactly: batch 4, SGD(lr=0.001, momentum=0.9), 2 epochs, loss every 2000 batches.
PRESETS: dict[str, TrainConfig] = {
    "tutorial": TrainConfig(),
    "fast": TrainConfig(**{**_SPEED, "model": "widenet", "width": 8, "epochs": 1, "batch_size": 96, "lr": 0.15,
                           "bf16": True}),
    "cpu-best": TrainConfig(**{**_SPEED, "model": "fastnet", "width": 16, "epochs": 6, "batch_size": 256, "lr": 0.4,
                               "label_smoothing": 0.2, "augment": True, "ema": 0.99, "tta": "flip-translate",
                               "bf16": True}),
    "gpu": TrainConfig(**{**_SPEED, "model": "fastnet", "width": 64, "epochs": 15, "batch_size": 1024, "lr": 0.8,
                          "label_smoothing": 0.2, "augment": True, "ema": 0.99, "tta": "flip-translate",
                          "bf16": True, "log_interval": 10}),
    # airbench96's shape (128/512/512, three convs a stage, a shortcut around the last two) with its 4-pixel
    # translation, 12-pixel cutout and 40 epochs, on our optimiser (its lr scaled down as airbench96 scales its own)
    "gpu-best": TrainConfig(**{**_SPEED, "model": "fastnet-deep", "width": 128, "epochs": 40, "batch_size": 1024,
                               "lr": 0.6, "label_smoothing": 0.2, "augment": True, "cutout": 12, "ema": 0.99,
                               "tta": "flip-translate", "bf16": True, "log_interval": 10}),
}
PRESET_DESCRIPTIONS = {
    "tutorial": "The tutorial exactly: Net, batch 4, SGD lr 0.001 momentum 0.9, 2 epochs (~54 %).",
    "fast": "Beyond the tutorial's accuracy in a few seconds on a CPU: widenet w8, one epoch of batch 96, "
            "one-cycle, bf16 (~66 %).",
    "cpu-best": "Best accuracy in the tutorial's CPU time: airbench-style fastnet w16, 6 epochs, augmentation, "
                "weight averaging, bf16 (~86 %).",
    "gpu": "airbench-style for one GPU: fastnet w64, bf16, 15 epochs of batch 1024, flip-translate TTA (~5 s on an "
           "H200; its accuracy on the original CIFAR-10 is not yet measured on a GPU).",
    "gpu-best": "airbench96-style for one GPU, aiming at 96 %: fastnet-deep w128, 12-pixel cutout, 40 epochs of batch "
                "1024, bf16 (not yet measured on a GPU; hours on a CPU).",
}
