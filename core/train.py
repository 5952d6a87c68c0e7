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

from core import events, ood, outliers, snapshots
from core.averaging import NoAverage, WeightAverage
from core.calibration import calibration_figures
from core.config import TrainConfig
from core.data import DataConfig, DataError, Dataset, Split, holdout
from core.devices import device_name
from core.distributed import SINGLE, World
from core.evaluate import EvalResult, evaluate
from core.interpret import losses
from core.models import build_model, prepare_model
from core.transforms import augmented, normalizer


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


@contextlib.contextmanager
def cpu_settings(config: TrainConfig, device: torch.device):
    """The process's intra-op threads and oneDNN switch for this run, restored after it: tiny CPU batches run on
    one thread without oneDNN (`_tiny_batches_on_cpu`); `config.threads` wins when set. A training process owns
    these (the dashboard never trains in its own process), so nothing else sees them change."""
    tiny = _tiny_batches_on_cpu(config, device)
    mkldnn = torch.backends.mkldnn  # only this flag is touched (mkldnn.flags() takes others, differing by version)
    enabled, threads = mkldnn.enabled, torch.get_num_threads()
    mkldnn.enabled = enabled and not tiny
    torch.set_num_threads(config.threads or (1 if tiny else threads))
    try:
        yield
    finally:
        mkldnn.enabled = enabled
        torch.set_num_threads(threads)


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
    with cpu_settings(config, device):
        run = _Training(config, dataset, device, data_config, resume, world)
        on_event(run.status_event())
        for epoch in range(run.start_epoch, config.epochs):
            stopped_at = run.train_epoch(epoch, on_event, should_stop)
            if stopped_at is not None:
                save_checkpoint(run.stop(epoch, stopped_at))
                return TrainResult(run.average.averaged, "stopped", epoch, run.train_seconds)
            run.end_epoch(epoch, on_event, save_checkpoint)
        return run.result()


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


STOP_POLL = 16  # under DDP, ranks agree on a stop every this many steps (one tiny all-reduce)




class _Training:
    """One run's state between steps: the model (and its average), the optimiser, the generators and the
    counters a checkpoint carries. `__init__` sets up (or resumes), `train_epoch` is the step loop,
    `end_epoch` evaluates and checkpoints, `result` ends the run."""

    def __init__(self, config: TrainConfig, dataset: Dataset, device: torch.device, data_config: DataConfig,
                 resume: dict | None, world: World):
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # every batch has one of two shapes: time cuDNN's algorithms once
        torch.manual_seed(config.seed)
        self.config, self.dataset, self.device, self.world, self.resumed = config, dataset, device, world, resume
        self.normalize = normalizer(data_config, device, channels_last=config.channels_last)
        train_set, val_set = holdout(dataset.train, config.val_images) if config.val_images else (dataset.train, None)
        self.train_set, self.test_set = train_set.to(device), dataset.test.to(device)
        self.val_set = val_set.to(device) if val_set is not None else None
        self.raw_model = self._build_model(resume)
        self.average = WeightAverage(self.raw_model, config.ema) if config.ema else NoAverage(self.raw_model)
        if resume is not None and config.ema:
            self.average.load_state_dict({"weights": resume["model"], "updates": resume["average_updates"]})
        self.model = self.raw_model
        if world.distributed:  # gradients averaged across ranks; rank 0's weights broadcast at the start
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.raw_model, device_ids=[device.index] if device.type == "cuda" else None)
        if config.compile:
            self.model = torch.compile(self.model)
        # entering even a disabled autocast costs a few microseconds a step, noticeable at batch 4
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16) if config.bf16 else contextlib.nullcontext()
        self.criterion = (outliers.OutlierExposureLoss(config.outlier_exposure, config.label_smoothing)
                          if config.outlier_exposure else nn.CrossEntropyLoss(label_smoothing=config.label_smoothing))
        # the same pool for the same seed, so a resumed run draws the same outliers
        self.outliers = outliers.training_outliers(seed=config.seed).to(device) if config.outlier_exposure else None
        self.optimizer = optimizer_for(self.raw_model, config)
        self.shuffle_gen = torch.Generator().manual_seed(config.seed)
        self.augment_gen = torch.Generator(device=device).manual_seed(config.seed + 1 + world.rank)
        self.steps_per_epoch = math.ceil(len(self.train_set) / config.batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.event_every = _event_every(self.steps_per_epoch, config.log_interval)
        self.start_epoch, self.start_step, self.running_loss, self.train_seconds = 0, 0, 0.0, 0.0
        self.window_start = time.perf_counter()  # each epoch opens its own window; a snapshot moves it on
        self.evaluation = self.validation = None
        self._plan_snapshots(resume)
        if resume is not None:
            self._resume(resume)

    def _build_model(self, resume: dict | None) -> nn.Module:
        config = self.config
        memory_format = torch.channels_last if config.channels_last else torch.preserve_format
        model = build_model(config.model, config.width, len(self.dataset.classes)).to(self.device,
                                                                                        memory_format=memory_format)
        if config.freeze_norm_scales:
            freeze_norm_scales(model)
        if resume is None:
            prepare_model(model, self.normalize(prepare_sample(self.train_set.images)))
        else:
            model.load_state_dict(resume.get("training_model", resume["model"]))
        return model

    def _plan_snapshots(self, resume: dict | None) -> None:
        """The steps whose weights the main process keeps (core/snapshots.py), and those kept so far: the initial
        weights now, or on resume the checkpoint's."""
        count = snapshots.count_for(self.raw_model, self.config.snapshots) if self.world.is_main else 0
        self.snapshot_steps = set(snapshots.steps_for(self.total_steps, count))
        n = snapshots.SNAPSHOT_TEST_IMAGES
        self.snapshot_test = Split(self.test_set.images[:n], self.test_set.labels[:n])
        self.snapshots = snapshots.Snapshots(self.steps_per_epoch)
        if resume is not None and "snapshots" in resume:
            self.snapshots = snapshots.Snapshots.from_dict(resume["snapshots"])
        elif resume is None:
            self._snapshot_if_due(0)

    def _snapshot_if_due(self, step: int) -> None:
        """Keep the weights in use after `step` optimizer steps when a snapshot is due, with their accuracy; the
        time it takes is not training time."""
        if step not in self.snapshot_steps:
            return
        started, model = time.perf_counter(), self.average.averaged
        accuracy = evaluate(model, self.snapshot_test, self.normalize).accuracy
        self.snapshots.add(step, model.state_dict(), accuracy)
        self.window_start += time.perf_counter() - started

    def _resume(self, resume: dict) -> None:
        self.optimizer.load_state_dict(resume["optimizer"])
        self.start_epoch, self.start_step = resume["epoch"], resume["step"]
        self.running_loss, self.train_seconds = resume["running_loss"], resume["train_seconds"]
        self.shuffle_gen.set_state(resume["shuffle_state"])
        if self.world.is_main:
            self.augment_gen.set_state(resume["augment_state"])
        torch.set_rng_state(resume["torch_rng"])

    def status_event(self) -> dict:
        return events.status("running", pid=os.getpid(), device=device_name(self.device), epoch=self.start_epoch,
                             step=self.start_step, steps_per_epoch=self.steps_per_epoch, epochs=self.config.epochs,
                             train_size=len(self.train_set), test_size=len(self.test_set),
                             resumed=self.resumed is not None, world_size=self.world.size,
                             parameters=sum(p.numel() for p in self.model.parameters()))

    def checkpoint(self, epoch: int, step: int, epoch_shuffle_state: torch.Tensor) -> dict:
        # "model" is what gets used (the average when averaging); the live weights ride along to resume.
        average = self.average
        averaged = ({"training_model": self.raw_model.state_dict(), "average_updates": average.updates}
                    if self.config.ema else {})
        return {"model": average.averaged.state_dict(), **averaged, "optimizer": self.optimizer.state_dict(),
                "epoch": epoch, "step": step, "running_loss": self.running_loss, "train_seconds": self.train_seconds,
                "shuffle_state": epoch_shuffle_state, "augment_state": self.augment_gen.get_state(),
                "torch_rng": torch.get_rng_state(), "config": self.config.to_dict(),
                **({"snapshots": self.snapshots.to_dict()} if self.snapshots.steps else {})}

    def _stop_requested(self, step: int, should_stop: Callable[[], bool]) -> bool:
        if not self.world.distributed:
            return should_stop()
        return step % STOP_POLL == 0 and self.world.any(should_stop(), self.device)

    def train_epoch(self, epoch: int, on_event: Callback, should_stop: Callable[[], bool]) -> int | None:
        """The epoch's steps; the step a stop was honoured at, or None when the epoch ran to its end."""
        config, world, train_set = self.config, self.world, self.train_set
        model, optimizer, criterion = self.model, self.optimizer, self.criterion
        self.epoch_shuffle_state = self.shuffle_gen.get_state()  # on resume: the state the epoch began with
        batches = torch.randperm(len(train_set), generator=self.shuffle_gen).to(self.device).split(config.batch_size)
        first = self.start_step if epoch == self.start_epoch else 0
        if first == 0:
            self.running_loss = 0.0
        self._open_window()
        model.train()
        for i in range(first, self.steps_per_epoch):
            if self._stop_requested(i, should_stop):
                return i
            inputs, labels = self.batch(world.shard(batches[i]))
            lr = lr_at(config, epoch * self.steps_per_epoch + i, self.total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)  # checkpoints from before lr_scale lack it

            optimizer.zero_grad()
            with self.autocast:
                logits = model(inputs)
                loss = criterion(logits, labels)
            loss.backward()
            optimizer.step()
            self.average.update()
            self._snapshot_if_due(epoch * self.steps_per_epoch + i + 1)

            self.window_loss += loss.detach()  # summed on the device; read back only when reported
            self.window_steps += 1
            self._report(epoch, i, on_event)
        return None

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The network's inputs and labels for these training images, augmented, with outliers (label -1) drawn
        from the run's pool appended when it trains with outlier exposure."""
        images, labels = self.train_set.images[idx], self.train_set.labels[idx]
        if self.outliers is not None:
            gen = self.augment_gen
            pick = torch.randint(len(self.outliers), (outliers.count_for(len(idx)),), generator=gen,
                                 device=gen.device).to(self.device)
            images = torch.cat([images, self.outliers[pick]])
            labels = torch.cat([labels, labels.new_full((len(pick),), -1)])
        return self.normalize(augmented(images, self.config, self.augment_gen)), labels

    def _open_window(self) -> None:
        self.window_loss = torch.zeros((), device=self.device)
        self.window_start, self.window_steps = time.perf_counter(), 0

    def _report(self, epoch: int, i: int, on_event: Callback) -> None:
        """A curve point (and, every `log_interval` steps, the tutorial's printed line) when one is due."""
        config = self.config
        at_log = (i + 1) % config.log_interval == 0
        if not (at_log or (i + 1) % self.event_every == 0 or i + 1 == self.steps_per_epoch):
            return
        window_sum = self.world.mean(self.window_loss).item()
        if not math.isfinite(window_sum):
            raise Diverged(f"the loss became {window_sum} at epoch {epoch + 1}, step {i + 1}; "
                           "lower the learning rate or use a schedule with warm-up")
        now = time.perf_counter()
        self.train_seconds += now - self.window_start
        self.running_loss += window_sum
        on_event(events.step(epoch=epoch + 1, step=i + 1, steps_per_epoch=self.steps_per_epoch,
                             batch_size=config.batch_size, loss=window_sum / self.window_steps,
                             lr=self.optimizer.param_groups[0]["lr"], train_seconds=self.train_seconds,
                             images_per_s=self.window_steps * config.batch_size / max(now - self.window_start, 1e-9)))
        if at_log:
            on_event(events.log(epoch=epoch + 1, step=i + 1, loss=self.running_loss / config.log_interval))
            self.running_loss = 0.0
        self._open_window()

    def stop(self, epoch: int, step: int) -> dict:
        """The checkpoint of a stop honoured before `step`: the partial window is kept so a resumed run prints
        the same running loss."""
        self.running_loss += self.world.mean(self.window_loss).item()
        self.train_seconds += time.perf_counter() - self.window_start
        return self.checkpoint(epoch, step, self.epoch_shuffle_state)

    def end_epoch(self, epoch: int, on_event: Callback, save_checkpoint: Callable[[dict], None]) -> None:
        if not self.world.is_main:  # the others go on and wait at the next step's gradient all-reduce
            return
        model = self.average.averaged
        self.evaluation = evaluate(model, self.test_set, self.normalize, tta=self.config.tta)
        figures = {}
        if self.val_set is not None:
            self.validation = evaluate(model, self.val_set, self.normalize, tta=self.config.tta)
            figures = {"val_accuracy": self.validation.accuracy,
                       "val_loss": losses(self.validation, self.val_set.labels).mean().item()}
        # the event follows the files it announces: a kill between the two leaves a checkpoint
        # nobody was told about, never an announced epoch with nothing to resume from
        save_checkpoint(self.checkpoint(epoch + 1, 0, self.shuffle_gen.get_state()))
        on_event(events.epoch_end(epoch=epoch + 1, test_accuracy=self.evaluation.accuracy,
                                  train_seconds=self.train_seconds, **figures))
        if not self.dataset.root.is_dir():  # training could go on from memory, but nothing could resume it
            raise DataError(f"The data directory {self.dataset.root} vanished during training (after epoch "
                            f"{epoch + 1}); the run stopped with that epoch's checkpoint saved. Restore the "
                            "data, then resume the run.")

    def result(self) -> TrainResult:
        calibration = {}
        if self.validation is not None:
            calibration = calibration_figures(self.validation, self.val_set.labels, self.evaluation,
                                              self.test_set.labels)
            calibration.update(ood.figures(self.validation.logits, calibration["temperature"]))
        return TrainResult(self.average.averaged, "done", self.config.epochs, self.train_seconds, self.evaluation,
                           self.validation, calibration)
