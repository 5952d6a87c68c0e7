"""The one-file HTML report of a run: written by the CLI and offered by the pages, complete, and working
offline in a real browser."""
import re

import pytest
from conftest import open_app
from real_browser import CHROMIUM
from test_cli import FAST, cli

from core.runs import Run


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    from conftest import make_tree
    tmp = tmp_path_factory.mktemp("report")
    tree = make_tree(tmp / "data")
    run_dir = tmp / "runs" / "reported"
    out = cli("train", "--data-dir", tree, "--run-dir", run_dir, *FAST, "--val-images", "6")
    assert out.returncode == 0, out.stderr
    return run_dir, tree, tmp


@pytest.fixture(scope="module")
def report(finished):
    run_dir, tree, tmp = finished
    path = tmp / "report.html"
    out = cli("report", run_dir, "-o", path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"wrote {path}")
    return path, path.read_text(encoding="utf-8")


def test_the_report_holds_every_section_and_needs_nothing_from_outside(report, finished):
    _, text = report
    assert text.count("<script") == 1 + 4  # Plotly's code once, then one script per chart
    for section in ("Learning curves", "Per class", "Test images", "Most confident mistakes", "Model card",
                    "Settings"):
        assert f"<h2>{section}</h2>" in text
    assert len(re.findall(r'<img src="data:image/png;base64,', text)) == 12 + 12  # the 12 test images, mistakes
    assert text.count("<figcaption>GroundTruth: ") == 12
    page = text[text.index("</script>"):]  # after Plotly's own code (whose strings mention its website)
    assert not re.search(r'(src|href)="(https?:)?//', page)  # no file, font or script fetched from anywhere
    assert "temperature" in text and "none of the ten" in text  # the run held images out: its card says so
    assert f"Run {Run(finished[0]).id}" in text


def test_report_errors_are_one_clear_line(finished, tmp_path):
    _, _, tmp = finished
    out = cli("report", tmp_path, "-o", tmp_path / "r.html")
    assert out.returncode == 1 and "is not a run directory" in out.stderr and "Traceback" not in out.stderr
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text('{"train": {}}')
    out = cli("report", unfinished, "-o", tmp_path / "r.html")
    assert out.returncode == 1 and "has no results yet" in out.stderr and not (tmp_path / "r.html").exists()


def test_a_report_without_the_test_set_says_so(finished, tmp_path):
    run_dir, _, _ = finished
    out = cli("report", run_dir, "-o", tmp_path / "r.html", "--data-dir", tmp_path / "nothing-here")
    assert out.returncode == 0 and "no test images in the report" in out.stderr
    text = (tmp_path / "r.html").read_text()
    assert "was not at hand" in text and "<h2>Learning curves</h2>" in text


def test_runs_and_evaluate_offer_the_report(finished, monkeypatch):
    run_dir, tree, _ = finished
    monkeypatch.setenv("CIFAR_DATA", str(tree))
    monkeypatch.setenv("CIFAR_RUNS", str(run_dir.parent))
    for page in ("dashboard/runs_page.py", "dashboard/evaluate_page.py"):
        at = open_app(page, {"run": "reported"})
        assert not at.exception
        assert any(b.label == "Download report (HTML)" for b in at.get("download_button")), page


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")
def test_the_report_opens_offline_in_chromium_with_every_chart_and_image(report, browser):
    path, _ = report
    context = browser.new_context()
    context.set_offline(True)
    page = context.new_page()
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.as_uri())
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 4", timeout=30_000)
    drawn = page.evaluate("[...document.querySelectorAll('.js-plotly-plot')].map(p => p.data.length)")
    assert len(drawn) == 4 and all(n >= 1 for n in drawn)
    images = page.evaluate("[...document.images].map(i => i.complete && i.naturalWidth > 0)")
    assert len(images) == 24 and all(images)
    assert errors == []
    context.close()
