"""Teaching a new class (core/teach.py) on the shipped model: the whole `python -m core teach` process for 10 and 50
photos against `python -m core predict` of one photo (start-up and loading, the floor of any command) in the same
script, and the forgetting meter with and without CIFAR-10 mixed in, for a class unlike the ten (crops of a brick
wall: every fifth, from the wall's right half, held out) and a mixed bag (the 18 photos in photos/).

    python -m benchmarks.teach
"""
from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import CLI, ROOT, real_cifar_dir
from core.checkpoints import load_model
from core.data import DataConfig, load_dataset
from core.images import load_for_model
from core.teach import TeachConfig, reference, teach

SHIPPED = ROOT / "models" / "default.pth"


def brick_crops(folder: Path, count: int) -> list[Path]:
    """`count` 96-pixel crops of photos/brick.jpg; every fifth (teaching's held-out ones) from the wall's right half,
    which the others avoid (the tests use them too)."""
    wall = Image.open(ROOT / "photos" / "brick.jpg").convert("RGB")
    w, h = wall.size
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        left = int(rng.integers(0, w // 2 - 96)) + (w // 2 if i % 5 == 4 else 0)
        top = int(rng.integers(0, h - 96))
        paths.append(folder / f"brick-{i:02d}.png")
        wall.crop((left, top, left + 96, top + 96)).save(paths[-1])
    return paths


def timed(args: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run([*CLI, *args], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - began


def main() -> None:
    data = real_cifar_dir()
    if data is None:
        raise SystemExit("No CIFAR-10 here: extract ../shared/data/cifar-10-python.tar.gz into ./data")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        predict = timed(["predict", str(SHIPPED), str(ROOT / "photos" / "chelsea.jpg")])
        print("| photos | whole `teach` process | against `predict` of one photo |\n| --- | --- | --- |")
        for count in (10, 50):
            folder = tmp / f"bricks{count}"
            folder.mkdir()
            brick_crops(folder, count)
            seconds = timed(["teach", str(SHIPPED), str(folder), "--class-name", "brick", "--run-dir",
                             str(tmp / f"run{count}"), "--data-dir", str(data)])
            print(f"| {count} | {seconds:.1f} s | {seconds / predict:.1f}× ({predict:.1f} s) |")
        base = load_model(SHIPPED)
        ref = reference(base, load_dataset(DataConfig(data_dir=str(data), download=False)))
        bag = sorted((ROOT / "photos").glob("*.jpg"))
        sets = {"brick wall, 10 crops": brick_crops(tmp / "bricks10", 10)[:10],
                "brick wall, 50 crops": sorted((tmp / "bricks50").iterdir()), "photos/ (18, a mixed bag)": bag}
        print("\n| new class | held out recognised | the ten before | after, mixed | after, photos alone |")
        print("| --- | --- | --- | --- | --- |")
        for label, paths in sets.items():
            taught = teach(base, [(p.name, load_for_model(p)) for p in paths], ref, TeachConfig("new"))
            held = [a for a in taught.answers if a["held_out"]]
            f = taught.forgetting
            print(f"| {label} | {sum(a['prediction'] == 'new' for a in held)} of {len(held)} | "
                  f"{100 * f['before']:.1f} % | {100 * f['after_mixed']:.1f} % | {100 * f['after_alone']:.1f} % |")


if __name__ == "__main__":
    main()
