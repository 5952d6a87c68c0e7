"""Which photo augmentations pay: one recipe trained with and without random-resized ("zoom") crops and colour
jitter, each variant scored clean and under benchmarks/photos.py's shifts, in one invocation.

    python -m benchmarks.augmentations [--preset cpu-best] [--epochs N] [--seeds 1] [--data-dir data]

Every variant is the preset with `--val-images 2000` plus its augmentations, the same seeds. The choice is made
on the held-out training images (validation), never on the test set; the test set's clean accuracy is printed
beside it for the record. bf16 autocast is turned off on a CPU that only emulates it (slower there, same math).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from benchmarks import photos
from core.checkpoints import LoadedModel
from core.config import PRESETS, with_overrides
from core.data import DataConfig, holdout, load_dataset
from core.devices import choose_device, for_this_device
from core.train import train

VAL_IMAGES = 2000
VARIANTS = {
    "preset (flip + translate)": {},
    "+ zoom crops ≥ 35 % area": {"zoom": 0.35},
    "+ colour jitter 0.4": {"jitter": 0.4},
    "+ zoom ≥ 35 % + jitter 0.4": {"zoom": 0.35, "jitter": 0.4},
}


def scores(loaded: LoadedModel, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Accuracy (%) clean and under each of benchmarks/photos.py's shifts."""
    return {shift: 100 * photos.accuracy(loaded, apply(images), labels) for shift, apply in photos.SHIFTS.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu-best", choices=sorted(PRESETS))
    parser.add_argument("--epochs", type=int, help="override the preset's epochs")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    args = parser.parse_args()

    device = choose_device(args.device)
    data_config = DataConfig(data_dir=args.data_dir, download=False)
    dataset = load_dataset(data_config)
    _, validation = holdout(dataset.train, VAL_IMAGES)
    base = for_this_device(with_overrides(PRESETS[args.preset], epochs=args.epochs, val_images=VAL_IMAGES,
                                          device=device.type), device)
    print(f"{args.preset} ({base.model} w{base.width}, {base.epochs} epochs, bf16 {base.bf16}) on {device}, "
          f"{VAL_IMAGES} validation images, seeds 0..{args.seeds - 1}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads\n", flush=True)
    results = {}
    for name, changes in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        runs = []
        for seed in range(args.seeds):
            config = with_overrides(base, seed=seed, **changes)
            start = time.perf_counter()
            result = train(config, dataset, device, data_config=data_config)
            loaded = LoadedModel(result.model.cpu().eval(), config.model, dataset.classes, Path(name), tta=config.tta)
            runs.append({**scores(loaded, validation.images, validation.labels),
                         "test": 100 * result.evaluation.accuracy, "seconds": time.perf_counter() - start})
        r = results[name] = {key: statistics.mean(run[key] for run in runs) for key in runs[0]}
        r["mean under shifts"] = statistics.mean(r[shift] for shift in photos.SHIFTS if shift != "clean")
        print(f"{name:28s} validation: clean {r['clean']:5.1f} %, mean under shifts {r['mean under shifts']:5.1f} %   "
              f"test (clean) {r['test']:5.2f} %   {r['seconds']:5.0f} s", flush=True)

    names = list(results)
    print("\naccuracy on the validation images, %" + "".join(f"{n[:26]:>28s}" for n in names))
    for row in [*photos.SHIFTS, "mean under shifts"]:
        print(f"  {row:34s}" + "".join(f"{results[n][row]:>28.1f}" for n in names))
    print(f"  {'test set, clean':34s}" + "".join(f"{results[n]['test']:>28.2f}" for n in names))


if __name__ == "__main__":
    main()
