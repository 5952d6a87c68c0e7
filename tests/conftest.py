import os

# As app.py does for the dashboard, before torch loads (here and in every process the tests start): on a busy
# CPU, OpenMP threads spin-waiting for a descheduled partner turn a one-image prediction into seconds.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["real_browser"]  # the served app and Chromium fixtures, for the browser tests in any folder

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


def chromium_path() -> str | None:
    """Debian's chromium (what .ci/run installs), or $CHROMIUM; None when there is none."""
    return next((p for p in (os.environ.get("CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
                             "/usr/bin/chromium") if p and Path(p).exists()), None)


def real_cifar_dir() -> Path | None:
    """The original CIFAR-10 (torchvision's `cifar-10-batches-py/`) that .ci/run extracts into ./data, or
    CIFAR_REAL_DATA; None when it is absent."""
    for c in (os.environ.get("CIFAR_REAL_DATA"), ROOT / "data"):
        if c and (Path(c) / "cifar-10-batches-py" / "data_batch_1").is_file():
            return Path(c)
    return None


def real_jpeg_dir() -> Path | None:
    """The same images as a JPEG class-per-folder tree (./data/cifar10-jpeg), if extracted."""
    path = ROOT / "data" / "cifar10-jpeg"
    return path if (path / "train").is_dir() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def open_app(page: str | None = None, query: dict[str, str] | None = None):
    """A fresh AppTest session of the dashboard, switched to `page` (e.g. "dashboard/runs_page.py"), opened with
    `query` in its address (a shared link's ?run=…)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    if page:
        at.switch_page(page)
        at.query_params = dict(query or {})
        at.run()
    assert not at.exception, at.exception
    return at


def serve_app(env: dict, *args: str) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` on a free port, returned once /_stcore/health answers ok."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
                             str(port), *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return proc, url
        except OSError:
            pass
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            raise AssertionError("streamlit did not come up")
        time.sleep(0.3)
