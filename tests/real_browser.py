"""The real app served by `streamlit run app.py` and a real Chromium driving it: fixtures and helpers
shared by the browser tests (registered for every test module by conftest's pytest_plugins)."""
import os

import pytest
from conftest import ROOT, chromium_path, make_tree, real_cifar_dir, serve_app

from benchmarks.common import CHROMIUM_ARGS

CHROMIUM = chromium_path()
FAILED = ROOT / "test-artifacts" / "failed"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    # the real CIFAR-10 copy when it is here (the screenshots are the README's pictures), else a tiny tree
    tree = real_cifar_dir() or make_tree(tmp / "data", train_per_class=40, test_per_class=10)
    env = {**os.environ, "CIFAR_DATA": str(tree), "CIFAR_RUNS": str(tmp / "runs"), "PYTHONPATH": str(ROOT)}
    proc, url = serve_app(env, "--server.address", "127.0.0.1")
    yield url, tmp
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """When a browser test fails, what its open pages showed: each page's text in the report (CI's log prints it
    under the failure) and a screenshot in test-artifacts/failed/. A test's screenshots from an earlier run go
    first, so the folder shows only what failed last."""
    report = yield
    if report.when != "call" or "browser" not in getattr(item, "funcargs", {}):
        return report
    for stale in FAILED.glob("*.png"):
        if stale.name.startswith(f"{item.name}-"):  # by prefix: a parametrised name's [] would be a glob class
            stale.unlink(missing_ok=True)
    if report.failed:
        for i, page in enumerate(p for context in item.funcargs["browser"].contexts for p in context.pages):
            try:
                text = page.inner_text("[data-testid='stMain']", timeout=2_000)
                FAILED.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(FAILED / f"{item.name}-{i}.png"), full_page=True, timeout=5_000)
            except Exception as exc:  # a page that crashed or hangs: say so, and keep the test's own failure
                text = f"(could not be read: {exc})"
            report.sections.append((f"page {i}, {page.url}", text[-3000:]))
    return report


def open_page(browser, url, init_script: str | None = None):
    page = browser.new_page(viewport={"width": 1400, "height": 1700})
    if init_script:  # runs in the page before any of the app's scripts
        page.add_init_script(init_script)
    page.goto(url)
    page.wait_for_selector("[data-testid='stSidebar']", timeout=30_000)
    return page


def settle(page):
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=30_000)
    page.wait_for_timeout(500)
