"""The real app served by `streamlit run app.py` and a real Chromium driving it: fixtures and helpers
shared by the browser tests (registered for every test module by conftest's pytest_plugins)."""
import os

import pytest
from conftest import ROOT, chromium_path, make_tree, real_cifar_dir, serve_app

from benchmarks.common import CHROMIUM_ARGS

CHROMIUM = chromium_path()


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
