"""The real app in a real browser: `streamlit run app.py` driven through Debian's Chromium.

Skips only when no Chromium is installed (.ci/run installs it). Screenshots of every page land
in test-artifacts/screenshots/ (the README's pictures are copies of them).
"""
import json
import subprocess
import time
from pathlib import Path

import pytest
from conftest import PENCIL, ROOT, real_cifar_dir
from real_browser import CHROMIUM, open_page, settle

from benchmarks.common import train_command

SHOTS = ROOT / "test-artifacts" / "screenshots"
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")


def shoot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def shoot_section(page, heading: str, name: str) -> None:
    """A screenshot with the section titled `heading` at the top of the window (the app scrolls inside itself, so
    a full-page shot shows only the window)."""
    page.evaluate("(h) => [...document.querySelectorAll('h3')].find(e => e.innerText.trim() === h)"
                  ".scrollIntoView({block: 'start'})", heading)
    page.wait_for_timeout(300)
    shoot(page, name)


def plot(title: str) -> str:
    """A JavaScript expression for the drawn Plotly chart whose title holds `title` (undefined until it is drawn).
    By title, not by position: a page's charts are drawn one by one after its text, and which are drawn yet moves
    every index (Classify's first chart is the per-class accuracy in a collapsed expander)."""
    return (f"[...document.querySelectorAll('.js-plotly-plot')].find(p => p.data && p.layout && "
            f"((p.layout.title || {{}}).text || '').includes({title!r}))")


def wait_for_plot(page, title: str) -> str:
    """Wait until the chart titled `title` is drawn; return the JavaScript expression for it. Plotly draws after
    Streamlit has written the text beside it, under load more than settle()'s half second after: beside a training,
    1 upload in 20 on Classify had no chart drawn yet when its headline and settle() were done."""
    page.wait_for_function(f"!!{plot(title)}", timeout=30_000)
    return plot(title)


def plot_points(page, title: str) -> int:
    """How many points the first trace of the chart titled `title` has; -1 while it is not drawn."""
    return page.evaluate(f"() => {{ const p = {plot(title)}; return p ? p.data[0].x.length : -1; }}")


def test_pages_train_live_and_screenshots(server, browser):
    url, tmp = server
    page = open_page(browser, url)
    page.get_by_text("Data is ready").wait_for(timeout=120_000)  # a first decode of CIFAR-10 takes a while
    settle(page)
    shoot(page, "overview")

    page.goto(f"{url}/data_page")
    page.get_by_text("Images per class").first.wait_for(timeout=30_000)
    page.locator("[data-testid='stImageContainer']").nth(31).wait_for(timeout=30_000)
    settle(page)
    shoot(page, "data")

    page.goto(f"{url}/train_page")
    epochs = page.get_by_role("spinbutton", name="Epochs")
    epochs.wait_for(timeout=30_000)  # the "New run" form is open while there is no run yet
    if real_cifar_dir() is None:  # tiny data trains in a blink: make the run long enough to watch
        epochs.fill("150")
        page.get_by_role("spinbutton", name="Learning rate").fill("0.01")
    page.get_by_role("button", name="Start training").click()
    page.get_by_role("button", name="Stop training").wait_for(timeout=60_000)
    # the curve gains points while training, without reloading the page
    deadline, first = time.time() + 60, -1
    while first <= 0 and time.time() < deadline:
        first = plot_points(page, "Training loss")
        page.wait_for_timeout(300)
    assert first > 0
    deadline, later = time.time() + 30, first
    while later <= first and time.time() < deadline:
        page.wait_for_timeout(500)
        later = plot_points(page, "Training loss")
    assert later > first, "the loss curve did not grow while training"
    page.reload()  # a refreshed tab is a new session: it finds the same run with its whole curve
    page.get_by_role("button", name="Stop training").wait_for(timeout=60_000)
    deadline, again = time.time() + 30, -1
    while again < later and time.time() < deadline:
        page.wait_for_timeout(300)
        again = plot_points(page, "Training loss")
    assert again >= later
    page.wait_for_timeout(4000)  # a few more seconds of curve for the picture
    shoot(page, "train-live")
    page.get_by_role("button", name="Stop training").click()
    page.get_by_text("Stopped by request").wait_for(timeout=30_000)
    settle(page)
    shoot(page, "train-stopped")

    page.goto(f"{url}/runs_page")
    page.locator("[data-testid='stDataFrame']").wait_for(timeout=30_000)
    settle(page)
    shoot(page, "runs")
    runs = list((tmp / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "checkpoint.pth").exists()
    page.close()  # its session would stay open on the server through the module's later tests


CAMERA_CALLS = """window.cameraCalls = 0;
if (navigator.mediaDevices) { const ask = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = (c) => { window.cameraCalls++; return ask(c); }; }"""


def test_classify_upload_and_evaluate_pages(server, browser):
    url, _ = server
    page = open_page(browser, f"{url}/classify_page", CAMERA_CALLS)
    page.get_by_text("Classifying with").wait_for(timeout=30_000)
    # real photos no model trained on (photos/README.md, photos/validation/): a tabby cat, and a pencil, which is
    # none of the ten classes
    photos = [ROOT / "photos" / "chelsea.jpg", PENCIL]
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files([str(p) for p in photos])
    page.get_by_text("Closest guess:").wait_for(timeout=60_000)  # the pencil's chart, after the cat's
    settle(page)
    assert page.evaluate(f"{wait_for_plot(page, 'Prediction: cat')}.data[0].x.length") == 10  # a bar per class
    assert page.get_by_text("Prediction: cat").count() == 1  # the shipped model knows a cat when it sees one
    warning = page.locator("[data-testid='stAlert']").filter(has_text="doesn't look like any of the ten classes")
    assert warning.count() == 1 and "pencil.jpg: this doesn't look like" in warning.inner_text()
    assert page.get_by_text("On real photos (not CIFAR's 32×32 images) it is right on").count() == 1  # the card's
    assert page.get_by_text("Looks like one of the ten classes").count() == 1  # the cat
    # the Camera tab was never opened, so the camera was never asked for (a visitor's browser would prompt for it)
    assert page.evaluate("!!navigator.mediaDevices") and page.evaluate("window.cameraCalls") == 0
    page.get_by_role("tab", name="Test images").click()
    page.get_by_role("button", name="Pick random test images").click()
    page.get_by_text("test image #").first.wait_for(timeout=30_000)
    shoot(page, "classify")

    page.goto(f"{url}/evaluate_page")
    if real_cifar_dir() is not None:  # the shipped model fits CIFAR-10: evaluate it rather than the short run
        page.get_by_text("Most confused pairs").wait_for(timeout=240_000)  # the newest run's view, drawn;
        settle(page)  # a dropdown opened while the page still runs is closed by the rerun's redraw
        page.locator("[data-testid='stSelectbox']").first.click()
        page.get_by_role("option", name="Default model (shipped)").click()
        # its test-set logits ship with it (models/evaluations/): no 40 s evaluation first; only the shipped
        # model has a fitted temperature here
        page.get_by_text("with the temperature its run fitted").wait_for(timeout=60_000)
    page.get_by_text("Most confused pairs").wait_for(timeout=240_000)
    page.locator("[data-testid='stImageContainer']").nth(20).wait_for(timeout=30_000)
    settle(page)
    shoot(page, "evaluate")
    page.close()


def test_on_a_phone_the_answer_is_right_under_the_photo_and_grids_wrap(server, browser):
    """A room's visitors open the shared link on phones (≤ 640 px: Streamlit stacks columns). The photo, what the
    network sees and its Grad-CAM are one picture that fits the screen's width, and the answer follows it; as three
    columns they stacked into three pictures each the screen's width, the answer ~1,100 pixels under the photo."""
    url, _ = server
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    page.goto(f"{url}/classify_page?model=default")
    page.get_by_text("Classifying with").wait_for(timeout=30_000)
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files([str(ROOT / "photos" / "chelsea.jpg")])
    chart = wait_for_plot(page, "Prediction: cat")
    pictures = page.locator("[data-testid='stMain'] [data-testid='stImage']")
    pictures.first.wait_for(timeout=30_000)
    assert pictures.count() == 1
    photo = pictures.bounding_box()
    assert photo["x"] >= 0 and photo["x"] + photo["width"] <= 390  # the row fits: nothing to scroll sideways
    answer_top = page.evaluate(f"{chart}.getBoundingClientRect().top")
    assert photo["y"] < answer_top < photo["y"] + 844 / 2  # the answer under the photo, within half a screen
    # a grid of pictures (Data, Evaluate) wraps to the phone's width: thumbnails side by side, none cut off
    page.goto(f"{url}/data_page")
    grid = page.locator("[data-testid='stImageContainer']")
    grid.nth(31).wait_for(timeout=30_000)
    first, second, third = (grid.nth(i).bounding_box() for i in range(3))
    assert first["y"] == second["y"] == third["y"] and third["x"] + third["width"] <= 390
    assert page.evaluate("document.querySelector('[data-testid=stMain]').scrollWidth") <= 390
    context.close()


def test_tutorial_walkthrough_and_a_shared_link(server, browser):
    url, _ = server
    page = open_page(browser, f"{url}/tutorial_page")
    page.get_by_text("4. Train the network").wait_for(timeout=60_000)
    page.get_by_role("button", name="Train it fast").click()
    # the fast preset: seconds on tiny data, under a minute on CIFAR-10 on two idle cores (more beside a busy one)
    page.get_by_text("GroundTruth:").first.wait_for(timeout=300_000)
    page.get_by_text("Accuracy of the network on the").wait_for(timeout=60_000)
    settle(page)
    shoot(page, "tutorial")
    page.close()

    # a link copied from one browser opens the same view in another that shares nothing with it
    context = browser.new_context(viewport={"width": 1400, "height": 1700})
    shared = context.new_page()
    shared.goto(f"{url}/runs_page?run=no-such-run")
    shared.get_by_text("which is not here").wait_for(timeout=60_000)
    run_id = shared.evaluate("new URLSearchParams(location.search).get('run')")
    assert run_id and run_id != "no-such-run"  # the page fell back to a real run and put it in the address
    # the shipped model (not what the page shows by itself, the newest run), on the cat images only
    link = "model=default&class=cat" if real_cifar_dir() else f"run={run_id}"  # tiny data: 3 classes, not 10
    shared.goto(f"{url}/evaluate_page?{link}")
    shared.get_by_text("GroundTruth:").first.wait_for(timeout=120_000)
    settle(shared)
    text = shared.inner_text("[data-testid='stMain']")
    assert "which is not here" not in text
    kept = shared.evaluate("Object.fromEntries(new URLSearchParams(location.search))")
    assert kept == dict(pair.split("=") for pair in link.split("&"))  # the view keeps the address it was given
    if real_cifar_dir():
        assert "with the temperature its run fitted" in text  # only the shipped model has one here
        captions = [line for line in text.splitlines() if line.startswith("GroundTruth:")]
        assert captions and all(c.startswith("GroundTruth: cat") for c in captions)
    context.close()


@pytest.mark.skipif(real_cifar_dir() is None, reason="the shipped model's evaluation is of the original CIFAR-10")
def test_evaluates_first_look_at_the_shipped_model_is_remembered_across_a_restart(browser, tmp_path):
    """Fresh server, fresh session: Evaluate on the shipped model shows its figures from models/evaluations/
    (computing them takes ~40 s on two cores), the server's start having loaded them; and again after the server
    restarts. The bound here leaves room for a loaded CI machine; benchmarks/first_look.py measures the first look
    itself (2.4 s, BENCHMARKS.md) and tests/test_warm.py that it loads nothing."""
    import os

    from conftest import serve_app

    env = {**os.environ, "CIFAR_DATA": str(real_cifar_dir()), "CIFAR_RUNS": str(tmp_path / "runs"),
           "PYTHONPATH": str(ROOT)}
    card = json.loads((ROOT / "models" / "default.json").read_text())
    shown = f"{100 * card['test_accuracy']:.2f} %"  # the card's accuracy, not a guess
    for when in ("fresh", "restarted"):
        proc, url = serve_app(env, "--server.address", "127.0.0.1")
        try:
            page = open_page(browser, f"{url}/evaluate_page?model=default")
            started = time.monotonic()
            try:  # all three within 25 s of opening the page
                for text in (shown, "with the temperature its run fitted", "Most confused pairs"):
                    page.get_by_text(text).wait_for(timeout=max(1.0, 25 - (time.monotonic() - started)) * 1000)
            except Exception:
                shoot(page, f"first-look-{when}-failed")  # what the page showed instead, for whoever reads CI
                raise
            page.close()
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def slider_to_end(page, label: str) -> None:
    """Move the Streamlit slider called `label` to its last value, as a person would with the keyboard."""
    thumb = page.locator("[data-testid='stSlider']").filter(has_text=label).get_by_role("slider")
    thumb.focus()
    thumb.press("End")


FRAME = ("() => [...document.querySelectorAll('[data-testid=\"stMarkdown\"], [data-testid=\"stProgress\"]')]"
         ".map(e => e.innerText).filter(t => t.startsWith('Step ') || t.includes(' %')).join('|')")


def fast_run(runs: Path) -> str:
    """A finished fast-preset run on CIFAR-10 in `runs`, with its snapshots: the one the Tutorial walkthrough trained
    from the browser when it has run (its own test says the click works), else one trained here by the CLI."""
    from core.runs import list_runs

    done = [run for run in list_runs(runs) if run.config().get("preset") == "fast" and run.state() == "done"
            and run.snapshots_file.is_file()]
    if done:
        return done[0].id
    subprocess.run(train_command(runs / "replayed", "--preset", "fast", "--data-dir", real_cifar_dir()), cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL)
    return "replayed"


def upload_photo(page, url: str, link: str) -> None:
    """Classify the cat photo in a new session with Look inside on: the link's ?inside=1, or else its toggle."""
    page.goto(f"{url}/classify_page?{link}")
    page.get_by_text("Classifying with").wait_for(timeout=60_000)
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files([str(ROOT / "photos" / "chelsea.jpg")])
    if "inside=1" not in link:
        page.get_by_text("Look inside: the learning replay and what if").click(timeout=60_000)
        page.wait_for_url("**inside=1**", timeout=30_000)  # the address now carries it


@pytest.mark.skipif(real_cifar_dir() is None, reason="the shipped model is evaluated on the original CIFAR-10")
def test_seeing_inside_a_photo_the_map_and_a_confusion_cell(server, browser):
    url, tmp = server
    # the learning replay: a one-epoch run keeps 24 snapshots
    page = open_page(browser, url)
    upload_photo(page, url, f"run={fast_run(tmp / 'runs')}")
    page.get_by_text("weight snapshots").wait_for(timeout=60_000)
    settle(page)
    first = page.evaluate(FRAME)
    assert first.startswith("Step 0 ")
    slider_to_end(page, "Snapshot")
    page.wait_for_function(f"(b) => ({FRAME})() !== b", arg=first, timeout=30_000)
    settle(page)
    last = page.evaluate(FRAME)
    assert not last.startswith("Step 0 ") and last.split("|")[1:] != first.split("|")[1:]  # its top 3 moved
    shoot_section(page, "Learning replay", "classify-replay")

    # what if: invisible noise flips the cat
    upload_photo(page, url, "model=default&inside=1")
    page.get_by_text("PGD (10 steps)").click()
    settle(page)
    slider_to_end(page, "Adversarial noise")
    page.get_by_text("no longer cat").wait_for(timeout=30_000)
    assert page.get_by_text("the noise, amplified").count() == 1
    shoot_section(page, "What if", "classify-inside")

    # the photo on the map of similar images, with its nearest training images
    page.get_by_role("button", name="Show it on the map of similar images").click()
    page.get_by_text("looks like these").wait_for(timeout=120_000)
    settle(page)
    box = page.evaluate(f"""() => {{
        const map = {wait_for_plot(page, 'Similar images')};
        map.scrollIntoView();
        const r = map.querySelector('.nsewdrag').getBoundingClientRect();
        return [r.x, r.y, r.width, r.height]; }}""")
    x, y, w, h = box
    page.mouse.move(x + w * 0.2, y + h * 0.2)  # a lasso around the middle of the map
    page.mouse.down()
    for fx, fy in ((0.8, 0.2), (0.8, 0.8), (0.2, 0.8), (0.2, 0.25)):
        page.mouse.move(x + w * fx, y + h * fy, steps=8)
    page.mouse.up()
    page.get_by_text(" selected").first.wait_for(timeout=30_000)
    shoot_section(page, "Similar images", "evaluate-map")

    # a click on the confusion matrix's cat row, dog column shows those images
    page.evaluate(f"() => {wait_for_plot(page, 'Confusion')}.scrollIntoView()")
    cell = page.evaluate(f"""() => {{
        const matrix = {plot('Confusion')};
        const l = matrix._fullLayout, r = matrix.querySelector('.nsewdrag').getBoundingClientRect();
        return [r.x + l.xaxis.d2p('dog'), r.y + l.yaxis.d2p('cat')]; }}""")
    page.mouse.click(*cell)
    page.get_by_text("that are cat, predicted as dog").wait_for(timeout=30_000)
    page.close()


def test_presenter_mode_for_a_projector(server, browser):
    """?present=1: no sidebar, large text and charts, Classify's answer as a headline; it follows the presenter to
    another page and stays in the address; leaving it brings the sidebar back."""
    url, _ = server
    page = browser.new_page(viewport={"width": 1920, "height": 1080})  # a projector's 1080p
    page.goto(f"{url}/classify_page?model=default&present=1")
    page.get_by_text("Classifying with").wait_for(timeout=30_000)
    assert not page.locator("[data-testid='stSidebar']").is_visible()
    # the style arrives as its own element, not necessarily before the title is drawn
    page.wait_for_function("parseFloat(getComputedStyle(document.querySelector('h1')).fontSize) >= 60",
                           timeout=30_000)
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(ROOT / "photos" / "chelsea.jpg"))
    page.locator("h2").filter(has_text="cat · ").wait_for(timeout=60_000)
    settle(page)
    assert page.evaluate(f"{wait_for_plot(page, 'Prediction: cat')}.layout.font.size") == 20
    shoot(page, "present")
    page.get_by_role("link", name="Evaluate").click()  # the navigation is at the top
    page.get_by_role("button", name="Leave presenter mode").wait_for(timeout=30_000)
    assert "present=1" in page.url and not page.locator("[data-testid='stSidebar']").is_visible()
    page.get_by_role("button", name="Leave presenter mode").click()
    page.wait_for_selector("[data-testid='stSidebar']", timeout=30_000)
    assert "present" not in page.url
    page.close()


def test_teach_a_class_then_classify_a_photo_of_it(server, browser, tmp_path):
    """Teach "brick" from ten crops of a brick wall, open the new run in Classify, and a crop it never saw is brick."""
    if real_cifar_dir() is None:
        pytest.skip("teaching the shipped model needs the original CIFAR-10 (its classes)")
    from benchmarks.teach import brick_crops

    url, _ = server
    crops = brick_crops(tmp_path, 11)
    page = open_page(browser, f"{url}/teach_page")
    page.get_by_label("Name of the new class").fill("brick")
    page.keyboard.press("Enter")
    page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files([str(p) for p in crops[:10]])
    page.get_by_text("10 photos ready").wait_for(timeout=60_000)  # the server has every upload (not just the chips)
    settle(page)
    page.get_by_role("button", name="Teach", exact=True).click()
    page.locator("[data-testid='stAlert']").first.wait_for(timeout=120_000)
    assert "Taught “brick”" in page.locator("[data-testid='stAlert']").first.inner_text()
    settle(page)
    shoot(page, "teach")
    page.get_by_role("button", name="Classify with it").click()
    page.get_by_text("Classifying with").wait_for(timeout=30_000)
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(crops[10]))
    page.get_by_text("Prediction: brick").wait_for(timeout=60_000)
    page.close()
