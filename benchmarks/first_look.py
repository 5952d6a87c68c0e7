"""Evaluate's first look at the shipped model: remembered (models/evaluations/) against computed.

    python -m benchmarks.first_look [--data-dir data] [--rounds 2]

1. In the process: `core.evaluations.remembered_evaluate` on the shipped model and the test set, reading the
   shipped file (a hit) and computing it (a miss, what every first look cost before), interleaved.
2. In Chromium against `streamlit run app.py`, a fresh server each time: the seconds from opening
   `evaluate_page?model=default` to its figures (the accuracy, the calibration line, the confusion pairs),
   with the shipped evaluation (a fresh clone, and after a restart), and without it (a models folder holding
   only the model and its card, the remembered copy beside the data removed first).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import CHROMIUM_ARGS, ROOT, chromium_path, serve_app
from core.checkpoints import load_model
from core.data import DataConfig, load_dataset
from core.evaluations import SHIPPED, folder_for, key, remembered_evaluate

SHOWN = "with the temperature its run fitted"  # the calibration line: the page has its evaluation


def in_process(data_dir: str, rounds: int) -> None:
    loaded = load_model(ROOT / "models" / "default.pth")
    test = load_dataset(DataConfig(data_dir=data_dir, download=False)).test
    hit, miss = [], []
    for _ in range(rounds):
        for times, shipped in ((hit, (SHIPPED,)), (miss, ())):
            start = time.perf_counter()
            found = remembered_evaluate(loaded.model, test, loaded.normalizer(), num_classes=10, tta=loaded.tta,
                                        save_to=None, shipped=shipped)
            times.append(time.perf_counter() - start)
            assert found.source == ("remembered" if shipped else "computed")
    h, m = statistics.median(hit), statistics.median(miss)
    print(f"in the process, shipped model, 10,000 test images ({loaded.tta} views): remembered {h:.2f} s, "
          f"computed {m:.2f} s: {m / h:.0f}x")


def first_look(browser, env: dict) -> float:
    proc, url = serve_app(env, "--server.address", "127.0.0.1")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1700})
        start = time.perf_counter()
        page.goto(f"{url}/evaluate_page?model=default")
        page.get_by_text(SHOWN).wait_for(timeout=600_000)
        page.get_by_text("Most confused pairs").wait_for(timeout=60_000)
        seconds = time.perf_counter() - start
        page.close()
        return seconds
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def in_chromium(data_dir: str, rounds: int) -> None:
    from playwright.sync_api import sync_playwright

    dataset = load_dataset(DataConfig(data_dir=data_dir, download=False))
    loaded = load_model(ROOT / "models" / "default.pth")
    beside_data = folder_for(dataset) / f"{key(loaded.model, dataset.test, loaded.normalizer(), loaded.tta, 10)}.pt"
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        bare = Path(tmp) / "models"
        bare.mkdir()
        for name in ("default.pth", "default.json"):
            shutil.copy(ROOT / "models" / name, bare / name)
        env = {**os.environ, "CIFAR_DATA": data_dir, "CIFAR_RUNS": str(Path(tmp) / "runs"), "PYTHONPATH": str(ROOT)}
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        remembered, computed = [], []
        for _ in range(rounds):
            remembered.append(first_look(browser, env))  # each server is fresh: a clone's first start, a restart
            beside_data.unlink(missing_ok=True)
            computed.append(first_look(browser, {**env, "CIFAR_MODELS": str(bare)}))
            beside_data.unlink(missing_ok=True)
        browser.close()
    r, c = statistics.median(remembered), statistics.median(computed)
    print(f"Chromium, fresh server, open to figures: remembered {r:.1f} s (runs: "
          f"{', '.join(f'{v:.1f}' for v in remembered)}), computed {c:.1f} s "
          f"(runs: {', '.join(f'{v:.1f}' for v in computed)}): {c / r:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT / "data"))
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU cores")
    in_process(args.data_dir, args.rounds)
    in_chromium(args.data_dir, args.rounds)


if __name__ == "__main__":
    main()
