"""Evaluate and Classify through AppTest: good and bad uploads, checkpoints of every kind."""
import json
import pickle

import image_zoo
import pytest
import torch
from conftest import HOSTILE_PICKLE, open_app, pictures

from core import ood
from core.images import FRAMING
from core.models import Net
from dashboard.common import literal


def test_evaluate_shows_the_runs_accuracy_charts_and_images(finished_run):
    at = open_app("dashboard/evaluate_page.py")
    assert at.selectbox[0].value == f"Run {finished_run.id}"  # the newest run is preselected
    metrics = finished_run.metrics()
    assert at.metric[0].value == f"{100 * metrics['accuracy']:.2f} %"
    # per-class bars, the confusion heatmap, the reliability diagram, the map of similar images
    assert [c.key for c in at.get("plotly_chart")][1:] == ["confusion", None, "map"]
    assert "Train with a validation split" in " ".join(c.value for c in at.caption)  # nothing fitted yet
    captions = [p.caption for p in pictures(at) if not p.caption.startswith("#")]
    # beside a confusion cell's images: the test grid (all 12 tiny test images), the top losses, then the network:
    # conv1's 6 filters in one picture, one test image and the 16 feature maps of conv2 (the tutorial Net's)
    assert len(captions) == 12 + 12 + 1 + 1 + 16
    assert all(c.startswith("channel ") for c in captions[-16:])
    layers = at.dataframe[1].value
    assert list(layers["layer"]) == ["conv1", "pool", "conv2", "pool", "fc1", "fc2", "fc3"]
    assert layers["parameters"].sum() == sum(p.numel() for p in Net(num_classes=3).parameters())
    captions = captions[:12]
    assert all(c.startswith("GroundTruth: ") and " · Predicted: " in c for c in captions)
    at.radio[1].set_value("wrong").run()
    wrong = [p.caption for p in pictures(at) if p.caption.startswith("GroundTruth")]
    assert all(c.split(" · ")[0][13:] != c.split("Predicted: ")[1] for c in wrong)
    assert len(wrong) == metrics["total"] - metrics["correct"] or at.info


def test_evaluate_shows_calibration_with_the_runs_temperature(finished_run):
    metrics = finished_run.metrics()
    finished_run.metrics_file.write_text(json.dumps({**metrics, "temperature": 2.5}))
    at = open_app("dashboard/evaluate_page.py")
    assert not at.exception
    caption = next(c.value for c in at.caption if c.value.startswith("Expected calibration error"))
    assert "as trained" in caption and "with the temperature its run fitted" in caption
    diagram = at.get("plotly_chart")[2].proto.spec
    assert "temperature 2.50" in diagram and "perfectly calibrated" in diagram


@HOSTILE_PICKLE
def test_evaluate_refuses_unsafe_and_mismatched_checkpoints(env, tmp_path):
    at = open_app("dashboard/evaluate_page.py")
    at.radio[0].set_value("Upload a .pth file").run()
    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))

    at.file_uploader[0].set_value(("evil.pth", pickle.dumps({"conv1.weight": Evil()}), "application/octet-stream"))
    at.run()
    assert "not a plain PyTorch weights file" in at.error[0].value and not marker.exists()

    at.file_uploader[0].set_value(("junk.pth", b"\x00\x01 random bytes" * 50, "application/octet-stream"))
    at.run()
    assert "not a plain PyTorch weights file" in at.error[0].value

    import io
    buffer = io.BytesIO()
    torch.save(Net().state_dict(), buffer)  # 10 classes; the tiny data has 3
    at.file_uploader[0].set_value(("cifar_net.pth", buffer.getvalue(), "application/octet-stream"))
    at.run()
    assert "predicts 10 classes but the data has 3" in at.error[0].value

    buffer = io.BytesIO()
    torch.save(torch.nn.Linear(4, 3).state_dict(), buffer)
    at.file_uploader[0].set_value(("linear.pth", buffer.getvalue(), "application/octet-stream"))
    at.run()
    assert "matches no known architecture" in at.error[0].value
    assert not at.exception


def probability_charts(at) -> list:
    return [chart for chart in at.get("plotly_chart") if chart.key.startswith("p-")]


def test_classify_every_good_upload_kind(env):
    at = open_app("dashboard/classify_page.py")
    assert "Default model (shipped)" in at.selectbox[0].options
    files = image_zoo.good()
    at.file_uploader[0].set_value([(name, data, "image/*") for name, data in files.items()])
    at.run()
    assert not at.exception and not at.error
    assert len(probability_charts(at)) == len(files)
    # the shipped card's per-class accuracy, before any upload (its chart code is loaded with the page)
    assert [c.key for c in at.get("plotly_chart")][0] == "per-class"
    table = at.dataframe[0].value
    assert list(table["image"]) == list(files) and table["prediction"].str.len().min() > 0
    assert any(b.label == "Download results (CSV)" for b in at.get("download_button"))


def test_one_photo_gets_no_table_repeating_it_but_its_row_still_downloads(env):
    at = open_app("dashboard/classify_page.py")
    at.file_uploader[0].set_value([("photo.jpg", image_zoo.good()["photo.jpg"], "image/jpeg")])
    at.run()
    assert not at.exception and not at.error and len(probability_charts(at)) == 1
    assert not at.dataframe
    assert any(b.label == "Download results (CSV)" for b in at.get("download_button"))


def test_classify_bad_uploads_get_messages_and_the_page_keeps_working(env):
    at = open_app("dashboard/classify_page.py")
    bad = image_zoo.bad()
    files = [(name, data, "image/*") for name, (data, _) in bad.items()]
    files.append(("ok.jpg", image_zoo.good()["photo.jpg"], "image/jpeg"))
    at.file_uploader[0].set_value(files)
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == len(bad)
    for (name, (_, fragment)), message in zip(bad.items(), errors):
        assert literal(name) in message and literal(fragment) in message  # shown as written
    assert len(probability_charts(at)) == 1  # the good one was still classified


def test_the_camera_is_drawn_only_while_its_tab_is_open_and_its_shot_is_classified(env):
    """A camera_input turns the visitor's camera on (and the browser asks for it) as soon as it is drawn, in a closed
    tab too: Classify draws it only once the Camera tab is opened (tests/test_browser.py sees the browser's side)."""
    at = open_app("dashboard/classify_page.py")
    assert at.session_state["source"] == "Upload" and not at.camera_input
    at.session_state["source"] = "Camera"  # what a click on the tab sets, with a rerun
    at.run()
    assert len(at.camera_input) == 1
    at.camera_input[0].set_value(("shot.jpg", image_zoo.good()["photo.jpg"], "image/jpeg")).run()
    assert not at.exception and len(probability_charts(at)) == 1
    at.session_state["source"] = "Upload"  # leaving the tab turns the camera off
    at.run()
    assert not at.camera_input and not at.exception


def test_classify_test_images_with_a_run(finished_run):
    at = open_app("dashboard/classify_page.py")
    at.selectbox[0].select(f"Run {finished_run.id}").run()
    next(b for b in at.button if b.label == "Pick random test images").click().run()
    assert not at.exception and len(at.get("plotly_chart")) == 4
    # a test image is what the network sees: each shown once, beside its Grad-CAM (not twice side by side)
    shown = [p.caption for p in pictures(at) if p.caption.startswith("test image")]
    assert len(shown) == 4 and all(c.endswith(" · where the evidence is (Grad-CAM)") for c in shown)
    assert not any("what the network sees" in c for c in shown)
    assert "3 classes" in at.caption[0].value


@pytest.mark.parametrize("card", ["{not json", '["a list"]', '{"test_accuracy": "high", "date": 3}'])
def test_a_malformed_model_card_leaves_the_classify_page_working(env, monkeypatch, card):
    models = env / "models"
    models.mkdir()
    torch.save(Net(num_classes=3).state_dict(), models / "default.pth")
    (models / "default.json").write_text(card)
    monkeypatch.setenv("CIFAR_MODELS", str(models))
    at = open_app("dashboard/classify_page.py")
    assert not at.exception and not at.error
    assert at.caption[0].value.startswith("Classifying with **Default model (shipped)**")


REAL = {"framing": FRAMING, "photos_of_the_ten": 41, "photos_of_none": 73, "accuracy": 0.7073, "ten_flagged": 0.0244,
        "ten_not_sure": 0.15, "none_flagged": 0.4, "none_not_sure": 0.3}


@pytest.mark.parametrize("real", [[REAL], [{**REAL, "framing": "elsewhere"}], [{**REAL, "accuracy": "high"}],
                                  [{**REAL, "photos_of_none": True}], "a string"])
def test_classify_says_what_to_expect_of_real_photos_where_the_card_measured_it(env, monkeypatch, real):
    models = env / "models"
    models.mkdir()
    torch.save(Net(num_classes=3).state_dict(), models / "default.pth")
    (models / "default.json").write_text(json.dumps({"test_accuracy": 0.93, "photos": {"real_photos": real}}))
    monkeypatch.setenv("CIFAR_MODELS", str(models))
    at = open_app("dashboard/classify_page.py")
    assert not at.exception and not at.error
    said = [c.value for c in at.caption if "real photos" in c.value]
    if real == [REAL]:
        assert said == ["On real photos (not CIFAR's 32×32 images) it is right on 71 % of 41 photos "
                        "of its classes; of 73 photos of other things it calls 40 % none of its classes and 30 % not "
                        "sure, and it calls 2 % of the photos of its classes none of them (photos/validation)."]
    else:  # another framing, or figures that are not numbers: nothing is said rather than something wrong
        assert said == []


def test_classify_says_what_to_expect_in_the_framing_picked(env, monkeypatch):
    models = env / "models"
    models.mkdir()
    torch.save(Net(num_classes=3).state_dict(), models / "default.pth")
    rows = [REAL, {**REAL, "framing": "squeeze", "accuracy": 0.8293}]
    (models / "default.json").write_text(json.dumps({"test_accuracy": 0.93, "photos": {"real_photos": rows}}))
    monkeypatch.setenv("CIFAR_MODELS", str(models))
    at = open_app("dashboard/classify_page.py")

    def said():
        return [c.value for c in at.caption if "real photos" in c.value]

    assert "right on 71 % of 41" in said()[0]
    framing = next(r for r in at.radio if r.label.startswith("What the network sees"))
    framing.set_value("squeeze").run()
    assert "right on 83 % of 41" in said()[0]
    framing.set_value("crop").run()  # not measured on this card: nothing said rather than another framing's figure
    assert not at.exception and said() == []


@pytest.mark.parametrize("threshold, unsure_below, said", [(1e6, None, ood.UNFAMILIAR), (-1e6, None, ood.FAMILIAR),
                                                        (-1e6, 1e6, ood.UNSURE)])
def test_classify_says_whether_a_photo_is_one_of_the_classes_none_or_not_sure(env, monkeypatch, threshold,
                                                                               unsure_below, said):
    models = env / "models"
    models.mkdir()
    torch.save(Net().state_dict(), models / "default.pth")
    (models / "default.json").write_text(json.dumps({"test_accuracy": 0.5, "temperature": 1.2, "ood_score": ood.SCORE,
                                                     "ood_threshold": threshold, "ood_unsure_below": unsure_below}))
    monkeypatch.setenv("CIFAR_MODELS", str(models))
    at = open_app("dashboard/classify_page.py")
    coffee = (ood.PHOTOS / "coffee.jpg").read_bytes()
    at.file_uploader[0].set_value([("coffee.jpg", coffee, "image/jpeg"), ("again.jpg", coffee, "image/jpeg")])
    at.run()
    assert not at.exception and not at.error
    warnings, infos = [w.value for w in at.warning], [i.value for i in at.info]
    assert bool(warnings) is (said == ood.UNFAMILIAR)
    if said == ood.UNFAMILIAR:
        assert literal("coffee.jpg") in warnings[0]
        assert literal("this doesn't look like any of the ten classes") in warnings[0]
    elif said == ood.UNSURE:
        assert any(literal("coffee.jpg") in i and literal("not sure this is one of the ten classes") in i
                   for i in infos)
    else:
        assert any(c.value.startswith("Looks like one of the ten classes") for c in at.caption)
    charts = at.get("plotly_chart")
    assert len(charts) == 2  # a photo's top classes, and under them the score on its gauge, whatever the verdict
    title = "Closest guess: " if said == ood.UNFAMILIAR else "Prediction: "  # none of the ten: a guess, said so
    assert title in charts[0].proto.spec and '"indicator"' in charts[0].proto.spec
    assert list(at.dataframe[0].value["verdict"]) == [said, said]
    assert list(at.dataframe[0].value["none of the classes"]) == [said == ood.UNFAMILIAR] * 2
    at.radio[0].set_value("crop").run()  # the other framing classifies the same uploads again
    assert not at.exception and len(at.get("plotly_chart")) == 2


@pytest.fixture
def two_runs(finished_run):
    """The finished run and a copy of it under another id: two runs to choose between by link."""
    import shutil
    other = finished_run.path.parent / "other-run"
    shutil.copytree(finished_run.path, other)
    return finished_run.id, "other-run"


def test_evaluate_and_classify_open_the_model_and_class_a_link_names(two_runs):
    first, other = sorted(two_runs)  # the older run is not what the pages would show by themselves
    for target in ("dashboard/evaluate_page.py", "dashboard/classify_page.py"):
        at = open_app(target, {"run": first})
        assert not at.exception and not at.warning
        assert at.selectbox[0].value == f"Run {first}" and at.query_params.get("run") == first
        at.selectbox[0].select("Default model (shipped)").run()  # choosing rewrites the link
        assert at.query_params.get("model") == "default" and "run" not in at.query_params
    at = open_app("dashboard/evaluate_page.py", {"model": other, "class": "green"})
    assert at.selectbox[0].value == f"Run {other}"
    assert next(s for s in at.selectbox if s.label == "Class").value == "green"
    captions = [p.caption for p in pictures(at) if p.caption.startswith("Ground")]
    assert captions and all(c.startswith("GroundTruth: green") for c in captions)


BAD_RUN_LINKS = [{"run": "no-such-run"}, {"run": "../../etc/passwd"}, {"run": "x" * 500}]


@pytest.mark.parametrize("page, query", [(page, query) for page in ("evaluate", "classify", "runs", "train")
                                         for query in BAD_RUN_LINKS] +
                         [("evaluate", {"model": "gone.pth"}), ("classify", {"model": "gone.pth"}),
                          ("evaluate", {"class": "purple"})])
def test_a_link_to_something_that_is_not_there_says_so(two_runs, page, query):
    at = open_app(f"dashboard/{page}_page.py", query)
    assert not at.exception and not at.error
    value = next(iter(query.values()))
    assert len(at.warning) == 1 and "which is not here" in at.warning[0].value
    assert literal(value[:60]) in at.warning[0].value
    if len(value) > 60:
        assert value[:61] not in at.warning[0].value  # long ids are cut, not echoed whole


def test_runs_and_train_open_the_run_a_link_names(two_runs):
    first, _ = sorted(two_runs)
    at = open_app("dashboard/runs_page.py", {"run": first})
    assert not at.exception and not at.warning
    assert any(h.value == f"Run {first}" for h in at.subheader)
    at = open_app("dashboard/train_page.py", {"run": first})
    assert not at.exception and not at.warning and at.query_params.get("run") == first
    assert any(h.value == f"Run {first}" for h in at.subheader)  # the live view shows the linked run
