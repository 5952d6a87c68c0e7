"""One loaded model, many sessions at once: what the dashboard does with every st.cache_resource'd model.

Grad-CAM used to hook the shared module itself, so a room of visitors classifying at the same moment saw each
other's activations (13 of 30 browser sessions got "One of the differentiated Tensors does not require grad").
"""
import threading

import numpy as np
import pytest
import torch

from core import anatomy
from core.data import DataConfig
from core.interpret import predict, saliency
from core.models import build_model
from core.transforms import normalizer
from core.views import captured_outputs, private_view

normalize = normalizer(DataConfig(), "cpu")
THREADS, ROUNDS = 8, 6


@pytest.fixture(scope="module")
def shared():
    torch.manual_seed(0)
    model = build_model("fastnet", width=32, num_classes=10).eval()  # big enough that forward passes overlap
    images = torch.randint(0, 256, (THREADS, 3, 32, 32), dtype=torch.uint8)
    return model, images


def alone(model, image):
    heat = saliency(model, image, normalize, layer="layer3")
    maps = anatomy.feature_maps(model, image, normalize, "layer2")
    return heat, maps, predict(model, image.unsqueeze(0), normalize, tta="flip")[0].probabilities


def test_many_threads_on_one_model_get_what_each_gets_alone(shared):
    model, images = shared
    expected = [alone(model, image) for image in images]
    table = anatomy.layers(model)
    start, failures = threading.Barrier(THREADS), []

    def session(i):
        start.wait()
        try:
            for _ in range(ROUNDS):
                heat, maps, probabilities = alone(model, images[i])
                assert np.allclose(heat, expected[i][0], atol=1e-5)
                assert torch.equal(maps, expected[i][1])
                assert np.allclose(probabilities, expected[i][2], atol=1e-6)
                assert anatomy.layers(model) == table
        except Exception as exc:  # noqa: BLE001 - every thread's failure is reported, not just the first
            failures.append(f"session {i}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=session, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    assert all(not m._forward_hooks for m in model.modules()), "a hook was left on the shared model"


def test_a_view_shares_the_weights_and_never_switches_the_model(shared):
    model, images = shared
    model.train()
    try:
        view = private_view(model)
        assert not view.training and all(m.training for m in model.modules())
        assert all(a is b for a, b in zip(view.parameters(), model.parameters()))
        assert [name for name, _ in view.named_modules()] == [name for name, _ in model.named_modules()]
    finally:
        model.eval()
    view, outputs = captured_outputs(model, ["layer1"])
    view(normalize(images[:1]))
    assert outputs["layer1"].shape[0] == 1 and not model.layer1._forward_hooks
    with pytest.raises(ValueError, match="no layer 'nope'"):
        captured_outputs(model, ["nope"])


def test_a_room_uploading_one_photo_computes_it_once_and_each_gets_the_same_answer(monkeypatch):
    """The dashboard remembers a classification by the upload's content for every session (a room on one
    link uploads the same photo at once): the threads wait for one computation and all get its result."""
    from conftest import ROOT

    import dashboard.common as common
    from core.checkpoints import load_model

    loaded = load_model(ROOT / "models" / "default.pth")
    photo = (ROOT / "photos" / "chelsea.jpg").read_bytes()
    expected = common.classification(loaded, photo, "crop", with_map=True)
    computed = []
    monkeypatch.setattr(common, "classification", _counting(common.classification, computed))
    common._shared_classification.clear()
    start, got = threading.Barrier(THREADS), []

    def session():
        start.wait()
        got.append(common._shared_classification(("default", 1), photo, "crop", True, loaded))

    threads = [threading.Thread(target=session) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(computed) == 1 and len(got) == THREADS
    assert all(g.prediction == expected.prediction for g in got)
    assert all(np.array_equal(np.asarray(g.pictures), np.asarray(expected.pictures)) for g in got)
    common._shared_classification(("default", 1), photo, "whole", True, loaded)  # another framing: computed
    assert len(computed) == 2


def _counting(function, calls: list):
    def counted(*args, **kwargs):
        calls.append(1)
        return function(*args, **kwargs)
    return counted
