"""Teach a model a new class from a few photos (Teachable Machine's idea, with what it costs the ten made visible).

The base network's body stays as it is; only its last linear layer is retrained, on the body's penultimate features
(core/similarity.py), with one more output: the new class. Its ten old rows start from the base's, the new one from
the mean direction of the photos' features ("imprinted weights", Qi et al., CVPR 2018). The photos are augmented
(zoom crops, shifts and flips) into many views. With `mix`, stored CIFAR-10 training features (200 a class) train
beside them, so the head keeps telling the ten apart; without it, only the photos do, and the ten are forgotten.
The forgetting meter is the ten classes' accuracy on the first 2,000 test images (the map's), before and after, with
and without the mix: both heads are trained every time, since a head costs a fraction of a second.

The result is an ordinary run directory (config, events, model.pth, metrics, train.log), written whole or not at all.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from core import events, ood
from core.checkpoints import LoadedModel
from core.data import Dataset
from core.evaluate import from_logits
from core.evaluations import SHIPPED, folder_for
from core.models import MODELS
from core.runs import Run
from core.similarity import MAP_IMAGES, classifier_name, feature_map, penultimate
from core.transforms import augment, zoom_crop

MIN_PHOTOS, MAX_PHOTOS = 10, 200
MIX_PER_CLASS = 200  # stored training features a class, spread over the set
VIEWS = 32  # augmented views of each training photo
HELD_OUT_EVERY = 5  # every fifth photo (by order) is held out: never trained on, answered like a new photo


class TeachError(ValueError):
    """A teach request that cannot be carried out; the message says what to change."""


@dataclass(frozen=True)
class TeachConfig:
    class_name: str
    mix: bool = True  # train beside stored CIFAR-10 features, so the ten are not forgotten
    steps: int = 300
    lr: float = 0.05
    seed: int = 0


@dataclass
class Taught:
    """What teaching made: the new model's weights and classes, and the figures the page and the card show."""
    state_dict: dict
    classes: list[str]
    forgetting: dict  # {"before", "after_mixed", "after_alone"}: the ten's accuracy on the first test images
    answers: list[dict]  # each photo: its name, held out or not, the new model's top class and probability
    seconds: float
    test: object = field(repr=False, default=None)  # the EvalResult of the kept head on the first test images


def check_request(base: LoadedModel, class_name: str, photos: list, data_classes: list[str]) -> str:
    """The class name, cleaned; TeachError for every request that cannot be taught (before any work is done)."""
    name = " ".join(str(class_name).split())
    if not name:
        raise TeachError("give the new class a name (e.g. “mug”)")
    if len(name) > 40 or not name.isprintable():
        raise TeachError("a class name is at most 40 printable characters")
    if name.lower() in (c.lower() for c in base.classes):
        raise TeachError(f"“{name}” is already one of the model's classes; give the new class another name")
    if len(photos) < MIN_PHOTOS:
        raise TeachError(f"teaching a class needs at least {MIN_PHOTOS} photos of it; {len(photos)} "
                         f"{'was' if len(photos) == 1 else 'were'} given")
    if len(photos) > MAX_PHOTOS:
        raise TeachError(f"at most {MAX_PHOTOS} photos at a time; {len(photos)} were given")
    if MODELS.get(base.name) is None:
        raise TeachError(f"{base.path} is a {base.name!r} network, which cannot be taught")
    if list(base.classes[:len(data_classes)]) != list(data_classes):
        raise TeachError(f"the base model's classes ({', '.join(base.classes)}) are not the data's "
                         f"({', '.join(data_classes)}): teach a model trained on this data")
    return name


def output_scale(model: nn.Module) -> float:
    """What the network multiplies its last linear layer's output by (FastNet's fixed softmax temperature; 1 for
    the others): the logits are scale × head(features)."""
    return float(getattr(model, "scale", 1.0))


def views_of(photos: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` augmented uint8 views of each [3,32,32] photo: a zoom crop (at least half the picture), then a
    shift of up to 4 pixels and a flip: how a photo is taken differently each time."""
    repeated = photos.repeat_interleave(count, 0)
    return augment(zoom_crop(repeated, generator, 0.5), generator)


def mix_index(labels: torch.Tensor, per_class: int = MIX_PER_CLASS) -> torch.Tensor:
    """`per_class` training images of each class, spread over the set (the same ones every time)."""
    chosen = []
    for c in labels.unique(sorted=True).tolist():
        where = (labels == c).nonzero().flatten()
        chosen.append(where[torch.linspace(0, len(where) - 1, min(per_class, len(where))).long()])
    return torch.cat(chosen)


def fit_head(head: nn.Linear, scale: float, features: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor,
             config: TeachConfig) -> nn.Linear:
    """A copy of `head` trained on (features, labels) by full-batch Adam, each class weighted by `weights`."""
    head, features = _copy(head), features.clone()  # penultimate's are inference tensors: autograd needs a copy
    optimizer = torch.optim.Adam(head.parameters(), lr=config.lr)
    for _ in range(config.steps):
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(head(features) * scale, labels, weight=weights)
        loss.backward()
        optimizer.step()
    return head.requires_grad_(False)


def _copy(linear: nn.Linear) -> nn.Linear:
    twin = nn.Linear(linear.in_features, linear.out_features, bias=linear.bias is not None)
    with torch.no_grad():
        twin.weight.copy_(linear.weight)
        if linear.bias is not None:
            twin.bias.copy_(linear.bias)
    return twin


def widened(head: nn.Linear, new_features: torch.Tensor) -> nn.Linear:
    """The base's head with one more output, its row the photos' mean feature direction at the old rows' norm."""
    wide = nn.Linear(head.in_features, head.out_features + 1, bias=head.bias is not None)
    with torch.no_grad():
        direction = F.normalize(new_features.mean(0), dim=0)
        wide.weight.copy_(torch.cat([head.weight.float(), direction[None] * head.weight.float().norm(dim=1).mean()]))
        if head.bias is not None:
            wide.bias.copy_(torch.cat([head.bias.float(), head.bias.float().mean()[None]]))
    return wide


@dataclass(frozen=True)
class Reference:
    """The base body's features of the stored CIFAR-10 images teaching uses: the mix (training images) and the
    meter's (the first test images). The dashboard keeps one per model; the CLI makes it each time."""
    mix_features: torch.Tensor
    mix_labels: torch.Tensor
    test_features: torch.Tensor
    test_labels: torch.Tensor


def reference(base: LoadedModel, dataset: Dataset) -> Reference:
    index = mix_index(dataset.train.labels)
    normalize = base.normalizer()
    # the meter's test images are the map of similar images': their features are read where the map remembers
    # them (shipped with the shipped model), and computed, rounded alike, where it does not
    test = feature_map(base.model, dataset.test, normalize, folders=(SHIPPED,), save_to=folder_for(dataset))
    return Reference(penultimate(base.model, dataset.train.images[index], normalize), dataset.train.labels[index],
                     test.test_features, dataset.test.labels[:MAP_IMAGES])


def teach(base: LoadedModel, photos: list[tuple[str, torch.Tensor]], ref: Reference, config: TeachConfig) -> Taught:
    """The base with an output for `config.class_name`, learned from `photos` ((name, [3,32,32] uint8) each; every
    HELD_OUT_EVERY-th held out), with and without the mix; the one `config.mix` names is kept."""
    began = time.perf_counter()
    names = [name for name, _ in photos]
    images = torch.stack([image for _, image in photos])
    held = torch.tensor([i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1 for i in range(len(photos))])
    model, normalize, known = base.model, base.normalizer(), len(base.classes)
    head_name = classifier_name(model)
    head, scale = dict(model.named_modules())[head_name], output_scale(model)
    generator = torch.Generator().manual_seed(config.seed)
    new = penultimate(model, views_of(images[~held], VIEWS, generator), normalize)
    wide = widened(head, new)
    new_labels = torch.full((len(new),), known)
    weights = torch.ones(known + 1)
    weights[known] = len(ref.mix_features) / known / len(new)  # the new class weighs as much as each old one
    mixed = fit_head(wide, scale, torch.cat([ref.mix_features, new]), torch.cat([ref.mix_labels, new_labels]),
                     weights, config)
    alone = fit_head(wide, scale, new, new_labels, torch.ones(known + 1), config)
    kept = mixed if config.mix else alone

    def accuracy(linear: nn.Linear) -> float:
        with torch.no_grad():
            return float(((linear(ref.test_features) * scale).argmax(1) == ref.test_labels).float().mean())

    with torch.no_grad():
        test = from_logits(kept(ref.test_features) * scale, ref.test_labels, known + 1)
        probabilities = torch.softmax(kept(penultimate(model, images, normalize)) * scale, 1)
    classes = [*base.classes, config.class_name]
    answers = [{"photo": name, "held_out": bool(h), "prediction": classes[int(p.argmax())],
                "probability": float(p.max()), "new_class_probability": float(p[known])}
               for name, h, p in zip(names, held.tolist(), probabilities)]
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for part in ("weight", "bias"):
        if getattr(kept, part) is not None:
            state[f"{head_name}.{part}"] = getattr(kept, part).detach().to(state[f"{head_name}.{part}"].dtype).clone()
    forgetting = {"before": accuracy(head), "after_mixed": accuracy(mixed), "after_alone": accuracy(alone),
                  "test_images": len(ref.test_labels)}
    return Taught(state, classes, forgetting, answers, time.perf_counter() - began, test)


def summary_lines(taught: Taught, config: TeachConfig) -> list[str]:
    """What the CLI prints and train.log keeps: the photos' answers and the forgetting meter."""
    f = taught.forgetting
    held = [a for a in taught.answers if a["held_out"]]
    right = sum(a["prediction"] == config.class_name for a in held)
    lines = [f"Taught “{config.class_name}” from {len(taught.answers) - len(held)} photos "
             f"({len(held)} held out) in {taught.seconds:.1f} s"]
    for a in taught.answers:
        lines.append(f"  {a['photo']}{' (held out)' if a['held_out'] else ''}: {a['prediction']} "
                     f"{100 * a['probability']:.1f} %")
    lines.append(f"Held-out photos recognised: {right} of {len(held)}")
    lines.append(f"The ten classes on the first {f['test_images']:,} test images: {100 * f['before']:.1f} % before; "
                 f"after, {100 * f['after_mixed']:.1f} % with CIFAR-10 mixed in, {100 * f['after_alone']:.1f} % "
                 f"from the photos alone (kept: {'mixed' if config.mix else 'alone'})")
    return lines


def check_target(run_dir: Path) -> Path:
    """TeachError unless `run_dir` can become the new run (absent, or an empty folder); its parents are made, as a
    training run's are."""
    run_dir = Path(run_dir)
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise TeachError(f"{run_dir} already exists; choose another run directory")
    return run_dir


def write_run(taught: Taught, base: LoadedModel, config: TeachConfig, dataset: Dataset, run_dir: Path) -> Run:
    """The taught model as an ordinary run directory, written beside it and renamed into place: whole or absent."""
    run_dir = check_target(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = run_dir.parent / f".{run_dir.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        run = Run(partial)
        width = MODELS[base.name].infer(taught.state_dict)[0]
        train = base_config(base).get("train")
        train = {**(train if isinstance(train, dict) else {}), "model": base.name, "width": width, "tta": base.tta}
        run.create({"train": train, "preset": "teach", "classes": taught.classes, "source": dataset.description,
                    "data": {"data_dir": str(dataset.root)}, "device": "cpu", "command": sys.argv,
                    "created": time.time(), "taught": {"base": str(base.path), "class_name": config.class_name,
                                                        "mix": config.mix, "photos": len(taught.answers)}})
        torch.save(taught.state_dict, run.model_file)
        # the base's calibration and "none of the ten" threshold, as they are: a new head has no validation images
        # of its own class to fit them on (its energy score only rises for the new class's images)
        calibration = {"temperature": base.temperature, "ood_threshold": base.ood_threshold,
                       "ood_unsure_below": base.ood_unsure_below, "calibration_from": str(base.path),
                       "ood_score": ood.SCORE if base.ood_threshold is not None else None}
        run.write_metrics({**taught.test.to_dict(taught.classes), "train_seconds": taught.seconds,
                           **{k: v for k, v in calibration.items() if v is not None},
                           "forgetting": taught.forgetting, "answers": taught.answers})
        for line in summary_lines(taught, config):
            run.log(line)
        run.append_event(events.status("done", test_accuracy=taught.test.accuracy, train_seconds=taught.seconds))
        run.close()
        if run_dir.exists():
            run_dir.rmdir()  # an empty folder made for it
        os.rename(partial, run_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return Run(run_dir)


def base_config(base: LoadedModel) -> dict:
    """The base run's config.json (its training settings and data), or {} for a bare file."""
    try:
        config = json.loads((base.path.parent / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def base_data_dir(base: LoadedModel) -> str | None:
    """Where the base run's data is, if it still is; None: the default data."""
    data = base_config(base).get("data")
    folder = data.get("data_dir") if isinstance(data, dict) else None
    return folder if isinstance(folder, str) and Path(folder).is_dir() else None
