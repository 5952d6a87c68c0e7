"""CIFAR-10 small enough to travel to a GPU machine, pixel for pixel: lossless WebP mosaics of 10,000 images each.

A lease's working tree is capped at 64 MiB a call and the original archive is 163 MiB; lossless WebP of the images
tiled 100 x 100 is 56 % of the raw pixels (~100 MB for all 60,000), so the mosaics travel in two calls.

    python -m scripts.lease_data pack --data-dir data --out .lease/cifar          # here: 6 mosaics + labels.json
    python -m scripts.lease_data unpack --src DIR [DIR ...] --out /tmp/cifar      # there: train/<class>/*.png, test/...

`unpack` writes the class-per-folder tree that core.data loads (kind "folder"). Files are named by their index in
the original split, so each class keeps the original order within it and `holdout` holds out the same images as
from torchvision's files; `verify` checks the tree against the original, image by image.
"""
from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

TILES = 100  # a mosaic is TILES x TILES images of 32 x 32


def _mosaic(images: np.ndarray) -> np.ndarray:
    """[n,3,32,32] uint8 (n <= TILES²) -> one [rows*32, TILES*32, 3] image; the last row padded with black."""
    rows = -(-len(images) // TILES)
    padded = np.zeros((rows * TILES, 3, 32, 32), np.uint8)
    padded[: len(images)] = images
    return padded.reshape(rows, TILES, 3, 32, 32).transpose(0, 3, 1, 4, 2).reshape(rows * 32, TILES * 32, 3)


def _tiles(mosaic: np.ndarray, n: int) -> np.ndarray:
    rows = mosaic.shape[0] // 32
    return mosaic.reshape(rows, 32, TILES, 32, 3).transpose(0, 2, 4, 1, 3).reshape(-1, 3, 32, 32)[:n]


def _save(args: tuple[np.ndarray, Path]) -> None:
    images, path = args
    Image.fromarray(_mosaic(images)).save(path, "WEBP", lossless=True, quality=100, method=6)


def pack(data_dir: str, out: Path) -> None:
    from core.data import DataConfig, load_dataset

    dataset = load_dataset(DataConfig(data_dir=data_dir, download=False))
    out.mkdir(parents=True, exist_ok=True)
    jobs, meta = [], {"classes": list(dataset.classes), "parts": []}
    for name, split in (("train", dataset.train), ("test", dataset.test)):
        for start in range(0, len(split), TILES * TILES):
            images = split.images[start:start + TILES * TILES].numpy()
            file = f"{name}-{start // (TILES * TILES)}.webp"
            jobs.append((images, out / file))
            meta["parts"].append({"file": file, "split": name, "start": start, "count": len(images),
                                  "labels": split.labels[start:start + len(images)].tolist()})
    with ProcessPoolExecutor() as pool:
        list(pool.map(_save, jobs))
    (out / "labels.json").write_text(json.dumps(meta))


def unpack(sources: list[Path], out: Path) -> None:
    meta = json.loads(next(s / "labels.json" for s in sources if (s / "labels.json").is_file()).read_text())
    found = {p.name: p for s in sources for p in s.glob("*.webp")}
    missing = [part["file"] for part in meta["parts"] if part["file"] not in found]
    if missing:
        raise SystemExit(f"error: mosaics missing from {[str(s) for s in sources]}: {missing}")
    for split in ("train", "test"):
        for name in meta["classes"]:
            (out / split / name).mkdir(parents=True, exist_ok=True)

    def write(part: dict) -> None:
        images = _tiles(np.asarray(Image.open(found[part["file"]]).convert("RGB")), part["count"])
        for i, (image, label) in enumerate(zip(images, part["labels"])):
            path = out / part["split"] / meta["classes"][label] / f"{part['start'] + i:05d}.png"
            Image.fromarray(image.transpose(1, 2, 0)).save(path, compress_level=1)

    with ThreadPoolExecutor() as pool:
        list(pool.map(write, meta["parts"]))


def verify(data_dir: str, tree: Path) -> None:
    """Every image of the tree equals the original's, in the original's within-class order."""
    import torch

    from core.data import DataConfig, load_dataset

    original = load_dataset(DataConfig(data_dir=data_dir, download=False))
    rebuilt = load_dataset(DataConfig(data_dir=str(tree), download=False))
    for name in ("train", "test"):
        a, b = getattr(original, name), getattr(rebuilt, name)
        for c in range(len(original.classes)):
            assert torch.equal(a.images[a.labels == c], b.images[b.labels == c]), (name, c)
    print(f"identical: {len(original.train)} training and {len(original.test)} test images, class by class")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--out", type=Path, required=True)
    u = sub.add_parser("unpack")
    u.add_argument("--src", type=Path, nargs="+", required=True)
    u.add_argument("--out", type=Path, required=True)
    v = sub.add_parser("verify")
    v.add_argument("--data-dir", default="data")
    v.add_argument("--tree", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.data_dir, args.out)
    elif args.command == "unpack":
        unpack(args.src, args.out)
    else:
        verify(args.data_dir, args.tree)


if __name__ == "__main__":
    main()
