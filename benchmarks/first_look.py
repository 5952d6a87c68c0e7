"""Evaluate's first look at the shipped model: remembered (models/evaluations/) against computed.

    python -m benchmarks.first_look [--data-dir data] [--rounds 2]

1. In the process: `core.evaluations.remembered_evaluate` on the shipped model and the test set, reading the
   shipped file (a hit) and computing it (a miss, what every first look cost before), interleaved.
2. In Chromium against `streamlit run app.py`, a fresh server each time: the seconds from starting it until it
   answers, and from opening `evaluate_page?model=default` to its figures (the accuracy, the calibration line,
   the confusion pairs), with the shipped evaluation (a fresh clone, and after a restart), the same without the
   server's start (dashboard/warm.py: app.py run as a plain script, so the first page run imports and loads),
   and without the shipped evaluation (a models folder holding only the model and its card, the remembered copy
   beside the data removed first).
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


def first_look(browser, env: dict, script: Path = ROOT / "app.py") -> tuple[float, float]:
    """(seconds from launching the server until it answers, seconds from opening the page to its figures)."""
    launched = time.perf_counter()
    proc, url = serve_app(env, "--server.address", "127.0.0.1", script=script)
    up = time.perf_counter() - launched
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1700})
        start = time.perf_counter()
        page.goto(f"{url}/evaluate_page?model=default")
        page.get_by_text(SHOWN).wait_for(timeout=600_000)
        page.get_by_text("Most confused pairs").wait_for(timeout=60_000)
        seconds = time.perf_counter() - start
        page.close()
        return up, seconds
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
        plain = ROOT / ".first_look_plain.py"  # app.py as the page script alone (no st.App, so no start); beside
        plain.write_text("import runpy\nrunpy.run_path('app.py', run_name='__main__')\n")  # it: pages resolve there
        env = {**os.environ, "CIFAR_DATA": data_dir, "CIFAR_RUNS": str(Path(tmp) / "runs"), "PYTHONPATH": str(ROOT)}
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        looks = {"remembered": [], "remembered, no start": [], "computed": []}
        try:
            for _ in range(rounds):
                looks["remembered"].append(first_look(browser, env))  # each server is fresh: a clone's first start
                looks["remembered, no start"].append(first_look(browser, env, plain))
                beside_data.unlink(missing_ok=True)
                looks["computed"].append(first_look(browser, {**env, "CIFAR_MODELS": str(bare)}))
                beside_data.unlink(missing_ok=True)
        finally:
            plain.unlink()
        browser.close()
    for name, times in looks.items():
        up, seen = statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)
        print(f"Chromium, fresh server, {name}: up in {up:.1f} s, open to figures {seen:.1f} s (runs: "
              f"{', '.join(f'{t[1]:.1f}' for t in times)}), launch to figures {up + seen:.1f} s")


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
