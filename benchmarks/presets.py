"""The speed presets against the tutorial's own code: same data, same machine, one invocation.

    python -m benchmarks.presets [--data-dir data] [--plot docs/presets.png] [--json out.json]
    python -m benchmarks.presets --gpu [--seeds 5]       # adds the gpu preset, when CUDA is present
    python -m benchmarks.presets --only-gpu [--seeds 5]  # the gpu preset alone

Runs the tutorial's code (../shared/bench/seed_tutorial.py) and then `python -m core train --preset P`
for P in tutorial, fast, cpu-best, each in a fresh process as a user would type it. Prints, for each,
the training seconds (evaluation and start-up excluded on both sides), test accuracy, training
images/s, peak resident memory and how many times shorter its training was than the tutorial
code's, then checks the targets (TARGETS): tutorial ≥ 5× shorter, fast ≥ 65 % at ≥ 25× shorter,
cpu-best ≥ 85 % within the tutorial code's time. With --gpu, trains the gpu preset N times
(seeds 0..N-1) in this process on CUDA and prints the mean accuracy, the mean training seconds
to reach 94 % and peak GPU memory.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.tutorial_vs_seed import ROOT, fill_cache, find_source, machine, run_ours, run_seed

# (accuracy, times shorter than the tutorial's code)
TARGETS = {"tutorial": (0.50, 5.0), "fast": (0.65, 25.0), "cpu-best": (0.85, 1.0)}


def row(name: str, r: dict, baseline_s: float) -> str:
    return (f"{name:16s} train {r['train_s']:7.1f} s  accuracy {r['accuracy']:6.2f} %  "
            f"{r['images'] / r['train_s']:8.0f} images/s  peak {r['peak_mib']:6.0f} MiB  "
            f"{baseline_s / r['train_s']:6.1f}x shorter")


def check(results: dict) -> list[str]:
    """One line per target: met or missed, with the figures."""
    lines, seed_s = [], results["tutorial's code"]["train_s"]
    for preset, (accuracy, ratio) in TARGETS.items():
        r = results[preset]
        ok = r["accuracy"] >= 100 * accuracy and seed_s / r["train_s"] >= ratio
        lines.append(f"{'met   ' if ok else 'MISSED'} {preset}: ≥ {100 * accuracy:.0f} % at ≥ {ratio:g}x shorter "
                     f"than the tutorial's code -> {r['accuracy']:.2f} % at {seed_s / r['train_s']:.1f}x")
    return lines


def run_gpu(data_dir: Path, seeds: int) -> dict:
    """The gpu preset trained `seeds` times in this process on CUDA (seeds 0..N-1), summarised as gpu_lease does."""
    import torch

    from benchmarks.gpu import measured, prepared, summarise
    from core.config import PRESETS, with_overrides

    device, data_config, dataset = prepared(data_dir)
    runs = []
    for seed in range(seeds):
        r = measured(with_overrides(PRESETS["gpu"], seed=seed), dataset, device, data_config)
        runs.append(r)
        print(f"  gpu seed {seed}: {100 * r['accuracy']:.2f} % in {r['train_s']:.2f} s (94 % "
              f"{'at %.2f s' % r['seconds_to_94'] if r['seconds_to_94'] is not None else 'not reached'})", flush=True)
    return {"device": torch.cuda.get_device_name(device), **summarise(runs, len(dataset.train))}


def save_plot(results: dict, path: Path) -> None:
    """Accuracy vs training time, drawn with the dashboard's own chart builder, rendered to PNG by
    the Chromium the browser tests use (plotly's image export would need another dependency)."""
    from playwright.sync_api import sync_playwright

    from benchmarks.common import chromium_path
    from core.charts import accuracy_vs_time_figure

    labels = list(results)
    fig = accuracy_vs_time_figure(labels, [results[k]["train_s"] for k in labels],
                                  [results[k]["accuracy"] / 100 for k in labels],
                                  targets={f"{p} target {100 * a:.0f} %": a for p, (a, _) in TARGETS.items()
                                           if p != "tutorial"})
    fig.update_layout(width=900, height=480, title=f"Accuracy vs training time ({machine().split(',')[0]})")
    html = fig.to_html(include_plotlyjs=True, full_html=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 900, "height": 480})
        page.set_content(html, wait_until="load")
        page.wait_for_selector(".main-svg")
        page.screenshot(path=str(path))
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT / "data"))
    parser.add_argument("--seed-script", default=str(ROOT.parent / "shared" / "bench" / "seed_tutorial.py"))
    parser.add_argument("--gpu", action="store_true", help="add the gpu preset (needs CUDA)")
    parser.add_argument("--seeds", type=int, default=5, help="gpu preset runs to average")
    parser.add_argument("--only-gpu", action="store_true", help="skip the CPU runs (a GPU machine's time is short)")
    parser.add_argument("--plot", help="write the accuracy-vs-time chart to this PNG")
    parser.add_argument("--json", help="write all figures to this JSON file")
    parser.add_argument("--replot", metavar="JSON", help="only redraw --plot from a JSON file an earlier run wrote")
    args = parser.parse_args()
    if args.replot:
        save_plot({k: v for k, v in json.loads(Path(args.replot).read_text())["results"].items() if k != "gpu"},
                  Path(args.plot or "docs/presets.png"))
        return
    data_dir, script = Path(args.data_dir), Path(args.seed_script)
    if find_source(data_dir) is None or not (script.is_file() or args.only_gpu):
        sys.exit(f"error: needs CIFAR-10 at {data_dir} (the original: "
                 f"tar -xzf ../shared/data/cifar-10-python.tar.gz -C data) and the seed script at {script}")
    if (args.gpu or args.only_gpu):
        import torch
        if not torch.cuda.is_available():
            sys.exit("error: --gpu needs a CUDA GPU and none is visible; run without --gpu for the CPU presets")

    fill_cache(data_dir)
    print(f"machine: {machine()}", flush=True)
    results = {}
    if not args.only_gpu:
        results["tutorial's code"] = run_seed(script, data_dir, 2)
        seed_s = results["tutorial's code"]["train_s"]
        print(row("tutorial's code", results["tutorial's code"], seed_s), flush=True)
        for preset in ("tutorial", "fast", "cpu-best"):
            results[preset] = run_ours(data_dir, ["--device", "cpu"], preset=preset)
            print(row(preset, results[preset], seed_s), flush=True)
        print("\n".join(check(results)))
    if args.gpu or args.only_gpu:
        gpu = run_gpu(data_dir, args.seeds)
        results["gpu"] = gpu
        reached = f"in {gpu['seconds_to_94_mean']:.2f} s on average" if gpu["reached_94"] else "never"
        print(f"gpu preset on {gpu['device']}: {gpu['accuracy_mean']:.2f} ± {gpu['accuracy_sd']:.2f} % over "
              f"{gpu['seeds']} seeds, {gpu['train_s_mean']:.2f} s of training, 94 % reached by {gpu['reached_94']} "
              f"of them, {reached}, {gpu['images_per_s']:.0f} images/s, peak GPU memory {gpu['peak_gpu_mib']:.0f} MiB")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "results": results}, indent=2))
    if args.plot and not args.only_gpu:
        save_plot({k: v for k, v in results.items() if k != "gpu"}, Path(args.plot))
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
