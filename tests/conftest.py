import os
import shutil

# As app.py does for the dashboard, before torch loads (here and in every process the tests start): on a busy
# CPU, OpenMP threads spin-waiting for a descheduled partner turn a one-image prediction into seconds.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist runs one worker per core: each worker, and every process its tests start, on one
    # thread, so two workers fill two cores instead of four threads fighting over them
    os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.common import ROOT, chromium_path, free_port, real_cifar_dir, serve_app  # noqa: F401 (the tests' too)

pytest_plugins = ["real_browser"]  # the served app and Chromium fixtures, for the browser tests in any folder

CLASSES = ("blue", "green", "red")
# a real photo of none of the ten classes (photos/validation/), which the shipped model flags as such
PENCIL = ROOT / "photos" / "validation" / "none" / "gcompris-categorization-pencil.jpg"
# torch.load(weights_only=True) warns about a hostile pickle's protocol before it refuses the file: expected there
HOSTILE_PICKLE = pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")


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


@pytest.fixture
def env(monkeypatch, tmp_path, tiny_tree) -> Path:
    """The dashboard pointed at the tiny tree, with its runs in `<returned folder>/runs`."""
    monkeypatch.setenv("CIFAR_DATA", str(tiny_tree))
    monkeypatch.setenv("CIFAR_RUNS", str(tmp_path / "runs"))
    return tmp_path


@pytest.fixture
def dataset(tiny_tree, tmp_path):
    """The tiny tree, loaded (its decode cache in the test's own tmp)."""
    from core.data import DataConfig, load_dataset

    return load_dataset(DataConfig(data_dir=str(tiny_tree), download=False, cache_dir=str(tmp_path / "c")))


@pytest.fixture(scope="session")
def _tiny_run(tmp_path_factory) -> Path:
    """One finished two-epoch run of a tiny tree (make_tree's: the same pixels as `tiny_tree`), started through the
    launcher as the Train page starts it, once per test process."""
    from core.config import TrainConfig
    from core.launcher import start_training, wait_for

    root = tmp_path_factory.mktemp("tiny-run")
    run = start_training(TrainConfig(epochs=2, lr=0.01), root / "runs", data_dir=str(make_tree(root / "tiny")))
    assert wait_for(run, ("done", "failed"), 90) == "done"
    return run.path


@pytest.fixture
def finished_run(env, _tiny_run):
    """A finished run in this test's runs folder: its own copy of `_tiny_run`, to read or change (rename, delete,
    evaluate), without a training process of its own (one costs ~4 CPU-seconds on two AVX2 cores)."""
    from core.runs import Run

    return Run(Path(shutil.copytree(_tiny_run, env / "runs" / _tiny_run.name)))


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """Tests never read the developer's data dir or write caches outside tmp."""
    monkeypatch.delenv("CIFAR_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def real_jpeg_dir() -> Path | None:
    """The same images as a JPEG class-per-folder tree (./data/cifar10-jpeg), if extracted."""
    path = ROOT / "data" / "cifar10-jpeg"
    return path if (path / "train").is_dir() else None


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


def pictures(at) -> list:
    """Every picture an AppTest session shows, in order (url, caption): an image grid is one element of many."""
    return [picture for element in at.get("image") for picture in element.proto.imgs]


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks (--dist loadgroup)
def pytest_collection_modifyitems(config, items):
    """Tests that share a module-scoped fixture (a served app, a trained run) run on one worker, so it is set
    up once; every other test is spread on its own, so one slow module no longer holds a whole worker."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info and any(d.scope == "module" for defs in info.name2fixturedefs.values() for d in defs):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
