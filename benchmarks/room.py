"""A room on one link: N Chromium sessions open Classify on the shipped model and upload the same photo at the
same moment, against one `streamlit run app.py` on this machine (localhost only).

For each N (default 1, 3, 12, 30): how many sessions showed their result (and how many an exception), the
median and 95th-percentile time from upload to result, and the server's memory before and after.

    python -m benchmarks.room                 # 1, 3, 12, 30 sessions
    python -m benchmarks.room --sessions 5 30 --photo photos/chelsea.jpg
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from benchmarks.common import CHROMIUM_ARGS, ROOT, chromium_path, real_cifar_dir, serve_app

RESULT = "Prediction:"  # the probability chart's title
EXCEPTION = "[data-testid='stException']"
IDLE = "[data-testid='stStatusWidget']"  # shown while the script runs


def cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) a process has used; NaN for no process."""
    if pid is None:
        return float("nan")
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def browsers_cpu_s() -> float:
    """CPU seconds used so far by the Chromium processes this process started."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            if "chrom" in child.name().lower() or "headless" in child.name().lower():
                times = child.cpu_times()
                total += times.user + times.system
        except psutil.Error:  # a renderer that just exited
            pass
    return total


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


async def _session(browser, url: str, photo: Path, opened: list, start: asyncio.Event,
                   timeout_s: float) -> tuple[str, float]:
    """One visitor: opens the page (then says so in `opened`), waits for the room's signal, uploads, waits for a
    result or an exception."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1200})
    try:
        page = await context.new_page()
        await page.goto(f"{url}/classify_page?model=default", timeout=timeout_s * 1000)
        await page.get_by_text("Classifying with").wait_for(timeout=timeout_s * 1000)
        opened.append(page)
        await start.wait()
        began = time.perf_counter()
        await page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(photo))
        outcome = page.locator(EXCEPTION).or_(page.get_by_text(RESULT))
        await outcome.first.wait_for(timeout=timeout_s * 1000)
        took = time.perf_counter() - began
        # the rest of the page (the results table) after the chart: an exception there counts too
        await page.wait_for_function(f"!document.querySelector({IDLE!r})", timeout=timeout_s * 1000)
        return ("exception" if await page.locator(EXCEPTION).count() else "answered"), took
    except Exception as exc:  # noqa: BLE001 - a session that times out or breaks is counted, not fatal
        return f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}", float("nan")


@dataclass
class Room:
    results: list[tuple[str, float]]  # per session: "answered" | "exception" | "failed: …", seconds to result
    seconds: float  # from "now" to the last answer
    server_cpu: float  # CPU seconds the server used in that time
    browsers_cpu: float  # and the browsers


async def room(url: str, sessions: int, photo: Path, timeout_s: float, server_pid: int | None = None,
               settle: bool = True) -> Room:
    """`sessions` visitors open the page; once every page has loaded (and, with `settle`, the browsers have gone
    quiet), all upload at once."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        start, opened = asyncio.Event(), []
        tasks = [asyncio.create_task(_session(browser, url, photo, opened, start, timeout_s))
                 for _ in range(sessions)]
        deadline = time.time() + timeout_s
        # every page open (or its session already failed) before anyone uploads
        while time.time() < deadline and len(opened) + sum(t.done() for t in tasks) < sessions:
            await asyncio.sleep(0.5)
        if settle:
            await _settled(deadline)
        server, browsers, now = cpu_s(server_pid), browsers_cpu_s(), time.perf_counter()
        start.set()
        results = await asyncio.gather(*tasks)
        measured = Room(results, time.perf_counter() - now, cpu_s(server_pid) - server, browsers_cpu_s() - browsers)
        await browser.close()
    return measured


async def _settled(deadline: float, quiet: float = 0.25) -> None:
    """Until the browsers have finished loading their pages (under `quiet` of a core between them for a
    second): a room opens the link well before it is told "now", and a page still loading is not the room's
    answer time."""
    while time.time() < deadline:
        before = browsers_cpu_s()
        await asyncio.sleep(1)
        if browsers_cpu_s() - before < quiet:
            return


def summary(n: int, measured: Room, before: float, after: float) -> str:
    results = measured.results
    times = sorted(t for kind, t in results if kind == "answered")
    answered = len(times)
    exceptions = sum(kind == "exception" for kind, _ in results)
    failed = n - answered - exceptions
    reasons = sorted({kind for kind, _ in results if kind.startswith("failed")})
    median = statistics.median(times) if times else float("nan")
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))] if times else float("nan")
    return (f"{n:>3} sessions: {answered}/{n} answered, {exceptions} exceptions, {failed} failed; "
            f"median {median:.1f} s, p95 {p95:.1f} s; server {before:.0f} -> {after:.0f} MB "
            f"(+{after - before:.0f}); 'now' to the last answer {measured.seconds:.1f} s, CPU in it: server "
            f"{measured.server_cpu:.1f} s, browsers {measured.browsers_cpu:.1f} s"
            + "".join(f"\n      {r}" for r in reasons))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 3, 12, 30])
    parser.add_argument("--photo", type=Path, default=ROOT / "photos" / "chelsea.jpg")
    parser.add_argument("--timeout", type=float, default=180, help="seconds a session may take, all told")
    args = parser.parse_args(argv)
    if chromium_path() is None:
        raise SystemExit("No Chromium: install Debian's chromium (what .ci/run does) or set CHROMIUM.")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "CIFAR_RUNS": str(Path(tmp) / "runs"), "PYTHONPATH": str(ROOT)}
        if real_cifar_dir():
            env["CIFAR_DATA"] = str(real_cifar_dir())
        for n in args.sessions:  # a fresh server for each room: memory growth is that room's
            proc, url = serve_app(env, "--server.address", "127.0.0.1", "--server.headless", "true")
            try:
                asyncio.run(room(url, 1, args.photo, args.timeout, proc.pid))  # warm: the model loaded, as in a demo
                before = rss_mb(proc.pid)
                measured = asyncio.run(room(url, n, args.photo, args.timeout, proc.pid))
                print(summary(n, measured, before, rss_mb(proc.pid)), flush=True)
            finally:
                proc.terminate()
                proc.wait(timeout=30)


if __name__ == "__main__":
    main()
