"""Every page through Streamlit's AppTest, on tiny generated data and a temporary runs folder."""

import os
import re

import pytest
from conftest import PENCIL, ROOT, open_app, pictures

from core.config import PRESETS, TrainConfig
from core.launcher import start_training, stop_training, wait_for
from core.run_table import row
from core.runs import list_runs
from dashboard.common import literal

PAGES = ["dashboard/overview.py", "dashboard/tutorial_page.py", "dashboard/data_page.py", "dashboard/train_page.py",
         "dashboard/runs_page.py", "dashboard/teach_page.py"]


def test_each_page_has_a_title_and_an_icon_of_its_own():
    from dashboard.pages import _PAGES
    assert len({title for _, title, _ in _PAGES.values()}) == len({icon for *_, icon in _PAGES.values()}) \
        == len(_PAGES)


@pytest.fixture
def no_data(monkeypatch, tmp_path):
    monkeypatch.setenv("CIFAR_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("CIFAR_RUNS", str(tmp_path / "runs"))


def texts(at) -> str:
    parts = [e.value for kind in ("markdown", "error", "info", "success", "warning", "caption", "title", "subheader")
             for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


@pytest.mark.parametrize("page", PAGES)
def test_pages_render_with_data(env, page):
    at = open_app(page)
    assert "no data found" not in texts(at)


@pytest.mark.parametrize("page", PAGES)
def test_pages_render_without_data(no_data, page):
    at = open_app(page)
    assert "no data found" in texts(at)


def test_data_page_without_data_explains_and_offers_download(no_data):
    at = open_app("dashboard/data_page.py")
    assert "No data found in" in at.error[0].value and literal("--data-dir") in at.error[0].value
    assert literal("train/<class>/*.jpg") in at.error[0].value  # shown as written, not as Markdown
    labels = [b.label for b in at.button]
    assert "Download CIFAR-10" in labels and "Check again" in labels


@pytest.mark.parametrize("text", ["train/<class>/*.jpg and test/<class>/*.jpg", "a_b_c **x** `y` [z](w)",
                                  ":material/home: :smile: $5 and $6", "<b>html</b> \\ back # h | t ~ s"])
def test_messages_render_literally(text):
    # CommonMark renders a backslash-escaped ASCII punctuation mark as itself (checked in Chromium too);
    # so: nothing left unescaped, and removing the escapes gives the text back
    shown = literal(text)
    assert re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", shown) == text
    assert not re.search(r"(?<!\\)[*_`<>\[\]$:]", re.sub(r"\\.", "", shown))


def test_data_page_shows_counts_grid_and_filter(env):
    at = open_app("dashboard/data_page.py")
    assert [m.value for m in at.metric][:3] == ["36", "12", "3"]
    assert any(m.value.startswith("**Source: class-per-folder images**") for m in at.markdown)
    assert len(pictures(at)) == 32  # 36 images, 32 shown
    at.selectbox[0].select("green").run()
    assert not at.exception and len(pictures(at)) == 12
    assert {p.caption for p in pictures(at)} == {"green"}
    at.selectbox[0].select("All classes").run()
    order = [p.url for p in pictures(at)]
    next(b for b in at.button if b.label == "Reshuffle").click().run()
    assert [p.url for p in pictures(at)] != order


def test_overview_points_at_next_step(env):
    at = open_app()
    assert "Data is ready" in texts(at)
    assert [m.value for m in at.metric][0] == "48 images"


def test_overview_classifies_a_dropped_photo_with_the_best_model(env):
    at = open_app()
    assert "The best model here: **Default model \\(shipped\\)**" in texts(at)  # no run yet: the shipped one
    at.file_uploader[0].set_value([("chelsea.jpg", (ROOT / "photos" / "chelsea.jpg").read_bytes(), "image/jpeg")])
    at.run()
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) == 1 and len(at.get("image")) == 1  # the photo beside what the network sees
    assert "Prediction: " in at.get("plotly_chart")[0].proto.spec  # the probability bars' title
    at.file_uploader[0].set_value([("pencil.jpg", PENCIL.read_bytes(), "image/jpeg")]).run()
    assert not at.exception and "any of the ten classes" in at.warning[0].value
    assert "Closest guess: " in at.get("plotly_chart")[0].proto.spec  # none of the ten: its top class, as a guess


def test_overview_shows_the_run_training_now_and_the_recent_runs(env):
    finished = start_training(TrainConfig(epochs=4, lr=0.01), env / "runs", data_dir=os.environ["CIFAR_DATA"])
    assert wait_for(finished, ("done", "failed"), 90) == "done"
    assert row(finished)["best_accuracy"] > 0.9  # the tinted classes are easy: above the shipped model's accuracy
    running = start_training(TrainConfig(epochs=400, lr=0.01), env / "runs", data_dir=os.environ["CIFAR_DATA"])
    try:
        assert wait_for(running, ("running",), 60) == "running"
        at = open_app()
        assert not at.exception
        headers = [h.value for h in at.subheader]
        assert headers[:3] == ["Try it on a photo", "Training now", "Recent runs"]
        assert any(p.text.startswith(running.id) for p in at.get("progress"))
        # a tiny run beats the shipped model's accuracy on its own three classes, so it is "the best model here"
        assert f"**Run {literal(finished.id)}**" in texts(at)
    finally:
        stop_training(running)
        wait_for(running, ("stopped", "interrupted", "failed", "done"), 60)


def _number(at, label):
    return next(n for n in at.number_input if n.label == label)


def test_train_form_rejects_bad_values_with_messages(env):
    at = open_app("dashboard/train_page.py")
    _number(at, "Epochs").set_value(0)
    _number(at, "Learning rate").set_value(-1.0)
    _number(at, "Momentum").set_value(1.5)
    next(b for b in at.button if b.label == "Start training").click().run()
    errors = "\n".join(e.value for e in at.error)
    assert "**Epochs**: must be between 1 and 1000" in errors
    assert "**Learning rate**: must be above 0" in errors and "**Momentum**" in errors
    assert list_runs(env / "runs") == []  # nothing started


def test_start_a_run_and_see_it_finish(env):
    at = open_app("dashboard/train_page.py")
    _number(at, "Learning rate").set_value(0.01)
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception
    runs = list_runs(env / "runs")
    assert len(runs) == 1 and at.session_state["active_run"] == runs[0].id
    assert wait_for(runs[0], ("done", "failed"), 90) == "done", runs[0].log_file.read_text()
    at.run()
    assert "Finished:" in texts(at) and "test accuracy" in texts(at)
    assert len(at.get("plotly_chart")) == 2
    log = at.code[0]  # its first line names the data and run folders: wrapped, not behind a scrollbar
    assert log.value.startswith("Training on CPU with") and log.proto.wrap_lines
    next(b for b in at.button if b.label == "Evaluate this run").click().run()
    assert not at.exception
    assert at.selectbox[0].value == f"Run {runs[0].id}" and at.metric[0].value.endswith(" %")

    # a second tab (a fresh session) finds the same run on the Runs page
    runs_page = open_app("dashboard/runs_page.py")
    table = runs_page.dataframe[0].value
    assert list(table["name"]) == [runs[0].id] and list(table["state"]) == ["done"]
    downloads = {b.label: b for b in runs_page.get("download_button")}
    assert {"Download model.pth", "Export TorchScript (.pt)", "Export ONNX (.onnx)"} <= set(downloads)
    assert not downloads["Export ONNX (.onnx)"].proto.disabled  # its packages are in requirements.txt


def test_stop_button_stops_the_run(env, tiny_tree):
    run = start_training(TrainConfig(epochs=500, lr=0.01), env / "runs", data_dir=str(tiny_tree))
    assert wait_for(run, ("running",), 60) == "running"
    at = open_app("dashboard/train_page.py")  # a new session finds the running run
    assert f"Run {run.id}" in texts(at)
    next(b for b in at.button if b.label == "Stop training").click().run()
    assert wait_for(run, ("stopped",), 10) == "stopped"
    at.run()
    assert "Stopped by request" in texts(at)
    assert any(b.label == "Resume training" for b in at.button)


def test_runs_page_rename_and_delete(env, finished_run):
    at = open_app("dashboard/runs_page.py")
    at.text_input[0].set_value("../outside")
    next(b for b in at.button if b.label == "Rename").click().run()
    assert "not a valid run name" in at.error[0].value
    at.text_input[0].set_value("baseline")
    next(b for b in at.button if b.label == "Rename").click().run()
    assert [r.id for r in list_runs(env / "runs")] == ["baseline"]
    at = open_app("dashboard/runs_page.py")
    delete = next(b for b in at.button if b.label == "Delete")
    assert delete.disabled
    at.checkbox[0].check().run()
    next(b for b in at.button if b.label == "Delete").click().run()
    assert list_runs(env / "runs") == []


def test_train_form_checks_the_number_of_processes(env):
    at = open_app("dashboard/train_page.py")
    _number(at, "Processes (DDP)").set_value(0)
    next(b for b in at.button if b.label == "Start training").click().run()
    assert any("**Processes (DDP)**: must be between 1 and" in e.value for e in at.error)
    at = open_app("dashboard/train_page.py")
    _number(at, "Processes (DDP)").set_value(2)
    _number(at, "Batch size").set_value(1)
    next(b for b in at.button if b.label == "Start training").click().run()
    assert any("at least the number of processes (2)" in e.value for e in at.error)
    assert list_runs(env / "runs") == []


def test_a_speed_preset_fills_the_form_and_its_options_reach_the_run(env):
    at = open_app("dashboard/train_page.py")
    preset = at.selectbox[0]
    assert [o.split(" — ")[0] for o in preset.options] == ["tutorial", "fast", "cpu-best", "gpu", "gpu-best"]
    preset.select(next(o for o in preset.options if o.startswith("fast —"))).run()
    model = next(s for s in at.selectbox if s.label == "Model")
    assert model.value == "widenet" and _number(at, "Batch size").value == PRESETS["fast"].batch_size == 96
    assert next(c for c in at.checkbox if c.label == "Nesterov momentum").value
    assert next(s for s in at.selectbox if s.label == "Test-time augmentation").value == "flip"
    from core.devices import native_bf16
    assert next(c for c in at.checkbox if c.label == "bf16 autocast").value == native_bf16()  # off where emulated
    next(c for c in at.checkbox if c.label == "Channels-last layout").uncheck()
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception
    run = list_runs(env / "runs")[0]
    assert wait_for(run, ("done", "failed"), 90) == "done", run.log_file.read_text()
    config = run.config()
    assert config["preset"] == "fast" and config["train"]["model"] == "widenet"
    assert config["train"]["nesterov"] and config["train"]["tta"] == "flip" and not config["train"]["channels_last"]


def test_every_training_setting_is_a_cli_flag_and_a_form_field(env):
    """Both surfaces are generated from TrainConfig's fields: a new setting appears in each by itself."""
    from dataclasses import fields

    from core.cli import _parser

    train = next(a for a in _parser()._subparsers._group_actions[0].choices.values() if a.prog.endswith("train"))
    flags = {option for action in train._actions for option in action.option_strings}
    at = open_app("dashboard/train_page.py")
    shown = {w.label for kind in ("number_input", "selectbox", "checkbox") for w in at.get(kind)}
    for f in fields(TrainConfig):
        assert "--" + f.name.replace("_", "-") in flags, f.name
        assert f.metadata["label"] in shown, f.name
        assert f.metadata["help"], f.name


def test_the_runs_table_keeps_numbers_as_numbers(env, tiny_tree, finished_run):
    assert wait_for(start_training(TrainConfig(epochs=1, lr=0.01), env / "runs", data_dir=str(tiny_tree)),
                    ("done", "failed"), 90) == "done"  # beside the finished run's two epochs
    table = open_app("dashboard/runs_page.py").dataframe[0].value
    assert sorted(table["epochs done"]) == [1, 2] and table["training time (s)"].dtype.kind == "f"
    assert table["best test acc (%)"].dtype.kind == "f" and table["started"].dtype.kind == "M"


def test_the_tutorial_page_walks_the_five_steps_and_trains_a_run(env):
    at = open_app("dashboard/tutorial_page.py")
    assert not at.exception
    assert [h.value for h in at.header] == [
        "1. Load and normalise the data", "2. Define a convolutional neural network",
        "3. Define a loss function and optimiser", "4. Train the network", "5. Test the network on the test data"]
    network, loss = at.code[0].value, at.code[1].value
    assert network.startswith("class Net(nn.Module):") and "def forward(self, x):" in network  # the whole class
    assert "lr=0.001, momentum=0.9" in loss
    assert list(at.dataframe[1].value["layer"]) == ["conv1", "pool", "conv2", "pool", "fc1", "fc2", "fc3"]
    normalised = at.dataframe[0].value["normalised"]
    assert all(-1 <= float(v.split(" … ")[0]) <= float(v.split(" … ")[1]) <= 1 for v in normalised)
    next(b for b in at.button if b.label.startswith("Train it fast")).click().run()
    runs = list_runs(env / "runs")
    assert len(runs) == 1 and at.session_state["tutorial_run"] == runs[0].id  # an ordinary run
    assert wait_for(runs[0], ("done", "failed"), 90) == "done"
    at.run()
    assert not at.exception
    captions = [p.caption for p in pictures(at)]
    assert sum(c.startswith("GroundTruth: ") and " · Predicted: " in c for c in captions) == 4
    assert at.code[-1].value.startswith("Accuracy of the network on the 12 test images: ")
    assert at.code[-1].value.count("Accuracy for class:") == 3
    # step 4 replays the run's learning on the first test image, from its initial weights
    assert "Learning replay" in [h.value for h in at.subheader]
    assert next(s for s in at.select_slider if s.label == "Snapshot").options[0] == "step 0 (epoch 0.00)"
