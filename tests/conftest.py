import os
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # shared helpers (image_zoo) for tests in sub-folders

CLASSES = ("blue", "green", "red")


def make_tree(root: Path, train_per_class: int = 12, test_per_class: int = 4, size: int = 32, seed: int = 0,
              suffix: str = ".png") -> Path:
    """A tiny class-per-folder tree whose classes are learnable: each is tinted its own colour."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for c, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = rng.integers(0, 120, (size, size, 3))
                pixels[..., c] += 120
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i:04d}{suffix}")
    return root


@pytest.fixture
def tiny_tree(tmp_path) -> Path:
    return make_tree(tmp_path / "tiny")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """Tests never read the developer's data dir or write caches outside tmp."""
    monkeypatch.delenv("CIFAR_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def real_cifar_dir() -> Path | None:
    """The offline CIFAR-10 copy extracted by .ci/run (or CIFAR_REAL_DATA), if present."""
    candidates = [os.environ.get("CIFAR_REAL_DATA"), ROOT / "data" / "cifar10-jpeg"]
    for c in candidates:
        if c and (Path(c) / "train").is_dir():
            return Path(c)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
