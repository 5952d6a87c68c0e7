"""A room on one link: N Chromium sessions open Classify on the shipped model and upload the same photo at the
same moment, against one `streamlit run app.py` on this machine (localhost only).

For each N (default 1, 3, 12, 30): how many sessions showed their result (and how many an exception), the
median and 95th-percentile time from upload to result, and the server's memory before and after. Then the same
room against the floor (benchmarks/room_floor.py: Streamlit's uploader and one line, no model) and Classify's
times as multiples of the floor's: the browsers share these cores, so the host's speed moves both alike.

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

CLASSIFY = "classify_page?model=default"
FLOOR = ROOT / "benchmarks" / "room_floor.py"
RESULT = "Prediction:"  # the probability chart's title (the floor's answer line)
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
    """One visitor: opens the page at `url` (then says so in `opened`), waits for the room's signal, uploads, waits
    for a result or an exception."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1200})
    try:
        page = await context.new_page()
        await page.goto(url, timeout=timeout_s * 1000)
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
               settle: bool = True, page: str = CLASSIFY) -> Room:
    """`sessions` visitors open `page` of the server at `url`; once every page has loaded (and, with `settle`, the
    browsers have gone quiet), all upload at once."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        start, opened = asyncio.Event(), []
        tasks = [asyncio.create_task(_session(browser, f"{url}/{page}", photo, opened, start, timeout_s))
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


def answer_times(measured: Room) -> tuple[float, float]:
    """(median, p95) seconds from upload to result of the sessions that were answered; NaN for none."""
    times = sorted(t for kind, t in measured.results if kind == "answered")
    if not times:
        return float("nan"), float("nan")
    return statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


def summary(n: int, measured: Room, before: float, after: float) -> str:
    results = measured.results
    answered = sum(kind == "answered" for kind, _ in results)
    exceptions = sum(kind == "exception" for kind, _ in results)
    failed = n - answered - exceptions
    reasons = sorted({kind for kind, _ in results if kind.startswith("failed")})
    median, p95 = answer_times(measured)
    return (f"{n:>3} sessions: {answered}/{n} answered, {exceptions} exceptions, {failed} failed; "
            f"median {median:.1f} s, p95 {p95:.1f} s; server {before:.0f} -> {after:.0f} MB "
            f"(+{after - before:.0f}); 'now' to the last answer {measured.seconds:.1f} s, CPU in it: server "
            f"{measured.server_cpu:.1f} s, browsers {measured.browsers_cpu:.1f} s"
            + "".join(f"\n      {r}" for r in reasons))


def against_floor(ours: Room, floor: Room) -> str:
    """Classify's room as multiples of the floor's, measured beside it."""
    (median, p95), (floor_median, floor_p95) = answer_times(ours), answer_times(floor)
    return (f"     Classify / floor: median {median / floor_median:.1f}x, p95 {p95 / floor_p95:.1f}x, browsers' CPU "
            f"{ours.browsers_cpu / floor.browsers_cpu:.1f}x")


def served_room(env: dict, script: Path, page: str, n: int, photo: Path, timeout_s: float) -> tuple[Room, str]:
    """A room of `n` against a fresh server of `script` (memory growth is that room's), warmed by one upload (on
    Classify: the model loaded, as in a demo); the room and its summary line."""
    proc, url = serve_app(env, "--server.address", "127.0.0.1", "--server.headless", "true", script=script)
    try:
        asyncio.run(room(url, 1, photo, timeout_s, proc.pid, page=page))
        before = rss_mb(proc.pid)
        measured = asyncio.run(room(url, n, photo, timeout_s, proc.pid, page=page))
        return measured, summary(n, measured, before, rss_mb(proc.pid))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 3, 12, 30])
    parser.add_argument("--photo", type=Path, default=ROOT / "photos" / "chelsea.jpg")
    parser.add_argument("--timeout", type=float, default=180, help="seconds a session may take, all told")
    parser.add_argument("--no-floor", action="store_true", help="Classify's rooms only, without the floor's")
    args = parser.parse_args(argv)
    if chromium_path() is None:
        raise SystemExit("No Chromium: install Debian's chromium (what .ci/run does) or set CHROMIUM.")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "CIFAR_RUNS": str(Path(tmp) / "runs"), "PYTHONPATH": str(ROOT)}
        if real_cifar_dir():
            env["CIFAR_DATA"] = str(real_cifar_dir())
        for n in args.sessions:
            ours, line = served_room(env, ROOT / "app.py", CLASSIFY, n, args.photo, args.timeout)
            print(f"Classify {line}", flush=True)
            if not args.no_floor:
                floor, line = served_room(env, FLOOR, "", n, args.photo, args.timeout)
                print(f"floor    {line}\n{against_floor(ours, floor)}", flush=True)


if __name__ == "__main__":
    main()
