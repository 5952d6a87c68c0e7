import numpy as np
import pytest
import torch
import torch.nn as nn

from core.data import DataConfig
from core.evaluate import EvalResult
from core.interpret import losses, most_confused, overlay, predict, row_normalised, saliency, top_losses
from core.models import Net
from core.transforms import normalizer

CLASSES = ["cat", "dog", "frog"]
normalize = normalizer(DataConfig(), "cpu")


def result_from(probabilities, labels):
    probabilities = torch.tensor(probabilities)
    predictions = probabilities.argmax(1)
    confusion = torch.bincount(torch.tensor(labels) * 3 + predictions, minlength=9).view(3, 3)
    return EvalResult(int((predictions == torch.tensor(labels)).sum()), len(labels), confusion, predictions,
                      probabilities)


def test_row_normalised_and_most_confused():
    confusion = torch.tensor([[8, 2, 0], [5, 5, 0], [0, 1, 0]])
    shares = row_normalised(confusion)
    assert shares[0].tolist() == pytest.approx([0.8, 0.2, 0]) and shares[2].tolist() == pytest.approx([0, 1, 0])
    pairs = most_confused(confusion, CLASSES, k=2)
    assert [(p["actual"], p["predicted"], p["count"]) for p in pairs] == [("dog", "cat", 5), ("cat", "dog", 2)]
    assert pairs[0]["share"] == pytest.approx(0.5)


def test_top_losses_puts_the_most_confident_mistake_first():
    labels = [0, 1, 2, 0]
    r = result_from([[0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.01, 0.98, 0.01], [0.4, 0.35, 0.25]], labels)
    top = top_losses(r, torch.tensor(labels), k=2)
    assert [t["index"] for t in top] == [2, 1]
    assert top[0]["predicted"] == 1 and top[0]["confidence"] == pytest.approx(0.98)
    assert top[0]["p_label"] == pytest.approx(0.01)
    assert losses(r, torch.tensor(labels))[0] == pytest.approx(-np.log(0.9), rel=1e-5)


def test_predict_returns_probabilities_and_top_class():
    torch.manual_seed(0)
    model = Net(num_classes=3)
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    out = predict(model, images, normalize)
    assert len(out) == 2 and sum(out[0].probabilities) == pytest.approx(1.0)
    assert out[0].top == int(np.argmax(out[0].probabilities))


def test_gradcam_map_shape_and_range():
    torch.manual_seed(0)
    heat = saliency(Net(), torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8), normalize, layer="conv2")
    assert heat.shape == (32, 32) and heat.min() >= 0 and heat.max() <= 1


def test_input_gradient_saliency_finds_the_pixels_that_matter():
    class Corner(nn.Module):  # the logit depends on the top-left 8x8 patch only
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3 * 8 * 8, 2)

        def forward(self, x):
            return self.fc(x[:, :, :8, :8].flatten(1))

    heat = saliency(Corner(), torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8), normalize, layer=None)
    assert heat[:8, :8].max() == 1.0 and heat[8:, :].max() == 0 and heat[:, 8:].max() == 0


def test_overlay_blends_colours_over_the_image():
    image = torch.zeros(3, 32, 32, dtype=torch.uint8)
    heat = np.zeros((32, 32))
    heat[0, 0] = 1.0
    out = overlay(image, heat, alpha=1.0)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert out[0, 0, 0] > out[0, 0, 2] and out[5, 5, 2] > out[5, 5, 0]  # hot is red, cold is blue
