"""Loading checkpoints: a plain state_dict from a file (pickled code refused), the registered model it fits,
and a model with its class names from a run directory or a .pth file."""
from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from core import ood
from core.data import CIFAR10_CLASSES, DataConfig
from core.evaluate import TTA
from core.interpret import Prediction, predict
from core.models import MODELS
from core.transforms import normalizer


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the problem."""


def load_state_dict(path, name: str | None = None) -> dict:
    """A plain tensor state_dict from `path` (or a file object), with unrestricted pickle refused (weights_only)."""
    path_name = name or str(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path_name} does not exist.") from None
    except Exception as exc:  # UnpicklingError for code-carrying pickles, RuntimeError for junk
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path_name} is not a plain PyTorch weights file and was not loaded "
                              f"(only tensors are accepted): {reason}") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # a checkpoint.pth: take its weights
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path_name} holds no state_dict (a dict of tensors).")
    return state


def class_mismatch(predicted: int, data: int) -> CheckpointError:
    return CheckpointError(f"The checkpoint predicts {predicted} classes but the data has {data}; "
                           "pick a model trained on this dataset.")


def model_from_state_dict(state: dict, name: str | None = None,
                          num_classes: int | None = None) -> tuple[nn.Module, str]:
    """Build the registered model whose shapes match `state` and load it; (model, name).

    `name` and `num_classes`, when given, must match; a mismatch is named in the error.
    """
    names = [name] if name else list(MODELS)
    problems = []
    for candidate in names:
        spec = MODELS.get(candidate)
        if spec is None:
            raise CheckpointError(f"Unknown model {candidate!r}; choose one of {sorted(MODELS)}.")
        try:
            width, classes = spec.infer(state)
        except (KeyError, IndexError, AttributeError):
            problems.append(f"not a {candidate!r} checkpoint (its layers are named differently)")
            continue
        if num_classes is not None and classes != num_classes:
            raise class_mismatch(classes, num_classes)
        model = spec.build(width=width, num_classes=classes)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            problems.append(f"does not fit {candidate!r}: {str(exc).splitlines()[0]}")
            continue
        return model, candidate
    raise CheckpointError("The checkpoint matches no known architecture: " + "; ".join(problems))


@dataclass
class LoadedModel:
    model: nn.Module
    name: str  # registry name
    classes: list[str]
    path: Path
    tta: str = "none"  # the test-time augmentation it was trained to be evaluated with
    card: dict = field(default_factory=dict)  # the model card beside the file (test_accuracy, date, ...), if any
    temperature: float = 1.0  # fitted on its run's validation images (core/calibration.py); 1: none was
    ood_threshold: float | None = None  # core.ood's threshold, set on the same images; None: none was
    ood_unsure_below: float | None = None  # the top of core.ood.band's "not sure" band; None: two answers

    @property
    def cam_layer(self) -> str | None:
        return MODELS[self.name].cam_layer

    def normalizer(self, device: torch.device | str = "cpu"):
        """The input normalisation the model was trained with (the tutorial's; DataConfig's)."""
        return normalizer(DataConfig(), device)

    def predict(self, images: torch.Tensor) -> list[Prediction]:
        """Its predictions for [B,3,32,32] uint8 images on the CPU: its normalisation, its test-time views,
        its temperature and its "none of the ten" threshold."""
        return predict(self.model, images, self.normalizer(), tta=self.tta, temperature=self.temperature,
                       threshold=self.ood_threshold, unsure_below=self.ood_unsure_below)


def check_fits(loaded: "LoadedModel", classes) -> None:
    """CheckpointError unless `loaded` can be scored on data with `classes`: as many outputs, or more whose first
    ones are those classes (a taught model: CIFAR-10's ten and a class of its own, which no test image has)."""
    classes = list(classes)
    if len(loaded.classes) == len(classes) or list(loaded.classes[:len(classes)]) == classes:
        return
    raise class_mismatch(len(loaded.classes), len(classes))


def _metadata(path: Path) -> dict:
    """classes/model from a run's config.json beside model.pth, or a model card <stem>.json (whose
    whole text is kept as `card`). A missing, malformed or odd file counts as absent."""
    for candidate in (path.parent / "config.json", path.with_suffix(".json")):
        try:
            data = json.loads(candidate.read_text())
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            continue
        if not isinstance(data, dict):
            continue
        train = data.get("train") if isinstance(data.get("train"), dict) else {}
        card = data if candidate.name != "config.json" else {}
        fitted = card or _read_json(path.parent / "metrics.json")  # a run's temperature is in its metrics
        return {"classes": data.get("classes"), "model": train.get("model") or data.get("model"),
                # a card's own "tta" (how the model is served) wins over the one it was trained with
                "tta": data.get("tta") or train.get("tta"), "card": card, "temperature": fitted.get("temperature"),
                # a threshold is only meaningful for the score it was set on
                **{key: fitted.get(key) if fitted.get("ood_score") == ood.SCORE else None
                   for key in ("ood_threshold", "ood_unsure_below")}}
    return {}


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def load_model(target: str | Path | bytes, num_classes: int | None = None, name: str = "the upload") -> LoadedModel:
    """A run directory, a weights file or an uploaded file's bytes -> the model, on the CPU, in eval mode.

    Bare state_dicts (the tutorial's cifar_net.pth) get CIFAR-10's class names when they have
    ten outputs. Mismatches and unsafe files raise CheckpointError naming the problem.
    """
    if isinstance(target, bytes):
        path, meta = Path(name), {}
        state = load_state_dict(io.BytesIO(target), name=name)
    else:
        path = Path(target)
        if path.is_dir():
            path = path / "model.pth"
        meta = _metadata(path)
        state = load_state_dict(path)
    model, name = model_from_state_dict(state, name=meta.get("model"), num_classes=num_classes)
    outputs = MODELS[name].infer(state)[1]
    classes = meta.get("classes")
    if not classes or len(classes) != outputs:
        classes = list(CIFAR10_CLASSES) if outputs == len(CIFAR10_CLASSES) else [f"class {i}" for i in range(outputs)]
    tta = meta.get("tta") if meta.get("tta") in TTA else "none"
    # channels-last weights make every convolution run NHWC whatever the input's layout: the same
    # predictions, twice as fast for fastnet on a CPU (BENCHMARKS.md, evaluation)
    model = model.to(memory_format=torch.channels_last).eval()
    temperature = meta.get("temperature")
    temperature = float(temperature) if _number(temperature) and 0 < temperature < 100 else 1.0
    threshold, unsure_below = (float(meta[k]) if _number(meta.get(k)) else None
                               for k in ("ood_threshold", "ood_unsure_below"))
    if threshold is None or unsure_below is None or unsure_below < threshold:
        unsure_below = None  # a band needs both ends, in order
    return LoadedModel(model, name, list(classes), path, tta, meta.get("card") or {}, temperature, threshold,
                       unsure_below)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
