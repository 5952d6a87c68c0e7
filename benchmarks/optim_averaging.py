"""The training optimiser and weight average against the alternatives, per preset model, in one process.

    python -m benchmarks.optim_averaging [--rounds 7] [--steps 200]

For each preset's model and parameter groups (tutorial: Net at batch 4 on one thread, as
`_tiny_batches_on_cpu` runs it; fast: widenet w8; cpu-best: fastnet w16) it times

- one optimiser step: `torch.optim.SGD` with its default per-parameter loop (`foreach=False`, the
  tutorial's), `foreach=True` and `fused=True` (`core.train.optimizer_for`, what training uses),
  after checking all three give the same weights after 20 steps;
- one weight-average update: `core.averaging.WeightAverage.update` against
  `torch.optim.swa_utils.AveragedModel(use_buffers=True).update_parameters` with the same warm-up
  ramp as a `multi_avg_fn`, after checking both give the same averaged weights;
- one whole training step (forward, backward, step) at the preset's batch, for scale.

Variants run interleaved, `--rounds` times each, and the median of each variant's per-round medians
is printed with its ratio to ours (> 1: ours is faster).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn as nn
from torch.optim.swa_utils import AveragedModel

from core.averaging import WeightAverage
from core.config import PRESETS
from core.models import build_model
from core.train import optimizer_for, param_groups


def build(preset: str) -> tuple[nn.Module, object]:
    config = PRESETS[preset]
    torch.manual_seed(0)
    model = build_model(config.model, config.width, 10)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, config


OURS = "SGD fused=True (optimizer_for)"


def optimizers(model: nn.Module, config) -> dict[str, torch.optim.Optimizer]:
    args = dict(lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, nesterov=config.nesterov)
    return {
        OURS: optimizer_for(model, config),
        "SGD, per-parameter loop": torch.optim.SGD(param_groups(model, config), foreach=False, **args),
        "SGD foreach=True": torch.optim.SGD(param_groups(model, config), foreach=True, **args),
    }


def same_updates(preset: str) -> float:
    """The largest weight difference between the optimisers after 20 steps on the same gradients."""
    model, config = build(preset)
    copies = {}
    for name in optimizers(model, config):
        copies[name] = build(preset)[0]
    opts = {name: optimizers(copies[name], config)[name] for name in copies}
    gen = torch.Generator().manual_seed(1)
    for _ in range(20):
        # in the parameters' own memory layout, as autograd makes them (fused=True assumes it)
        grads = [torch.empty_like(p).copy_(torch.randn(p.shape, generator=gen)) for p in model.parameters()]
        for name, opt in opts.items():
            for p, g in zip(copies[name].parameters(), grads):
                p.grad = g.clone() if p.requires_grad else None
            opt.step()
    ref = list(copies[OURS].parameters())
    return max((a - b).abs().max().item() for m in copies.values() for a, b in zip(ref, m.parameters()))


def ramped_ema(decay: float):
    """WeightAverage's warm-up ramp as an AveragedModel multi_avg_fn (n_averaged counts earlier updates)."""
    def update(averaged: list, current: list, n_averaged: torch.Tensor) -> None:
        t = int(n_averaged)  # its first call only copies (our deepcopy); its n-th average is our update n
        d = min(decay, (1 + t) / (10 + t))
        if averaged[0].is_floating_point():  # WeightAverage leaves integers (num_batches_tracked) alone
            torch._foreach_lerp_(averaged, current, 1 - d)
    return update


def same_average(preset: str) -> float:
    model, config = build(preset)
    ours = WeightAverage(model, 0.99)
    theirs = AveragedModel(model, multi_avg_fn=ramped_ema(0.99), use_buffers=True)
    theirs.update_parameters(model)  # AveragedModel's first call copies the weights: the deepcopy in ours
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for _ in range(30):
            for t in model.state_dict().values():
                if t.is_floating_point():
                    t.add_(torch.randn(t.shape, generator=gen) * 0.01)
            ours.update()
            theirs.update_parameters(model)
    a, b = ours.averaged.state_dict(), theirs.module.state_dict()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def median_ms(fn, steps: int) -> float:
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def interleaved(variants: dict, rounds: int, steps: int) -> dict[str, float]:
    per_round = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            per_round[name].append(median_ms(fn, steps))
    return {name: statistics.median(v) for name, v in per_round.items()}


def training_step_ms(preset: str, steps: int) -> float:
    model, config = build(preset)
    images = torch.randn(config.batch_size, 3, 32, 32)
    if config.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (config.batch_size,))
    optimizer, criterion = optimizer_for(model, config), nn.CrossEntropyLoss()
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16)

    def step():
        optimizer.zero_grad()
        with autocast:
            loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
    return median_ms(step, steps)


def report(title: str, results: dict[str, float], ours: str) -> None:
    print(title)
    for name, ms in results.items():
        print(f"  {name:34s} {ms:8.3f} ms   ×{ms / results[ours]:.2f} of ours")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads")
    for preset in ("tutorial", "fast", "cpu-best"):
        torch.set_num_threads(1 if PRESETS[preset].batch_size <= 8 else threads)
        model, config = build(preset)
        params = sum(p.numel() for p in model.parameters())
        print(f"\n{preset}: {config.model} w{config.width}, {params:,} parameters, batch {config.batch_size}, "
              f"{torch.get_num_threads()} thread(s)")
        print(f"  same weights after 20 steps (max |diff|): {same_updates(preset):.2e}; "
              f"same average after 30 updates: {same_average(preset):.2e}")
        for p in model.parameters():
            p.grad = torch.randn_like(p)
        opts = optimizers(model, config)
        report("  optimiser step", interleaved({n: o.step for n, o in opts.items()}, args.rounds, args.steps), OURS)
        ours = WeightAverage(model, 0.99)
        theirs = AveragedModel(model, multi_avg_fn=ramped_ema(0.99), use_buffers=True)
        theirs.update_parameters(model)
        report("  weight-average update", interleaved({"core.averaging.WeightAverage": ours.update,
                                                       "AveragedModel(use_buffers=True)":
                                                           lambda: theirs.update_parameters(model)},
                                                      args.rounds, args.steps), "core.averaging.WeightAverage")
        print(f"  whole training step (ours): {training_step_ms(preset, max(20, args.steps // 10)):.2f} ms")
    torch.set_num_threads(threads)


if __name__ == "__main__":
    main()
