"""The training loop: one config, one device, progress out through a callback.

The step reads like the tutorial's; everything that differs (data resident on the device,
batched normalisation, fewer host syncs) happens around it, never inside it as a branch.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import asdict, dataclass, fields, replace
from typing import Callable

import torch
import torch.nn as nn

from core.averaging import NoAverage, WeightAverage
from core.data import DataConfig, DataError, Dataset, augment, normalizer
from core.distributed import SINGLE, World
from core.evaluate import TTA, EvalResult, evaluate
from core.models import MODELS, build_model, prepare_model
from core.optim import SGD

SCHEDULES = ("constant", "cosine", "onecycle")
DEVICES = ("auto", "cpu", "cuda", "mps")
ONECYCLE_WARMUP = 0.2  # fraction of all steps spent rising to the peak lr


class ConfigError(ValueError):
    """Invalid training settings; `problems` maps each field to what is wrong with it."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


class Diverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainConfig:
    model: str = "net"
    width: int = 6  # the tutorial's exercise: conv1's outputs = conv2's inputs
    epochs: int = 2
    batch_size: int = 4
    lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    augment: bool = False  # random translation (see `translate`) + horizontal flip, on the device
    device: str = "auto"
    seed: int = 0
    log_interval: int = 2000  # mini-batches per printed running loss, as the tutorial
    threads: int = 0  # CPU threads; 0 lets torch decide
    # Beyond the tutorial (issue: Speed). Every default keeps the tutorial's behaviour.
    nesterov: bool = False
    label_smoothing: float = 0.0
    decay_weights_only: bool = False  # weight decay on conv/linear weights, not on biases and norms
    ema: float = 0.0  # decay of a moving average of the weights, evaluated and saved; 0 = off
    tta: str = "none"  # test-time augmentation when evaluating: none, flip, flip-translate
    channels_last: bool = False
    bf16: bool = False  # bfloat16 autocast for the forward pass and loss
    compile: bool = False  # torch.compile the model for training
    translate: int = 4  # with augment: shift by up to this many pixels (a crop of the zero-padded image)
    norm_lr_scale: float = 1.0  # learning-rate multiplier for BatchNorm's parameters
    freeze_norm_scales: bool = False  # BatchNorm scales stay 1; only their biases learn

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
        checks = [
            ("model", self.model in MODELS, f"unknown model; choose one of {sorted(MODELS)}"),
            ("width", 1 <= self.width <= 512, "must be between 1 and 512"),
            ("epochs", 1 <= self.epochs <= 1000, "must be between 1 and 1000"),
            ("batch_size", 1 <= self.batch_size <= 65536, "must be between 1 and 65536"),
            ("lr", math.isfinite(self.lr) and 0 < self.lr <= 10, "must be above 0 and at most 10"),
            ("momentum", math.isfinite(self.momentum) and 0 <= self.momentum < 1, "must be in [0, 1)"),
            ("weight_decay", math.isfinite(self.weight_decay) and 0 <= self.weight_decay <= 1, "must be in [0, 1]"),
            ("schedule", self.schedule in SCHEDULES, f"choose one of {list(SCHEDULES)}"),
            ("device", self.device in DEVICES or self.device.startswith("cuda:"), f"choose one of {list(DEVICES)}"),
            ("seed", 0 <= self.seed < 2**63, "must be a non-negative integer"),
            ("log_interval", 1 <= self.log_interval <= 10**9, "must be at least 1"),
            ("threads", 0 <= self.threads <= 1024, "must be between 0 (automatic) and 1024"),
            ("label_smoothing", math.isfinite(self.label_smoothing) and 0 <= self.label_smoothing < 1,
             "must be in [0, 1)"),
            ("ema", math.isfinite(self.ema) and 0 <= self.ema < 1, "must be in [0, 1) (0 turns averaging off)"),
            ("tta", self.tta in TTA, f"choose one of {list(TTA)}"),
            ("nesterov", not (self.nesterov and self.momentum == 0), "needs a momentum above 0"),
            ("translate", 0 <= self.translate <= 8, "must be between 0 and 8 pixels"),
            ("norm_lr_scale", math.isfinite(self.norm_lr_scale) and 0 < self.norm_lr_scale <= 1000,
             "must be above 0 and at most 1000"),
        ]
        return {name: message for name, ok, message in checks if not ok}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError({k: "unknown setting" for k in unknown})
        return cls(**values)


# What the speed presets share: Nesterov SGD on a one-cycle schedule with label smoothing, weight
# decay on weights only, channels-last convolutions (faster on CPUs too) and flip test-time views.
_SPEED = dict(schedule="onecycle", momentum=0.9, nesterov=True, label_smoothing=0.1, weight_decay=5e-4,
              decay_weights_only=True, channels_last=True, tta="flip", log_interval=100)
# bf16 autocast halves the CPU presets' time on CPUs with native bf16 (AVX-512 BF16, AMX); the CLI says
# when a CPU lacks it (emulated bf16 is slower: pass --no-bf16 there). Figures: BENCHMARKS.md.

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
}
PRESET_DESCRIPTIONS = {
    "tutorial": "The tutorial exactly: Net, batch 4, SGD lr 0.001 momentum 0.9, 2 epochs (~54 %).",
    "fast": "Beyond the tutorial's accuracy in a few seconds on a CPU: widenet w8, one epoch of batch 96, "
            "one-cycle, bf16 (~66 %).",
    "cpu-best": "Best accuracy in the tutorial's CPU time: airbench-style fastnet w16, 6 epochs, augmentation, "
                "weight averaging, bf16 (~86 %).",
    "gpu": "airbench-style for one GPU: fastnet w64, bf16, 15 epochs of batch 1024, flip-translate TTA (~5 s on an "
           "H200; its accuracy on the original CIFAR-10 is not yet measured on a GPU).",
}


def choose_device(requested: str = "auto") -> torch.device:
    """cuda, then mps, then cpu; an explicit choice wins but must exist."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError({"device": "CUDA was requested but no CUDA GPU is visible; use auto or cpu"})
    if requested == "mps" and not torch.backends.mps.is_available():
        raise ConfigError({"device": "MPS was requested but is not available here; use auto or cpu"})
    return torch.device(requested)


def slow_bf16(config: TrainConfig, device: torch.device) -> bool:
    """bf16 asked for on a CPU that only emulates it (no AVX-512 BF16 or AMX): slower than fp32 there."""
    return config.bf16 and device.type == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    return {"mps": "Apple GPU (MPS)", "cpu": "CPU"}.get(device.type, str(device))


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


def freeze_norm_scales(model: nn.Module) -> None:
    """Fix every BatchNorm scale at its initial 1 (airbench does): the next layer's weights can
    scale a channel as well. On our data it changed nothing measurable (BENCHMARKS.md)."""
    for norm in _batch_norms(model):
        if norm.weight is not None:
            norm.weight.requires_grad_(False)


STOP_POLL = 16  # under DDP, ranks agree on a stop every this many steps (one tiny all-reduce)


def _train(config, dataset, device, data_config, on_event, should_stop, save_checkpoint, resume,
           world) -> TrainResult:
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # every batch has one of two shapes: time cuDNN's algorithms once
    torch.manual_seed(config.seed)
    normalize = normalizer(data_config, device, channels_last=config.channels_last)
    train_set, test_set = dataset.train.to(device), dataset.test.to(device)
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
    optimizer = SGD(param_groups(raw_model, config), lr=config.lr, momentum=config.momentum,
                    weight_decay=config.weight_decay, nesterov=config.nesterov)
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

    on_event({"type": "status", "status": "running", "pid": os.getpid(), "device": device_name(device),
              "epoch": start_epoch, "step": start_step, "steps_per_epoch": steps_per_epoch, "epochs": config.epochs,
              "train_size": n, "test_size": len(test_set), "resumed": resume is not None,
              "parameters": sum(p.numel() for p in model.parameters()), "world_size": world.size})

    def stop_requested(step: int) -> bool:
        if not world.distributed:
            return should_stop()
        return step % STOP_POLL == 0 and world.any(should_stop(), device)

    evaluation = None
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
            images = augment(train_set.images[idx], augment_gen, config.translate) if config.augment \
                else train_set.images[idx]
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
                on_event({"type": "step", "epoch": epoch + 1, "step": i + 1,
                          "global_step": epoch * steps_per_epoch + i + 1,
                          "images_seen": (epoch * steps_per_epoch + i + 1) * config.batch_size,
                          "loss": window_sum / window_steps, "lr": optimizer.param_groups[0]["lr"],
                          "images_per_s": window_steps * config.batch_size / max(now - window_start, 1e-9),
                          "train_seconds": train_seconds})
                if at_log:
                    on_event({"type": "log", "epoch": epoch + 1, "step": i + 1,
                              "loss": running_loss / config.log_interval})
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
            # the event follows the files it announces: a kill between the two leaves a checkpoint
            # nobody was told about, never an announced epoch with nothing to resume from
            save_checkpoint(checkpoint(epoch + 1, 0, shuffle_gen.get_state()))
            on_event({"type": "epoch", "epoch": epoch + 1, "test_accuracy": evaluation.accuracy,
                      "train_seconds": train_seconds})
            if not dataset.root.is_dir():  # training could go on from memory, but nothing could resume it
                raise DataError(f"The data directory {dataset.root} vanished during training (after epoch "
                                f"{epoch + 1}); the run stopped with that epoch's checkpoint saved. Restore the "
                                "data, then resume the run.")
    return TrainResult(average.averaged, "done", config.epochs, train_seconds, evaluation)


def with_overrides(config: TrainConfig, **overrides) -> TrainConfig:
    """`config` with the given non-None fields replaced (validated like any config)."""
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
