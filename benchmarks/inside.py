"""Seeing inside (#25): what the learning replay, what if and the map of similar images cost, and what snapshots take.

    python -m benchmarks.inside [--data-dir data] [--rounds 5] [--no-browser]

1. Snapshot sizes: each preset's network, how many snapshots it keeps (core.snapshots.count_for its setting) and
   their size on disk in half precision.
2. In the process, one photo (photos/chelsea.jpg) on the shipped w64 network and a tutorial Net, each against
   a plain prediction of the photo (what Classify does anyway, the baseline): the replay's frames (all computed
   at once, as the page does), each what-if change (the change, both predictions and Grad-CAM, as the section
   does), FGSM and PGD; then the map: features of its 2,000 test images, PCA, t-SNE, and a photo's neighbours
   (5,000 training images' features, then the search).
3. In Chromium against `streamlit run app.py` (the answer a person waits for: Streamlit's rerun and transfer
   included): a one-epoch `fast` run trained here (24 snapshots) and the shipped model (6) on Classify with the photo,
   seconds from a key press on a slider to the changed answer on the page.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import CHROMIUM_ARGS, ROOT, chromium_path, real_cifar_dir, serve_app, train_command
from core import similarity, snapshots, whatif
from core.checkpoints import load_model
from core.config import PRESETS
from core.data import DataConfig, load_dataset
from core.images import load_for_model
from core.interpret import predict, saliency
from core.models import build_model
from core.replay import replay

PHOTO = ROOT / "photos" / "chelsea.jpg"
EDITS = {"grey square 8 px": whatif.Edit(occlude_size=8), "brightness ×1.5": whatif.Edit(brightness=1.5),
         "contrast ×0.6": whatif.Edit(contrast=0.6), "blur σ 1.5": whatif.Edit(blur=1.5),
         "rotation 30°": whatif.Edit(rotation=30)}


def sizes() -> None:
    print("Snapshot sizes (half precision, at most core.snapshots.BUDGET_BYTES):")
    for name, preset in PRESETS.items():
        model = build_model(preset.model, preset.width, 10)
        count, each = snapshots.count_for(model, preset.snapshots), snapshots.half_size(model)
        print(f"  {name:9} {preset.model} w{preset.width}: {count} × {each / 2**20:.2f} MB = "
              f"{count * each / 2**20:.1f} MB")


def median_s(work, rounds: int) -> float:
    work()  # warm: first calls allocate
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timing_snapshots(loaded) -> snapshots.Snapshots:
    """As many snapshots as the network keeps (24 at most), here all the trained weights: a frame costs the same
    whatever its weights, and the shipped model keeps none of its own."""
    count = snapshots.count_for(loaded.model, 24)
    kept = snapshots.Snapshots(steps_per_epoch=100)
    for step in range(count):
        kept.add(step, loaded.model.state_dict(), 0.0)
    return kept


def what_if_once(loaded, image: torch.Tensor, edit: whatif.Edit, epsilon: float = 0, steps: int = 1) -> None:
    """What the What if section computes for one position of its sliders."""
    changed = whatif.edited(image, edit)
    if epsilon:
        changed, _ = whatif.adversarial(loaded.model, changed, loaded.normalizer(), epsilon, steps, tta=loaded.tta)
    _, after = loaded.predict(torch.stack([image, changed]))
    saliency(loaded.model, changed, loaded.normalizer(), target=after.top, layer=loaded.cam_layer)


def in_process(name: str, loaded, rounds: int) -> None:
    image = load_for_model(PHOTO)
    base = median_s(lambda: predict(loaded.model, image[None], loaded.normalizer(), tta=loaded.tta), rounds)
    kept = timing_snapshots(loaded)
    print(f"{name} ({loaded.tta} views), one photo: a plain prediction {1000 * base:.1f} ms (the baseline)")
    rows = {f"replay, all {len(kept.steps)} frames at once": lambda: replay(loaded, kept, image)}
    rows |= {f"what if: {label}": (lambda e=edit: what_if_once(loaded, image, e)) for label, edit in EDITS.items()}
    rows |= {"what if: FGSM ε 4": lambda: what_if_once(loaded, image, whatif.Edit(), 4, 1),
             "what if: PGD ε 4, 10 steps": lambda: what_if_once(loaded, image, whatif.Edit(), 4, 10)}
    for label, work in rows.items():
        seconds = median_s(work, rounds)
        print(f"  {label:34} {1000 * seconds:7.1f} ms  {seconds / base:6.1f}x")


def the_map(loaded, data_dir: str, rounds: int) -> None:
    ds = load_dataset(DataConfig(data_dir=data_dir, download=False))
    test = ds.test.images[:similarity.MAP_IMAGES]
    normalize, labels = loaded.normalizer(), ds.test.labels[:similarity.MAP_IMAGES]
    start = time.perf_counter()
    features = similarity.penultimate(loaded.model, test, normalize)
    read = time.perf_counter() - start
    print(f"The map, shipped model: features of {len(test):,} test images {read:.2f} s")
    for method in similarity.METHODS:
        seconds = median_s(lambda m=method: similarity.project(features, m), max(1, rounds // 2))
        coordinates = similarity.project(features, method)
        print(f"  {method:5} {seconds:6.2f} s; classes apart (10-NN agreement on the map) "
              f"{similarity.separation(coordinates, labels):.3f}")
    start = time.perf_counter()
    index, bank, _ = similarity.neighbour_bank(loaded.model, ds.train, normalize)
    banked = time.perf_counter() - start
    query = similarity.penultimate(loaded.model, load_for_model(PHOTO)[None], normalize)
    search = median_s(lambda: similarity.nearest(query, bank, 8), rounds)
    print(f"  a photo's neighbours: features of {len(index):,} training images {banked:.2f} s (once a model), "
          f"then the 8 nearest {1000 * search:.1f} ms")


def press_and_wait(page, thumb, key: str, probe: str) -> float:
    """Seconds from pressing `key` on a slider's thumb until the text the JS function `probe` reads changes."""
    before = page.evaluate(probe)
    start = time.perf_counter()
    thumb.press(key)
    page.wait_for_function(f"(b) => ({probe})() !== b", arg=before, timeout=60_000)
    seconds = time.perf_counter() - start
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    return seconds


def thumb(page, label: str):
    found = page.locator("[data-testid='stSlider']").filter(has_text=label).get_by_role("slider")
    found.focus()
    return found


ALERTS = "() => [...document.querySelectorAll('[data-testid=\"stAlert\"]')].map(e => e.innerText).join('|')"
FRAME = ("() => [...document.querySelectorAll('[data-testid=\"stMarkdown\"]')].map(e => e.innerText)"
         ".filter(t => t.startsWith('Step ')).join('|')")


def browser_moves(browser, url: str, link: str, rounds: int) -> dict[str, list[float]]:
    page = browser.new_page(viewport={"width": 1400, "height": 1700})
    page.goto(f"{url}/classify_page?{link}")
    page.get_by_text("Classifying with").wait_for(timeout=120_000)
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files([str(PHOTO)])
    page.get_by_text("What if").first.wait_for(timeout=120_000)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=120_000)
    moves: dict[str, list[float]] = {}
    page.get_by_text("weight snapshots").first.wait_for(timeout=120_000)
    moves["replay: one snapshot on"] = [press_and_wait(page, thumb(page, "Snapshot"), "ArrowRight", FRAME)
                                        for _ in range(rounds)]
    there_and_back = {"Brightness": ("End", "Home"), "Rotation": ("PageUp", "PageDown"),
                      "Grey square: size": ("End", "Home")}
    for label, keys in there_and_back.items():  # each slider ends where it began: the next starts from the photo
        moves[f"what if: {label.lower()}"] = [press_and_wait(page, thumb(page, label), key, ALERTS)
                                              for _ in range(rounds) for key in keys]
    for method in ("FGSM (one step)", "PGD (10 steps)"):
        page.get_by_text(method).click()
        page.wait_for_timeout(1000)
        moves[f"what if: {method.split()[0]} ε 0 ↔ 16"] = [
            press_and_wait(page, thumb(page, "Adversarial noise"), key, ALERTS)
            for _ in range(rounds) for key in ("End", "Home")]
    page.close()
    return moves


# The baseline: Streamlit's own round trip for a slider in a fragment that only writes its value in an alert
BARE = """import streamlit as st

@st.fragment
def section():
    value = st.slider("Brightness", 0.2, 2.0, 1.0, step=0.05)
    st.warning(f"brightness {value}")

section()
"""


def bare_round_trip(browser, env: dict, tmp: Path, rounds: int) -> list[float]:
    script = tmp / "bare.py"
    script.write_text(BARE)
    proc, url = serve_app(env, "--server.address", "127.0.0.1", "--server.headless", "true", script=script)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1700})
        page.goto(url)
        page.get_by_text("brightness 1.0").wait_for(timeout=60_000)
        times = [press_and_wait(page, thumb(page, "Brightness"), key, ALERTS)
                 for _ in range(rounds) for key in ("End", "Home")]
        page.close()
        return times
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def in_browser(data_dir: str, rounds: int) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        env = {**os.environ, "CIFAR_DATA": data_dir, "CIFAR_RUNS": str(runs), "PYTHONPATH": str(ROOT)}
        subprocess.run(train_command(runs / "fast-1", "--preset", "fast", "--data-dir", data_dir), env=env,
                       check=True, stdout=subprocess.DEVNULL)
        proc, url = serve_app(env, "--server.address", "127.0.0.1", "--server.headless", "true")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
                bare = bare_round_trip(browser, env, Path(tmp), rounds)
                base = statistics.median(bare)
                print(f"In Chromium, the baseline: a bare Streamlit slider in a fragment, key press to its new value "
                      f"{1000 * base:.0f} ms (max {1000 * max(bare):.0f})")
                for name, link in (("a fast run (widenet w8, 24 snapshots)", "run=fast-1"),
                                   ("the shipped model (fastnet w64, 6 snapshots)", "model=default")):
                    print(f"In Chromium, Classify with {name}: key press to changed answer (median and max)")
                    for label, times in browser_moves(browser, url, link, rounds).items():
                        median = statistics.median(times)
                        print(f"  {label:34} {1000 * median:7.0f} ms  {median / base:5.2f}x  "
                              f"(max {1000 * max(times):.0f})")
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(real_cifar_dir() or ROOT / "data"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args(argv)
    sizes()
    shipped = load_model(ROOT / "models" / "default.pth")
    tutorial = load_model_of(build_model("net", 6, 10))
    in_process("shipped model (fastnet w64)", shipped, args.rounds)
    in_process("the tutorial's Net (untrained weights: the same cost)", tutorial, args.rounds)
    the_map(shipped, args.data_dir, args.rounds)
    if not args.no_browser:
        if chromium_path() is None:
            raise SystemExit("No Chromium: install Debian's chromium (what .ci/run does) or set CHROMIUM.")
        in_browser(args.data_dir, args.rounds)


def load_model_of(model: torch.nn.Module):
    """A LoadedModel of `model`'s weights, through a file as the pages load one."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "net.pth"
        torch.save(model.state_dict(), path)
        return load_model(path)


if __name__ == "__main__":
    main()
