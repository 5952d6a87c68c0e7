"""The data: find a source, decode it once into uint8 tensors, cache them, hold out a validation split.

Sources (detected from what is in the data directory or one folder below it):
  * torchvision's CIFAR-10 (`cifar-10-batches-py/`), downloaded when nothing is found;
  * any class-per-folder tree `train/<class>/*` + `test/<class>/*` (class names from the folders).

Per-sample PIL transforms are what make the tutorial slow, so images are decoded once into
`[N,3,32,32]` uint8 and every later step (normalise, augment: core/transforms.py) runs batched on the device.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from core.files import atomic_write
from core.images import ImageError, load_for_model

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm"}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# The tutorial prints its own short names; used only for its printed lines.
TUTORIAL_NAMES = {"airplane": "plane", "automobile": "car"}
TORCHVISION_FOLDER = "cifar-10-batches-py"
CACHE_VERSION = 1


class DataError(RuntimeError):
    """No usable data; the message names what was tried and how to fix it (shown as is in the UI)."""


@dataclass(frozen=True)
class DataConfig:
    data_dir: str | None = None  # None: $CIFAR_DATA, else ./data
    download: bool = True  # fetch torchvision's CIFAR-10 when no data is found
    cache_dir: str | None = None  # None: <data_dir>/.cache, else ~/.cache/cifar-dashboard
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)  # the tutorial's Normalize
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # [N,3,32,32] uint8
    labels: torch.Tensor  # [N] int64

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device | str) -> "Split":
        return Split(self.images.to(device), self.labels.to(device))

    def class_counts(self, num_classes: int) -> list[int]:
        return torch.bincount(self.labels.cpu(), minlength=num_classes).tolist()


HOLDOUT_SEED = 0  # one slice for every run, whatever its training seed: their validation figures compare


def first_of_each_class(split: Split, n: int) -> Split:
    """The first `n` images of each class, class by class: the same images of an ordered copy (the JPEG tree)
    and of the original, and a balanced subset when the whole split is more than a figure needs."""
    idx = first_indices(split.labels, n)
    return Split(split.images[idx], split.labels[idx])


def first_indices(labels: torch.Tensor, n: int) -> torch.Tensor:
    """Where `first_of_each_class` takes its images from: the first `n` indices of each class, class by class."""
    return torch.cat([(labels == c).nonzero().flatten()[:n] for c in labels.unique()])


def holdout(split: Split, n: int) -> tuple[Split, Split]:
    """(the rest, `n` held-out images): n // k images of each of the k classes, plus one more from each of
    the first n % k, drawn by a fixed generator, so the same `n` always holds out the same images (and a
    resumed run trains on the same rest). Each class keeps at least one training image."""
    classes = split.labels.unique().tolist()
    gen = torch.Generator().manual_seed(HOLDOUT_SEED)
    held = []
    for j, c in enumerate(classes):
        members = (split.labels == c).nonzero().flatten()
        want = n // len(classes) + (j < n % len(classes))
        if want >= len(members):
            raise DataError(f"Cannot hold out {n} validation images: class {c} has only {len(members)} training "
                            f"images and needs to keep one; choose at most {len(classes) * (len(members) - 1)}.")
        held.append(members[torch.randperm(len(members), generator=gen)[:want]])
    held = torch.cat(held).sort().values
    rest = torch.ones(len(split), dtype=torch.bool)
    rest[held] = False
    return Split(split.images[rest], split.labels[rest]), Split(split.images[held], split.labels[held])


@dataclass(frozen=True)
class Dataset:
    train: Split
    test: Split
    classes: tuple[str, ...]
    kind: str  # "torchvision" | "folder"
    root: Path
    from_cache: bool = field(default=False, compare=False)

    @property
    def source_name(self) -> str:
        """What the images are, said plainly: the original files, or someone's folder tree."""
        return "CIFAR-10, original files" if self.kind == "torchvision" else "class-per-folder images"

    @property
    def description(self) -> str:
        return f"{self.source_name} at {self.root}"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Explicit argument, else $CIFAR_DATA, else ./data."""
    return Path(data_dir or os.environ.get("CIFAR_DATA") or "data").expanduser()


def _is_folder_tree(path: Path) -> bool:
    return all((path / split).is_dir() and any(p.is_dir() for p in (path / split).iterdir())
               for split in ("train", "test"))


def find_source(root: Path) -> tuple[str, Path] | None:
    """(kind, path) of the data in `root` or one folder below it, or None."""
    if not root.is_dir():
        return None
    candidates = [root] + sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for path in candidates:
        if (path / TORCHVISION_FOLDER / "data_batch_1").is_file():
            return "torchvision", path
        if _is_folder_tree(path):
            return "folder", path
    return None


def accepted_layouts(root: Path) -> str:
    return (f"Accepted layouts: torchvision's CIFAR-10 ({root}/{TORCHVISION_FOLDER}/), or an image tree "
            f"{root}/train/<class>/*.jpg and {root}/test/<class>/*.jpg (JPEG, PNG, ...; one folder per class). "
            "Point at your data with --data-dir DIR or the CIFAR_DATA environment variable.")


def load_dataset(config: DataConfig = DataConfig()) -> Dataset:
    """Find, decode (once; cached on disk) and return the dataset as uint8 tensors on the CPU."""
    root = resolve_data_dir(config.data_dir)
    found = find_source(root)
    if found is None:
        if not config.download:
            raise DataError(f"No data found in {root.resolve()} (looked there and one folder below). "
                            + accepted_layouts(root))
        download_cifar10(root)
        found = ("torchvision", root)
    kind, path = found
    cache_file = cache_dir(config, root) / f"{kind}-{_fingerprint(kind, path)}.pt"
    if cache_file.is_file():
        try:
            blob = torch.load(cache_file, weights_only=True)
            return _from_blob(blob, kind, path, from_cache=True)
        except Exception:  # a stale or damaged cache is rebuilt, never trusted
            cache_file.unlink(missing_ok=True)
    dataset = _load_torchvision(path) if kind == "torchvision" else _load_folder(path)
    _write_cache(cache_file, dataset)
    return dataset


def download_cifar10(root: Path, progress: Callable[[int, int], None] | None = None) -> None:
    """torchvision's CIFAR-10 archive into `root`, checked and extracted; `progress(done, total)` in bytes.

    Offline or failed downloads become a DataError that says what to do instead.
    """
    import urllib.request

    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity, extract_archive

    archive = root / CIFAR10.filename
    partial = archive.with_name(archive.name + ".part")
    try:
        root.mkdir(parents=True, exist_ok=True)
        if not check_integrity(str(archive), CIFAR10.tgz_md5):
            with urllib.request.urlopen(CIFAR10.url, timeout=30) as response, open(partial, "wb") as out:
                total, done = int(response.headers.get("Content-Length") or 0), 0
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
            os.replace(partial, archive)
            if not check_integrity(str(archive), CIFAR10.tgz_md5):
                archive.unlink()
                raise OSError("the downloaded archive is corrupt (checksum mismatch); try again")
        extract_archive(str(archive), str(root))
    except Exception as exc:  # URLError, HTTPError, OSError, tarfile errors ...
        partial.unlink(missing_ok=True)
        raise DataError(f"No data found in {root.resolve()} (looked there and one folder below), and "
                        f"downloading CIFAR-10 there failed: {_download_failure(exc)}. Offline, extract "
                        f"the original archive there (tar -xzf cifar-10-python.tar.gz -C {root}) or use "
                        "--data-dir. " + accepted_layouts(root)) from None


def _download_failure(exc: Exception) -> str:
    """Why a download failed, in words: urllib's own text is `<urlopen error [Errno -3] ...>`."""
    import urllib.error

    if isinstance(exc, urllib.error.HTTPError):
        return f"the server answered {exc.code} {exc.reason}"
    if isinstance(exc, (urllib.error.URLError, TimeoutError, ConnectionError)):
        return "no network (the dataset's host could not be reached)"
    return str(exc) or type(exc).__name__


def _load_torchvision(path: Path) -> Dataset:
    import torchvision

    splits = []
    for train in (True, False):
        ds = torchvision.datasets.CIFAR10(root=str(path), train=train, download=False)
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # HWC -> CHW
        splits.append(Split(images, torch.tensor(ds.targets, dtype=torch.int64)))
    return Dataset(splits[0], splits[1], tuple(ds.classes), "torchvision", path)


def image_files(folder: Path) -> list[Path]:
    """The image files directly in `folder`, by name (hidden ones left out)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def _decode(path: Path) -> torch.Tensor:
    try:
        return load_for_model(path)
    except ImageError as exc:
        raise DataError(f"{exc} Remove or replace that file and load again.") from None


def _load_folder(path: Path) -> Dataset:
    classes = tuple(sorted(p.name for p in (path / "train").iterdir() if p.is_dir() and not p.name.startswith(".")))
    splits = []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # PIL decodes without the GIL
        for split in ("train", "test"):
            files, labels = [], []
            for label, name in enumerate(classes):
                folder = path / split / name
                found = image_files(folder) if folder.is_dir() else []
                if split == "train" and not found:
                    raise DataError(f"Class folder {folder} holds no images; add some or remove the folder.")
                files += found
                labels += [label] * len(found)
            extra = {p.name for p in (path / split).iterdir() if p.is_dir()} - set(classes)
            if extra:
                raise DataError(f"{path / split} has class folders missing from train/: {sorted(extra)}; "
                                "every class needs training images.")
            if not files:
                raise DataError(f"{path / split} holds no images. " + accepted_layouts(path))
            images = torch.stack(list(pool.map(_decode, files, chunksize=256)))
            splits.append(Split(images, torch.tensor(labels, dtype=torch.int64)))
    return Dataset(splits[0], splits[1], classes, "folder", path)


def _fingerprint(kind: str, path: Path) -> str:
    """Changes whenever a file of the source is added, removed, resized or touched."""
    h = hashlib.sha1(f"v{CACHE_VERSION}:{kind}:{path.resolve()}".encode())
    top = path / TORCHVISION_FOLDER if kind == "torchvision" else path
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            st = os.stat(os.path.join(dirpath, name))
            h.update(f"{dirpath}/{name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def cache_dir(config: DataConfig, root: Path) -> Path:
    """Where decoded data (and remembered evaluations, core/evaluations.py) are kept for the data in `root`."""
    if config.cache_dir:
        return Path(config.cache_dir)
    local = root / ".cache"
    if os.access(root, os.W_OK) or os.access(local, os.W_OK):
        return local
    return Path.home() / ".cache" / "cifar-dashboard"


def _write_cache(cache_file: Path, dataset: Dataset) -> None:
    blob = {"train_images": dataset.train.images, "train_labels": dataset.train.labels,
            "test_images": dataset.test.images, "test_labels": dataset.test.labels,
            "classes": list(dataset.classes)}
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(cache_file, lambda f: torch.save(blob, f))
    except OSError:
        pass  # a read-only place only costs the next load its decode time


def _from_blob(blob: dict, kind: str, path: Path, from_cache: bool) -> Dataset:
    return Dataset(Split(blob["train_images"], blob["train_labels"]), Split(blob["test_images"], blob["test_labels"]),
                   tuple(blob["classes"]), kind, path, from_cache=from_cache)
