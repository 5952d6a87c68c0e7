"""The weight average (EMA) and test-time views: what is evaluated, saved and resumed."""
import json

import pytest
import torch
import torch.nn as nn

from core.averaging import WeightAverage
from core.checkpoints import load_model
from core.config import TrainConfig
from core.data import DataConfig
from core.evaluate import TTA, _shift, evaluate, tta_logits
from core.train import train
from core.transforms import normalizer

CPU = torch.device("cpu")



def test_weight_average_is_the_exponential_moving_average():
    model = nn.Linear(3, 2)
    average = WeightAverage(model, decay=0.5)
    history = [model.weight.detach().clone()]
    for step in range(1, 30):
        with torch.no_grad():
            model.weight.add_(1.0)
        average.update()
        decay = min(0.5, (1 + step) / (10 + step))
        history.append(decay * history[-1] + (1 - decay) * model.weight.detach())
    assert torch.allclose(average.averaged.weight, history[-1])
    assert not torch.equal(average.averaged.weight, model.weight)


def test_averaged_weights_are_evaluated_saved_and_resumed_exactly(dataset):
    config = TrainConfig(model="widenet", width=4, epochs=3, batch_size=8, lr=0.05, ema=0.9, seed=3)
    full = train(config, dataset, CPU)
    saved = []
    calls = {"n": 0}

    def stop_after_7():  # 5 steps an epoch: stops 2 steps into epoch 2
        calls["n"] += 1
        return calls["n"] > 7

    first = train(config, dataset, CPU, should_stop=stop_after_7, save_checkpoint=saved.append)
    assert first.status == "stopped"
    checkpoint = saved[-1]
    assert set(checkpoint) >= {"model", "training_model", "average_updates"}
    assert not all(torch.equal(checkpoint["model"][k], checkpoint["training_model"][k])
                   for k in checkpoint["model"] if checkpoint["model"][k].is_floating_point())
    resumed = train(config, dataset, CPU, resume=checkpoint)
    assert all(torch.equal(a, b) for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()))


def test_tta_views():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    assert torch.equal(_shift(x, 1, 1)[..., 1:, 1:], x[..., :-1, :-1])  # moved down-right
    assert torch.equal(_shift(x, -1, -1)[..., :-1, :-1], x[..., 1:, 1:])
    mirror_blind = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 5))  # ignores position
    for tta in TTA:
        assert torch.allclose(tta_logits(mirror_blind, x, tta), mirror_blind(x), atol=1e-5)
    left_eye = nn.Sequential(nn.Flatten(), nn.Linear(48, 5))
    assert not torch.allclose(tta_logits(left_eye, x, "flip"), left_eye(x))
    assert torch.allclose(tta_logits(left_eye, x, "flip"), (left_eye(x) + left_eye(x.flip(3))) / 2)
    with pytest.raises(ValueError, match="flip-translate"):
        tta_logits(left_eye, x, "sideways")


def test_evaluate_uses_tta_and_loaded_models_carry_it(dataset, tmp_path):
    config = TrainConfig(model="widenet", width=4, epochs=2, batch_size=8, lr=0.05, tta="flip")
    model = train(config, dataset, CPU).model
    normalize = normalizer(DataConfig(), CPU)
    plain, flipped = evaluate(model, dataset.test, normalize), evaluate(model, dataset.test, normalize, tta="flip")
    expected = torch.softmax(tta_logits(model.eval(), normalize(dataset.test.images), "flip"), 1)
    assert torch.allclose(flipped.probabilities, expected, atol=1e-6)
    assert not torch.allclose(plain.probabilities, flipped.probabilities)
    run = tmp_path / "run"
    run.mkdir()
    torch.save(model.state_dict(), run / "model.pth")
    config = {"train": {"model": "widenet", "tta": "flip"}, "classes": list(dataset.classes)}
    (run / "config.json").write_text(json.dumps(config))
    loaded = load_model(run)
    assert (loaded.name, loaded.tta) == ("widenet", "flip")
