"""The Teach page (AppTest): a class taught from uploads becomes a run that Classify and Evaluate open; too few
photos, a name the model has, unreadable files and a base of other classes each get a message, and write nothing."""
import json

import image_zoo
import pytest
import torch
from conftest import CLASSES, open_app
from test_teach import yellow_photos

from core.models import build_model
from core.runs import list_runs


@pytest.fixture
def teach_env(env, monkeypatch, tmp_path):
    """The tiny tree's dashboard with a models/ folder holding a network of its three classes."""
    models = tmp_path / "models"
    models.mkdir()
    torch.manual_seed(0)
    torch.save(build_model("widenet", 8, len(CLASSES)).state_dict(), models / "tiny.pth")
    (models / "tiny.json").write_text(json.dumps({"classes": list(CLASSES), "model": "widenet"}))
    monkeypatch.setenv("CIFAR_MODELS", str(models))
    return env


def said(message) -> str:
    return message.value.replace("\\", "")  # literal() escapes Markdown's punctuation


def uploads(folder, count=12):
    return [(p.name, p.read_bytes(), "image/png") for p in sorted(folder.iterdir())[:count]]


def teach_page(photos, name="yellow"):
    at = open_app("dashboard/teach_page.py")
    at.selectbox[0].set_value("File models/tiny.pth")
    at.text_input[0].set_value(name)
    at.file_uploader[0].set_value(photos)
    next(b for b in at.button if b.label == "Teach").click().run()
    assert not at.exception, at.exception
    return at


def test_teach_a_class_then_classify_and_evaluate_it(teach_env, tmp_path):
    at = teach_page(uploads(yellow_photos(tmp_path / "yellow")))
    runs = list_runs(teach_env / "runs")
    assert len(runs) == 1 and runs[0].id.endswith("-teach") and runs[0].state() == "done"
    assert "Taught “yellow”" in at.success[0].value and len(at.metric) == 3
    table = at.dataframe[0].value
    assert list(table["held out"]).count(True) == 2 and set(table[table["held out"]]["answer"]) == {"yellow"}

    at = open_app("dashboard/classify_page.py", {"run": runs[0].id})  # what "Classify with it" opens
    assert at.selectbox[0].value == f"Run {runs[0].id}" and "4 classes" in at.caption[0].value
    at = open_app("dashboard/evaluate_page.py", {"run": runs[0].id})
    assert not at.error and at.metric[0].value.endswith(" %")


def test_the_camera_is_drawn_only_while_its_expander_is_open_and_its_shots_stay(teach_env):
    """A camera_input turns the camera on as soon as it is drawn, collapsed or not: Teach draws it only once "Or take
    them with the camera" is opened, and a shot taken there still counts after it is closed."""
    at = open_app("dashboard/teach_page.py")
    assert not at.camera_input
    at.session_state["teach-camera-open"] = True  # what a click on the expander sets, with a rerun
    at.run()
    assert len(at.camera_input) == 1
    at.camera_input[0].set_value(("shot.jpg", image_zoo.good()["photo.jpg"], "image/jpeg")).run()
    assert any(c.value.startswith("1 photo ready") for c in at.caption)
    at.session_state["teach-camera-open"] = False
    at.run()
    assert not at.camera_input and any(c.value.startswith("1 photo ready") for c in at.caption)
    assert not at.exception


@pytest.mark.parametrize("name, count, message", [
    ("yellow", 3, "needs at least 10 photos of it; 3 were given"),
    ("Green", 12, "“Green” is already one of the model's classes"),
    ("", 12, "give the new class a name"),
])
def test_bad_requests_get_a_message_and_write_nothing(teach_env, tmp_path, name, count, message):
    at = teach_page(uploads(yellow_photos(tmp_path / "yellow"), count), name)
    assert message in said(at.error[0]) and not list_runs(teach_env / "runs")


def test_unreadable_files_are_named_and_left_out(teach_env, tmp_path):
    photos = uploads(yellow_photos(tmp_path / "yellow"), 9) + [("notes.png", b"not a picture", "image/png")]
    at = teach_page(photos)
    assert "**notes.png** is left out: this file is not an image" in said(at.error[0])
    assert "needs at least 10 photos of it; 9 were given" in said(at.error[1])
    assert not list_runs(teach_env / "runs")


def test_a_base_of_other_classes_is_refused(env, tmp_path):
    at = open_app("dashboard/teach_page.py")  # the shipped model knows CIFAR-10's ten; the tiny data has three
    at.text_input[0].set_value("yellow")
    at.file_uploader[0].set_value(uploads(yellow_photos(tmp_path / "yellow")))
    next(b for b in at.button if b.label == "Teach").click().run()
    assert "are not the data's" in said(at.error[0]) and not list_runs(env / "runs")
