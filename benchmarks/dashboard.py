"""Does the dashboard cost training speed, and what does one live refresh cost the server?

    python -m benchmarks.dashboard [--data-dir data] [--epochs 1]

1. The same config trained twice, interleaved: by the CLI a user types, and by the dashboard's
   launcher while the Train page is re-rendered every second (AppTest runs the whole page,
   which is more than the one-second fragment a browser triggers). Prints both throughputs.
2. One live refresh: the Train page's fragment (what a browser's 1 Hz tick runs on the server),
   timed directly on a tutorial-sized run, and the whole page rerun for comparison.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, run_figures, train_command
from core.config import PRESETS, with_overrides
from core.launcher import start_training, train_args
from core.runs import Run


def cli_run(config, data_dir: str, runs: Path) -> float:
    run_dir = runs / f"cli-{time.time_ns()}"
    subprocess.run(train_command(run_dir, "--data-dir", data_dir, *train_args(config)), cwd=ROOT, check=True,
                   capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return run_figures(run_dir)["images_per_s"]


def dashboard_run(config, data_dir: str, runs: Path) -> tuple[float, list[float]]:
    from streamlit.testing.v1 import AppTest

    run = start_training(config, runs, data_dir=data_dir)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["active_run"] = run.id
    at.run()
    at.switch_page("dashboard/train_page.py").run()
    ticks = []
    while run.state() in ("running", "starting"):
        start = time.perf_counter()
        at.run()
        ticks.append(time.perf_counter() - start)
        time.sleep(max(0.0, 1.0 - ticks[-1]))
    assert run.state() == "done", run.failure_message()
    return run_figures(run.path)["images_per_s"], ticks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT / "data"))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    config = with_overrides(PRESETS["tutorial"], epochs=args.epochs)
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        os.environ["CIFAR_RUNS"], os.environ["CIFAR_DATA"] = str(runs), args.data_dir
        cli_run(with_overrides(config, epochs=1), args.data_dir, runs)  # warm the decode cache, untimed
        cli, dash, all_ticks = [], [], []
        for _ in range(args.rounds):  # interleaved, so drift on a shared machine hits both alike
            cli.append(cli_run(config, args.data_dir, runs))
            speed, ticks = dashboard_run(config, args.data_dir, runs)
            dash.append(speed)
            all_ticks += ticks
        print(f"config: tutorial preset, {args.epochs} epoch(s), {args.rounds} interleaved rounds")
        for name, rates in (("CLI                      ", cli), ("dashboard (page live 1 Hz)", dash)):
            print(f"{name}: {statistics.median(rates):8.0f} images/s  (runs: {', '.join(f'{v:.0f}' for v in rates)})")
        print(f"dashboard / CLI throughput: {statistics.median(dash) / statistics.median(cli):.3f}")
        print(f"Train page rerun while training: median {1000 * statistics.median(all_ticks):.1f} ms "
              f"over {len(all_ticks)} ticks")

        # a finished tutorial-sized run (2 epochs: ~200 step events) viewed on the Train page
        from streamlit.testing.v1 import AppTest
        done = [r for r in sorted(runs.iterdir()) if Run(r).state() == "done"][-1]
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        at.session_state["active_run"] = done.name
        at.run()
        at.switch_page("dashboard/train_page.py").run()
        times = []
        for _ in range(20):
            start = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - start)
        events = len(Run(done).events())
        print(f"whole Train page rerun (AppTest), run with {events} events: "
              f"median {1000 * statistics.median(times):.1f} ms")

        import logging
        logging.getLogger("streamlit").setLevel(logging.ERROR)  # bare mode warns on every call
        from dashboard.live import live_view
        ticks = []
        for _ in range(20):
            start = time.perf_counter()
            live_view(Run(done))
            ticks.append(time.perf_counter() - start)
        print(f"one live tick (the Train page's fragment), run with {events} events: "
              f"median {1000 * statistics.median(ticks):.1f} ms")


if __name__ == "__main__":
    main()
