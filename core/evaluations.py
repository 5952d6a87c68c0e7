"""Remembered evaluations: a model's test-set logits kept on disk, so a page that shows them answers at once.

A file is named by a key over everything the numbers depend on: the weights' content (not the file's name or
date), the split's pixels and labels, the normalisation, the test-time views and the class count. A changed
model or data set therefore never finds a stale file; a file that is unreadable, foreign or of another shape
is evaluated again (with a note saying so), never trusted. The shipped model's evaluation ships beside it in
`models/evaluations/`; everything else is remembered next to the data's decode cache.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn as nn

from core.data import DataConfig, Dataset, Split, cache_dir
from core.evaluate import EvalResult, evaluate, from_logits
from core.files import atomic_write

FORMAT = 1
FOLDER = "evaluations"
SHIPPED = Path(__file__).resolve().parent.parent / "models" / FOLDER


@dataclass(frozen=True)
class Remembered:
    result: EvalResult
    source: str  # "remembered" (read from `path`) or "computed" (and saved to `path` when it could be)
    path: Path | None = None
    note: str = ""  # why a file found was not used, in words for a person


def _tensor_bytes(t: torch.Tensor) -> bytes:
    # any dtype (bf16 too) as its raw bytes, in the standard layout whatever the tensor's memory format
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def model_digest(model: nn.Module) -> str:
    """The weights' and buffers' content: equal for the same model saved twice, uploaded or loaded from disk."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}\n".encode())
        h.update(_tensor_bytes(tensor))
    return h.hexdigest()


def split_digest(split: Split) -> str:
    h = hashlib.sha256(_tensor_bytes(split.images))
    h.update(_tensor_bytes(split.labels))
    return h.hexdigest()


def key(model: nn.Module, split: Split, normalize: Callable[[torch.Tensor], torch.Tensor], tta: str,
        num_classes: int) -> str:
    # the normalisation is a function: what it does to a fixed probe of every pixel value stands for it
    probe = normalize(torch.arange(256, dtype=torch.uint8).repeat(3, 1).view(1, 3, 16, 16))
    parts = [f"format {FORMAT}", model_digest(model), split_digest(split), hashlib.sha256(_tensor_bytes(probe))
             .hexdigest(), f"tta {tta}", f"classes {num_classes}"]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def folder_for(dataset: Dataset) -> Path:
    """Where evaluations on `dataset` are remembered: beside its decode cache (or ~/.cache where that is read-only)."""
    return cache_dir(DataConfig(), dataset.root) / FOLDER


def load_blob(path: Path, wanted: str) -> dict:
    """The remembered dict in `path` if it was written for key `wanted`, or ValueError saying why not."""
    try:
        blob = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # truncated, not a torch file, or a pickle that would run code
        raise ValueError(f"it could not be read ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT or blob.get("key") != wanted:
        raise ValueError("it belongs to another model, data set or format")
    return blob


def save_blob(path: Path, wanted: str, blob: dict) -> bool:
    """Write `blob` under key `wanted` atomically (a reader never sees half a file); False where the folder cannot
    be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: torch.save({"format": FORMAT, "key": wanted, **blob}, f))
        return True
    except OSError:
        return False


def find(wanted: str, folders: Sequence[Path], save_to: Path | None, check: Callable[[dict], object], what: str,
         again: str) -> tuple[object, Path | None, str]:
    """What `check` makes of the first file remembered under key `wanted` in `folders`, then `save_to`, that passes
    it, and that file; (None, None) where none does. Each file found that did not pass adds a sentence to the note
    (the third item, "" when none) naming `what` it was and saying it was done `again`. Evaluations, maps and
    neighbour features are all looked up this way."""
    notes = []
    for folder in (*folders, *([save_to] if save_to else [])):
        path = Path(folder) / f"{wanted}.pt"
        if not path.is_file():
            continue
        try:
            return check(load_blob(path, wanted)), path, " ".join(notes)
        except ValueError as exc:
            notes.append(f"The remembered {what} {path} was not used: {exc}. {again}")
    return None, None, " ".join(notes)


def _logits(blob: dict, split: Split, num_classes: int) -> torch.Tensor:
    """The logits in a remembered blob, or ValueError saying why they cannot be trusted."""
    logits = blob.get("logits")
    if not isinstance(logits, torch.Tensor) or logits.dtype != torch.float32 \
            or tuple(logits.shape) != (len(split), num_classes) or not torch.isfinite(logits).all():
        raise ValueError("its numbers are not the logits of this test set")
    return logits


def save(path: Path, wanted: str, result: EvalResult) -> bool:
    return save_blob(path, wanted, {"logits": result.logits.float().contiguous(), "accuracy": result.accuracy})


def remembered_evaluate(model: nn.Module, split: Split, normalize: Callable[[torch.Tensor], torch.Tensor], *,
                        num_classes: int, save_to: Path | None, tta: str = "none",
                        shipped: Sequence[Path] = (SHIPPED,), compute: bool = True) -> Remembered | None:
    """`core.evaluate.evaluate`'s result, read from a remembered file when one fits (the `shipped` folders first,
    then `save_to`), else computed and remembered in `save_to` (or None when not to `compute`). Equal to
    evaluating afresh either way."""
    wanted = key(model, split, normalize, tta, num_classes)
    logits, path, note = find(wanted, shipped, save_to, lambda blob: _logits(blob, split, num_classes),
                               "evaluation", "The model was evaluated again.")
    if logits is not None:
        return Remembered(from_logits(logits, split.labels, num_classes), "remembered", path, note)
    if not compute:
        return None
    result = evaluate(model, split, normalize, num_classes=num_classes, tta=tta)
    path = Path(save_to) / f"{wanted}.pt" if save_to else None
    if path is not None and not save(path, wanted, result):
        path = None
    return Remembered(result, "computed", path, note)

