"""What several benchmarks (and the tests' fixtures) share: the project root, a served app, a Chromium."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# a headless Chromium for a machine without a display or a network: no sandbox (containers), nothing phoned home
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_app(env: dict, *args: str, script: Path = ROOT / "app.py") -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` (or another `script`) on a free port, returned once /_stcore/health answers ok."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(script), "--server.port",
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


CLI = (sys.executable, "-m", "core")


def train_command(run_dir: Path, *args: str, launcher: tuple[str, ...] | list[str] = CLI) -> list[str]:
    """`python -m core train` into `run_dir` as a user types it (no download, no progress bar), with `args`;
    `launcher` replaces `python -m core` (torchrun's, or main() under another exit)."""
    return [*launcher, "train", "--run-dir", str(run_dir), "--no-download", "--no-progress", *args]


def run_figures(run_dir: Path) -> dict:
    """A finished run's metrics.json, with `images_per_s` (images trained on / training seconds) added."""
    from core.events import STEP, of_type
    from core.runs import Run

    metrics = json.loads((run_dir / "metrics.json").read_text())
    steps = of_type(Run(run_dir).events(), STEP)
    return {**metrics, "images_per_s": steps[-1]["images_seen"] / metrics["train_seconds"] if steps else None}
