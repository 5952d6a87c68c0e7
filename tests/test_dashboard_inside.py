"""Classify's learning replay and what if, through AppTest."""

import image_zoo
import streamlit as st
import torch
from conftest import open_app, pictures

from core import snapshots
from dashboard.common import literal
from dashboard.similar import selected


def classify(run, files: dict[str, bytes], inside: bool = True):
    at = open_app("dashboard/classify_page.py", {"run": run.id})
    at.file_uploader[0].set_value([(name, data, "image/*") for name, data in files.items()])
    at.run()
    assert not at.exception and not at.error
    if inside:
        look_inside(at).set_value(True).run()
        assert not at.exception and not at.error
    return at


def look_inside(at):
    return next(t for t in at.toggle if t.label.startswith("Look inside"))


def test_look_inside_is_on_request_and_stays_on(finished_run):
    files = image_zoo.good()
    at = classify(finished_run, {"photo.jpg": files["photo.jpg"]}, inside=False)
    assert at.get("plotly_chart")  # the answer is there
    assert not look_inside(at).value and not {"Learning replay", "What if"} & {h.value for h in at.subheader}
    assert not at.select_slider and [s.label for s in at.slider] == ["How many"]  # the test-images tab's
    look_inside(at).set_value(True).run()
    assert {"Learning replay", "What if"} <= {h.value for h in at.subheader}
    assert at.query_params["inside"] == "1"  # a copied link opens with it on
    at.file_uploader[0].set_value([("photo.png", files["photo.png"], "image/*")]).run()  # another picture
    assert not at.exception and look_inside(at).value
    assert {"Learning replay", "What if"} <= {h.value for h in at.subheader}
    look_inside(at).set_value(False).run()
    assert "inside" not in at.query_params and "Learning replay" not in {h.value for h in at.subheader}


def test_a_link_can_open_with_look_inside_on(finished_run):
    at = open_app("dashboard/classify_page.py", {"run": finished_run.id, "inside": "1"})
    at.file_uploader[0].set_value([("photo.jpg", image_zoo.good()["photo.jpg"], "image/*")]).run()
    assert not at.exception and look_inside(at).value
    assert {"Learning replay", "What if"} <= {h.value for h in at.subheader}


def step_line(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("**Step "))


def test_the_replay_slider_moves_through_the_runs_snapshots(finished_run):
    kept = snapshots.load(finished_run.snapshots_file)
    at = classify(finished_run, {"photo.jpg": image_zoo.good()["photo.jpg"]})
    assert {"Learning replay", "What if"} <= {h.value for h in at.subheader}
    slider = next(s for s in at.select_slider if s.label == "Snapshot")
    assert len(slider.options) == len(kept.steps)
    slider.set_value(0).run()
    assert step_line(at).startswith("**Step 0** (epoch 0.00): test accuracy "
                                    f"**{100 * kept.accuracy[0]:.1f} %**")
    first = [p.proto.text for p in at.get("progress")]
    next(s for s in at.select_slider if s.label == "Snapshot").set_value(len(kept.steps) - 1).run()
    assert step_line(at).startswith(f"**Step {kept.steps[-1]}** (epoch 2.00)")
    assert [p.proto.text for p in at.get("progress")] != first  # the top 3 changed along training
    captions = [p.caption for p in pictures(at)]
    assert "where it looks (Grad-CAM)" in captions


def test_play_runs_the_replay_and_pause_stops_it(finished_run):
    at = classify(finished_run, {"photo.jpg": image_zoo.good()["photo.jpg"]})
    next(b for b in at.button if b.label == "Play").click().run()
    assert not at.exception and at.session_state["inside-playing"]
    assert any(b.label == "Pause" for b in at.button)
    next(b for b in at.button if b.label == "Pause").click().run()
    assert not at.session_state["inside-playing"]


def test_what_if_sliders_change_the_picture_and_the_answer(finished_run):
    at = classify(finished_run, {"photo.jpg": image_zoo.good()["photo.jpg"]})
    assert any("Still **" in s.value for s in at.success)  # unchanged: the same answer
    next(s for s in at.slider if s.label.startswith("Grey square: size")).set_value(20).run()
    next(s for s in at.slider if s.label.startswith("Rotation")).set_value(45).run()
    assert not at.exception
    next(s for s in at.slider if s.label.startswith("Adversarial noise")).set_value(16.0).run()
    next(r for r in at.radio if r.label == "Attack").set_value("PGD (10 steps)").run()
    assert not at.exception and not at.error
    captions = [p.caption for p in pictures(at)]
    assert any("changed · where it looks now (Grad-CAM) · the noise, amplified (at most 16/255)" in c for c in captions)
    assert any(m.value.startswith(("Still **", "Now **")) for m in [*at.success, *at.warning])


def test_several_pictures_pick_one_and_a_run_without_snapshots_says_so(finished_run):
    files = image_zoo.good()
    at = classify(finished_run, {name: files[name] for name in ("photo.jpg", "photo.png")})
    picker = next(s for s in at.selectbox if s.label == "Look inside with")
    assert picker.options == ["photo.jpg", "photo.png"]
    picker.select("photo.png").run()
    assert not at.exception
    finished_run.snapshots_file.unlink()
    at = classify(finished_run, {"photo.jpg": files["photo.jpg"]})
    assert any("kept no weight snapshots" in i.value for i in at.info)
    finished_run.snapshots_file.write_bytes(b"junk")
    at = classify(finished_run, {"photo.jpg": files["photo.jpg"]})
    assert any("is not a snapshots file" in i.value for i in at.info)


def test_a_confusion_cell_shows_its_images(finished_run, dataset):
    at = open_app("dashboard/evaluate_page.py", {"run": finished_run.id})
    classes = list(dataset.classes)
    confusion = finished_run.metrics()["confusion"]
    for actual in range(3):
        for predicted in range(3):
            next(s for s in at.selectbox if s.label == "Images that are").select(classes[actual]).run()
            next(s for s in at.selectbox if s.label == "predicted as").select(classes[predicted]).run()
            assert not at.exception
            shown = [p.caption for p in pictures(at) if p.caption.startswith("#")]
            assert len(shown) == confusion[actual][predicted]


def test_the_map_draws_both_ways_remembers_them_and_takes_a_photo_from_classify(finished_run, tiny_tree):
    at = open_app("dashboard/evaluate_page.py", {"run": finished_run.id})
    assert "Similar images" in [h.value for h in at.subheader]
    way_in = "turn on Look inside and choose Show it on the map of similar images"
    assert any(way_in in c.value for c in at.caption)  # how to bring a photo here
    method = next(r for r in at.radio if r.label == "Map")
    assert method.value == "pca"  # nothing drawn yet: the instant map first
    method.set_value("tsne").run()
    assert not at.exception and "map" in [c.key for c in at.get("plotly_chart")]
    assert list(tiny_tree.parent.rglob("map-*.pt"))  # beside the data the dashboard shows
    # a new server finds the t-SNE map remembered and shows it first
    st.cache_resource.clear()
    at = open_app("dashboard/evaluate_page.py", {"run": finished_run.id})
    assert next(r for r in at.radio if r.label == "Map").value == "tsne"

    at = classify(finished_run, {"photo.jpg": image_zoo.good()["photo.jpg"]})
    next(b for b in at.button if b.label == "Show it on the map of similar images").click().run()
    assert not at.exception and at.title[0].value == "Evaluate"
    assert at.selectbox[0].value == f"Run {finished_run.id}"  # the model it was classified with
    assert any(m.value.startswith(f"**It thinks {literal('photo.jpg')} looks like these**") for m in at.markdown)
    spec = next(c for c in at.get("plotly_chart") if c.key == "map").proto.spec
    assert '"star"' in spec and "photo.jpg" in spec
    assert not any("neighbour features" in i.value for i in at.info)
    assert not any(way_in in c.value for c in at.caption)
    next(b for b in at.button if b.label == "Remove the photo from the map").click().run()
    assert not any(m.value.startswith("**It thinks") for m in at.markdown)

    # a remembered file of neighbour features that cannot be trusted: computed again, and the page says so
    for path in tiny_tree.parent.rglob("bank-*.pt"):
        path.write_bytes(b"junk")
    st.cache_resource.clear()
    at = classify(finished_run, {"photo.jpg": image_zoo.good()["photo.jpg"]})
    next(b for b in at.button if b.label == "Show it on the map of similar images").click().run()
    assert not at.exception and any(m.value.startswith("**It thinks") for m in at.markdown)
    assert any("neighbour features" in i.value and "computed again" in i.value for i in at.info)


def test_selected_points_are_read_from_the_chart_event():
    event = {"selection": {"points": [{"customdata": 3}, {"customdata": [5]}, {"x": 1.0}, {"customdata": "a"}]}}
    assert selected(event) == [3, 5] and selected(None) == [] and selected({}) == []


def test_the_confusion_images_open_on_the_pair_the_model_confuses_most(finished_run):
    # the run's last layer made to answer the third class for everything: its mistakes are (0, 2) and (1, 2), never
    # the first two classes that the picker opened on before
    state = torch.load(finished_run.model_file, weights_only=True)
    state["fc3.weight"].zero_()
    state["fc3.bias"].copy_(torch.tensor([0.0, 0.0, 10.0]))
    torch.save(state, finished_run.model_file)
    at = open_app("dashboard/evaluate_page.py", {"run": finished_run.id})
    assert not at.exception
    pick = {s.label: s.value for s in at.selectbox if s.label in ("Images that are", "predicted as")}
    assert pick == {"Images that are": "blue", "predicted as": "red"}  # ties go to the first actual class
    assert any(c.value.startswith("4 test images that are **blue**, predicted as **red**") for c in at.caption)
