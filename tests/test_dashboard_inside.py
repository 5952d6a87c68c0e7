"""Classify's learning replay and what if, through AppTest."""
import image_zoo
import pytest
from conftest import open_app

from core import snapshots
from core.config import TrainConfig
from core.launcher import start_training, wait_for


@pytest.fixture
def finished_run(env, tiny_tree):
    run = start_training(TrainConfig(epochs=2, lr=0.01), env / "runs", data_dir=str(tiny_tree))
    assert wait_for(run, ("done", "failed"), 90) == "done"
    return run


def classify(run, files: dict[str, bytes]):
    at = open_app("dashboard/classify_page.py", {"run": run.id})
    at.file_uploader[0].set_value([(name, data, "image/*") for name, data in files.items()])
    at.run()
    assert not at.exception and not at.error
    return at


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
    captions = [i.proto.imgs[0].caption for i in at.get("image")]
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
    captions = [i.proto.imgs[0].caption for i in at.get("image")]
    assert "the noise, amplified (at most 16/255)" in captions and "changed" in captions
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
