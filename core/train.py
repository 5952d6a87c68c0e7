"""The training loop: one config, one device, progress out through a callback.

The step reads like the tutorial's; everything that differs (data resident on the device,
batched normalisation, fewer host syncs) happens around it, never inside it as a branch.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn as nn

from core import events, ood
from core.averaging import NoAverage, WeightAverage
from core.calibration import calibration_figures
from core.config import TrainConfig
from core.data import DataConfig, DataError, Dataset, augment, color_jitter, cutout, holdout, normalizer, zoom_crop
from core.devices import device_name
from core.distributed import SINGLE, World
from core.evaluate import EvalResult, evaluate
from core.interpret import losses
from core.models import build_model, prepare_model


class Diverged(RuntimeError):
    """The loss became NaN or infinite."""


ONECYCLE_WARMUP = 0.2  # fraction of all steps spent rising to the peak lr


def lr_at(config: TrainConfig, step: int, total_steps: int) -> float:
    """Learning rate for global step `step` (0-based) of `total_steps`."""
    t = step / max(total_steps, 1)
    if config.schedule == "cosine":
        return config.lr * 0.5 * (1 + math.cos(math.pi * t))
    if config.schedule == "onecycle":
        rise = t / ONECYCLE_WARMUP if t < ONECYCLE_WARMUP else (1 - t) / (1 - ONECYCLE_WARMUP)
        return config.lr * max(rise, 0.0)
    return config.lr


@dataclass
class TrainResult:
    model: nn.Module
    status: str  # "done" | "stopped"
    epochs_done: int
    train_seconds: float
    evaluation: EvalResult | None = None  # the last epoch's test evaluation (main process; None when stopped)
    validation: EvalResult | None = None  # the same on the held-out training images, with `val_images`
    # with `val_images`: core.calibration.calibration_figures and core.ood.figures (temperature, ECE, threshold)
    calibration: dict = field(default_factory=dict)


Event = dict
Callback = Callable[[Event], None]


def _event_every(steps_per_epoch: int, log_interval: int) -> int:
    """Curve points: about 100 per epoch, never fewer than the printed log lines give, and at most
    one every 5 steps otherwise: each point reads the loss back, which makes a GPU wait."""
    return max(1, min(log_interval, max(steps_per_epoch // 100, 5)))


def _tiny_batches_on_cpu(config: TrainConfig, device: torch.device) -> bool:
    """At a few images a step (the tutorial's 4) a CPU step is dispatch-bound: oneDNN's convolutions
    cost more than they compute (~15 % of the step), and a second thread only adds synchronisation
    (one thread: 11 % shorter tutorial runs on 2 cores). From ~8 images up, both pay."""
    return device.type == "cpu" and config.batch_size <= 8


def train(config: TrainConfig, dataset: Dataset, device: torch.device, *,
          data_config: DataConfig = DataConfig(),
          on_event: Callback = lambda event: None,
          should_stop: Callable[[], bool] = lambda: False,
          save_checkpoint: Callable[[dict], None] = lambda checkpoint: None,
          resume: dict | None = None, world: World = SINGLE) -> TrainResult:
    """Train `config` on `dataset` on `device`, reporting through `on_event`.

    Checkpoints (plain tensors and numbers, loadable with weights_only=True) are handed to
    `save_checkpoint` after every epoch and when a stop is honoured; `resume` takes one back
    and continues exactly where it left off. Under torchrun, `world` is this process's place in
    the job (see core/distributed.py); the loop is the same.
    """
    tiny = _tiny_batches_on_cpu(config, device)
    mkldnn = torch.backends.mkldnn  # only this flag is touched (mkldnn.flags() takes others, differing by version)
    enabled, threads = mkldnn.enabled, torch.get_num_threads()
    mkldnn.enabled = enabled and not tiny
    torch.set_num_threads(config.threads or (1 if tiny else threads))
    try:
        return _train(config, dataset, device, data_config, on_event, should_stop, save_checkpoint, resume, world)
    finally:
        mkldnn.enabled = enabled
        torch.set_num_threads(threads)


PREPARE_IMAGES = 5000  # training images a data-dependent initialisation (whitening) looks at


def prepare_sample(images: torch.Tensor) -> torch.Tensor:
    """PREPARE_IMAGES images spread evenly over the set: folder datasets are stored class by class,
    and the first 5,000 CIFAR-10 images are all airplanes (whitening mostly sky)."""
    return images[::max(1, len(images) // PREPARE_IMAGES)][:PREPARE_IMAGES]


def _batch_norms(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def param_groups(model: nn.Module, config: TrainConfig) -> list[dict]:
    """One group, or when `decay_weights_only` or `norm_lr_scale` treat them apart: conv/linear
    weights, and the rest (biases, norm parameters), split once more into other biases and norm
    parameters when `norm_lr_scale` is not 1. `decay_weights_only` decays the weights alone
    (decaying the rest only fights BatchNorm); the norm group's lr is `norm_lr_scale` times the
    schedule's (airbench trains its BatchNorm biases at 64 times the weights' lr).
    Frozen tensors and empty groups are left out; `lr_scale` is our key, read by the loop."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not config.decay_weights_only and config.norm_lr_scale == 1:
        return [{"params": trainable, "lr_scale": 1.0}]
    weights, rest = [p for p in trainable if p.dim() > 1], [p for p in trainable if p.dim() <= 1]
    free = {"weight_decay": 0.0} if config.decay_weights_only else {}
    groups = [{"params": weights, "lr_scale": 1.0}]
    if config.norm_lr_scale == 1:  # two groups, as checkpoints from before norm_lr_scale have
        groups.append({"params": rest, "lr_scale": 1.0, **free})
    else:
        norms = {id(p) for m in _batch_norms(model) for p in m.parameters(recurse=False)}
        groups += [{"params": [p for p in rest if id(p) not in norms], "lr_scale": 1.0, **free},
                   {"params": [p for p in rest if id(p) in norms], "lr_scale": config.norm_lr_scale, **free}]
    return [g for g in groups if g["params"]]


def optimizer_for(model: nn.Module, config: TrainConfig) -> torch.optim.SGD:
    """SGD over `param_groups`, fused: about half the time of `foreach=True` per step on a CPU
    (benchmarks/optim_averaging.py); the tutorial's per-parameter loop up to rounding (tests/test_optim.py)."""
    return torch.optim.SGD(param_groups(model, config), lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay, nesterov=config.nesterov, fused=True)


def freeze_norm_scales(model: nn.Module) -> None:
    """Fix every BatchNorm scale at its initial 1 (airbench does): the next layer's weights can
    scale a channel as well. On our data it changed nothing measurable (BENCHMARKS.md)."""
    for norm in _batch_norms(model):
        if norm.weight is not None:
            norm.weight.requires_grad_(False)


def augmented(images: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """A batch as the network trains on it: zoomed in (`zoom`), shifted and mirrored (`augment`), a square blanked
    (`cutout`), recoloured (`jitter`), each only when asked for; batched on the images' device."""
    if config.zoom < 1:
        images = zoom_crop(images, generator, config.zoom)
    if config.augment:
        images = augment(images, generator, config.translate)
    if config.cutout:
        images = cutout(images, generator, config.cutout)
    if config.jitter:
        images = color_jitter(images, generator, config.jitter)
    return images


STOP_POLL = 16  # under DDP, ranks agree on a stop every this many steps (one tiny all-reduce)


def _train(config, dataset, device, data_config, on_event, should_stop, save_checkpoint, resume,
           world) -> TrainResult:
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # every batch has one of two shapes: time cuDNN's algorithms once
    torch.manual_seed(config.seed)
    normalize = normalizer(data_config, device, channels_last=config.channels_last)
    train_set, val_set = holdout(dataset.train, config.val_images) if config.val_images else (dataset.train, None)
    train_set, test_set = train_set.to(device), dataset.test.to(device)
    val_set = val_set.to(device) if val_set is not None else None
    memory_format = torch.channels_last if config.channels_last else torch.preserve_format
    raw_model = build_model(config.model, config.width, len(dataset.classes)).to(device, memory_format=memory_format)
    if config.freeze_norm_scales:
        freeze_norm_scales(raw_model)
    if resume is None:
        prepare_model(raw_model, normalize(prepare_sample(train_set.images)))
    else:
        raw_model.load_state_dict(resume.get("training_model", resume["model"]))
    average = WeightAverage(raw_model, config.ema) if config.ema else NoAverage(raw_model)
    if resume is not None and config.ema:
        average.load_state_dict({"weights": resume["model"], "updates": resume["average_updates"]})
    model = raw_model
    if world.distributed:  # gradients averaged across ranks; rank 0's weights broadcast at the start
        model = torch.nn.parallel.DistributedDataParallel(
            raw_model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        model = torch.compile(model)
    # entering even a disabled autocast costs a few microseconds a step, noticeable at batch 4
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if config.bf16 else contextlib.nullcontext()
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    optimizer = optimizer_for(raw_model, config)
    shuffle_gen = torch.Generator().manual_seed(config.seed)
    augment_gen = torch.Generator(device=device).manual_seed(config.seed + 1 + world.rank)

    n = len(train_set)
    steps_per_epoch = math.ceil(n / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    event_every = _event_every(steps_per_epoch, config.log_interval)
    start_epoch, start_step, running_loss, train_seconds = 0, 0, 0.0, 0.0
    if resume is not None:
        optimizer.load_state_dict(resume["optimizer"])
        start_epoch, start_step = resume["epoch"], resume["step"]
        running_loss, train_seconds = resume["running_loss"], resume["train_seconds"]
        shuffle_gen.set_state(resume["shuffle_state"])
        if world.is_main:
            augment_gen.set_state(resume["augment_state"])
        torch.set_rng_state(resume["torch_rng"])

    def checkpoint(epoch: int, step: int, epoch_shuffle_state: torch.Tensor) -> dict:
        # "model" is what gets used (the average when averaging); the live weights ride along to resume.
        averaged = {"training_model": raw_model.state_dict(), "average_updates": average.updates} if config.ema else {}
        return {"model": average.averaged.state_dict(), **averaged, "optimizer": optimizer.state_dict(),
                "epoch": epoch, "step": step, "running_loss": running_loss, "train_seconds": train_seconds,
                "shuffle_state": epoch_shuffle_state, "augment_state": augment_gen.get_state(),
                "torch_rng": torch.get_rng_state(), "config": config.to_dict()}

    on_event(events.status("running", pid=os.getpid(), device=device_name(device), epoch=start_epoch,
                           step=start_step, steps_per_epoch=steps_per_epoch, epochs=config.epochs, train_size=n,
                           test_size=len(test_set), resumed=resume is not None,
                           parameters=sum(p.numel() for p in model.parameters()), world_size=world.size))

    def stop_requested(step: int) -> bool:
        if not world.distributed:
            return should_stop()
        return step % STOP_POLL == 0 and world.any(should_stop(), device)

    evaluation = validation = None
    for epoch in range(start_epoch, config.epochs):
        epoch_shuffle_state = shuffle_gen.get_state()  # on resume: the state the epoch began with
        batches = torch.randperm(n, generator=shuffle_gen).to(device).split(config.batch_size)
        first = start_step if epoch == start_epoch else 0
        if first == 0:
            running_loss = 0.0
        window_loss = torch.zeros((), device=device)
        window_start, window_steps = time.perf_counter(), 0
        stopped = False
        model.train()
        for i in range(first, steps_per_epoch):
            if stop_requested(i):
                stopped = True
                break
            idx = world.shard(batches[i])
            images = augmented(train_set.images[idx], config, augment_gen)
            inputs, labels = normalize(images), train_set.labels[idx]
            lr = lr_at(config, epoch * steps_per_epoch + i, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)  # checkpoints from before lr_scale lack it

            optimizer.zero_grad()
            with autocast:
                logits = model(inputs)
                loss = criterion(logits, labels)
            loss.backward()
            optimizer.step()
            average.update()

            window_loss += loss.detach()  # summed on the device; read back only when reported
            window_steps += 1
            at_log = (i + 1) % config.log_interval == 0
            if at_log or (i + 1) % event_every == 0 or i + 1 == steps_per_epoch:
                window_sum = world.mean(window_loss).item()
                if not math.isfinite(window_sum):
                    raise Diverged(f"the loss became {window_sum} at epoch {epoch + 1}, step {i + 1}; "
                                   "lower the learning rate or use a schedule with warm-up")
                now = time.perf_counter()
                train_seconds += now - window_start
                running_loss += window_sum
                on_event(events.step(epoch=epoch + 1, step=i + 1, steps_per_epoch=steps_per_epoch,
                                     batch_size=config.batch_size, loss=window_sum / window_steps,
                                     lr=optimizer.param_groups[0]["lr"], train_seconds=train_seconds,
                                     images_per_s=window_steps * config.batch_size / max(now - window_start, 1e-9)))
                if at_log:
                    on_event(events.log(epoch=epoch + 1, step=i + 1, loss=running_loss / config.log_interval))
                    running_loss = 0.0
                window_loss.zero_()
                window_start, window_steps = time.perf_counter(), 0
        if stopped:  # keep the partial window so a resumed run prints the same running loss
            running_loss += world.mean(window_loss).item()
            train_seconds += time.perf_counter() - window_start
            save_checkpoint(checkpoint(epoch, i, epoch_shuffle_state))
            return TrainResult(average.averaged, "stopped", epoch, train_seconds)
        if world.is_main:  # the others go on and wait at the next step's gradient all-reduce
            evaluation = evaluate(average.averaged, test_set, normalize, tta=config.tta)
            figures = {}
            if val_set is not None:
                validation = evaluate(average.averaged, val_set, normalize, tta=config.tta)
                figures = {"val_accuracy": validation.accuracy,
                           "val_loss": losses(validation, val_set.labels).mean().item()}
            # the event follows the files it announces: a kill between the two leaves a checkpoint
            # nobody was told about, never an announced epoch with nothing to resume from
            save_checkpoint(checkpoint(epoch + 1, 0, shuffle_gen.get_state()))
            on_event(events.epoch_end(epoch=epoch + 1, test_accuracy=evaluation.accuracy,
                                      train_seconds=train_seconds, **figures))
            if not dataset.root.is_dir():  # training could go on from memory, but nothing could resume it
                raise DataError(f"The data directory {dataset.root} vanished during training (after epoch "
                                f"{epoch + 1}); the run stopped with that epoch's checkpoint saved. Restore the "
                                "data, then resume the run.")
    calibration = {}
    if validation is not None:
        calibration = calibration_figures(validation, val_set.labels, evaluation, test_set.labels)
        calibration.update(ood.figures(validation.logits, calibration["temperature"]))
    return TrainResult(average.averaged, "done", config.epochs, train_seconds, evaluation, validation, calibration)
